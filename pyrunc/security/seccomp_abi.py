"""The seccomp kernel ABI and libseccomp's names for it: constants only.

Both the checker/loader (seccomp.py) and the compiler (seccomp_compile.py) use these; kept
apart so neither imports the other for them. Values are the kernel's (linux/seccomp.h,
linux/audit.h) and libseccomp's public enums, which are ABI and never change.
"""

STEP = "seccomp"

# seccomp(2) operations and return values (linux/seccomp.h).
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_GET_ACTION_AVAIL = 2
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_KILL_THREAD = 0x00000000
SECCOMP_RET_TRAP = 0x00030000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_USER_NOTIF = 0x7FC00000
SECCOMP_RET_TRACE = 0x7FF00000
SECCOMP_RET_LOG = 0x7FFC0000
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_DATA = 0x0000FFFF

SECCOMP_FILTER_FLAG_TSYNC = 1
SECCOMP_FILTER_FLAG_LOG = 2
SECCOMP_FILTER_FLAG_SPEC_ALLOW = 4
SECCOMP_FILTER_FLAG_NEW_LISTENER = 8
SECCOMP_FILTER_FLAG_TSYNC_ESRCH = 16
SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV = 32

FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": SECCOMP_FILTER_FLAG_TSYNC,
    "SECCOMP_FILTER_FLAG_LOG": SECCOMP_FILTER_FLAG_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": SECCOMP_FILTER_FLAG_SPEC_ALLOW,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
}

# Action name -> (base value, takes an errno/trace value in the low 16 bits).
ACTIONS: dict[str, tuple[int, bool]] = {
    "SCMP_ACT_KILL": (SECCOMP_RET_KILL_THREAD, False),
    "SCMP_ACT_KILL_THREAD": (SECCOMP_RET_KILL_THREAD, False),
    "SCMP_ACT_KILL_PROCESS": (SECCOMP_RET_KILL_PROCESS, False),
    "SCMP_ACT_TRAP": (SECCOMP_RET_TRAP, False),
    "SCMP_ACT_ERRNO": (SECCOMP_RET_ERRNO, True),
    "SCMP_ACT_TRACE": (SECCOMP_RET_TRACE, True),
    "SCMP_ACT_ALLOW": (SECCOMP_RET_ALLOW, False),
    "SCMP_ACT_LOG": (SECCOMP_RET_LOG, False),
    "SCMP_ACT_NOTIFY": (SECCOMP_RET_USER_NOTIF, False),
}

# libseccomp arch tokens: the kernel's AUDIT_ARCH_* values (EM_* | 64BIT | LE), which is
# also what seccomp_data.arch holds, so the ENOSYS stub can compare against them.
ARCHES: dict[str, int] = {
    "SCMP_ARCH_X86": 0x40000003,
    "SCMP_ARCH_X86_64": 0xC000003E,
    "SCMP_ARCH_X32": 0x4000003E,
    "SCMP_ARCH_ARM": 0x40000028,
    "SCMP_ARCH_AARCH64": 0xC00000B7,
    "SCMP_ARCH_MIPS": 0x00000008,
    "SCMP_ARCH_MIPS64": 0x80000008,
    "SCMP_ARCH_MIPS64N32": 0xA0000008,
    "SCMP_ARCH_MIPSEL": 0x40000008,
    "SCMP_ARCH_MIPSEL64": 0xC0000008,
    "SCMP_ARCH_MIPSEL64N32": 0xE0000008,
    "SCMP_ARCH_PPC": 0x00000014,
    "SCMP_ARCH_PPC64": 0x80000015,
    "SCMP_ARCH_PPC64LE": 0xC0000015,
    "SCMP_ARCH_S390": 0x00000016,
    "SCMP_ARCH_S390X": 0x80000016,
    "SCMP_ARCH_PARISC": 0x0000000F,
    "SCMP_ARCH_PARISC64": 0x8000000F,
    "SCMP_ARCH_RISCV64": 0xC00000F3,
    "SCMP_ARCH_LOONGARCH64": 0xC0000102,
    "SCMP_ARCH_M68K": 0x00000004,
    "SCMP_ARCH_SH": 0x4000002A,
    "SCMP_ARCH_SHEB": 0x0000002A,
}

# enum scmp_compare
OPERATORS = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}

# seccomp(2) syscall numbers; the init calls it through libc's syscall().
SECCOMP_NR = {"x86_64": 317, "aarch64": 277, "riscv64": 277, "i686": 354, "i386": 354,
               "armv7l": 383, "armv8l": 383, "ppc64le": 358, "ppc64": 358, "s390x": 348,
               "loongarch64": 277, "mips64": 5312}

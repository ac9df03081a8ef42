/*
 * The `pyrunc` command when the Makefile has a C compiler (pyrunc/launcher.py builds it).
 *
 * It execs the venv's interpreter on the launcher script exactly as the script's own
 * `#!PYTHON -IS` line would, with one difference: for the commands that fork into a container
 * the interpreter is exec'd through a read-only overlayfs of its directory, made with
 * fsopen/fsmount and attached nowhere, so /proc/self/exe of pyrunc and of every process it forks
 * into a container is a file no one can write (CVE-2019-5736; pyrunc/selfexe.py says why and
 * what the alternatives cost).
 *
 * Built without a C library where it can be (PYRUNC_NOLIBC: x86-64 and arm64, raw system calls,
 * its own entry point). Not for size: glibc's start-up, static or dynamic, costs ~0.6 ms on
 * these VMs (its CPU feature probing traps to the hypervisor), which is most of what a second
 * exec costs; without it the launcher adds ~0.1 ms to a command (docs/PERFORMANCE.md). The
 * interpreter pays that start-up once either way. Elsewhere it is built against libc.
 *
 * This is only an optimisation: when the overlay cannot be made (rootless, no overlayfs, an old
 * kernel) it execs the interpreter by path, and pyrunc/selfexe.py checks /proc/self/exe and
 * seals a copy itself before `create`, `run` or `exec` do anything.
 *
 * Built with -D PYRUNC_PYTHON (the venv's python, kept as argv[0] so CPython finds its prefix
 * and venv from it), PYRUNC_SCRIPT (the launcher script), PYRUNC_LOWERDIR (the overlay's
 * layers, escaped: the directory the interpreter's file really is in, then pyrunc's package
 * directory, because overlayfs wants two lower layers when it has no upper one) and
 * PYRUNC_INTERPRETER_NAME (the file's name in that directory).
 */
#include <asm/unistd.h>

#ifndef __NR_fsopen
#define __NR_fsopen 430
#define __NR_fsconfig 431
#define __NR_fsmount 432
#endif
#define O_PATH_ 010000000
#define O_NOFOLLOW_ 0400000
#define O_CLOEXEC_ 02000000
#define AT_EMPTY_PATH_ 0x1000
#define FSOPEN_CLOEXEC 0x1
#define FSCONFIG_SET_STRING 1
#define FSCONFIG_CMD_CREATE 6
#define FSMOUNT_CLOEXEC 0x1
#define MOUNT_ATTR_RDONLY 0x1
#define MOUNT_ATTR_NOSUID 0x2
#define MOUNT_ATTR_NODEV 0x4

#ifdef PYRUNC_NOLIBC
/* Raw system calls: the result, or -errno. */
static long sys(long n, long a, long b, long c, long d, long e)
{
	long ret;
#if defined(__x86_64__)
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
			 : "rcx", "r11", "memory");
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	__asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4) : "memory");
	ret = x0;
#else
#error "PYRUNC_NOLIBC: no system call convention for this architecture (build without it)"
#endif
	return ret;
}
#define ERRNO(ret) (-(ret))
#else
#include <errno.h>
#include <unistd.h>
static long sys(long n, long a, long b, long c, long d, long e)
{
	return syscall(n, a, b, c, d, e);
}
#define ERRNO(ret) ((void)(ret), errno)
#endif

#define CALL(n, a, b, c, d, e) sys(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e))

static int same(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

static unsigned long length(const char *s)
{
	unsigned long n = 0;

	while (s[n])
		n++;
	return n;
}

static void say(const char *s)
{
	CALL(__NR_write, 2, s, length(s), 0, 0);
}

/* An O_PATH fd of the interpreter seen through a detached read-only overlay, or a negative. */
static long sealed_interpreter(void)
{
	long ctx, mnt, fd = -1;

	ctx = CALL(__NR_fsopen, "overlay", FSOPEN_CLOEXEC, 0, 0, 0);
	if (ctx < 0)
		return -1;
	if (CALL(__NR_fsconfig, ctx, FSCONFIG_SET_STRING, "lowerdir", PYRUNC_LOWERDIR, 0) < 0)
		goto out;
	/* spares dmesg a warning; older kernels refuse the key, which does not matter */
	CALL(__NR_fsconfig, ctx, FSCONFIG_SET_STRING, "xino", "off", 0);
	if (CALL(__NR_fsconfig, ctx, FSCONFIG_CMD_CREATE, 0, 0, 0) < 0)
		goto out;
	mnt = CALL(__NR_fsmount, ctx, FSMOUNT_CLOEXEC,
		   MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID, 0, 0);
	if (mnt < 0)
		goto out;
	fd = CALL(__NR_openat, mnt, PYRUNC_INTERPRETER_NAME, O_PATH_ | O_NOFOLLOW_ | O_CLOEXEC_, 0, 0);
	CALL(__NR_close, mnt, 0, 0, 0, 0);
out:
	CALL(__NR_close, ctx, 0, 0, 0, 0);
	return fd;
}

/*
 * Only `create`, `run` and `exec` fork processes into a container (selfexe.py's COMMANDS);
 * `start`, `state`, `delete` and the rest need no overlay (a superblock made and torn down per
 * call). Any argument spelled like one of the three counts (a container named "run" only costs
 * the overlay), so no way of writing the command line misses one.
 */
static int enters_a_container(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++)
		if (same(argv[i], "create") || same(argv[i], "run") || same(argv[i], "exec"))
			return 1;
	return 0;
}

static int launch(int argc, char **argv, char **envp)
{
	char *args[argc + 3];
	long fd = -1, ret;
	int i;

	args[0] = PYRUNC_PYTHON;
	args[1] = "-IS";
	args[2] = PYRUNC_SCRIPT;
	for (i = 1; i < argc; i++)
		args[i + 2] = argv[i];
	args[argc + 2] = 0;

	if (enters_a_container(argc, argv))
		fd = sealed_interpreter();
	if (fd >= 0) {
		CALL(__NR_execveat, fd, "", args, envp, AT_EMPTY_PATH_);
		CALL(__NR_close, fd, 0, 0, 0, 0);
	}
	ret = CALL(__NR_execve, PYRUNC_PYTHON, args, envp, 0, 0);
	say("pyrunc: exec " PYRUNC_PYTHON ": ");
	say(ERRNO(ret) == 2 ? "no such file (rebuild the venv: make)\n"
	    : ERRNO(ret) == 13 ? "permission denied\n" : "failed\n");
	return 127;
}

#ifdef PYRUNC_NOLIBC
/* The kernel's initial stack: argc, argv[], NULL, envp[], NULL, auxv. */
__attribute__((used, noreturn)) void pyrunc_start(long *sp)
{
	int argc = (int)sp[0];
	char **argv = (char **)(sp + 1);

	CALL(__NR_exit, launch(argc, argv, argv + argc + 1), 0, 0, 0, 0);
	__builtin_unreachable();
}

#if defined(__x86_64__)
__asm__(".text\n.global _start\n_start:\n\txor %rbp, %rbp\n\tmov %rsp, %rdi\n"
	"\tand $-16, %rsp\n\tcall pyrunc_start\n\thlt\n");
#elif defined(__aarch64__)
__asm__(".text\n.global _start\n_start:\n\tmov x29, #0\n\tmov x0, sp\n\tbl pyrunc_start\n");
#endif
#else
extern char **environ;

int main(int argc, char **argv)
{
	return launch(argc, argv, environ);
}
#endif

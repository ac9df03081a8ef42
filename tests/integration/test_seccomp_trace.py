"""After the seccomp filter is loaded the init (and an `exec`'d process) makes no system call but
the program's execve: proven with strace, and with profiles that deny what a runtime might use.

A profile is written for the program, not for the runtime: a call of ours that follows the load
is judged by the container's filter (issue 12: `close_range: Operation not permitted` with
noNewPrivileges false and a profile without close_range). runc's rule is that nothing but execve
follows the load. Notify filters are the one exception (their listener fd must be passed on after
the load, as in runc) and are not traced here.

The trace is strace -ff on the runtime command itself (one output file per process, so no
interleaving), or attached to the waiting init for create/start. In every process that loaded a
filter (seccomp(SECCOMP_SET_MODE_FILTER) or prctl(PR_SET_SECCOMP)) the next system call must be a
successful execve.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_to_files
from tests.integration.test_terminal import read_until

STRACE = shutil.which("strace")
LOAD = re.compile(r"^(seccomp\(SECCOMP_SET_MODE_FILTER|prctl\(PR_SET_SECCOMP)")

DENY_CLOSE_RANGE = {"defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": ["close_range"], "action": "SCMP_ACT_ERRNO"}]}
# For the traces: a profile that denies nothing a runtime uses, so a late call shows up in the
# trace rather than as a failed start.
HARMLESS = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_ERRNO"}]}

needs_strace = pytest.mark.skipif(STRACE is None, reason="strace is not installed (the Makefile installs it: APT_PACKAGES)")


def calls_after_load(prefix: Path) -> tuple[int, list[str]]:
    """(number of processes that loaded a filter, offending lines: anything but a successful execve
    right after a load)."""
    loads, bad = 0, []
    for path in sorted(glob.glob(f"{prefix}.*")):
        lines = [ln for ln in Path(path).read_text(errors="replace").splitlines()
                 if not ln.startswith(("---", "+++"))]
        for i, line in enumerate(lines):
            if not LOAD.match(line):
                continue
            loads += 1
            nxt = lines[i + 1] if i + 1 < len(lines) else "<nothing: the process ended>"
            if not (nxt.startswith("execve(") and re.search(r"\) = 0$", nxt)):
                bad.append(f"{os.path.basename(path)}: {line[:80]} ... then: {nxt[:160]}")
    return loads, bad


def strace_cmd(prefix: Path, *cmd: str) -> list[str]:
    return [STRACE, "-ff", "-qq", "-s", "64", "-o", str(prefix), *cmd]


def console_server(tmp_path: Path) -> tuple[socket.socket, str]:
    path = str(tmp_path / "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    return server, path


def take_master(server: socket.socket) -> int:
    server.settimeout(30)
    conn, _ = server.accept()
    _, fds, _, _ = socket.recv_fds(conn, 4096, 4)
    conn.close()
    return fds[0]


def attach(pid: int, prefix: Path) -> subprocess.Popen:
    """strace -ff attached to pid; returns once strace says it is attached."""
    tracer = subprocess.Popen([STRACE, "-ff", "-s", "64", "-o", str(prefix), "-p", str(pid)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = tracer.stderr.readline()
    assert "attached" in line, line
    return tracer


def finish(tracer: subprocess.Popen) -> None:
    try:
        tracer.wait(timeout=60)
    finally:
        if tracer.poll() is None:
            tracer.kill()
            tracer.wait()


@needs_strace
@pytest.mark.parametrize("terminal", [False, True], ids=["stdio", "console"])
@pytest.mark.parametrize("nnp", [True, False], ids=["nnp", "no-nnp"])
def test_create_start_nothing_follows_the_load(pyrunc, bundle, tmp_path, nnp, terminal):
    bundle.config["process"]["noNewPrivileges"] = nnp
    bundle.config["process"]["terminal"] = terminal
    bundle.config["linux"]["seccomp"] = HARMLESS
    bundle.config["process"]["args"] = ["sh", "-c", "echo program-ran"]
    master = None
    args = ["create", "t1"]
    if terminal:
        server, path = console_server(tmp_path)
        args = ["create", "--console-socket", path, "t1"]
    pyrunc(*args, bundle=bundle, check=True)
    if terminal:
        master = take_master(server)
        server.close()
    prefix = tmp_path / "trace"
    tracer = attach(pyrunc.state("t1")["pid"], prefix)
    try:
        pyrunc("start", "t1", check=True)
        if master is not None:
            assert b"program-ran" in read_until(master, b"program-ran")
    finally:
        finish(tracer)
        if master is not None:
            os.close(master)
    loads, bad = calls_after_load(prefix)
    assert loads == 1, "the init loaded its filter exactly once, under the tracer"
    assert bad == []


@needs_strace
@pytest.mark.parametrize("nnp", [True, False], ids=["nnp", "no-nnp"])
def test_run_nothing_follows_the_load(pyrunc, bundle, tmp_path, nnp):
    """strace -ff on the whole `run`: every process pyrunc starts is traced from its birth."""
    bundle.config["process"]["noNewPrivileges"] = nnp
    bundle.config["linux"]["seccomp"] = HARMLESS
    bundle.config["process"]["args"] = ["sh", "-c", "echo program-ran"]
    bundle.write()
    prefix = tmp_path / "trace"
    pyrunc.ids.add("r1")
    p = run_to_files(strace_cmd(prefix, *pyrunc.cmd("run", "r1")), cwd=bundle.path, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "program-ran" in p.stdout
    loads, bad = calls_after_load(prefix)
    assert loads == 1
    assert bad == []


@needs_strace
@pytest.mark.parametrize("terminal", [False, True], ids=["stdio", "console"])
@pytest.mark.parametrize("nnp", [True, False], ids=["nnp", "no-nnp"])
def test_exec_nothing_follows_the_load(pyrunc, bundle, tmp_path, nnp, terminal):
    bundle.config["process"]["noNewPrivileges"] = nnp
    bundle.config["linux"]["seccomp"] = HARMLESS
    bundle.config["process"]["args"] = ["sleep", "100"]
    pyrunc("run", "-d", "e1", bundle=bundle, check=True)
    prefix = tmp_path / "trace"
    if terminal:
        server, path = console_server(tmp_path)
        cmd = pyrunc.cmd("exec", "-d", "-t", "--console-socket", path, "e1", "sh", "-c", "echo program-ran")
        tracer = subprocess.Popen(strace_cmd(prefix, *cmd), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        master = take_master(server)
        server.close()
        try:
            assert b"program-ran" in read_until(master, b"program-ran")
        finally:
            os.close(master)
        try:
            _, err = tracer.communicate(timeout=60)
        finally:
            if tracer.poll() is None:
                tracer.kill()
                tracer.wait()
        assert tracer.returncode == 0, err
    else:
        p = run_to_files(strace_cmd(prefix, *pyrunc.cmd("exec", "e1", "sh", "-c", "echo program-ran")),
                         timeout=120)
        assert p.returncode == 0, p.stderr
        assert "program-ran" in p.stdout
    loads, bad = calls_after_load(prefix)
    assert loads == 1, "exec's process loaded the filter exactly once"
    assert bad == []


def test_calls_after_load_sees_a_late_call(tmp_path):
    """The checker itself: a close_range between the load and execve is reported."""
    (tmp_path / "t.1").write_text(
        'seccomp(SECCOMP_SET_MODE_FILTER, 0, {len=9, filter=0x1}) = 0\n'
        '--- SIGCHLD {si_signo=SIGCHLD} ---\n'
        'close_range(3, 4294967295, CLOSE_RANGE_CLOEXEC) = -1 EPERM (Operation not permitted)\n'
        'execve("/bin/sh", ["sh"], 0x7ffd /* 3 vars */) = 0\n')
    (tmp_path / "t.2").write_text(
        'prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, {len=9, filter=0x1}) = 0\n'
        'execve("/bin/sh", ["sh"], 0x7ffd /* 3 vars */) = 0\n')
    loads, bad = calls_after_load(tmp_path / "t")
    assert loads == 2
    assert len(bad) == 1 and "close_range" in bad[0]


@pytest.mark.parametrize("nnp", [True, False], ids=["nnp", "no-nnp"])
def test_profile_without_close_range(runtime, bundle, nnp):
    """Issue 12's reproduction: close_range denied; the program runs, for `run` and `exec`."""
    bundle.config["process"]["noNewPrivileges"] = nnp
    bundle.config["linux"]["seccomp"] = DENY_CLOSE_RANGE
    bundle.config["process"]["args"] = ["sh", "-c", "echo program-ran; exec sleep 100"]
    runtime("run", "-d", "c1", bundle=bundle, check=True)
    p = runtime("exec", "c1", "sh", "-c", "echo exec-ran")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "exec-ran\n"


# -- deny-by-default profiles older than the runtime's calls ---------------------------------

# Roughly what a deny-by-default profile of 2019 allows (Docker 19.03's default, by name): no
# clone3, close_range, openat2, faccessat2, epoll_pwait2, pidfd_*, process_madvise, ...
OLD_ALLOWED = """
accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32 clock_adjtime
clock_getres clock_gettime clock_nanosleep close connect copy_file_range creat dup dup2 dup3
epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_wait epoll_wait_old eventfd
eventfd2 execve execveat exit exit_group faccessat fadvise64 fallocate fanotify_mark fchdir fchmod
fchmodat fchown fchownat fcntl fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr
fstat fstatfs fsync ftruncate futex futimesat getcpu getcwd getdents getdents64 getegid geteuid
getgid getgroups getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom
getresgid getresuid getrlimit get_robust_list getrusage getsid getsockname getsockopt
get_thread_area gettid gettimeofday getuid getxattr inotify_add_watch inotify_init inotify_init1
inotify_rm_watch io_cancel ioctl io_destroy io_getevents ioprio_get ioprio_set io_setup io_submit
ipc kill lchown lgetxattr link linkat listen listxattr llistxattr lremovexattr lseek lsetxattr
lstat madvise memfd_create mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mprotect
mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedsend mq_unlink mremap msgctl msgget msgrcv
msgsnd msync munlock munlockall munmap nanosleep newfstatat open openat pause pipe pipe2 poll
ppoll prctl pread64 preadv prlimit64 pselect6 pwrite64 pwritev read readahead readlink readlinkat
readv recvfrom recvmmsg recvmsg remap_file_pages removexattr rename renameat renameat2
restart_syscall rmdir rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn
rt_sigsuspend rt_sigtimedwait rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam
sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval
sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select
semctl semget semop semtimedop sendfile sendmmsg sendmsg sendto setfsgid setfsuid setgid
setgroups setitimer setpgid setpriority setregid setresgid setresuid setreuid setrlimit
set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setxattr shmat shmctl
shmdt shmget shutdown sigaltstack signalfd signalfd4 socket socketpair splice stat statfs statx
symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete
timerfd_create timerfd_gettime timerfd_settime timer_getoverrun timer_gettime timer_settime times
tkill truncate umask uname unlink unlinkat utime utimensat utimes vfork vmsplice wait4 waitid
write writev arch_prctl modify_ldt clone
""".split()


def old_profile() -> dict:
    return {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [{"names": OLD_ALLOWED, "action": "SCMP_ACT_ALLOW"}]}


@pytest.mark.parametrize("nnp", [True, False], ids=["nnp", "no-nnp"])
@pytest.mark.parametrize("user", [0, 1000], ids=["root", "user"])
def test_old_deny_by_default_profile_runs_like_runc(pyrunc, runc, bundle, nnp, user):
    """The same program gives the same output, status and capability sets under both runtimes.

    The Cap* lines are part of the outcome: without noNewPrivileges pyrunc keeps CAP_SYS_ADMIN
    permitted until the load, and execve must leave the program exactly runc's sets."""
    bundle.config["process"]["noNewPrivileges"] = nnp
    bundle.config["process"]["user"] = {"uid": user, "gid": user}
    bundle.config["linux"]["seccomp"] = old_profile()
    bundle.config["process"]["args"] = [
        "sh", "-c", "echo ok; ls / >/dev/null && echo listed; grep -E '^(Cap|Seccomp|NoNewPrivs)' "
        "/proc/self/status; exec sh -c 'echo exec-ok'"]
    got = {}
    for rt in (pyrunc, runc):
        p = rt("run", "old1", bundle=bundle)
        assert p.returncode == 0, f"{rt.name}: {p.stderr}"
        assert p.stderr == "", rt.name
        got[rt.name] = p.stdout.splitlines()
    assert got["pyrunc"] == got["runc"]
    lines = got["pyrunc"]
    assert lines[:2] == ["ok", "listed"] and lines[-1] == "exec-ok"
    assert "Seccomp:\t2" in lines and f"NoNewPrivs:\t{int(nnp)}" in lines

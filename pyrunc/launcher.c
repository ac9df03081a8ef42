/*
 * The `pyrunc` command when the Makefile has a C compiler (pyrunc/launcher.py builds it).
 *
 * It execs the venv's interpreter on the launcher script exactly as the script's own
 * `#!PYTHON -IS` line would, with one difference: the interpreter is exec'd through a read-only
 * overlayfs of its directory, made with fsopen/fsmount and attached nowhere, so /proc/self/exe
 * of pyrunc and of every process it forks into a container is a file no one can write
 * (CVE-2019-5736; pyrunc/selfexe.py says why and what the alternatives cost). Doing it here
 * costs ~1 ms with its own exec (docs/PERFORMANCE.md); in Python it costs a second interpreter
 * start (~9 ms).
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
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_fsopen
#define SYS_fsopen 430
#define SYS_fsconfig 431
#define SYS_fsmount 432
#endif
#ifndef SYS_execveat
#define SYS_execveat 322
#endif
#define FSOPEN_CLOEXEC 0x1
#define FSCONFIG_SET_STRING 1
#define FSCONFIG_CMD_CREATE 6
#define FSMOUNT_CLOEXEC 0x1
#define MOUNT_ATTR_RDONLY 0x1
#define MOUNT_ATTR_NOSUID 0x2
#define MOUNT_ATTR_NODEV 0x4

extern char **environ;

/* An O_PATH fd of the interpreter seen through a detached read-only overlay, or -1. */
static int sealed_interpreter(void)
{
	int ctx, mnt, fd = -1;

	ctx = syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
	if (ctx < 0)
		return -1;
	if (syscall(SYS_fsconfig, ctx, FSCONFIG_SET_STRING, "lowerdir", PYRUNC_LOWERDIR, 0) < 0)
		goto out;
	syscall(SYS_fsconfig, ctx, FSCONFIG_SET_STRING, "xino", "off", 0); /* spares dmesg a warning */
	if (syscall(SYS_fsconfig, ctx, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		goto out;
	mnt = syscall(SYS_fsmount, ctx, FSMOUNT_CLOEXEC,
		      MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID);
	if (mnt < 0)
		goto out;
	fd = openat(mnt, PYRUNC_INTERPRETER_NAME, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	close(mnt);
out:
	close(ctx);
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
		if (!strcmp(argv[i], "create") || !strcmp(argv[i], "run") || !strcmp(argv[i], "exec"))
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	char *args[argc + 3];
	int fd = -1, i;

	args[0] = PYRUNC_PYTHON;
	args[1] = "-IS";
	args[2] = PYRUNC_SCRIPT;
	for (i = 1; i < argc; i++)
		args[i + 2] = argv[i];
	args[argc + 2] = NULL;

	if (enters_a_container(argc, argv))
		fd = sealed_interpreter();
	if (fd >= 0) {
		syscall(SYS_execveat, fd, "", args, environ, AT_EMPTY_PATH);
		close(fd);
	}
	execv(PYRUNC_PYTHON, args);
	fprintf(stderr, "pyrunc: exec %s: %s\n", PYRUNC_PYTHON, strerror(errno));
	return 127;
}

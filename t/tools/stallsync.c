/*
 * t/tools/stallsync.so: an LD_PRELOAD shim that stalls fdatasync(2) and
 * fsync(2) on demand, so that a test can hold a commit's fsync open and
 * look at what the server sends meanwhile (t/durability.bats).
 *
 * Only syncs of Berkeley DB's log files (log.NNNNNNNNNN) are touched, so
 * that a checkpoint's syncs of the database files stay out of the test.
 * While the file named by $MYCHAT_STALL_SYNC exists, a log sync first
 * creates "$MYCHAT_STALL_SYNC.on" (the test waits for it: a sync has
 * begun and is held), then waits until the file is removed, then syncs.
 * Without the variable, or without the file, it syncs at once. While
 * "$MYCHAT_STALL_SYNC.fail" exists, a log sync fails with EIO instead, as
 * a dying disk's would. Not installed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Hold while the file exists; then 1 if the sync is to fail. */
static int
stall(void)
{
	const char	*path = getenv("MYCHAT_STALL_SYNC");
	char		 other[4096];
	struct timespec	 ts = { 0, 5 * 1000 * 1000 };
	int		 fd;

	if (path == NULL)
		return (0);
	if (access(path, F_OK) == 0) {
		if (snprintf(other, sizeof(other), "%s.on", path) <
		    (int)sizeof(other) && (fd = open(other, O_WRONLY |
		    O_CREAT | O_CLOEXEC, 0644)) != -1)
			close(fd);
		while (access(path, F_OK) == 0)
			nanosleep(&ts, NULL);
	}
	return (snprintf(other, sizeof(other), "%s.fail", path) <
	    (int)sizeof(other) && access(other, F_OK) == 0);
}

/* Is fd one of Berkeley DB's log files? */
static int
is_log(int fd)
{
	char		 link[64], path[4096];
	const char	*base;
	ssize_t		 n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((n = readlink(link, path, sizeof(path) - 1)) == -1)
		return (0);
	path[n] = '\0';
	base = strrchr(path, '/');
	return (strncmp(base == NULL ? path : base + 1, "log.", 4) == 0);
}

/* Stall if asked, then fail or call the libc function name. */
static int
sync_next(const char *name, int fd)
{
	int	(*real)(int);

	if (is_log(fd) && stall()) {
		errno = EIO;
		return (-1);
	}
	if ((real = (int (*)(int))dlsym(RTLD_NEXT, name)) == NULL)
		return (-1);
	return (real(fd));
}

int
fdatasync(int fd)
{
	return (sync_next("fdatasync", fd));
}

int
fsync(int fd)
{
	return (sync_next("fsync", fd));
}

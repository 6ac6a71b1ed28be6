/*
 * client-log.c: the client's own log of every message sent and received:
 * $XDG_DATA_HOME/mychat/<account>/<peer>.log (or ~/.local/share/mychat/),
 * one plain-text line per message:
 *
 *	<UTC time> #<id> <from>: <text, escaped as on the wire>
 *
 * Names are lower-cased (accounts are case-insensitive); a name that starts
 * with a dot gets it written as "%2e" so that "." or ".." cannot climb out
 * of the directory. A failure to log is reported once and not fatal.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "xmalloc.h"

static char	*clog_base;
static int	 clog_warned;

/* Decide where the logs go. */
void
clog_init(const char *override)
{
	const char	*xdg, *home;

	free(clog_base);
	clog_base = NULL;
	if (override != NULL) {
		clog_base = xstrdup(override);
		return;
	}
	if ((xdg = getenv("XDG_DATA_HOME")) != NULL && xdg[0] == '/') {
		if (asprintf(&clog_base, "%s/mychat", xdg) == -1)
			clog_base = NULL;
	} else if ((home = getenv("HOME")) != NULL && home[0] != '\0') {
		if (asprintf(&clog_base, "%s/.local/share/mychat", home) == -1)
			clog_base = NULL;
	}
}

/* The directory holding the logs, or NULL when there is none. */
const char *
clog_dir(void)
{
	return (clog_base);
}

/* A name as a file name: lower case, no leading dot. */
static void
clog_name(char *dst, size_t size, const char *name)
{
	char	low[PROTO_NAME_MAX + 1];

	proto_lower(low, name, sizeof(low));
	if (low[0] == '.')
		snprintf(dst, size, "%%2e%s", low + 1);
	else
		snprintf(dst, size, "%s", low);
}

/* mkdir -p, mode 0700. */
static int
clog_mkdirs(char *path)
{
	char	*p;

	for (p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) == -1 && errno != EEXIST) {
			*p = '/';
			return (-1);
		}
		*p = '/';
	}
	if (mkdir(path, 0700) == -1 && errno != EEXIST)
		return (-1);
	return (0);
}

/* Append one message to <account>/<peer>.log. */
void
clog_message(const char *account, const char *peer, const char *time,
    uint64_t id, const char *from, const char *text)
{
	char	 a[PROTO_NAME_MAX + 4], p[PROTO_NAME_MAX + 4];
	char	*dir = NULL, *path = NULL, *line = NULL;
	int	 fd, len;

	if (clog_base == NULL)
		return;
	if (!proto_valid_name(account) || !proto_valid_name(peer) ||
	    !proto_valid_name(from))
		return;
	clog_name(a, sizeof(a), account);
	clog_name(p, sizeof(p), peer);
	if (asprintf(&dir, "%s/%s", clog_base, a) == -1) {
		dir = NULL;
		goto fail;
	}
	if (clog_mkdirs(dir) == -1)
		goto fail;
	if (asprintf(&path, "%s/%s.log", dir, p) == -1) {
		path = NULL;
		goto fail;
	}
	len = asprintf(&line, "%s #%llu %s: %s\n", time,
	    (unsigned long long)id, from, text);
	if (len == -1) {
		line = NULL;
		goto fail;
	}
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
	    0600)) == -1)
		goto fail;
	if (write(fd, line, (size_t)len) != len) {
		close(fd);
		goto fail;
	}
	close(fd);
	free(line);
	free(path);
	free(dir);
	return;
fail:
	if (!clog_warned) {
		clog_warned = 1;
		fprintf(stderr, "mychat: cannot write the local log under "
		    "%s: %s\n", clog_base, strerror(errno));
	}
	free(line);
	free(path);
	free(dir);
}

/* log.c: the daemon's log: stderr, syslog or an appended file. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* The log owns its own state: where lines go and how much is said. */
static struct {
	const char	*ident;
	int		 target;
	int		 verbose;
	int		 facility;
	char		*path;
	FILE		*fp;
	/*
	 * Event lines (one per message at full speed) are gathered here and
	 * written by log_flush, once per commit group and once a second;
	 * warnings and errors flush at once.
	 */
	char		 buf[LOG_BUF_SIZE];
	size_t		 len;
	/*
	 * The start of a line, "<time> <ident> <level>: ", as last built:
	 * the lines of one millisecond and level share it.
	 */
	time_t		 pre_sec;
	long		 pre_ms;
	const char	*pre_level;
	char		 pre[128];
	size_t		 prelen;
} lg = { "mychatd", LOG_TO_STDERR, 0, LOG_DAEMON, NULL, NULL, { 0 }, 0,
    -1, 0, NULL, { 0 }, 0 };

/* Set the identity and verbosity; logging goes to stderr until log_open. */
void
log_init(const char *ident, int verbose, int facility)
{
	static int	registered;

	lg.ident = ident;
	lg.pre_level = NULL;	/* the line start names the ident */
	lg.verbose = verbose;
	lg.facility = facility;
	if (!registered && atexit(log_flush) == 0)
		registered = 1;
}

/* Write out the gathered lines. */
void
log_flush(void)
{
	FILE	*fp;

	if (lg.len == 0)
		return;
	fp = lg.target == LOG_TO_FILE && lg.fp != NULL ? lg.fp : stderr;
	fwrite(lg.buf, 1, lg.len, fp);
	fflush(fp);
	lg.len = 0;
}

/* Choose where log lines go. Returns -1 when a file cannot be opened. */
int
log_open(int target, const char *path, int facility)
{
	FILE	*fp = NULL;

	log_flush();
	if (target == LOG_TO_FILE) {
		if ((fp = fopen(path, "a")) == NULL)
			return (-1);
		setvbuf(fp, NULL, _IOLBF, 0);
	}
	if (lg.fp != NULL)
		fclose(lg.fp);
	free(lg.path);
	lg.path = NULL;
	lg.fp = fp;
	if (path != NULL && (lg.path = strdup(path)) == NULL) {
		if (fp != NULL)
			fclose(fp);
		lg.fp = NULL;
		target = LOG_TO_STDERR;
	}
	if (lg.target == LOG_TO_SYSLOG && target != LOG_TO_SYSLOG)
		closelog();
	lg.target = target;
	lg.facility = facility;
	if (target == LOG_TO_SYSLOG)
		openlog(lg.ident, LOG_PID | LOG_NDELAY, facility);
	return (0);
}

/* Reopen a log file, for logrotate (SIGHUP). */
void
log_reopen(void)
{
	FILE	*fp;

	if (lg.target != LOG_TO_FILE || lg.path == NULL)
		return;
	if ((fp = fopen(lg.path, "a")) == NULL)
		return;
	setvbuf(fp, NULL, _IOLBF, 0);
	log_flush();
	fclose(lg.fp);
	lg.fp = fp;
}

void
log_setverbose(int v)
{
	lg.verbose = v;
}

int
log_getverbose(void)
{
	return (lg.verbose);
}

/*
 * Start a line in lg.buf: "<time>.<ms>Z <ident> <level>: ". Returns where
 * the message goes; LOG_LINE_MAX bytes and a newline fit after it.
 */
static char *
log_begin(const char *level, size_t *np)
{
	struct timespec	 now;
	struct tm	 tm;
	size_t		 n;
	long		 ms;
	char		*p;

	clock_gettime(CLOCK_REALTIME, &now);
	ms = now.tv_nsec / 1000000L;
	if (now.tv_sec != lg.pre_sec || ms != lg.pre_ms ||
	    level != lg.pre_level) {
		gmtime_r(&now.tv_sec, &tm);
		n = strftime(lg.pre, sizeof(lg.pre), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(lg.pre + n, sizeof(lg.pre) - n, ".%03ldZ %s %s: ", ms,
		    lg.ident, level);
		lg.prelen = strlen(lg.pre);
		lg.pre_sec = now.tv_sec;
		lg.pre_ms = ms;
		lg.pre_level = level;
	}
	if (lg.len + lg.prelen + LOG_LINE_MAX + 1 > sizeof(lg.buf))
		log_flush();
	p = lg.buf + lg.len;
	memcpy(p, lg.pre, lg.prelen);
	*np = lg.prelen;
	return (p);
}

/* End the line begun at p, whose length is now n (newline not counted). */
static void
log_end(char *p, size_t n, int later)
{
	p[n++] = '\n';
	lg.len += n;
	if (!later)
		log_flush();
}

/*
 * Write one line at a priority, with a timestamp outside syslog. Lines are
 * gathered in lg.buf; unless later is set they are written out at once.
 */
static void
vlog(int pri, const char *level, int later, const char *fmt, va_list ap)
{
	char		 msg[LOG_LINE_MAX], *p;
	size_t		 n;
	int		 m;

	if (lg.target == LOG_TO_SYSLOG) {
		vsnprintf(msg, sizeof(msg), fmt, ap);
		syslog(pri, "%s", msg);
		return;
	}
	p = log_begin(level, &n);
	if ((m = vsnprintf(p + n, LOG_LINE_MAX, fmt, ap)) < 0)
		m = 0;
	n += (size_t)m < LOG_LINE_MAX ? (size_t)m : LOG_LINE_MAX - 1;
	log_end(p, n, later);
}

/*
 * An event line formatted by the caller (one per message on a busy
 * server, where printf showed in the profile).
 */
void
log_event_line(const char *msg, size_t len)
{
	char	*p;
	size_t	 n;

	if (len >= LOG_LINE_MAX)
		len = LOG_LINE_MAX - 1;
	if (lg.target == LOG_TO_SYSLOG) {
		syslog(LOG_NOTICE, "%.*s", (int)len, msg);
		return;
	}
	p = log_begin("event", &n);
	memcpy(p + n, msg, len);
	log_end(p, n + len, 1);
}

void
log_warn(const char *fmt, ...)
{
	char	 buf[1024];
	int	 saved = errno;
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_warnx("%s: %s", buf, strerror(saved));
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog(LOG_WARNING, "warning", 0, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog(LOG_INFO, "info", 0, fmt, ap);
	va_end(ap);
}

/*
 * Events (registration, login, message metadata) are always logged; they
 * reach the file or stderr at the next log_flush (the end of the commit
 * group, or the once-a-second housekeeping), or with the next warning.
 */
void
log_event(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog(LOG_NOTICE, "event", 1, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	ap;

	if (lg.verbose < 1)
		return;
	va_start(ap, fmt);
	vlog(LOG_DEBUG, "debug", 0, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	char	 buf[1024];
	int	 saved = errno;
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_warnx("fatal: %s: %s", buf, strerror(saved));
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, "fatal", 0, fmt, ap);
	va_end(ap);
	exit(1);
}

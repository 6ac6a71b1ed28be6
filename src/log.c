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
} lg = { "mychatd", LOG_TO_STDERR, 0, LOG_DAEMON, NULL, NULL };

/* Set the identity and verbosity; logging goes to stderr until log_open. */
void
log_init(const char *ident, int verbose, int facility)
{
	lg.ident = ident;
	lg.verbose = verbose;
	lg.facility = facility;
}

/* Choose where log lines go. Returns -1 when a file cannot be opened. */
int
log_open(int target, const char *path, int facility)
{
	FILE	*fp = NULL;

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

/* Write one line at a priority, with a timestamp outside syslog. */
static void
vlog(int pri, const char *level, const char *fmt, va_list ap)
{
	char		 msg[2048], ts[64];
	struct timespec	 now;
	struct tm	 tm;
	FILE		*fp;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (lg.target == LOG_TO_SYSLOG) {
		syslog(pri, "%s", msg);
		return;
	}
	fp = lg.target == LOG_TO_FILE ? lg.fp : stderr;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(fp, "%s.%03ldZ %s %s: %s\n", ts, now.tv_nsec / 1000000L,
	    lg.ident, level, msg);
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
	vlog(LOG_WARNING, "warning", fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog(LOG_INFO, "info", fmt, ap);
	va_end(ap);
}

/* Events (registration, login, message metadata) are always logged. */
void
log_event(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog(LOG_NOTICE, "event", fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	ap;

	if (lg.verbose < 1)
		return;
	va_start(ap, fmt);
	vlog(LOG_DEBUG, "debug", fmt, ap);
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
	vlog(LOG_CRIT, "fatal", fmt, ap);
	va_end(ap);
	exit(1);
}

/* log.h: OpenBSD-style logging: stderr in the foreground, syslog or a file. */
#ifndef MYCHAT_LOG_H
#define MYCHAT_LOG_H

#include <stdarg.h>

#define LOG_TO_STDERR	0
#define LOG_TO_SYSLOG	1
#define LOG_TO_FILE	2

#define LOG_BUF_SIZE	(64 * 1024)	/* gathered event lines */
#define LOG_LINE_MAX	2048		/* a message, without the prefix */

void	log_init(const char *, int, int);
int	log_open(int, const char *, int);
void	log_reopen(void);
void	log_flush(void);
void	log_setverbose(int);
int	log_getverbose(void);
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_event(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_event_line(const char *, size_t);
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif

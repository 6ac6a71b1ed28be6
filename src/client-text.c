/*
 * client-text.c: text helpers of the client: the protocol's escape for
 * multi-line text, making server text safe for a terminal, retry tokens,
 * splitting a MSG push, and local time for display.
 */
#include "config.h"

#include <sys/random.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "xmalloc.h"

/*
 * Escape text for the wire (doc/protocol.md, MSG): a newline becomes the
 * two characters "\n" and a backslash becomes "\\". A CR right before a
 * newline (a CRLF file) is dropped. The result is a new string.
 */
char *
text_escape(const char *s, size_t len)
{
	char	*out, *p;
	size_t	 i;

	out = p = xmalloc(len * 2 + 1);
	for (i = 0; i < len; i++) {
		if (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n')
			continue;
		if (s[i] == '\n') {
			*p++ = '\\';
			*p++ = 'n';
		} else if (s[i] == '\\') {
			*p++ = '\\';
			*p++ = '\\';
		} else
			*p++ = s[i];
	}
	*p = '\0';
	return (out);
}

/*
 * Undo text_escape: "\n" is a newline, "\\" a backslash; a backslash
 * before anything else is kept as it is. The result is a new string.
 */
char *
text_unescape(const char *s)
{
	char	*out, *p;

	out = p = xmalloc(strlen(s) + 1);
	while (*s != '\0') {
		if (s[0] == '\\' && s[1] == 'n') {
			*p++ = '\n';
			s += 2;
		} else if (s[0] == '\\' && s[1] == '\\') {
			*p++ = '\\';
			s += 2;
		} else
			*p++ = *s++;
	}
	*p = '\0';
	return (out);
}

/*
 * Make text from the network safe to print on a terminal: control
 * characters, C0 and C1 (escape sequences!), become '?', a TAB becomes a
 * space.
 * Newlines are kept: they come only from text_unescape.
 */
void
text_sanitize(char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '\t')
			*s = ' ';
		else if ((c < 0x20 && c != '\n') || c == 0x7f)
			*s = '?';
		else if (c == 0xc2 && (unsigned char)s[1] >= 0x80 &&
		    (unsigned char)s[1] <= 0x9f) {
			/* U+0080-U+009F: C1 controls (CSI is U+009B). */
			s[0] = '?';
			s[1] = '?';
			s++;
		}
	}
}

/* A fresh random retry token for "@<token> MSG". */
void
text_token(char *buf, size_t size)
{
	static const char	 hex[] = "0123456789abcdef";
	unsigned char		 rnd[CLIENT_TOKEN_LEN / 2];
	size_t			 i, n = 0;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		/* Not secret, only unique: time and pid will do. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(buf, size, "t%lld.%ld.%ld", (long long)ts.tv_sec,
		    ts.tv_nsec, (long)getpid());
		return;
	}
	for (i = 0; i < sizeof(rnd) && n + 2 < size; i++) {
		buf[n++] = hex[rnd[i] >> 4];
		buf[n++] = hex[rnd[i] & 0xf];
	}
	buf[n] = '\0';
}

/*
 * Split "MSG <id> <from> <time> <text>" in place. Returns -1 if the line
 * is not a well-formed MSG push.
 */
int
text_parse_push(char *line, struct cpush *m)
{
	char	*f[4], *p = line;
	int	 i;

	for (i = 0; i < 4; i++) {
		f[i] = p;
		if ((p = strchr(p, ' ')) == NULL)
			return (-1);
		*p++ = '\0';
	}
	if (strcmp(f[0], "MSG") != 0 || proto_parse_id(f[1], &m->id) == -1 ||
	    !proto_valid_name(f[2]) || *p == '\0')
		return (-1);
	m->from = f[2];
	m->time = f[3];
	m->text = p;
	return (0);
}

/*
 * The local time of a protocol timestamp as "HH:MM", or "YYYY-MM-DD HH:MM"
 * when it is not today. Unparsable input is shown as it came.
 */
void
text_local_hm(const char *iso, char *buf, size_t size)
{
	struct tm	tm, now_tm;
	time_t		t, now;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon,
	    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6) {
		snprintf(buf, size, "%.24s", iso);
		text_sanitize(buf);
		return;
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = timegm(&tm);
	now = time(NULL);
	localtime_r(&t, &tm);
	localtime_r(&now, &now_tm);
	if (tm.tm_year == now_tm.tm_year && tm.tm_yday == now_tm.tm_yday)
		strftime(buf, size, "%H:%M", &tm);
	else
		strftime(buf, size, "%Y-%m-%d %H:%M", &tm);
}

/* The exit code for a refusing reply code (doc/mychat.1). */
int
text_reply_exit(int code)
{
	switch (code) {
	case RPL_AUTH:
		return (EX_MC_AUTH);
	case RPL_NOTFOUND:
		return (EX_MC_NOUSER);
	case RPL_CLOSING:
	case RPL_SLOWDOWN:
	case RPL_TRYLATER:
	case RPL_FULL:
		return (EX_MC_TEMP);
	default:
		return (EX_MC_REFUSED);
	}
}

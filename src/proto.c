/*
 * proto.c: the pieces of the wire protocol that the server, the client and
 * the benchmark share: tokenizing a line, validating names, tokens and
 * message text, message ids and timestamps. Pure functions, unit-tested in
 * t/unit/test_proto.c.
 */
#include "config.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "proto.h"

#define BYTES_1	0x0101010101010101ULL
#define BYTES_80	0x8080808080808080ULL

/*
 * Whether the 8 bytes at p are all printable ASCII (0x20-0x7e), a word at
 * a time (the bit tricks of "Bit Twiddling Hacks": a byte < n, a zero
 * byte). Lines are checked byte by byte twice otherwise, which showed in
 * the relay's profile. A 0 sends the caller to its byte loop, which
 * decides.
 */
static int
proto_word_printable(const char *p)
{
	uint64_t	x, y;

	memcpy(&x, p, 8);
	if (x & BYTES_80)
		return (0);
	if (((x - BYTES_1 * 0x20) & ~x & BYTES_80) != 0)
		return (0);		/* a byte below 0x20 */
	y = x ^ (BYTES_1 * 0x7f);
	if (((y - BYTES_1) & ~y & BYTES_80) != 0)
		return (0);		/* a 0x7f */
	return (1);
}

/*
 * Does the command line hold only bytes a command may hold? NUL and the
 * ASCII controls are refused, TAB excepted (MSG text may hold it).
 */
int
proto_line_clean(const char *line, size_t len)
{
	size_t	i = 0;

	while (i < len) {
		if (len - i >= 8 && proto_word_printable(line + i)) {
			i += 8;
			continue;
		}
		unsigned char c = (unsigned char)line[i++];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return (0);
	}
	return (1);
}

/*
 * Split a clean, NUL-terminated line in place into an optional "@tag" and a
 * verb; the rest of the line after the verb and one space is left verbatim
 * (MSG wants it as it came). Returns 0 for an empty line, 1 otherwise.
 */
int
proto_parse(char *line, size_t len, struct proto_cmd *cmd)
{
	char	*p = line, *end = line + len;

	memset(cmd, 0, sizeof(*cmd));
	while (p < end && *p == ' ')
		p++;
	if (p == end)
		return (0);
	if (*p == '@') {
		cmd->tag = ++p;
		while (p < end && *p != ' ')
			p++;
		if (p < end)
			*p++ = '\0';
		while (p < end && *p == ' ')
			p++;
	}
	cmd->verb = p;
	while (p < end && *p != ' ')
		p++;
	if (p < end)
		*p++ = '\0';
	cmd->rest = p;
	cmd->restlen = (size_t)(end - p);
	return (1);
}

/*
 * Split the rest of a parsed line in place into space-separated arguments.
 * Returns -1 when there are more than PROTO_MAX_ARGS.
 */
int
proto_split(struct proto_cmd *cmd)
{
	char	*p = (char *)cmd->rest, *end = p + cmd->restlen;

	cmd->argc = 0;
	while (p < end) {
		while (p < end && *p == ' ')
			*p++ = '\0';
		if (p == end)
			break;
		if (cmd->argc == PROTO_MAX_ARGS)
			return (-1);
		cmd->argv[cmd->argc++] = p;
		while (p < end && *p != ' ')
			p++;
	}
	return (0);
}

/* A name is 1-32 characters of [A-Za-z0-9_.-]. */
int
proto_valid_name(const char *s)
{
	size_t	n = 0;

	for (; *s != '\0' && *s != ' '; s++, n++) {
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.' &&
		    *s != '-')
			return (0);
		if ((unsigned char)*s > 0x7f)
			return (0);
	}
	return (n >= 1 && n <= PROTO_NAME_MAX);
}

/* A retry token is 1-64 characters of [A-Za-z0-9._:-]. */
int
proto_valid_token(const char *s)
{
	size_t	n = 0;

	for (; *s != '\0' && *s != ' '; s++, n++) {
		unsigned char c = (unsigned char)*s;
		if (c > 0x7f || (!isalnum(c) && c != '_' && c != '.' &&
		    c != ':' && c != '-'))
			return (0);
	}
	return (n >= 1 && n <= PROTO_TOKEN_MAX);
}

/*
 * Message text: well-formed UTF-8 (no overlong forms, no surrogates, at
 * most U+10FFFF) without ASCII control characters other than TAB.
 */
int
proto_valid_text(const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	const unsigned char	*end = p + len;
	uint32_t		 cp;
	int			 n, i;

	while (p < end) {
		unsigned char c = *p;
		if (end - p >= 8 && proto_word_printable((const char *)p)) {
			p += 8;
			continue;
		}
		if (c < 0x80) {
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return (0);
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else
			return (0);
		if (end - p <= n)
			return (0);
		for (i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return (0);
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return (0);
		p += n + 1;
	}
	return (1);
}

/* Parse a decimal id (0 to 2^63-1; SYNC 0 is valid); stops at a space or NUL. */
int
proto_parse_id(const char *s, uint64_t *id)
{
	uint64_t	v = 0;
	int		n = 0;

	for (; *s >= '0' && *s <= '9'; s++, n++) {
		if (v > (UINT64_C(0x7fffffffffffffff) - (uint64_t)(*s - '0')) / 10)
			return (-1);
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (n == 0 || (*s != '\0' && *s != ' '))
		return (-1);
	*id = v;
	return (0);
}

/* Parse a count from 1 to max; stops at a space or NUL. */
int
proto_parse_count(const char *s, unsigned int max, unsigned int *out)
{
	uint64_t	v;

	if (proto_parse_id(s, &v) == -1 || v == 0 || v > max)
		return (-1);
	*out = (unsigned int)v;
	return (0);
}

/* Lower-case a name into dst (size bytes, always NUL-terminated). */
void
proto_lower(char *dst, const char *src, size_t size)
{
	size_t	i;

	/* ASCII only, not tolower(3): names are ASCII, and it is per byte */
	for (i = 0; i + 1 < size && src[i] != '\0' && src[i] != ' '; i++)
		dst[i] = src[i] >= 'A' && src[i] <= 'Z' ? src[i] + 32 : src[i];
	dst[i] = '\0';
}

/*
 * Copy src into dst of size bytes, cut if need be, NUL-terminated; the
 * length copied. For names already checked: snprintf showed in profiles.
 */
size_t
proto_copy(char *dst, const char *src, size_t size)
{
	size_t	n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
	return (n);
}

/*
 * FNV-1a of a NUL-terminated string, going on from h (PROTO_FNV_BASIS to
 * start): the hash of the server's name tables.
 */
uint32_t
proto_fnv1a(uint32_t h, const char *s)
{
	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return (h);
}

/* Milliseconds since the epoch, UTC. */
int64_t
proto_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* Format milliseconds as ISO 8601 UTC; buf holds PROTO_TIME_LEN + 1. */
void
proto_format_time(int64_t ms, char *buf)
{
	int64_t		 secs, days, rem, z, era, doe, yoe, y, doy, mp, d, m;
	int		 f[6], i, msec;
	char		*p = buf;

	/* the civil calendar from a day count (H. Hinnant's days_from_civil
	 * inverted): no gmtime/strftime per message on the hot path */
	secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
	msec = (int)(ms - secs * 1000);
	days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
	rem = secs - days * 86400;
	z = days + 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	if (y < 0 || y > 9999) {
		/* out of the format's range: say so rather than overflow */
		memcpy(buf, "0000-00-00T00:00:00.000Z", PROTO_TIME_LEN + 1);
		return;
	}
	f[0] = (int)m;
	f[1] = (int)d;
	f[2] = (int)(rem / 3600);
	f[3] = (int)(rem / 60 % 60);
	f[4] = (int)(rem % 60);
	*p++ = (char)('0' + y / 1000);
	*p++ = (char)('0' + y / 100 % 10);
	*p++ = (char)('0' + y / 10 % 10);
	*p++ = (char)('0' + y % 10);
	for (i = 0; i < 5; i++) {
		*p++ = "--T::"[i];
		*p++ = (char)('0' + f[i] / 10);
		*p++ = (char)('0' + f[i] % 10);
	}
	*p++ = '.';
	*p++ = (char)('0' + msec / 100);
	*p++ = (char)('0' + msec / 10 % 10);
	*p++ = (char)('0' + msec % 10);
	*p++ = 'Z';
	*p = '\0';
}

/* Write v in decimal (no NUL); returns the number of digits, at most 20. */
size_t
proto_fmt_u64(char *buf, uint64_t v)
{
	static const char	pairs[201] =
	    "00010203040506070809101112131415161718192021222324"
	    "25262728293031323334353637383940414243444546474849"
	    "50515253545556575859606162636465666768697071727374"
	    "75767778798081828384858687888990919293949596979899";
	uint64_t		t = v;
	size_t			n = 1, i;

	/* the length first, then the digits from the end, two at a time */
	for (;;) {
		if (t < 10)
			break;
		if (t < 100) {
			n += 1;
			break;
		}
		if (t < 1000) {
			n += 2;
			break;
		}
		if (t < 10000) {
			n += 3;
			break;
		}
		t /= 10000;
		n += 4;
	}
	i = n;
	while (v >= 100) {
		i -= 2;
		memcpy(buf + i, pairs + (v % 100) * 2, 2);
		v /= 100;
	}
	if (v >= 10) {
		i -= 2;
		memcpy(buf + i, pairs + v * 2, 2);
	} else
		buf[--i] = (char)('0' + v);
	return (n);
}

/*
 * Read the code of a reply line: "NNN text" or "NNN-text". Returns 1 for
 * the last line of a reply, 0 for a continuation line, -1 when the line is
 * not a reply (a push, or garbage).
 */
int
proto_reply_code(const char *line, size_t len, int *code)
{
	if (len < 3 || !isdigit((unsigned char)line[0]) ||
	    !isdigit((unsigned char)line[1]) || !isdigit((unsigned char)line[2]))
		return (-1);
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return (-1);
	*code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	return (len > 3 && line[3] == '-' ? 0 : 1);
}

/*
 * test_proto.c: unit tests of src/proto.c, the protocol code shared by the
 * server, the client and the benchmark. Prints TAP (see tap.h).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto.h"
#include "tap.h"

static char	linebuf[1024];

/* Copy s into a writable, NUL-terminated buffer and parse it. */
static int
parse(const char *s, struct proto_cmd *cmd)
{
	size_t	len = strlen(s);

	memcpy(linebuf, s, len + 1);
	return (proto_parse(linebuf, len, cmd));
}

/* The rest of a parsed line as a string (it is NUL-terminated in place). */
static const char *
rest(const struct proto_cmd *cmd)
{
	return (cmd->rest);
}

/* proto_parse: empty lines, verbs, tags, the verbatim rest. */
static void
test_parse(void)
{
	struct proto_cmd	cmd;

	tap_is_int(parse("", &cmd), 0, "parse: empty line is empty");
	tap_is_int(parse("    ", &cmd), 0, "parse: spaces-only line is empty");

	tap_is_int(parse("PING", &cmd), 1, "parse: PING is a command");
	tap_is_str(cmd.verb, "PING", "parse: verb PING");
	tap_ok(cmd.tag == NULL, "parse: no tag");
	tap_is_int(cmd.restlen, 0, "parse: PING has an empty rest");

	parse("  ping   tok", &cmd);
	tap_is_str(cmd.verb, "ping", "parse: leading spaces skipped, case kept");
	tap_is_str(rest(&cmd), "  tok", "parse: rest keeps spaces after the first");

	parse("MSG  hello  world ", &cmd);
	tap_is_str(cmd.verb, "MSG", "parse: verb MSG");
	tap_is_str(rest(&cmd), " hello  world ",
	    "parse: MSG rest is verbatim after one space");
	tap_is_int(cmd.restlen, strlen(" hello  world "), "parse: restlen");

	parse("MSG a\tb", &cmd);
	tap_is_str(rest(&cmd), "a\tb", "parse: TAB kept in the rest");

	parse("@tok-1 MSG hi there", &cmd);
	tap_is_str(cmd.tag, "tok-1", "parse: tag without '@'");
	tap_is_str(cmd.verb, "MSG", "parse: verb after tag");
	tap_is_str(rest(&cmd), "hi there", "parse: rest after tag and verb");

	parse("@t   MSG x", &cmd);
	tap_is_str(cmd.tag, "t", "parse: tag followed by several spaces");
	tap_is_str(cmd.verb, "MSG", "parse: verb after several spaces");

	tap_is_int(parse("@lonely", &cmd), 1, "parse: tag alone is a line");
	tap_is_str(cmd.tag, "lonely", "parse: lone tag");
	tap_is_str(cmd.verb, "", "parse: lone tag has an empty verb");
}

/* proto_split: argument splitting and the argument limit. */
static void
test_split(void)
{
	struct proto_cmd	cmd;
	char			buf[256];
	int			i;

	parse("REGISTER alice  secret ", &cmd);
	tap_is_int(proto_split(&cmd), 0, "split: ok");
	tap_is_int(cmd.argc, 2, "split: two arguments, extra spaces ignored");
	tap_is_str(cmd.argv[0], "alice", "split: argv[0]");
	tap_is_str(cmd.argv[1], "secret", "split: argv[1]");

	parse("WHO", &cmd);
	proto_split(&cmd);
	tap_is_int(cmd.argc, 0, "split: no arguments");

	parse("WHO    ", &cmd);
	proto_split(&cmd);
	tap_is_int(cmd.argc, 0, "split: only spaces after the verb");

	strcpy(buf, "X");
	for (i = 0; i < PROTO_MAX_ARGS; i++)
		strcat(buf, " a");
	parse(buf, &cmd);
	tap_is_int(proto_split(&cmd), 0, "split: PROTO_MAX_ARGS arguments ok");
	tap_is_int(cmd.argc, PROTO_MAX_ARGS, "split: argc is PROTO_MAX_ARGS");
	strcat(buf, " b");
	parse(buf, &cmd);
	tap_is_int(proto_split(&cmd), -1, "split: one argument too many is -1");
}

/* proto_valid_name: 1-32 of [A-Za-z0-9_.-]. */
static void
test_name(void)
{
	char	buf[64];

	tap_ok(proto_valid_name("a"), "name: one character");
	tap_ok(proto_valid_name("Alice_.-9"), "name: all allowed classes");
	memset(buf, 'x', 32);
	buf[32] = '\0';
	tap_ok(proto_valid_name(buf), "name: 32 characters");
	buf[32] = 'x';
	buf[33] = '\0';
	tap_ok(!proto_valid_name(buf), "name: 33 characters refused");
	tap_ok(!proto_valid_name(""), "name: empty refused");
	tap_ok(!proto_valid_name("al!ce"), "name: '!' refused");
	tap_ok(!proto_valid_name("al/ce"), "name: '/' refused");
	tap_ok(!proto_valid_name("al:ce"), "name: ':' refused");
	tap_ok(!proto_valid_name("@alice"), "name: '@' refused");
	tap_ok(!proto_valid_name("\xc3\xa9t\xc3\xa9"), "name: UTF-8 refused");
	tap_ok(!proto_valid_name("a\tb"), "name: TAB refused");
	tap_ok(proto_valid_name("bob secret"),
	    "name: stops at a space (argument in place)");
}

/* proto_valid_token: 1-64 of [A-Za-z0-9._:-]. */
static void
test_token(void)
{
	char	buf[80];

	tap_ok(proto_valid_token("a"), "token: one character");
	tap_ok(proto_valid_token("2026-11-28T21:16:02.123Z_x"),
	    "token: all allowed classes");
	memset(buf, 'k', 64);
	buf[64] = '\0';
	tap_ok(proto_valid_token(buf), "token: 64 characters");
	buf[64] = 'k';
	buf[65] = '\0';
	tap_ok(!proto_valid_token(buf), "token: 65 characters refused");
	tap_ok(!proto_valid_token(""), "token: empty refused");
	tap_ok(!proto_valid_token("a/b"), "token: '/' refused");
	tap_ok(!proto_valid_token("a@b"), "token: '@' refused");
	tap_ok(!proto_valid_token("\xc3\xa9"), "token: UTF-8 refused");
}

/* Check proto_valid_text on a byte string of explicit length. */
static void
text(const char *s, size_t len, int want, const char *desc)
{
	tap_is_int(proto_valid_text(s, len), want, "text: %s", desc);
}

#define TEXT(lit, want, desc) \
	tap_is_int(proto_valid_text((lit), sizeof(lit) - 1), (want), "text: %s", \
	    (desc))

/* proto_valid_text: UTF-8 well-formedness and control characters. */
static void
test_text(void)
{
	char	*big;
	size_t	 i;

	TEXT("", 1, "empty text is well-formed");
	TEXT("hello, world", 1, "ASCII");
	TEXT("a\tb", 1, "TAB allowed");
	TEXT("back\\nslash \\\\", 1, "escaped newline and backslash kept");
	TEXT("a\x01" "b", 0, "SOH refused");
	TEXT("a\nb", 0, "LF refused");
	TEXT("a\rb", 0, "CR refused");
	TEXT("a\x1f", 0, "0x1F refused");
	TEXT("a\x7f", 0, "DEL refused");
	TEXT("a\0b", 0, "NUL refused");
	TEXT("\xc3\xa9t\xc3\xa9", 1, "2-byte UTF-8");
	TEXT("\xe2\x82\xac", 1, "3-byte UTF-8 (euro sign)");
	TEXT("\xf0\x9f\x98\x80", 1, "4-byte UTF-8 (emoji)");
	TEXT("\xc2\x80", 1, "U+0080, smallest 2-byte");
	TEXT("\xc2\x85", 1, "U+0085 (C1 control) is valid UTF-8");
	TEXT("\xef\xbf\xbf", 1, "U+FFFF");
	TEXT("\xf4\x8f\xbf\xbf", 1, "U+10FFFF, the largest code point");
	TEXT("\xc0\xaf", 0, "overlong 2-byte '/' refused");
	TEXT("\xc1\xbf", 0, "overlong 2-byte (C1) refused");
	TEXT("\xe0\x80\xaf", 0, "overlong 3-byte refused");
	TEXT("\xe0\x9f\xbf", 0, "overlong 3-byte U+07FF refused");
	TEXT("\xf0\x80\x80\xaf", 0, "overlong 4-byte refused");
	TEXT("\xf0\x8f\xbf\xbf", 0, "overlong 4-byte U+FFFF refused");
	TEXT("\xc0\x80", 0, "overlong NUL (modified UTF-8) refused");
	TEXT("\xed\xa0\x80", 0, "high surrogate U+D800 refused");
	TEXT("\xed\xbf\xbf", 0, "low surrogate U+DFFF refused");
	TEXT("\xed\x9f\xbf", 1, "U+D7FF just below the surrogates");
	TEXT("\xee\x80\x80", 1, "U+E000 just above the surrogates");
	TEXT("\xf4\x90\x80\x80", 0, "U+110000 refused");
	TEXT("\xf5\x80\x80\x80", 0, "lead byte F5 refused");
	TEXT("\xff", 0, "byte FF refused");
	TEXT("\x80", 0, "lone continuation byte refused");
	TEXT("a\xc3", 0, "truncated 2-byte sequence at the end");
	TEXT("\xe2\x82", 0, "truncated 3-byte sequence at the end");
	TEXT("\xf0\x9f\x98", 0, "truncated 4-byte sequence at the end");
	TEXT("\xe2\x82" "a", 0, "bad continuation byte refused");
	TEXT("\xc3\xa9\x80", 0, "stray continuation after a good sequence");

	/* The length counts, not the NUL: a valid prefix is not enough. */
	text("\xc3\xa9", 1, 0, "length cuts a sequence");
	text("ab\x01", 2, 1, "bytes past the length are not read");

	big = malloc(65536);
	if (big == NULL)
		abort();
	for (i = 0; i + 3 <= 65535; i += 3)
		memcpy(big + i, "\xe2\x82\xac", 3);
	text(big, 65535, 1, "64 KiB of euro signs");
	big[40000] = '\x07';
	text(big, 65535, 0, "a BEL deep inside a long text");
	free(big);
}

/*
 * The word-at-a-time paths of proto_line_clean and proto_valid_text
 * against a byte-by-byte reference: every byte value at every position of
 * a 24-byte line of 'a's (three words), so a byte that a word check lets
 * through would show.
 */
static void
test_word_paths(void)
{
	char		line[24];
	unsigned int	pos, v, bad_clean = 0, bad_text = 0;
	int		want;

	for (pos = 0; pos < sizeof(line); pos++) {
		for (v = 0; v < 256; v++) {
			memset(line, 'a', sizeof(line));
			line[pos] = (char)v;
			want = !((v < 0x20 && v != '\t') || v == 0x7f);
			if (proto_line_clean(line, sizeof(line)) != want)
				bad_clean++;
			/* a lone byte >= 0x80 is never valid UTF-8 */
			if (proto_valid_text(line, sizeof(line)) !=
			    (want && v < 0x80))
				bad_text++;
		}
	}
	tap_is_int((int)bad_clean, 0, "line_clean: 24 x 256 single bytes, "
	    "word path agrees with the byte rule");
	tap_is_int((int)bad_text, 0, "valid_text: 24 x 256 single bytes, "
	    "word path agrees with the byte rule");
	memset(line, 'a', sizeof(line));
	memcpy(line + 7, "\xc3\xa9", 2);	/* a 2-byte char across words */
	tap_ok(proto_valid_text(line, sizeof(line)), "valid_text: é across "
	    "a word boundary");
	memcpy(line + 15, "\xe2\x82", 2);	/* a cut 3-byte sequence */
	tap_ok(!proto_valid_text(line, sizeof(line)), "valid_text: a cut "
	    "sequence in the middle of words");
}

/* proto_line_clean: the command line filter. */
static void
test_line_clean(void)
{
	tap_ok(proto_line_clean("PING x", 6), "line_clean: plain line");
	tap_ok(proto_line_clean("MSG a\tb", 7), "line_clean: TAB allowed");
	tap_ok(proto_line_clean("MSG \xc3\xa9\xff", 7),
	    "line_clean: high bytes left to the text check");
	tap_ok(!proto_line_clean("PING a\0b", 8), "line_clean: NUL refused");
	tap_ok(!proto_line_clean("PING a\rb", 8), "line_clean: CR refused");
	tap_ok(!proto_line_clean("PING \x1b[0m", 9), "line_clean: ESC refused");
	tap_ok(!proto_line_clean("PING \x7f", 6), "line_clean: DEL refused");
}

/* Parse an id and return its status, storing the value in *v. */
static int
id(const char *s, uint64_t *v)
{
	*v = UINT64_C(12345);
	return (proto_parse_id(s, v));
}

/* proto_parse_id and proto_parse_count: digits, overflow, terminators. */
static void
test_ids(void)
{
	uint64_t	v;
	unsigned int	c;

	tap_is_int(id("1", &v), 0, "id: 1");
	tap_is_int(v, 1, "id: value 1");
	tap_is_int(id("0", &v), 0, "id: 0 parses (SYNC 0 asks for everything)");
	tap_is_int(v, 0, "id: value 0");
	tap_is_int(id("9223372036854775807", &v), 0, "id: 2^63-1");
	tap_ok(v == UINT64_C(9223372036854775807), "id: value 2^63-1");
	tap_is_int(id("9223372036854775808", &v), -1, "id: 2^63 overflows");
	tap_is_int(id("18446744073709551615", &v), -1, "id: 2^64-1 overflows");
	tap_is_int(id("18446744073709551616", &v), -1, "id: 2^64 overflows");
	tap_is_int(id("99999999999999999999999", &v), -1,
	    "id: 23 digits overflow");
	tap_ok(v == UINT64_C(12345), "id: value untouched on error");
	tap_is_int(id("", &v), -1, "id: empty refused");
	tap_is_int(id("-1", &v), -1, "id: minus refused");
	tap_is_int(id("+1", &v), -1, "id: plus refused");
	tap_is_int(id("12a", &v), -1, "id: trailing letter refused");
	tap_is_int(id("0x10", &v), -1, "id: hex refused");
	tap_is_int(id("42 50", &v), 0, "id: stops at a space");
	tap_is_int(v, 42, "id: value before the space");
	tap_is_int(id("007", &v), 0, "id: leading zeros");
	tap_is_int(v, 7, "id: value with leading zeros");

	tap_is_int(proto_parse_count("0", 500, &c), -1, "count: 0 refused");
	tap_is_int(proto_parse_count("1", 500, &c), 0, "count: 1");
	tap_is_int(c, 1, "count: value 1");
	tap_is_int(proto_parse_count("500", 500, &c), 0, "count: max");
	tap_is_int(c, 500, "count: value max");
	tap_is_int(proto_parse_count("501", 500, &c), -1, "count: max+1 refused");
	tap_is_int(proto_parse_count("99999999999999999999", 500, &c), -1,
	    "count: overflow refused");
	tap_is_int(proto_parse_count("x", 500, &c), -1, "count: letter refused");
}

/* proto_lower: case folding of names. */
static void
test_lower(void)
{
	char	buf[8];

	proto_lower(buf, "AlIcE", sizeof(buf));
	tap_is_str(buf, "alice", "lower: AlIcE");
	proto_lower(buf, "Bob pw", sizeof(buf));
	tap_is_str(buf, "bob", "lower: stops at a space");
	proto_lower(buf, "ABCDEFGHIJ", sizeof(buf));
	tap_is_str(buf, "abcdefg", "lower: truncated to the buffer");
	proto_lower(buf, "a_.-9Z", sizeof(buf));
	tap_is_str(buf, "a_.-9z", "lower: punctuation and digits kept");
}

/* proto_format_time and proto_now_ms. */
static void
test_time(void)
{
	char	buf[PROTO_TIME_LEN + 8];
	int64_t	now;

	memset(buf, 'X', sizeof(buf));
	proto_format_time(0, buf);
	tap_is_str(buf, "1970-01-01T00:00:00.000Z", "time: epoch");
	tap_is_int(strlen(buf), PROTO_TIME_LEN, "time: length PROTO_TIME_LEN");
	proto_format_time(INT64_C(1795900562123), buf);
	tap_is_str(buf, "2026-11-28T21:16:02.123Z", "time: protocol.md example");
	proto_format_time(INT64_C(951782400999), buf);
	tap_is_str(buf, "2000-02-29T00:00:00.999Z", "time: leap day, .999");
	proto_format_time(INT64_C(1798761599001), buf);
	tap_is_str(buf, "2026-12-31T23:59:59.001Z", "time: year end, .001");

	/* against gmtime/strftime, every 7 hours 13 min 17.123 s over 400 years */
	{
		char		ref[64];
		struct tm	tm;
		time_t		t;
		int64_t		ms;
		int		bad = 0;

		for (ms = -INT64_C(5364662400000); ms < INT64_C(7258118400000);
		    ms += INT64_C(25997123)) {
			t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
			gmtime_r(&t, &tm);
			strftime(ref, sizeof(ref), "%Y-%m-%dT%H:%M:%S", &tm);
			snprintf(ref + 19, sizeof(ref) - 19, ".%03dZ",
			    (int)(ms - (int64_t)t * 1000));
			proto_format_time(ms, buf);
			if (strcmp(buf, ref) != 0 && bad++ == 0)
				printf("# %lld: %s, gmtime says %s\n",
				    (long long)ms, buf, ref);
		}
		tap_is_int(bad, 0, "time: the same as gmtime from 1800 to 2200");
	}
	{
		char	num[24];
		size_t	n;

		n = proto_fmt_u64(num, 0);
		num[n] = '\0';
		tap_is_str(num, "0", "fmt_u64: 0");
		n = proto_fmt_u64(num, UINT64_MAX);
		num[n] = '\0';
		tap_is_str(num, "18446744073709551615", "fmt_u64: UINT64_MAX");
		n = proto_fmt_u64(num, 1000);
		num[n] = '\0';
		tap_is_str(num, "1000", "fmt_u64: 1000");
	}
	{
		char		num[24], want[24];
		uint64_t	p = 1, v;
		size_t		n;
		int		k, d, bad = 0;

		/* every length, its edges and digits in every position */
		for (k = 0; k < 20; k++, p *= 10) {
			for (d = -1; d <= 12; d++) {
				v = d < 0 ? p - 1 : p + (uint64_t)d * (p / 7 + 1);
				n = proto_fmt_u64(num, v);
				num[n] = '\0';
				snprintf(want, sizeof(want), "%llu",
				    (unsigned long long)v);
				if (strcmp(num, want) != 0 && bad++ < 5)
					printf("# fmt_u64: %s, want %s\n", num,
					    want);
			}
		}
		tap_is_int(bad, 0, "fmt_u64: as printf from 1 to 20 digits");
	}

	now = proto_now_ms();
	tap_ok(now > INT64_C(1700000000000) && now < INT64_C(4102444800000),
	    "now_ms: plausible milliseconds since the epoch");
}

/* Check proto_reply_code on one line. */
static void
reply(const char *line, int want_ret, int want_code)
{
	int	code = -7, r;

	r = proto_reply_code(line, strlen(line), &code);
	tap_is_int(r, want_ret, "reply_code: \"%s\" returns %d", line, want_ret);
	if (want_ret >= 0)
		tap_is_int(code, want_code, "reply_code: \"%s\" code", line);
}

/* proto_reply_code: last line, continuation line, not a reply. */
static void
test_reply_code(void)
{
	reply("200 mychat ready", 1, 200);
	reply("250 17 delivered", 1, 250);
	reply("200-alice", 0, 200);
	reply("200", 1, 200);
	reply("200 ", 1, 200);
	reply("530 encryption required", 1, 530);
	reply("MSG 1 alice 2026-11-28T21:16:02.123Z hi", -1, 0);
	reply("ACKED 5 bob", -1, 0);
	reply("20", -1, 0);
	reply("", -1, 0);
	reply("2000 x", -1, 0);
	reply("200x", -1, 0);
	reply("2a0 x", -1, 0);
}

int
main(void)
{
	test_parse();
	test_split();
	test_name();
	test_token();
	test_text();
	test_line_clean();
	test_word_paths();
	test_ids();
	test_lower();
	test_time();
	test_reply_code();
	return (tap_done());
}

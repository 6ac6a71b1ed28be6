/*
 * test_text.c: unit tests of the client's text helpers (client-text.c):
 * the wire escape of multi-line text and its inverse, terminal-safe text,
 * MSG push parsing, retry tokens and the exit code of a reply.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "../unit/tap.h"
#include "client.h"

/* Escape, then unescape, must give the input back (one CR-LF aside). */
static void
test_round_trip(void)
{
	static const char *cases[] = {
		"", "plain", "a\nb", "back\\slash", "\\n literal", "\\\\",
		"end\\", "\n\n", "tab\there", "\xc3\xa9t\xc3\xa9\n\\\n"
	};
	unsigned int	 seed = 1;
	char		*e, *u, buf[64];
	size_t		 i, j;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		e = text_escape(cases[i], strlen(cases[i]));
		tap_ok(strchr(e, '\n') == NULL, "escaped %zu has no newline",
		    i);
		u = text_unescape(e);
		tap_is_str(u, cases[i], "round trip %zu", i);
		free(u);
		free(e);
	}
	/* Random strings of backslashes, n and newlines. */
	for (i = 0; i < 200; i++) {
		for (j = 0; j < sizeof(buf) - 1; j++)
			buf[j] = "\\n\nx"[rand_r(&seed) % 4];
		buf[rand_r(&seed) % sizeof(buf)] = '\0';
		buf[sizeof(buf) - 1] = '\0';
		e = text_escape(buf, strlen(buf));
		u = text_unescape(e);
		if (strcmp(u, buf) != 0)
			tap_is_str(u, buf, "random round trip %zu", i);
		free(u);
		free(e);
	}
	tap_ok(1, "200 random round trips");
}

/* The exact wire form. */
static void
test_escape_form(void)
{
	char	*e;

	e = text_escape("a\nb\\c", 5);
	tap_is_str(e, "a\\nb\\\\c", "newline and backslash escaped");
	free(e);
	e = text_escape("dos\r\nline", 9);
	tap_is_str(e, "dos\\nline", "CR before LF dropped");
	free(e);
	e = text_unescape("keep \\t and \\");
	tap_is_str(e, "keep \\t and \\", "other escapes kept as they are");
	free(e);
}

/* Control characters never reach the terminal. */
static void
test_sanitize(void)
{
	char	s[64];

	strcpy(s, "esc\033[2J bell\a del\x7f tab\tnl\n");
	text_sanitize(s);
	tap_is_str(s, "esc?[2J bell? del? tab nl\n", "C0 and DEL");
	strcpy(s, "csi\xc2\x9b" "31m nel\xc2\x85 ok\xc2\xa0\xc3\xa9");
	text_sanitize(s);
	tap_is_str(s, "csi??31m nel?? ok\xc2\xa0\xc3\xa9",
	    "C1 controls, not other UTF-8");
}

/* MSG pushes. */
static void
test_push(void)
{
	struct cpush	m;
	char		l[128];

	strcpy(l, "MSG 42 alice 2026-11-28T21:16:02.123Z hello  world ");
	tap_is_int(text_parse_push(l, &m), 0, "push parses");
	tap_is_int((long long)m.id, 42, "id");
	tap_is_str(m.from, "alice", "from");
	tap_is_str(m.time, "2026-11-28T21:16:02.123Z", "time");
	tap_is_str(m.text, "hello  world ", "text verbatim");
	strcpy(l, "MSG x alice 2026-11-28T21:16:02.123Z hi");
	tap_is_int(text_parse_push(l, &m), -1, "bad id");
	strcpy(l, "MSG 1 al/ce 2026-11-28T21:16:02.123Z hi");
	tap_is_int(text_parse_push(l, &m), -1, "bad name");
	strcpy(l, "MSG 1 alice 2026-11-28T21:16:02.123Z ");
	tap_is_int(text_parse_push(l, &m), -1, "empty text");
	strcpy(l, "MSG 1 alice");
	tap_is_int(text_parse_push(l, &m), -1, "short");
}

/* Tokens are valid for the protocol and differ. */
static void
test_token(void)
{
	char	a[CLIENT_TOKEN_LEN + 1], b[CLIENT_TOKEN_LEN + 1];

	text_token(a, sizeof(a));
	text_token(b, sizeof(b));
	tap_ok(proto_valid_token(a), "token %s is valid", a);
	tap_ok(strcmp(a, b) != 0, "two tokens differ");
}

/* Reply codes to exit codes (doc/mychat.1). */
static void
test_exit(void)
{
	tap_is_int(text_reply_exit(401), EX_MC_AUTH, "401");
	tap_is_int(text_reply_exit(404), EX_MC_NOUSER, "404");
	tap_is_int(text_reply_exit(451), EX_MC_TEMP, "451");
	tap_is_int(text_reply_exit(452), EX_MC_TEMP, "452");
	tap_is_int(text_reply_exit(429), EX_MC_TEMP, "429");
	tap_is_int(text_reply_exit(400), EX_MC_REFUSED, "400");
	tap_is_int(text_reply_exit(501), EX_MC_REFUSED, "501");
}

/* Run them all. */
int
main(void)
{
	test_round_trip();
	test_escape_form();
	test_sanitize();
	test_push();
	test_token();
	test_exit();
	return (tap_done());
}

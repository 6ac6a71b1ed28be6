/*
 * proto.h: the wire protocol shared by the server, the client and the
 * benchmark: reply codes, limits, the tokenizer and the validators.
 * See doc/protocol.md; every reply text the server sends is in cmd.c.
 */
#ifndef MYCHAT_PROTO_H
#define MYCHAT_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_DEFAULT_PORT	5555
#define PROTO_DEFAULT_TLS_PORT	5556
#define PROTO_NAME_MAX		32	/* characters in an account name */
#define PROTO_PASS_MAX		256	/* bytes in a password */
#define PROTO_TOKEN_MAX		64	/* characters in a MSG retry token */
#define PROTO_LINE_DEFAULT	65536	/* default maximum line, bytes */
#define PROTO_TIME_LEN		24	/* "2026-11-28T21:16:02.123Z" */
#define PROTO_MAX_ARGS		8

/* RPL_ because unistd.h owns R_OK. */
enum reply {
	RPL_OK = 200,
	RPL_CREATED = 201,
	RPL_GOAHEAD = 220,
	RPL_BYE = 221,
	RPL_STORED = 250,
	RPL_BADARG = 400,
	RPL_AUTH = 401,
	RPL_FORBIDDEN = 403,
	RPL_NOTFOUND = 404,
	RPL_CONFLICT = 409,
	RPL_TOOLONG = 413,
	RPL_CLOSING = 421,
	RPL_SLOWDOWN = 429,
	RPL_TRYLATER = 451,
	RPL_FULL = 452,
	RPL_NOTLS = 454,
	RPL_UNKNOWN = 500,
	RPL_USAGE = 501,
	RPL_OFFLINE = 503,
	RPL_NEEDTLS = 530
};

/* A tokenized command line; pointers point into the line itself. */
struct proto_cmd {
	const char	*tag;		/* "@token" prefix, without '@', or NULL */
	const char	*verb;
	int		 argc;		/* arguments after the verb */
	const char	*argv[PROTO_MAX_ARGS];
	const char	*rest;		/* everything after "VERB ", verbatim */
	size_t		 restlen;
};

#define PROTO_FNV_BASIS	2166136261u

int	proto_parse(char *, size_t, struct proto_cmd *);
int	proto_split(struct proto_cmd *);
int	proto_line_clean(const char *, size_t);
int	proto_valid_name(const char *);
int	proto_valid_token(const char *);
int	proto_valid_text(const char *, size_t);
int	proto_parse_id(const char *, uint64_t *);
int	proto_parse_count(const char *, unsigned int, unsigned int *);
void	proto_lower(char *, const char *, size_t);
size_t	proto_copy(char *, const char *, size_t);
uint32_t proto_fnv1a(uint32_t, const char *);
void	proto_format_time(int64_t, char *);
size_t	proto_fmt_u64(char *, uint64_t);
int64_t	proto_now_ms(void);
int	proto_reply_code(const char *, size_t, int *);

#endif

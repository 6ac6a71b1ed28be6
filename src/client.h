/*
 * client.h: the mychat console client. client-net.c talks the protocol,
 * client-ui.c owns the terminal, client-log.c the local message logs,
 * client-text.c the text helpers, client-chat.c the interactive mode,
 * client-script.c the send and recv commands, client-tls.c the TLS
 * settings, client.c main and options.
 */
#ifndef MYCHAT_CLIENT_H
#define MYCHAT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct event_base;
struct ssl_st;

/* Exit codes, documented in doc/mychat.1. */
#define EX_MC_OK	0	/* done */
#define EX_MC_USAGE	1	/* usage or local error */
#define EX_MC_CONNECT	2	/* cannot connect, or the connection was lost */
#define EX_MC_TIMEOUT	3	/* the server did not answer in time */
#define EX_MC_PROTO	4	/* the server does not speak mychat */
#define EX_MC_AUTH	5	/* login refused */
#define EX_MC_NOUSER	6	/* no such user */
#define EX_MC_TEMP	7	/* temporary failure, try again later */
#define EX_MC_REFUSED	8	/* the server refused the request */
#define EX_MC_TLS	9	/* TLS failed: certificate, handshake, no STARTTLS */

/* The longest line the client accepts from the server. */
#define CLIENT_LINE_MAX		(PROTO_LINE_DEFAULT + 1024)
/* The longest line the client sends (the server's default limit). */
#define CLIENT_SEND_MAX		PROTO_LINE_DEFAULT
/* Bytes of "@token MSG " around the text of a message. */
#define CLIENT_MSG_OVERHEAD	(1 + PROTO_TOKEN_MAX + 5)
#define CLIENT_TOKEN_LEN	24

/* Why a connection ended. */
enum cnet_err {
	CNET_ECONNECT,		/* connect(2) or name resolution failed */
	CNET_ELOST,		/* EOF or a socket error */
	CNET_ETIMEOUT,		/* no answer in time */
	CNET_EPROTO,		/* garbage, an overlong line, a bad greeting */
	CNET_ECLOSING,		/* the server said 421 on its own */
	CNET_ETLS		/* certificate or handshake, or no STARTTLS */
};

/* Called with each line of a reply; last is 1 on the final line. */
typedef void cnet_reply_fn(void *, int code, int last, const char *text);

/* What a connection reports to its owner. */
struct cnet_cb {
	void	(*ready)(void *, const char *);		/* greeting text */
	void	(*push)(void *, char *, size_t);	/* a push line */
	void	(*lost)(void *, enum cnet_err, const char *);
	/* encrypted (a description) or not (NULL), before any command */
	void	(*tls)(void *, const char *);
};

struct cnet;

/* client-net.c */
struct cnet	*cnet_new(struct event_base *, const char *, const char *,
		    int, const struct cnet_cb *, void *);
void		 cnet_free(struct cnet *);
void		 cnet_connect(struct cnet *);
void		 cnet_disconnect(struct cnet *);
int		 cnet_connected(struct cnet *);
int		 cnet_connecting(struct cnet *);
int		 cnet_busy(struct cnet *);
void		 cnet_send(struct cnet *, cnet_reply_fn *, void *,
		    const char *, ...) __attribute__((format(printf, 4, 5)));
void		 cnet_send_secret(struct cnet *, cnet_reply_fn *, void *,
		    const char *, const char *, const char *);
const char	*cnet_strerr(enum cnet_err);
int		 cnet_exit_code(enum cnet_err);

/* How connections use TLS (one mode per process). */
enum ctls_mode {
	CTLS_AUTO,		/* STARTTLS if the server offers it */
	CTLS_STARTTLS,		/* STARTTLS, or fail (--starttls) */
	CTLS_IMPLICIT,		/* TLS from the first byte (--tls) */
	CTLS_OFF		/* never (--no-tls) */
};

/* client-tls.c */
int		 ctls_init(enum ctls_mode, const char *, int);
void		 ctls_free(void);
enum ctls_mode	 ctls_mode(void);
struct ssl_st	*ctls_ssl_new(const char *, char *, size_t);
void		 ctls_ssl_free(struct ssl_st *);
void		 ctls_shutdown(struct ssl_st *);
void		 ctls_strerror(unsigned long, char *, size_t);
int		 ctls_verify_failed(struct ssl_st *);
void		 ctls_handshake_error(struct ssl_st *, unsigned long, char *,
		    size_t);
void		 ctls_describe(struct ssl_st *, char *, size_t);

/* A MSG push, split in place. */
struct cpush {
	uint64_t	 id;
	const char	*from;
	const char	*time;
	const char	*text;
};

/* client-text.c */
char	*text_escape(const char *, size_t);
char	*text_unescape(const char *);
void	 text_sanitize(char *);
void	 text_token(char *, size_t);
int	 text_parse_push(char *, struct cpush *);
void	 text_local_hm(const char *, char *, size_t);
int	 text_reply_exit(int);

/* client-log.c */
void	 clog_init(const char *);
void	 clog_message(const char *, const char *, const char *, uint64_t,
	    const char *, const char *);
const char *clog_dir(void);

/* client-ui.c */
typedef void ui_line_fn(void *, char *);

void	 ui_init(struct event_base *, ui_line_fn *, void *);
void	 ui_end(void);
int	 ui_is_tty(void);
void	 ui_prompt(const char *);
void	 ui_secret(const char *);
void	 ui_pause(int);
void	 ui_multiline(int);
void	 ui_printf(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 ui_resize(void);

/* client-chat.c */
int	 chat_main(struct event_base *, const char *, const char *, int);

/* client-script.c */
struct script_opts {
	const char	*host;
	const char	*port;
	const char	*user;
	char		*password;
	int		 timeout;
	int		 follow;
	int		 unescape;
	const char	*peer;
	const char	*text;
};

int	 script_send(struct event_base *, struct script_opts *);
int	 script_recv(struct event_base *, struct script_opts *);

/* client.c */
extern int	client_verbose;

#endif

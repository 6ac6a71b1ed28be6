/*
 * tls.c: TLS through libevent's OpenSSL bufferevents: the server context
 * (TLS 1.2 minimum), implicit TLS on accept, and the STARTTLS upgrade of
 * a plain connection (RFC 3207 style).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <event2/bufferevent_ssl.h>

#include "log.h"
#include "mychat.h"
#include "xmalloc.h"

struct tls {
	SSL_CTX	*ctx;
};

/* The text of an OpenSSL error code (system errors included). */
static const char *
tls_strerror(unsigned long e, char *buf, size_t len)
{
	if (e == 0)
		snprintf(buf, len, "unknown error");
	else
		ERR_error_string_n(e, buf, len);
	return (buf);
}

/* A server context from PEM files; NULL with err filled on failure. */
struct tls *
tls_new(const char *cert, const char *key, char *err, size_t errlen)
{
	struct tls	*t;
	SSL_CTX		*ctx;
	unsigned long	 e;
	char		 ebuf[256];

	if (cert == NULL || key == NULL) {
		snprintf(err, errlen, "TLS needs both a certificate and a key");
		return (NULL);
	}
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL)
		goto sslerr;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		e = ERR_get_error();
		snprintf(err, errlen, "%s: %s", cert,
		    tls_strerror(e, ebuf, sizeof(ebuf)));
		SSL_CTX_free(ctx);
		return (NULL);
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		e = ERR_get_error();
		snprintf(err, errlen, "%s: %s", key,
		    tls_strerror(e, ebuf, sizeof(ebuf)));
		SSL_CTX_free(ctx);
		return (NULL);
	}
	t = xcalloc(1, sizeof(*t));
	t->ctx = ctx;
	return (t);
sslerr:
	snprintf(err, errlen, "SSL_CTX_new: %s",
	    tls_strerror(ERR_get_error(), ebuf, sizeof(ebuf)));
	return (NULL);
}

/* Connections keep their SSL (which holds a reference to the context). */
void
tls_free(struct tls *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

/* Implicit TLS: the accepted socket speaks TLS from its first byte. */
int
tls_wrap(struct conn *c)
{
	SSL	*ssl;

	if ((ssl = SSL_new(c->srv->tls->ctx)) == NULL)
		return (-1);
	c->bev = bufferevent_openssl_socket_new(c->srv->base, c->fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		SSL_free(ssl);
		return (-1);
	}
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	c->flags |= CONN_TLS;
	return (0);
}

/*
 * STARTTLS, once the 220 is flushed: the plain bufferevent goes (with
 * whatever the client pipelined after STARTTLS, RFC 3207) and a TLS one
 * takes the same socket. The session was reset when the 220 was queued.
 */
int
conn_starttls(struct conn *c)
{
	c->flags &= ~CONN_STARTTLS;
	if (c->srv->tls == NULL) {
		conn_close(c, "STARTTLS: no TLS context");
		return (-1);
	}
	/* the plain socket's own read event goes with its bufferevent */
	event_del(&c->rd_ev);
	c->rd_off = 0;
	bufferevent_free(c->bev);
	c->bev = NULL;
	/* a fresh, logged-out session: the login timeout starts again */
	c->since = time(NULL);
	if (tls_wrap(c) == -1) {
		close(c->fd);
		conn_close(c, "STARTTLS: TLS setup failed");
		return (-1);
	}
	conn_setup(c);
	return (0);
}

/*
 * Free a TLS bufferevent. After a final reply (the output is flushed) a
 * close_notify goes first, so the peer can tell a clean end from a cut.
 */
void
tls_close(struct conn *c)
{
	SSL	*ssl = bufferevent_openssl_get_ssl(c->bev);

	if (ssl != NULL && c->state == S_CLOSING &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		(void)SSL_shutdown(ssl);	/* best effort, non-blocking */
	bufferevent_free(c->bev);	/* BEV_OPT_CLOSE_ON_FREE: SSL and fd */
}

/* Why a connection failed: the TLS error if there is one. */
const char *
tls_error_string(struct conn *c)
{
	static char	buf[300];
	char		ebuf[256];
	unsigned long	e;

	if ((c->flags & CONN_TLS) && c->bev != NULL &&
	    (e = bufferevent_get_openssl_error(c->bev)) != 0) {
		snprintf(buf, sizeof(buf), "TLS error: %s",
		    tls_strerror(e, ebuf, sizeof(ebuf)));
		return (buf);
	}
	return ("connection error");
}

/*
 * client-net.c: one connection to a mychat server: connecting with a
 * timeout, line framing with a bounded line length, telling replies from
 * pushes, and handing each reply to the request that asked for it (the
 * server answers in order, so a FIFO of pending requests is enough).
 * Every wait (connect, greeting, each reply) has the same timeout.
 *
 * TLS (see client-tls.c for the settings): with --tls the handshake starts
 * as soon as TCP is up and the greeting comes encrypted. Otherwise the
 * client answers the greeting with STARTTLS; requests the owner queues
 * meanwhile are held back, unsent, so that nothing but STARTTLS crosses
 * the wire in clear. On 220 the plain bufferevent is swapped for an
 * OpenSSL one on the same socket and the held requests go out over TLS
 * once the handshake is done; on a refusal (no certificate on the server)
 * they go out in clear, unless --starttls made TLS mandatory.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "client.h"
#include "log.h"
#include "xmalloc.h"

struct creq {
	TAILQ_ENTRY(creq)	 entry;
	cnet_reply_fn		*fn;
	void			*arg;
};

struct cnet {
	struct event_base	*base;
	char			*host;
	char			*port;
	int			 timeout;
	const struct cnet_cb	*cb;
	void			*arg;

	struct bufferevent	*bev;
	struct event		*tmo;
	struct addrinfo		*ai;
	struct addrinfo		*cur;
	int			 connected;	/* TCP is up */
	int			 greeted;	/* the 200 greeting came */
	int			 tls_bev;	/* bev is TLS: owns SSL and fd */
	int			 handshake;	/* the TLS handshake runs */
	int			 secure;	/* the handshake is done */
	int			 holding;	/* STARTTLS: requests wait */
	struct evbuffer		*held;		/* their bytes meanwhile */
	unsigned int		 gen;		/* bumped when bev goes */
	char			*line;		/* CLIENT_LINE_MAX + 1 bytes */
	TAILQ_HEAD(, creq)	 reqs;
};

static void	cnet_try(struct cnet *);
static void	cnet_fail(struct cnet *, enum cnet_err, const char *);
static void	cnet_read_cb(struct bufferevent *, void *);
static void	cnet_event_cb(struct bufferevent *, short, void *);
static void	cnet_starttls_reply(void *, int, int, const char *);

/* The text for each way a connection can end. */
const char *
cnet_strerr(enum cnet_err e)
{
	switch (e) {
	case CNET_ECONNECT:
		return ("cannot connect");
	case CNET_ELOST:
		return ("connection lost");
	case CNET_ETIMEOUT:
		return ("timed out waiting for the server");
	case CNET_EPROTO:
		return ("protocol error");
	case CNET_ECLOSING:
		return ("the server closed the connection");
	case CNET_ETLS:
		return ("TLS error");
	}
	return ("unknown error");
}

/* The exit code for each way a connection can end. */
int
cnet_exit_code(enum cnet_err e)
{
	switch (e) {
	case CNET_ETIMEOUT:
		return (EX_MC_TIMEOUT);
	case CNET_EPROTO:
		return (EX_MC_PROTO);
	case CNET_ECLOSING:
		return (EX_MC_TEMP);
	case CNET_ETLS:
		return (EX_MC_TLS);
	case CNET_ECONNECT:
	case CNET_ELOST:
		break;
	}
	return (EX_MC_CONNECT);
}

/* A connection object for host:port; nothing happens until cnet_connect. */
struct cnet *
cnet_new(struct event_base *base, const char *host, const char *port,
    int timeout, const struct cnet_cb *cb, void *arg)
{
	struct cnet	*c;

	c = xcalloc(1, sizeof(*c));
	c->base = base;
	c->host = xstrdup(host);
	c->port = xstrdup(port);
	c->timeout = timeout;
	c->cb = cb;
	c->arg = arg;
	c->line = xmalloc(CLIENT_LINE_MAX + 1);
	if ((c->held = evbuffer_new()) == NULL)
		fatalx("%s: evbuffer_new", __func__);
	TAILQ_INIT(&c->reqs);
	return (c);
}

/* Empty a buffer that may hold a password, erasing the bytes first. */
static void
cnet_wipe(struct evbuffer *b)
{
	size_t		 len = evbuffer_get_length(b);
	unsigned char	*p;

	if (len == 0)
		return;
	if ((p = evbuffer_pullup(b, -1)) != NULL)
		explicit_bzero(p, len);
	evbuffer_drain(b, len);
}

/*
 * Free the bufferevent and close the socket. A plain bufferevent does not
 * own its socket (STARTTLS hands it on to a TLS one); a TLS one owns both
 * socket and SSL, and first says close_notify if everything was sent.
 */
static void
cnet_bev_free(struct cnet *c)
{
	struct ssl_st	*ssl;
	evutil_socket_t	 fd;

	if (c->bev == NULL)
		return;
	if (c->tls_bev) {
		ssl = bufferevent_openssl_get_ssl(c->bev);
		if (ssl != NULL && c->secure && evbuffer_get_length(
		    bufferevent_get_output(c->bev)) == 0)
			ctls_shutdown(ssl);
		bufferevent_free(c->bev);
	} else {
		fd = bufferevent_getfd(c->bev);
		bufferevent_free(c->bev);
		if (fd != -1)
			close(fd);
	}
	c->bev = NULL;
	c->tls_bev = 0;
	c->gen++;
}

/* Drop the socket, the timer and every pending request, silently. */
static void
cnet_teardown(struct cnet *c)
{
	struct creq	*r;

	cnet_bev_free(c);
	cnet_wipe(c->held);
	if (c->tmo != NULL) {
		event_free(c->tmo);
		c->tmo = NULL;
	}
	if (c->ai != NULL) {
		freeaddrinfo(c->ai);
		c->ai = NULL;
		c->cur = NULL;
	}
	while ((r = TAILQ_FIRST(&c->reqs)) != NULL) {
		TAILQ_REMOVE(&c->reqs, r, entry);
		free(r);
	}
	c->connected = c->greeted = 0;
	c->handshake = c->secure = c->holding = 0;
	c->gen++;
}

/* Free a connection; no callback runs afterwards. */
void
cnet_free(struct cnet *c)
{
	if (c == NULL)
		return;
	cnet_teardown(c);
	evbuffer_free(c->held);
	free(c->line);
	free(c->host);
	free(c->port);
	free(c);
}

/* Close the connection on purpose; the lost callback is not called. */
void
cnet_disconnect(struct cnet *c)
{
	cnet_teardown(c);
}

/* Is the connection up and greeted? */
int
cnet_connected(struct cnet *c)
{
	return (c->bev != NULL && c->greeted);
}

/* Is a connection being set up (not yet greeted)? */
int
cnet_connecting(struct cnet *c)
{
	return (c->tmo != NULL && !c->greeted);
}

/* Are replies still expected? */
int
cnet_busy(struct cnet *c)
{
	return (!TAILQ_EMPTY(&c->reqs));
}

/* Tear down and tell the owner why; the owner may reconnect at once. */
static void
cnet_fail(struct cnet *c, enum cnet_err e, const char *why)
{
	char	*copy = xstrdup(why);

	cnet_teardown(c);
	c->cb->lost(c->arg, e, copy);
	free(copy);
}

/* (Re)start the wait for the next answer, or stop waiting. */
static void
cnet_arm(struct cnet *c)
{
	struct timeval	tv;

	if (c->tmo == NULL)
		return;
	if (c->greeted && !c->handshake && TAILQ_EMPTY(&c->reqs)) {
		evtimer_del(c->tmo);
		return;
	}
	tv.tv_sec = c->timeout;
	tv.tv_usec = 0;
	evtimer_add(c->tmo, &tv);
}

/* Nothing came in time. */
static void
cnet_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cnet	*c = arg;
	char		 why[128];

	if (!c->connected)
		snprintf(why, sizeof(why), "no connection to %s port %s "
		    "after %d s", c->host, c->port, c->timeout);
	else if (c->handshake)
		snprintf(why, sizeof(why), "TLS handshake with %s not done "
		    "after %d s", c->host, c->timeout);
	else if (!c->greeted)
		snprintf(why, sizeof(why), "no greeting from %s after %d s",
		    c->host, c->timeout);
	else if (c->holding)
		snprintf(why, sizeof(why), "no reply to STARTTLS from %s "
		    "after %d s", c->host, c->timeout);
	else
		snprintf(why, sizeof(why), "no reply from %s after %d s",
		    c->host, c->timeout);
	cnet_fail(c, CNET_ETIMEOUT, why);
}

/* Queue a request; its bytes wait in held while STARTTLS is under way. */
static void
cnet_queue(struct cnet *c, cnet_reply_fn *fn, void *arg, const char *line,
    size_t len)
{
	struct creq	*r;
	struct evbuffer	*out;
	int		 was_idle = TAILQ_EMPTY(&c->reqs);

	r = xcalloc(1, sizeof(*r));
	r->fn = fn;
	r->arg = arg;
	TAILQ_INSERT_TAIL(&c->reqs, r, entry);
	out = c->holding ? c->held : bufferevent_get_output(c->bev);
	evbuffer_add(out, line, len);
	evbuffer_add(out, "\r\n", 2);
	if (was_idle)
		cnet_arm(c);
}

/* Tell the owner whether the connection is encrypted (desc) or not. */
static void
cnet_tls_settled(struct cnet *c, const char *desc)
{
	if (c->cb->tls != NULL)
		c->cb->tls(c->arg, desc);
}

/* Send what was held back during STARTTLS, encrypted or not. */
static void
cnet_release(struct cnet *c)
{
	c->holding = 0;
	if (evbuffer_get_length(c->held) > 0)
		bufferevent_write_buffer(c->bev, c->held);
	cnet_arm(c);
}

/*
 * The greeting came (over TLS with --tls). Unless TLS is up or unwanted,
 * ask for STARTTLS first; the owner may queue requests at once, they are
 * held until the answer.
 */
static void
cnet_greeted(struct cnet *c, const char *text)
{
	struct creq	*r;
	enum ctls_mode	 mode = ctls_mode();
	unsigned int	 gen = c->gen;

	c->greeted = 1;
	if (!c->secure && (mode == CTLS_AUTO || mode == CTLS_STARTTLS)) {
		r = xcalloc(1, sizeof(*r));
		r->fn = cnet_starttls_reply;
		r->arg = c;
		TAILQ_INSERT_TAIL(&c->reqs, r, entry);
		bufferevent_write(c->bev, "STARTTLS\r\n", 10);
		c->holding = 1;
	}
	cnet_arm(c);
	if (mode == CTLS_OFF) {
		cnet_tls_settled(c, NULL);
		if (c->gen != gen)
			return;
	}
	c->cb->ready(c->arg, text);
}

/* One complete line from the server. */
static void
cnet_line(struct cnet *c, char *line, size_t len)
{
	struct creq	*r;
	char		 why[160];
	const char	*text;
	int		 code, last;

	last = proto_reply_code(line, len, &code);
	text = len > 4 ? line + 4 : "";
	if (!c->greeted) {
		if (last == 1 && code == RPL_OK)
			cnet_greeted(c, text);
		else if (last == 1 && code == RPL_CLOSING) {
			text_sanitize(line);
			cnet_fail(c, CNET_ECLOSING, line);
		} else if (last != 0) {
			text_sanitize(line);
			snprintf(why, sizeof(why), "not a mychat server: "
			    "\"%.80s\"", line);
			cnet_fail(c, CNET_EPROTO, why);
		}
		return;
	}
	if (last == -1) {
		if (len > 0 && line[0] >= 'A' && line[0] <= 'Z') {
			c->cb->push(c->arg, line, len);
			return;
		}
		text_sanitize(line);
		snprintf(why, sizeof(why), "garbage from the server: \"%.80s\"",
		    line);
		cnet_fail(c, CNET_EPROTO, why);
		return;
	}
	if ((r = TAILQ_FIRST(&c->reqs)) == NULL) {
		text_sanitize(line);
		if (code == RPL_CLOSING)
			cnet_fail(c, CNET_ECLOSING, line);
		else {
			snprintf(why, sizeof(why), "unexpected reply: "
			    "\"%.80s\"", line);
			cnet_fail(c, CNET_EPROTO, why);
		}
		return;
	}
	if (last) {
		TAILQ_REMOVE(&c->reqs, r, entry);
		cnet_arm(c);
		r->fn(r->arg, code, 1, text);
		free(r);
	} else {
		cnet_arm(c);
		r->fn(r->arg, code, 0, text);
	}
}

/*
 * Cut complete lines out of the input buffer. A line (or a partial line)
 * longer than CLIENT_LINE_MAX ends the connection: a real server never
 * sends one.
 */
static void
cnet_read_cb(struct bufferevent *bev, void *arg)
{
	struct cnet		*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct evbuffer_ptr	 p;
	size_t			 eol_len, len;
	unsigned int		 gen = c->gen;

	while (c->gen == gen) {
		p = evbuffer_search_eol(in, NULL, &eol_len,
		    EVBUFFER_EOL_CRLF);
		if (p.pos < 0) {
			if (evbuffer_get_length(in) > CLIENT_LINE_MAX)
				cnet_fail(c, CNET_EPROTO,
				    "line from the server too long");
			return;
		}
		if ((size_t)p.pos > CLIENT_LINE_MAX) {
			cnet_fail(c, CNET_EPROTO,
			    "line from the server too long");
			return;
		}
		len = (size_t)p.pos;
		evbuffer_remove(in, c->line, len);
		evbuffer_drain(in, eol_len);
		c->line[len] = '\0';
		/* A NUL would cut the line short; show it as garbage. */
		if (strlen(c->line) != len)
			memset(c->line, '?', len);
		if (len == 0)
			continue;
		cnet_line(c, c->line, len);
	}
}

/*
 * Start TLS on the connected socket: for --tls at once, for STARTTLS after
 * the 220. The plain bufferevent goes (its read loop must stop: gen) and
 * an OpenSSL one takes the socket over.
 */
static void
cnet_tls_start(struct cnet *c)
{
	struct bufferevent	*bev;
	struct ssl_st		*ssl;
	evutil_socket_t		 fd;
	char			 why[320];

	if ((ssl = ctls_ssl_new(c->host, why, sizeof(why))) == NULL) {
		cnet_fail(c, CNET_ETLS, why);
		return;
	}
	fd = bufferevent_getfd(c->bev);
	bufferevent_free(c->bev);
	c->bev = NULL;
	c->gen++;
	bev = bufferevent_openssl_socket_new(c->base, fd, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		ctls_ssl_free(ssl);
		close(fd);
		cnet_fail(c, CNET_ETLS, "cannot set up a TLS connection");
		return;
	}
	c->bev = bev;
	c->tls_bev = 1;
	c->handshake = 1;
	/* a server that closes without close_notify: EOF, not an error */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	bufferevent_setcb(bev, cnet_read_cb, NULL, cnet_event_cb, c);
	bufferevent_setwatermark(bev, EV_READ, 0, CLIENT_LINE_MAX + 4096);
	bufferevent_enable(bev, EV_READ);
	cnet_arm(c);
}

/* The handshake is done (the certificate checked, unless --insecure). */
static void
cnet_tls_done(struct cnet *c)
{
	char		desc[256];
	unsigned int	gen = c->gen;

	c->handshake = 0;
	c->secure = 1;
	ctls_describe(bufferevent_openssl_get_ssl(c->bev), desc, sizeof(desc));
	cnet_tls_settled(c, desc);
	if (c->gen != gen)
		return;
	if (c->greeted)
		cnet_release(c);	/* STARTTLS: the session starts over */
	else
		cnet_arm(c);		/* --tls: the greeting comes now */
}

/*
 * The handshake failed. A certificate that does not verify, or any
 * OpenSSL error, is a TLS error (never retried, never a fallback to
 * clear text); a bare EOF or socket error is a lost connection.
 */
static void
cnet_tls_failed(struct cnet *c, short what, int err)
{
	struct ssl_st	*ssl = bufferevent_openssl_get_ssl(c->bev);
	unsigned long	 e = bufferevent_get_openssl_error(c->bev);
	char		 why[320];

	if (e != 0 || ctls_verify_failed(ssl)) {
		ctls_handshake_error(ssl, e, why, sizeof(why));
		cnet_fail(c, CNET_ETLS, why);
		return;
	}
	if ((what & BEV_EVENT_EOF) || err == 0)
		snprintf(why, sizeof(why), "%s closed the connection during "
		    "the TLS handshake", c->host);
	else
		snprintf(why, sizeof(why), "TLS handshake with %s: %s",
		    c->host, strerror(err));
	cnet_fail(c, CNET_ELOST, why);
}

/*
 * The answer to STARTTLS. 220: nothing may follow it in clear (it would
 * be an injection), the handshake starts. A refusal (454 when the server
 * has no certificate, 500 from an older server) leaves the connection in
 * clear, unless --starttls.
 */
static void
cnet_starttls_reply(void *arg, int code, int last, const char *text)
{
	struct cnet	*c = arg;
	char		 why[160];
	unsigned int	 gen = c->gen;

	if (!last)
		return;
	snprintf(why, sizeof(why), "%d %s", code, text);
	text_sanitize(why);
	if (code == RPL_GOAHEAD) {
		if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
			cnet_fail(c, CNET_EPROTO, "the server sent more "
			    "after 220 to STARTTLS, in clear");
			return;
		}
		cnet_tls_start(c);
		return;
	}
	if (code == RPL_CLOSING) {
		cnet_fail(c, CNET_ECLOSING, why);
		return;
	}
	if (ctls_mode() == CTLS_STARTTLS) {
		snprintf(why, sizeof(why), "the server does not offer "
		    "STARTTLS: \"%d %.80s\"", code, text);
		text_sanitize(why);
		cnet_fail(c, CNET_ETLS, why);
		return;
	}
	cnet_tls_settled(c, NULL);
	if (c->gen == gen)
		cnet_release(c);
}

/* Connected, closed, or failed. */
static void
cnet_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct cnet	*c = arg;
	char		 why[320], ebuf[256];
	unsigned long	 e;
	int		 err = EVUTIL_SOCKET_ERROR();
	unsigned int	 gen = c->gen;

	if (what & BEV_EVENT_CONNECTED) {
		if (c->handshake) {
			cnet_tls_done(c);
			return;
		}
		c->connected = 1;
		if (ctls_mode() == CTLS_IMPLICIT)
			cnet_tls_start(c);
		else
			bufferevent_enable(bev, EV_READ);
		return;
	}
	if (c->handshake) {
		cnet_tls_failed(c, what, err);
		return;
	}
	if (!c->connected) {
		snprintf(why, sizeof(why), "%s port %s: %s", c->host,
		    c->port, strerror(err));
		cnet_bev_free(c);
		if (c->cur != NULL && c->cur->ai_next != NULL) {
			c->cur = c->cur->ai_next;
			cnet_try(c);
		} else
			cnet_fail(c, CNET_ECONNECT, why);
		return;
	}
	/* Lines that came just before the end still count. */
	cnet_read_cb(bev, c);
	if (c->gen != gen)
		return;
	if (what & BEV_EVENT_EOF) {
		if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
			snprintf(why, sizeof(why), "the server closed the "
			    "connection in the middle of a line");
		else
			snprintf(why, sizeof(why), "the server closed the "
			    "connection");
	} else if (c->tls_bev &&
	    (e = bufferevent_get_openssl_error(bev)) != 0) {
		ctls_strerror(e, ebuf, sizeof(ebuf));
		snprintf(why, sizeof(why), "TLS error: %s", ebuf);
	} else
		snprintf(why, sizeof(why), "%s", strerror(err));
	cnet_fail(c, CNET_ELOST, why);
}

/* Connect to the current address; on failure move on to the next. */
static void
cnet_try(struct cnet *c)
{
	char	why[256];

	for (; c->cur != NULL; c->cur = c->cur->ai_next) {
		/* no CLOSE_ON_FREE: STARTTLS hands the socket on */
		c->bev = bufferevent_socket_new(c->base, -1, 0);
		if (c->bev == NULL)
			break;
		bufferevent_setcb(c->bev, cnet_read_cb, NULL, cnet_event_cb,
		    c);
		bufferevent_setwatermark(c->bev, EV_READ, 0,
		    CLIENT_LINE_MAX + 4096);
		if (bufferevent_socket_connect(c->bev, c->cur->ai_addr,
		    (int)c->cur->ai_addrlen) == 0)
			return;
		snprintf(why, sizeof(why), "%s port %s: %s", c->host, c->port,
		    strerror(errno));
		cnet_bev_free(c);
		if (c->cur->ai_next == NULL) {
			cnet_fail(c, CNET_ECONNECT, why);
			return;
		}
	}
	cnet_fail(c, CNET_ECONNECT, "cannot create a socket");
}

/*
 * Start connecting. The outcome comes through the callbacks: ready with
 * the greeting, or lost (possibly before this function returns).
 */
void
cnet_connect(struct cnet *c)
{
	struct addrinfo	 hints;
	char		 why[256];
	int		 rv;

	cnet_teardown(c);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	if ((rv = getaddrinfo(c->host, c->port, &hints, &c->ai)) != 0) {
		snprintf(why, sizeof(why), "%s port %s: %s", c->host, c->port,
		    gai_strerror(rv));
		c->ai = NULL;
		cnet_fail(c, CNET_ECONNECT, why);
		return;
	}
	c->cur = c->ai;
	c->tmo = evtimer_new(c->base, cnet_timeout_cb, c);
	cnet_arm(c);
	cnet_try(c);
}

/* Send one command line; fn gets every line of its reply. */
void
cnet_send(struct cnet *c, cnet_reply_fn *fn, void *arg, const char *fmt, ...)
{
	va_list	 ap;
	char	*line;
	int	 len;

	if (c->bev == NULL)
		return;
	va_start(ap, fmt);
	len = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (len == -1)
		return;
	cnet_queue(c, fn, arg, line, (size_t)len);
	free(line);
}

/* Send "VERB name password" and scrub the copy of the password. */
void
cnet_send_secret(struct cnet *c, cnet_reply_fn *fn, void *arg,
    const char *verb, const char *name, const char *pass)
{
	char	*line;
	size_t	 len;

	if (c->bev == NULL)
		return;
	len = strlen(verb) + strlen(name) + strlen(pass) + 3;
	line = xmalloc(len);
	snprintf(line, len, "%s %s %s", verb, name, pass);
	cnet_queue(c, fn, arg, line, strlen(line));
	explicit_bzero(line, len);
	free(line);
}

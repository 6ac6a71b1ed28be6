/*
 * client-net.c: one connection to a mychat server: connecting with a
 * timeout, line framing with a bounded line length, telling replies from
 * pushes, and handing each reply to the request that asked for it (the
 * server answers in order, so a FIFO of pending requests is enough).
 * Every wait (connect, greeting, each reply) has the same timeout.
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

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "client.h"
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
	unsigned int		 gen;		/* bumped at each teardown */
	char			*line;		/* CLIENT_LINE_MAX + 1 bytes */
	TAILQ_HEAD(, creq)	 reqs;
};

static void	cnet_try(struct cnet *);
static void	cnet_fail(struct cnet *, enum cnet_err, const char *);

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
	TAILQ_INIT(&c->reqs);
	return (c);
}

/* Drop the socket, the timer and every pending request, silently. */
static void
cnet_teardown(struct cnet *c)
{
	struct creq	*r;

	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
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
	c->gen++;
}

/* Free a connection; no callback runs afterwards. */
void
cnet_free(struct cnet *c)
{
	if (c == NULL)
		return;
	cnet_teardown(c);
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
	if (c->greeted && TAILQ_EMPTY(&c->reqs)) {
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
	else if (!c->greeted)
		snprintf(why, sizeof(why), "no greeting from %s after %d s",
		    c->host, c->timeout);
	else
		snprintf(why, sizeof(why), "no reply from %s after %d s",
		    c->host, c->timeout);
	cnet_fail(c, CNET_ETIMEOUT, why);
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
		if (last == 1 && code == RPL_OK) {
			c->greeted = 1;
			cnet_arm(c);
			c->cb->ready(c->arg, text);
		} else if (last == 1 && code == RPL_CLOSING) {
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

/* Connected, closed, or failed. */
static void
cnet_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct cnet	*c = arg;
	char		 why[256];
	int		 err = EVUTIL_SOCKET_ERROR();
	unsigned int	 gen = c->gen;

	if (what & BEV_EVENT_CONNECTED) {
		c->connected = 1;
		bufferevent_enable(bev, EV_READ);
		return;
	}
	if (!c->connected) {
		snprintf(why, sizeof(why), "%s port %s: %s", c->host,
		    c->port, strerror(err));
		bufferevent_free(c->bev);
		c->bev = NULL;
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
		c->bev = bufferevent_socket_new(c->base, -1,
		    BEV_OPT_CLOSE_ON_FREE);
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
		bufferevent_free(c->bev);
		c->bev = NULL;
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

/* Queue a request line and the function that takes its reply. */
static void
cnet_queue(struct cnet *c, cnet_reply_fn *fn, void *arg, const char *line,
    size_t len)
{
	struct creq	*r;
	int		 was_idle = TAILQ_EMPTY(&c->reqs);

	r = xcalloc(1, sizeof(*r));
	r->fn = fn;
	r->arg = arg;
	TAILQ_INSERT_TAIL(&c->reqs, r, entry);
	bufferevent_write(c->bev, line, len);
	bufferevent_write(c->bev, "\r\n", 2);
	if (was_idle)
		cnet_arm(c);
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

/*
 * conn.c: one client connection: its bufferevent, line framing with a hard
 * line limit, the output limit that pauses reading, held replies while a
 * commit group is open, timeouts, and the single teardown path.
 *
 * Memory per connection is bounded: input is read up to a high watermark
 * and an overlong line is discarded as it arrives (413, the session goes
 * on); when the output passes the limit the connection stops reading
 * commands and stops receiving pushes (they stay in the log) until the
 * output drains to half the limit.
 *
 * A plain connection does its own socket I/O on the hot path, for fewer
 * system calls per loop pass: rd_ev reads the socket with one read(2)
 * (evbuffer_read would ask FIONREAD first), and what a pass adds to the
 * output is written at the end of the pass (conn_flush), after the commit
 * group has answered, instead of waiting for "writable" (two epoll_ctl
 * calls per connection per pass). The bufferevent keeps the two buffers
 * and writes only what the socket did not take at once. TLS connections
 * leave all of it to bufferevent_openssl.
 *
 * Most connections are quiet most of the time, and a bufferevent with its
 * two evbuffers and callbacks is about 1 KiB of the ~1.5 KiB an idle
 * session costs. A connection that read and wrote nothing for a whole
 * park sweep (PARK_SECS), with nothing buffered either way and nothing
 * pending, is parked: the bufferevent is freed and one event on the
 * socket waits, with what is left of the idle timeout. Readable input,
 * the timeout, or a reply or push to write wake it: a new bufferevent
 * takes over the same descriptor.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mychat.h"
#include "xmalloc.h"

/* What holds a plain connection's reading off (c->rd_off). */
#define RD_PAUSED	0x01	/* EOF, closing, STARTTLS, a full output */
#define RD_FULL		0x02	/* the input is at CONN_INPUT_MAX */

/* Input held unparsed at most: a line and 16 KiB more. */
#define CONN_INPUT_MAX(cf)	((size_t)(cf)->max_line + 16384)

static void	conn_read_cb(struct bufferevent *, void *);
static void	conn_sock_read_cb(evutil_socket_t, short, void *);
static void	conn_read_arm(struct conn *);
static void	conn_eof(struct conn *);
static void	conn_write_cb(struct bufferevent *, void *);
static void	conn_event_cb(struct bufferevent *, short, void *);
static void	conn_process(struct conn *);
static void	conn_idle_timeout(struct conn *);
static void	conn_park_sweep_cb(evutil_socket_t, short, void *);
static void	conn_park_cb(evutil_socket_t, short, void *);
static void	conn_park_arm(struct conn *);

/*
 * Output added to a plain connection: write it at the end of the loop
 * pass (conn_flush_cb), after the commit group has answered.
 */
static void
conn_flush_queue(struct conn *c)
{
	struct server	*srv = c->srv;

	if (c->flags & (CONN_FLUSHQ | CONN_TLS | CONN_DEAD))
		return;
	if (TAILQ_EMPTY(&srv->flushq))
		event_active(srv->flush_ev, EV_TIMEOUT, 0);
	TAILQ_INSERT_TAIL(&srv->flushq, c, flush_entry);
	c->flags |= CONN_FLUSHQ;
}

/*
 * Every change of the output buffer: count what leaves it for the socket
 * (STATS bytes_out), and queue what is added for this pass's write.
 */
void
conn_out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct conn	*c = arg;
	struct server	*srv = c->srv;

	srv->stats.bytes_out += info->n_deleted;
	if (info->n_added == 0)
		return;
	if (store_sync_pending(srv->store)) {
		/*
		 * Output added while a commit's fsync is pending may tell of
		 * the group (a 250, a push): it waits for the sync. A TLS
		 * bufferevent writes on its own, so wait for it now (libevent
		 * runs an evbuffer's callbacks newest first: this one before
		 * the bufferevent's); a plain connection's write is ours
		 * (conn_flush_cb), and libevent's writing of an earlier rest
		 * stops until the sync is done.
		 */
		if (c->flags & CONN_TLS) {
			group_sync_end(srv);
			return;
		}
		if (c->bev != NULL &&
		    (bufferevent_get_enabled(c->bev) & EV_WRITE))
			bufferevent_disable(c->bev, EV_WRITE);
	}
	conn_flush_queue(c);
}

/*
 * Can the pass's write of a live plain connection (conn_flush checked)
 * go straight to the socket? Only when nothing waits for the write
 * callback: not a close or STARTTLS after the reply, not a paused reader
 * or a pump with more to send, and libevent is not already writing the
 * rest of an earlier pass.
 */
static int
conn_direct_write_ok(struct conn *c)
{
	if (c->flags & (CONN_STARTTLS | CONN_OUTFULL))
		return (0);
	if (c->state == S_CLOSING || (c->state == S_READY && !c->caught_up))
		return (0);
	return (!(bufferevent_get_enabled(c->bev) & EV_WRITE));
}

/*
 * Write a plain connection's output now. Its bufferevent keeps EV_WRITE
 * disabled while the output is empty: waiting for "writable" would cost
 * two epoll_ctl calls and a loop pass per reply. What the socket does not
 * take, or what a write callback must follow, goes to libevent as before.
 */
static void
conn_flush(struct conn *c)
{
	struct evbuffer	*out;
	int		 n;

	if (c->flags & (CONN_DEAD | CONN_PARKED | CONN_TLS) || c->bev == NULL)
		return;
	out = bufferevent_get_output(c->bev);
	if (evbuffer_get_length(out) == 0)
		return;
	if (conn_direct_write_ok(c)) {
		/* the bufferevent freezes the start of its output buffer */
		evbuffer_unfreeze(out, 1);
		n = evbuffer_write(out, c->fd);
		evbuffer_freeze(out, 1);
		if (n > 0) {
			c->flags |= CONN_ACTIVE;
			if (evbuffer_get_length(out) == 0)
				return;
		}
		/* the rest, or the error, is the write event's */
	}
	bufferevent_enable(c->bev, EV_WRITE);
}

/* The end of a loop pass: write what the pass added to plain outputs. */
void
conn_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server	*srv = arg;
	struct conn	*c;

	/* held until the sync is done: group_sync_end comes back here */
	if (store_sync_pending(srv->store))
		return;
	while ((c = TAILQ_FIRST(&srv->flushq)) != NULL) {
		TAILQ_REMOVE(&srv->flushq, c, flush_entry);
		c->flags &= ~CONN_FLUSHQ;
		conn_flush(c);
	}
}

/* Milliseconds on the monotonic clock. */
static int64_t
conn_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/*
 * The idle timeout, whole or (left) what remains of it since the last
 * read; NULL when there is none.
 */
static struct timeval *
conn_idle_tv(struct conn *c, int left, struct timeval *tv)
{
	struct conf	*cf = c->srv->conf;
	int64_t		 ms;

	if (cf->idle_timeout <= 0)
		return (NULL);
	ms = (int64_t)cf->idle_timeout * 1000;
	if (left) {
		ms -= conn_now_ms() - c->read_ms;
		if (ms < 1)
			ms = 1;
	}
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
	return (tv);
}

/* The read side's: woken from park, the timer runs on from the last read. */
static struct timeval *
conn_read_timeout(struct conn *c, struct timeval *tv)
{
	return (conn_idle_tv(c, c->flags & CONN_SHORT_TO, tv));
}

/* Watermarks, single read/write sizes and timeouts of the bufferevent. */
static void
conn_apply_bev(struct conn *c)
{
	struct conf	*cf = c->srv->conf;
	struct timeval	 tv, rtv, *wtv = NULL;

	/* the write callback fires when output drains to half the limit */
	bufferevent_setwatermark(c->bev, EV_WRITE, cf->out_limit / 2, 0);
	/*
	 * libevent moves at most 16 KiB per read or write callback by
	 * default: a busy recipient then gets ~150 pushes per loop pass,
	 * and a loop pass costs a commit. Let one pass move a whole
	 * output limit's worth, and read a full line.
	 */
	bufferevent_set_max_single_write(c->bev, cf->out_limit);
	if (cf->idle_timeout > 0) {
		tv.tv_sec = cf->idle_timeout;
		tv.tv_usec = 0;
		wtv = &tv;
	}
	if (!(c->flags & CONN_TLS)) {
		/* plain: rd_ev reads (conn_sock_read_cb), the bufferevent writes */
		bufferevent_set_timeouts(c->bev, NULL, wtv);
		conn_read_arm(c);
		return;
	}
	/* read at most a line and some more before we parse */
	bufferevent_setwatermark(c->bev, EV_READ, 0, CONN_INPUT_MAX(cf));
	bufferevent_set_max_single_read(c->bev, CONN_INPUT_MAX(cf));
	bufferevent_set_timeouts(c->bev, conn_read_timeout(c, &rtv), wtv);
}

/* Callbacks, limits and events of a new or woken bufferevent. */
static void
conn_setup_bev(struct conn *c)
{
	evbuffer_add_cb(bufferevent_get_output(c->bev), conn_out_cb, c);
	if (c->flags & CONN_TLS) {
		bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb,
		    conn_event_cb, c);
		conn_apply_bev(c);
		bufferevent_enable(c->bev, EV_READ | EV_WRITE);
		return;
	}
	/*
	 * A plain connection reads its socket itself: one read(2) per
	 * pass, without the FIONREAD ioctl that evbuffer_read makes before
	 * each read. conn_flush writes at the end of the pass and turns EV_WRITE
	 * on for what the socket did not take. The bufferevent never reads:
	 * the input is ours to add to.
	 */
	bufferevent_setcb(c->bev, NULL, conn_write_cb, conn_event_cb, c);
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	evbuffer_unfreeze(bufferevent_get_input(c->bev), 0);
	c->rd_off = 0;
	event_assign(&c->rd_ev, c->srv->base, c->fd, EV_READ | EV_PERSIST,
	    conn_sock_read_cb, c);
	conn_apply_bev(c);
}

/*
 * A plain connection reads while nothing holds reading off: rd_ev is
 * added again (the idle timer restarts) or deleted. Parked, rd_ev is the
 * park's.
 */
static void
conn_read_arm(struct conn *c)
{
	struct timeval	tv;

	if (c->flags & CONN_PARKED)
		return;
	if (c->rd_off != 0 || (c->flags & CONN_DEAD))
		event_del(&c->rd_ev);
	else
		event_add(&c->rd_ev, conn_read_timeout(c, &tv));
}

/* Stop reading commands (EOF, closing, STARTTLS, a full output) or go on. */
void
conn_read_enable(struct conn *c, int on)
{
	if (c->flags & CONN_TLS) {
		if (on)
			bufferevent_enable(c->bev, EV_READ);
		else
			bufferevent_disable(c->bev, EV_READ);
		return;
	}
	if (on)
		c->rd_off &= ~RD_PAUSED;
	else
		c->rd_off |= RD_PAUSED;
	conn_read_arm(c);
}

/* Set up a new bufferevent (connect, TLS, STARTTLS): the idle timer starts. */
void
conn_setup(struct conn *c)
{
	struct server	*srv = c->srv;
	struct timeval	 tv = { PARK_SECS, 0 };

	if (!srv->park_on) {
		event_assign(&srv->park_ev, srv->base, -1, EV_PERSIST,
		    conn_park_sweep_cb, srv);
		event_add(&srv->park_ev, &tv);
		srv->park_on = 1;
	}
	c->read_ms = conn_now_ms();
	c->flags = (c->flags & ~CONN_SHORT_TO) | CONN_ACTIVE;
	conn_setup_bev(c);
}

/* Is the address exempt (asked once, not per command)? Again after SIGHUP. */
static void
conn_set_exempt(struct conn *c)
{
	if (conf_is_exempt(c->srv->conf, c->addr))
		c->flags |= CONN_EXEMPT;
	else
		c->flags &= ~CONN_EXEMPT;
}

/*
 * Limits from the configuration, again after SIGHUP for open sessions;
 * like bufferevent_set_timeouts, this restarts the idle timer.
 */
void
conn_apply_conf(struct conn *c)
{
	conn_set_exempt(c);
	if (c->state == S_CLOSING || (c->flags & CONN_DEAD))
		return;
	c->read_ms = conn_now_ms();
	c->flags &= ~CONN_SHORT_TO;
	if (c->flags & CONN_PARKED)
		conn_park_arm(c);
	else if (c->bev != NULL)
		conn_apply_bev(c);
}

/* Park's event: what is left of the idle timeout, from the last read. */
static void
conn_park_arm(struct conn *c)
{
	struct timeval	tv;

	event_del(&c->rd_ev);
	event_add(&c->rd_ev, conn_idle_tv(c, 1, &tv));
}

/* Can this connection give up its bufferevent now? */
static int
conn_parkable(struct conn *c)
{
	if (c->flags & (CONN_DISCARD | CONN_DEAD | CONN_OUTFULL | CONN_TLS |
	    CONN_STARTTLS | CONN_EOF | CONN_PARKED | CONN_ACTIVE))
		return (0);
	if (c->state != S_NEW && c->state != S_READY)
		return (0);
	if (c->state == S_READY && !c->caught_up)
		return (0);	/* the pump has more to send */
	if (c->nwait > 0 || c->job != NULL || c->bev == NULL || c->rd_off != 0)
		return (0);
	if (c->held != NULL && evbuffer_get_length(c->held) > 0)
		return (0);
	return (evbuffer_get_length(bufferevent_get_input(c->bev)) == 0 &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0);
}

/* Free the bufferevent of a quiet connection; rd_ev watches the socket. */
static void
conn_park(struct conn *c)
{
	event_del(&c->rd_ev);
	if (c->held != NULL) {
		evbuffer_free(c->held);
		c->held = NULL;
	}
	bufferevent_free(c->bev);	/* not BEV_OPT_CLOSE_ON_FREE */
	c->bev = NULL;
	c->flags |= CONN_PARKED;
	log_debug("conn %llu: parked", (unsigned long long)c->id);
	event_assign(&c->rd_ev, c->srv->base, c->fd, EV_READ,
	    conn_park_cb, c);
	conn_park_arm(c);
}

/* A parked connection gets its bufferevent back. */
static void
conn_wake(struct conn *c)
{
	log_debug("conn %llu: woken", (unsigned long long)c->id);
	event_del(&c->rd_ev);
	c->flags &= ~CONN_PARKED;
	c->flags |= CONN_ACTIVE | CONN_SHORT_TO;
	c->bev = bufferevent_socket_new(c->srv->base, c->fd, 0);
	if (c->bev == NULL)
		fatalx("%s: bufferevent_socket_new", __func__);
	conn_setup_bev(c);
}

/* The bufferevent, woken first if the connection is parked. */
static struct bufferevent *
conn_bev(struct conn *c)
{
	if (c->flags & CONN_PARKED)
		conn_wake(c);
	return (c->bev);
}

/*
 * A parked socket is readable (input or EOF: the new bufferevent reads it
 * on the next loop pass) or its idle time is up.
 */
static void
conn_park_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;

	conn_wake(c);
	if (what & EV_TIMEOUT)
		conn_idle_timeout(c);
}

/* Once per PARK_SECS: park connections quiet since the last sweep. */
static void
conn_park_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server	*srv = arg;
	struct conn	*c;

	TAILQ_FOREACH(c, &srv->conns, entry) {
		if (conn_parkable(c))
			conn_park(c);
		c->flags &= ~CONN_ACTIVE;
	}
}

/* A new connection on fd: greet it at once. */
struct conn *
conn_new(struct server *srv, int fd, const struct sockaddr *sa, int tls)
{
	struct conn	*c;
	int		 one = 1;

	c = xcalloc(1, sizeof(*c));
	c->srv = srv;
	c->fd = fd;
	c->id = ++srv->next_conn_id;
	c->since = time(NULL);
	c->state = S_NEW;
	c->tokens = srv->conf->cmd_burst;
	clock_gettime(CLOCK_MONOTONIC, &c->tokens_at);
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
		    c->addr, sizeof(c->addr));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *)sa)->sin6_addr, c->addr,
		    sizeof(c->addr));
	else
		snprintf(c->addr, sizeof(c->addr), "unknown");
	conn_set_exempt(c);
	/* replies are small and latency matters: no Nagle */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	if (tls) {
		if (tls_wrap(c) == -1) {
			close(fd);
			free(c);
			return (NULL);
		}
	} else {
		/*
		 * The socket outlives a plain bufferevent: STARTTLS swaps
		 * it for a TLS one on the same descriptor. conn_close
		 * closes it.
		 */
		c->bev = bufferevent_socket_new(srv->base, fd, 0);
		if (c->bev == NULL) {
			log_warnx("%s: bufferevent_socket_new", __func__);
			close(fd);
			free(c);
			return (NULL);
		}
	}
	TAILQ_INSERT_TAIL(&srv->conns, c, entry);
	srv->nconns++;
	limit_conns_ip_add(srv, c->addr, 1);
	srv->stats.conns_total++;
	conn_setup(c);
	log_debug("conn %llu: connected from %s%s", (unsigned long long)c->id,
	    c->addr, tls ? " (tls)" : "");
	conn_reply(c, RPL_OK, "%s mychat %s ready", srv->hostname,
	    PACKAGE_VERSION);
	return (c);
}

/* Where replies go now: held while a commit is pending, else the socket. */
static struct evbuffer *
conn_sink(struct conn *c)
{
	if (c->nwait > 0) {
		if (c->held == NULL && (c->held = evbuffer_new()) == NULL)
			fatalx("%s: evbuffer_new", __func__);
		return (c->held);
	}
	return (bufferevent_get_output(conn_bev(c)));
}

/* Format a reply line and add it in one piece (one TLS record). */
static void
conn_vreply(struct conn *c, int code, char sep, const char *fmt, va_list ap)
{
	struct evbuffer	*out;
	char		 line[512];
	va_list		 ap2;
	int		 n;

	if (c->flags & CONN_DEAD)
		return;
	out = conn_sink(c);
	va_copy(ap2, ap);
	n = snprintf(line, sizeof(line), "%03d%c", code, sep);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap2);
	va_end(ap2);
	if ((size_t)n + 2 < sizeof(line)) {
		memcpy(line + n, "\r\n", 2);
		evbuffer_add(out, line, (size_t)n + 2);
		return;
	}
	evbuffer_add_printf(out, "%03d%c", code, sep);
	evbuffer_add_vprintf(out, fmt, ap);
	evbuffer_add(out, "\r\n", 2);
}

/* Send (or hold) a final reply line "NNN text". */
void
conn_reply(struct conn *c, int code, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	conn_vreply(c, code, ' ', fmt, ap);
	va_end(ap);
}

/* Send (or hold) a continuation line "NNN-text" of a multi-line reply. */
void
conn_reply_more(struct conn *c, int code, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	conn_vreply(c, code, '-', fmt, ap);
	va_end(ap);
}

/* Send (or hold) raw reply bytes, already framed. */
void
conn_write(struct conn *c, const char *p, size_t len)
{
	if (c->flags & CONN_DEAD)
		return;
	evbuffer_add(conn_sink(c), p, len);
}

/* A push goes straight to the socket: it is not a reply to anything. */
void
conn_push(struct conn *c, const char *p, size_t len)
{
	if (c->flags & CONN_DEAD)
		return;
	evbuffer_add(bufferevent_get_output(conn_bev(c)), p, len);
	c->srv->stats.msgs_pushed++;
}

/* The output buffer, for writers outside conn.c: wakes a parked conn. */
struct evbuffer *
conn_output(struct conn *c)
{
	return (bufferevent_get_output(conn_bev(c)));
}

/* Is the output over the limit (stop reading, stop pushing)? */
int
conn_output_full(struct conn *c)
{
	if (c->flags & CONN_PARKED)
		return (0);
	return (evbuffer_get_length(bufferevent_get_output(c->bev)) >=
	    c->srv->conf->out_limit);
}

/* Close once the final reply is flushed (CLOSE, 421). */
void
conn_close_after(struct conn *c)
{
	struct timeval	tv = { CLOSE_FLUSH_SECS, 0 };

	conn_bev(c);
	session_set_state(c, S_CLOSING);
	conn_read_enable(c, 0);
	bufferevent_set_timeouts(c->bev, NULL, &tv);
	if (c->nwait == 0 &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_close(c, "closed");
}

/*
 * The one teardown path. The socket goes at once; the struct waits for the
 * reaper, since the caller's stack or the commit group may still hold it.
 */
void
conn_close(struct conn *c, const char *reason)
{
	struct server	*srv = c->srv;

	if (c->flags & CONN_DEAD)
		return;
	log_debug("conn %llu: %s", (unsigned long long)c->id, reason);
	if (c->job != NULL) {
		auth_cancel(c->job);
		c->job = NULL;
	}
	session_logout(c);
	if (c->flags & CONN_FLUSHQ) {
		TAILQ_REMOVE(&srv->flushq, c, flush_entry);
		c->flags &= ~CONN_FLUSHQ;
	}
	c->flags |= CONN_DEAD;
	if (c->flags & CONN_PARKED) {
		event_del(&c->rd_ev);
		close(c->fd);
	} else if (c->bev != NULL) {
		if (c->flags & CONN_TLS)
			tls_close(c);	/* close_notify; frees the SSL and fd */
		else {
			event_del(&c->rd_ev);
			bufferevent_free(c->bev);
			close(c->fd);
		}
		c->bev = NULL;
	}
	TAILQ_REMOVE(&srv->conns, c, entry);
	srv->nconns--;
	limit_conns_ip_add(srv, c->addr, -1);
	TAILQ_INSERT_TAIL(&srv->dead, c, entry);
	event_active(srv->reap_ev, EV_TIMEOUT, 0);
}

/* Free closed connections no commit group refers to any more. */
void
conn_reap(struct server *srv)
{
	struct conn	*c, *next;

	for (c = TAILQ_FIRST(&srv->dead); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->nwait > 0)
			continue;	/* group_commit_cb reaps it later */
		TAILQ_REMOVE(&srv->dead, c, entry);
		if (c->held != NULL)
			evbuffer_free(c->held);
		free(c);
	}
}

void
conn_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_reap(arg);
}

/* Go on with buffered input after a pause (auth done, output drained). */
void
conn_resume(struct conn *c)
{
	if (c->flags & (CONN_DEAD | CONN_PARKED) || c->state == S_CLOSING)
		return;		/* parked: nothing buffered to go on with */
	if (conn_output_full(c))
		return;
	if (c->flags & CONN_OUTFULL) {
		c->flags &= ~CONN_OUTFULL;
		if (!(c->flags & CONN_EOF))
			conn_read_enable(c, 1);
	}
	conn_process(c);
}

/*
 * Take complete lines out of the input and dispatch them, in order, until
 * the input runs dry, the session must wait (a hash on a worker), or the
 * output is over its limit.
 */
static void
conn_process(struct conn *c)
{
	struct server		*srv = c->srv;
	struct evbuffer		*in = bufferevent_get_input(c->bev);
	size_t			 max = srv->conf->max_line, len, eol_len;
	struct evbuffer_ptr	 p;

	while (!(c->flags & CONN_DEAD) && c->state != S_AUTHING &&
	    c->state != S_CLOSING) {
		if (conn_output_full(c)) {
			/* slow reader: stop reading until the output drains */
			c->flags |= CONN_OUTFULL;
			conn_read_enable(c, 0);
			break;
		}
		p = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
		if (c->flags & CONN_DISCARD) {
			/* the rest of an overlong line: drop it as it comes */
			if (p.pos == -1) {
				evbuffer_drain(in, evbuffer_get_length(in));
				break;
			}
			evbuffer_drain(in, (size_t)p.pos + eol_len);
			c->flags &= ~CONN_DISCARD;
			continue;
		}
		if (p.pos == -1) {
			len = evbuffer_get_length(in);
			if (len > max + 1) {
				conn_reply(c, RPL_TOOLONG,
				    "line too long (max %zu bytes)", max);
				c->flags |= CONN_DISCARD;
				evbuffer_drain(in, len);
			}
			break;
		}
		len = (size_t)p.pos;
		if (len > max + 1) {
			conn_reply(c, RPL_TOOLONG, "line too long (max %zu bytes)",
			    max);
			evbuffer_drain(in, len + eol_len);
			continue;
		}
		/* the line and its LF in one go (linebuf: max_line + 2) */
		evbuffer_remove(in, srv->linebuf, len + eol_len);
		srv->stats.bytes_in += len + eol_len;
		if (len > 0 && srv->linebuf[len - 1] == '\r')
			len--;
		if (len > max) {
			conn_reply(c, RPL_TOOLONG, "line too long (max %zu bytes)",
			    max);
			continue;
		}
		srv->linebuf[len] = '\0';
		cmd_dispatch(c, srv->linebuf, len);
	}
	/* the input went below its limit: read again */
	if ((c->rd_off & RD_FULL) && !(c->flags & (CONN_DEAD | CONN_TLS)) &&
	    evbuffer_get_length(in) < CONN_INPUT_MAX(srv->conf)) {
		c->rd_off &= ~RD_FULL;
		conn_read_arm(c);
	}
	/* the peer shut down its side: answer what it sent, then close */
	if ((c->flags & (CONN_EOF | CONN_DEAD)) == CONN_EOF &&
	    c->state != S_AUTHING && c->state != S_CLOSING &&
	    !(c->flags & CONN_OUTFULL))
		conn_close_after(c);
}

/* Input arrived: run the commands it completes. */
static void
conn_input(struct conn *c)
{
	c->read_ms = conn_now_ms();
	c->flags |= CONN_ACTIVE;
	if (c->flags & CONN_SHORT_TO) {
		/* woken from park: the idle timer is whole again */
		c->flags &= ~CONN_SHORT_TO;
		conn_apply_bev(c);
	}
	conn_process(c);
}

/* A TLS bufferevent read. */
static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	conn_input(arg);
}

/*
 * A plain socket is readable (or its idle time is up): one read into the
 * server's read buffer, then into the input, which so grows by what came
 * rather than by a read's worth of room. While commands wait (a hash, a
 * full output), input piles up to a line and 16 KiB more at most, then
 * reading stops until it is parsed.
 */
static void
conn_sock_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;
	struct server	*srv = c->srv;
	ssize_t		 n;

	if (what & EV_TIMEOUT) {
		conn_idle_timeout(c);
		return;
	}
	if ((n = read(fd, srv->readbuf, CONN_READ_SIZE)) <= 0) {
		if (n == 0)
			conn_eof(c);
		else if (errno != EAGAIN && errno != EINTR)
			conn_close(c, "connection error");
		return;
	}
	if (evbuffer_add(bufferevent_get_input(c->bev), srv->readbuf,
	    (size_t)n) == -1)
		fatalx("%s: evbuffer_add", __func__);
	conn_input(c);
	if ((c->flags & (CONN_DEAD | CONN_TLS | CONN_PARKED)) || c->bev == NULL)
		return;
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) >=
	    CONN_INPUT_MAX(srv->conf)) {
		c->rd_off |= RD_FULL;
		conn_read_arm(c);
	}
}

/* Output drained to the low mark (or empty): close, resume, or pump. */
static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;
	size_t		 left = evbuffer_get_length(bufferevent_get_output(bev));

	c->flags |= CONN_ACTIVE;

	if (c->flags & CONN_STARTTLS) {
		if (left == 0 && c->nwait == 0)
			conn_starttls(c);
		return;
	}
	if (c->state == S_CLOSING) {
		if (left == 0 && c->nwait == 0)
			conn_close(c, "closed after reply");
		return;
	}
	if (c->state == S_READY && !c->caught_up)
		session_pump(c);
	if (c->flags & CONN_OUTFULL)
		conn_resume(c);
	/* drained: the next pass's output goes out through conn_flush */
	if (!(c->flags & (CONN_TLS | CONN_DEAD)) && c->bev != NULL &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		bufferevent_disable(c->bev, EV_WRITE);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn	*c = arg;

	if (what & BEV_EVENT_TIMEOUT) {
		if (c->state == S_CLOSING) {
			conn_close(c, "timeout flushing the last reply");
			return;
		}
		if (what & BEV_EVENT_WRITING) {
			conn_close(c, "write timeout: peer does not read");
			return;
		}
		conn_idle_timeout(c);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		conn_eof(c);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		conn_close(c, tls_error_string(c));
		return;
	}
}

/*
 * The peer shut down its side. A half-close (nc -N, a script piping
 * commands) still deserves answers to what it sent: finish the buffered
 * lines, then close after the last reply is flushed.
 */
static void
conn_eof(struct conn *c)
{
	if (c->state == S_CLOSING) {
		conn_close(c, "connection closed by peer");
		return;
	}
	c->flags |= CONN_EOF;
	conn_read_enable(c, 0);
	conn_process(c);
}

/* No command for idle-timeout seconds: say so and close. */
static void
conn_idle_timeout(struct conn *c)
{
	conn_reply(c, RPL_CLOSING, "idle timeout");
	conn_close_after(c);
}

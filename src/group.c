/*
 * group.c: group commit and delivery.
 *
 * Every write made while handling the commands of one loop pass joins one
 * store transaction (store.c opens it at the first write). Each write is
 * staged here as an op; the connection that made it holds its later
 * replies (conn.c) so that replies stay in command order. The commit
 * event is activated at the first op; libevent 2.1 runs it after every
 * I/O callback of the pass (ENGINEERING.md), so one fsync covers all the
 * messages read in that pass. After the commit each op's reply is spliced
 * into its connection's held replies at the place it was staged, and the
 * messages are pushed to their recipients. If the commit fails, every op
 * is answered 451 and nothing of the group is visible. In the durable
 * mode the fsync runs on the store's thread while the answers are
 * formatted and the loop goes on with the next pass; every output waits
 * until the sync is done (group_sync_end), then leaves.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mychat.h"
#include "xmalloc.h"

static void	group_sync_cb(evutil_socket_t, short, void *);

void
group_init(struct server *srv)
{
	struct commit_group	*g = &srv->group;
	int			 fd;

	g->commit_ev = event_new(srv->base, -1, 0, group_commit_cb, srv);
	if (g->commit_ev == NULL)
		fatalx("%s: event_new", __func__);
	g->time_ms = INT64_MIN;
	if ((fd = store_sync_fd(srv->store)) != -1) {
		g->sync_ev = event_new(srv->base, fd, EV_READ | EV_PERSIST,
		    group_sync_cb, srv);
		if (g->sync_ev == NULL || event_add(g->sync_ev, NULL) == -1)
			fatalx("%s: sync event", __func__);
	}
}

void
group_free(struct server *srv)
{
	struct commit_group	*g = &srv->group;

	if (g->commit_ev != NULL)
		event_free(g->commit_ev);
	if (g->sync_ev != NULL)
		event_free(g->sync_ev);
	free(g->rcpts);
	free(g->ops);
	free(g->buf);
	memset(g, 0, sizeof(*g));
}

/*
 * The last group's fsync is done: what waited for it may leave (conn.c
 * holds plain output while a sync is pending, and a TLS connection's
 * output waits here). A failed sync leaves the group's fate to recovery:
 * exit before any of its answers is sent.
 */
void
group_sync_end(struct server *srv)
{
	if (store_commit_wait(srv->store) == -1)
		fatalx("the log could not be synced: exiting before any reply "
		    "of the last group is sent; a restart recovers the database");
	if (!TAILQ_EMPTY(&srv->flushq))
		event_active(srv->flush_ev, EV_TIMEOUT, 0);
}

/* The fsync thread finished a sync: maybe the one answers wait for. */
static void
group_sync_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server	*srv = arg;

	store_sync_drain(srv->store);
	if (store_sync_pending(srv->store) && store_sync_ready(srv->store))
		group_sync_end(srv);
}

int
group_pending(struct server *srv)
{
	return (srv->group.nops > 0);
}

/* Stage an op for c; its reply will be written at this point. */
struct group_op *
group_stage(struct server *srv, struct conn *c, enum op_type type)
{
	struct commit_group	*g = &srv->group;
	struct group_op	*op;

	if (g->nops == g->opsalloc) {
		g->opsalloc = g->opsalloc == 0 ? 256 : g->opsalloc * 2;
		g->ops = xreallocarray(g->ops, g->opsalloc, sizeof(*g->ops));
	}
	op = &g->ops[g->nops++];
	memset(op, 0, sizeof(*op));
	op->type = type;
	op->conn = c;
	if (c->nwait == 0) {
		/* from now on this connection's replies are held */
		c->held_moved = 0;
	}
	op->held_off = c->held == NULL ? 0 : evbuffer_get_length(c->held);
	c->nwait++;
	if (g->nops == 1)
		event_active(g->commit_ev, EV_TIMEOUT, 0);
	return (op);
}

/*
 * Keep the push line of a staged message, formatted once for everyone:
 * "MSG <id> <from> <time> <text>". By hand, not printf: one per message.
 */
void
group_set_line(struct server *srv, struct group_op *op, uint64_t id,
    const char *from, int64_t time_ms, const char *text, size_t len)
{
	struct commit_group	*g = &srv->group;
	size_t		 need, n, fl = strlen(from);
	char		*p;

	need = 4 + 20 + 1 + fl + 1 + PROTO_TIME_LEN + 1 + len + 3;
	if (g->buflen + need > g->bufalloc) {
		while (g->buflen + need > g->bufalloc)
			g->bufalloc = g->bufalloc == 0 ? 65536 :
			    g->bufalloc * 2;
		g->buf = xreallocarray(g->buf, 1, g->bufalloc);
	}
	p = g->buf + g->buflen;
	memcpy(p, "MSG ", 4);
	n = 4 + proto_fmt_u64(p + 4, id);
	p[n++] = ' ';
	memcpy(p + n, from, fl);
	n += fl;
	p[n++] = ' ';
	/* the messages of a group mostly share their millisecond */
	if (time_ms != g->time_ms) {
		proto_format_time(time_ms, g->time_str);
		g->time_ms = time_ms;
	}
	memcpy(p + n, g->time_str, PROTO_TIME_LEN);
	n += PROTO_TIME_LEN;
	p[n++] = ' ';
	memcpy(p + n, text, len);
	n += len;
	memcpy(p + n, "\r\n", 2);
	n += 2;
	op->line_off = g->buflen;
	op->line_len = n;
	g->buflen += n;
}

/* Move c's held replies up to offset off to its output. */
static void
group_flush_held(struct conn *c, size_t off)
{
	size_t	n;

	if (c->held == NULL || off <= c->held_moved)
		return;
	n = off - c->held_moved;
	if (!(c->flags & CONN_DEAD))
		evbuffer_remove_buffer(c->held, conn_output(c), n);
	else
		evbuffer_drain(c->held, n);
	c->held_moved = off;
}

/* "250 <id> delivered|queued|already stored", one per message. */
static void
group_reply_stored(struct evbuffer *out, const struct group_op *op)
{
	char		 line[64];
	const char	*what;
	size_t		 n, wl;

	what = op->dup ? "already stored" : op->online ? "delivered" :
	    "queued";
	wl = strlen(what);
	n = proto_fmt_u64(line, RPL_STORED);
	line[n++] = ' ';
	n += proto_fmt_u64(line + n, op->id);
	line[n++] = ' ';
	memcpy(line + n, what, wl);
	n += wl;
	memcpy(line + n, "\r\n", 2);
	evbuffer_add(out, line, n + 2);
}

/* "200 acked <id>", one per message the receivers acknowledge. */
static void
group_reply_acked(struct evbuffer *out, const struct group_op *op)
{
	char	line[64];
	size_t	n;

	n = proto_fmt_u64(line, RPL_OK);
	memcpy(line + n, " acked ", 7);
	n += 7;
	n += proto_fmt_u64(line + n, op->id);
	memcpy(line + n, "\r\n", 2);
	evbuffer_add(out, line, n + 2);
}

/* The event line of a stored message: "message <id> from <a> to <b> size <n>". */
static void
group_log_msg(const struct group_op *op)
{
	/* at most 8 + 20 + 6 + 32 + 4 + 32 + 6 + 20 = 128 bytes */
	char	line[160];
	size_t	n;

	memcpy(line, "message ", 8);
	n = 8 + proto_fmt_u64(line + 8, op->id);
	memcpy(line + n, " from ", 6);
	n += 6;
	n += proto_copy(line + n, op->name, PROTO_NAME_MAX + 1);
	memcpy(line + n, " to ", 4);
	n += 4;
	n += proto_copy(line + n, op->rcpt, PROTO_NAME_MAX + 1);
	memcpy(line + n, " size ", 6);
	n += 6;
	n += proto_fmt_u64(line + n, op->size);
	log_event_line(line, n);
}

/* Write an op's reply, in place, on its connection. */
static void
group_reply(struct group_op *op, int ok)
{
	struct conn	*c = op->conn;
	struct evbuffer	*out;

	group_flush_held(c, op->held_off);
	if (c->flags & CONN_DEAD)
		return;
	out = conn_output(c);
	if (!ok) {
		evbuffer_add_printf(out, "%d try again later\r\n", RPL_TRYLATER);
		return;
	}
	switch (op->type) {
	case OP_MSG:
		group_reply_stored(out, op);
		break;
	case OP_REGISTER:
		evbuffer_add_printf(out, "%d %s registered\r\n", RPL_CREATED,
		    op->name);
		break;
	case OP_LOGIN:
		evbuffer_add_printf(out, "%d welcome %s, %llu waiting\r\n",
		    RPL_OK, op->name, (unsigned long long)op->count);
		break;
	case OP_ACK:
		group_reply_acked(out, op);
		break;
	default:
		fatalx("%s: bad op %d", __func__, (int)op->type);
	}
}

/* Push a committed message to every session of its recipient. */
static void
group_deliver(struct server *srv, struct group_op *op)
{
	struct online	*o;
	struct conn	*c;

	if ((o = session_find(srv, op->rcpt)) == NULL)
		return;
	unacked_add(&o->unacked, op->id, op->name);
	TAILQ_FOREACH(c, &o->conns, user_entry)
		session_push_msg(c, op->id, srv->group.buf + op->line_off,
		    op->line_len);
}

/* One ACKED push per sender, to all of its sessions. */
struct receipt_ctx {
	struct server	*srv;
	uint64_t	 acked;		/* messages this ACK covered */
};

/*
 * Senders come in id order, as runs of messages from one sender; a run
 * from the sender of the run before it only raises that run's id.
 */
static int
group_receipt_cb(const char *sender, uint64_t id, void *arg)
{
	struct receipt_ctx	*rc = arg;
	struct commit_group	*g = &rc->srv->group;
	struct receipt		*r;

	rc->acked++;
	if (g->nrcpts > 0 && strcmp(g->rcpts[g->nrcpts - 1].sender,
	    sender) == 0) {
		g->rcpts[g->nrcpts - 1].max = id;
		return (0);
	}
	if (g->nrcpts == g->rcptsalloc) {
		g->rcptsalloc = g->rcptsalloc == 0 ? 16 : g->rcptsalloc * 2;
		g->rcpts = xreallocarray(g->rcpts, g->rcptsalloc,
		    sizeof(*g->rcpts));
	}
	r = &g->rcpts[g->nrcpts++];
	proto_copy(r->sender, sender, sizeof(r->sender));
	r->max = id;
	return (0);
}

/* By sender, then id: each sender's last run has its highest id. */
static int
group_receipt_cmp(const void *a, const void *b)
{
	const struct receipt	*ra = a, *rb = b;
	int			 d;

	if ((d = strcmp(ra->sender, rb->sender)) != 0)
		return (d);
	return (ra->max < rb->max ? -1 : ra->max > rb->max);
}

/* "ACKED <id> <by>" to every session of each sender, once per sender. */
static void
group_receipt_send(struct server *srv, const char *by)
{
	struct commit_group	*g = &srv->group;
	struct receipt		*r;
	struct online		*o;
	struct conn		*c;
	char			 line[PROTO_NAME_MAX + 48];
	size_t			 i, n;

	/* interleaved senders made several runs each: one receipt per sender */
	if (g->nrcpts > 1)
		qsort(g->rcpts, g->nrcpts, sizeof(*g->rcpts), group_receipt_cmp);
	for (i = 0; i < g->nrcpts; i++) {
		r = &g->rcpts[i];
		if (i + 1 < g->nrcpts && strcmp(r->sender,
		    g->rcpts[i + 1].sender) == 0)
			continue;
		/* lower case, from the list or the inbox */
		if ((o = session_find_lower(srv, r->sender)) == NULL)
			continue;
		/* by hand: one per acknowledged batch */
		memcpy(line, "ACKED ", 6);
		n = 6 + proto_fmt_u64(line + 6, r->max);
		line[n++] = ' ';
		n += proto_copy(line + n, by, PROTO_NAME_MAX + 1);
		memcpy(line + n, "\r\n", 2);
		n += 2;
		TAILQ_FOREACH(c, &o->conns, user_entry)
			if (c->state == S_READY)
				conn_push(c, line, n);
	}
	g->nrcpts = 0;
	if (g->rcptsalloc > 1024) {
		/* a long backlog's ACK: do not keep its array */
		free(g->rcpts);
		g->rcpts = NULL;
		g->rcptsalloc = 0;
	}
}

static void
group_receipts(struct server *srv, struct group_op *op)
{
	struct receipt_ctx	rc;
	struct online		*o;
	char			lname[PROTO_NAME_MAX + 1];

	memset(&rc, 0, sizeof(rc));
	rc.srv = srv;
	srv->group.nrcpts = 0;
	/*
	 * op->count holds the cursor before this ACK. The senders come from
	 * what was delivered to the account (unacked.c), else its inbox.
	 */
	proto_lower(lname, op->name, sizeof(lname));
	o = session_find_lower(srv, lname);
	if ((o == NULL || unacked_take(&o->unacked, op->count, op->id,
	    group_receipt_cb, &rc) == -1) &&
	    store_inbox_senders(srv->store, op->name, op->count, op->id,
	    group_receipt_cb, &rc) == -1)
		log_warnx("%s: receipts for %s not sent", __func__, op->name);
	group_receipt_send(srv, op->name);
	limit_pending_add(srv, lname, -(int64_t)rc.acked);
}

/* Commit the group, then answer and deliver. */
void
group_commit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server	*srv = arg;
	struct commit_group	*g = &srv->group;
	struct group_op	*op;
	struct conn	*c;
	size_t		 i, nops = g->nops;
	int		 ok;

	if (nops == 0)
		return;
	if (store_sync_pending(srv->store)) {
		/* the last group's answers go out before this one's */
		group_sync_end(srv);
		conn_flush_cb(-1, 0, srv);
	}
	ok = store_commit_start(srv->store) == 0;
	if (store_panicked(srv->store))
		fatalx("the database needs recovery (a process died with it "
		    "open?): exiting, a restart recovers it");
	if (!ok) {
		log_warnx("commit of %zu operations failed: answering 451",
		    nops);
		limit_pending_reset(srv);
	}

	/* replies first, in each connection's command order */
	for (i = 0; i < nops; i++) {
		op = &g->ops[i];
		c = op->conn;
		group_reply(op, ok);
		if (!ok) {
			/* the login was optimistic: undo it */
			if ((op->type == OP_REGISTER || op->type == OP_LOGIN) &&
			    !(c->flags & CONN_DEAD) && c->user != NULL) {
				session_logout(c);
				session_set_state(c, S_NEW);
			}
			continue;
		}
		switch (op->type) {
		case OP_MSG:
			if (!op->dup) {
				srv->stats.msgs_accepted++;
				group_log_msg(op);
			}
			break;
		case OP_REGISTER:
			srv->stats.registrations++;
			log_event("register %s from %s", op->name, c->addr);
			break;
		case OP_LOGIN:
			srv->stats.logins++;
			log_event("login %s from %s, %llu waiting", op->name,
			    c->addr, (unsigned long long)op->count);
			break;
		case OP_ACK:
			break;
		default:
			fatalx("%s: bad op %d", __func__, (int)op->type);
		}
	}
	/* the rest of the held replies, and release the connections */
	for (i = 0; i < nops; i++) {
		c = g->ops[i].conn;
		if (c->nwait == 0)
			continue;
		c->nwait = 0;
		if (c->held != NULL) {
			group_flush_held(c, evbuffer_get_length(c->held) +
			    c->held_moved);
			c->held_moved = 0;
		}
	}
	/* then pushes: logins pump the log, messages go from memory */
	if (ok) {
		for (i = 0; i < nops; i++) {
			op = &g->ops[i];
			switch (op->type) {
			case OP_REGISTER:
			case OP_LOGIN:
				if (!(op->conn->flags & CONN_DEAD))
					session_pump(op->conn);
				break;
			case OP_MSG:
				if (!op->dup)
					group_deliver(srv, op);
				break;
			case OP_ACK:
				group_receipts(srv, op);
				break;
			default:
				break;
			}
		}
	}
	g->nops = 0;
	g->buflen = 0;
	/*
	 * Nothing of the group has left the process: the replies and pushes
	 * are in output buffers. In the durable mode the log is being synced
	 * meanwhile (store-sync.c), and they may go once it is on disk. The
	 * loop goes on in the meantime, holding what it writes (conn.c), and
	 * the thread's wakeup (group_sync_cb) lets it all go. A connection
	 * that has nothing to write and waits only to close or start TLS is
	 * the exception: it waits here.
	 */
	/* connections that waited on this group may go on or go away */
	for (i = 0; i < nops; i++) {
		c = g->ops[i].conn;
		if (c->flags & CONN_DEAD)
			continue;
		if (evbuffer_get_length(conn_output(c)) > 0)
			continue;	/* the write callback takes it on */
		if (!(c->flags & CONN_STARTTLS) && c->state != S_CLOSING)
			continue;
		if (store_sync_pending(srv->store))
			group_sync_end(srv);
		if (c->flags & CONN_STARTTLS)
			conn_starttls(c);
		else
			conn_close(c, "closed");
	}
	if (!TAILQ_EMPTY(&srv->dead))
		conn_reap(srv);
	log_flush();
}

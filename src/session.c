/*
 * session.c: protocol state of a connection, the registry of accounts
 * online (name -> its sessions), and delivery to a session: pushes from
 * memory while the session is caught up, from the log when it is not.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mychat.h"
#include "xmalloc.h"

static const char *session_state_names[] = {
	[S_NEW] = "new",
	[S_AUTHING] = "authing",
	[S_READY] = "ready",
	[S_CLOSING] = "closing",
};

const char *
session_state_name(enum sess_state s)
{
	if ((size_t)s >= sizeof(session_state_names) /
	    sizeof(session_state_names[0]))
		fatalx("%s: bad state %d", __func__, (int)s);
	return (session_state_names[s]);
}

/* The only place a session changes state. */
void
session_set_state(struct conn *c, enum sess_state s)
{
	if (c->state == s)
		return;
	log_debug("conn %llu: %s -> %s", (unsigned long long)c->id,
	    session_state_name(c->state), session_state_name(s));
	c->state = s;
}

/* FNV-1a over a lower-case name. */
static unsigned int
online_bucket(const char *lname)
{
	return (proto_fnv1a(PROTO_FNV_BASIS, lname) % ONLINE_BUCKETS);
}

/* The online entry of an account, or NULL when it has no session. */
struct online *
session_find(struct server *srv, const char *name)
{
	char	lname[PROTO_NAME_MAX + 1];

	proto_lower(lname, name, sizeof(lname));
	return (session_find_lower(srv, lname));
}

/* session_find, by the name in lower case. */
struct online *
session_find_lower(struct server *srv, const char *lname)
{
	struct online	*o;

	for (o = srv->online[online_bucket(lname)]; o != NULL; o = o->next)
		if (strcmp(o->lname, lname) == 0)
			return (o);
	return (NULL);
}

/* The session is now logged in as name (display spelling). */
void
session_login(struct conn *c, const char *name)
{
	struct server	*srv = c->srv;
	struct online	*o;
	unsigned int	 b;

	if ((o = session_find(srv, name)) == NULL) {
		o = xcalloc(1, sizeof(*o));
		proto_lower(o->lname, name, sizeof(o->lname));
		snprintf(o->name, sizeof(o->name), "%s", name);
		TAILQ_INIT(&o->conns);
		unacked_start(&o->unacked, store_last_id(srv->store));
		b = online_bucket(o->lname);
		o->next = srv->online[b];
		srv->online[b] = o;
		srv->nonline++;
	}
	TAILQ_INSERT_TAIL(&o->conns, c, user_entry);
	o->nconns++;
	c->user = o;
	session_set_state(c, S_READY);
}

/* Leave the registry (on close). */
void
session_logout(struct conn *c)
{
	struct server	 *srv = c->srv;
	struct online	 *o = c->user, **pp;

	if (o == NULL)
		return;
	log_event("logout %s from %s", o->name, c->addr);
	TAILQ_REMOVE(&o->conns, c, user_entry);
	c->user = NULL;
	if (--o->nconns > 0)
		return;
	for (pp = &srv->online[online_bucket(o->lname)]; *pp != NULL;
	    pp = &(*pp)->next) {
		if (*pp == o) {
			*pp = o->next;
			break;
		}
	}
	srv->nonline--;
	unacked_free(&o->unacked);
	free(o);
}

/* Call cb for every account online (WHO). */
void
session_foreach_online(struct server *srv, void (*cb)(struct online *, void *),
    void *arg)
{
	struct online	*o;
	int		 b;

	for (b = 0; b < ONLINE_BUCKETS; b++)
		for (o = srv->online[b]; o != NULL; o = o->next)
			cb(o, arg);
}

/* Format and push one message line to a session. */
static void
session_push_stored(struct conn *c, const struct store_msg *m)
{
	struct evbuffer	*out = conn_output(c);
	char		 ts[PROTO_TIME_LEN + 1];

	proto_format_time(m->time_ms, ts);
	evbuffer_add_printf(out, "MSG %llu %s %s ", (unsigned long long)m->id,
	    m->from, ts);
	evbuffer_add(out, m->text, m->len);
	evbuffer_add(out, "\r\n", 2);
	c->srv->stats.msgs_pushed++;
	c->push_cursor = m->id;
}

static int
session_pump_cb(const struct store_msg *m, void *arg)
{
	struct conn	*c = arg;

	session_push_stored(c, m);
	return (conn_output_full(c) ? 1 : 0);
}

/*
 * Push what the log holds for this session after its cursor, while the
 * output has room. Reaching the end of the committed log makes the
 * session caught up: from then on pushes come straight from commits.
 */
void
session_pump(struct conn *c)
{
	int	n;

	if (c->state != S_READY || c->user == NULL || (c->flags & CONN_DEAD))
		return;
	while (!conn_output_full(c)) {
		n = store_inbox_scan(c->srv->store, c->user->name,
		    c->push_cursor, PUMP_BATCH, session_pump_cb, c);
		if (n == -1) {
			log_warnx("%s: %s: store error, retrying on next drain",
			    __func__, c->user->name);
			return;
		}
		if (n < PUMP_BATCH && !conn_output_full(c)) {
			c->caught_up = 1;
			return;
		}
	}
	c->caught_up = 0;
}

/*
 * A message just committed for this session's account: push it from
 * memory when the session is caught up and has room; otherwise it stays
 * in the log and the pump brings it when the output drains. Returns 1
 * when pushed.
 */
int
session_push_msg(struct conn *c, uint64_t id, const char *line, size_t len)
{
	if (c->state != S_READY || (c->flags & CONN_DEAD))
		return (0);
	if (id <= c->push_cursor)
		return (0);	/* the login pump already sent it */
	if (!c->caught_up || conn_output_full(c)) {
		c->caught_up = 0;
		return (0);
	}
	conn_push(c, line, len);
	c->push_cursor = id;
	return (1);
}

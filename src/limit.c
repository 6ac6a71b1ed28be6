/*
 * limit.c: counters that protect the server from abuse without getting in
 * the way of a legitimate heavy client:
 *   - failed LOGINs per address and per account, answered 429 with a
 *     delay that doubles with every failure past the allowance;
 *   - REGISTERs per address per hour;
 *   - pending (unacknowledged) messages per recipient, so that one
 *     offline account cannot fill the disk (452 to the sender);
 *   - open connections per address (max-connections-per-ip), so that
 *     the check at accept costs one lookup, not a walk of them all.
 * Addresses in the exempt list (loopback by default) are never limited.
 * Entries live in one hash table owned by this module; the sweep drops
 * those whose window has passed.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "mychat.h"
#include "xmalloc.h"

#define LIMIT_BUCKETS		4096
#define LIMIT_KEY_MAX		(MYCHAT_ADDR_MAX + 8)
#define LOGIN_WINDOW_SECS	600	/* failures are forgotten after this */
#define LOGIN_DELAY_MAX		900	/* longest wait after failures */
#define REG_WINDOW_SECS		3600

enum limit_kind {
	LK_LOGIN_IP,
	LK_LOGIN_ACCOUNT,
	LK_REGISTER_IP,
	LK_PENDING,
	LK_CONNS_IP
};

struct limit_entry {
	enum limit_kind		 kind;
	char			 key[LIMIT_KEY_MAX];
	uint64_t		 count;
	time_t			 window;	/* start of the counting window */
	time_t			 until;		/* blocked until */
	struct limit_entry	*next;
};

struct limits {
	struct limit_entry	*bucket[LIMIT_BUCKETS];
	unsigned int		 n;
};

static unsigned int
limit_hash(enum limit_kind kind, const char *key)
{
	return (proto_fnv1a(PROTO_FNV_BASIS ^ (uint32_t)kind, key) %
	    LIMIT_BUCKETS);
}

static struct limit_entry *
limit_find(struct limits *l, enum limit_kind kind, const char *key, int create)
{
	struct limit_entry	*e;
	unsigned int		 b = limit_hash(kind, key);

	for (e = l->bucket[b]; e != NULL; e = e->next)
		if (e->kind == kind && strcmp(e->key, key) == 0)
			return (e);
	if (!create)
		return (NULL);
	e = xcalloc(1, sizeof(*e));
	e->kind = kind;
	snprintf(e->key, sizeof(e->key), "%s", key);
	e->window = time(NULL);
	e->next = l->bucket[b];
	l->bucket[b] = e;
	l->n++;
	return (e);
}

static void
limit_remove(struct limits *l, enum limit_kind kind, const char *key)
{
	struct limit_entry	**pp, *e;

	for (pp = &l->bucket[limit_hash(kind, key)]; (e = *pp) != NULL;
	    pp = &e->next) {
		if (e->kind == kind && strcmp(e->key, key) == 0) {
			*pp = e->next;
			free(e);
			l->n--;
			return;
		}
	}
}

struct limits *
limit_new(void)
{
	return (xcalloc(1, sizeof(struct limits)));
}

void
limit_free(struct limits *l)
{
	struct limit_entry	*e;
	int			 b;

	if (l == NULL)
		return;
	for (b = 0; b < LIMIT_BUCKETS; b++)
		while ((e = l->bucket[b]) != NULL) {
			l->bucket[b] = e->next;
			free(e);
		}
	free(l);
}

/* Drop counters whose window is over (called once a second). */
void
limit_sweep(struct limits *l)
{
	struct limit_entry	**pp, *e;
	time_t			  now = time(NULL), span;
	int			  b;

	for (b = 0; b < LIMIT_BUCKETS; b++) {
		for (pp = &l->bucket[b]; (e = *pp) != NULL;) {
			span = e->kind == LK_REGISTER_IP ? REG_WINDOW_SECS :
			    LOGIN_WINDOW_SECS;
			if (e->kind != LK_PENDING && e->kind != LK_CONNS_IP &&
			    now >= e->until &&
			    now - e->window >= span) {
				*pp = e->next;
				free(e);
				l->n--;
				continue;
			}
			pp = &e->next;
		}
	}
}

/* Seconds left before this entry may try again, 0 when it may. */
static int
limit_wait(struct limit_entry *e, time_t now)
{
	if (e == NULL || e->until <= now)
		return (0);
	return ((int)(e->until - now));
}

/*
 * May this address try to log in to this account now? Returns 0, or the
 * number of seconds to wait.
 */
int
limit_login_check(struct server *srv, const char *ip, const char *lname)
{
	struct limits	*l = srv->limits;
	time_t		 now = time(NULL);
	int		 a, b = 0;

	if (srv->conf->login_failures <= 0 || conf_is_exempt(srv->conf, ip))
		return (0);
	a = limit_wait(limit_find(l, LK_LOGIN_IP, ip, 0), now);
	if (lname != NULL)
		b = limit_wait(limit_find(l, LK_LOGIN_ACCOUNT, lname, 0), now);
	return (a > b ? a : b);
}

static void
limit_fail(struct server *srv, enum limit_kind kind, const char *key)
{
	struct limit_entry	*e;
	time_t			 now = time(NULL);
	uint64_t		 over, delay;

	e = limit_find(srv->limits, kind, key, 1);
	if (now - e->window >= LOGIN_WINDOW_SECS) {
		e->window = now;
		e->count = 0;
	}
	e->count++;
	if (e->count < (uint64_t)srv->conf->login_failures)
		return;
	/* 1, 2, 4, ... seconds, up to LOGIN_DELAY_MAX */
	over = e->count - (uint64_t)srv->conf->login_failures;
	delay = over >= 10 ? LOGIN_DELAY_MAX : (uint64_t)1 << over;
	if (delay > LOGIN_DELAY_MAX)
		delay = LOGIN_DELAY_MAX;
	e->until = now + (time_t)delay;
	e->window = now;	/* the window runs from the last failure */
	log_warnx("%s %s: %llu failed logins, next try in %llu s",
	    kind == LK_LOGIN_IP ? "address" : "account", key,
	    (unsigned long long)e->count, (unsigned long long)delay);
}

/* A LOGIN failed: count it against the address and the account. */
void
limit_login_failed(struct server *srv, const char *ip, const char *lname)
{
	if (srv->conf->login_failures <= 0 || conf_is_exempt(srv->conf, ip))
		return;
	limit_fail(srv, LK_LOGIN_IP, ip);
	if (lname != NULL && lname[0] != '\0')
		limit_fail(srv, LK_LOGIN_ACCOUNT, lname);
}

/* A LOGIN succeeded: forget this address's and account's failures. */
void
limit_login_ok(struct server *srv, const char *ip, const char *lname)
{
	limit_remove(srv->limits, LK_LOGIN_IP, ip);
	limit_remove(srv->limits, LK_LOGIN_ACCOUNT, lname);
}

/* May this address register one more account this hour? Counts it. */
int
limit_register(struct server *srv, const char *ip)
{
	struct limit_entry	*e;
	time_t			 now = time(NULL);

	if (srv->conf->reg_per_hour <= 0 || conf_is_exempt(srv->conf, ip))
		return (1);
	e = limit_find(srv->limits, LK_REGISTER_IP, ip, 1);
	if (now - e->window >= REG_WINDOW_SECS) {
		e->window = now;
		e->count = 0;
	}
	if (e->count >= (uint64_t)srv->conf->reg_per_hour)
		return (0);
	e->count++;
	return (1);
}

/*
 * The pending count of a recipient, read from the store the first time
 * and kept up to date by limit_pending_add, or by the caller through the
 * pointer (valid until the limits are swept or reset; not across a loop
 * pass). NULL on a store error.
 */
uint64_t *
limit_pending_get(struct server *srv, const char *lname)
{
	struct limit_entry	*e;
	uint64_t		 cursor, n;

	if ((e = limit_find(srv->limits, LK_PENDING, lname, 0)) != NULL)
		return (&e->count);
	if (store_ack_get(srv->store, lname, &cursor) == -1 ||
	    store_pending_count(srv->store, lname, cursor, &n) == -1)
		return (NULL);
	e = limit_find(srv->limits, LK_PENDING, lname, 1);
	e->count = n;
	return (&e->count);
}

/* A message was staged for lname (+1) or acknowledged (-n). */
void
limit_pending_add(struct server *srv, const char *lname, int64_t delta)
{
	struct limit_entry	*e;

	if ((e = limit_find(srv->limits, LK_PENDING, lname, 0)) == NULL)
		return;		/* not cached: read afresh when needed */
	if (delta < 0 && (uint64_t)-delta > e->count)
		e->count = 0;
	else
		e->count = (uint64_t)((int64_t)e->count + delta);
}

/* A commit failed: what was staged is gone, so forget every count. */
void
limit_pending_reset(struct server *srv)
{
	struct limits		 *l = srv->limits;
	struct limit_entry	**pp, *e;
	int			  b;

	for (b = 0; b < LIMIT_BUCKETS; b++) {
		for (pp = &l->bucket[b]; (e = *pp) != NULL;) {
			if (e->kind == LK_PENDING) {
				*pp = e->next;
				free(e);
				l->n--;
				continue;
			}
			pp = &e->next;
		}
	}
}

/*
 * The open connections from an address. Every connection is counted, from
 * conn_new to conn_close, exempt or not, so that a SIGHUP that changes the
 * limit or the exempt list finds the counts right.
 */
unsigned int
limit_conns_ip(struct server *srv, const char *ip)
{
	struct limit_entry	*e;

	e = limit_find(srv->limits, LK_CONNS_IP, ip, 0);
	return (e == NULL ? 0 : (unsigned int)e->count);
}

/* A connection from ip opened (delta 1) or closed (-1). */
void
limit_conns_ip_add(struct server *srv, const char *ip, int delta)
{
	struct limit_entry	*e;

	if (delta > 0) {
		limit_find(srv->limits, LK_CONNS_IP, ip, 1)->count++;
		return;
	}
	if ((e = limit_find(srv->limits, LK_CONNS_IP, ip, 0)) == NULL ||
	    e->count == 0)
		fatalx("%s: no connection from %s was counted", __func__, ip);
	if (--e->count == 0)
		limit_remove(srv->limits, LK_CONNS_IP, ip);
}

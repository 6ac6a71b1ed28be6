/*
 * server.c: bring up and take down the parts of a server around an event
 * base and a configuration: the store, the hashing workers, the commit
 * group and the reaper. mychatd.c adds listeners, signals and timers; the
 * fuzz harness uses these two functions alone, without sockets to listen on.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mychat.h"
#include "passwd.h"
#include "xmalloc.h"

/* After the reaper: end the loop once everyone is gone at shutdown. */
static void
server_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server	*srv = arg;

	conn_reap(srv);
	if (srv->shutting_down && srv->nconns == 0 && !group_pending(srv))
		event_base_loopbreak(srv->base);
}

/*
 * Open the store and start the workers for srv->base and srv->conf.
 * 0 ok; -1 with err filled.
 */
int
server_open(struct server *srv, char *err, size_t errlen)
{
	struct conf	*cf = srv->conf;
	char		 dberr[512];

	TAILQ_INIT(&srv->conns);
	TAILQ_INIT(&srv->dead);
	TAILQ_INIT(&srv->flushq);
	if (store_open(&srv->store, cf->dbdir, cf->durability ==
	    DURABLE_NOSYNC ? STORE_NOSYNC : STORE_SYNC_THREAD, dberr,
	    sizeof(dberr)) == -1) {
		snprintf(err, errlen, "database: %s", dberr);
		return (-1);
	}
	/* unknown names are checked against this, to take as long */
	if (passwd_hash("mychat-dummy-password", srv->dummy_hash,
	    sizeof(srv->dummy_hash)) == -1) {
		snprintf(err, errlen, "cannot compute a yescrypt hash");
		store_close(srv->store);
		srv->store = NULL;
		return (-1);
	}
	srv->auth = auth_start(srv->base, cf->hash_threads);
	srv->limits = limit_new();
	srv->linebuf = xmalloc(cf->max_line + 2);
	srv->readbuf = xmalloc(CONN_READ_SIZE);
	if (gethostname(srv->hostname, sizeof(srv->hostname) - 1) == -1)
		snprintf(srv->hostname, sizeof(srv->hostname), "localhost");
	srv->started = time(NULL);
	group_init(srv);
	srv->reap_ev = event_new(srv->base, -1, 0, server_reap_cb, srv);
	if (srv->reap_ev == NULL)
		fatalx("%s: event_new", __func__);
	srv->flush_ev = event_new(srv->base, -1, 0, conn_flush_cb, srv);
	if (srv->flush_ev == NULL)
		fatalx("%s: event_new", __func__);
	return (0);
}

/*
 * Wall-clock milliseconds as of the start of this loop pass (libevent's
 * cached time): one clock read per pass, not one per message. The
 * messages of a pass share it.
 */
int64_t
server_now_ms(struct server *srv)
{
	struct timeval	tv;

	if (event_base_gettimeofday_cached(srv->base, &tv) == -1)
		return (proto_now_ms());
	return ((int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000);
}

/*
 * The end: what is staged is committed, every connection is closed and
 * freed, the workers stop and the store is checkpointed and closed.
 */
void
server_close(struct server *srv)
{
	struct conn	*c;

	if (group_pending(srv))
		group_commit_cb(-1, 0, srv);
	while ((c = TAILQ_FIRST(&srv->conns)) != NULL)
		conn_close(c, "shutdown");
	conn_reap(srv);
	listener_free_all(srv);
	auth_stop(srv->auth);
	srv->auth = NULL;
	group_free(srv);	/* its event watches the store's sync thread */
	store_checkpoint(srv->store);
	store_close(srv->store);
	srv->store = NULL;
	limit_free(srv->limits);
	srv->limits = NULL;
	event_free(srv->reap_ev);
	srv->reap_ev = NULL;
	event_free(srv->flush_ev);
	srv->flush_ev = NULL;
	tls_free(srv->tls);
	srv->tls = NULL;
	free(srv->linebuf);
	srv->linebuf = NULL;
	free(srv->readbuf);
	srv->readbuf = NULL;
}

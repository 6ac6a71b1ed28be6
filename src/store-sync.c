/*
 * store-sync.c: the log's fsync, on a thread of its own.
 *
 * In the durable mode the server commits a group with DB_TXN_WRITE_NOSYNC
 * (the log records are written to the file, so that a full disk fails the
 * commit and the group is answered 451) and asks this thread to flush the
 * log (DB_ENV->log_flush: the fdatasync). While the disk works, the loop
 * formats the group's replies and pushes into the connections' output
 * buffers and goes on with the next loop pass, holding every output until
 * the sync is done (group.c, conn.c). The thread then wakes the loop
 * through an eventfd (store_sync_fd). So a 250 still leaves only after
 * its message is on disk, and the time the loop used to sit in fdatasync
 * reads and parses the next commands (doc/performance.md, fifth and sixth
 * rounds). A failed fsync is fatal: the server exits before the group's
 * replies leave, and recovery at the restart decides what the log holds
 * (as PostgreSQL does since fsyncgate).
 *
 * There is one sync in flight at most: store_commit_start() waits for the
 * last one first. The loop's store calls go on while the thread flushes:
 * the environment is opened DB_THREAD, and Berkeley DB holds only its
 * flush mutex, not the log region's, during the fsync (log_put.c,
 * __log_flush_int), so the next group's log records are written
 * meanwhile. The database handles stay on the loop's thread.
 */
#include "config.h"

#include <sys/eventfd.h>

#include <db.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "store-int.h"
#include "xmalloc.h"

struct store_sync {
	DB_ENV		*env;
	pthread_t	 thread;
	pthread_mutex_t	 mtx;
	pthread_cond_t	 cv;
	uint64_t	 asked;		/* syncs asked for */
	uint64_t	 done;		/* syncs finished */
	int		 err;		/* the first log_flush error */
	int		 stop;
	int		 efd;		/* eventfd: readable after a sync */
};

static void *
store_sync_main(void *arg)
{
	struct store_sync	*ss = arg;
	uint64_t		 gen, one = 1;
	ssize_t			 w;
	int			 ret;

	pthread_mutex_lock(&ss->mtx);
	for (;;) {
		while (!ss->stop && ss->done == ss->asked)
			pthread_cond_wait(&ss->cv, &ss->mtx);
		if (ss->done == ss->asked)
			break;			/* stopped, nothing asked */
		gen = ss->asked;
		pthread_mutex_unlock(&ss->mtx);
		ret = ss->env->log_flush(ss->env, NULL);
		pthread_mutex_lock(&ss->mtx);
		if (ret != 0 && ss->err == 0)
			ss->err = ret;
		ss->done = gen;
		/*
		 * Wake the loop (store_sync_fd; EAGAIN: it is awake already).
		 * Under the mutex: whoever sees this sync done also finds its
		 * wakeup, so a drain after a wait leaves none behind.
		 */
		w = write(ss->efd, &one, sizeof(one));
		(void)w;
		pthread_cond_broadcast(&ss->cv);
	}
	pthread_mutex_unlock(&ss->mtx);
	return (NULL);
}

/* Start the thread for st's environment (opened DB_THREAD). */
int
store_sync_start(struct store *st)
{
	struct store_sync	*ss;

	ss = xcalloc(1, sizeof(*ss));
	ss->env = st->env;
	if ((ss->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		free(ss);
		return (-1);
	}
	pthread_mutex_init(&ss->mtx, NULL);
	pthread_cond_init(&ss->cv, NULL);
	if (pthread_create(&ss->thread, NULL, store_sync_main, ss) != 0) {
		close(ss->efd);
		pthread_cond_destroy(&ss->cv);
		pthread_mutex_destroy(&ss->mtx);
		free(ss);
		return (-1);
	}
	st->sync = ss;
	return (0);
}

/* Stop the thread, after the sync in flight if any. */
void
store_sync_stop(struct store *st)
{
	struct store_sync	*ss = st->sync;

	if (ss == NULL)
		return;
	pthread_mutex_lock(&ss->mtx);
	ss->stop = 1;
	pthread_cond_broadcast(&ss->cv);
	pthread_mutex_unlock(&ss->mtx);
	pthread_join(ss->thread, NULL);
	pthread_cond_destroy(&ss->cv);
	pthread_mutex_destroy(&ss->mtx);
	close(ss->efd);
	free(ss);
	st->sync = NULL;
}

/* Ask for the log to be flushed up to its end; the sync's number. */
uint64_t
store_sync_ask(struct store *st)
{
	struct store_sync	*ss = st->sync;
	uint64_t		 gen;

	pthread_mutex_lock(&ss->mtx);
	gen = ++ss->asked;
	pthread_cond_broadcast(&ss->cv);
	pthread_mutex_unlock(&ss->mtx);
	return (gen);
}

/*
 * Wait until sync gen is done. 0, or the Berkeley DB error of a flush
 * (then every later wait fails too: what the log holds past the last
 * good sync is in doubt).
 */
int
store_sync_wait(struct store *st, uint64_t gen)
{
	struct store_sync	*ss = st->sync;
	int			 err;

	pthread_mutex_lock(&ss->mtx);
	while (ss->done < gen)
		pthread_cond_wait(&ss->cv, &ss->mtx);
	err = ss->err;
	pthread_mutex_unlock(&ss->mtx);
	return (err);
}

/* Has sync gen finished (store_sync_wait would not block)? */
int
store_sync_finished(struct store *st, uint64_t gen)
{
	struct store_sync	*ss = st->sync;
	int			 done;

	pthread_mutex_lock(&ss->mtx);
	done = ss->done >= gen;
	pthread_mutex_unlock(&ss->mtx);
	return (done);
}

/*
 * The descriptor that becomes readable when a sync finishes, for the
 * loop to go on with what waited on it; -1 without the thread.
 */
int
store_sync_fd(const struct store *st)
{
	return (st->sync == NULL ? -1 : st->sync->efd);
}

/* Take the wakeups of store_sync_fd (none: EAGAIN, nothing to do). */
void
store_sync_drain(struct store *st)
{
	uint64_t	n;
	ssize_t		r;

	if (st->sync != NULL) {
		r = read(st->sync->efd, &n, sizeof(n));
		(void)r;
	}
}

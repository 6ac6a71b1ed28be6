/*
 * auth.c: password hashing off the event loop.
 *
 * A yescrypt hash costs about 16 ms at the default cost (ENGINEERING.md),
 * long enough to stall every other session if done on the loop. A small
 * pool of worker threads hashes; results come back through a pipe whose
 * read end is an ordinary event on the loop (memcached's notify pipe), so
 * libevent needs no thread support. Workers touch only the job's input
 * and output fields; everything else is the loop's.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mychat.h"
#include "passwd.h"
#include "xmalloc.h"

#define AUTH_MAX_THREADS	16
#define AUTH_NICE		10	/* workers' niceness */

enum auth_kind {
	AUTH_HASH,
	AUTH_VERIFY
};

struct auth_job {
	enum auth_kind		 kind;
	char			 password[PROTO_PASS_MAX + 1];
	char			 hash[STORE_HASH_MAX];	/* in: verify, out: hash */
	int			 result;	/* 1 ok, 0 mismatch, -1 error */
	int			 cancelled;	/* loop only */
	auth_cb			 cb;
	void			*arg;
	TAILQ_ENTRY(auth_job)	 entry;
};
TAILQ_HEAD(auth_queue, auth_job);

struct auth {
	pthread_mutex_t		 lock;
	pthread_cond_t		 cond;
	struct auth_queue	 queue;	/* jobs not yet taken */
	struct auth_queue	 done;
	int			 stopping;
	int			 nthreads;
	pthread_t		 threads[AUTH_MAX_THREADS];
	int			 pipe[2];
	struct event		*ev;
};

static void *
auth_worker(void *arg)
{
	struct auth		*a = arg;
	struct auth_job		*job;
	struct crypt_data	*cd;
	char			 c = 0;

	/*
	 * Hashing yields to the event loop: a burst of logins then costs
	 * other sessions' traffic little on a machine with few cores. Not
	 * SCHED_IDLE: a loop kept busy by ten pinging sessions starved the
	 * hashes completely (12 logins in 60 s); a niced thread still gets
	 * its share. (Linux: a thread's nice value is its own.)
	 */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid),
	    AUTH_NICE) == -1)
		log_debug("%s: setpriority: %s", __func__, strerror(errno));
	cd = xcalloc(1, sizeof(*cd));
	pthread_mutex_lock(&a->lock);
	for (;;) {
		while (!a->stopping && TAILQ_EMPTY(&a->queue))
			pthread_cond_wait(&a->cond, &a->lock);
		if (a->stopping)
			break;
		job = TAILQ_FIRST(&a->queue);
		TAILQ_REMOVE(&a->queue, job, entry);
		pthread_mutex_unlock(&a->lock);

		if (job->kind == AUTH_HASH)
			job->result = passwd_hash(job->password, job->hash,
			    sizeof(job->hash)) == 0 ? 1 : -1;
		else
			job->result = passwd_check(job->password, job->hash, cd);
		passwd_wipe(job->password, sizeof(job->password));

		pthread_mutex_lock(&a->lock);
		TAILQ_INSERT_TAIL(&a->done, job, entry);
		/* A full pipe already holds a wake-up: ignore EAGAIN. */
		if (write(a->pipe[1], &c, 1) == -1 && errno != EAGAIN)
			log_warn("%s: write", __func__);
	}
	pthread_mutex_unlock(&a->lock);
	passwd_wipe(cd, sizeof(*cd));
	free(cd);
	return (NULL);
}

/* On the loop: hand finished jobs back to their owners. */
static void
auth_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct auth		*a = arg;
	struct auth_queue	 done;
	struct auth_job		*job;
	char			 buf[256];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	TAILQ_INIT(&done);
	pthread_mutex_lock(&a->lock);
	TAILQ_CONCAT(&done, &a->done, entry);
	pthread_mutex_unlock(&a->lock);
	while ((job = TAILQ_FIRST(&done)) != NULL) {
		TAILQ_REMOVE(&done, job, entry);
		if (!job->cancelled)
			job->cb(job, job->result, job->arg);
		passwd_wipe(job, sizeof(*job));
		free(job);
	}
}

/* Start n hashing threads whose results come back on base. */
struct auth *
auth_start(struct event_base *base, int n)
{
	struct auth	*a;
	int		 i;

	a = xcalloc(1, sizeof(*a));
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);
	TAILQ_INIT(&a->queue);
	TAILQ_INIT(&a->done);
	if (pipe2(a->pipe, O_NONBLOCK | O_CLOEXEC) == -1)
		fatal("%s: pipe", __func__);
	a->ev = event_new(base, a->pipe[0], EV_READ | EV_PERSIST,
	    auth_done_cb, a);
	if (a->ev == NULL || event_add(a->ev, NULL) == -1)
		fatalx("%s: event", __func__);
	if (n < 1)
		n = 1;
	if (n > AUTH_MAX_THREADS)
		n = AUTH_MAX_THREADS;
	for (i = 0; i < n; i++) {
		if (pthread_create(&a->threads[i], NULL, auth_worker, a) != 0)
			fatalx("%s: pthread_create", __func__);
		a->nthreads++;
	}
	return (a);
}

/* Stop the workers; jobs not yet run are dropped. */
void
auth_stop(struct auth *a)
{
	struct auth_job	*job;
	int		 i;

	if (a == NULL)
		return;
	pthread_mutex_lock(&a->lock);
	a->stopping = 1;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
	for (i = 0; i < a->nthreads; i++)
		pthread_join(a->threads[i], NULL);
	while ((job = TAILQ_FIRST(&a->queue)) != NULL) {
		TAILQ_REMOVE(&a->queue, job, entry);
		passwd_wipe(job, sizeof(*job));
		free(job);
	}
	while ((job = TAILQ_FIRST(&a->done)) != NULL) {
		TAILQ_REMOVE(&a->done, job, entry);
		passwd_wipe(job, sizeof(*job));
		free(job);
	}
	event_free(a->ev);
	close(a->pipe[0]);
	close(a->pipe[1]);
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->cond);
	free(a);
}

static struct auth_job *
auth_submit(struct auth *a, enum auth_kind kind, const char *password,
    const char *stored, auth_cb cb, void *arg)
{
	struct auth_job	*job;

	job = xcalloc(1, sizeof(*job));
	job->kind = kind;
	snprintf(job->password, sizeof(job->password), "%s", password);
	if (stored != NULL)
		snprintf(job->hash, sizeof(job->hash), "%s", stored);
	job->cb = cb;
	job->arg = arg;
	pthread_mutex_lock(&a->lock);
	TAILQ_INSERT_TAIL(&a->queue, job, entry);
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->lock);
	return (job);
}

/* Hash a new password; cb gets the job (auth_job_hash) and 1 or -1. */
struct auth_job *
auth_hash(struct auth *a, const char *password, auth_cb cb, void *arg)
{
	return (auth_submit(a, AUTH_HASH, password, NULL, cb, arg));
}

/* Check a password against a stored hash; cb gets 1, 0 or -1. */
struct auth_job *
auth_verify(struct auth *a, const char *password, const char *stored,
    auth_cb cb, void *arg)
{
	return (auth_submit(a, AUTH_VERIFY, password, stored, cb, arg));
}

const char *
auth_job_hash(const struct auth_job *job)
{
	return (job->hash);
}

/* The owner went away: the job runs, but its callback will not. */
void
auth_cancel(struct auth_job *job)
{
	job->cancelled = 1;
}

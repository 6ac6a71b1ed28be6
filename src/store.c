/*
 * store.c: accounts, ack cursors and the environment, in a Berkeley DB 5.3
 * transactional environment. With store-log.c (the message log and the
 * mailboxes) the only files that include <db.h>.
 *
 * Databases in the environment (all btrees):
 *   users.db     lower(name)              -> struct user_rec
 *   ips.db       ip string                -> display name (last login from it)
 *   acks.db      lower(name)              -> be64(cursor): all <= cursor acked
 *   tokens.db    lower(from) 0 token      -> be64(id) be64(time)
 *   messages.db, inboxes.db, outboxes.db: see store-log.c
 *
 * Big-endian ids make key order id order, so "pending for bob" is the
 * inbox range after bob's ack cursor, and an ACK is one put of the cursor
 * rather than a range delete.
 */
#include "config.h"

#include <db.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <unistd.h>

#include "log.h"
#include "proto.h"
#include "store-int.h"
#include "xmalloc.h"

#define USER_REC_VERSION	1
#define STORE_OLD_LOG		"msgs.db"	/* the layout of mychat 0.1 */

const char *const store_db_names[SDB_COUNT] = {
	[SDB_USERS] = "users.db",
	[SDB_IPS] = "ips.db",
	[SDB_MSGS] = "messages.db",
	[SDB_INBOX] = "inboxes.db",
	[SDB_OUTBOX] = "outboxes.db",
	[SDB_ACKS] = "acks.db",
	[SDB_TOKENS] = "tokens.db",
};

/* On-disk account record; a version byte leads so it can evolve. */
struct user_rec {
	uint8_t		version;
	char		name[PROTO_NAME_MAX + 1];
	char		hash[STORE_HASH_MAX];
	int64_t		created_ms;
	int64_t		last_login_ms;
	char		last_ip[STORE_IP_MAX];
};

void
store_put_be64(unsigned char *p, uint64_t v)
{
	int	i;

	for (i = 7; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

uint64_t
store_get_be64(const unsigned char *p)
{
	uint64_t	v = 0;
	int		i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return (v);
}

static void
store_err(char *err, size_t errlen, const char *what, int ret)
{
	snprintf(err, errlen, "%s: %s", what, db_strerror(ret));
}

/* The BDB error callback: route the library's own messages to our log. */
static void
store_errcall(const DB_ENV *env, const char *pfx, const char *msg)
{
	log_warnx("db: %s", msg);
}

/*
 * The cache region grows in steps as pages are used, and each step is a
 * sparse extension of a memory-mapped file: on a full disk the first
 * touch is SIGBUS. Reserve the disk blocks for a region's full growth now
 * (FALLOC_FL_KEEP_SIZE leaves the file size to Berkeley DB), so a full
 * disk shows up as write errors (451) instead.
 */
static void
store_reserve_regions(struct store *st)
{
	char		 path[4096];
	struct stat	 sb;
	u_int32_t	 gb, b;
	int		 ncache, fd, i;
	off_t		 want;

	if (st->env->get_cachesize(st->env, &gb, &b, &ncache) != 0)
		return;
	want = (off_t)gb * 1024 * 1024 * 1024 + (off_t)b + (8 << 20);
	for (i = 1; i <= 9; i++) {
		snprintf(path, sizeof(path), "%s/__db.%03d", st->home, i);
		if ((fd = open(path, O_RDWR | O_CLOEXEC)) == -1)
			continue;
		/*
		 * With DB_REGION_INIT every region but the cache is written
		 * whole at its final size; the cache starts small (about
		 * 0.5 MB) and is the one to reserve.
		 */
		if (fstat(fd, &sb) == 0 && sb.st_size < want / 32 &&
		    fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, want) == -1)
			log_warnx("store: reserving %s: %s", path,
			    strerror(errno));
		close(fd);
	}
}

/* Open (creating and recovering if needed) the environment in dir. */
int
store_open(struct store **out, const char *dir, int flags, char *err,
    size_t errlen)
{
	struct store	*st;
	struct stat	 sb;
	char		 path[4096];
	u_int32_t	 envflags;
	int		 ret, i;

	*out = NULL;
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return (-1);
	}
	/* mychat 0.1 kept one record per message: refuse, do not ignore it */
	snprintf(path, sizeof(path), "%s/%s", dir, STORE_OLD_LOG);
	if (stat(path, &sb) == 0) {
		snprintf(err, errlen, "%s: a message log in the layout of "
		    "mychat 0.1, which this version does not read; deliver "
		    "what is pending with 0.1 and start from a new directory "
		    "(doc/performance.md)", path);
		return (-1);
	}
	st = xcalloc(1, sizeof(*st));
	st->home = xstrdup(dir);
	if ((ret = db_env_create(&st->env, 0)) != 0) {
		store_err(err, errlen, "db_env_create", ret);
		goto fail;
	}
	st->env->set_errcall(st->env, store_errcall);
	st->env->set_cachesize(st->env, 0, 64 << 20, 1);
	st->env->set_lg_bsize(st->env, 8 << 20);
	st->env->set_lk_max_locks(st->env, 100000);
	st->env->set_lk_max_objects(st->env, 100000);
	st->env->set_lk_max_lockers(st->env, 10000);
	/*
	 * The regions are memory-mapped files in the database directory.
	 * Touching a hole in a sparse one on a full disk is SIGBUS, not an
	 * error: so write them whole at creation (DB_REGION_INIT) and size
	 * them up front so that they never grow while the server runs.
	 */
	st->env->set_flags(st->env, DB_REGION_INIT, 1);
	st->env->set_memory_init(st->env, DB_MEM_LOCK, 100000);
	st->env->set_memory_init(st->env, DB_MEM_LOCKOBJECT, 100000);
	st->env->set_memory_init(st->env, DB_MEM_LOCKER, 10000);
	st->env->set_memory_init(st->env, DB_MEM_TRANSACTION, 1000);
	st->env->set_memory_init(st->env, DB_MEM_THREAD, 1000);
	st->env->set_memory_init(st->env, DB_MEM_LOGID, 100);
	st->env->set_lk_detect(st->env, DB_LOCK_DEFAULT);
	st->env->log_set_config(st->env, DB_LOG_AUTO_REMOVE, 1);
	if (flags & STORE_NOSYNC)
		st->env->set_flags(st->env, DB_TXN_WRITE_NOSYNC, 1);
	/*
	 * DB_REGISTER with DB_RECOVER: recovery runs only when a process
	 * that had the environment open died (kill -9), so the admin tool
	 * can join a running server's environment without disturbing it.
	 */
	envflags = DB_CREATE | DB_INIT_TXN | DB_INIT_LOCK | DB_INIT_LOG |
	    DB_INIT_MPOOL | DB_RECOVER | DB_REGISTER;
	/* the fsync thread shares the environment handle (store-sync.c) */
	if ((flags & STORE_SYNC_THREAD) && !(flags & STORE_NOSYNC))
		envflags |= DB_THREAD;
	if ((ret = st->env->open(st->env, dir, envflags, 0600)) != 0) {
		store_err(err, errlen, dir, ret);
		goto fail;
	}
	store_reserve_regions(st);
	for (i = 0; i < SDB_COUNT; i++) {
		if ((ret = db_create(&st->db[i], st->env, 0)) != 0) {
			store_err(err, errlen, "db_create", ret);
			goto fail;
		}
		/*
		 * The log and the mailboxes grow at their right edge: larger
		 * pages split less often (the profile in doc/performance.md
		 * showed page splits and buffer allocation on top). Takes
		 * effect when a database file is created.
		 */
		if (i == SDB_MSGS || i == SDB_INBOX || i == SDB_OUTBOX ||
		    i == SDB_TOKENS)
			st->db[i]->set_pagesize(st->db[i], STORE_PAGESIZE);
		if ((ret = st->db[i]->open(st->db[i], NULL, store_db_names[i],
		    NULL, DB_BTREE, DB_CREATE | DB_AUTO_COMMIT, 0600)) != 0) {
			store_err(err, errlen, store_db_names[i], ret);
			goto fail;
		}
	}

	/* The next message id follows the last one in the log. */
	if (store_log_open(st, err, errlen) == -1)
		goto fail;
	if ((envflags & DB_THREAD) && store_sync_start(st) == -1) {
		snprintf(err, errlen, "cannot start the fsync thread");
		goto fail;
	}
	*out = st;
	return (0);

fail:
	store_close(st);
	return (-1);
}

/* Close everything; an open group is aborted (its replies were not sent). */
void
store_close(struct store *st)
{
	int	i;

	if (st == NULL)
		return;
	if (st->txn != NULL)
		store_abort(st);
	store_sync_stop(st);
	for (i = 0; i < SDB_COUNT; i++)
		if (st->db[i] != NULL)
			st->db[i]->close(st->db[i], 0);
	if (st->env != NULL) {
		st->env->txn_checkpoint(st->env, 0, 0, 0);
		st->env->close(st->env, 0);
	}
	store_log_free(st);
	free(st->buf);
	free(st->home);
	free(st);
}

/* The transaction of the open group, beginning one if needed. */
DB_TXN *
store_txn(struct store *st)
{
	int	ret;

	if (st->txn == NULL) {
		if ((ret = st->env->txn_begin(st->env, NULL, &st->txn, 0)) != 0) {
			log_warnx("%s: txn_begin: %s", __func__, db_strerror(ret));
			st->txn = NULL;
			st->failed = 1;
			return (NULL);
		}
	}
	return (st->txn);
}

/*
 * A write of the group failed: abort at once, so that later reads in this
 * loop pass (which run without a transaction) cannot wait on our own
 * locks. The failure sticks until store_commit reports it.
 */
int
store_write_failed(struct store *st, const char *what, int ret)
{
	log_warnx("store: %s: %s", what, db_strerror(ret));
	if (ret == DB_RUNRECOVERY)
		st->panic = 1;
	if (st->txn != NULL) {
		st->txn->abort(st->txn);
		st->txn = NULL;
	}
	st->failed = 1;
	return (-1);
}

int
store_put(struct store *st, enum store_db which, DBT *k, DBT *d,
    u_int32_t flags)
{
	DB_TXN	*txn;
	int	 ret;

	if ((txn = store_txn(st)) == NULL)
		return (-1);
	ret = st->db[which]->put(st->db[which], txn, k, d, flags);
	if (ret == DB_KEYEXIST)
		return (0);
	if (ret != 0)
		return (store_write_failed(st, store_db_names[which], ret));
	st->group_ops++;
	return (1);
}

/* A read inside the open group (or on its own when none is open). */
int
store_get(struct store *st, enum store_db which, DBT *k, DBT *d)
{
	int	ret;

	d->flags = DB_DBT_REALLOC;
	d->data = st->buf;
	d->ulen = st->buflen;
	ret = st->db[which]->get(st->db[which], st->txn, k, d, 0);
	if (ret == 0 && d->data != NULL) {
		/* DB_DBT_REALLOC reallocates to the exact size, up or down */
		st->buf = d->data;
		st->buflen = d->size;
	}
	if (ret == DB_NOTFOUND || ret == DB_KEYEMPTY)
		return (0);
	if (ret != 0) {
		log_warnx("store: get %s: %s", store_db_names[which],
		    db_strerror(ret));
		if (ret == DB_RUNRECOVERY)
			st->panic = 1;
		return (-1);
	}
	return (1);
}

/*
 * Has Berkeley DB said the environment needs recovery (another process
 * died with it open, or a fatal error)? Nothing will work until the
 * environment is opened again, which recovers it.
 */
int
store_panicked(const struct store *st)
{
	return (st->panic);
}

/*
 * Commit the group. -1: nothing of it is stored (say 451), 0: committed
 * and, once store_commit_wait() returns 0, durable. With the fsync thread
 * the group's log records are written to the file here but not synced;
 * the thread syncs them while the caller prepares the group's answers:
 * nothing of the group may leave the process before store_commit_wait().
 * Reads see the group at once (pumps read up to committed_id).
 */
int
store_commit_start(struct store *st)
{
	int	ret, failed;

	/* one sync in flight at most: wait for one not waited for */
	if (st->sync_gen != 0 && store_commit_wait(st) == -1)
		return (-1);
	/* the staged messages and mailbox entries go in now */
	store_log_flush(st);
	failed = st->failed;
	st->failed = 0;
	if (failed)
		store_log_aborted(st);
	if (st->txn == NULL) {
		if (failed)
			st->stats.failed_commits++;
		return (failed ? -1 : 0);
	}
	if (failed) {
		st->txn->abort(st->txn);
		st->txn = NULL;
		st->stats.failed_commits++;
		st->group_ops = 0;
		return (-1);
	}
	/*
	 * With the thread, the log is written here (a full disk fails this
	 * commit: 451, as without it) and only the fsync is left to it.
	 */
	ret = st->txn->commit(st->txn, st->sync != NULL ?
	    DB_TXN_WRITE_NOSYNC : 0);
	st->txn = NULL;
	if (ret != 0) {
		store_log_aborted(st);
		log_warnx("store: commit: %s", db_strerror(ret));
		if (ret == DB_RUNRECOVERY)
			st->panic = 1;
		st->stats.failed_commits++;
		st->group_ops = 0;
		return (-1);
	}
	if (st->sync != NULL)
		st->sync_gen = store_sync_ask(st);
	st->stats.commits++;
	st->stats.committed_ops += st->group_ops;
	st->committed_id = st->last_id;
	st->group_ops = 0;
	return (0);
}

/*
 * Wait for the fsync of the group store_commit_start() committed. -1: the
 * log could not be synced, and whether the group is on disk is unknown;
 * the environment is marked for recovery (store_panicked).
 */
int
store_commit_wait(struct store *st)
{
	int	ret;

	if (st->sync == NULL || st->sync_gen == 0)
		return (0);
	ret = store_sync_wait(st, st->sync_gen);
	st->sync_gen = 0;
	if (ret != 0) {
		log_warnx("store: log flush: %s", db_strerror(ret));
		st->panic = 1;
		return (-1);
	}
	return (0);
}

/*
 * Is a committed group's fsync not yet waited for? Its answers must not
 * leave the process until store_commit_wait().
 */
int
store_sync_pending(const struct store *st)
{
	return (st->sync_gen != 0);
}

/* Would store_commit_wait() return at once? */
int
store_sync_ready(struct store *st)
{
	return (st->sync_gen == 0 || store_sync_finished(st, st->sync_gen));
}

/* Commit the group and wait for it to be durable: store_commit_start. */
int
store_commit(struct store *st)
{
	if (store_commit_start(st) == -1)
		return (-1);
	return (store_commit_wait(st));
}

int
store_in_group(const struct store *st)
{
	return (st->txn != NULL || st->failed || st->stage.n > 0);
}

void
store_abort(struct store *st)
{
	if (st->txn != NULL) {
		st->txn->abort(st->txn);
		st->txn = NULL;
	}
	st->failed = 0;
	st->group_ops = 0;
	store_log_aborted(st);
}

/* Checkpoint and let Berkeley DB remove log files no longer needed. */
void
store_checkpoint(struct store *st)
{
	int	ret;

	if (st->txn != NULL)
		return;
	if ((ret = st->env->txn_checkpoint(st->env, 0, 0, 0)) != 0)
		log_warnx("store: checkpoint: %s", db_strerror(ret));
}

/* Counters and the size of the database files. */
void
store_get_stats(struct store *st, struct store_stats *out)
{
	char		 path[4096];
	struct stat	 sb;
	int		 i;

	*out = st->stats;
	out->db_bytes = 0;
	for (i = 0; i < SDB_COUNT; i++) {
		snprintf(path, sizeof(path), "%s/%s", st->home,
		    store_db_names[i]);
		if (stat(path, &sb) == 0)
			out->db_bytes += (uint64_t)sb.st_size;
	}
}

/* The newest message id that is committed (ids commit in order). */
uint64_t
store_last_id(const struct store *st)
{
	return (st->committed_id);
}

/* Accounts. */

static void
user_key(DBT *k, char *lname, const char *name)
{
	proto_lower(lname, name, PROTO_NAME_MAX + 1);
	memset(k, 0, sizeof(*k));
	k->data = lname;
	k->size = (u_int32_t)strlen(lname);
}

static void
user_decode(const struct user_rec *r, struct store_user *u)
{
	memset(u, 0, sizeof(*u));
	memcpy(u->name, r->name, sizeof(u->name));
	u->name[sizeof(u->name) - 1] = '\0';
	memcpy(u->hash, r->hash, sizeof(u->hash));
	u->hash[sizeof(u->hash) - 1] = '\0';
	u->created_ms = r->created_ms;
	u->last_login_ms = r->last_login_ms;
	memcpy(u->last_ip, r->last_ip, sizeof(u->last_ip));
	u->last_ip[sizeof(u->last_ip) - 1] = '\0';
}

static void
user_encode(const struct store_user *u, struct user_rec *r)
{
	memset(r, 0, sizeof(*r));
	r->version = USER_REC_VERSION;
	snprintf(r->name, sizeof(r->name), "%s", u->name);
	snprintf(r->hash, sizeof(r->hash), "%s", u->hash);
	r->created_ms = u->created_ms;
	r->last_login_ms = u->last_login_ms;
	snprintf(r->last_ip, sizeof(r->last_ip), "%s", u->last_ip);
}

/* Look up an account by name, case-insensitively. */
int
store_user_get(struct store *st, const char *name, struct store_user *u)
{
	char	lname[PROTO_NAME_MAX + 1];
	DBT	k, d;
	int	ret;

	user_key(&k, lname, name);
	memset(&d, 0, sizeof(d));
	if ((ret = store_get(st, SDB_USERS, &k, &d)) != 1)
		return (ret);
	if (d.size != sizeof(struct user_rec)) {
		log_warnx("store: user %s: bad record size %u", lname, d.size);
		return (-1);
	}
	user_decode(d.data, u);
	return (1);
}

/* Write an account record with the given put flags. */
static int
store_user_write(struct store *st, const struct store_user *u,
    u_int32_t flags)
{
	struct user_rec	r;
	char		lname[PROTO_NAME_MAX + 1];
	DBT		k, d;

	user_key(&k, lname, u->name);
	user_encode(u, &r);
	memset(&d, 0, sizeof(d));
	d.data = &r;
	d.size = sizeof(r);
	return (store_put(st, SDB_USERS, &k, &d, flags));
}

/* Create an account: 1 created, 0 the name is taken, -1 error. */
int
store_user_add(struct store *st, const struct store_user *u)
{
	return (store_user_write(st, u, DB_NOOVERWRITE));
}

/* Replace an existing account's record. */
int
store_user_put(struct store *st, const struct store_user *u)
{
	return (store_user_write(st, u, 0));
}

/* Delete an account (its messages stay in the log). 0: no such user. */
int
store_user_del(struct store *st, const char *name)
{
	char	 lname[PROTO_NAME_MAX + 1];
	DBT	 k;
	DB_TXN	*txn;
	int	 ret;

	user_key(&k, lname, name);
	if ((txn = store_txn(st)) == NULL)
		return (-1);
	ret = st->db[SDB_USERS]->del(st->db[SDB_USERS], txn, &k, 0);
	if (ret == DB_NOTFOUND)
		return (0);
	if (ret != 0)
		return (store_write_failed(st, "users.db", ret));
	ret = st->db[SDB_ACKS]->del(st->db[SDB_ACKS], txn, &k, 0);
	if (ret != 0 && ret != DB_NOTFOUND)
		return (store_write_failed(st, "acks.db", ret));
	if (store_log_drop(st, name) == -1)
		return (-1);
	st->group_ops++;
	return (1);
}

/* Call cb for every account in name order; cb returns non-zero to stop. */
int
store_user_scan(struct store *st, int (*cb)(const struct store_user *, void *),
    void *arg)
{
	struct store_user	u;
	DBC			*c;
	DBT			 k, d;
	int			 ret, rv = 0;

	if ((ret = st->db[SDB_USERS]->cursor(st->db[SDB_USERS], st->txn, &c,
	    0)) != 0)
		return (-1);
	memset(&k, 0, sizeof(k));
	memset(&d, 0, sizeof(d));
	while ((ret = c->get(c, &k, &d, DB_NEXT)) == 0) {
		if (d.size != sizeof(struct user_rec))
			continue;
		user_decode(d.data, &u);
		if ((rv = cb(&u, arg)) != 0)
			break;
	}
	c->close(c);
	if (ret != 0 && ret != DB_NOTFOUND)
		return (-1);
	return (rv < 0 ? -1 : 0);
}

/* The account last logged in from ip. */
int
store_ip_get(struct store *st, const char *ip, char *name, size_t len)
{
	DBT	k, d;
	int	ret;

	memset(&k, 0, sizeof(k));
	memset(&d, 0, sizeof(d));
	k.data = (void *)ip;
	k.size = (u_int32_t)strlen(ip);
	if ((ret = store_get(st, SDB_IPS, &k, &d)) != 1)
		return (ret);
	snprintf(name, len, "%.*s", (int)d.size, (const char *)d.data);
	return (1);
}

int
store_ip_put(struct store *st, const char *ip, const char *name)
{
	DBT	k, d;

	memset(&k, 0, sizeof(k));
	memset(&d, 0, sizeof(d));
	k.data = (void *)ip;
	k.size = (u_int32_t)strlen(ip);
	d.data = (void *)name;
	d.size = (u_int32_t)strlen(name);
	return (store_put(st, SDB_IPS, &k, &d, 0));
}

/* Ack cursors. */

/* The ack cursor of an account: every message <= *cursor is acked. */
int
store_ack_get(struct store *st, const char *name, uint64_t *cursor)
{
	char	lname[PROTO_NAME_MAX + 1];
	DBT	k, d;
	int	ret;

	*cursor = 0;
	user_key(&k, lname, name);
	memset(&d, 0, sizeof(d));
	if ((ret = store_get(st, SDB_ACKS, &k, &d)) != 1)
		return (ret);
	if (d.size != 8)
		return (-1);
	*cursor = store_get_be64(d.data);
	return (1);
}

int
store_ack_put(struct store *st, const char *name, uint64_t cursor)
{
	unsigned char	val[8];
	char		lname[PROTO_NAME_MAX + 1];
	DBT		k, d;

	user_key(&k, lname, name);
	store_put_be64(val, cursor);
	memset(&d, 0, sizeof(d));
	d.data = val;
	d.size = 8;
	return (store_put(st, SDB_ACKS, &k, &d, 0));
}

/*
 * A consistent hot backup of the environment into dir, while the server
 * runs: Berkeley DB copies the databases, then the logs, so that the copy
 * opens (with recovery) as of the end of the backup.
 */
int
store_backup(struct store *st, const char *dir, char *err, size_t errlen)
{
	int	ret;

	if (st->txn != NULL) {
		snprintf(err, errlen, "backup: a transaction is open");
		return (-1);
	}
	if ((ret = st->env->backup(st->env, dir, DB_CREATE | DB_EXCL)) != 0) {
		if (ret == EEXIST)
			snprintf(err, errlen, "%s: the backup directory must "
			    "not hold a database already", dir);
		else
			store_err(err, errlen, dir, ret);
		return (-1);
	}
	return (0);
}

/*
 * A logical check of the whole store, safe while the server runs: every
 * record decodes, every index entry points at a message of its owner.
 * 1: consistent (err says what was checked), 0: a problem (err says
 * which), -1: the check itself failed.
 */
int
store_verify(struct store *st, char *err, size_t errlen)
{
	DBC			*c;
	DBT			 k, d;
	uint64_t		 users = 0;
	char			 what[256];
	int			 ret, rv;

	if (st->db[SDB_USERS]->cursor(st->db[SDB_USERS], NULL, &c, 0) != 0)
		return (-1);
	memset(&k, 0, sizeof(k));
	memset(&d, 0, sizeof(d));
	while ((ret = c->get(c, &k, &d, DB_NEXT)) == 0) {
		users++;
		if (d.size != sizeof(struct user_rec) ||
		    ((struct user_rec *)d.data)->version != USER_REC_VERSION) {
			snprintf(err, errlen, "users.db: bad record for %.*s",
			    (int)k.size, (char *)k.data);
			c->close(c);
			return (0);
		}
	}
	c->close(c);
	if (ret != DB_NOTFOUND)
		return (-1);
	if ((rv = store_log_verify(st, what, sizeof(what))) != 1) {
		snprintf(err, errlen, "%s", what);
		return (rv);
	}
	snprintf(err, errlen, "ok: %llu users, %s", (unsigned long long)users,
	    what);
	return (1);
}

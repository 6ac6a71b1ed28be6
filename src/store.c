/*
 * store.c: accounts and the delivery log in a Berkeley DB 5.3
 * transactional environment. The only file that includes <db.h>.
 *
 * Databases in the environment (all btrees):
 *   users.db   lower(name)              -> struct user_rec
 *   ips.db     ip string                -> display name (last login from it)
 *   msgs.db    be64(id)                 -> be64(time) u8 n from u8 n to text
 *   inbox.db   lower(to) 0 be64(id)     -> lower(from)
 *   outbox.db  lower(from) 0 be64(id)   -> lower(to)
 *   acks.db    lower(name)              -> be64(cursor): all <= cursor acked
 *   tokens.db  lower(from) 0 token      -> be64(id) be64(time)
 *
 * Big-endian ids make key order id order, so "pending for bob" is the
 * inbox range after bob's ack cursor, and an ACK is one put of the cursor
 * rather than a range delete. A message costs three puts (four with a
 * retry token), all in the commit group's transaction.
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
#include "store.h"
#include "xmalloc.h"

#define USER_REC_VERSION	1
#define MBOX_KEY_MAX		(PROTO_NAME_MAX + 1 + 8)
#define TOKEN_KEY_MAX		(PROTO_NAME_MAX + 1 + PROTO_TOKEN_MAX)
#define MSG_HDR_MAX		(8 + 1 + PROTO_NAME_MAX + 1 + PROTO_NAME_MAX)
#define HISTORY_MAX		1000
#define STORE_PAGESIZE		(16 * 1024)	/* log and mailboxes */

enum store_db {
	SDB_USERS,
	SDB_IPS,
	SDB_MSGS,
	SDB_INBOX,
	SDB_OUTBOX,
	SDB_ACKS,
	SDB_TOKENS,
	SDB_COUNT
};

static const char *store_db_names[SDB_COUNT] = {
	[SDB_USERS] = "users.db",
	[SDB_IPS] = "ips.db",
	[SDB_MSGS] = "msgs.db",
	[SDB_INBOX] = "inbox.db",
	[SDB_OUTBOX] = "outbox.db",
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

struct store {
	DB_ENV		*env;
	DB		*db[SDB_COUNT];
	DB_TXN		*txn;		/* the open commit group, or NULL */
	int		 failed;	/* a write of this group failed */
	int		 panic;		/* DB_RUNRECOVERY seen */
	unsigned int	 group_ops;
	uint64_t	 last_id;	/* last id handed out */
	uint64_t	 committed_id;	/* last id of a committed group */
	char		*home;
	void		*buf;		/* DB_DBT_REALLOC buffer for reads */
	u_int32_t	 buflen;
	unsigned char	*rec;		/* a message record being written */
	size_t		 recalloc;
	struct store_stats stats;
};

/* One side of a mailbox walk: a cursor over lower(name) 0 be64(id). */
struct mbox_walk {
	DBC		*c;
	unsigned char	 prefix[PROTO_NAME_MAX + 1];
	size_t		 plen;
	unsigned char	 key[MBOX_KEY_MAX];
	DBT		 k, d;
	int		 valid;
	uint64_t	 id;
	char		 peer[PROTO_NAME_MAX + 1];
};

static int	walk_open(struct store *, enum store_db, struct mbox_walk *,
		    const char *, uint64_t);
static int	walk_step(struct mbox_walk *, u_int32_t);
static void	walk_close(struct mbox_walk *);

static void
put_be64(unsigned char *p, uint64_t v)
{
	int	i;

	for (i = 7; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

static uint64_t
get_be64(const unsigned char *p)
{
	uint64_t	v = 0;
	int		i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return (v);
}

/* Encode an inbox/outbox key: lower(name) NUL be64(id). Returns its size. */
size_t
store_key_mbox(unsigned char *key, const char *name, uint64_t id)
{
	char	lname[PROTO_NAME_MAX + 1];
	size_t	n;

	proto_lower(lname, name, sizeof(lname));
	n = strlen(lname);
	memcpy(key, lname, n);
	key[n++] = '\0';
	put_be64(key + n, id);
	return (n + 8);
}

/* The id at the end of a mailbox key. */
uint64_t
store_key_id(const unsigned char *key, size_t len)
{
	if (len < 8)
		return (0);
	return (get_be64(key + len - 8));
}

/* Does a mailbox key belong to the name whose prefix (with NUL) is given? */
static int
mbox_match(const DBT *k, const unsigned char *prefix, size_t plen)
{
	return (k->size == plen + 8 && memcmp(k->data, prefix, plen) == 0);
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
	DBC		*c;
	DBT		 k, d;
	u_int32_t	 envflags;
	int		 ret, i;

	*out = NULL;
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
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
	if ((ret = st->db[SDB_MSGS]->cursor(st->db[SDB_MSGS], NULL, &c, 0)) != 0) {
		store_err(err, errlen, "cursor", ret);
		goto fail;
	}
	memset(&k, 0, sizeof(k));
	memset(&d, 0, sizeof(d));
	d.flags = DB_DBT_PARTIAL;
	ret = c->get(c, &k, &d, DB_LAST);
	if (ret == 0 && k.size == 8)
		st->last_id = st->committed_id = get_be64(k.data);
	else if (ret != 0 && ret != DB_NOTFOUND) {
		c->close(c);
		store_err(err, errlen, "msgs.db", ret);
		goto fail;
	}
	c->close(c);
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
	for (i = 0; i < SDB_COUNT; i++)
		if (st->db[i] != NULL)
			st->db[i]->close(st->db[i], 0);
	if (st->env != NULL) {
		st->env->txn_checkpoint(st->env, 0, 0, 0);
		st->env->close(st->env, 0);
	}
	free(st->buf);
	free(st->rec);
	free(st->home);
	free(st);
}

/* The transaction of the open group, beginning one if needed. */
static DB_TXN *
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
static int
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

static int
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
static int
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

/* Commit the group. -1: nothing of it is stored (say 451), 0: committed. */
int
store_commit(struct store *st)
{
	int	ret, failed = st->failed;

	st->failed = 0;
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
	ret = st->txn->commit(st->txn, 0);
	st->txn = NULL;
	if (ret != 0) {
		log_warnx("store: commit: %s", db_strerror(ret));
		if (ret == DB_RUNRECOVERY)
			st->panic = 1;
		st->stats.failed_commits++;
		st->group_ops = 0;
		return (-1);
	}
	st->stats.commits++;
	st->stats.committed_ops += st->group_ops;
	st->committed_id = st->last_id;
	st->group_ops = 0;
	return (0);
}

int
store_in_group(const struct store *st)
{
	return (st->txn != NULL || st->failed);
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

/* Delete every mailbox entry of name, in the group's transaction. */
static int
store_mbox_drop(struct store *st, enum store_db which, const char *name)
{
	struct mbox_walk	w;
	int			ret;

	if (walk_open(st, which, &w, name, 0) == -1) {
		walk_close(&w);
		return (store_write_failed(st, store_db_names[which], EIO));
	}
	while (w.valid) {
		if ((ret = w.c->del(w.c, 0)) != 0) {
			walk_close(&w);
			return (store_write_failed(st, store_db_names[which],
			    ret));
		}
		if (walk_step(&w, DB_NEXT) == -1) {
			walk_close(&w);
			return (store_write_failed(st, store_db_names[which],
			    EIO));
		}
	}
	walk_close(&w);
	return (0);
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
	/*
	 * Whoever registers the name later must not inherit the old
	 * account's pending messages or history: drop its mailboxes. The
	 * messages stay in the log and in the other party's history.
	 */
	if (store_mbox_drop(st, SDB_INBOX, name) == -1 ||
	    store_mbox_drop(st, SDB_OUTBOX, name) == -1)
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

/* Messages. */

/*
 * Append a message to the log, with its inbox and outbox entries and its
 * retry token, in the group's transaction. 1: stored with a new *id;
 * 0: the token was already used by this sender within the window, *id is
 * the original; -1: error (the group will fail).
 */
int
store_msg_add(struct store *st, const char *from, const char *to,
    int64_t time_ms, const char *text, size_t len, const char *token,
    uint64_t *id)
{
	unsigned char	 hdr[MSG_HDR_MAX], key[MBOX_KEY_MAX], idkey[8];
	unsigned char	 tkey[TOKEN_KEY_MAX], tval[16];
	char		 lfrom[PROTO_NAME_MAX + 1], lto[PROTO_NAME_MAX + 1];
	size_t		 fl = strlen(from), tl = strlen(to), hl, n;
	DBT		 k, d, parts;
	uint64_t	 nid;
	int		 ret;

	proto_lower(lfrom, from, sizeof(lfrom));
	proto_lower(lto, to, sizeof(lto));
	if (store_txn(st) == NULL)
		return (-1);
	memset(&k, 0, sizeof(k));
	memset(&d, 0, sizeof(d));

	if (token != NULL) {
		n = strlen(lfrom);
		memcpy(tkey, lfrom, n);
		tkey[n++] = '\0';
		memcpy(tkey + n, token, strlen(token));
		n += strlen(token);
		k.data = tkey;
		k.size = (u_int32_t)n;
		if ((ret = store_get(st, SDB_TOKENS, &k, &d)) == -1)
			return (store_write_failed(st, "tokens.db", EIO));
		if (ret == 1 && d.size == 16 &&
		    time_ms - (int64_t)get_be64((unsigned char *)d.data + 8) <
		    STORE_TOKEN_WINDOW_MS) {
			*id = get_be64(d.data);
			return (0);
		}
	}

	nid = st->last_id + 1;
	put_be64(idkey, nid);
	put_be64(hdr, (uint64_t)time_ms);
	hl = 8;
	hdr[hl++] = (unsigned char)fl;
	memcpy(hdr + hl, from, fl);
	hl += fl;
	hdr[hl++] = (unsigned char)tl;
	memcpy(hdr + hl, to, tl);
	hl += tl;

	/* The record is header + text; write it in two partial puts. */
	memset(&k, 0, sizeof(k));
	k.data = idkey;
	k.size = 8;
	{
		unsigned char	*rec;
		size_t		 need = hl + len;

		if (need > st->recalloc) {
			st->rec = xreallocarray(st->rec, 1, need);
			st->recalloc = need;
		}
		rec = st->rec;
		memcpy(rec, hdr, hl);
		memcpy(rec + hl, text, len);
		memset(&parts, 0, sizeof(parts));
		parts.data = rec;
		parts.size = (u_int32_t)need;
		if ((ret = store_put(st, SDB_MSGS, &k, &parts, 0)) != 1)
			return (-1);
	}

	/* inbox: lower(to) 0 id -> lower(from) */
	k.data = key;
	k.size = (u_int32_t)store_key_mbox(key, lto, nid);
	d.flags = 0;
	d.data = lfrom;
	d.size = (u_int32_t)strlen(lfrom);
	if (store_put(st, SDB_INBOX, &k, &d, 0) != 1)
		return (-1);

	/* outbox: lower(from) 0 id -> lower(to) */
	k.size = (u_int32_t)store_key_mbox(key, lfrom, nid);
	d.data = lto;
	d.size = (u_int32_t)strlen(lto);
	if (store_put(st, SDB_OUTBOX, &k, &d, 0) != 1)
		return (-1);

	if (token != NULL) {
		put_be64(tval, nid);
		put_be64(tval + 8, (uint64_t)time_ms);
		k.data = tkey;
		k.size = (u_int32_t)(strlen(lfrom) + 1 + strlen(token));
		d.data = tval;
		d.size = sizeof(tval);
		if (store_put(st, SDB_TOKENS, &k, &d, 0) != 1)
			return (-1);
	}
	st->last_id = nid;
	*id = nid;
	return (1);
}

/* Decode a msgs.db record into m (text points into the record). */
static int
msg_decode(uint64_t id, const unsigned char *p, size_t len,
    struct store_msg *m)
{
	size_t	fl, tl;

	if (len < 10)
		return (-1);
	m->id = id;
	m->time_ms = (int64_t)get_be64(p);
	fl = p[8];
	if (fl > PROTO_NAME_MAX || len < 9 + fl + 1)
		return (-1);
	memcpy(m->from, p + 9, fl);
	m->from[fl] = '\0';
	tl = p[9 + fl];
	if (tl > PROTO_NAME_MAX || len < 10 + fl + tl)
		return (-1);
	memcpy(m->to, p + 10 + fl, tl);
	m->to[tl] = '\0';
	m->text = (const char *)p + 10 + fl + tl;
	m->len = len - 10 - fl - tl;
	return (0);
}

/* Read one message by id; its text is valid until the next store call. */
int
store_msg_get(struct store *st, uint64_t id, struct store_msg *m)
{
	unsigned char	idkey[8];
	DBT		k, d;
	int		ret;

	put_be64(idkey, id);
	memset(&k, 0, sizeof(k));
	memset(&d, 0, sizeof(d));
	k.data = idkey;
	k.size = 8;
	if ((ret = store_get(st, SDB_MSGS, &k, &d)) != 1)
		return (ret);
	if (msg_decode(id, d.data, d.size, m) == -1) {
		log_warnx("store: message %llu: bad record",
		    (unsigned long long)id);
		return (-1);
	}
	return (1);
}

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
	*cursor = get_be64(d.data);
	return (1);
}

int
store_ack_put(struct store *st, const char *name, uint64_t cursor)
{
	unsigned char	val[8];
	char		lname[PROTO_NAME_MAX + 1];
	DBT		k, d;

	user_key(&k, lname, name);
	put_be64(val, cursor);
	memset(&d, 0, sizeof(d));
	d.data = val;
	d.size = 8;
	return (store_put(st, SDB_ACKS, &k, &d, 0));
}


static int
walk_load(struct mbox_walk *w, int ret)
{
	w->valid = 0;
	if (ret == DB_NOTFOUND)
		return (0);
	if (ret != 0)
		return (-1);
	if (!mbox_match(&w->k, w->prefix, w->plen))
		return (0);
	w->valid = 1;
	w->id = get_be64((unsigned char *)w->k.data + w->plen);
	snprintf(w->peer, sizeof(w->peer), "%.*s",
	    (int)(w->d.size > PROTO_NAME_MAX ? PROTO_NAME_MAX : w->d.size),
	    (const char *)w->d.data);
	return (0);
}

/* Position w at the first entry of name with id >= from. */
static int
walk_open(struct store *st, enum store_db which, struct mbox_walk *w,
    const char *name, uint64_t from)
{
	size_t	n;
	int	ret;

	memset(w, 0, sizeof(*w));
	if ((ret = st->db[which]->cursor(st->db[which], st->txn, &w->c, 0)) != 0) {
		w->c = NULL;
		return (-1);
	}
	n = store_key_mbox(w->key, name, from);
	w->plen = n - 8;
	memcpy(w->prefix, w->key, w->plen);
	w->k.data = w->key;
	w->k.size = (u_int32_t)n;
	w->k.ulen = sizeof(w->key);
	w->k.flags = DB_DBT_USERMEM;
	return (walk_load(w, w->c->get(w->c, &w->k, &w->d, DB_SET_RANGE)));
}

/* Position w at the last entry of name with id < before. */
static int
walk_open_back(struct store *st, enum store_db which, struct mbox_walk *w,
    const char *name, uint64_t before)
{
	int	ret;

	if (walk_open(st, which, w, name, before) == -1)
		return (-1);
	/*
	 * set_range left the cursor on the first key >= (name, before), or
	 * unpositioned past the end, where DB_PREV acts as DB_LAST: either
	 * way the previous entry is the newest candidate.
	 */
	w->k.size = sizeof(w->key);
	ret = w->c->get(w->c, &w->k, &w->d, DB_PREV);
	return (walk_load(w, ret));
}

static int
walk_step(struct mbox_walk *w, u_int32_t dir)
{
	w->k.size = sizeof(w->key);
	return (walk_load(w, w->c->get(w->c, &w->k, &w->d, dir)));
}

static void
walk_close(struct mbox_walk *w)
{
	if (w->c != NULL)
		w->c->close(w->c);
	w->c = NULL;
}

/* Fetch message id and hand it to cb. */
static int
scan_emit(struct store *st, uint64_t id, store_msg_cb cb, void *arg)
{
	struct store_msg	m;
	int			ret;

	if ((ret = store_msg_get(st, id, &m)) != 1)
		return (ret == 0 ? 0 : -1);	/* a hole is skipped */
	return (cb(&m, arg));
}

/*
 * Committed messages addressed to name with id > after, oldest first, at
 * most max (0: no limit). Returns how many were handed to cb, or -1.
 */
int
store_inbox_scan(struct store *st, const char *name, uint64_t after,
    unsigned int max, store_msg_cb cb, void *arg)
{
	struct mbox_walk	w;
	unsigned int		n = 0;
	int			rv;

	if (walk_open(st, SDB_INBOX, &w, name, after + 1) == -1) {
		walk_close(&w);
		return (-1);
	}
	/* Only committed messages: a pump must never push a staged one. */
	while (w.valid && w.id <= st->committed_id && (max == 0 || n < max)) {
		if ((rv = scan_emit(st, w.id, cb, arg)) == -1)
			goto fail;
		n++;
		if (rv == 1)
			break;
		if (walk_step(&w, DB_NEXT) == -1)
			goto fail;
	}
	walk_close(&w);
	return ((int)n);
fail:
	walk_close(&w);
	return (-1);
}

/*
 * Walk the inbox of name over after < id <= upto without reading the
 * messages, handing cb each sender (lower case) and id, oldest first.
 */
int
store_inbox_senders(struct store *st, const char *name, uint64_t after,
    uint64_t upto, int (*cb)(const char *, uint64_t, void *), void *arg)
{
	struct mbox_walk	w;
	int			rv = 0;

	if (walk_open(st, SDB_INBOX, &w, name, after + 1) == -1) {
		walk_close(&w);
		return (-1);
	}
	while (w.valid && w.id <= upto) {
		if ((rv = cb(w.peer, w.id, arg)) != 0)
			break;
		if (walk_step(&w, DB_NEXT) == -1) {
			rv = -1;
			break;
		}
	}
	walk_close(&w);
	return (rv < 0 ? -1 : 0);
}

/* How many messages to name have id > after (the pending count). */
int
store_pending_count(struct store *st, const char *name, uint64_t after,
    uint64_t *count)
{
	struct mbox_walk	w;

	*count = 0;
	if (walk_open(st, SDB_INBOX, &w, name, after + 1) == -1) {
		walk_close(&w);
		return (-1);
	}
	while (w.valid) {
		(*count)++;
		if (walk_step(&w, DB_NEXT) == -1) {
			walk_close(&w);
			return (-1);
		}
	}
	walk_close(&w);
	return (0);
}

/*
 * Every message to or from name with id > after, oldest first, at most
 * max: a merge of the inbox and the outbox. *more says whether any is left.
 */
int
store_sync_scan(struct store *st, const char *name, uint64_t after,
    unsigned int max, store_msg_cb cb, void *arg, int *more)
{
	struct mbox_walk	in, out;
	unsigned int		n = 0;
	uint64_t		id;
	int			rv;

	*more = 0;
	memset(&out, 0, sizeof(out));
	if (walk_open(st, SDB_INBOX, &in, name, after + 1) == -1 ||
	    walk_open(st, SDB_OUTBOX, &out, name, after + 1) == -1)
		goto fail;
	while (in.valid || out.valid) {
		if (n == max) {
			*more = 1;
			break;
		}
		if (in.valid && (!out.valid || in.id <= out.id))
			id = in.id;
		else
			id = out.id;
		if ((rv = scan_emit(st, id, cb, arg)) == -1)
			goto fail;
		n++;
		if (in.valid && in.id == id && walk_step(&in, DB_NEXT) == -1)
			goto fail;
		if (out.valid && out.id == id && walk_step(&out, DB_NEXT) == -1)
			goto fail;
		if (rv == 1) {
			*more = in.valid || out.valid;
			break;
		}
	}
	walk_close(&in);
	walk_close(&out);
	return ((int)n);
fail:
	walk_close(&in);
	walk_close(&out);
	return (-1);
}

/*
 * The conversation of name with peer: the last max messages with
 * id < before (0: no bound) whose texts fit in budget bytes (0: no
 * bound; the newest always fits), handed to cb oldest first. Walks name's
 * inbox and outbox backwards, filtering on the peer kept in each entry.
 */
int
store_history_scan(struct store *st, const char *name, const char *peer,
    uint64_t before, unsigned int max, size_t budget, store_msg_cb cb,
    void *arg, int *more)
{
	struct store_msg	 m;
	size_t			 bytes = 0;
	struct mbox_walk	 in, out;
	char			 lpeer[PROTO_NAME_MAX + 1];
	uint64_t		*ids, id;
	unsigned int		 n = 0, i;
	int			 rv, from_in, from_out;

	*more = 0;
	if (max == 0 || max > HISTORY_MAX)
		max = HISTORY_MAX;
	if (before == 0)
		before = UINT64_MAX;
	proto_lower(lpeer, peer, sizeof(lpeer));
	ids = xreallocarray(NULL, max, sizeof(*ids));
	memset(&out, 0, sizeof(out));
	if (walk_open_back(st, SDB_INBOX, &in, name, before) == -1 ||
	    walk_open_back(st, SDB_OUTBOX, &out, name, before) == -1)
		goto fail;
	while (in.valid || out.valid) {
		if (in.valid && (!out.valid || in.id >= out.id))
			id = in.id;
		else
			id = out.id;
		from_in = in.valid && in.id == id && strcmp(in.peer, lpeer) == 0;
		from_out = out.valid && out.id == id &&
		    strcmp(out.peer, lpeer) == 0;
		if (from_in || from_out) {
			if (n == max) {
				*more = 1;
				break;
			}
			/* keep the newest that fit in the byte budget */
			if (budget > 0 && store_msg_get(st, id, &m) == 1) {
				if (n > 0 && bytes + m.len > budget) {
					*more = 1;
					break;
				}
				bytes += m.len;
			}
			ids[n++] = id;
		}
		if (in.valid && in.id == id && walk_step(&in, DB_PREV) == -1)
			goto fail;
		if (out.valid && out.id == id && walk_step(&out, DB_PREV) == -1)
			goto fail;
	}
	walk_close(&in);
	walk_close(&out);
	for (i = n; i > 0; i--) {
		if ((rv = scan_emit(st, ids[i - 1], cb, arg)) == -1) {
			free(ids);
			return (-1);
		}
		if (rv == 1) {
			*more = 1;
			n = n - i + 1;
			break;
		}
	}
	free(ids);
	return ((int)n);
fail:
	walk_close(&in);
	walk_close(&out);
	free(ids);
	return (-1);
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

/* Every inbox/outbox entry must point at a message of the right people. */
static int
verify_mbox(struct store *st, enum store_db which, uint64_t last, char *err,
    size_t errlen, uint64_t *entries)
{
	struct store_msg	 m;
	char			 owner[PROTO_NAME_MAX + 1];
	char			 lfrom[PROTO_NAME_MAX + 1], lto[PROTO_NAME_MAX + 1];
	DBC			*c;
	DBT			 k, d;
	uint64_t		 id;
	size_t			 ol;
	int			 ret, rv = 1;

	if (st->db[which]->cursor(st->db[which], NULL, &c, 0) != 0)
		return (-1);
	memset(&k, 0, sizeof(k));
	memset(&d, 0, sizeof(d));
	while ((ret = c->get(c, &k, &d, DB_NEXT)) == 0) {
		if (k.size >= 8 &&
		    get_be64((unsigned char *)k.data + k.size - 8) > last)
			continue;	/* written after the check began */
		(*entries)++;
		if (k.size < 10 || ((char *)k.data)[k.size - 9] != '\0') {
			snprintf(err, errlen, "%s: malformed key",
			    store_db_names[which]);
			rv = 0;
			break;
		}
		ol = k.size - 9;
		if (ol > PROTO_NAME_MAX)
			ol = PROTO_NAME_MAX;
		memcpy(owner, k.data, ol);
		owner[ol] = '\0';
		id = get_be64((unsigned char *)k.data + k.size - 8);
		if ((ret = store_msg_get(st, id, &m)) != 1) {
			snprintf(err, errlen, "%s: entry %s/%llu has no message",
			    store_db_names[which], owner, (unsigned long long)id);
			rv = ret == -1 ? -1 : 0;
			break;
		}
		proto_lower(lfrom, m.from, sizeof(lfrom));
		proto_lower(lto, m.to, sizeof(lto));
		if (strcmp(which == SDB_INBOX ? lto : lfrom, owner) != 0) {
			snprintf(err, errlen, "%s: message %llu is not %s's",
			    store_db_names[which], (unsigned long long)id,
			    owner);
			rv = 0;
			break;
		}
	}
	c->close(c);
	if (rv == 1 && ret != DB_NOTFOUND)
		return (-1);
	return (rv);
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
	struct store_msg	 m;
	DBC			*c;
	DBT			 k, d;
	uint64_t		 users = 0, msgs = 0, in = 0, out = 0, last = 0;
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

	/*
	 * A running server keeps appending: check the log up to the last
	 * message committed now, and the index entries of those messages
	 * only (ids commit in order, each with its entries).
	 */
	if (st->db[SDB_MSGS]->cursor(st->db[SDB_MSGS], NULL, &c, 0) != 0)
		return (-1);
	if ((ret = c->get(c, &k, &d, DB_LAST)) == 0 && k.size == 8)
		last = get_be64(k.data);
	else if (ret != DB_NOTFOUND) {
		c->close(c);
		return (-1);
	}
	memset(&k, 0, sizeof(k));
	memset(&d, 0, sizeof(d));
	for (ret = c->get(c, &k, &d, DB_FIRST); ret == 0;
	    ret = c->get(c, &k, &d, DB_NEXT)) {
		if (k.size == 8 && get_be64(k.data) > last)
			break;
		msgs++;
		if (k.size != 8 || msg_decode(get_be64(k.data), d.data, d.size,
		    &m) == -1) {
			snprintf(err, errlen, "msgs.db: bad record");
			c->close(c);
			return (0);
		}
	}
	c->close(c);
	if (ret != DB_NOTFOUND && ret != 0)
		return (-1);
	if ((rv = verify_mbox(st, SDB_INBOX, last, err, errlen, &in)) != 1 ||
	    (rv = verify_mbox(st, SDB_OUTBOX, last, err, errlen, &out)) != 1)
		return (rv);
	/* a deleted account's mailboxes are gone, so fewer is fine */
	if (in > msgs || out > msgs) {
		snprintf(err, errlen, "%llu messages but %llu inbox and %llu "
		    "outbox entries", (unsigned long long)msgs,
		    (unsigned long long)in, (unsigned long long)out);
		return (0);
	}
	snprintf(err, errlen, "ok: %llu users, %llu messages",
	    (unsigned long long)users, (unsigned long long)msgs);
	return (1);
}

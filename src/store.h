/*
 * store.h: the durable store, over a Berkeley DB transactional environment.
 * Only store.c and store-log.c include <db.h> (through store-int.h);
 * nothing above this interface sees a DBT.
 *
 * Lookups are tri-state (OpenSMTPD table_lookup): -1 error, 0 not found,
 * 1 found. Writes join the current commit group: the first write opens a
 * transaction, store_commit() ends it; every read made while a group is
 * open runs inside it, so the single-threaded server never waits on its
 * own locks. Messages are staged in memory and written at store_commit()
 * (store-log.c); reads see them all the same.
 */
#ifndef MYCHAT_STORE_H
#define MYCHAT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define STORE_HASH_MAX		160
#define STORE_IP_MAX		64
#define STORE_TOKEN_WINDOW_MS	(24LL * 3600 * 1000)

struct store;

struct store_user {
	char		name[PROTO_NAME_MAX + 1];	/* display spelling */
	char		hash[STORE_HASH_MAX];		/* crypt(3) string */
	int64_t		created_ms;
	int64_t		last_login_ms;
	char		last_ip[STORE_IP_MAX];
};

/* A message as read back; text points into storage owned by the store. */
struct store_msg {
	uint64_t	 id;
	int64_t		 time_ms;
	char		 from[PROTO_NAME_MAX + 1];
	char		 to[PROTO_NAME_MAX + 1];
	const char	*text;
	size_t		 len;
};

/* Return 0 to go on, 1 to stop early, -1 on error (scan returns -1). */
typedef int (*store_msg_cb)(const struct store_msg *, void *);

struct store_stats {
	uint64_t	commits;
	uint64_t	committed_ops;
	uint64_t	failed_commits;
	uint64_t	db_bytes;
};

/* store_open flags */
#define STORE_NOSYNC	0x01	/* DB_TXN_WRITE_NOSYNC instead of fsync */
#define STORE_SYNC_THREAD 0x02	/* fsync on a thread: store_commit_start */

int	store_open(struct store **, const char *, int, char *, size_t);
void	store_close(struct store *);
int	store_commit(struct store *);
int	store_commit_start(struct store *);
int	store_commit_wait(struct store *);
int	store_sync_pending(const struct store *);
int	store_sync_ready(struct store *);
int	store_sync_fd(const struct store *);
void	store_sync_drain(struct store *);
int	store_in_group(const struct store *);
int	store_panicked(const struct store *);
void	store_abort(struct store *);
void	store_checkpoint(struct store *);
void	store_get_stats(struct store *, struct store_stats *);
uint64_t store_last_id(const struct store *);

int	store_user_get(struct store *, const char *, struct store_user *);
int	store_user_add(struct store *, const struct store_user *);
int	store_user_put(struct store *, const struct store_user *);
int	store_user_del(struct store *, const char *);
int	store_user_scan(struct store *,
	    int (*)(const struct store_user *, void *), void *);
int	store_ip_get(struct store *, const char *, char *, size_t);
int	store_ip_put(struct store *, const char *, const char *);

int	store_msg_add(struct store *, const char *, const char *, int64_t,
	    const char *, size_t, const char *, uint64_t *);
int	store_msg_add_l(struct store *, const char *, const char *,
	    const char *, const char *, int64_t, const char *, size_t,
	    const char *, uint64_t *);
int	store_msg_get(struct store *, uint64_t, struct store_msg *);
int	store_ack_get(struct store *, const char *, uint64_t *);
int	store_ack_put(struct store *, const char *, uint64_t);
int	store_inbox_scan(struct store *, const char *, uint64_t, unsigned int,
	    store_msg_cb, void *);
int	store_inbox_senders(struct store *, const char *, uint64_t, uint64_t,
	    int (*)(const char *, uint64_t, void *), void *);
int	store_pending_count(struct store *, const char *, uint64_t, uint64_t *);
int	store_sync_scan(struct store *, const char *, uint64_t, unsigned int,
	    store_msg_cb, void *, int *);
int	store_history_scan(struct store *, const char *, const char *, uint64_t,
	    unsigned int, size_t, store_msg_cb, void *, int *);
int	store_backup(struct store *, const char *, char *, size_t);
int	store_verify(struct store *, char *, size_t);

/* Key encoding, exposed for the unit tests. */
size_t	store_key_mbox(unsigned char *, const char *, uint64_t);
uint64_t store_key_id(const unsigned char *, size_t);

#endif

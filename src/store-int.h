/*
 * store-int.h: what store.c (the environment, accounts, acks, backup)
 * and store-log.c (the message log and the mailboxes) share. Private to
 * those two files: nothing else includes <db.h>.
 */
#ifndef MYCHAT_STORE_INT_H
#define MYCHAT_STORE_INT_H

#include <db.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "store.h"

#define STORE_PAGESIZE	(16 * 1024)	/* the log and the mailboxes */

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

extern const char *const store_db_names[SDB_COUNT];

/*
 * A run of messages with consecutive ids, encoded as in a messages.db
 * segment (store-log.c): the group being staged, the last group committed,
 * or the last segment read back.
 */
struct seg {
	uint64_t	 first;		/* id of record 0 */
	unsigned int	 n;		/* records */
	unsigned char	*data;		/* the records, without the header */
	size_t		 len, alloc;
	size_t		*off;		/* offset of each record in data */
	unsigned int	 offalloc;
};

/*
 * A name the open group's mailbox entries use, in lower case, interned
 * once per group: entries and owners refer to it by its index, so staging
 * a message copies, hashes and compares no name but its two own.
 */
struct stage_name {
	char		lname[PROTO_NAME_MAX + 1];
	unsigned char	len;
	uint32_t	own[2];		/* its owner index + 1 in the inbox's
					   and the outbox's stage; 0: none */
};

struct stage_names {
	struct stage_name	*v;
	size_t			 n, alloc;
	uint32_t		*tab;		/* name index + 1; 0: empty */
	size_t			 tabsize;	/* a power of two, or 0 */
};

/* A mailbox entry staged in the group: its owner's box holds id, peer. */
struct mbox_ent {
	uint64_t	id;
	uint32_t	next;		/* the owner's next entry, or UINT32_MAX */
	uint32_t	peer;		/* a stage_names index */
};

/* An owner with entries in the group: its list, oldest first. */
struct mbox_owner {
	uint32_t	head, tail;	/* entry indexes */
	uint32_t	name;		/* a stage_names index */
};

/*
 * The group's entries of one mailbox database, chained per owner as they
 * come (ids ascend): written one record per owner without sorting the
 * entries.
 */
struct mbox_stage {
	struct mbox_ent		*ent;
	size_t			 n, alloc;
	struct mbox_owner	*own;
	size_t			 nown, ownalloc;
	unsigned int		 side;		/* 0: inboxes, 1: outboxes */
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
	/* the message log's staging and read caches (store-log.c) */
	struct seg	 stage;		/* messages of the open group */
	struct mbox_stage inbox, outbox;
	struct stage_names names;	/* the names inbox and outbox use */
	struct store_sync *sync;	/* the fsync thread (store-sync.c) */
	uint64_t	 sync_gen;	/* the sync the open commit waits on */
	struct seg	 recent;	/* the last committed group */
	struct seg	 readseg;	/* the last segment read back */
	unsigned char	*rec;		/* a segment being written */
	size_t		 recalloc;
	struct store_stats stats;
};

void	 store_put_be64(unsigned char *, uint64_t);
uint64_t store_get_be64(const unsigned char *);
DB_TXN	*store_txn(struct store *);
int	 store_write_failed(struct store *, const char *, int);
int	 store_put(struct store *, enum store_db, DBT *, DBT *, u_int32_t);
int	 store_get(struct store *, enum store_db, DBT *, DBT *);

/* store-sync.c */
int	 store_sync_start(struct store *);
void	 store_sync_stop(struct store *);
uint64_t store_sync_ask(struct store *);
int	 store_sync_wait(struct store *, uint64_t);
int	 store_sync_finished(struct store *, uint64_t);

/* store-log.c */
int	 store_log_open(struct store *, char *, size_t);
void	 store_log_free(struct store *);
int	 store_log_flush(struct store *);
void	 store_log_committed(struct store *);
void	 store_log_aborted(struct store *);
int	 store_log_drop(struct store *, const char *);
int	 store_log_verify(struct store *, char *, size_t);

#endif

/*
 * test_store.c: TAP unit tests of the store (src/store.c) through
 * src/store.h, on a fresh database in a temporary directory: the key
 * encoding, accounts, messages, retry tokens, ack cursors, the pending
 * range (inbox scan after a cursor, committed messages only), SYNC and
 * HISTORY scans, the consistency check, a reopen, and commits whose fsync
 * runs on the store's thread.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/stat.h>

#include <dirent.h>
#include <poll.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"
#include "store.h"
#include "store-int.h"		/* the layout test writes a raw record */
#include "tap.h"

#define KEY_MAX		(PROTO_NAME_MAX + 1 + 8)
#define MAX_SEEN	64

/* UTF-8, a tab, a backslash-n escape, trailing spaces. */
static const char	utext[] = "gr\xc3\xbc\xc3\x9f" "e\tund \\n "
    "\xf0\x9f\x98\x80  ";

/* What a scan callback saw. */
struct seen {
	int		 n;
	int		 stop_at;	/* return 1 after this many (0: never) */
	uint64_t	 ids[MAX_SEEN];
	char		 from[MAX_SEEN][PROTO_NAME_MAX + 1];
	char		 to[MAX_SEEN][PROTO_NAME_MAX + 1];
	char		*text[MAX_SEEN];
	size_t		 len[MAX_SEEN];
};

/* Record one message of a scan. */
static int
seen_cb(const struct store_msg *m, void *arg)
{
	struct seen	*s = arg;

	if (s->n >= MAX_SEEN)
		return (-1);
	s->ids[s->n] = m->id;
	snprintf(s->from[s->n], sizeof(s->from[0]), "%s", m->from);
	snprintf(s->to[s->n], sizeof(s->to[0]), "%s", m->to);
	s->text[s->n] = malloc(m->len + 1);
	memcpy(s->text[s->n], m->text, m->len);
	s->text[s->n][m->len] = '\0';
	s->len[s->n] = m->len;
	s->n++;
	return (s->stop_at > 0 && s->n >= s->stop_at);
}

/* Forget what a scan saw. */
static void
seen_reset(struct seen *s)
{
	int	i;

	for (i = 0; i < s->n; i++)
		free(s->text[i]);
	memset(s, 0, sizeof(*s));
}

/* "id,id,..." of what a scan saw, for one-line comparisons. */
static const char *
seen_ids(const struct seen *s)
{
	static char	buf[MAX_SEEN * 21];
	size_t		off = 0;
	int		i;

	buf[0] = '\0';
	for (i = 0; i < s->n && off < sizeof(buf) - 22; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%" PRIu64,
		    i ? "," : "", s->ids[i]);
	return (buf);
}

/* "id,id,..." of the given ids. */
static const char *
ids_str(const uint64_t *ids, int n)
{
	static char	buf[MAX_SEEN * 21];
	size_t		off = 0;
	int		i;

	buf[0] = '\0';
	for (i = 0; i < n && off < sizeof(buf) - 22; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%" PRIu64,
		    i ? "," : "", ids[i]);
	return (buf);
}

/* Add a message and return its id (0 on failure). */
static uint64_t
add(struct store *st, const char *from, const char *to, const char *text,
    const char *token, int64_t t)
{
	uint64_t	id = 0;

	if (store_msg_add(st, from, to, t, text, strlen(text), token,
	    &id) != 1)
		return (0);
	return (id);
}

/* Count what a scan saw and check the ids ascend by one from *next. */
struct run {
	uint64_t	next;
	unsigned int	n, bad;
	int		step;		/* id distance between two seen */
};

static int
run_cb(const struct store_msg *m, void *arg)
{
	struct run	*r = arg;
	char		 want[32];

	snprintf(want, sizeof(want), "big %" PRIu64, m->id);
	if (m->id != r->next || m->len != strlen(want) ||
	    memcmp(m->text, want, m->len) != 0)
		r->bad++;
	r->next = m->id + (uint64_t)r->step;
	r->n++;
	return (0);
}

/*
 * Groups larger than a segment (512 messages, 32 KiB) and than a mailbox
 * record (256 entries): every message readable, scans cross the record
 * boundaries both ways, a read in the middle of a group (pending count)
 * writes the stage out and the rest of the group still lands, and a failed
 * group leaves nothing behind.
 */
static void
test_big_group(struct store *st)
{
	struct store_msg	m;
	struct run		r;
	uint64_t		first, id, count;
	char			text[32];
	unsigned int		i, bad = 0;
	int			more;

	first = store_last_id(st) + 1;
	for (i = 0; i < 1500; i++) {
		snprintf(text, sizeof(text), "big %" PRIu64, first + i);
		id = add(st, i % 2 ? "yves" : "xena", "will", text, NULL,
		    10000 + i);
		if (id != first + i)
			bad++;
		if (i == 700) {
			/* a read mid-group: stage written into the txn */
			tap_is_int(store_pending_count(st, "will", 0, &count),
			    0, "pending_count in the middle of a big group");
			tap_ok(count == 701, "... counts the staged 701 (%"
			    PRIu64 ")", count);
		}
	}
	tap_is_int((int)bad, 0, "1500 messages staged with consecutive ids");
	tap_is_int(store_msg_get(st, first + 1499, &m), 1,
	    "a staged message reads back before the commit");
	tap_is_int(store_commit(st), 0, "commit the big group");
	for (i = 0, bad = 0; i < 1500; i++) {
		snprintf(text, sizeof(text), "big %" PRIu64, first + i);
		if (store_msg_get(st, first + i, &m) != 1 ||
		    m.len != strlen(text) || memcmp(m.text, text, m.len) != 0 ||
		    strcmp(m.to, "will") != 0)
			bad++;
	}
	tap_is_int((int)bad, 0, "each of the 1500 reads back by id");
	memset(&r, 0, sizeof(r));
	r.next = first;
	r.step = 1;
	tap_is_int(store_inbox_scan(st, "will", first - 1, 0, run_cb, &r), 1500,
	    "inbox_scan: all 1500 across records");
	tap_ok(r.bad == 0, "... in id order with their texts");
	memset(&r, 0, sizeof(r));
	r.next = first + 1000;
	r.step = 1;
	tap_is_int(store_inbox_scan(st, "will", first + 999, 0, run_cb, &r),
	    500, "inbox_scan from the middle of a record: 500");
	tap_ok(r.bad == 0, "... from the right id");
	tap_is_int(store_pending_count(st, "will", first + 299, &count), 0,
	    "pending_count after a cursor inside a record");
	tap_ok(count == 1200, "... 1200 (%" PRIu64 ")", count);
	memset(&r, 0, sizeof(r));
	r.next = first + 1;
	r.step = 2;
	tap_is_int(store_sync_scan(st, "yves", first - 1, 1000, run_cb, &r,
	    &more), 750, "sync_scan of one sender: 750");
	tap_ok(r.bad == 0 && more == 0, "... every other id");
	memset(&r, 0, sizeof(r));
	r.next = first + 1500 - 2 * 600;
	r.step = 2;
	tap_is_int(store_history_scan(st, "will", "xena", first + 1500, 600, 0,
	    run_cb, &r, &more), 600, "history backwards across records: 600");
	tap_ok(r.bad == 0 && more == 1, "... the newest 600, oldest first, more");

	/* a failed group: nothing of it is found afterwards */
	id = add(st, "xena", "will", "lost", NULL, 20000);
	store_abort(st);
	tap_is_int(store_msg_get(st, id, &m), 0, "an aborted group's message "
	    "is gone");
	tap_is_int(store_pending_count(st, "will", first + 1499, &count), 0,
	    "pending after the abort");
	tap_ok(count == 0, "... none");
}

/* pat's messages from 100 senders, read three ways; 0 when all agree. */
static int
layout_check(struct store *st, uint64_t first, const char *what)
{
	struct store_msg	m;
	struct run		r;
	uint64_t		count;
	int			more, bad = 0;

	memset(&r, 0, sizeof(r));
	r.next = first;
	r.step = 1;
	if (!tap_is_int(store_inbox_scan(st, "pat", first - 1, 0, run_cb, &r),
	    100, "%s: inbox_scan of pat: 100", what) || r.bad != 0)
		bad++;
	memset(&r, 0, sizeof(r));
	r.next = first + 42;
	r.step = 1;
	if (!tap_is_int(store_history_scan(st, "pat", "s42", 0, 10, 0, run_cb,
	    &r, &more), 1, "%s: history of pat with s42: one message", what) ||
	    r.bad != 0)
		bad++;
	if (!tap_ok(store_pending_count(st, "pat", first + 49, &count) == 0 &&
	    count == 50, "%s: 50 pending after the 50th (%" PRIu64 ")", what,
	    count))
		bad++;
	if (!tap_ok(store_msg_get(st, first + 99, &m) == 1 &&
	    strcmp(m.from, "s99") == 0, "%s: the last is from s99", what))
		bad++;
	return (bad);
}

/*
 * Mailbox records: the packed layout that this version writes, split at
 * 64 distinct peers, and the plain layout of 0.2.0 databases, which it
 * still reads. pat gets one message from each of 100 senders in one
 * group; then pat's records are replaced by one record of the plain
 * layout, and every read must give the same answers.
 */
static void
test_mbox_layouts(struct store *st)
{
	unsigned char	 key[KEY_MAX], rec[100 * (9 + PROTO_NAME_MAX)];
	char		 from[8], text[32];
	uint64_t	 first;
	size_t		 klen, len = 0;
	unsigned int	 i, bad = 0, nrec = 0;
	DB_TXN		*txn;
	DBC		*c;
	DBT		 k, d;
	char		 err[256];

	first = add(st, "xena", "zoe", "before", NULL, 60000) + 1;
	for (i = 0; i < 100; i++) {
		snprintf(from, sizeof(from), "s%02u", i);
		snprintf(text, sizeof(text), "big %" PRIu64, first + i);
		if (add(st, from, "pat", text, NULL, 60001 + i) != first + i)
			bad++;
	}
	tap_is_int(store_commit(st), 0, "commit 100 messages to pat");
	tap_is_int((int)bad, 0, "... from 100 senders, consecutive ids");
	tap_is_int(layout_check(st, first, "packed"), 0, "packed records "
	    "read back");

	/* replace pat's inbox records by one of the plain layout */
	if (st->env->txn_begin(st->env, NULL, &txn, 0) != 0) {
		tap_ok(0, "txn_begin");
		return;
	}
	klen = store_key_mbox(key, "pat", 0);
	memset(&k, 0, sizeof(k));
	memset(&d, 0, sizeof(d));
	k.data = key;
	k.size = (u_int32_t)klen;
	st->db[SDB_INBOX]->cursor(st->db[SDB_INBOX], txn, &c, 0);
	for (i = c->get(c, &k, &d, DB_SET_RANGE); i == 0 &&
	    k.size == klen && memcmp(k.data, key, klen - 8) == 0;
	    i = c->get(c, &k, &d, DB_NEXT)) {
		if (nrec++ == 0)
			tap_ok(d.size > 0 && ((unsigned char *)d.data)[0] ==
			    0x01, "pat's first record is packed");
		c->del(c, 0);
	}
	c->close(c);
	tap_ok(nrec == 2, "100 senders make 2 packed records (%u)", nrec);
	for (i = 0; i < 100; i++) {
		store_put_be64(rec + len, first + i);
		rec[len + 8] = 3;
		snprintf((char *)rec + len + 9, 4, "s%02u", i);
		len += 12;
	}
	klen = store_key_mbox(key, "pat", first);
	memset(&k, 0, sizeof(k));
	memset(&d, 0, sizeof(d));
	k.data = key;
	k.size = (u_int32_t)klen;
	d.data = rec;
	d.size = (u_int32_t)len;
	tap_is_int(st->db[SDB_INBOX]->put(st->db[SDB_INBOX], txn, &k, &d, 0), 0,
	    "put one record of the plain layout");
	tap_is_int(txn->commit(txn, 0), 0, "commit it");
	tap_is_int(layout_check(st, first, "plain"), 0, "the plain record "
	    "reads the same");
	tap_is_int(store_verify(st, err, sizeof(err)), 1, "store_verify over "
	    "both layouts: %s", err);
}

/* Remove the temporary database directory (flat: BDB files only). */
static void
rmdir_flat(const char *dir)
{
	char		 path[1024];
	DIR		*d;
	struct dirent	*e;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

/* Key encoding: lower(name) NUL be64(id); byte order is id order. */
static void
test_keys(void)
{
	static const uint64_t	 ids[] = { 0, 1, 2, 255, 256, 65535, 65536,
	    UINT32_MAX, (uint64_t)UINT32_MAX + 1, INT64_MAX,
	    (uint64_t)INT64_MAX + 1, UINT64_MAX - 1, UINT64_MAX };
	static const unsigned char want[] = { 'a', 'b', 0,
	    1, 2, 3, 4, 5, 6, 7, 8 };
	unsigned char		 k1[KEY_MAX], k2[KEY_MAX];
	size_t			 n1, n2, i;
	int			 ok;

	n1 = store_key_mbox(k1, "Ab", UINT64_C(0x0102030405060708));
	tap_is_int(n1, sizeof(want), "key size is name + NUL + 8");
	tap_ok(n1 == sizeof(want) && memcmp(k1, want, n1) == 0,
	    "key bytes: lower-case name, NUL, big-endian id");
	tap_ok(store_key_id(k1, n1) == UINT64_C(0x0102030405060708),
	    "store_key_id reads the id back");

	n1 = store_key_mbox(k1, "BoB", 42);
	n2 = store_key_mbox(k2, "bob", 42);
	tap_ok(n1 == n2 && memcmp(k1, k2, n1) == 0,
	    "keys are case-folded: BoB and bob are one mailbox");

	ok = 1;
	for (i = 0; i + 1 < sizeof(ids) / sizeof(ids[0]); i++) {
		n1 = store_key_mbox(k1, "bob", ids[i]);
		n2 = store_key_mbox(k2, "bob", ids[i + 1]);
		if (n1 != n2 || memcmp(k1, k2, n1) >= 0)
			ok = 0;
		if (store_key_id(k1, n1) != ids[i] ||
		    store_key_id(k2, n2) != ids[i + 1])
			ok = 0;
	}
	tap_ok(ok, "byte order of keys is id order (0 .. 2^64-1), ids round-trip");

	n1 = store_key_mbox(k1, "bob", UINT64_MAX);
	n2 = store_key_mbox(k2, "bobby", 0);
	tap_ok(memcmp(k1, k2, n1 < n2 ? n1 : n2) < 0,
	    "every key of bob sorts before every key of bobby");
	n1 = store_key_mbox(k1, "a", UINT64_MAX);
	n2 = store_key_mbox(k2, "b", 0);
	tap_ok(memcmp(k1, k2, n1 < n2 ? n1 : n2) < 0,
	    "a mailbox is one contiguous range (a before b)");
	n1 = store_key_mbox(k1, "x234567890123456789012345678901z", 7);
	tap_is_int(n1, 32 + 1 + 8, "a 32-character name fits the key");
	tap_ok(store_key_id(k1, n1) == 7, "and its id reads back");
}

/* Accounts: add, duplicate (case-insensitive), get. */
static void
test_users(struct store *st)
{
	struct store_user	u, g;

	memset(&u, 0, sizeof(u));
	snprintf(u.name, sizeof(u.name), "Alice");
	snprintf(u.hash, sizeof(u.hash), "$y$j9T$salt$hash");
	u.created_ms = 1700000000123LL;
	tap_is_int(store_user_add(st, &u), 1, "user_add Alice: created");
	snprintf(u.name, sizeof(u.name), "bob");
	tap_is_int(store_user_add(st, &u), 1, "user_add bob: created");
	snprintf(u.name, sizeof(u.name), "carol");
	tap_is_int(store_user_add(st, &u), 1, "user_add carol: created");
	snprintf(u.name, sizeof(u.name), "zed");
	tap_is_int(store_user_add(st, &u), 1, "user_add zed: created");
	tap_is_int(store_commit(st), 0, "commit the accounts");

	snprintf(u.name, sizeof(u.name), "alice");
	tap_is_int(store_user_add(st, &u), 0, "user_add alice: taken (Alice)");
	snprintf(u.name, sizeof(u.name), "ALICE");
	tap_is_int(store_user_add(st, &u), 0, "user_add ALICE: taken");
	tap_is_int(store_commit(st), 0, "commit (nothing new)");

	memset(&g, 0, sizeof(g));
	tap_is_int(store_user_get(st, "aLiCe", &g), 1, "user_get aLiCe: found");
	tap_is_str(g.name, "Alice", "the display spelling is kept");
	tap_is_str(g.hash, "$y$j9T$salt$hash", "the hash is kept");
	tap_ok(g.created_ms == 1700000000123LL, "created_ms is kept");
	tap_is_int(store_user_get(st, "nobody", &g), 0, "user_get nobody: 0");
}

/* Messages: round trip, ids, tokens. */
static void
test_msgs(struct store *st, uint64_t *first)
{
	const char		*text = utext;
	struct store_msg	 m;
	char			 big[3000];
	uint64_t		 id1, id2, id3, id4, id5;

	tap_ok((id1 = add(st, "Alice", "bob", text, NULL, 1000)) > 0,
	    "msg_add: stored");
	tap_is_int(store_commit(st), 0, "commit");
	*first = id1;
	tap_is_int(store_msg_get(st, id1, &m), 1, "msg_get: found");
	tap_ok(m.len == strlen(text) && memcmp(m.text, text, m.len) == 0,
	    "text is byte-exact (UTF-8, tab, backslash-n, trailing spaces)");
	tap_is_str(m.from, "Alice", "from keeps the display name");
	tap_is_str(m.to, "bob", "to");
	tap_ok(m.time_ms == 1000 && m.id == id1, "time and id");
	tap_is_int(store_msg_get(st, id1 + 1000, &m), 0, "msg_get unknown: 0");
	tap_ok(store_last_id(st) == id1, "store_last_id");

	/* Tokens: same sender and token within the window gives the id. */
	tap_ok((id2 = add(st, "Alice", "bob", "tok", "t1", 2000)) == id1 + 1,
	    "msg_add with a token: the next id");
	id3 = 0;
	tap_is_int(store_msg_add(st, "alice", "bob", 2001, "tok", 3, "t1",
	    &id3), 0, "same token, same sender in the same group: 0");
	tap_ok(id3 == id2, "... with the original id");
	tap_is_int(store_commit(st), 0, "commit");
	id3 = 0;
	tap_is_int(store_msg_add(st, "ALICE", "bob", 3000, "tok", 3, "t1",
	    &id3), 0, "same token after the commit: 0");
	tap_ok(id3 == id2, "... with the original id");
	/* After a token hit, a long message: the store's buffers must cope. */
	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	tap_ok((id4 = add(st, "bob", "Alice", big, "t1", 3001)) == id2 + 1,
	    "same token from another sender: a new message");
	tap_ok(add(st, "Alice", "bob", "late", "t1",
	    2000 + STORE_TOKEN_WINDOW_MS) == id4 + 1,
	    "same token after the window: a new message");
	tap_is_int(store_commit(st), 0, "commit");
	tap_is_int(store_msg_get(st, id4, &m), 1, "the long message");
	tap_ok(m.len == sizeof(big) - 1 && memcmp(m.text, big, m.len) == 0,
	    "the long message is intact");
	id5 = 0;
	tap_is_int(store_msg_add(st, "bob", "alice", 3002, "x", 1, "t1", &id5),
	    0, "bob's t1 now dedupes too");
	tap_ok(id5 == id4, "... to bob's message");
	tap_is_int(store_commit(st), 0, "commit");
}

/*
 * The pending range: ack cursor, inbox scan after it, pending count;
 * messages of an open group are invisible to the inbox scan.
 */
static void
test_inbox(struct store *st)
{
	struct seen	 s;
	uint64_t	 ids[6], c, staged;
	int		 i;

	memset(&s, 0, sizeof(s));
	tap_is_int(store_ack_get(st, "carol", &c), 0, "ack_get, none yet: 0");
	tap_ok(c == 0, "... cursor 0");
	for (i = 0; i < 6; i++) {
		char	t[16];

		snprintf(t, sizeof(t), "c%d", i);
		ids[i] = add(st, i % 2 ? "bob" : "Alice", "Carol", t, NULL, 5000 + i);
		/* interleave a message for someone else */
		add(st, "Alice", "bob", "not carol's", NULL, 5000 + i);
	}
	tap_is_int(store_commit(st), 0, "commit six for carol");

	tap_is_int(store_inbox_scan(st, "carol", 0, 0, seen_cb, &s), 6,
	    "inbox_scan from 0: six");
	tap_is_str(seen_ids(&s), ids_str(ids, 6), "... carol's, in id order");
	tap_is_str(s.text[0], "c0", "... with their texts");
	seen_reset(&s);

	tap_is_int(store_ack_put(st, "CAROL", ids[1]), 1, "ack_put");
	tap_is_int(store_commit(st), 0, "commit");
	tap_is_int(store_ack_get(st, "carol", &c), 1, "ack_get: 1");
	tap_ok(c == ids[1], "... the cursor put");

	tap_is_int(store_inbox_scan(st, "Carol", c, 0, seen_cb, &s), 4,
	    "inbox_scan after the cursor: four");
	tap_is_str(seen_ids(&s), ids_str(ids + 2, 4), "... 3rd to 6th");
	seen_reset(&s);
	tap_is_int(store_inbox_scan(st, "carol", c, 3, seen_cb, &s), 3,
	    "inbox_scan with max 3: three");
	tap_is_str(seen_ids(&s), ids_str(ids + 2, 3), "... the oldest three");
	seen_reset(&s);
	s.stop_at = 2;
	tap_is_int(store_inbox_scan(st, "carol", c, 0, seen_cb, &s), 2,
	    "inbox_scan stopped by the callback after two");
	seen_reset(&s);
	tap_is_int(store_inbox_scan(st, "carol", ids[5], 0, seen_cb, &s), 0,
	    "inbox_scan after the last: none");
	seen_reset(&s);
	tap_is_int(store_inbox_scan(st, "nobody", 0, 0, seen_cb, &s), 0,
	    "inbox_scan of an empty mailbox: none");

	c = 99;
	tap_is_int(store_pending_count(st, "carol", ids[1], &c), 0,
	    "pending_count");
	tap_ok(c == 4, "... four pending after the cursor (got %" PRIu64 ")", c);
	tap_is_int(store_pending_count(st, "carol", ids[5], &c), 0,
	    "pending_count after the last");
	tap_ok(c == 0, "... none");

	/* A staged (uncommitted) message is not in the inbox scan. */
	staged = add(st, "Alice", "carol", "staged", NULL, 6000);
	tap_ok(staged > ids[5], "msg_add in an open group");
	tap_ok(store_in_group(st), "a group is open");
	seen_reset(&s);
	tap_is_int(store_inbox_scan(st, "carol", ids[5], 0, seen_cb, &s), 0,
	    "inbox_scan does not see the staged message");
	tap_is_int(store_commit(st), 0, "commit");
	seen_reset(&s);
	tap_is_int(store_inbox_scan(st, "carol", ids[5], 0, seen_cb, &s), 1,
	    "after the commit it does");
	tap_ok(s.n == 1 && s.ids[0] == staged && strcmp(s.text[0], "staged") == 0,
	    "... the staged message");
	seen_reset(&s);
}

/* SYNC: the inbox and outbox of one account merged, paged with more. */
static void
test_sync(struct store *st)
{
	struct seen	 s;
	uint64_t	 ids[7], after;
	int		 more, i, n;

	memset(&s, 0, sizeof(s));
	after = store_last_id(st);
	ids[0] = add(st, "zed", "bob", "z1", NULL, 7000);
	ids[1] = add(st, "bob", "zed", "z2", NULL, 7001);
	add(st, "Alice", "bob", "not zed's", NULL, 7002);
	ids[2] = add(st, "carol", "Zed", "z3", NULL, 7003);
	ids[3] = add(st, "zed", "zed", "z4 to self", NULL, 7004);
	ids[4] = add(st, "ZED", "alice", "z5", NULL, 7005);
	add(st, "carol", "alice", "not zed's either", NULL, 7006);
	ids[5] = add(st, "alice", "zed", "z6", NULL, 7007);
	ids[6] = add(st, "zed", "carol", "z7", NULL, 7008);
	tap_is_int(store_commit(st), 0, "commit zed's seven and two others");

	more = -1;
	tap_is_int(store_sync_scan(st, "zed", after, 100, seen_cb, &s, &more),
	    7, "sync_scan: seven, a note to self once");
	tap_is_str(seen_ids(&s), ids_str(ids, 7), "... merged in id order");
	tap_is_int(more, 0, "... nothing more");
	tap_is_str(s.text[3], "z4 to self", "... the texts");
	seen_reset(&s);

	/* Pages of 3: 3 (more), 3 (more), 1. */
	for (i = 0; i < 3; i++) {
		more = -1;
		n = store_sync_scan(st, "zed", after, 3, seen_cb, &s, &more);
		tap_is_int(n, i < 2 ? 3 : 1, "sync_scan page %d: count", i + 1);
		tap_is_int(more, i < 2 ? 1 : 0, "sync_scan page %d: more", i + 1);
		if (n > 0)
			after = s.ids[s.n - 1];
	}
	tap_is_str(seen_ids(&s), ids_str(ids, 7), "the pages together are all");
	seen_reset(&s);
	tap_is_int(store_sync_scan(st, "zed", after, 3, seen_cb, &s, &more), 0,
	    "sync_scan after the last: none");
	tap_is_int(more, 0, "... nothing more");
	seen_reset(&s);
}

/* HISTORY: one conversation, newest max, oldest first, before, budget. */
static void
test_history(struct store *st)
{
	struct seen	 s;
	char		 t[32];
	uint64_t	 ids[8];
	int		 more, i;

	memset(&s, 0, sizeof(s));
	for (i = 0; i < 8; i++) {
		snprintf(t, sizeof(t), "h%d-%s", i, i == 7 ? "long long long" : "x");
		ids[i] = add(st, i % 3 ? "carol" : "zed", i % 3 ? "ZED" : "Carol",
		    t, NULL, 8000 + i);
		add(st, "zed", "bob", "other conversation", NULL, 8000 + i);
	}
	tap_is_int(store_commit(st), 0, "commit eight between carol and zed");

	/* zed and carol also had z3 and z7 in test_sync: count from here. */
	more = -1;
	tap_is_int(store_history_scan(st, "zed", "carol", 0, 3, 0, seen_cb, &s,
	    &more), 3, "history_scan max 3: three");
	tap_is_str(seen_ids(&s), ids_str(ids + 5, 3), "... the newest, oldest first");
	tap_is_int(more, 1, "... more");
	tap_is_str(s.from[0], "carol", "... from");
	tap_is_str(s.to[0], "ZED", "... to (as given)");
	tap_is_str(s.from[1], "zed", "... from");
	tap_is_str(s.to[1], "Carol", "... to (as given)");
	seen_reset(&s);

	tap_is_int(store_history_scan(st, "Carol", "ZED", ids[5], 5, 0, seen_cb,
	    &s, &more), 5, "history_scan before the 6th, from carol's side");
	tap_is_str(seen_ids(&s), ids_str(ids, 5), "... the five before it");
	seen_reset(&s);

	/* z3 and z7 of test_sync are older messages of the two. */
	tap_is_int(store_history_scan(st, "zed", "carol", ids[0] + 1, 500, 0,
	    seen_cb, &s, &more), 3, "history_scan before the 1st + 1: three");
	tap_ok(s.n == 3 && strcmp(s.text[0], "z3") == 0 &&
	    strcmp(s.text[1], "z7") == 0 && s.ids[2] == ids[0],
	    "... z3, z7 and the first of these");
	tap_is_int(more, 0, "... nothing more");
	seen_reset(&s);

	/* Budget: the newest always fits; then only what fits. */
	tap_is_int(store_history_scan(st, "zed", "carol", 0, 8, 1, seen_cb, &s,
	    &more), 1, "history_scan with a 1-byte budget: the newest only");
	tap_ok(s.n == 1 && s.ids[0] == ids[7], "... it is the newest");
	tap_is_int(more, 1, "... more");
	seen_reset(&s);
	tap_is_int(store_history_scan(st, "zed", "carol", 0, 8,
	    strlen("h7-long long long") + strlen("h6-x"), seen_cb, &s, &more),
	    2, "history_scan with a budget of two texts: two");
	seen_reset(&s);

	tap_is_int(store_history_scan(st, "zed", "nobody", 0, 50, 0, seen_cb,
	    &s, &more), 0, "history_scan with a stranger: none");
	tap_is_int(more, 0, "... nothing more");
	seen_reset(&s);
	/* zed sorts last among the mailboxes: the backward walk starts at
	 * the end of the database. */
	tap_ok(store_history_scan(st, "zed", "zed", 0, 50, 0, seen_cb, &s,
	    &more) == 1 && s.n == 1 && strcmp(s.text[0], "z4 to self") == 0,
	    "history_scan of notes to self: listed once");
	seen_reset(&s);
}

/*
 * Add n "big <id>" messages from `from` to `to`, which must get the ids
 * first .. first + n - 1; the number that did not.
 */
static unsigned int
add_run(struct store *st, const char *from, const char *to, uint64_t first,
    unsigned int n, int64_t t)
{
	char		 text[32];
	unsigned int	 i, bad = 0;

	for (i = 0; i < n; i++) {
		snprintf(text, sizeof(text), "big %" PRIu64, first + i);
		if (add(st, from, to, text, NULL, t) != first + i)
			bad++;
	}
	return (bad);
}

/*
 * The fsync thread (STORE_SYNC_THREAD): groups committed with
 * store_commit_start read back and scan before and after
 * store_commit_wait, many times over, and a close with a sync in flight
 * waits for it: the reopened store has the group.
 */
static void
test_sync_thread(const char *dir)
{
	struct store	*st;
	struct run	 r;
	char		 err[256];
	uint64_t	 first, last;
	unsigned int	 g, bad = 0, badwait = 0;

	err[0] = '\0';
	if (!tap_ok(store_open(&st, dir, STORE_SYNC_THREAD, err,
	    sizeof(err)) == 0, "store_open with the fsync thread %s", err))
		return;
	first = store_last_id(st) + 1;
	for (g = 0; g < 40; g++) {
		bad += add_run(st, "tess", "theo", first + g * 25, 25, 20000);
		if (store_commit_start(st) != 0)
			bad++;
		/* between the start and the wait the group reads back */
		memset(&r, 0, sizeof(r));
		r.next = first + g * 25;
		r.step = 1;
		if (store_inbox_scan(st, "theo", first + g * 25 - 1, 0, run_cb,
		    &r) != 25 || r.bad != 0)
			bad++;
		if (store_commit_wait(st) != 0)
			badwait++;
	}
	tap_is_int((int)bad, 0, "40 groups committed with the fsync thread "
	    "read back before their sync is waited for");
	tap_is_int((int)badwait, 0, "... and every sync succeeds");
	tap_is_int(store_commit_wait(st), 0, "a wait with no sync asked: 0");
	tap_ok(add(st, "tess", "theo", "in flight", NULL, 20001) != 0 &&
	    store_commit_start(st) == 0, "a last group, its sync in flight");
	last = store_last_id(st);
	store_close(st);
	if (!tap_ok(store_open(&st, dir, 0, err, sizeof(err)) == 0,
	    "reopen after a close with a sync in flight %s", err))
		return;
	tap_ok(store_last_id(st) == last, "... the last group is there "
	    "(%" PRIu64 ")", last);
	tap_is_int(store_verify(st, err, sizeof(err)), 1, "store_verify: %s",
	    err);
	store_close(st);
}

/*
 * The server's loop goes on while a sync is in flight: the sync wakes
 * store_sync_fd, and the next group is written meanwhile.
 */
static void
test_sync_wakeup(const char *dir)
{
	struct store	*st;
	struct pollfd	 pfd;
	struct run	 r;
	char		 err[256];
	uint64_t	 first;
	unsigned int	 g, bad = 0, woke = 0;

	err[0] = '\0';
	if (!tap_ok(store_open(&st, dir, STORE_SYNC_THREAD, err,
	    sizeof(err)) == 0, "store_open with the fsync thread %s", err))
		return;
	tap_ok(store_sync_fd(st) != -1 && !store_sync_pending(st),
	    "a wakeup descriptor, and no sync pending after the open");
	first = store_last_id(st) + 1;
	for (g = 0; g < 20; g++) {
		store_sync_drain(st);		/* wakeups of earlier waits */
		bad += add_run(st, "ula", "ugo", first + g * 20, 10, 30000);
		if (store_commit_start(st) != 0 || !store_sync_pending(st))
			bad++;
		/* the next group goes into the log while this one syncs */
		bad += add_run(st, "ula", "ugo", first + g * 20 + 10, 10,
		    30000);
		pfd.fd = store_sync_fd(st);
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 30000) == 1 && store_sync_ready(st))
			woke++;
		if (store_commit_wait(st) != 0 || store_sync_pending(st))
			bad++;
		if (store_commit(st) != 0)
			bad++;
	}
	tap_is_int((int)woke, 20, "every sync wakes the descriptor, and is "
	    "then ready to be waited for");
	tap_is_int((int)bad, 0, "40 groups, each second one written while "
	    "the one before it synced");
	store_close(st);
	if (!tap_ok(store_open(&st, dir, 0, err, sizeof(err)) == 0,
	    "reopen %s", err))
		return;
	memset(&r, 0, sizeof(r));
	r.next = first;
	r.step = 1;
	tap_ok(store_inbox_scan(st, "ugo", first - 1, 0, run_cb, &r) == 400 &&
	    r.bad == 0, "... and all 400 messages are there, in order");
	store_close(st);
}

int
main(void)
{
	struct store		*st;
	struct store_msg	 m;
	struct store_user	 u;
	struct seen		 s;
	char			 tmpl[] = "/tmp/test_store.XXXXXX", err[256];
	char			*dir;
	uint64_t		 first, last, c, id;
	int			 more;

	test_keys();

	if ((dir = mkdtemp(tmpl)) == NULL) {
		tap_ok(0, "mkdtemp");
		return (tap_done());
	}
	err[0] = '\0';
	if (!tap_ok(store_open(&st, dir, 0, err, sizeof(err)) == 0,
	    "store_open on an empty directory %s", err)) {
		rmdir_flat(dir);
		return (tap_done());
	}
	tap_ok(store_last_id(st) == 0, "an empty store: last id 0");
	test_users(st);
	test_msgs(st, &first);
	test_inbox(st);
	test_sync(st);
	test_history(st);
	test_big_group(st);
	test_mbox_layouts(st);
	tap_is_int(store_verify(st, err, sizeof(err)), 1, "store_verify: %s",
	    err);
	last = store_last_id(st);
	store_close(st);

	/* Reopen: everything is still there, ids go on. */
	if (!tap_ok(store_open(&st, dir, STORE_NOSYNC, err, sizeof(err)) == 0,
	    "store_open again %s", err)) {
		rmdir_flat(dir);
		return (tap_done());
	}
	tap_ok(store_last_id(st) == last, "reopen: last id %" PRIu64 " kept",
	    last);
	tap_is_int(store_user_get(st, "alice", &u), 1, "reopen: alice found");
	tap_is_str(u.name, "Alice", "reopen: display name kept");
	tap_is_int(store_msg_get(st, first, &m), 1, "reopen: first message");
	tap_ok(m.len == strlen(utext) && memcmp(m.text, utext, m.len) == 0,
	    "reopen: its text");
	tap_is_int(store_ack_get(st, "carol", &c), 1, "reopen: carol's cursor");
	id = 0;
	tap_is_int(store_msg_add(st, "alice", "bob", 9000, "tok", 3, "t1", &id),
	    0, "reopen: token t1 still dedupes");
	tap_ok(id > first && store_msg_get(st, id, &m) == 1 &&
	    m.len == 4 && memcmp(m.text, "late", 4) == 0,
	    "... to its latest message (\"late\", stored after the window)");
	tap_ok(add(st, "alice", "bob", "after reopen", NULL, 9001) == last + 1,
	    "reopen: the next id follows the last");
	tap_is_int(store_commit(st), 0, "commit");
	memset(&s, 0, sizeof(s));
	tap_is_int(store_sync_scan(st, "zed", 0, 100, seen_cb, &s, &more), 23,
	    "reopen: zed's 23 messages are all there");
	seen_reset(&s);
	tap_is_int(store_verify(st, err, sizeof(err)), 1, "store_verify: %s",
	    err);
	store_close(st);

	test_sync_thread(dir);
	test_sync_wakeup(dir);

	/* A directory of mychat 0.1 (one record per message) is refused. */
	{
		char	path[1100];
		FILE	*fp;

		snprintf(path, sizeof(path), "%s/msgs.db", dir);
		if ((fp = fopen(path, "w")) != NULL)
			fclose(fp);
		err[0] = '\0';
		tap_ok(store_open(&st, dir, 0, err, sizeof(err)) == -1 &&
		    strstr(err, "mychat 0.1") != NULL,
		    "a 0.1 message log is refused: %s", err);
	}
	rmdir_flat(dir);
	return (tap_done());
}

/*
 * store-log.c: the message log and the mailboxes.
 *
 *   messages.db  be64(first)           -> be32(n), then n records with the
 *                                         ids first .. first + n - 1
 *                record: be32(len) be64(time) u8 n from u8 n to text
 *                (len counts the bytes after itself)
 *   inboxes.db   lower(to) 0 be64(first)   -> entries, ids ascending,
 *   outboxes.db  lower(from) 0 be64(first)    packed (mbox_pack): 0x01,
 *                the record's peers, then per entry the id's distance
 *                from the one before and its peer's index; or plain, as
 *                0.2.0 wrote them: be64(id) u8 n lower(peer) per entry
 *                (its first byte is 0: ids stay below 2^56)
 *
 * The messages of one commit group have consecutive ids. They are staged
 * in memory while the group is open and written at its commit: one put per
 * segment of up to SEG_MAX_MSGS messages, and one put per mailbox touched
 * by the group, instead of three puts per message (a message insert, its
 * inbox entry and its outbox entry). That is what the relay benchmark in
 * doc/performance.md measured as the store's cost.
 *
 * Staged messages are visible to store_msg_get (an ACK of a pipelined note
 * to self); the scans that could see them write the stage into the open
 * transaction first (store_log_flush), so a read never misses a write of
 * its own group. Pumps read only committed ids.
 *
 * The last committed group stays in memory (st->recent): ACKs name the
 * messages just pushed, and find them there without a read.
 */
#include "config.h"

#include <db.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "proto.h"
#include "store-int.h"
#include "xmalloc.h"

#define MBOX_KEY_MAX	(PROTO_NAME_MAX + 1 + 8)
#define TOKEN_KEY_MAX	(PROTO_NAME_MAX + 1 + PROTO_TOKEN_MAX)
#define MSG_HDR_MAX	(8 + 1 + PROTO_NAME_MAX + 1 + PROTO_NAME_MAX)
#define HISTORY_MAX	1000
#define SEG_MAX_MSGS	512		/* messages per messages.db record */
/*
 * A segment is stored on overflow pages, and Berkeley DB fills each with
 * pagesize - 26 bytes (26: the page header, without checksums or
 * encryption). Segments are cut to fill two pages exactly: cut at 32 KiB
 * plus a message, as they were, each took a third page for its last
 * hundred bytes, a third more page writes than the data needed.
 */
#define OVFL_PAGE_BYTES	(STORE_PAGESIZE - 26)
#define SEG_MAX_BYTES	(2 * OVFL_PAGE_BYTES)	/* unless one message is larger */
#define MBOX_MAX_ENTS	256		/* entries per mailbox record */
#define MBOX_ENT_MAX	(8 + 1 + PROTO_NAME_MAX)
#define MBOX_PACKED	0x01		/* a packed record's first byte */
#define MBOX_MAX_PEERS	64		/* distinct peers per packed record */
#define MBOX_PACKED_MAX	(2 + MBOX_MAX_PEERS * (1 + PROTO_NAME_MAX) + \
			    MBOX_MAX_ENTS * 11)

/* One side of a mailbox walk: a cursor over lower(name) 0 be64(first). */
struct mbox_walk {
	DBC		*c;
	unsigned char	 prefix[PROTO_NAME_MAX + 1];
	size_t		 plen;
	unsigned char	 key[MBOX_KEY_MAX];
	DBT		 k, d;
	unsigned char	*rec;		/* the current record, copied */
	size_t		 reclen, recalloc;
	size_t		*eoff;		/* offset of each entry in rec */
	unsigned int	 ne, ealloc;
	unsigned int	 i;		/* the current entry */
	int		 valid;
	uint64_t	 id;
	char		 peer[PROTO_NAME_MAX + 1];
};

static void
put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t
get_be32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3]);
}

/* The key of lname's (lower case, n bytes) record from id; its size. */
static size_t
mbox_key(unsigned char *key, const char *lname, size_t n, uint64_t id)
{
	memcpy(key, lname, n);
	key[n] = '\0';
	store_put_be64(key + n + 1, id);
	return (n + 9);
}

/* Encode an inbox/outbox key: lower(name) NUL be64(id). Returns its size. */
size_t
store_key_mbox(unsigned char *key, const char *name, uint64_t id)
{
	char	lname[PROTO_NAME_MAX + 1];

	proto_lower(lname, name, sizeof(lname));
	return (mbox_key(key, lname, strlen(lname), id));
}

/* The id at the end of a mailbox key. */
uint64_t
store_key_id(const unsigned char *key, size_t len)
{
	if (len < 8)
		return (0);
	return (store_get_be64(key + len - 8));
}

/* Segments: runs of records with consecutive ids. */

static void
seg_reset(struct seg *s)
{
	s->first = 0;
	s->n = 0;
	s->len = 0;
}

static void
seg_free(struct seg *s)
{
	free(s->data);
	free(s->off);
	memset(s, 0, sizeof(*s));
}

static void
seg_swap(struct seg *a, struct seg *b)
{
	struct seg	t = *a;

	*a = *b;
	*b = t;
}

/* Make room for len more bytes and one more record. */
static void
seg_grow(struct seg *s, size_t len)
{
	if (s->len + len > s->alloc) {
		while (s->len + len > s->alloc)
			s->alloc = s->alloc == 0 ? 65536 : s->alloc * 2;
		s->data = xreallocarray(s->data, 1, s->alloc);
	}
	if (s->n == s->offalloc) {
		s->offalloc = s->offalloc == 0 ? 256 : s->offalloc * 2;
		s->off = xreallocarray(s->off, s->offalloc, sizeof(*s->off));
	}
}

/* Decode one record (after its length) into m; text points into p. */
static int
msg_decode(uint64_t id, const unsigned char *p, size_t len,
    struct store_msg *m)
{
	size_t	fl, tl;

	if (len < 10)
		return (-1);
	m->id = id;
	m->time_ms = (int64_t)store_get_be64(p);
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

/* Message id from s: 1 found, 0 not in s, -1 a bad record. */
static int
seg_get(const struct seg *s, uint64_t id, struct store_msg *m)
{
	const unsigned char	*p;

	if (s->n == 0 || id < s->first || id - s->first >= s->n)
		return (0);
	p = s->data + s->off[id - s->first];
	if (msg_decode(id, p + 4, get_be32(p), m) == -1)
		return (-1);
	return (1);
}

/* Load a messages.db record (its data after be32(n)) into s. */
static int
seg_load(struct seg *s, uint64_t first, const unsigned char *p, size_t len)
{
	size_t		 pos = 4, rl;
	uint32_t	 n, i;

	seg_reset(s);
	if (len < 4 || (n = get_be32(p)) == 0 || n > SEG_MAX_MSGS)
		return (-1);
	seg_grow(s, len);
	memcpy(s->data, p + 4, len - 4);
	s->len = len - 4;
	for (i = 0; i < n; i++) {
		if (pos + 4 > len || (rl = get_be32(p + pos)) > len - pos - 4)
			goto bad;
		seg_grow(s, 0);
		s->off[s->n++] = pos - 4;
		pos += 4 + rl;
	}
	if (pos != len)
		goto bad;
	s->first = first;
	return (0);
bad:
	seg_reset(s);
	return (-1);
}

/* The hash slot of lname: where it is, or the empty one it would take. */
static uint32_t *
names_slot(struct stage_names *nt, const char *lname)
{
	size_t		 i = proto_fnv1a(PROTO_FNV_BASIS, lname) &
		    (nt->tabsize - 1);
	uint32_t	*slot;

	for (;; i = (i + 1) & (nt->tabsize - 1)) {
		slot = &nt->tab[i];
		if (*slot == 0 || strcmp(nt->v[*slot - 1].lname, lname) == 0)
			return (slot);
	}
}

/* Double the name hash (kept at most half full). */
static void
names_grow_tab(struct stage_names *nt)
{
	size_t	i;

	free(nt->tab);
	nt->tabsize = nt->tabsize == 0 ? 256 : nt->tabsize * 2;
	nt->tab = xcalloc(nt->tabsize, sizeof(*nt->tab));
	for (i = 0; i < nt->n; i++)
		*names_slot(nt, nt->v[i].lname) = (uint32_t)i + 1;
}

/* The index of lname (lower case, checked) in the group's names. */
static uint32_t
names_intern(struct stage_names *nt, const char *lname)
{
	struct stage_name	*sn;
	uint32_t		*slot;

	if (2 * (nt->n + 1) > nt->tabsize)
		names_grow_tab(nt);
	slot = names_slot(nt, lname);
	if (*slot != 0)
		return (*slot - 1);
	if (nt->n == nt->alloc) {
		nt->alloc = nt->alloc == 0 ? 128 : nt->alloc * 2;
		nt->v = xreallocarray(nt->v, nt->alloc, sizeof(*nt->v));
	}
	sn = &nt->v[nt->n];
	sn->len = (unsigned char)proto_copy(sn->lname, lname,
	    sizeof(sn->lname));
	sn->own[0] = sn->own[1] = 0;
	*slot = (uint32_t)++nt->n;
	return (*slot - 1);
}

static void
names_reset(struct stage_names *nt)
{
	nt->n = 0;
	if (nt->tab != NULL)
		memset(nt->tab, 0, nt->tabsize * sizeof(*nt->tab));
}

static void
names_free(struct stage_names *nt)
{
	free(nt->v);
	free(nt->tab);
	memset(nt, 0, sizeof(*nt));
}

static void
mbox_stage_reset(struct mbox_stage *ms)
{
	ms->n = 0;
	ms->nown = 0;
}

static void
mbox_stage_free(struct mbox_stage *ms)
{
	free(ms->ent);
	free(ms->own);
	ms->ent = NULL;
	ms->own = NULL;
	ms->n = ms->alloc = ms->nown = ms->ownalloc = 0;
}

/* Stage a mailbox entry (names by index) at the end of its owner's list. */
static void
mbox_stage_add(struct mbox_stage *ms, struct stage_names *nt, uint64_t id,
    uint32_t owner, uint32_t peer)
{
	struct mbox_ent	*e;
	uint32_t	*own = &nt->v[owner].own[ms->side], ei;

	if (ms->n == ms->alloc) {
		ms->alloc = ms->alloc == 0 ? 256 : ms->alloc * 2;
		ms->ent = xreallocarray(ms->ent, ms->alloc, sizeof(*ms->ent));
	}
	ei = (uint32_t)ms->n++;
	e = &ms->ent[ei];
	e->id = id;
	e->next = UINT32_MAX;
	e->peer = peer;
	if (*own != 0) {
		ms->ent[ms->own[*own - 1].tail].next = ei;
		ms->own[*own - 1].tail = ei;
		return;
	}
	if (ms->nown == ms->ownalloc) {
		ms->ownalloc = ms->ownalloc == 0 ? 64 : ms->ownalloc * 2;
		ms->own = xreallocarray(ms->own, ms->ownalloc,
		    sizeof(*ms->own));
	}
	ms->own[ms->nown].head = ms->own[ms->nown].tail = ei;
	ms->own[ms->nown].name = owner;
	*own = (uint32_t)++ms->nown;
}

/* Owners in name order, for the qsort_r of mbox_stage_write. */
struct owner_order {
	const struct mbox_stage		*ms;
	const struct stage_names	*nt;
};

static int
mbox_owner_cmp(const void *a, const void *b, void *arg)
{
	const struct owner_order	*oo = arg;
	uint32_t			 x = *(const uint32_t *)a;
	uint32_t			 y = *(const uint32_t *)b;

	return (strcmp(oo->nt->v[oo->ms->own[x].name].lname,
	    oo->nt->v[oo->ms->own[y].name].lname));
}

/* Make room for len bytes in the write buffer. */
static unsigned char *
rec_room(struct store *st, size_t len)
{
	if (len > st->recalloc) {
		st->rec = xreallocarray(st->rec, 1, len);
		st->recalloc = len;
	}
	return (st->rec);
}

/* Append v as unsigned LEB128 at p; the bytes written. */
static size_t
put_varint(unsigned char *p, uint64_t v)
{
	size_t	n = 0;

	while (v >= 0x80) {
		p[n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (unsigned char)v;
	return (n);
}

/*
 * Pack entries of one owner, from *e along its list, into one record at p
 * (MBOX_PACKED_MAX bytes): at most MBOX_MAX_ENTS entries and
 * MBOX_MAX_PEERS distinct peers. *e is left at the first entry not taken.
 *
 *   u8 MBOX_PACKED, u8 npeers, npeers x (u8 n, peer),
 *   then per entry: LEB128(id - previous id; 0 for the first, whose id
 *   is the key's), u8 index of its peer
 *
 * An entry of the plain layout (be64 id, u8 n, peer) took 9 bytes and the
 * peer's name; one here takes 2 or 3, the names once per record. In the
 * relay benchmark the mailboxes were half the bytes the store wrote per
 * message after the message itself (doc/performance.md).
 */
static size_t
mbox_pack(const struct mbox_stage *ms, const struct stage_names *nt,
    uint32_t *e, unsigned char *p)
{
	unsigned char	 ents[MBOX_MAX_ENTS * 11];
	uint32_t	 peers[MBOX_MAX_PEERS];
	size_t		 len = 2, elen = 0, pl;
	uint64_t	 prev;
	unsigned int	 npeers = 0, nent, j;

	prev = ms->ent[*e].id;
	for (nent = 0; *e != UINT32_MAX && nent < MBOX_MAX_ENTS; nent++) {
		const struct mbox_ent *me = &ms->ent[*e];

		for (j = 0; j < npeers && peers[j] != me->peer; j++)
			;
		if (j == npeers) {
			if (npeers == MBOX_MAX_PEERS)
				break;		/* the next record goes on */
			peers[npeers++] = me->peer;
			pl = nt->v[me->peer].len;
			p[len] = (unsigned char)pl;
			memcpy(p + len + 1, nt->v[me->peer].lname, pl);
			len += 1 + pl;
		}
		elen += put_varint(ents + elen, me->id - prev);
		ents[elen++] = (unsigned char)j;
		prev = me->id;
		*e = me->next;
	}
	p[0] = MBOX_PACKED;
	p[1] = (unsigned char)npeers;
	memcpy(p + len, ents, elen);
	return (len + elen);
}

/*
 * Write the staged entries of one mailbox database: one record per owner
 * (more past MBOX_MAX_ENTS), owners in key order, so that the puts walk
 * the B-tree left to right.
 */
static int
mbox_stage_write(struct store *st, enum store_db which, struct mbox_stage *ms)
{
	struct owner_order	 oo = { ms, &st->names };
	const struct stage_name	*on;
	unsigned char		 key[MBOX_KEY_MAX], *p;
	uint32_t		*order, e, first;
	DBT			 k, d;
	size_t			 i, len;
	int			 rv = 0;

	if (ms->nown == 0)
		return (0);
	order = xreallocarray(NULL, ms->nown, sizeof(*order));
	for (i = 0; i < ms->nown; i++)
		order[i] = (uint32_t)i;
	qsort_r(order, ms->nown, sizeof(*order), mbox_owner_cmp, &oo);
	memset(&k, 0, sizeof(k));
	memset(&d, 0, sizeof(d));
	for (i = 0; i < ms->nown && rv == 0; i++) {
		e = ms->own[order[i]].head;
		on = &st->names.v[ms->own[order[i]].name];
		while (e != UINT32_MAX && rv == 0) {
			p = rec_room(st, MBOX_PACKED_MAX);
			first = e;
			len = mbox_pack(ms, &st->names, &e, p);
			k.data = key;
			k.size = (u_int32_t)mbox_key(key, on->lname, on->len,
			    ms->ent[first].id);
			d.data = p;
			d.size = (u_int32_t)len;
			if (store_put(st, which, &k, &d, 0) != 1)
				rv = -1;
		}
	}
	free(order);
	if (rv == 0)
		mbox_stage_reset(ms);
	return (rv);
}

/*
 * Write what the open group staged into its transaction: the messages in
 * segments, then one record per mailbox. Afterwards the written messages
 * are st->recent (dropped again if the group fails).
 */
int
store_log_flush(struct store *st)
{
	struct seg	*s = &st->stage;
	unsigned char	 idkey[8], *p;
	DBT		 k, d;
	unsigned int	 i, j;
	size_t		 from, to;

	if (s->n == 0)
		return (0);
	if (st->failed) {
		store_log_aborted(st);
		return (-1);
	}
	memset(&k, 0, sizeof(k));
	memset(&d, 0, sizeof(d));
	for (i = 0; i < s->n; i = j) {
		/* as many as fit in SEG_MAX_BYTES with the be32(n) header */
		from = s->off[i];
		for (j = i + 1; j < s->n && j - i < SEG_MAX_MSGS &&
		    4 + (j + 1 < s->n ? s->off[j + 1] : s->len) - from <=
		    SEG_MAX_BYTES; j++)
			;
		to = j < s->n ? s->off[j] : s->len;
		p = rec_room(st, 4 + to - from);
		put_be32(p, j - i);
		memcpy(p + 4, s->data + from, to - from);
		store_put_be64(idkey, s->first + i);
		k.data = idkey;
		k.size = 8;
		d.data = p;
		d.size = (u_int32_t)(4 + to - from);
		if (store_put(st, SDB_MSGS, &k, &d, 0) != 1)
			goto fail;
	}
	if (mbox_stage_write(st, SDB_INBOX, &st->inbox) == -1 ||
	    mbox_stage_write(st, SDB_OUTBOX, &st->outbox) == -1)
		goto fail;
	names_reset(&st->names);
	seg_swap(&st->recent, s);
	seg_reset(s);
	return (0);
fail:
	store_log_aborted(st);
	return (-1);
}

/* The group committed: its messages are now durable. */
void
store_log_committed(struct store *st)
{
	(void)st;	/* st->recent already holds them */
}

/* The group failed: forget what it staged or wrote. */
void
store_log_aborted(struct store *st)
{
	seg_reset(&st->stage);
	seg_reset(&st->recent);
	seg_reset(&st->readseg);
	mbox_stage_reset(&st->inbox);
	mbox_stage_reset(&st->outbox);
	names_reset(&st->names);
}

/* The next id follows the last segment of the log. */
int
store_log_open(struct store *st, char *err, size_t errlen)
{
	DBC	*c;
	DBT	 k, d;
	int	 ret;

	st->inbox.side = 0;
	st->outbox.side = 1;
	if ((ret = st->db[SDB_MSGS]->cursor(st->db[SDB_MSGS], NULL, &c,
	    0)) != 0) {
		snprintf(err, errlen, "cursor: %s", db_strerror(ret));
		return (-1);
	}
	memset(&k, 0, sizeof(k));
	memset(&d, 0, sizeof(d));
	d.flags = DB_DBT_PARTIAL;
	d.dlen = 4;
	ret = c->get(c, &k, &d, DB_LAST);
	if (ret == 0 && k.size == 8 && d.size == 4 &&
	    get_be32(d.data) > 0 && get_be32(d.data) <= SEG_MAX_MSGS)
		st->last_id = st->committed_id = store_get_be64(k.data) +
		    get_be32(d.data) - 1;
	else if (ret == 0) {
		snprintf(err, errlen, "%s: bad last record",
		    store_db_names[SDB_MSGS]);
		c->close(c);
		return (-1);
	} else if (ret != DB_NOTFOUND) {
		snprintf(err, errlen, "%s: %s", store_db_names[SDB_MSGS],
		    db_strerror(ret));
		c->close(c);
		return (-1);
	}
	c->close(c);
	return (0);
}

void
store_log_free(struct store *st)
{
	seg_free(&st->stage);
	seg_free(&st->recent);
	seg_free(&st->readseg);
	mbox_stage_free(&st->inbox);
	mbox_stage_free(&st->outbox);
	names_free(&st->names);
	free(st->rec);
	st->rec = NULL;
}

/*
 * Append a message to the group's stage, with its inbox and outbox
 * entries; its retry token is written at once. 1: stored with a new *id;
 * 0: the token was already used by this sender within the window, *id is
 * the original; -1: error (the group will fail).
 */
int
store_msg_add(struct store *st, const char *from, const char *to,
    int64_t time_ms, const char *text, size_t len, const char *token,
    uint64_t *id)
{
	char	lfrom[PROTO_NAME_MAX + 1], lto[PROTO_NAME_MAX + 1];

	proto_lower(lfrom, from, sizeof(lfrom));
	proto_lower(lto, to, sizeof(lto));
	return (store_msg_add_l(st, from, lfrom, to, lto, time_ms, text, len,
	    token, id));
}

/* store_msg_add for a caller that has the names in lower case too. */
int
store_msg_add_l(struct store *st, const char *from, const char *lfrom,
    const char *to, const char *lto, int64_t time_ms, const char *text,
    size_t len, const char *token, uint64_t *id)
{
	struct seg	*s = &st->stage;
	unsigned char	 tkey[TOKEN_KEY_MAX], tval[16], *p;
	size_t		 fl = strlen(from), tl = strlen(to), rl, n;
	DBT		 k, d;
	uint64_t	 nid;
	uint32_t	 ifrom, ito;
	int		 ret;

	if (fl > PROTO_NAME_MAX || tl > PROTO_NAME_MAX || len > UINT32_MAX / 2)
		return (-1);
	nid = st->last_id + 1;

	if (token != NULL) {
		n = strlen(lfrom);
		memcpy(tkey, lfrom, n);
		tkey[n++] = '\0';
		memcpy(tkey + n, token, strlen(token));
		n += strlen(token);
		memset(&k, 0, sizeof(k));
		memset(&d, 0, sizeof(d));
		k.data = tkey;
		k.size = (u_int32_t)n;
		if ((ret = store_get(st, SDB_TOKENS, &k, &d)) == -1)
			return (store_write_failed(st, "tokens.db", EIO));
		if (ret == 1 && d.size == 16 &&
		    time_ms - (int64_t)store_get_be64((unsigned char *)d.data +
		    8) < STORE_TOKEN_WINDOW_MS) {
			*id = store_get_be64(d.data);
			return (0);
		}
		store_put_be64(tval, nid);
		store_put_be64(tval + 8, (uint64_t)time_ms);
		d.flags = 0;
		d.data = tval;
		d.size = sizeof(tval);
		if (store_put(st, SDB_TOKENS, &k, &d, 0) != 1)
			return (-1);
	}

	/* record: be32(len) be64(time) u8 n from u8 n to text */
	rl = 8 + 1 + fl + 1 + tl + len;
	seg_grow(s, 4 + rl);
	if (s->n == 0)
		s->first = nid;
	p = s->data + s->len;
	put_be32(p, (uint32_t)rl);
	store_put_be64(p + 4, (uint64_t)time_ms);
	p[12] = (unsigned char)fl;
	memcpy(p + 13, from, fl);
	p[13 + fl] = (unsigned char)tl;
	memcpy(p + 14 + fl, to, tl);
	memcpy(p + 14 + fl + tl, text, len);
	s->off[s->n++] = s->len;
	s->len += 4 + rl;
	ifrom = names_intern(&st->names, lfrom);
	ito = names_intern(&st->names, lto);
	mbox_stage_add(&st->inbox, &st->names, nid, ito, ifrom);
	mbox_stage_add(&st->outbox, &st->names, nid, ifrom, ito);
	st->last_id = nid;
	*id = nid;
	return (1);
}

/* Read one message by id; its text is valid until the next store call. */
int
store_msg_get(struct store *st, uint64_t id, struct store_msg *m)
{
	unsigned char	idkey[8];
	DBC		*c;
	DBT		k, d;
	uint64_t	first;
	int		ret;

	if ((ret = seg_get(&st->stage, id, m)) != 0 ||
	    (ret = seg_get(&st->recent, id, m)) != 0 ||
	    (ret = seg_get(&st->readseg, id, m)) != 0)
		goto out;

	/* the segment holding id is the last one whose first id <= id */
	if ((ret = st->db[SDB_MSGS]->cursor(st->db[SDB_MSGS], st->txn, &c,
	    0)) != 0) {
		log_warnx("store: cursor: %s", db_strerror(ret));
		return (-1);
	}
	store_put_be64(idkey, id);
	memset(&k, 0, sizeof(k));
	memset(&d, 0, sizeof(d));
	k.data = idkey;
	k.size = 8;
	ret = c->get(c, &k, &d, DB_SET_RANGE);
	if (ret == 0 && (k.size != 8 || store_get_be64(k.data) != id))
		ret = c->get(c, &k, &d, DB_PREV);
	else if (ret == DB_NOTFOUND)
		ret = c->get(c, &k, &d, DB_LAST);
	if (ret == 0) {
		first = k.size == 8 ? store_get_be64(k.data) : UINT64_MAX;
		if (first > id)
			ret = DB_NOTFOUND;
		else if (seg_load(&st->readseg, first, d.data, d.size) == -1)
			ret = EINVAL;
	}
	c->close(c);
	if (ret == DB_NOTFOUND)
		return (0);
	if (ret != 0) {
		log_warnx("store: message %llu: %s", (unsigned long long)id,
		    ret == EINVAL ? "bad segment" : db_strerror(ret));
		if (ret == DB_RUNRECOVERY)
			st->panic = 1;
		return (-1);
	}
	ret = seg_get(&st->readseg, id, m);	/* 0: a hole, ids skipped */
out:
	if (ret == -1)
		log_warnx("store: message %llu: bad record",
		    (unsigned long long)id);
	return (ret);
}

/* Mailbox walks, entry by entry over records of many entries. */

/* Set the walk on entry i of its record. */
static void
walk_entry(struct mbox_walk *w, unsigned int i)
{
	const unsigned char	*e = w->rec + w->eoff[i];

	w->i = i;
	w->valid = 1;
	w->id = store_get_be64(e);
	memcpy(w->peer, e + 9, e[8]);
	w->peer[e[8]] = '\0';
}

/* Read an unsigned LEB128 number at *pos; -1 if it runs past len. */
static int
get_varint(const unsigned char *p, size_t len, size_t *pos, uint64_t *v)
{
	unsigned int	shift = 0;

	*v = 0;
	while (*pos < len && shift < 64) {
		*v |= (uint64_t)(p[*pos] & 0x7f) << shift;
		if ((p[(*pos)++] & 0x80) == 0)
			return (0);
		shift += 7;
	}
	return (-1);
}

/*
 * Expand a packed record (see mbox_pack) into the walk's buffer in the
 * plain layout, be64(id) u8 n peer per entry, and index it: the rest of
 * the walk reads one layout. first is the id in the record's key.
 */
static int
walk_load_packed(struct mbox_walk *w, uint64_t first, const unsigned char *p,
    size_t len)
{
	const unsigned char	*peer[MBOX_MAX_PEERS];
	unsigned char		 peerlen[MBOX_MAX_PEERS];
	size_t			 pos = 2, out = 0;
	uint64_t		 id = first, delta;
	unsigned int		 npeers, i;

	if (len < 2 || (npeers = p[1]) == 0 || npeers > MBOX_MAX_PEERS)
		return (-1);
	for (i = 0; i < npeers; i++) {
		if (pos >= len || p[pos] == 0 || p[pos] > PROTO_NAME_MAX ||
		    pos + 1 + p[pos] > len)
			return (-1);
		peerlen[i] = p[pos];
		peer[i] = p + pos + 1;
		pos += 1 + p[pos];
	}
	/* each entry takes at least 2 bytes, and expands to at most 9 + 32 */
	if ((len - pos) / 2 * MBOX_ENT_MAX > w->recalloc) {
		w->recalloc = (len - pos) / 2 * MBOX_ENT_MAX;
		w->rec = xreallocarray(w->rec, 1, w->recalloc);
	}
	while (pos < len) {
		if (get_varint(p, len, &pos, &delta) == -1 || pos >= len ||
		    p[pos] >= npeers || (w->ne > 0 && delta == 0) ||
		    (w->ne == 0 && delta != 0) || delta > UINT64_MAX - id)
			return (-1);
		id += delta;
		i = p[pos++];
		if (w->ne == w->ealloc) {
			w->ealloc = w->ealloc == 0 ? 64 : w->ealloc * 2;
			w->eoff = xreallocarray(w->eoff, w->ealloc,
			    sizeof(*w->eoff));
		}
		w->eoff[w->ne++] = out;
		store_put_be64(w->rec + out, id);
		w->rec[out + 8] = peerlen[i];
		memcpy(w->rec + out + 9, peer[i], peerlen[i]);
		out += 9 + peerlen[i];
	}
	w->reclen = out;
	return (w->ne == 0 ? -1 : 0);
}

/* Take the record the cursor returned (ret): copy and index it. */
static int
walk_load(struct mbox_walk *w, int ret)
{
	const unsigned char	*p;
	size_t			 pos = 0, len;

	w->valid = 0;
	w->ne = 0;
	if (ret == DB_NOTFOUND)
		return (0);
	if (ret != 0)
		return (-1);
	if (w->k.size != w->plen + 8 || memcmp(w->k.data, w->prefix,
	    w->plen) != 0)
		return (0);	/* another owner's box */
	p = w->d.data;
	len = w->d.size;
	if (len > 0 && p[0] == MBOX_PACKED)
		return (walk_load_packed(w, store_get_be64((unsigned char *)
		    w->k.data + w->plen), p, len));
	if (len > w->recalloc) {
		w->rec = xreallocarray(w->rec, 1, len);
		w->recalloc = len;
	}
	memcpy(w->rec, p, len);
	w->reclen = len;
	while (pos < len) {
		if (pos + 9 > len || w->rec[pos + 8] > PROTO_NAME_MAX ||
		    pos + 9 + w->rec[pos + 8] > len)
			return (-1);
		if (w->ne == w->ealloc) {
			w->ealloc = w->ealloc == 0 ? 64 : w->ealloc * 2;
			w->eoff = xreallocarray(w->eoff, w->ealloc,
			    sizeof(*w->eoff));
		}
		w->eoff[w->ne++] = pos;
		pos += 9 + w->rec[pos + 8];
	}
	return (w->ne == 0 ? -1 : 0);
}

/* Position the cursor with op at (name, id); load what it finds. */
static int
walk_seek(struct mbox_walk *w, uint64_t id, u_int32_t op)
{
	int	ret;

	/* the key buffer holds whatever key the cursor returned last */
	memcpy(w->key, w->prefix, w->plen);
	store_put_be64(w->key + w->plen, id);
	w->k.size = (u_int32_t)(w->plen + 8);
	ret = w->c->get(w->c, &w->k, &w->d, op);
	return (walk_load(w, ret));
}

static int
walk_init(struct store *st, enum store_db which, struct mbox_walk *w,
    const char *name)
{
	memset(w, 0, sizeof(*w));
	if (st->db[which]->cursor(st->db[which], st->txn, &w->c, 0) != 0) {
		w->c = NULL;
		return (-1);
	}
	w->plen = store_key_mbox(w->key, name, 0) - 8;
	memcpy(w->prefix, w->key, w->plen);
	w->k.data = w->key;
	w->k.ulen = sizeof(w->key);
	w->k.flags = DB_DBT_USERMEM;
	return (0);
}

/* Load the last record of the walk's owner whose key is < (name, id). */
static int
walk_load_before(struct mbox_walk *w, uint64_t id)
{
	int	ret;

	memcpy(w->key, w->prefix, w->plen);
	store_put_be64(w->key + w->plen, id);
	w->k.size = (u_int32_t)(w->plen + 8);
	ret = w->c->get(w->c, &w->k, &w->d, DB_SET_RANGE);
	if (ret != 0 && ret != DB_NOTFOUND)
		return (-1);
	/* past the end, the cursor is unpositioned: take the last record */
	w->k.size = sizeof(w->key);
	return (walk_load(w, w->c->get(w->c, &w->k, &w->d,
	    ret == DB_NOTFOUND ? DB_LAST : DB_PREV)));
}

/* Position w at the first entry of name with id >= from. */
static int
walk_open(struct store *st, enum store_db which, struct mbox_walk *w,
    const char *name, uint64_t from)
{
	unsigned int	i;

	/* the record before the first one >= from may hold ids >= from */
	if (walk_init(st, which, w, name) == -1 ||
	    walk_load_before(w, from) == -1)
		return (-1);
	for (i = 0; i < w->ne; i++) {
		if (store_get_be64(w->rec + w->eoff[i]) >= from) {
			walk_entry(w, i);
			return (0);
		}
	}
	if (walk_seek(w, from, DB_SET_RANGE) == -1)
		return (-1);
	if (w->ne > 0)
		walk_entry(w, 0);
	return (0);
}

/* Position w at the last entry of name with id < before. */
static int
walk_open_back(struct store *st, enum store_db which, struct mbox_walk *w,
    const char *name, uint64_t before)
{
	unsigned int	i;

	/* the record before (name, before) holds the newest candidate */
	if (walk_init(st, which, w, name) == -1 ||
	    walk_load_before(w, before) == -1)
		return (-1);
	for (i = w->ne; i > 0; i--) {
		if (store_get_be64(w->rec + w->eoff[i - 1]) < before) {
			walk_entry(w, i - 1);
			return (0);
		}
	}
	w->valid = 0;
	return (0);
}

/* The next (DB_NEXT) or previous (DB_PREV) entry. */
static int
walk_step(struct mbox_walk *w, u_int32_t dir)
{
	if (dir == DB_NEXT && w->i + 1 < w->ne) {
		walk_entry(w, w->i + 1);
		return (0);
	}
	if (dir == DB_PREV && w->i > 0 && w->ne > 0) {
		walk_entry(w, w->i - 1);
		return (0);
	}
	w->k.size = sizeof(w->key);
	if (walk_load(w, w->c->get(w->c, &w->k, &w->d, dir)) == -1)
		return (-1);
	if (w->ne > 0)
		walk_entry(w, dir == DB_NEXT ? 0 : w->ne - 1);
	return (0);
}

static void
walk_close(struct mbox_walk *w)
{
	if (w->c != NULL)
		w->c->close(w->c);
	w->c = NULL;
	free(w->rec);
	free(w->eoff);
	w->rec = NULL;
	w->eoff = NULL;
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

	/* no flush: staged messages are not committed, and not read */
	if (walk_open(st, SDB_INBOX, &w, name, after + 1) == -1)
		goto fail;
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

	if (store_log_flush(st) == -1)
		return (-1);
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
	if (store_log_flush(st) == -1)
		return (-1);
	if (walk_open(st, SDB_INBOX, &w, name, after + 1) == -1) {
		walk_close(&w);
		return (-1);
	}
	while (w.valid) {
		/* whole records at a time once past the first entry */
		*count += w.ne - w.i;
		w.i = w.ne - 1;
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
	memset(&in, 0, sizeof(in));
	memset(&out, 0, sizeof(out));
	if (store_log_flush(st) == -1 ||
	    walk_open(st, SDB_INBOX, &in, name, after + 1) == -1 ||
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
	memset(&in, 0, sizeof(in));
	memset(&out, 0, sizeof(out));
	if (store_log_flush(st) == -1)
		return (-1);
	ids = xreallocarray(NULL, max, sizeof(*ids));
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

/* Delete every mailbox record of name, in the group's transaction. */
static int
mbox_drop(struct store *st, enum store_db which, const char *name)
{
	struct mbox_walk	w;
	int			ret;

	if (walk_init(st, which, &w, name) == -1)
		return (store_write_failed(st, store_db_names[which], EIO));
	if (walk_seek(&w, 0, DB_SET_RANGE) == -1)
		goto fail;
	while (w.ne > 0) {
		if ((ret = w.c->del(w.c, 0)) != 0) {
			walk_close(&w);
			return (store_write_failed(st, store_db_names[which],
			    ret));
		}
		w.k.size = sizeof(w.key);
		if (walk_load(&w, w.c->get(w.c, &w.k, &w.d, DB_NEXT)) == -1)
			goto fail;
	}
	walk_close(&w);
	return (0);
fail:
	walk_close(&w);
	return (store_write_failed(st, store_db_names[which], EIO));
}

/*
 * Whoever registers a deleted name later must not inherit the old
 * account's pending messages or history: drop its mailboxes (the
 * messages stay in the log and in the other party's history).
 */
int
store_log_drop(struct store *st, const char *name)
{
	if (store_txn(st) == NULL || store_log_flush(st) == -1)
		return (-1);
	if (mbox_drop(st, SDB_INBOX, name) == -1 ||
	    mbox_drop(st, SDB_OUTBOX, name) == -1)
		return (-1);
	return (0);
}

/* Every mailbox entry must point at a message of the right people. */
static int
verify_mbox(struct store *st, enum store_db which, uint64_t last, char *err,
    size_t errlen, uint64_t *entries)
{
	struct store_msg	 m;
	char			 owner[PROTO_NAME_MAX + 1];
	char			 lfrom[PROTO_NAME_MAX + 1], lto[PROTO_NAME_MAX + 1];
	struct mbox_walk	 w;
	DBC			*c;
	DBT			 k, d;
	unsigned int		 i;
	size_t			 ol;
	int			 ret, rv = 1;

	if (st->db[which]->cursor(st->db[which], NULL, &c, 0) != 0)
		return (-1);
	memset(&k, 0, sizeof(k));
	memset(&d, 0, sizeof(d));
	memset(&w, 0, sizeof(w));
	while (rv == 1 && (ret = c->get(c, &k, &d, DB_NEXT)) == 0) {
		if (k.size >= 8 &&
		    store_get_be64((unsigned char *)k.data + k.size - 8) > last)
			continue;	/* written after the check began */
		if (k.size < 10 || k.size > MBOX_KEY_MAX ||
		    ((char *)k.data)[k.size - 9] != '\0') {
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
		/* index the record's entries with the walk's parser */
		w.plen = k.size - 8;
		memcpy(w.prefix, k.data, w.plen);
		w.k = k;
		w.d = d;
		if (walk_load(&w, 0) == -1) {
			snprintf(err, errlen, "%s: %s: malformed record",
			    store_db_names[which], owner);
			rv = 0;
			break;
		}
		for (i = 0; i < w.ne && rv == 1; i++) {
			walk_entry(&w, i);
			if (w.id > last)
				break;
			(*entries)++;
			if ((ret = store_msg_get(st, w.id, &m)) != 1) {
				snprintf(err, errlen, "%s: entry %s/%llu has "
				    "no message", store_db_names[which], owner,
				    (unsigned long long)w.id);
				rv = ret == -1 ? -1 : 0;
				break;
			}
			proto_lower(lfrom, m.from, sizeof(lfrom));
			proto_lower(lto, m.to, sizeof(lto));
			if (strcmp(which == SDB_INBOX ? lto : lfrom, owner) != 0 ||
			    strcmp(which == SDB_INBOX ? lfrom : lto, w.peer) != 0) {
				snprintf(err, errlen, "%s: message %llu is not "
				    "%s's", store_db_names[which],
				    (unsigned long long)w.id, owner);
				rv = 0;
			}
		}
	}
	c->close(c);
	free(w.rec);
	free(w.eoff);
	if (rv == 1 && ret != DB_NOTFOUND)
		return (-1);
	return (rv);
}

/*
 * Check the log and the mailboxes: every segment decodes, every entry
 * points at a message of its owner. A running server keeps appending:
 * check up to the last message committed now, and the entries of those
 * messages only (ids commit in order, each with its entries).
 */
int
store_log_verify(struct store *st, char *err, size_t errlen)
{
	struct store_msg	 m;
	struct seg		 s;
	DBC			*c;
	DBT			 k, d;
	uint64_t		 msgs = 0, in = 0, out = 0, last = 0, first;
	unsigned int		 i;
	int			 ret, rv;

	if (st->db[SDB_MSGS]->cursor(st->db[SDB_MSGS], NULL, &c, 0) != 0)
		return (-1);
	memset(&k, 0, sizeof(k));
	memset(&d, 0, sizeof(d));
	memset(&s, 0, sizeof(s));
	if ((ret = c->get(c, &k, &d, DB_LAST)) == 0 && k.size == 8)
		last = store_get_be64(k.data);
	else if (ret != DB_NOTFOUND) {
		c->close(c);
		return (-1);
	}
	for (ret = c->get(c, &k, &d, DB_FIRST); ret == 0;
	    ret = c->get(c, &k, &d, DB_NEXT)) {
		first = k.size == 8 ? store_get_be64(k.data) : 0;
		if (first > last)
			break;
		if (k.size != 8 || seg_load(&s, first, d.data, d.size) == -1)
			goto bad;
		for (i = 0; i < s.n; i++) {
			msgs++;
			if (seg_get(&s, first + i, &m) != 1)
				goto bad;
		}
		if (first == last)
			last = first + s.n - 1;
	}
	c->close(c);
	seg_free(&s);
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
	snprintf(err, errlen, "%llu messages", (unsigned long long)msgs);
	return (1);
bad:
	c->close(c);
	seg_free(&s);
	snprintf(err, errlen, "%s: bad record", store_db_names[SDB_MSGS]);
	return (0);
}

/*
 * unacked.c: who sent what an online account has not acknowledged yet.
 *
 * An ACK <id> covers every message to the account from its old cursor up
 * to id, and each sender of one of them gets an ACKED receipt. The inbox
 * on disk says who they are, but a walk of it (a cursor descent and a
 * record to unpack) cost more than everything else an ACK does. The
 * messages an ACK covers are nearly always ones the server has just
 * delivered to the account's sessions, so the delivery (group.c) notes
 * each one here, and the receipts come from memory. The list starts with
 * room for UNACKED_FIRST entries and doubles up to UNACKED_MAX: a reader
 * further behind than that is answered from the inbox.
 *
 * The list is only used while it is known to be complete: floor is the
 * last id handed out when the account came online (or when the list
 * overflowed and was dropped), and every message to the account with an
 * id above floor was delivered while it was online, so it is here. An
 * ACK whose range starts below floor (messages queued while offline), or
 * whose own id is missing, is answered from the inbox as before.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "unacked.h"
#include "xmalloc.h"

/* Track from here: nothing above floor was delivered yet. */
void
unacked_start(struct unacked *u, uint64_t floor)
{
	unacked_free(u);
	u->floor = floor;
}

/* A ring of cap entries holding b's, oldest first (b may be NULL). */
static struct unacked_buf *
unacked_grow(struct unacked_buf *b, unsigned int cap)
{
	struct unacked_buf	*nb;
	unsigned int		 i;

	nb = xmalloc(sizeof(*nb) + (size_t)cap * sizeof(nb->e[0]));
	nb->head = 0;
	nb->n = 0;
	nb->cap = cap;
	if (b != NULL) {
		for (i = 0; i < b->n; i++)
			nb->e[i] = b->e[(b->head + i) % b->cap];
		nb->n = b->n;
		free(b);
	}
	return (nb);
}

/* A message to the account, delivered: its id is above every noted one. */
void
unacked_add(struct unacked *u, uint64_t id, const char *sender)
{
	struct unacked_buf	*b = u->buf;
	struct unacked_ent	*e;

	if (id <= u->floor)
		return;		/* below the floor the inbox answers */
	if (b == NULL)
		b = u->buf = unacked_grow(NULL, UNACKED_FIRST);
	else if (b->n == b->cap) {
		if (b->cap >= UNACKED_MAX) {
			/* a reader far behind: forget, the inbox answers */
			unacked_free(u);
			u->floor = id;
			return;
		}
		b = u->buf = unacked_grow(b, b->cap * 2);
	}
	e = &b->e[(b->head + b->n) % b->cap];
	e->id = id;
	proto_lower(e->sender, sender, sizeof(e->sender));
	b->n++;
}

/* Forget the entries up to upto. */
static void
unacked_drop(struct unacked *u, uint64_t upto)
{
	struct unacked_buf	*b = u->buf;

	while (b->n > 0 && b->e[b->head].id <= upto) {
		b->head = (b->head + 1) % b->cap;
		b->n--;
	}
	if (b->n == 0) {
		free(u->buf);
		u->buf = NULL;
	}
}

/*
 * An ACK moved the cursor from after to upto: hand cb each sender and id
 * in between, oldest first, and forget them. -1 when the list cannot say
 * (the caller walks the inbox); the entries up to upto are gone either way.
 */
int
unacked_take(struct unacked *u, uint64_t after, uint64_t upto,
    int (*cb)(const char *, uint64_t, void *), void *arg)
{
	struct unacked_buf	*b = u->buf;
	struct unacked_ent	*e;
	unsigned int		 i;
	int			 found = 0;

	if (b == NULL)
		return (-1);
	if (after >= u->floor) {
		/* the acked message itself must be here */
		for (i = 0; i < b->n; i++) {
			e = &b->e[(b->head + i) % b->cap];
			if (e->id >= upto) {
				found = e->id == upto;
				break;
			}
		}
	}
	if (!found) {
		unacked_drop(u, upto);
		return (-1);
	}
	for (i = 0; i < b->n; i++) {
		e = &b->e[(b->head + i) % b->cap];
		if (e->id > upto)
			break;
		if (e->id > after && cb(e->sender, e->id, arg) != 0)
			break;
	}
	unacked_drop(u, upto);
	return (0);
}

void
unacked_free(struct unacked *u)
{
	free(u->buf);
	u->buf = NULL;
}

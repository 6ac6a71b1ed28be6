/*
 * unacked.h: the senders of what an online account was sent and has not
 * acknowledged yet, kept in memory for the ACKED receipts.
 */
#ifndef MYCHAT_UNACKED_H
#define MYCHAT_UNACKED_H

#include <stdint.h>

#include "proto.h"

#define UNACKED_FIRST	16	/* entries allocated at first */
#define UNACKED_MAX	256	/* entries; past them the inbox is walked */

struct unacked_ent {
	uint64_t	 id;
	char		 sender[PROTO_NAME_MAX + 1];	/* lower case */
};

/* A ring of cap entries, doubled when full up to UNACKED_MAX. */
struct unacked_buf {
	unsigned int		 head, n, cap;
	struct unacked_ent	 e[];
};

/*
 * Every message to the account with an id above floor is in buf, in id
 * order; buf is allocated at the first one and freed when it empties.
 */
struct unacked {
	uint64_t		 floor;
	struct unacked_buf	*buf;
};

void	unacked_start(struct unacked *, uint64_t);
void	unacked_add(struct unacked *, uint64_t, const char *);
int	unacked_take(struct unacked *, uint64_t, uint64_t,
	    int (*)(const char *, uint64_t, void *), void *);
void	unacked_free(struct unacked *);

#endif

/*
 * test_unacked.c: unit tests of src/unacked.c, the in-memory list of who
 * sent what an online account has not acknowledged. Prints TAP (tap.h).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "unacked.h"

/* What a take handed out: "sender:id" words, in order. */
struct got {
	char	s[4096];
	int	calls;
};

static int
collect(const char *sender, uint64_t id, void *arg)
{
	struct got	*g = arg;
	size_t		 n = strlen(g->s);

	snprintf(g->s + n, sizeof(g->s) - n, "%s%s:%llu", n ? " " : "",
	    sender, (unsigned long long)id);
	g->calls++;
	return (0);
}

static int
take(struct unacked *u, uint64_t after, uint64_t upto, struct got *g)
{
	memset(g, 0, sizeof(*g));
	return (unacked_take(u, after, upto, collect, g));
}

/* Interleaved senders, partial and whole ACKs, the list freed when empty. */
static void
test_take(void)
{
	struct unacked	u;
	struct got	g;

	memset(&u, 0, sizeof(u));
	unacked_start(&u, 100);
	tap_is_int(take(&u, 100, 101, &g), -1, "take: nothing noted: walk");

	unacked_add(&u, 101, "Alice");
	unacked_add(&u, 103, "carol");
	unacked_add(&u, 104, "alice");
	unacked_add(&u, 107, "Carol");
	tap_is_int(take(&u, 100, 104, &g), 0, "take: up to 104 from memory");
	tap_is_str(g.s, "alice:101 carol:103 alice:104",
	    "take: senders lower case, oldest first, only up to 104");
	tap_is_int(take(&u, 104, 107, &g), 0, "take: the rest from memory");
	tap_is_str(g.s, "carol:107", "take: only what is above the cursor");
	tap_ok(u.buf == NULL, "take: an empty list is freed");

	/* an id that was never noted (not delivered live): walk */
	unacked_add(&u, 110, "alice");
	tap_is_int(take(&u, 107, 109, &g), -1, "take: 109 not noted: walk");
	tap_is_int(g.calls, 0, "take: a walk hands out nothing itself");
	tap_is_int(take(&u, 109, 110, &g), 0, "take: 110 still noted");
	tap_is_str(g.s, "alice:110", "take: 110 from memory");
	unacked_free(&u);
}

/* Below the floor (queued while offline) the inbox has to answer. */
static void
test_floor(void)
{
	struct unacked	u;
	struct got	g;

	memset(&u, 0, sizeof(u));
	unacked_start(&u, 50);
	unacked_add(&u, 40, "early");		/* staged before the login */
	unacked_add(&u, 51, "bob");
	unacked_add(&u, 52, "bob");
	tap_is_int(take(&u, 30, 52, &g), -1,
	    "floor: a range starting below the floor is walked");
	tap_ok(u.buf == NULL, "floor: the walked entries are dropped");
	unacked_add(&u, 53, "bob");
	tap_is_int(take(&u, 52, 53, &g), 0, "floor: above it, memory again");
	tap_is_str(g.s, "bob:53", "floor: 53");
	unacked_free(&u);
}

/* A reader far behind: past UNACKED_MAX entries the list starts over. */
static void
test_overflow(void)
{
	struct unacked	u;
	struct got	g;
	uint64_t	id;

	memset(&u, 0, sizeof(u));
	unacked_start(&u, 0);
	for (id = 1; id <= UNACKED_MAX; id++)
		unacked_add(&u, id, id % 2 ? "odd" : "even");
	tap_is_int(take(&u, 0, 3, &g), 0, "overflow: full list still answers");
	tap_is_str(g.s, "odd:1 even:2 odd:3", "overflow: 1..3");
	/* 3 slots free again: 3 more fit, the next one overflows */
	for (id = UNACKED_MAX + 1; id <= UNACKED_MAX + 3; id++)
		unacked_add(&u, id, "late");
	tap_is_int(take(&u, 3, UNACKED_MAX + 3, &g), 0,
	    "overflow: the ring wraps around");
	tap_is_int(g.calls, UNACKED_MAX, "overflow: every entry once");
	for (id = 100; id < 100 + UNACKED_MAX; id++)
		unacked_add(&u, id, "x");
	unacked_add(&u, 100 + UNACKED_MAX, "x");	/* one too many */
	tap_ok(u.buf == NULL && u.floor == 100 + UNACKED_MAX,
	    "overflow: dropped, the floor is the id that did not fit");
	tap_is_int(take(&u, 99, 120, &g), -1, "overflow: older ACKs walk");
	unacked_add(&u, 100 + UNACKED_MAX + 1, "y");
	tap_is_int(take(&u, 100 + UNACKED_MAX, 100 + UNACKED_MAX + 1, &g), 0,
	    "overflow: newer ones come from memory");
	tap_is_int(g.calls, 1, "overflow: one entry above the floor");
	tap_ok(strcmp(g.s, "y:0") != 0 && strncmp(g.s, "y:", 2) == 0 &&
	    strtoull(g.s + 2, NULL, 10) == 100 + UNACKED_MAX + 1,
	    "overflow: it is the first id above the floor (%s)", g.s);
	unacked_free(&u);
}

/* The list doubles when full, also when its ring has wrapped around. */
static void
test_grow(void)
{
	struct unacked	u;
	struct got	g;
	char		want[4096], name[8];
	uint64_t	id;
	size_t		n;

	memset(&u, 0, sizeof(u));
	unacked_start(&u, 0);
	for (id = 1; id <= 10; id++)
		unacked_add(&u, id, "a");
	tap_is_int(take(&u, 0, 5, &g), 0, "grow: take 1..5");
	tap_is_int(u.buf->cap, UNACKED_FIRST, "grow: still the first size");
	/* 6..10 are at the ring's middle: 11.. wrap, then it doubles */
	for (id = 11; id <= 5 + 3 * UNACKED_FIRST; id++) {
		snprintf(name, sizeof(name), "s%d", (int)(id % 3));
		unacked_add(&u, id, name);
	}
	tap_ok(u.buf->cap >= 3 * UNACKED_FIRST && u.buf->cap <= UNACKED_MAX,
	    "grow: doubled to %u", u.buf->cap);
	want[0] = '\0';
	for (id = 6, n = 0; id <= 5 + 3 * UNACKED_FIRST; id++) {
		if (id <= 10)
			snprintf(name, sizeof(name), "a");
		else
			snprintf(name, sizeof(name), "s%d", (int)(id % 3));
		n += (size_t)snprintf(want + n, sizeof(want) - n, "%s%s:%llu",
		    n ? " " : "", name, (unsigned long long)id);
	}
	tap_is_int(take(&u, 5, 5 + 3 * UNACKED_FIRST, &g), 0,
	    "grow: all from memory");
	tap_is_str(g.s, want, "grow: every entry once, in order");
	tap_ok(u.buf == NULL, "grow: freed when empty");
	unacked_free(&u);
}

int
main(void)
{
	test_take();
	test_floor();
	test_overflow();
	test_grow();
	return (tap_done());
}

/*
 * mychat-bench: a loopback load generator for mychatd and for IRC servers.
 *
 * One thread, one epoll loop, raw non-blocking sockets: every connection
 * has its own input and output buffer, and the output of all connections
 * touched during a loop pass is written once at the end of the pass.
 *
 * Modes:
 *   relay   P sender/receiver pairs, W messages in flight per sender
 *   fanin   S senders, one receiver
 *   conns   N idle logged-in connections held; the server's RSS per
 *           connection (from /proc/<pid>/status)
 *   logins  a burst of L LOGINs on fresh connections while K sessions PING
 *
 * Each message text carries "<nonce>:<flow>:<seq>:<send-ns>" (CLOCK_MONOTONIC,
 * same host), so the receiver measures the latency and checks integrity per
 * flow: lost, duplicated, reordered. Any of these fails the run.
 */
#include "config.h"

#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "proto.h"
#include "xmalloc.h"

#define BENCH_IN_SMALL		4096		/* input buffer of idle conns */
#define BENCH_IN_BIG		(128 * 1024)	/* input buffer of data conns */
#define BENCH_DRAIN_NS		(10 * NS_PER_S)	/* wait for in-flight messages */
#define BENCH_CHECK_NS		(10 * NS_PER_S)	/* wait for liveness PINGs */
#define BENCH_RETRY_NS		(100 * NS_PER_MS) /* after a 429 */
#define BENCH_LOGIN_NS		(250 * NS_PER_MS) /* time budget per login */
#define BENCH_IRC_LOGIN_NS	(10 * NS_PER_MS) /* same, IRC registration */
#define BENCH_IRC_TEXT_MAX	400		/* IRC lines are 512 bytes */
#define BENCH_TEXT_MAX		60000
#define BENCH_MAX_EVENTS	1024
#define NS_PER_S		1000000000ULL
#define NS_PER_MS		1000000ULL

/* Histogram: exact below 1024 ns, then 512 sub-buckets per power of two. */
#define HIST_SUB_BITS		9
#define HIST_SUB		(1 << HIST_SUB_BITS)
#define HIST_LINEAR		(2 * HIST_SUB)
#define HIST_BUCKETS		(HIST_LINEAR + (64 - HIST_SUB_BITS - 1) * HIST_SUB)

enum bench_mode {
	MODE_RELAY,
	MODE_FANIN,
	MODE_CONNS,
	MODE_LOGINS
};

enum bench_dialect {
	DIALECT_MYCHAT,
	DIALECT_IRC
};

enum bench_phase {
	PH_SETUP,	/* connecting and logging in, not timed */
	PH_RUN,		/* the timed window */
	PH_DRAIN,	/* senders stopped, waiting for in-flight messages */
	PH_HOLD,	/* conns: holding idle connections */
	PH_CHECK,	/* conns: every connection answers a PING */
	PH_BURST,	/* logins: the LOGIN burst */
	PH_DONE
};

enum conn_role {
	ROLE_SENDER,
	ROLE_RECEIVER,
	ROLE_IDLE,
	ROLE_PINGER,
	ROLE_REGISTER,	/* logins: creates an account before the burst */
	ROLE_LOGIN	/* logins: one LOGIN of the burst */
};

enum conn_state {
	CS_NEW,
	CS_CONNECTING,
	CS_AUTH,	/* waiting for the greeting, REGISTER/LOGIN or 001 */
	CS_WAITRCV,	/* mychat sender: logged in, waiting for receivers */
	CS_TO,		/* mychat sender: waiting for the TO reply */
	CS_READY,
	CS_CLOSED
};

/* What an outstanding mychat reply answers (replies come in order). */
enum pend_kind {
	PK_GREETING,
	PK_REGISTER,
	PK_LOGIN,
	PK_TO,
	PK_MSG,
	PK_ACK,
	PK_PING
};

struct pend {
	uint64_t	 t;		/* when the command was sent */
	int		 kind;
};

struct hist {
	uint64_t	 count;
	uint64_t	 max;
	uint64_t	*b;
};

struct bconn {
	int		 fd;
	int		 role;
	int		 state;
	int		 flow;		/* sender, receiver of a relay: its flow */
	int		 dirty;		/* on the flush list */
	int		 pollout;	/* EPOLLOUT registered */
	int		 retry;		/* on the retry list */
	int		 alive;		/* conns: answered the final PING */
	uint64_t	 retry_at;
	uint64_t	 started;	/* connect() time */
	uint64_t	 ping_t;	/* IRC pinger: when the PING left */
	int		 ping_out;
	uint64_t	 max_id;	/* mychat receiver: highest MSG id seen */
	uint64_t	 acked_id;	/* mychat receiver: highest id ACKed */
	char		 name[PROTO_NAME_MAX + 1];
	char		*prefix;	/* sender: "MSG " or "PRIVMSG <nick> :" */
	size_t		 prefixlen;
	char		*in;
	size_t		 inlen;
	size_t		 incap;
	char		*out;
	size_t		 outoff;
	size_t		 outlen;
	size_t		 outcap;
	struct pend	*pq;
	size_t		 pqhead;
	size_t		 pqlen;
	size_t		 pqcap;
};

struct flow {
	struct bconn	*snd;
	struct bconn	*rcv;
	uint64_t	 sent;
	uint64_t	 accepted;	/* mychat: 250 replies; IRC: sent */
	uint64_t	 rejected;	/* refused by the server */
	uint64_t	 replies;	/* mychat: replies to MSG */
	uint64_t	 received;	/* distinct messages received */
	uint64_t	 dup;
	uint64_t	 reorder;
	uint64_t	 bogus;		/* a seq that was never sent */
	uint64_t	 next_seen;	/* highest seq received + 1 */
	uint64_t	 inflight;
	uint64_t	*seen;		/* one bit per seq */
	size_t		 seenwords;
};

static struct {
	/* Options. */
	int		 mode;
	int		 dialect;
	char		 host[INET6_ADDRSTRLEN];
	int		 port;
	int		 pairs;
	int		 window;
	int		 size;
	double		 duration;
	int		 connections;
	int		 logins;
	int		 pingers;
	int		 concurrency;
	long		 server_pid;
	int		 cpu;
	char		 run[16];
	const char	*password;
	double		 timeout;
	int		 verbose;

	/* State. */
	struct sockaddr_storage sa;
	socklen_t	 salen;
	int		 ep;
	int		 phase;
	uint32_t	 nonce;
	char		 noncestr[9];
	struct bconn	*conns;
	int		 nconns;
	struct flow	*flows;
	int		 nflows;
	int		 *startq;	/* indices of conns to start, in order */
	int		 nstart;
	int		 startpos;
	int		 active;	/* started, not yet ready */
	int		 ready;
	int		 nrecv;		/* receivers */
	int		 rcv_ready;	/* receivers logged in */
	int		 setup_total;
	int		 burst_first;	/* logins: first burst conn */
	int		 logins_done;
	int		 alive;
	uint64_t	 start_ns;
	uint64_t	 hard_stop;
	uint64_t	 setup_ns;
	uint64_t	 t_start;
	uint64_t	 t_end;
	uint64_t	 drain_end;
	uint64_t	 delivered;	/* messages received inside the window */
	uint64_t	 stale;		/* messages of an earlier run */
	uint64_t	 acked_pushes;
	uint64_t	 retries;
	uint64_t	 unexpected;
	long		 rss_before;
	long		 rss_after;
	/* relay, fan-in: the server's CPU time over the timed window */
	long		 cpu_user[2], cpu_sys[2];	/* clock ticks */
	uint64_t	 cpu_at[2];	/* when they were read */
	char		 failure[512];
	struct bconn	**flush;
	int		 nflush;
	struct bconn	**retryl;
	int		 nretry;
	struct hist	 lat;		/* send -> receive */
	struct hist	 acklat;	/* mychat: send -> 250 */
	struct hist	 pinglat;	/* logins: PING round trip */
	struct hist	 loginlat;	/* logins: connect -> welcome */
} b;

static void	bench_fail(const char *, ...)
		    __attribute__((format(printf, 1, 2)));
static void	conn_send_msgs(struct bconn *);
static void	conn_ready(struct bconn *, uint64_t);

/* The CLOCK_MONOTONIC time in nanoseconds. */
static uint64_t
bench_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec);
}

/* Record the first failure of the run and end it. */
static void
bench_fail(const char *fmt, ...)
{
	va_list	ap;

	if (b.failure[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(b.failure, sizeof(b.failure), fmt, ap);
		va_end(ap);
	}
	b.phase = PH_DONE;
}

/* Allocate a histogram's buckets. */
static void
hist_init(struct hist *h)
{
	h->b = xcalloc(HIST_BUCKETS, sizeof(*h->b));
}

/* Add one value (ns) to a histogram. */
static void
hist_add(struct hist *h, uint64_t v)
{
	size_t	i;
	int	msb, shift;

	if (v < HIST_LINEAR)
		i = v;
	else {
		msb = 63 - __builtin_clzll(v);
		shift = msb - HIST_SUB_BITS;
		i = HIST_LINEAR + (size_t)(shift - 1) * HIST_SUB +
		    ((v >> shift) - HIST_SUB);
	}
	h->b[i]++;
	h->count++;
	if (v > h->max)
		h->max = v;
}

/* The lower bound of bucket i, in ns. */
static uint64_t
hist_value(size_t i)
{
	size_t	shift;

	if (i < HIST_LINEAR)
		return (i);
	shift = (i - HIST_LINEAR) / HIST_SUB + 1;
	return ((uint64_t)((i - HIST_LINEAR) % HIST_SUB + HIST_SUB) << shift);
}

/* The value (in microseconds) below which a fraction q of the values lie. */
static double
hist_quantile(const struct hist *h, double q)
{
	uint64_t	target, sum = 0;
	size_t		i;

	if (h->count == 0)
		return (0);
	target = (uint64_t)(q * (double)h->count + 0.999999);
	if (target < 1)
		target = 1;
	for (i = 0; i < HIST_BUCKETS; i++) {
		sum += h->b[i];
		if (sum >= target)
			return ((double)hist_value(i) / 1000.0);
	}
	return ((double)h->max / 1000.0);
}

/* Parse a decimal number at *pp, moving *pp past it; -1 if none. */
static int
parse_u64(const char **pp, const char *end, uint64_t *v)
{
	const char	*p = *pp;
	uint64_t	 r = 0;

	if (p >= end || *p < '0' || *p > '9')
		return (-1);
	while (p < end && *p >= '0' && *p <= '9') {
		if (r > (UINT64_MAX - 9) / 10)
			return (-1);
		r = r * 10 + (uint64_t)(*p - '0');
		p++;
	}
	*pp = p;
	*v = r;
	return (0);
}

/* Read the VmRSS of a process in KiB, or -1. */
static long
bench_rss(long pid)
{
	char	 path[64], line[256];
	FILE	*fp;
	long	 kib = -1;

	if (pid <= 0)
		return (-1);
	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if ((fp = fopen(path, "r")) == NULL)
		return (-1);
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kib = strtol(line + 6, NULL, 10);
			break;
		}
	}
	fclose(fp);
	return (kib);
}

/*
 * Read the user and system CPU time of a process (all its threads) in
 * clock ticks, from /proc/PID/stat; -1 in both when unknown.
 */
static void
bench_cpu(long pid, long *user, long *sys)
{
	char		 path[64], buf[1024], *p;
	FILE		*fp;
	size_t		 n;
	int		 i;

	*user = *sys = -1;
	if (pid <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((fp = fopen(path, "r")) == NULL)
		return;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	/*
	 * The command name (field 2) may hold spaces: count from its ')'.
	 * Field 3 follows the first space after it, utime (field 14) the
	 * twelfth; stime is field 15.
	 */
	if ((p = strrchr(buf, ')')) == NULL)
		return;
	for (i = 0; i < 12 && p != NULL; i++)
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p, " %ld %ld", user, sys) != 2)
		*user = *sys = -1;
}

/* Read the server's CPU time at the start (0) or end (1) of the window. */
static void
bench_cpu_mark(int i, uint64_t now)
{
	bench_cpu(b.server_pid, &b.cpu_user[i], &b.cpu_sys[i]);
	b.cpu_at[i] = now;
}

/* Make room for n more bytes of output; returns where to write them. */
static char *
out_reserve(struct bconn *c, size_t n)
{
	size_t	need;

	if (c->outoff > 0 && c->outoff == c->outlen)
		c->outoff = c->outlen = 0;
	need = c->outlen + n;
	if (need > c->outcap && c->outoff > 0) {
		memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
		c->outlen -= c->outoff;
		c->outoff = 0;
		need = c->outlen + n;
	}
	if (need > c->outcap) {
		while (c->outcap < need)
			c->outcap = c->outcap == 0 ? 4096 : c->outcap * 2;
		c->out = xreallocarray(c->out, 1, c->outcap);
	}
	return (c->out + c->outlen);
}

/* Put a connection on the list of those written at the end of the pass. */
static void
conn_mark(struct bconn *c)
{
	if (!c->dirty) {
		c->dirty = 1;
		b.flush[b.nflush++] = c;
	}
}

/* Queue a printf-formatted line (CRLF added) on a connection. */
static void
conn_printf(struct bconn *c, const char *fmt, ...)
{
	va_list	 ap;
	char	 buf[1024];
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf) - 2)
		fatalx("conn_printf: line too long");
	buf[n++] = '\r';
	buf[n++] = '\n';
	memcpy(out_reserve(c, (size_t)n), buf, (size_t)n);
	c->outlen += (size_t)n;
	conn_mark(c);
}

/* Remember that a mychat reply of this kind is expected next. */
static void
pq_push(struct bconn *c, int kind, uint64_t t)
{
	struct pend	*np;
	size_t		 i, ncap;

	if (c->pqlen == c->pqcap) {
		ncap = c->pqcap == 0 ? 8 : c->pqcap * 2;
		np = xreallocarray(NULL, ncap, sizeof(*np));
		for (i = 0; i < c->pqlen; i++)
			np[i] = c->pq[(c->pqhead + i) % c->pqcap];
		free(c->pq);
		c->pq = np;
		c->pqcap = ncap;
		c->pqhead = 0;
	}
	c->pq[(c->pqhead + c->pqlen) % c->pqcap].kind = kind;
	c->pq[(c->pqhead + c->pqlen) % c->pqcap].t = t;
	c->pqlen++;
}

/* Take the oldest expected reply; -1 when none is expected. */
static int
pq_pop(struct bconn *c, struct pend *p)
{
	if (c->pqlen == 0)
		return (-1);
	*p = c->pq[c->pqhead];
	c->pqhead = (c->pqhead + 1) % c->pqcap;
	c->pqlen--;
	return (0);
}

/* Register, modify or drop a connection's epoll interest. */
static void
conn_epoll(struct bconn *c, int op, uint32_t events)
{
	struct epoll_event	ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.ptr = c;
	if (epoll_ctl(b.ep, op, c->fd, &ev) == -1)
		fatal("epoll_ctl");
}

/* Close a connection (no error). */
static void
conn_close(struct bconn *c)
{
	if (c->fd != -1) {
		close(c->fd);	/* also drops it from the epoll set */
		c->fd = -1;
	}
	if (c->state != CS_READY && c->state != CS_CLOSED &&
	    c->state != CS_NEW)
		b.active--;
	c->state = CS_CLOSED;
}

/* A connection failed: the run fails. */
static void
conn_error(struct bconn *c, const char *what)
{
	bench_fail("connection %s (%s): %s", c->name,
	    c->role == ROLE_SENDER ? "sender" : c->role == ROLE_RECEIVER ?
	    "receiver" : c->role == ROLE_PINGER ? "pinger" : c->role ==
	    ROLE_LOGIN ? "login" : c->role == ROLE_REGISTER ? "register" :
	    "idle", what);
	conn_close(c);
}

/* The server refused a command: the run fails, saying with what reply. */
static void
conn_refused(struct bconn *c, const char *cmd, const char *line, size_t len)
{
	char	what[160];

	snprintf(what, sizeof(what), "%s refused: %.*s", cmd,
	    (int)(len > 100 ? 100 : len), line);
	conn_error(c, what);
}

/* Open a connection; the login starts when connect() completes. */
static void
conn_start(struct bconn *c, uint64_t now)
{
	int	one = 1;

	c->fd = socket(b.sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (c->fd == -1) {
		bench_fail("socket: %s (open-file limit?)", strerror(errno));
		return;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->state = CS_CONNECTING;
	c->started = now;
	b.active++;
	if (connect(c->fd, (struct sockaddr *)&b.sa, b.salen) == -1 &&
	    errno != EINPROGRESS) {
		conn_error(c, strerror(errno));
		return;
	}
	conn_epoll(c, EPOLL_CTL_ADD, EPOLLIN | EPOLLOUT);
	c->pollout = 1;
}

/* Send the login commands of a freshly connected connection. */
static void
conn_login(struct bconn *c, uint64_t now)
{
	if (b.dialect == DIALECT_IRC) {
		conn_printf(c, "NICK %s", c->name);
		conn_printf(c, "USER %s 0 * :mychat-bench", c->name);
		return;
	}
	/* Pipelined: the greeting is the first reply. */
	pq_push(c, PK_GREETING, now);
	if (c->role == ROLE_LOGIN) {
		conn_printf(c, "LOGIN %s %s", c->name, b.password);
		pq_push(c, PK_LOGIN, now);
	} else {
		conn_printf(c, "REGISTER %s %s", c->name, b.password);
		pq_push(c, PK_REGISTER, now);
	}
}

/* Try a refused REGISTER/LOGIN again later (429 slow down). */
static void
conn_retry_later(struct bconn *c, uint64_t now)
{
	b.retries++;
	c->retry_at = now + BENCH_RETRY_NS;
	if (!c->retry) {
		c->retry = 1;
		b.retryl[b.nretry++] = c;
	}
}

/* Send the (next) IRC or mychat PING of a pinger. */
static void
conn_ping(struct bconn *c, uint64_t now)
{
	if (b.dialect == DIALECT_IRC) {
		conn_printf(c, "PING :bench%" PRIu64, now);
		c->ping_t = now;
		c->ping_out = 1;
	} else {
		conn_printf(c, "PING bench");
		pq_push(c, PK_PING, now);
		c->ping_out = 1;
	}
}

/* A PING came back. */
static void
conn_pong(struct bconn *c, uint64_t sent, uint64_t now)
{
	c->ping_out = 0;
	if (b.phase == PH_CHECK && b.mode == MODE_CONNS) {
		if (!c->alive) {
			c->alive = 1;
			b.alive++;
		}
		return;
	}
	if (b.phase != PH_BURST)
		return;
	hist_add(&b.pinglat, now - sent);
	conn_ping(c, now);
}

/* The connection is logged in (mychat: and its TO answered). */
static void
conn_ready(struct bconn *c, uint64_t now)
{
	int	i;

	if (c->state == CS_READY)
		return;
	/*
	 * A mychat sender chooses its peer with TO once every receiver is
	 * logged in (TO an account not yet registered is a 404).
	 */
	if (c->role == ROLE_SENDER && b.dialect == DIALECT_MYCHAT &&
	    (c->state == CS_AUTH || c->state == CS_WAITRCV)) {
		if (b.rcv_ready < b.nrecv) {
			c->state = CS_WAITRCV;
			return;
		}
		conn_printf(c, "TO %s", b.flows[c->flow].rcv->name);
		pq_push(c, PK_TO, now);
		c->state = CS_TO;
		return;
	}
	c->state = CS_READY;
	b.active--;
	if (c->role == ROLE_RECEIVER && ++b.rcv_ready == b.nrecv) {
		for (i = 0; i < b.nconns; i++)
			if (b.conns[i].state == CS_WAITRCV)
				conn_ready(&b.conns[i], now);
	}
	if (c->role == ROLE_LOGIN) {
		b.logins_done++;
		hist_add(&b.loginlat, now - c->started);
		conn_close(c);
		return;
	}
	b.ready++;
	if (c->role == ROLE_SENDER && b.phase == PH_RUN)
		conn_send_msgs(c);
	if (c->role == ROLE_PINGER && b.phase == PH_BURST && !c->ping_out)
		conn_ping(c, now);
}

/* Append as many messages as the sender's window allows. */
static void
conn_send_msgs(struct bconn *c)
{
	struct flow	*f = &b.flows[c->flow];
	uint64_t	 now;
	size_t		 hdr, len, linemax;
	char		*p, *start;

	if (b.phase != PH_RUN || c->state != CS_READY ||
	    f->inflight >= (uint64_t)b.window)
		return;
	now = bench_now();
	linemax = c->prefixlen + (size_t)b.size + 80;
	while (f->inflight < (uint64_t)b.window) {
		start = p = out_reserve(c, linemax);
		memcpy(p, c->prefix, c->prefixlen);
		p += c->prefixlen;
		memcpy(p, b.noncestr, 8);
		p += 8;
		*p++ = ':';
		p += proto_fmt_u64(p, (uint64_t)c->flow);
		*p++ = ':';
		p += proto_fmt_u64(p, f->sent);
		*p++ = ':';
		p += proto_fmt_u64(p, now);
		hdr = (size_t)(p - start) - c->prefixlen;
		if (hdr < (size_t)b.size) {
			*p++ = ' ';
			hdr++;
			if (hdr < (size_t)b.size) {
				memset(p, 'x', (size_t)b.size - hdr);
				p += (size_t)b.size - hdr;
			}
		}
		*p++ = '\r';
		*p++ = '\n';
		len = (size_t)(p - start);
		c->outlen += len;
		if (b.dialect == DIALECT_MYCHAT)
			pq_push(c, PK_MSG, now);
		else
			f->accepted++;	/* IRC has no per-message reply */
		f->sent++;
		f->inflight++;
	}
	conn_mark(c);
}

/* Make sure the seen-bitmap of a flow holds seq. */
static void
flow_seen_grow(struct flow *f, uint64_t seq)
{
	size_t	words = (size_t)(seq / 64) + 1, ncap;

	if (words <= f->seenwords)
		return;
	ncap = f->seenwords == 0 ? 1024 : f->seenwords;
	while (ncap < words)
		ncap *= 2;
	f->seen = xreallocarray(f->seen, ncap, sizeof(*f->seen));
	memset(f->seen + f->seenwords, 0,
	    (ncap - f->seenwords) * sizeof(*f->seen));
	f->seenwords = ncap;
}

/*
 * A message text arrived at a receiver from the account or nick `from'.
 * Check it belongs to this run and this flow, then count it.
 */
static void
bench_arrival(struct bconn *c, const char *from, size_t fromlen,
    const char *text, size_t textlen, uint64_t now)
{
	const char	*p = text, *end = text + textlen;
	struct flow	*f;
	uint64_t	 fl, seq, t;

	if (textlen < 9 || memcmp(text, b.noncestr, 8) != 0 ||
	    text[8] != ':') {
		b.stale++;
		return;
	}
	p += 9;
	if (parse_u64(&p, end, &fl) == -1 || p >= end || *p++ != ':' ||
	    parse_u64(&p, end, &seq) == -1 || p >= end || *p++ != ':' ||
	    parse_u64(&p, end, &t) == -1) {
		bench_fail("receiver %s: malformed message text", c->name);
		return;
	}
	if (fl >= (uint64_t)b.nflows) {
		bench_fail("receiver %s: message of unknown flow %" PRIu64,
		    c->name, fl);
		return;
	}
	f = &b.flows[fl];
	if (f->rcv != c || strlen(f->snd->name) != fromlen ||
	    strncasecmp(f->snd->name, from, fromlen) != 0) {
		bench_fail("receiver %s: message of flow %" PRIu64
		    " from %.*s reached the wrong receiver or sender",
		    c->name, fl, (int)fromlen, from);
		return;
	}
	if (seq >= f->sent) {
		f->bogus++;
		return;
	}
	flow_seen_grow(f, seq);
	if (f->seen[seq / 64] & (1ULL << (seq % 64))) {
		f->dup++;
		return;
	}
	f->seen[seq / 64] |= 1ULL << (seq % 64);
	f->received++;
	if (seq + 1 < f->next_seen)
		f->reorder++;
	else
		f->next_seen = seq + 1;
	if (now >= t)
		hist_add(&b.lat, now - t);
	if (now < b.t_end)
		b.delivered++;
	if (b.dialect == DIALECT_IRC) {
		if (f->inflight > 0)
			f->inflight--;
		conn_send_msgs(f->snd);
	}
}

/* Handle a mychat "MSG <id> <from> <time> <text>" push. */
static void
mychat_push_msg(struct bconn *c, const char *line, size_t len, uint64_t now)
{
	const char	*p = line + 4, *end = line + len, *from, *sp, *text;
	size_t		 fromlen;
	uint64_t	 id;

	if (parse_u64(&p, end, &id) == -1 || p >= end || *p++ != ' ')
		goto bad;
	from = p;
	if ((sp = memchr(p, ' ', (size_t)(end - p))) == NULL)
		goto bad;
	fromlen = (size_t)(sp - from);
	p = sp + 1;
	if ((sp = memchr(p, ' ', (size_t)(end - p))) == NULL)
		goto bad;
	text = sp + 1;
	if (id > c->max_id)
		c->max_id = id;
	if (c->role != ROLE_RECEIVER) {
		b.unexpected++;
		return;
	}
	bench_arrival(c, from, fromlen, text, (size_t)(end - text), now);
	return;
bad:
	bench_fail("%s: malformed MSG push: %.*s", c->name,
	    (int)(len > 80 ? 80 : len), line);
}

/* Handle one line from a mychat server. */
static void
mychat_line(struct bconn *c, const char *line, size_t len, uint64_t now)
{
	struct pend	 p;
	struct flow	*f;
	int		 code, last;

	if ((last = proto_reply_code(line, len, &code)) == -1) {
		if (len > 4 && memcmp(line, "MSG ", 4) == 0)
			mychat_push_msg(c, line, len, now);
		else if (len > 6 && memcmp(line, "ACKED ", 6) == 0)
			b.acked_pushes++;
		else
			b.unexpected++;
		return;
	}
	if (last == 0)
		return;		/* a continuation line of a multi-line reply */
	if (pq_pop(c, &p) == -1) {
		if (code == RPL_CLOSING)
			conn_refused(c, "connection", line, len);
		else
			b.unexpected++;
		return;
	}
	switch (p.kind) {
	case PK_GREETING:
		if (code != RPL_OK)
			conn_refused(c, "connection", line, len);
		break;
	case PK_REGISTER:
		if (code == RPL_CREATED)
			conn_ready(c, now);
		else if (code == RPL_CONFLICT) {
			conn_printf(c, "LOGIN %s %s", c->name, b.password);
			pq_push(c, PK_LOGIN, now);
		} else if (code == RPL_SLOWDOWN)
			conn_retry_later(c, now);
		else
			conn_refused(c, "REGISTER", line, len);
		break;
	case PK_LOGIN:
		if (code == RPL_OK)
			conn_ready(c, now);
		else if (code == RPL_SLOWDOWN)
			conn_retry_later(c, now);
		else
			conn_refused(c, "LOGIN", line, len);
		break;
	case PK_TO:
		if (code == RPL_OK || code == RPL_OFFLINE)
			conn_ready(c, now);
		else
			conn_refused(c, "TO", line, len);
		break;
	case PK_MSG:
		f = &b.flows[c->flow];
		f->replies++;
		if (f->inflight > 0)
			f->inflight--;
		if (code == RPL_STORED) {
			f->accepted++;
			hist_add(&b.acklat, now - p.t);
		} else {
			f->rejected++;
			if (b.verbose)
				fprintf(stderr, "%s: MSG refused: %.*s\n",
				    c->name, (int)len, line);
		}
		conn_send_msgs(c);
		break;
	case PK_ACK:
		if (code != RPL_OK)
			conn_refused(c, "ACK", line, len);
		break;
	case PK_PING:
		conn_pong(c, p.t, now);
		break;
	default:
		fatalx("mychat_line: kind %d", p.kind);
	}
}

/* Handle one line from an IRC server. */
static void
irc_line(struct bconn *c, const char *line, size_t len, uint64_t now)
{
	const char	*p = line, *end = line + len, *prefix = NULL;
	const char	*cmd, *sp, *text;
	size_t		 prefixlen = 0, cmdlen;
	struct flow	*f;

	if (p < end && *p == ':') {
		prefix = p + 1;
		if ((sp = memchr(p, ' ', len)) == NULL)
			return;
		prefixlen = (size_t)(sp - prefix);
		p = sp + 1;
	}
	cmd = p;
	if ((sp = memchr(p, ' ', (size_t)(end - p))) == NULL)
		sp = end;
	cmdlen = (size_t)(sp - cmd);
	p = sp < end ? sp + 1 : end;

	if (cmdlen == 7 && memcmp(cmd, "PRIVMSG", 7) == 0) {
		/* PRIVMSG <me> :<text> */
		if ((sp = memchr(p, ' ', (size_t)(end - p))) == NULL ||
		    sp + 1 >= end || sp[1] != ':') {
			b.unexpected++;
			return;
		}
		text = sp + 2;
		if (c->role != ROLE_RECEIVER || prefix == NULL) {
			b.unexpected++;
			return;
		}
		if ((sp = memchr(prefix, '!', prefixlen)) != NULL)
			prefixlen = (size_t)(sp - prefix);
		bench_arrival(c, prefix, prefixlen, text,
		    (size_t)(end - text), now);
	} else if (cmdlen == 4 && memcmp(cmd, "PING", 4) == 0) {
		conn_printf(c, "PONG %.*s", (int)(end - p), p);
	} else if (cmdlen == 4 && memcmp(cmd, "PONG", 4) == 0) {
		if (c->ping_out)
			conn_pong(c, c->ping_t, now);
	} else if (cmdlen == 3 && memcmp(cmd, "001", 3) == 0) {
		conn_ready(c, now);
	} else if (cmdlen == 5 && memcmp(cmd, "ERROR", 5) == 0) {
		conn_refused(c, "connection", line, len);
	} else if (cmdlen == 3 && (memcmp(cmd, "432", 3) == 0 ||
	    memcmp(cmd, "433", 3) == 0 || memcmp(cmd, "436", 3) == 0)) {
		conn_refused(c, "NICK", line, len);
	} else if (cmdlen == 3 && (memcmp(cmd, "401", 3) == 0 ||
	    memcmp(cmd, "404", 3) == 0 || memcmp(cmd, "412", 3) == 0 ||
	    memcmp(cmd, "263", 3) == 0) && c->role == ROLE_SENDER) {
		/* A PRIVMSG was refused: it will never arrive. */
		f = &b.flows[c->flow];
		f->rejected++;
		if (f->accepted > 0)
			f->accepted--;
		if (f->inflight > 0)
			f->inflight--;
		if (b.verbose)
			fprintf(stderr, "%s: %.*s\n", c->name, (int)len, line);
		conn_send_msgs(c);
	}
}

/* Write what is queued on a connection. */
static void
conn_flush(struct bconn *c)
{
	ssize_t	n;

	while (c->fd != -1 && c->outoff < c->outlen) {
		n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
		    MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			conn_error(c, strerror(errno));
			return;
		}
		c->outoff += (size_t)n;
	}
	if (c->fd == -1 || c->state == CS_CONNECTING)
		return;
	if (c->outoff < c->outlen && !c->pollout) {
		conn_epoll(c, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT);
		c->pollout = 1;
	} else if (c->outoff == c->outlen && c->pollout) {
		conn_epoll(c, EPOLL_CTL_MOD, EPOLLIN);
		c->pollout = 0;
	}
	if (c->outoff == c->outlen)
		c->outoff = c->outlen = 0;
}

/* Read what the server sent and handle every complete line. */
static void
conn_read(struct bconn *c)
{
	char		*nl, *p, *end;
	size_t		 len, rest;
	ssize_t		 n;
	uint64_t	 now;

	if (c->inlen == c->incap) {
		bench_fail("%s: line longer than %zu bytes", c->name,
		    c->incap);
		return;
	}
	n = read(c->fd, c->in + c->inlen, c->incap - c->inlen);
	if (n == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		conn_error(c, strerror(errno));
		return;
	}
	if (n == 0) {
		conn_error(c, "server closed the connection");
		return;
	}
	now = bench_now();
	c->inlen += (size_t)n;
	p = c->in;
	end = c->in + c->inlen;
	while (p < end && c->fd != -1 &&
	    (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		len = (size_t)(nl - p);
		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len > 0) {
			if (b.dialect == DIALECT_IRC)
				irc_line(c, p, len, now);
			else
				mychat_line(c, p, len, now);
		}
		p = nl + 1;
	}
	if (c->fd == -1)
		return;
	rest = (size_t)(end - p);
	if (rest > 0 && p != c->in)
		memmove(c->in, p, rest);
	c->inlen = rest;

	/* One cumulative ACK per batch of pushes read, as the client does. */
	if (b.dialect == DIALECT_MYCHAT && c->max_id > c->acked_id &&
	    c->state == CS_READY) {
		conn_printf(c, "ACK %" PRIu64, c->max_id);
		pq_push(c, PK_ACK, now);
		c->acked_id = c->max_id;
	}
}

/* The socket of a connecting connection became writable. */
static void
conn_connected(struct bconn *c, uint64_t now)
{
	int		err = 0;
	socklen_t	len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0) {
		conn_error(c, strerror(err));
		return;
	}
	c->state = CS_AUTH;
	conn_epoll(c, EPOLL_CTL_MOD, EPOLLIN);
	c->pollout = 0;
	conn_login(c, now);
}

/* Allocate and name the connections and flows of the chosen mode. */
static void
bench_build(void)
{
	struct bconn	*c;
	int		 i, n = 0, nsend = 0, nrecv = 0, nidle = 0;
	int		 nping = 0, nreg = 0, nlogin = 0;

	switch (b.mode) {
	case MODE_RELAY:
		nsend = nrecv = b.pairs;
		break;
	case MODE_FANIN:
		nsend = b.pairs;
		nrecv = 1;
		break;
	case MODE_CONNS:
		nidle = b.connections;
		break;
	case MODE_LOGINS:
		nping = b.pingers;
		nlogin = b.logins;
		nreg = b.dialect == DIALECT_MYCHAT ? b.logins : 0;
		break;
	}
	b.nconns = nsend + nrecv + nidle + nping + nreg + nlogin;
	b.nrecv = nrecv;
	b.conns = xcalloc((size_t)b.nconns, sizeof(*b.conns));
	b.flush = xcalloc((size_t)b.nconns, sizeof(*b.flush));
	b.retryl = xcalloc((size_t)b.nconns, sizeof(*b.retryl));
	b.startq = xcalloc((size_t)b.nconns, sizeof(*b.startq));
	if (nsend > 0) {
		b.nflows = nsend;
		b.flows = xcalloc((size_t)nsend, sizeof(*b.flows));
	}

	/* Receivers first, so that most TO commands find them online. */
	for (i = 0; i < nrecv; i++) {
		c = &b.conns[n++];
		c->role = ROLE_RECEIVER;
		c->flow = i;
		snprintf(c->name, sizeof(c->name), "b%sr%d", b.run, i);
	}
	for (i = 0; i < nsend; i++) {
		c = &b.conns[n++];
		c->role = ROLE_SENDER;
		c->flow = i;
		snprintf(c->name, sizeof(c->name), "b%ss%d", b.run, i);
		b.flows[i].snd = c;
		b.flows[i].rcv = &b.conns[nrecv == 1 ? 0 : i];
	}
	for (i = 0; i < nidle; i++) {
		c = &b.conns[n++];
		c->role = ROLE_IDLE;
		snprintf(c->name, sizeof(c->name), "b%sc%d", b.run, i);
	}
	for (i = 0; i < nping; i++) {
		c = &b.conns[n++];
		c->role = ROLE_PINGER;
		snprintf(c->name, sizeof(c->name), "b%sp%d", b.run, i);
	}
	for (i = 0; i < nreg; i++) {
		c = &b.conns[n++];
		c->role = ROLE_REGISTER;
		snprintf(c->name, sizeof(c->name), "b%sl%d", b.run, i);
	}
	b.burst_first = n;
	for (i = 0; i < nlogin; i++) {
		c = &b.conns[n++];
		c->role = ROLE_LOGIN;
		snprintf(c->name, sizeof(c->name), "b%sl%d", b.run, i);
	}

	for (i = 0; i < b.nconns; i++) {
		c = &b.conns[i];
		c->fd = -1;
		c->state = CS_NEW;
		c->incap = (c->role == ROLE_SENDER || c->role ==
		    ROLE_RECEIVER) ? BENCH_IN_BIG + 2 * (size_t)b.size :
		    BENCH_IN_SMALL;
		c->in = xmalloc(c->incap);
		if (c->role == ROLE_SENDER) {
			if (b.dialect == DIALECT_IRC) {
				c->prefixlen = strlen("PRIVMSG  :") +
				    strlen(b.flows[c->flow].rcv->name);
				c->prefix = xmalloc(c->prefixlen + 1);
				snprintf(c->prefix, c->prefixlen + 1,
				    "PRIVMSG %s :",
				    b.flows[c->flow].rcv->name);
			} else {
				c->prefix = xstrdup("MSG ");
				c->prefixlen = 4;
			}
		}
	}
	/* Setup starts everything but the burst. */
	for (i = 0; i < b.burst_first; i++)
		b.startq[b.nstart++] = i;
	b.setup_total = b.burst_first;
}

/* Start queued connections while fewer than --concurrency are pending. */
static void
bench_start_more(uint64_t now)
{
	while (b.startpos < b.nstart && b.active < b.concurrency &&
	    b.phase != PH_DONE)
		conn_start(&b.conns[b.startq[b.startpos++]], now);
}

/* Resend the REGISTER/LOGIN of connections told to slow down. */
static void
bench_retries(uint64_t now)
{
	struct bconn	*c;
	int		 i, keep = 0;

	for (i = 0; i < b.nretry; i++) {
		c = b.retryl[i];
		if (c->fd == -1) {
			c->retry = 0;
			continue;
		}
		if (now < c->retry_at) {
			b.retryl[keep++] = c;
			continue;
		}
		c->retry = 0;
		conn_printf(c, "%s %s %s", c->role == ROLE_LOGIN ? "LOGIN" :
		    "REGISTER", c->name, b.password);
		pq_push(c, c->role == ROLE_LOGIN ? PK_LOGIN : PK_REGISTER,
		    now);
	}
	b.nretry = keep;
}

/* Whether every flow has its replies and every accepted message. */
static int
bench_drained(void)
{
	struct flow	*f;
	int		 i;

	for (i = 0; i < b.nflows; i++) {
		f = &b.flows[i];
		if (b.dialect == DIALECT_MYCHAT && f->replies < f->sent)
			return (0);
		if (b.dialect == DIALECT_IRC &&
		    f->received + f->rejected < f->sent)
			return (0);
		if (b.dialect == DIALECT_MYCHAT && f->received < f->accepted)
			return (0);
	}
	return (1);
}

/* Move between phases when their conditions are met. */
static void
bench_step(uint64_t now)
{
	int	i;

	if (now >= b.hard_stop) {
		bench_fail("hard time limit reached (%.0f s; see --timeout)",
		    b.timeout);
		return;
	}
	switch (b.phase) {
	case PH_SETUP:
		bench_start_more(now);
		if (b.ready < b.setup_total)
			break;
		b.setup_ns = now - b.start_ns;
		printf("setup: %d connections logged in in %.2f s (not timed)"
		    "\n", b.setup_total, (double)b.setup_ns / (double)NS_PER_S);
		fflush(stdout);
		b.t_start = now;
		b.t_end = now + (uint64_t)(b.duration * (double)NS_PER_S);
		if (b.mode == MODE_RELAY || b.mode == MODE_FANIN) {
			bench_cpu_mark(0, now);
			b.phase = PH_RUN;
			for (i = 0; i < b.nflows; i++)
				conn_send_msgs(b.flows[i].snd);
		} else if (b.mode == MODE_CONNS) {
			b.phase = PH_HOLD;
		} else {
			/* The accounts exist: drop their sessions, burst. */
			for (i = 0; i < b.nconns; i++)
				if (b.conns[i].role == ROLE_REGISTER)
					conn_close(&b.conns[i]);
			b.phase = PH_BURST;
			b.nstart = b.startpos = 0;
			for (i = b.burst_first; i < b.nconns; i++)
				b.startq[b.nstart++] = i;
			for (i = 0; i < b.nconns; i++)
				if (b.conns[i].role == ROLE_PINGER)
					conn_ping(&b.conns[i], now);
			bench_start_more(now);
		}
		break;
	case PH_RUN:
		if (now >= b.t_end) {
			bench_cpu_mark(1, now);
			b.phase = PH_DRAIN;
			b.drain_end = now + BENCH_DRAIN_NS;
		}
		break;
	case PH_DRAIN:
		if (bench_drained() || now >= b.drain_end)
			b.phase = PH_DONE;
		break;
	case PH_HOLD:
		if (now < b.t_end)
			break;
		b.rss_after = bench_rss(b.server_pid);
		b.phase = PH_CHECK;
		b.drain_end = now + BENCH_CHECK_NS;
		for (i = 0; i < b.nconns; i++)
			if (b.conns[i].state == CS_READY)
				conn_ping(&b.conns[i], now);
		break;
	case PH_CHECK:
		if (b.alive == b.connections || now >= b.drain_end)
			b.phase = PH_DONE;
		break;
	case PH_BURST:
		bench_start_more(now);
		if (b.logins_done == b.logins) {
			b.t_end = now;
			b.phase = PH_DONE;
		} else if (now >= b.t_end) {
			bench_fail("only %d of %d logins done in %.1f s",
			    b.logins_done, b.logins, b.duration);
		}
		break;
	}
}

/* The event loop: runs until the run is done or failed. */
static void
bench_loop(void)
{
	struct epoll_event	 evs[BENCH_MAX_EVENTS];
	struct bconn		*c;
	uint64_t		 now, next;
	int			 i, n, ms;

	now = bench_now();
	bench_step(now);
	while (b.phase != PH_DONE) {
		for (i = 0; i < b.nflush; i++) {
			b.flush[i]->dirty = 0;
			conn_flush(b.flush[i]);
		}
		b.nflush = 0;

		next = b.hard_stop;
		if ((b.phase == PH_RUN || b.phase == PH_HOLD ||
		    b.phase == PH_BURST) && b.t_end < next)
			next = b.t_end;
		if ((b.phase == PH_DRAIN || b.phase == PH_CHECK) &&
		    b.drain_end < next)
			next = b.drain_end;
		if (b.nretry > 0 && now + BENCH_RETRY_NS < next)
			next = now + BENCH_RETRY_NS;
		ms = next > now ? (int)((next - now + NS_PER_MS - 1) /
		    NS_PER_MS) : 0;
		if (b.phase == PH_DRAIN && ms > 10)
			ms = 10;
		n = epoll_wait(b.ep, evs, BENCH_MAX_EVENTS, ms);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			fatal("epoll_wait");
		}
		now = bench_now();
		for (i = 0; i < n && b.phase != PH_DONE; i++) {
			c = evs[i].data.ptr;
			if (c->fd == -1)
				continue;
			if (c->state == CS_CONNECTING) {
				conn_connected(c, now);
				continue;
			}
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				conn_read(c);
			if (c->fd != -1 && (evs[i].events & EPOLLOUT))
				conn_flush(c);
		}
		if (b.nretry > 0)
			bench_retries(now);
		if (b.phase != PH_DONE)
			bench_step(bench_now());
	}
	for (i = 0; i < b.nflush; i++)
		b.flush[i]->dirty = 0;
	b.nflush = 0;
}

/*
 * Print the server's CPU time over the timed window, per message relayed
 * at rate msgs/s, and put its RESULT keys (" key=value ...") in buf.
 */
static void
report_cpu(double rate, char *buf, size_t len)
{
	double	tick, win, user, sys, msgs, busy, user_ns, sys_ns;

	tick = (double)sysconf(_SC_CLK_TCK);
	win = b.cpu_at[1] > b.cpu_at[0] ?
	    (double)(b.cpu_at[1] - b.cpu_at[0]) / (double)NS_PER_S : 0;
	if (b.cpu_user[0] < 0 || b.cpu_user[1] < 0 || tick <= 0 ||
	    win <= 0 || rate <= 0) {
		printf("server CPU: unknown (could not read /proc/%ld/stat)\n",
		    b.server_pid);
		return;
	}
	user = (double)(b.cpu_user[1] - b.cpu_user[0]) / tick;
	sys = (double)(b.cpu_sys[1] - b.cpu_sys[0]) / tick;
	msgs = rate * win;
	busy = 100 * (user + sys) / win;
	user_ns = user * 1e9 / msgs;
	sys_ns = sys * 1e9 / msgs;
	printf("server CPU: busy %.0f%% of %.2f s; per message %.0f ns user, "
	    "%.0f ns system (clock tick %.0f ms)\n", busy, win, user_ns, sys_ns,
	    1000 / tick);
	snprintf(buf, len, " server_busy_pct=%.0f server_user_ns=%.0f "
	    "server_sys_ns=%.0f", busy, user_ns, sys_ns);
}

/* Print the report of a relay or fan-in run; returns the exit status. */
static int
report_relay(const char *mode)
{
	struct flow	*f;
	uint64_t	 sent = 0, accepted = 0, received = 0, lost = 0;
	uint64_t	 dup = 0, reorder = 0, rejected = 0, unanswered = 0;
	uint64_t	 bogus = 0, l;
	double		 secs, rate;
	char		 cpu[128];
	int		 i, shown = 0, bad;

	for (i = 0; i < b.nflows; i++) {
		f = &b.flows[i];
		l = f->accepted > f->received ? f->accepted - f->received : 0;
		sent += f->sent;
		accepted += f->accepted;
		received += f->received;
		lost += l;
		dup += f->dup;
		reorder += f->reorder;
		rejected += f->rejected;
		bogus += f->bogus;
		if (b.dialect == DIALECT_MYCHAT && f->replies < f->sent)
			unanswered += f->sent - f->replies;
		bad = l > 0 || f->dup > 0 || f->reorder > 0 ||
		    f->rejected > 0 || f->bogus > 0;
		if (bad && shown++ < 20)
			printf("  flow %d (%s -> %s): sent %" PRIu64
			    " accepted %" PRIu64 " received %" PRIu64
			    " lost %" PRIu64 " dup %" PRIu64 " reordered %"
			    PRIu64 " rejected %" PRIu64 "\n", i,
			    f->snd->name, f->rcv->name, f->sent, f->accepted,
			    f->received, l, f->dup, f->reorder, f->rejected);
	}
	secs = (double)(b.t_end - b.t_start) / (double)NS_PER_S;
	rate = secs > 0 ? (double)b.delivered / secs : 0;
	printf("%s: sent %" PRIu64 ", %s %" PRIu64 ", received %" PRIu64
	    " (%" PRIu64 " inside the %.2f s window)\n", mode, sent,
	    b.dialect == DIALECT_MYCHAT ? "stored (250)" : "accepted",
	    accepted, received, b.delivered, secs);
	printf("integrity: lost %" PRIu64 ", duplicated %" PRIu64
	    ", reordered %" PRIu64 ", rejected %" PRIu64 ", unanswered %"
	    PRIu64 ", stale %" PRIu64 "\n", lost, dup, reorder, rejected,
	    unanswered, b.stale);
	if (bogus > 0 && b.failure[0] == '\0')
		bench_fail("%" PRIu64 " messages with a sequence number never"
		    " sent", bogus);
	if (b.failure[0] == '\0' && (lost > 0 || dup > 0 || reorder > 0 ||
	    rejected > 0 || unanswered > 0))
		bench_fail("integrity check failed");
	if (b.failure[0] == '\0' && received == 0)
		bench_fail("no message was delivered");
	if (b.failure[0] != '\0') {
		printf("FAILED: %s\n", b.failure);
		printf("RESULT mode=%s dialect=%s status=FAILED lost=%" PRIu64
		    " dup=%" PRIu64 " reorder=%" PRIu64 " rejected=%" PRIu64
		    "\n", mode, b.dialect == DIALECT_IRC ? "irc" : "mychat",
		    lost, dup, reorder, rejected);
		return (1);
	}
	printf("throughput: %.0f msgs/s delivered\n", rate);
	printf("latency send->receive: p50 %.1f us, p99 %.1f us, "
	    "p99.9 %.1f us, max %.1f us\n", hist_quantile(&b.lat, 0.50),
	    hist_quantile(&b.lat, 0.99), hist_quantile(&b.lat, 0.999),
	    (double)b.lat.max / 1000.0);
	if (b.dialect == DIALECT_MYCHAT)
		printf("latency send->250: p50 %.1f us, p99 %.1f us, "
		    "p99.9 %.1f us\n", hist_quantile(&b.acklat, 0.50),
		    hist_quantile(&b.acklat, 0.99),
		    hist_quantile(&b.acklat, 0.999));
	cpu[0] = '\0';
	if (b.server_pid > 0)
		report_cpu(rate, cpu, sizeof(cpu));
	printf("RESULT mode=%s dialect=%s status=ok msgs_per_s=%.0f "
	    "p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f%s lost=0 dup=0 "
	    "reorder=0\n", mode, b.dialect == DIALECT_IRC ? "irc" : "mychat",
	    rate, hist_quantile(&b.lat, 0.50), hist_quantile(&b.lat, 0.99),
	    hist_quantile(&b.lat, 0.999), (double)b.lat.max / 1000.0, cpu);
	return (0);
}

/* Print the report of a conns run; returns the exit status. */
static int
report_conns(void)
{
	double	per = 0;

	printf("conns: %d connections logged in, %d answered the final "
	    "PING\n", b.ready, b.alive);
	if (b.failure[0] == '\0' && b.alive < b.connections)
		bench_fail("%d of %d connections did not answer",
		    b.connections - b.alive, b.connections);
	if (b.failure[0] != '\0') {
		printf("FAILED: %s\n", b.failure);
		printf("RESULT mode=conns status=FAILED connections=%d "
		    "alive=%d\n", b.connections, b.alive);
		return (1);
	}
	if (b.rss_before >= 0 && b.rss_after >= 0) {
		per = (double)(b.rss_after - b.rss_before) /
		    (double)b.connections;
		printf("server RSS: %ld KiB before, %ld KiB with %d "
		    "connections: %.2f KiB per connection\n", b.rss_before,
		    b.rss_after, b.connections, per);
		printf("RESULT mode=conns status=ok connections=%d alive=%d "
		    "rss_before_kib=%ld rss_after_kib=%ld kib_per_conn=%.2f\n",
		    b.connections, b.alive, b.rss_before, b.rss_after, per);
	} else {
		printf("server RSS: unknown (give --server-pid)\n");
		printf("RESULT mode=conns status=ok connections=%d alive=%d\n",
		    b.connections, b.alive);
	}
	return (0);
}

/* Print the report of a logins run; returns the exit status. */
static int
report_logins(void)
{
	double	secs;

	secs = (double)(b.t_end - b.t_start) / (double)NS_PER_S;
	if (b.failure[0] != '\0') {
		printf("FAILED: %s\n", b.failure);
		printf("RESULT mode=logins status=FAILED logins=%d done=%d\n",
		    b.logins, b.logins_done);
		return (1);
	}
	printf("logins: %d logins in %.2f s (%.0f/s), login latency p50 "
	    "%.1f ms, p99 %.1f ms; %" PRIu64 " retries after 429\n",
	    b.logins_done, secs, secs > 0 ? b.logins_done / secs : 0,
	    hist_quantile(&b.loginlat, 0.5) / 1000.0,
	    hist_quantile(&b.loginlat, 0.99) / 1000.0, b.retries);
	printf("PING during the burst (%d sessions, %" PRIu64 " pings): "
	    "p50 %.1f us, p99 %.1f us, max %.1f us\n", b.pingers,
	    b.pinglat.count, hist_quantile(&b.pinglat, 0.5),
	    hist_quantile(&b.pinglat, 0.99), (double)b.pinglat.max / 1000.0);
	printf("RESULT mode=logins status=ok logins=%d burst_s=%.3f "
	    "logins_per_s=%.1f pings=%" PRIu64 " ping_p50_us=%.1f "
	    "ping_p99_us=%.1f ping_max_us=%.1f\n", b.logins_done, secs,
	    secs > 0 ? b.logins_done / secs : 0, b.pinglat.count,
	    hist_quantile(&b.pinglat, 0.5), hist_quantile(&b.pinglat, 0.99),
	    (double)b.pinglat.max / 1000.0);
	return (0);
}

/* Accept only loopback addresses: this tool never loads another host. */
static int
bench_set_host(const char *host)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)&b.sa;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&b.sa;

	memset(&b.sa, 0, sizeof(b.sa));
	if (strcmp(host, "localhost") == 0)
		host = "127.0.0.1";
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		if ((ntohl(sin->sin_addr.s_addr) >> 24) != 127)
			return (-1);
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)b.port);
		b.salen = sizeof(*sin);
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		if (!IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
			return (-1);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)b.port);
		b.salen = sizeof(*sin6);
	} else
		return (-1);
	strncpy(b.host, host, sizeof(b.host) - 1);
	return (0);
}

/* Print the usage and exit. */
static void __attribute__((noreturn))
usage(int status)
{
	fprintf(status ? stderr : stdout,
"usage: mychat-bench relay|fanin|conns|logins [options]\n"
"  --dialect mychat|irc   protocol of the server (mychat)\n"
"  --host ADDR            loopback address only (127.0.0.1)\n"
"  --port N               server port (5555, IRC 6667)\n"
"  --pairs P              relay: sender/receiver pairs (100)\n"
"  --senders S            fanin: senders (same as --pairs)\n"
"  --window W             messages in flight per sender (32)\n"
"  --size B               message text bytes (64)\n"
"  --duration S           seconds of the timed window (5)\n"
"  --connections N        conns: idle connections held (1000)\n"
"  --server-pid PID       conns: read the server's RSS; relay, fanin:\n"
"                         its CPU time per message (/proc/PID/stat)\n"
"  --logins L             logins: LOGINs in the burst (200)\n"
"  --pingers K            logins: sessions that PING meanwhile (10)\n"
"  --concurrency N        connections being set up at once (100)\n"
"  --run ID               account/nick prefix b<ID> (the process id)\n"
"  --password PW          mychat account password (bench-pass)\n"
"  --cpu N                pin this process to CPU N\n"
"  --timeout S            hard stop (duration + 30 s + 250 ms per mychat\n"
"                         login or 10 ms per IRC registration)\n"
"  -v, --verbose\n");
	exit(status);
}

/* Parse a number option or die. */
static double
opt_num(const char *name, const char *s, double lo, double hi)
{
	char	*end;
	double	 v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "mychat-bench: --%s: %s is not in %g..%g\n",
		    name, s, lo, hi);
		exit(2);
	}
	return (v);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "dialect", required_argument, NULL, 'D' },
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "pairs", required_argument, NULL, 'P' },
		{ "senders", required_argument, NULL, 'S' },
		{ "window", required_argument, NULL, 'w' },
		{ "size", required_argument, NULL, 's' },
		{ "duration", required_argument, NULL, 'd' },
		{ "connections", required_argument, NULL, 'n' },
		{ "server-pid", required_argument, NULL, 'R' },
		{ "logins", required_argument, NULL, 'L' },
		{ "pingers", required_argument, NULL, 'K' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "run", required_argument, NULL, 'r' },
		{ "password", required_argument, NULL, 'W' },
		{ "cpu", required_argument, NULL, 'C' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char	*host = "127.0.0.1", *mode = NULL;
	struct rlimit	 rl;
	cpu_set_t	 set;
	uint64_t	 logins_needed;
	int		 ch, rv, i, port = 0;

	log_init("mychat-bench", 0, 0);
	b.dialect = DIALECT_MYCHAT;
	b.pairs = 100;
	b.window = 32;
	b.size = 64;
	b.duration = 5;
	b.connections = 1000;
	b.logins = 200;
	b.pingers = 10;
	b.concurrency = 100;
	b.cpu = -1;
	b.password = "bench-pass";
	snprintf(b.run, sizeof(b.run), "%d", (int)(getpid() % 100000));

	while ((ch = getopt_long(argc, argv, "hv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'm':
			mode = optarg;
			break;
		case 'D':
			if (strcmp(optarg, "mychat") == 0)
				b.dialect = DIALECT_MYCHAT;
			else if (strcmp(optarg, "irc") == 0)
				b.dialect = DIALECT_IRC;
			else
				usage(2);
			break;
		case 'H':
			host = optarg;
			break;
		case 'p':
			port = (int)opt_num("port", optarg, 1, 65535);
			break;
		case 'P':
		case 'S':
			b.pairs = (int)opt_num("pairs", optarg, 1, 9000);
			break;
		case 'w':
			b.window = (int)opt_num("window", optarg, 1, 100000);
			break;
		case 's':
			b.size = (int)opt_num("size", optarg, 1,
			    BENCH_TEXT_MAX);
			break;
		case 'd':
			b.duration = opt_num("duration", optarg, 0.1, 3600);
			break;
		case 'n':
			b.connections = (int)opt_num("connections", optarg, 1,
			    1000000);
			break;
		case 'R':
			b.server_pid = (long)opt_num("server-pid", optarg, 1,
			    INT_MAX);
			break;
		case 'L':
			b.logins = (int)opt_num("logins", optarg, 1, 100000);
			break;
		case 'K':
			b.pingers = (int)opt_num("pingers", optarg, 1, 10000);
			break;
		case 'c':
			b.concurrency = (int)opt_num("concurrency", optarg, 1,
			    100000);
			break;
		case 'r':
			if (strlen(optarg) == 0 || strlen(optarg) > 8 ||
			    strspn(optarg, "abcdefghijklmnopqrstuvwxyz"
			    "0123456789") != strlen(optarg)) {
				fprintf(stderr, "mychat-bench: --run: 1-8 "
				    "lower-case letters or digits\n");
				exit(2);
			}
			strncpy(b.run, optarg, sizeof(b.run) - 1);
			break;
		case 'W':
			b.password = optarg;
			break;
		case 'C':
			b.cpu = (int)opt_num("cpu", optarg, 0, CPU_SETSIZE - 1);
			break;
		case 'T':
			b.timeout = opt_num("timeout", optarg, 1, 86400);
			break;
		case 'v':
			b.verbose = 1;
			break;
		case 'h':
			usage(0);
		default:
			usage(2);
		}
	}
	argc -= optind;
	argv += optind;
	if (mode == NULL && argc > 0) {
		mode = argv[0];
		argc--;
	}
	if (mode == NULL || argc != 0)
		usage(2);
	if (strcmp(mode, "relay") == 0)
		b.mode = MODE_RELAY;
	else if (strcmp(mode, "fanin") == 0)
		b.mode = MODE_FANIN;
	else if (strcmp(mode, "conns") == 0)
		b.mode = MODE_CONNS;
	else if (strcmp(mode, "logins") == 0)
		b.mode = MODE_LOGINS;
	else
		usage(2);
	b.port = port != 0 ? port : b.dialect == DIALECT_IRC ? 6667 :
	    PROTO_DEFAULT_PORT;
	if (bench_set_host(host) == -1) {
		fprintf(stderr, "mychat-bench: %s: only loopback addresses "
		    "(127.0.0.0/8, ::1) may be loaded\n", host);
		return (2);
	}
	if (b.dialect == DIALECT_IRC && b.size > BENCH_IRC_TEXT_MAX) {
		fprintf(stderr, "mychat-bench: --size: IRC lines hold at most "
		    "%d bytes of text\n", BENCH_IRC_TEXT_MAX);
		return (2);
	}

	/* Pinning, file limit, signals. */
	if (b.cpu >= 0) {
		CPU_ZERO(&set);
		CPU_SET(b.cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) == -1)
			fatal("sched_setaffinity %d", b.cpu);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	if ((b.ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		fatal("epoll_create1");

	b.start_ns = bench_now();
	b.nonce = (uint32_t)(b.start_ns ^ ((uint64_t)getpid() << 16));
	snprintf(b.noncestr, sizeof(b.noncestr), "%08" PRIx32, b.nonce);
	hist_init(&b.lat);
	hist_init(&b.acklat);
	hist_init(&b.pinglat);
	hist_init(&b.loginlat);
	bench_build();

	switch (b.mode) {
	case MODE_CONNS:
		logins_needed = (uint64_t)b.connections;
		break;
	case MODE_LOGINS:
		logins_needed = (uint64_t)b.pingers + 2 * (uint64_t)b.logins;
		break;
	default:
		logins_needed = (uint64_t)b.nconns;
	}
	if (b.timeout == 0) {
		b.timeout = b.duration + 30 + (double)(logins_needed *
		    (b.dialect == DIALECT_MYCHAT ? BENCH_LOGIN_NS :
		    BENCH_IRC_LOGIN_NS)) / (double)NS_PER_S;
	}
	b.hard_stop = b.start_ns + (uint64_t)(b.timeout * (double)NS_PER_S);

	printf("mychat-bench %s: dialect %s, server %s port %d, run %s\n",
	    mode, b.dialect == DIALECT_IRC ? "irc" : "mychat", b.host, b.port,
	    b.run);
	if (b.mode == MODE_RELAY || b.mode == MODE_FANIN)
		printf("%d %s, window %d, %d-byte texts, %.1f s\n", b.pairs,
		    b.mode == MODE_RELAY ? "pairs" : "senders to one receiver",
		    b.window, b.size, b.duration);
	else if (b.mode == MODE_CONNS)
		printf("%d idle connections held %.1f s\n", b.connections,
		    b.duration);
	else
		printf("%d logins while %d sessions PING\n", b.logins,
		    b.pingers);
	fflush(stdout);

	b.rss_before = bench_rss(b.server_pid);
	b.rss_after = -1;
	b.phase = PH_SETUP;
	bench_loop();
	if (b.setup_ns == 0)
		printf("setup: %d of %d connections logged in\n", b.ready,
		    b.setup_total);

	switch (b.mode) {
	case MODE_RELAY:
		rv = report_relay("relay");
		break;
	case MODE_FANIN:
		rv = report_relay("fanin");
		break;
	case MODE_CONNS:
		rv = report_conns();
		break;
	default:
		rv = report_logins();
		break;
	}
	if (b.verbose && b.unexpected > 0)
		fprintf(stderr, "%" PRIu64 " unexpected lines ignored\n",
		    b.unexpected);
	for (i = 0; i < b.nconns; i++)
		if (b.conns[i].fd != -1)
			close(b.conns[i].fd);
	fflush(stdout);
	return (rv);
}

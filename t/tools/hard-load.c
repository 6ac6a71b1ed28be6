/*
 * hard-load.c: concurrent senders for the kill -9 test of t/faults.bats.
 *
 *	hard-load -p PORT -P PREFIX -c SENDERS -n MSGS -o ACKFILE
 *	    [-w WINDOW] [-K ACKS -X PID]
 * opens SENDERS connections at once; sender i registers (or logs in as)
 * PREFIX_<i> with password "pw", says TO PREFIX_r and pipelines MSGS
 * messages, at most WINDOW (default 8) unanswered, each tagged
 * "@PREFIX-<i>-<seq>" with the text "s<i>-<seq>". Every 250 reply is
 * appended to ACKFILE at once, one write(2) per line: "<i> <seq> <id>".
 * With -K and -X it sends SIGKILL to PID as soon as ACKS replies were
 * recorded in all, while every sender still has messages in flight, then
 * waits for every connection to drop. A second run with the same PREFIX
 * resends the same tagged messages: one already stored is answered
 * "250 <id> already stored" and recorded as well. PREFIX_r must exist.
 *
 *	hard-load -p PORT -P PREFIX -c SENDERS -n MSGS -V ACKFILE
 * verifies: for each sender, SYNC lists what it sent; every "<i> <seq> <id>"
 * of ACKFILE must be there with that id and text, and no text may be
 * stored twice. Prints "acked A stored S missing M duplicated D
 * mismatched X" and exits 0 only when M, D and X are 0.
 *
 * Exit: 0 success, 1 failure (a refusal, a protocol error, a check that
 * failed), 2 usage. Only loopback (127.0.0.1) is used.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOAD_MAX_SENDERS	256
#define LOAD_BUF		(256 * 1024)
#define LOAD_TIMEOUT_MS		60000	/* no progress at all: give up */

enum load_state {
	L_GREET,	/* waiting for the greeting */
	L_REGISTER,	/* REGISTER sent */
	L_LOGIN,	/* LOGIN sent (the name was taken) */
	L_TO,		/* TO sent */
	L_SEND,		/* pipelining MSGs */
	L_SYNC,		/* verify: SYNC sent */
	L_DONE
};

struct load_conn {
	int		 fd;
	int		 idx;
	enum load_state	 state;
	char		*in;
	size_t		 inlen;
	char		*out;
	size_t		 outlen;
	int		 next_seq;	/* next MSG to send */
	int		 answered;	/* MSG replies received */
	uint64_t	 cursor;	/* verify: SYNC cursor */
	int		 more;
};

static const char	*prefix;
static int		 port, nsenders, nmsgs, window = 8;
static int		 ackfd = -1;
static long		 kill_after = -1;
static pid_t		 kill_pid = -1;
static long		 acks, killed;
static int		 failed;

/* verify: per sender, id stored for each seq (0: none) and a count */
static uint64_t		**seen_id;
static int		**seen_n;

static void
die(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	fprintf(stderr, "hard-load: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static void *
zalloc(size_t n)
{
	void	*p;

	if ((p = calloc(1, n)) == NULL)
		die("out of memory");
	return (p);
}

/* Queue bytes for the server. */
static void
load_out(struct load_conn *c, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(c->out + c->outlen, LOAD_BUF - c->outlen, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= LOAD_BUF - c->outlen)
		die("sender %d: output buffer full", c->idx);
	c->outlen += (size_t)n;
}

/* Connect to 127.0.0.1:port, non-blocking. */
static int
load_connect(void)
{
	struct sockaddr_in	sin;
	int			fd;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		die("socket: %s", strerror(errno));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		die("connect: %s", strerror(errno));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return (fd);
}

/* Queue MSGs up to the window. */
static void
load_fill(struct load_conn *c)
{
	while (c->next_seq <= nmsgs && c->next_seq - 1 - c->answered < window) {
		load_out(c, "@%s-%d-%d MSG s%d-%d\r\n", prefix, c->idx,
		    c->next_seq, c->idx, c->next_seq);
		c->next_seq++;
	}
}

/* Record one 250 in the ack file, one write per line. */
static void
load_record(struct load_conn *c, int seq, const char *line)
{
	char		buf[128];
	uint64_t	id;
	int		n;

	if (sscanf(line, "250 %" SCNu64, &id) != 1)
		die("sender %d: bad 250: %s", c->idx, line);
	n = snprintf(buf, sizeof(buf), "%d %d %" PRIu64 "\n", c->idx, seq, id);
	if (write(ackfd, buf, (size_t)n) != n)
		die("ack file: %s", strerror(errno));
	acks++;
	if (kill_after >= 0 && !killed && acks >= kill_after) {
		kill(kill_pid, SIGKILL);
		killed = 1;
		fprintf(stderr, "hard-load: SIGKILL sent to %ld after %ld "
		    "acks\n", (long)kill_pid, acks);
	}
}

/* verify: one "200-<id> <from> <to> <time> <text>" line of SYNC. */
static void
load_sync_line(struct load_conn *c, const char *line)
{
	char		from[64], to[64], tm[64], text[128], me[64];
	uint64_t	id;
	int		i, seq;

	if (sscanf(line, "200-%" SCNu64 " %63s %63s %63s %127s", &id, from,
	    to, tm, text) != 5)
		die("sender %d: bad SYNC line: %s", c->idx, line);
	snprintf(me, sizeof(me), "%s_%d", prefix, c->idx);
	if (strcmp(from, me) != 0)
		return;
	if (sscanf(text, "s%d-%d", &i, &seq) != 2 || i != c->idx || seq < 1 ||
	    seq > nmsgs) {
		fprintf(stderr, "sender %d: unexpected text %s\n", c->idx, text);
		failed = 1;
		return;
	}
	seen_n[i][seq]++;
	if (seen_id[i][seq] == 0)
		seen_id[i][seq] = id;
}

/* Handle one line from the server; 0 to go on, -1 when this sender is done. */
static int
load_line(struct load_conn *c, char *line)
{
	int	seq;

	if (line[0] >= 'A' && line[0] <= 'Z')
		return (0);	/* a push */
	switch (c->state) {
	case L_GREET:
		if (strncmp(line, "200 ", 4) != 0)
			die("sender %d: greeting: %s", c->idx, line);
		load_out(c, "REGISTER %s_%d pw\r\n", prefix, c->idx);
		c->state = L_REGISTER;
		return (0);
	case L_REGISTER:
		if (strncmp(line, "409 ", 4) == 0) {
			load_out(c, "LOGIN %s_%d pw\r\n", prefix, c->idx);
			c->state = L_LOGIN;
			return (0);
		}
		/* FALLTHROUGH */
	case L_LOGIN:
		if (strncmp(line, "201 ", 4) != 0 && strncmp(line, "200 ", 4))
			die("sender %d: login: %s", c->idx, line);
		if (seen_n != NULL) {
			load_out(c, "SYNC 0 1000\r\n");
			c->state = L_SYNC;
			return (0);
		}
		load_out(c, "TO %s_r\r\n", prefix);
		c->state = L_TO;
		return (0);
	case L_TO:
		if (strncmp(line, "200 ", 4) != 0 && strncmp(line, "503 ", 4))
			die("sender %d: TO: %s", c->idx, line);
		c->state = L_SEND;
		c->next_seq = 1;
		load_fill(c);
		return (0);
	case L_SEND:
		seq = ++c->answered;
		if (strncmp(line, "250 ", 4) != 0) {
			fprintf(stderr, "sender %d: MSG %d refused: %s\n",
			    c->idx, seq, line);
			failed = 1;
			return (-1);
		}
		load_record(c, seq, line);
		if (c->answered == nmsgs) {
			c->state = L_DONE;
			load_out(c, "QUIT\r\n");
			return (0);
		}
		load_fill(c);
		return (0);
	case L_SYNC:
		if (strncmp(line, "200-", 4) == 0) {
			load_sync_line(c, line);
			return (0);
		}
		if (sscanf(line, "200 %*d messages, cursor %" SCNu64,
		    &c->cursor) != 1)
			die("sender %d: SYNC: %s", c->idx, line);
		if (strstr(line, ", more") != NULL) {
			load_out(c, "SYNC %" PRIu64 " 1000\r\n", c->cursor);
			return (0);
		}
		c->state = L_DONE;
		load_out(c, "QUIT\r\n");
		return (0);
	case L_DONE:
		return (0);
	}
	return (0);
}

/* Read what arrived and handle each complete line; -1 when the peer closed. */
static int
load_read(struct load_conn *c)
{
	ssize_t	n;
	char	*nl, *line;
	size_t	 used;

	n = read(c->fd, c->in + c->inlen, LOAD_BUF - 1 - c->inlen);
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
		return (-1);
	if (n == -1)
		return (0);
	c->inlen += (size_t)n;
	c->in[c->inlen] = '\0';
	line = c->in;
	while ((nl = memchr(line, '\n', c->inlen - (size_t)(line - c->in)))
	    != NULL) {
		*nl = '\0';
		if (nl > line && nl[-1] == '\r')
			nl[-1] = '\0';
		if (load_line(c, line) == -1)
			return (-1);
		line = nl + 1;
	}
	used = (size_t)(line - c->in);
	memmove(c->in, line, c->inlen - used);
	c->inlen -= used;
	if (c->inlen == LOAD_BUF - 1)
		die("sender %d: line too long", c->idx);
	return (0);
}

/* Run every sender until each is done or its connection dropped. */
static void
load_run(void)
{
	struct load_conn	*c;
	struct pollfd		*pfd;
	ssize_t			 n;
	int			 i, open, r;

	c = zalloc(sizeof(*c) * (size_t)nsenders);
	pfd = zalloc(sizeof(*pfd) * (size_t)nsenders);
	for (i = 0; i < nsenders; i++) {
		c[i].idx = i;
		c[i].fd = load_connect();
		c[i].in = zalloc(LOAD_BUF);
		c[i].out = zalloc(LOAD_BUF);
	}
	for (;;) {
		open = 0;
		for (i = 0; i < nsenders; i++) {
			pfd[i].fd = c[i].fd;
			pfd[i].events = POLLIN | (c[i].outlen > 0 ? POLLOUT : 0);
			pfd[i].revents = 0;
			if (c[i].fd != -1)
				open++;
		}
		if (open == 0)
			break;
		if ((r = poll(pfd, (nfds_t)nsenders, LOAD_TIMEOUT_MS)) == -1) {
			if (errno == EINTR)
				continue;
			die("poll: %s", strerror(errno));
		}
		if (r == 0)
			die("no progress for %d s", LOAD_TIMEOUT_MS / 1000);
		for (i = 0; i < nsenders; i++) {
			if (c[i].fd == -1)
				continue;
			if (pfd[i].revents & POLLOUT) {
				n = write(c[i].fd, c[i].out, c[i].outlen);
				if (n > 0) {
					memmove(c[i].out, c[i].out + n,
					    c[i].outlen - (size_t)n);
					c[i].outlen -= (size_t)n;
				}
			}
			if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR) &&
			    load_read(&c[i]) == -1) {
				if (c[i].state != L_DONE && !killed) {
					fprintf(stderr, "sender %d: connection "
					    "dropped\n", i);
					failed = 1;
				}
				close(c[i].fd);
				c[i].fd = -1;
			}
		}
	}
	for (i = 0; i < nsenders; i++) {
		free(c[i].in);
		free(c[i].out);
	}
	free(c);
	free(pfd);
}

/* verify: compare what SYNC listed with the ack file. */
static int
load_verify(const char *path)
{
	FILE		*fp;
	uint64_t	 id;
	long		 nacked = 0, stored = 0, missing = 0, dup = 0, bad = 0;
	int		 i, seq;

	seen_id = zalloc(sizeof(*seen_id) * (size_t)nsenders);
	seen_n = zalloc(sizeof(*seen_n) * (size_t)nsenders);
	for (i = 0; i < nsenders; i++) {
		seen_id[i] = zalloc(sizeof(**seen_id) * (size_t)(nmsgs + 1));
		seen_n[i] = zalloc(sizeof(**seen_n) * (size_t)(nmsgs + 1));
	}
	load_run();
	for (i = 0; i < nsenders; i++)
		for (seq = 1; seq <= nmsgs; seq++) {
			if (seen_n[i][seq] > 0)
				stored++;
			if (seen_n[i][seq] > 1) {
				fprintf(stderr, "sender %d seq %d stored %d "
				    "times\n", i, seq, seen_n[i][seq]);
				dup++;
			}
		}
	if ((fp = fopen(path, "r")) == NULL)
		die("%s: %s", path, strerror(errno));
	while (fscanf(fp, "%d %d %" SCNu64, &i, &seq, &id) == 3) {
		if (i < 0 || i >= nsenders || seq < 1 || seq > nmsgs)
			die("%s: bad line", path);
		nacked++;
		if (seen_n[i][seq] == 0) {
			fprintf(stderr, "sender %d seq %d: acked as %" PRIu64
			    " but missing\n", i, seq, id);
			missing++;
		} else if (seen_id[i][seq] != id) {
			fprintf(stderr, "sender %d seq %d: acked as %" PRIu64
			    ", stored as %" PRIu64 "\n", i, seq, id,
			    seen_id[i][seq]);
			bad++;
		}
	}
	fclose(fp);
	printf("acked %ld stored %ld missing %ld duplicated %ld mismatched "
	    "%ld\n", nacked, stored, missing, dup, bad);
	return (missing == 0 && dup == 0 && bad == 0 && !failed ? 0 : 1);
}

static void
usage(void)
{
	fprintf(stderr, "usage: hard-load -p PORT -P PREFIX -c SENDERS -n MSGS "
	    "-o ACKFILE [-w WINDOW] [-K ACKS -X PID]\n"
	    "       hard-load -p PORT -P PREFIX -c SENDERS -n MSGS "
	    "-V ACKFILE\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	const char	*out = NULL, *verify = NULL;
	int		 ch;

	signal(SIGPIPE, SIG_IGN);
	while ((ch = getopt(argc, argv, "p:P:c:n:o:w:K:X:V:")) != -1) {
		switch (ch) {
		case 'p': port = atoi(optarg); break;
		case 'P': prefix = optarg; break;
		case 'c': nsenders = atoi(optarg); break;
		case 'n': nmsgs = atoi(optarg); break;
		case 'o': out = optarg; break;
		case 'w': window = atoi(optarg); break;
		case 'K': kill_after = atol(optarg); break;
		case 'X': kill_pid = (pid_t)atol(optarg); break;
		case 'V': verify = optarg; break;
		default: usage();
		}
	}
	if (port <= 0 || prefix == NULL || nsenders < 1 ||
	    nsenders > LOAD_MAX_SENDERS || nmsgs < 1 || window < 1 ||
	    (out == NULL) == (verify == NULL) ||
	    (kill_after >= 0) != (kill_pid > 0))
		usage();
	if (verify != NULL)
		return (load_verify(verify));
	if ((ackfd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0644)) == -1)
		die("%s: %s", out, strerror(errno));
	load_run();
	close(ackfd);
	if (kill_after >= 0 && !killed)
		die("only %ld acks, fewer than -K %ld", acks, kill_after);
	printf("acks %ld\n", acks);
	return (failed);
}

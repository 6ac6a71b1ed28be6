/*
 * fuzz_server.c: a libFuzzer harness over the real server: the line
 * framer (conn.c), the command parser and dispatcher (proto.c, cmd.c),
 * sessions, the commit group and the store, without listening sockets.
 *
 * One server is opened once (server_open, a temporary database, durability
 * nosync). Each input is a client's byte stream: it is fed over a
 * socketpair to a connection made by conn_new(), in a few writes split at
 * points derived from the input, then the client shuts down its side and
 * the loop runs until the server has answered everything and closed. An
 * input holding the line "#2" is two clients at once: the bytes after that
 * line are a second connection, so pushes (MSG, ACKED) cross sessions.
 *
 * An input that starts with "!" skips the password hash: its connections
 * are logged in at once as fzauto (and fzauto2), as cmd_login_done()
 * would after a good LOGIN, so that the commands after login run at full
 * speed (a LOGIN costs a 16 ms yescrypt hash); the "!" is not sent. A
 * crash found that way must be reproduced with a real LOGIN before it is
 * reported.
 *
 * Accounts and messages persist across inputs, as on a real server. The
 * address of a connection is 127.0.0.1 (exempt from the per-address
 * limits) for inputs of even length and 192.0.2.1 (limited) for odd ones.
 *
 * Built with clang -fsanitize=fuzzer,address,undefined by t/fuzz/run;
 * t/fuzz/replay.c calls the same entry point from a plain main() so that
 * "make check" replays the corpus under gcc.
 *
 * MYCHAT_FUZZ_DB=dir keeps the database there (default: a fresh temporary
 * directory removed at exit); MYCHAT_FUZZ_LOG=1 logs to stderr;
 * MYCHAT_FUZZ_ECHO=1 copies what the server sends to stderr.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mychat.h"
#include "passwd.h"
#include "xmalloc.h"

#define FUZZ_MAX_CONNS		2
#define FUZZ_SPLITS		4	/* writes per connection, at most */
#define FUZZ_BUDGET_SECS	10	/* then the client hangs up */
#define FUZZ_HANG_SECS		30	/* then the server is stuck: abort */
#define FUZZ_MAX_LINE		512	/* small, so 413 is reachable */
#define FUZZ_OUT_LIMIT		4096	/* small, so output pauses happen */

int	LLVMFuzzerInitialize(int *, char ***);
static void	fuzz_accounts(void);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* One simulated client: its end of the socketpair and what is left to send. */
struct fuzz_client {
	int		 fd;		/* -1 once closed */
	const uint8_t	*data;
	size_t		 len;
	size_t		 off;
	size_t		 cuts[FUZZ_SPLITS];	/* write boundaries */
	int		 ncuts;
	int		 cut;		/* next boundary */
	int		 shut;		/* SHUT_WR done */
	int		 eof;		/* the server closed */
};

static struct server	fuzz_srv;
static struct conf	fuzz_conf;
static char		fuzz_dir[64];
static int		fuzz_keep_dir;
static int		fuzz_echo;
static int		fuzz_ready;
static struct event	*fuzz_tick;

/* nftw callback: remove one entry of the temporary database. */
static int
fuzz_rm_cb(const char *path, const struct stat *st, int type, struct FTW *f)
{
	remove(path);
	return (0);
}

/* A persistent tick bounds each blocking loop pass. */
static void
fuzz_tick_cb(evutil_socket_t fd, short what, void *arg)
{
}

/* At exit: close the server cleanly and remove its temporary database. */
static void
fuzz_atexit(void)
{
	if (!fuzz_ready)
		return;
	fuzz_ready = 0;
	event_free(fuzz_tick);
	server_close(&fuzz_srv);
	event_base_free(fuzz_srv.base);
	conf_free(&fuzz_conf);
	if (!fuzz_keep_dir)
		nftw(fuzz_dir, fuzz_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Open the one server every input talks to. */
static void
fuzz_init(void)
{
	const char	*dir = getenv("MYCHAT_FUZZ_DB");
	struct timeval	 tick = { 0, 20000 };
	char		 err[512];

	if (fuzz_ready)
		return;
	signal(SIGPIPE, SIG_IGN);
	fuzz_echo = getenv("MYCHAT_FUZZ_ECHO") != NULL;
	log_init("fuzz", 1, LOG_DAEMON);	/* format debug lines too */
	if (getenv("MYCHAT_FUZZ_LOG") == NULL &&
	    log_open(LOG_TO_FILE, "/dev/null", LOG_DAEMON) == -1)
		fatal("/dev/null");

	conf_defaults(&fuzz_conf);
	if (dir != NULL) {
		snprintf(fuzz_dir, sizeof(fuzz_dir), "%s", dir);
		mkdir(fuzz_dir, 0700);
		fuzz_keep_dir = 1;
	} else {
		snprintf(fuzz_dir, sizeof(fuzz_dir), "/tmp/mychat-fuzz.XXXXXX");
		if (mkdtemp(fuzz_dir) == NULL)
			fatal("mkdtemp");
	}
	free(fuzz_conf.dbdir);
	fuzz_conf.dbdir = xstrdup(fuzz_dir);
	fuzz_conf.durability = DURABLE_NOSYNC;
	fuzz_conf.max_line = FUZZ_MAX_LINE;
	fuzz_conf.out_limit = FUZZ_OUT_LIMIT;
	fuzz_conf.admins[0] = xstrdup("fzadmin");
	fuzz_conf.nadmins = 1;

	memset(&fuzz_srv, 0, sizeof(fuzz_srv));
	fuzz_srv.conf = &fuzz_conf;
	if ((fuzz_srv.base = event_base_new()) == NULL)
		fatalx("event_base_new");
	if (server_open(&fuzz_srv, err, sizeof(err)) == -1)
		fatalx("server_open: %s", err);
	fuzz_tick = event_new(fuzz_srv.base, -1, EV_PERSIST, fuzz_tick_cb,
	    NULL);
	event_add(fuzz_tick, &tick);
	fuzz_accounts();
	fuzz_ready = 1;
	atexit(fuzz_atexit);
}

/* Make sure the accounts of "!" inputs exist. */
static void
fuzz_accounts(void)
{
	static const char	*names[] = { "fzauto", "fzauto2" };
	struct store_user	 u;
	size_t			 i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (store_user_get(fuzz_srv.store, names[i], &u) == 1)
			continue;
		memset(&u, 0, sizeof(u));
		snprintf(u.name, sizeof(u.name), "%s", names[i]);
		if (passwd_hash("pw", u.hash, sizeof(u.hash)) == -1)
			fatalx("passwd_hash");
		u.created_ms = u.last_login_ms = proto_now_ms();
		snprintf(u.last_ip, sizeof(u.last_ip), "127.0.0.1");
		if (store_user_add(fuzz_srv.store, &u) != 1 ||
		    store_commit(fuzz_srv.store) == -1)
			fatalx("cannot add account %s", names[i]);
	}
}

/* Log connection c in as name, the way a good LOGIN does. */
static void
fuzz_autologin(struct conn *c, const char *name)
{
	uint64_t	cursor = 0;

	if (store_ack_get(fuzz_srv.store, name, &cursor) == -1)
		fatalx("store_ack_get");
	session_login(c, name);
	c->push_cursor = cursor;
	c->caught_up = 0;
	session_pump(c);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_init();
	return (0);
}

/* FNV-1a over the input: a deterministic source of split points. */
static uint64_t
fuzz_hash(const uint8_t *p, size_t len)
{
	uint64_t	h = 1469598103934665603ULL;
	size_t		i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return (h);
}

/* Choose up to FUZZ_SPLITS write boundaries, increasing, ending at len. */
static void
fuzz_cuts(struct fuzz_client *fc, uint64_t h)
{
	size_t	prev = 0, at;
	int	i, n = (int)(h % FUZZ_SPLITS);

	fc->ncuts = 0;
	for (i = 0; i < n && fc->len > 0; i++) {
		h = h * 6364136223846793005ULL + 1442695040888963407ULL;
		at = (size_t)((h >> 33) % fc->len);
		if (at > prev) {
			fc->cuts[fc->ncuts++] = at;
			prev = at;
		}
	}
	fc->cuts[fc->ncuts++] = fc->len;
}

/* Read and discard what the server sent; note when it closed. */
static void
fuzz_drain(struct fuzz_client *fc)
{
	char	buf[16384];
	ssize_t	n;

	while (fc->fd != -1 && !fc->eof) {
		n = read(fc->fd, buf, sizeof(buf));
		if (n > 0) {
			if (fuzz_echo)
				fwrite(buf, 1, (size_t)n, stderr);
			continue;
		}
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		fc->eof = 1;	/* EOF or ECONNRESET: the server is done */
	}
}

/* Send the next chunk, up to the next boundary, as far as the socket takes. */
static void
fuzz_send(struct fuzz_client *fc)
{
	ssize_t	n;
	size_t	end;

	while (fc->fd != -1 && !fc->shut) {
		if (fc->off >= fc->len) {
			shutdown(fc->fd, SHUT_WR);
			fc->shut = 1;
			return;
		}
		end = fc->cuts[fc->cut];
		n = send(fc->fd, fc->data + fc->off, end - fc->off,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			fc->shut = 1;	/* the server closed first */
			return;
		}
		fc->off += (size_t)n;
		if (fc->off == end) {
			if (fc->cut < fc->ncuts - 1)
				fc->cut++;
			return;	/* one chunk per loop pass */
		}
	}
}

/* Seconds since start, monotonic. */
static double
fuzz_elapsed(const struct timespec *start)
{
	struct timespec	now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return ((double)(now.tv_sec - start->tv_sec) +
	    (double)(now.tv_nsec - start->tv_nsec) / 1e9);
}

/* A connection from a fake address on one end of a new socketpair. */
static struct conn *
fuzz_connect(struct fuzz_client *fc, int limited)
{
	struct conn		*c;
	struct sockaddr_in	sin;
	int			sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		fatal("socketpair");
	evutil_make_socket_nonblocking(sv[0]);
	evutil_make_socket_nonblocking(sv[1]);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(40000);
	inet_pton(AF_INET, limited ? "192.0.2.1" : "127.0.0.1", &sin.sin_addr);
	if ((c = conn_new(&fuzz_srv, sv[0], (struct sockaddr *)&sin, 0)) ==
	    NULL) {
		close(sv[1]);
		return (NULL);
	}
	fc->fd = sv[1];
	return (c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_client	 fc[FUZZ_MAX_CONNS];
	struct timespec		 start;
	const uint8_t		*sep;
	uint64_t		 h;
	struct conn		*c;
	int			 i, n = 1, busy, hungup = 0, autologin = 0;

	fuzz_init();
	if (size > 0 && data[0] == '!') {
		autologin = 1;
		data++;
		size--;
	}
	memset(fc, 0, sizeof(fc));
	fc[0].data = data;
	fc[0].len = size;
	sep = size >= 4 ? memmem(data, size, "\n#2\n", 4) : NULL;
	if (sep != NULL) {
		fc[0].len = (size_t)(sep - data) + 1;
		fc[1].data = sep + 4;
		fc[1].len = size - fc[0].len - 3;
		n = 2;
	}
	h = fuzz_hash(data, size);
	for (i = 0; i < n; i++) {
		fc[i].fd = -1;
		fuzz_cuts(&fc[i], h >> (i * 7));
		if ((c = fuzz_connect(&fc[i], size % 2)) == NULL)
			fc[i].eof = 1;
		else if (autologin)
			fuzz_autologin(c, i == 0 ? "fzauto" : "fzauto2");
	}

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		busy = 0;
		for (i = 0; i < n; i++) {
			fuzz_send(&fc[i]);
			fuzz_drain(&fc[i]);
			if (fc[i].fd != -1 && !fc[i].eof)
				busy = 1;
		}
		if (!busy && fuzz_srv.nconns == 0 &&
		    !group_pending(&fuzz_srv))
			break;
		/* waits at most one tick (a hash on a worker) */
		event_base_loop(fuzz_srv.base, EVLOOP_ONCE);
		if (!hungup && fuzz_elapsed(&start) > FUZZ_BUDGET_SECS) {
			/* too slow (many hashes): hang up, as a client would */
			for (i = 0; i < n; i++)
				if (fc[i].fd != -1) {
					close(fc[i].fd);
					fc[i].fd = -1;
				}
			hungup = 1;
		}
		if (fuzz_elapsed(&start) > FUZZ_BUDGET_SECS + FUZZ_HANG_SECS) {
			fprintf(stderr, "fuzz: the server did not close the "
			    "connection(s) within %d s of the client's EOF "
			    "(%u open)\n", FUZZ_HANG_SECS, fuzz_srv.nconns);
			abort();
		}
	}
	for (i = 0; i < n; i++)
		if (fc[i].fd != -1)
			close(fc[i].fd);
	if (getenv("MYCHAT_FUZZ_TIME") != NULL)
		fprintf(stderr, "fuzz: %zu bytes in %.3f s\n", size,
		    fuzz_elapsed(&start));
	return (0);
}

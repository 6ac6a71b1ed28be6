/*
 * sender.c: a test client for the mychat bats tests (t/durability.bats,
 * t/slowreader.bats). It speaks the protocol of doc/protocol.md over a
 * plain socket, so the tests need no python and no byte-by-byte bash reads.
 *
 * Send mode (default):
 *	sender -p PORT -u NAME -w PASS -t PEER [-n N] [-W WINDOW] [-s SIZE]
 *	    [-k TOKENPREFIX] [-f FIRST] [-o IDFILE] [-K COUNT -X PID]
 * logs in, says TO PEER, then pipelines up to WINDOW messages at a time,
 * message seq = FIRST .. FIRST+N-1 with the text "m<seq, 6 digits>-"
 * filled with "x" up to SIZE bytes, tagged "@<TOKENPREFIX>-<seq>" when -k
 * is given. Every 250 reply is appended to IDFILE at once (one write(2)
 * per line) as "<seq> <id> <rest of the reply>". With -K and -X it sends
 * SIGKILL to process PID right after the COUNT-th 250 was recorded, while
 * the rest of the window is still in flight (the crash test). It stops
 * after N replies or when the server closes the connection.
 * Exit: 0 every message got a 250; 2 the connection dropped first;
 * 1 any other reply to a MSG (a refusal) or an error.
 *
 * History mode (-H PEER):
 *	sender -H PEER -p PORT -u NAME -w PASS [-o FILE]
 * logs in and pages "HISTORY PEER 500 [before-id]" back to the start,
 * writing the whole conversation oldest first to FILE (or stdout), one
 * "<id> <from> <to> <time> <text>" line per message.
 *
 * Receive mode (-r):
 *	sender -r -p PORT -u NAME -w PASS -n N [-R READYFILE] [-S] [-a]
 *	    [-o IDFILE] [-T SECONDS]
 * logs in (the welcome line goes to READYFILE, written once logged in),
 * (-n 0: as many as the welcome line says are waiting),
 * then with -S waits for SIGUSR1 before reading anything (a recipient that
 * does not read), then reads until N pushes "MSG <id> ..." have arrived,
 * appending "<id> <seq>" per push to IDFILE (seq from an "m<seq>-" text,
 * 0 otherwise). Ids must increase strictly. With -a it then ACKs the last
 * id and waits for the 200. Exit 0 on success, 1 on a failure, 3 on the
 * -T timeout (default 60 s).
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
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

#define LINE_MAX_BYTES	(1024 * 1024)

struct io {
	int		 fd;
	char		*in;		/* received bytes not yet consumed */
	size_t		 inlen;
	size_t		 insize;
	char		*out;		/* bytes not yet sent */
	size_t		 outoff;
	size_t		 outlen;
	size_t		 outsize;
	int		 eof;
	int64_t		 deadline_ms;
};

static const char	*progname = "sender";

/* Print an error and exit with status st. */
static void __attribute__((__noreturn__, __format__(__printf__, 2, 3)))
die(int st, const char *fmt, ...)
{
	va_list	ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(st);
}

/* Milliseconds on the monotonic clock. */
static int64_t
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* realloc or die. */
static void *
xrealloc_or_die(void *p, size_t n)
{
	if ((p = realloc(p, n)) == NULL)
		die(1, "out of memory");
	return (p);
}

/* Close the connection and free its buffers (LeakSanitizer in ASan builds). */
static void
io_free(struct io *io)
{
	close(io->fd);
	free(io->in);
	free(io->out);
	io->in = io->out = NULL;
}

/* Connect to 127.0.0.1 (or host) port. */
static int
io_connect(struct io *io, const char *host, int port)
{
	struct sockaddr_in	sin;
	int			fd;

	memset(io, 0, sizeof(*io));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		die(1, "%s: not a numeric IPv4 address", host);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		die(1, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		die(1, "connect %s port %d: %s", host, port, strerror(errno));
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == -1)
		die(1, "fcntl: %s", strerror(errno));
	io->fd = fd;
	io->insize = 65536;
	io->in = xrealloc_or_die(NULL, io->insize);
	io->deadline_ms = INT64_MAX;
	return (fd);
}

/* Queue bytes for sending. */
static void
io_queue(struct io *io, const char *p, size_t n)
{
	if (io->outoff > 0 && io->outoff == io->outlen)
		io->outoff = io->outlen = 0;
	if (io->outlen + n > io->outsize) {
		io->outsize = (io->outlen + n) * 2;
		io->out = xrealloc_or_die(io->out, io->outsize);
	}
	memcpy(io->out + io->outlen, p, n);
	io->outlen += n;
}

/* Queue a formatted line with CRLF. */
static void __attribute__((__format__(__printf__, 2, 3)))
io_printf(struct io *io, const char *fmt, ...)
{
	char	buf[1024];
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf) - 2)
		die(1, "line too long");
	buf[n++] = '\r';
	buf[n++] = '\n';
	io_queue(io, buf, (size_t)n);
}

/*
 * One round of I/O: wait (up to the deadline) until the socket is readable
 * or, with pending output and want_write, writable; read and write what
 * can be. Returns 0, or -1 on the deadline.
 */
static int
io_pump(struct io *io, int want_write)
{
	struct pollfd	pfd;
	int64_t		left;
	ssize_t		n;
	int		r;

	pfd.fd = io->fd;
	pfd.events = io->eof ? 0 : POLLIN;
	if (want_write && io->outoff < io->outlen)
		pfd.events |= POLLOUT;
	left = io->deadline_ms - now_ms();
	if (left <= 0)
		return (-1);
	if (left > 1000)
		left = 1000;
	if ((r = poll(&pfd, 1, (int)left)) == -1) {
		if (errno == EINTR)
			return (0);
		die(1, "poll: %s", strerror(errno));
	}
	if (r == 0)
		return (0);
	if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
		if (io->insize - io->inlen < 65536) {
			if (io->insize > LINE_MAX_BYTES * 4)
				die(1, "a line from the server is too long");
			io->insize *= 2;
			io->in = xrealloc_or_die(io->in, io->insize);
		}
		n = read(io->fd, io->in + io->inlen, io->insize - io->inlen);
		if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
			io->eof = 1;
		else if (n > 0)
			io->inlen += (size_t)n;
	}
	if ((pfd.revents & POLLOUT) && io->outoff < io->outlen) {
		n = write(io->fd, io->out + io->outoff, io->outlen - io->outoff);
		if (n > 0)
			io->outoff += (size_t)n;
		else if (n == -1 && errno != EAGAIN && errno != EINTR)
			io->eof = 1;
	}
	return (0);
}

/*
 * Take the next complete line (CRLF stripped, NUL-terminated) into *line
 * (a malloc'd copy). 1: a line; 0: none buffered yet.
 */
static int
io_getline(struct io *io, char **line)
{
	char	*nl;
	size_t	 n;

	if (io->inlen == 0 ||
	    (nl = memchr(io->in, '\n', io->inlen)) == NULL)
		return (0);
	n = (size_t)(nl - io->in);
	*line = xrealloc_or_die(*line, n + 1);
	memcpy(*line, io->in, n);
	if (n > 0 && (*line)[n - 1] == '\r')
		n--;
	(*line)[n] = '\0';
	n = (size_t)(nl - io->in) + 1;
	memmove(io->in, io->in + n, io->inlen - n);
	io->inlen -= n;
	return (1);
}

/*
 * Read lines until a reply (a line starting with a digit) arrives; pushes
 * are skipped. Returns its code, or -1 on EOF or the deadline.
 */
static int
io_reply(struct io *io, char **line)
{
	for (;;) {
		while (io_getline(io, line)) {
			if ((*line)[0] >= '0' && (*line)[0] <= '9')
				return (atoi(*line));
		}
		if (io->eof)
			return (-1);
		if (io_pump(io, 1) == -1)
			return (-1);
	}
}

/* Append one line to fd with a single write(2). */
static void __attribute__((__format__(__printf__, 2, 3)))
record(int fd, const char *fmt, ...)
{
	char	buf[512];
	va_list	ap;
	int	n;

	if (fd == -1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		die(1, "record too long");
	if (write(fd, buf, (size_t)n) != n)
		die(1, "write: %s", strerror(errno));
}

/* Greeting, then LOGIN; dies unless both are 200. Returns N waiting. */
static long
login(struct io *io, const char *user, const char *pass, int readyfd)
{
	char	*line = NULL, *p;
	long	 waiting = -1;
	int	 code;

	if ((code = io_reply(io, &line)) != 200)
		die(1, "greeting: %s", code == -1 ? "(none)" : line);
	io_printf(io, "LOGIN %s %s", user, pass);
	if ((code = io_reply(io, &line)) != 200)
		die(1, "LOGIN %s: %s", user, code == -1 ? "(none)" : line);
	if (readyfd != -1)
		record(readyfd, "%s\n", line);
	if ((p = strstr(line, ", ")) != NULL)
		waiting = strtol(p + 2, NULL, 10);
	free(line);
	return (waiting);
}

static int
open_out(const char *path)
{
	int	fd;

	if (path == NULL)
		return (-1);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644)) == -1)
		die(1, "%s: %s", path, strerror(errno));
	return (fd);
}

/* Send mode; see the top of the file. */
static int
run_send(struct io *io, const char *peer, long n, long window, long size,
    const char *tokpfx, long first, int idfd, long killcount, pid_t killpid)
{
	char	*line = NULL, *text, tag[128], *ep;
	long	 sent = 0, answered = 0, stored = 0, refused = 0, seq;
	uint64_t id;
	int	 code;

	io_printf(io, "TO %s", peer);
	if ((code = io_reply(io, &line)) != 200 && code != 503)
		die(1, "TO %s: %s", peer, code == -1 ? "(none)" : line);
	if (size < 8)
		size = 8;
	text = xrealloc_or_die(NULL, (size_t)size + 1);
	while (answered < n) {
		while (sent < n && sent - answered < window) {
			seq = first + sent;
			snprintf(text, (size_t)size + 1, "m%06ld-", seq);
			memset(text + strlen(text), 'x',
			    (size_t)size - strlen(text));
			text[size] = '\0';
			tag[0] = '\0';
			if (tokpfx != NULL)
				snprintf(tag, sizeof(tag), "@%s-%ld ", tokpfx,
				    seq);
			io_queue(io, tag, strlen(tag));
			io_queue(io, "MSG ", 4);
			io_queue(io, text, (size_t)size);
			io_queue(io, "\r\n", 2);
			sent++;
		}
		while (answered < n && io_getline(io, &line)) {
			if (!(line[0] >= '0' && line[0] <= '9'))
				continue;	/* a push */
			seq = first + answered;
			answered++;
			code = atoi(line);
			if (code != 250) {
				fprintf(stderr, "%s: MSG m%06ld: %s\n",
				    progname, seq, line);
				refused++;
				continue;
			}
			errno = 0;
			id = strtoull(line + 4, &ep, 10);
			if (errno != 0 || ep == line + 4 || *ep != ' ')
				die(1, "bad 250 reply: %s", line);
			record(idfd, "%ld %" PRIu64 " %s\n", seq, id, ep + 1);
			stored++;
			if (killpid > 0 && stored == killcount) {
				fprintf(stderr, "%s: kill -9 %ld after %ld "
				    "stored, %ld in flight\n", progname,
				    (long)killpid, stored, sent - answered);
				kill(killpid, SIGKILL);
			}
		}
		if (answered >= n)
			break;
		if (sent < n && sent - answered < window)
			continue;	/* room in the window: send first */
		if (io->eof) {
			fprintf(stderr, "%s: connection closed after %ld "
			    "sent, %ld stored, %ld refused\n", progname, sent,
			    stored, refused);
			free(text);
			free(line);
			return (refused > 0 ? 1 : 2);
		}
		if (io_pump(io, 1) == -1)
			die(1, "timeout after %ld sent, %ld stored", sent,
			    stored);
	}
	free(text);
	free(line);
	fprintf(stderr, "%s: %ld sent, %ld stored, %ld refused\n", progname,
	    sent, stored, refused);
	return (refused > 0 ? 1 : 0);
}

/* Receive mode; see the top of the file. */
static int
run_recv(struct io *io, long n, int idfd, int ack)
{
	char		*line = NULL, *p, *ep;
	uint64_t	 id, last = 0;
	long		 got = 0, seq;
	int		 code;

	while (got < n) {
		while (got < n && io_getline(io, &line)) {
			if (strncmp(line, "MSG ", 4) != 0)
				continue;
			errno = 0;
			id = strtoull(line + 4, &ep, 10);
			if (errno != 0 || ep == line + 4 || *ep != ' ')
				die(1, "bad push: %.80s", line);
			if (id <= last)
				die(1, "push %" PRIu64 " after %" PRIu64
				    " (not in id order)", id, last);
			last = id;
			/* MSG id from time text: the text is the 4th field */
			p = ep + 1;
			if ((p = strchr(p, ' ')) == NULL ||
			    (p = strchr(p + 1, ' ')) == NULL)
				die(1, "bad push: %.80s", line);
			seq = 0;
			if (p[1] == 'm')
				seq = strtol(p + 2, NULL, 10);
			record(idfd, "%" PRIu64 " %ld\n", id, seq);
			got++;
		}
		if (got >= n)
			break;
		if (io->eof)
			die(1, "connection closed after %ld pushes", got);
		if (io_pump(io, 1) == -1) {
			fprintf(stderr, "%s: timeout after %ld of %ld pushes\n",
			    progname, got, n);
			exit(3);
		}
	}
	if (ack && last > 0) {
		io_printf(io, "ACK %" PRIu64, last);
		if ((code = io_reply(io, &line)) != 200)
			die(1, "ACK %" PRIu64 ": %s", last,
			    code == -1 ? "(none)" : line);
	}
	fprintf(stderr, "%s: %ld pushes, last id %" PRIu64 "\n", progname, got,
	    last);
	free(line);
	return (0);
}

/* History mode: page HISTORY peer backwards, write it oldest first. */
static int
run_history(struct io *io, const char *peer, FILE *out)
{
	char	*line = NULL, **lines = NULL, *p, before[32] = "";
	size_t	 n = 0, cap = 0, pagestart, i, j;
	int	 code, more;

	do {
		io_printf(io, "HISTORY %s 500%s%s", peer, before[0] ? " " : "",
		    before);
		pagestart = n;
		for (;;) {
			if ((code = io_reply(io, &line)) != 200)
				die(1, "HISTORY %s: %s", peer,
				    code == -1 ? "(none)" : line);
			if (line[3] != '-')
				break;
			if (n == cap) {
				cap = cap ? cap * 2 : 1024;
				lines = xrealloc_or_die(lines,
				    cap * sizeof(*lines));
			}
			if ((lines[n++] = strdup(line + 4)) == NULL)
				die(1, "out of memory");
		}
		/* This page is older than everything before it: rotate. */
		for (i = pagestart, j = 0; i < n; i++, j++) {
			p = lines[i];
			memmove(lines + j + 1, lines + j,
			    (i - j) * sizeof(*lines));
			lines[j] = p;
		}
		more = (p = strstr(line, ", more before ")) != NULL;
		if (more)
			snprintf(before, sizeof(before), "%s",
			    p + strlen(", more before "));
	} while (more);
	for (i = 0; i < n; i++) {
		fprintf(out, "%s\n", lines[i]);
		free(lines[i]);
	}
	fflush(out);
	free(lines);
	free(line);
	fprintf(stderr, "%s: HISTORY %s: %zu messages\n", progname, peer, n);
	return (0);
}

static void
usage(void)
{
	fprintf(stderr, "usage: sender -p port -u name -w password -t peer "
	    "[-n count] [-W window] [-s size]\n"
	    "              [-k tokenprefix] [-f first] [-o idfile] "
	    "[-K count -X pid] [-T seconds]\n"
	    "       sender -r -p port -u name -w password -n count "
	    "[-R readyfile] [-S] [-a] [-o idfile] [-T seconds]\n"
	    "       sender -H peer -p port -u name -w password [-o file]\n");
	exit(1);
}

int
main(int argc, char *argv[])
{
	struct io	 io;
	const char	*host = "127.0.0.1", *user = NULL, *pass = NULL;
	const char	*peer = NULL, *tokpfx = NULL, *idpath = NULL;
	const char	*readypath = NULL, *histpeer = NULL;
	FILE		*hf;
	long		 waiting;
	long		 n = 1000, window = 16, size = 32, first = 1;
	long		 killcount = 0, timeout = 60;
	pid_t		 killpid = 0;
	sigset_t	 set;
	struct timespec	 ts;
	int		 ch, port = 0, recv_mode = 0, wait_sig = 0, ack = 0;
	int		 idfd, readyfd, st;

	while ((ch = getopt(argc, argv, "aH:h:K:k:f:n:o:p:R:rSs:T:t:u:W:w:X:"))
	    != -1) {
		switch (ch) {
		case 'a': ack = 1; break;
		case 'H': histpeer = optarg; break;
		case 'h': host = optarg; break;
		case 'K': killcount = atol(optarg); break;
		case 'k': tokpfx = optarg; break;
		case 'f': first = atol(optarg); break;
		case 'n': n = atol(optarg); break;
		case 'o': idpath = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'R': readypath = optarg; break;
		case 'r': recv_mode = 1; break;
		case 'S': wait_sig = 1; break;
		case 's': size = atol(optarg); break;
		case 'T': timeout = atol(optarg); break;
		case 't': peer = optarg; break;
		case 'u': user = optarg; break;
		case 'W': window = atol(optarg); break;
		case 'w': pass = optarg; break;
		case 'X': killpid = (pid_t)atol(optarg); break;
		default: usage();
		}
	}
	if (port <= 0 || user == NULL || pass == NULL || n < 0 ||
	    window < 1 || size > LINE_MAX_BYTES || timeout < 1 ||
	    (!recv_mode && histpeer == NULL && peer == NULL))
		usage();
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);

	readyfd = open_out(readypath);
	io_connect(&io, host, port);
	io.deadline_ms = now_ms() + timeout * 1000;
	if (histpeer != NULL) {
		if (idpath == NULL)
			hf = stdout;
		else if ((hf = fopen(idpath, "w")) == NULL)
			die(1, "%s: %s", idpath, strerror(errno));
		login(&io, user, pass, readyfd);
		st = run_history(&io, histpeer, hf);
		io_free(&io);
		return (st);
	}
	idfd = open_out(idpath);
	waiting = login(&io, user, pass, readyfd);
	if (recv_mode && n == 0) {
		if (waiting < 0)
			die(1, "no waiting count in the welcome line");
		n = waiting;
	}
	if (recv_mode) {
		if (wait_sig) {
			/* Hold the socket without reading until SIGUSR1. */
			ts.tv_sec = timeout;
			ts.tv_nsec = 0;
			if (sigtimedwait(&set, NULL, &ts) == -1)
				die(3, "no SIGUSR1 within %ld s", timeout);
			io.deadline_ms = now_ms() + timeout * 1000;
		}
		st = run_recv(&io, n, idfd, ack);
	} else
		st = run_send(&io, peer, n, window, size, tokpfx, first, idfd,
		    killcount, killpid);
	io_free(&io);
	return (st);
}

/*
 * hard-rst.c: misbehaving clients for t/hardening.bats.
 *
 *	hard-rst rst PORT TEXT
 * connects to 127.0.0.1:PORT, reads the greeting, sends TEXT (no line
 * end: a command cut in the middle) and closes with SO_LINGER 0, so the
 * kernel sends a TCP RST instead of a FIN.
 *
 *	hard-rst noread PORT
 * connects and never reads: it writes "HELP\r\n" (each answered with a
 * long reply) until the socket has not accepted a byte for 2 s, i.e. the
 * server stopped reading, then prints "blocked after N bytes" and sleeps
 * until killed.
 *
 *	hard-rst authflood PORT NAME PASSWORD QUEUE
 * the same, after "LOGIN NAME PASSWORD\r\n", with "PING\r\n" lines: what
 * a client pipelines while its password hashes. QUEUE other connections
 * send the same LOGIN first, all at once, so that the hash waits its turn.
 *
 *	hard-rst rate PORT RATE SECONDS
 * sends "PING <n>" at RATE commands per second (a batch every 10 ms, on a
 * fixed schedule: a late batch catches up) for SECONDS, reading the
 * replies meanwhile; then waits for every reply and prints
 * "sent N pong P other O in T s". Exit 0 when every reply is
 * "200 PONG <n>" in order.
 *
 *	hard-rst trickle PORT TEXT
 * sends TEXT one byte per second, reading what the server sends
 * meanwhile, until the server closes; prints every line received and then
 * "closed after N bytes sent". Exit 1 if TEXT was sent in full first.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void
die(const char *what)
{
	fprintf(stderr, "hard-rst: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int
rst_connect(int port)
{
	struct sockaddr_in	sin;
	int			fd;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		die("socket");
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		die("connect");
	return (fd);
}

/* Read up to a newline (the greeting). */
static void
rst_greeting(int fd)
{
	char	ch;

	for (;;) {
		if (read(fd, &ch, 1) != 1)
			die("reading the greeting");
		if (ch == '\n')
			return;
	}
}

static int
rst_rst(int port, const char *text)
{
	struct linger	lg = { 1, 0 };
	int		fd = rst_connect(port);

	rst_greeting(fd);
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		die("write");
	if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == -1)
		die("SO_LINGER");
	close(fd);	/* RST */
	printf("reset after %zu bytes\n", strlen(text));
	return (0);
}

static int
rst_noread(int port, const char *first, const char *line)
{
	static char		chunk[65536];
	struct pollfd		pfd;
	size_t			sent = 0, len = 0, pos = 0, ll = strlen(line);
	ssize_t			n;
	int			fd = rst_connect(port);

	/* whole lines, 64 KiB at a time: as fast as the server takes them */
	while (len + ll <= sizeof(chunk)) {
		memcpy(chunk + len, line, ll);
		len += ll;
	}
	if (first != NULL) {
		if (write(fd, first, strlen(first)) != (ssize_t)strlen(first))
			die("write");
		sent = strlen(first);
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	for (;;) {
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, 2000) == 0)
			break;		/* 2 s without room: not reading */
		n = write(fd, chunk + pos, len - pos);
		if (n == -1 && errno != EAGAIN)
			die("write");
		if (n > 0) {
			sent += (size_t)n;
			pos = (pos + (size_t)n) % len;
		}
	}
	printf("blocked after %zu bytes\n", sent);
	fflush(stdout);
	for (;;)
		pause();
	return (0);
}

static int
rst_trickle(int port, const char *text)
{
	struct pollfd	pfd;
	struct timespec	next, now;
	char		buf[4096];
	size_t		sent = 0, len = strlen(text);
	ssize_t		n;
	int		fd = rst_connect(port), ms;

	clock_gettime(CLOCK_MONOTONIC, &next);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (int)((next.tv_sec - now.tv_sec) * 1000 +
		    (next.tv_nsec - now.tv_nsec) / 1000000);
		if (ms <= 0) {
			if (sent == len) {
				printf("sent everything, still open\n");
				return (1);
			}
			if (write(fd, text + sent, 1) == 1)
				sent++;
			next.tv_sec += 1;
			continue;
		}
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, ms) <= 0)
			continue;
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		fwrite(buf, 1, (size_t)n, stdout);
		fflush(stdout);
	}
	printf("closed after %zu bytes sent\n", sent);
	return (0);
}

/* Milliseconds since t0. */
static long
rst_ms(const struct timespec *t0)
{
	struct timespec	now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return ((now.tv_sec - t0->tv_sec) * 1000 +
	    (now.tv_nsec - t0->tv_nsec) / 1000000);
}

static int
rst_rate(int port, long rate, long secs)
{
	struct timespec	 t0;
	struct pollfd	 pfd;
	static char	 in[65536];
	char		 out[65536], want[64];
	size_t		 inlen = 0, outlen = 0, used;
	long		 total = rate * secs, sent = 0, got = 0, pong = 0;
	long		 other = 0, due, ms;
	ssize_t		 n;
	char		*nl, *line;
	int		 fd = rst_connect(port), greeted = 0;

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (got < total) {
		ms = rst_ms(&t0);
		due = rate * ms / 1000 + rate / 100;
		if (due > total)
			due = total;
		while (sent < due && outlen < sizeof(out) - 32)
			outlen += (size_t)snprintf(out + outlen,
			    sizeof(out) - outlen, "PING %ld\r\n", ++sent);
		if (outlen > 0) {
			n = write(fd, out, outlen);
			if (n > 0) {
				memmove(out, out + n, outlen - (size_t)n);
				outlen -= (size_t)n;
			} else if (n == -1 && errno != EAGAIN)
				die("write");
		}
		pfd.fd = fd;
		pfd.events = POLLIN | (outlen > 0 ? POLLOUT : 0);
		if (poll(&pfd, 1, 10) <= 0)
			continue;
		if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = read(fd, in + inlen, sizeof(in) - 1 - inlen);
		if (n == 0)
			break;
		if (n == -1) {
			if (errno == EAGAIN)
				continue;
			die("read");
		}
		inlen += (size_t)n;
		line = in;
		while ((nl = memchr(line, '\n', inlen - (size_t)(line - in)))
		    != NULL) {
			*nl = '\0';
			if (nl > line && nl[-1] == '\r')
				nl[-1] = '\0';
			if (!greeted)
				greeted = 1;
			else {
				snprintf(want, sizeof(want), "200 PONG %ld",
				    ++got);
				if (strcmp(line, want) == 0)
					pong++;
				else {
					if (other++ < 5)
						fprintf(stderr, "reply %ld: "
						    "%s\n", got, line);
				}
			}
			line = nl + 1;
		}
		used = (size_t)(line - in);
		memmove(in, line, inlen - used);
		inlen -= used;
	}
	printf("sent %ld pong %ld other %ld in %.3f s\n", sent, pong, other,
	    (double)rst_ms(&t0) / 1000);
	close(fd);
	return (pong == total ? 0 : 1);
}

int
main(int argc, char *argv[])
{
	char	first[256];
	int	i, fd;

	signal(SIGPIPE, SIG_IGN);
	if (argc == 4 && strcmp(argv[1], "rst") == 0)
		return (rst_rst(atoi(argv[2]), argv[3]));
	if (argc == 3 && strcmp(argv[1], "noread") == 0)
		return (rst_noread(atoi(argv[2]), NULL, "HELP\r\n"));
	if (argc == 6 && strcmp(argv[1], "authflood") == 0) {
		snprintf(first, sizeof(first), "LOGIN %s %s\r\n", argv[3],
		    argv[4]);
		for (i = 0; i < atoi(argv[5]); i++) {
			fd = rst_connect(atoi(argv[2]));
			if (write(fd, first, strlen(first)) !=
			    (ssize_t)strlen(first))
				die("write");
		}
		return (rst_noread(atoi(argv[2]), first, "PING\r\n"));
	}
	if (argc == 5 && strcmp(argv[1], "rate") == 0)
		return (rst_rate(atoi(argv[2]), atol(argv[3]), atol(argv[4])));
	if (argc == 4 && strcmp(argv[1], "trickle") == 0)
		return (rst_trickle(atoi(argv[2]), argv[3]));
	fprintf(stderr, "usage: hard-rst rst|trickle PORT TEXT\n"
	    "       hard-rst noread PORT\n"
	    "       hard-rst authflood PORT NAME PASSWORD QUEUE\n"
	    "       hard-rst rate PORT RATE SECONDS\n");
	return (2);
}

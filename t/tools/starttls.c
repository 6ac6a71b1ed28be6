/*
 * starttls.c: a TLS test client for t/tls.bats. openssl s_client has no
 * mychat STARTTLS mode and socat cannot upgrade a connection in the middle,
 * so this small program does both kinds of session with OpenSSL:
 *
 *	starttls [-Idk] [-c CAFILE] [-n NAME] [-x LINE]... [-l PORTFILE]
 *	    [-t SECONDS] HOST PORT
 *
 * Without -I (STARTTLS): it connects in clear and relays lines both ways
 * (stdin to the server, the server to stdout) until stdin sends a line
 * that is "STARTTLS" (any case). It sends that line, with the lines of the
 * same read before it, each -x LINE after it, and the rest of that read,
 * in ONE write(2) (the pipelining attack of RFC 3207), then
 * relays the server's clear lines up to its "220 " line, and makes the TLS
 * handshake. Bytes the server sends in clear after the 220 are an error:
 * the server answered something it should have discarded. A reply other
 * of 454 is relayed and the session stays in clear. With -d, pushes
 * ("MSG ..." and "ACKED ..." lines) received in clear before the 220 are
 * dropped instead of relayed, and counted: "starttls: first push dropped"
 * on stderr at the first, "starttls: N pushes dropped" at the 220 (a test
 * can flood a session without reading the flood line by line).
 * With -I (implicit TLS) it makes the handshake right after connecting.
 *
 * Once encrypted it relays stdin and stdout through TLS. At the end of
 * stdin it sends close_notify and reads on until the server closes.
 * The server's certificate is verified against CAFILE (or the system store)
 * and NAME (default HOST; an IP address is checked as one); -k skips the
 * check. One line per event goes to stderr: "starttls: TLS established
 * <version> <cipher> subject=<subject> serial=<hex serial>", then at the
 * end "starttls: server closed with close_notify" or "starttls: server
 * closed without close_notify". With -l the program first listens on an
 * ephemeral port of 127.0.0.1, writes that port to PORTFILE and uses the
 * one connection it accepts as stdin and stdout (so a bats test can talk
 * through it with /dev/tcp). -t bounds the clear-text phase and the
 * handshake (default 10 s).
 *
 * Exit: 0 after the server closed; 1 usage or system error; 2 cannot
 * connect; 3 handshake or verification failed; 4 clear-text bytes after
 * the 220; 5 TLS error after the handshake.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define BUFSZ	16384
#define MAXX	16

/* Print a message and the OpenSSL error queue to stderr, then exit. */
static void __attribute__((__noreturn__, __format__(__printf__, 2, 3)))
die(int status, const char *fmt, ...)
{
	va_list		ap;
	unsigned long	e;
	char		buf[256];

	fputs("starttls: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		fprintf(stderr, ": %s", buf);
	}
	fputc('\n', stderr);
	exit(status);
}

/* Write all of p to fd (blocking). */
static void
write_all(int fd, const char *p, size_t n)
{
	ssize_t	w;

	while (n > 0) {
		if ((w = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			die(1, "write: %s", strerror(errno));
		}
		p += w;
		n -= (size_t)w;
	}
}

/* Connect to host:port; the socket, or exit 2. */
static int
tcp_connect(const char *host, const char *port)
{
	struct addrinfo	 hints, *res, *ai;
	int		 fd = -1, r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((r = getaddrinfo(host, port, &hints, &res)) != 0)
		die(2, "%s: %s", host, gai_strerror(r));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype,
		    ai->ai_protocol)) == -1)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1)
		die(2, "connect %s port %s: %s", host, port, strerror(errno));
	return (fd);
}

/* -l: accept one connection on 127.0.0.1 and make it stdin and stdout. */
static void
listen_once(const char *portfile)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof(sin);
	char			tmp[4096], num[16];
	int			lfd, fd, pf;

	if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		die(1, "socket: %s", strerror(errno));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(lfd, 1) == -1 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &len) == -1)
		die(1, "listen: %s", strerror(errno));
	/* write then rename, so a reader never sees half a number */
	snprintf(tmp, sizeof(tmp), "%s.tmp", portfile);
	snprintf(num, sizeof(num), "%d\n", ntohs(sin.sin_port));
	if ((pf = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644)) == -1)
		die(1, "%s: %s", tmp, strerror(errno));
	write_all(pf, num, strlen(num));
	close(pf);
	if (rename(tmp, portfile) == -1)
		die(1, "rename %s: %s", portfile, strerror(errno));
	while ((fd = accept(lfd, NULL, NULL)) == -1)
		if (errno != EINTR)
			die(1, "accept: %s", strerror(errno));
	close(lfd);
	if (dup2(fd, 0) == -1 || dup2(fd, 1) == -1)
		die(1, "dup2: %s", strerror(errno));
	close(fd);
}

/* SIGALRM: the server did not answer STARTTLS or finish the handshake. */
static void
on_alarm(int sig)
{
	static const char msg[] = "starttls: timeout waiting for the 220 "
	    "or the handshake\n";

	ssize_t			 r;

	(void)sig;
	r = write(2, msg, sizeof(msg) - 1);
	(void)r;
	_exit(3);
}

/* Is line (n bytes, without its LF) the STARTTLS command? */
static int
is_starttls(const char *line, size_t n)
{
	if (n > 0 && line[n - 1] == '\r')
		n--;
	return (n == 8 && strncasecmp(line, "STARTTLS", 8) == 0);
}

/*
 * Forward the whole lines of in to the server, up to and including a
 * STARTTLS line, which takes the -x lines and whatever stdin sent after it:
 * all in one write(2). Returns 1 once STARTTLS is sent.
 */
static int
forward_lines(int sfd, char *in, size_t *inlen, char **xlines, int nx)
{
	char	 out[BUFSZ * 2];
	char	*nl;
	size_t	 n, o = 0, off = 0;
	int	 i;

	while ((nl = memchr(in + off, '\n', *inlen - off)) != NULL) {
		n = (size_t)(nl - (in + off)) + 1;
		memcpy(out + o, in + off, n);
		o += n;
		off += n;
		if (!is_starttls(in + off - n, n - 1))
			continue;
		for (i = 0; i < nx; i++) {
			o += (size_t)snprintf(out + o, sizeof(out) - o,
			    "%s\r\n", xlines[i]);
			if (o >= sizeof(out))
				die(1, "-x lines too long");
		}
		memcpy(out + o, in + off, *inlen - off);
		o += *inlen - off;
		write_all(sfd, out, o);		/* one segment */
		*inlen = 0;
		return (1);
	}
	if (o > 0)
		write_all(sfd, out, o);
	memmove(in, in + off, *inlen - off);
	*inlen -= off;
	if (*inlen == BUFSZ)
		die(1, "input line too long");
	return (0);
}

/*
 * The clear-text phase: relay lines until the server answers a STARTTLS
 * with 220. Returns when the handshake may start.
 */
static void
clear_phase(int sfd, char **xlines, int nx, int timeout, int drop)
{
	unsigned long	 ndrop = 0;
	char		 in[BUFSZ], srv[BUFSZ];
	size_t		 inlen = 0, srvlen = 0, n;
	ssize_t		 r;
	char		*nl;
	int		 asked = 0, ineof = 0;
	struct pollfd	 pfd[2];

	for (;;) {
		pfd[0].fd = sfd;
		pfd[0].events = POLLIN;
		pfd[1].fd = ineof || asked ? -1 : 0;
		pfd[1].events = POLLIN;
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			die(1, "poll: %s", strerror(errno));
		}
		if (pfd[1].revents != 0) {
			r = read(0, in + inlen, sizeof(in) - inlen);
			if (r <= 0) {
				/* no STARTTLS: end the clear session */
				ineof = 1;
				shutdown(sfd, SHUT_WR);
			} else {
				inlen += (size_t)r;
				asked = forward_lines(sfd, in, &inlen, xlines,
				    nx);
				if (asked)
					alarm((unsigned int)timeout);
			}
		}
		if (pfd[0].revents == 0)
			continue;
		r = read(sfd, srv + srvlen, sizeof(srv) - srvlen);
		if (r == -1)
			die(2, "read: %s", strerror(errno));
		if (r == 0) {
			if (srvlen > 0)
				write_all(1, srv, srvlen);
			fprintf(stderr, "starttls: server closed in clear\n");
			exit(0);
		}
		srvlen += (size_t)r;
		while ((nl = memchr(srv, '\n', srvlen)) != NULL) {
			n = (size_t)(nl - srv) + 1;
			if (drop && ((n >= 4 && strncmp(srv, "MSG ", 4) == 0) ||
			    (n >= 6 && strncmp(srv, "ACKED ", 6) == 0))) {
				if (ndrop++ == 0)
					fprintf(stderr, "starttls: first push "
					    "dropped\n");
				memmove(srv, srv + n, srvlen - n);
				srvlen -= n;
				continue;
			}
			write_all(1, srv, n);
			if (asked && n >= 4 && strncmp(srv, "220 ", 4) == 0) {
				if (drop)
					fprintf(stderr, "starttls: %lu pushes "
					    "dropped\n", ndrop);
				if (srvlen > n)
					die(4, "%zu bytes in clear after the "
					    "220: \"%.*s\"", srvlen - n,
					    (int)(srvlen - n), srv + n);
				return;
			}
			if (asked && n >= 4 && strncmp(srv, "454 ", 4) == 0) {
				/* refused (454): the session stays in clear */
				asked = 0;
				alarm(0);
			}
			memmove(srv, srv + n, srvlen - n);
			srvlen -= n;
		}
		if (srvlen == sizeof(srv))
			die(1, "server line too long");
	}
}

/* The handshake, with verification unless insecure; prints one line. */
static SSL *
handshake(int sfd, const char *cafile, const char *name, int insecure)
{
	SSL_CTX		*ctx;
	SSL		*ssl;
	X509		*cert;
	ASN1_INTEGER	*serial;
	BIGNUM		*bn;
	char		*hex, subject[256];
	struct in6_addr	 a6;
	int		 isip;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		die(1, "SSL_CTX_new");
	if (!insecure) {
		if (cafile != NULL) {
			if (SSL_CTX_load_verify_locations(ctx, cafile,
			    NULL) != 1)
				die(1, "%s", cafile);
		} else if (SSL_CTX_set_default_verify_paths(ctx) != 1)
			die(1, "system CA store");
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	if ((ssl = SSL_new(ctx)) == NULL)
		die(1, "SSL_new");
	SSL_CTX_free(ctx);	/* ssl holds a reference */
	isip = inet_pton(AF_INET, name, &a6) == 1 ||
	    inet_pton(AF_INET6, name, &a6) == 1;
	if (!insecure) {
		if (isip) {
			if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
			    name) != 1)
				die(1, "bad address %s", name);
		} else if (SSL_set1_host(ssl, name) != 1)
			die(1, "bad name %s", name);
	}
	if (!isip)
		SSL_set_tlsext_host_name(ssl, name);
	if (SSL_set_fd(ssl, sfd) != 1)
		die(1, "SSL_set_fd");
	if (SSL_connect(ssl) != 1) {
		if (!insecure && SSL_get_verify_result(ssl) != X509_V_OK)
			die(3, "TLS handshake failed: certificate: %s",
			    X509_verify_cert_error_string(
			    SSL_get_verify_result(ssl)));
		die(3, "TLS handshake failed");
	}
	subject[0] = '\0';
	hex = NULL;
	if ((cert = SSL_get1_peer_certificate(ssl)) != NULL) {
		X509_NAME_oneline(X509_get_subject_name(cert), subject,
		    sizeof(subject));
		serial = X509_get_serialNumber(cert);
		if ((bn = ASN1_INTEGER_to_BN(serial, NULL)) != NULL) {
			hex = BN_bn2hex(bn);
			BN_free(bn);
		}
		X509_free(cert);
	}
	fprintf(stderr, "starttls: TLS established %s %s subject=%s "
	    "serial=%s\n", SSL_get_version(ssl), SSL_get_cipher_name(ssl),
	    subject, hex != NULL ? hex : "?");
	OPENSSL_free(hex);
	return (ssl);
}

/* Wait until fd is ready for events (POLLIN or POLLOUT). */
static void
wait_fd(int fd, short events)
{
	struct pollfd	pfd;

	pfd.fd = fd;
	pfd.events = events;
	while (poll(&pfd, 1, -1) == -1)
		if (errno != EINTR)
			die(1, "poll: %s", strerror(errno));
}

/* Send p through TLS on a non-blocking socket. */
static void
tls_write_all(SSL *ssl, int sfd, const char *p, size_t n)
{
	int	r, e;

	while (n > 0) {
		r = SSL_write(ssl, p, n > BUFSZ ? BUFSZ : (int)n);
		if (r > 0) {
			p += r;
			n -= (size_t)r;
			continue;
		}
		e = SSL_get_error(ssl, r);
		if (e == SSL_ERROR_WANT_WRITE)
			wait_fd(sfd, POLLOUT);
		else if (e == SSL_ERROR_WANT_READ)
			wait_fd(sfd, POLLIN);
		else
			die(5, "SSL_write failed");
	}
}

/* The encrypted phase: relay until the server closes. */
static void
tls_phase(SSL *ssl, int sfd)
{
	char		 buf[BUFSZ];
	struct pollfd	 pfd[2];
	ssize_t		 r;
	int		 n, e, ineof = 0;

	if (fcntl(sfd, F_SETFL, fcntl(sfd, F_GETFL) | O_NONBLOCK) == -1)
		die(1, "fcntl: %s", strerror(errno));
	for (;;) {
		/* drain what OpenSSL can give without blocking */
		for (;;) {
			n = SSL_read(ssl, buf, sizeof(buf));
			if (n > 0) {
				write_all(1, buf, (size_t)n);
				continue;
			}
			e = SSL_get_error(ssl, n);
			if (e == SSL_ERROR_WANT_READ ||
			    e == SSL_ERROR_WANT_WRITE)
				break;
			if (e == SSL_ERROR_ZERO_RETURN) {
				fprintf(stderr, "starttls: server closed "
				    "with close_notify\n");
				return;
			}
			if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
				fprintf(stderr, "starttls: server closed "
				    "without close_notify\n");
				return;
			}
			if (e == SSL_ERROR_SSL && ERR_GET_REASON(
			    ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
				ERR_clear_error();
				fprintf(stderr, "starttls: server closed "
				    "without close_notify\n");
				return;
			}
			die(5, "SSL_read failed");
		}
		pfd[0].fd = sfd;
		pfd[0].events = POLLIN;
		pfd[1].fd = ineof ? -1 : 0;
		pfd[1].events = POLLIN;
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			die(1, "poll: %s", strerror(errno));
		}
		if (pfd[1].revents == 0)
			continue;
		if ((r = read(0, buf, sizeof(buf))) > 0) {
			tls_write_all(ssl, sfd, buf, (size_t)r);
			continue;
		}
		ineof = 1;
		/* the end of stdin: close_notify, then read on */
		if (SSL_shutdown(ssl) < 0)
			ERR_clear_error();
	}
}

/* Print the synopsis and exit 1. */
static void __attribute__((__noreturn__))
usage(void)
{
	fprintf(stderr, "usage: starttls [-Idk] [-c cafile] [-n name] "
	    "[-x line]... [-l portfile] [-t seconds] host port\n");
	exit(1);
}

/* Parse the options, connect, upgrade, relay. */
int
main(int argc, char *argv[])
{
	char	*xlines[MAXX], *cafile = NULL, *name = NULL, *portfile = NULL;
	int	 ch, nx = 0, implicit = 0, insecure = 0, timeout = 10, sfd;
	int	 drop = 0;
	SSL	*ssl;

	while ((ch = getopt(argc, argv, "Ic:dkl:n:t:x:")) != -1) {
		switch (ch) {
		case 'I':
			implicit = 1;
			break;
		case 'd':
			drop = 1;
			break;
		case 'c':
			cafile = optarg;
			break;
		case 'k':
			insecure = 1;
			break;
		case 'l':
			portfile = optarg;
			break;
		case 'n':
			name = optarg;
			break;
		case 't':
			timeout = atoi(optarg);
			break;
		case 'x':
			if (nx == MAXX)
				usage();
			xlines[nx++] = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 2)
		usage();
	if (name == NULL)
		name = argv[0];
	signal(SIGPIPE, SIG_IGN);
	if (portfile != NULL)
		listen_once(portfile);
	/* waiting for the 220 and the handshake must not hang a test */
	signal(SIGALRM, on_alarm);
	sfd = tcp_connect(argv[0], argv[1]);
	if (!implicit)
		clear_phase(sfd, xlines, nx, timeout, drop);
	else
		alarm((unsigned int)timeout);
	ssl = handshake(sfd, cafile, name, insecure);
	alarm(0);
	tls_phase(ssl, sfd);
	SSL_free(ssl);
	close(sfd);
	return (0);
}

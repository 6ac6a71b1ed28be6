/*
 * client.c: main of the mychat console client: options, the password for
 * the scripting commands, and the choice between the interactive client
 * (client-chat.c) and send/recv (client-script.c). See doc/mychat.1.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <event2/event.h>

#include "client.h"
#include "xmalloc.h"

#define CLIENT_TIMEOUT_DEFAULT	10

int	client_verbose;

static char	client_pass[PROTO_PASS_MAX + 2];

/* How to call mychat. */
static void
client_usage(FILE *f)
{
	fprintf(f,
	    "usage: mychat [-v] [tls options] [-t seconds] [-p port] [host]\n"
	    "       mychat -u name [-P file] [-H host] [-p port] [-t seconds] "
	    "[tls options]\n"
	    "              send peer text|-\n"
	    "       mychat -u name [-P file] [-H host] [-p port] [-t seconds] "
	    "[tls options]\n"
	    "              recv [--follow] [--unescape]\n"
	    "\n"
	    "  -H host     server (default localhost; also the host operand)\n"
	    "  -p port     port (default %d, with --tls %d)\n"
	    "  -t seconds  timeout of every wait for the server (default %d)\n"
	    "  -u name     account for send and recv\n"
	    "  -P file     read the password from the first line of file\n"
	    "              (else $MYCHAT_PASSWORD, else ask on the terminal)\n"
	    "  -v          show the server's replies on stderr\n"
	    "  -h          this help\n"
	    "TLS (by default STARTTLS when the server offers it):\n"
	    "  --tls       TLS from the first byte (the server's tls-port)\n"
	    "  --starttls  STARTTLS, or fail if the server does not offer it\n"
	    "  --no-tls    never TLS: the password goes in clear\n"
	    "  --ca file   trust the CA certificates in file, not the system's\n"
	    "  --insecure  do not verify the server's certificate (unsafe)\n"
	    "Exit codes: 0 ok, 1 usage, 2 connection, 3 timeout, 4 protocol,\n"
	    "5 login refused, 6 no such user, 7 try later, 8 refused, 9 TLS "
	    "(see mychat(1)).\n", PROTO_DEFAULT_PORT, PROTO_DEFAULT_TLS_PORT,
	    CLIENT_TIMEOUT_DEFAULT);
}

/* Read a line from fd into client_pass, without echo if it is a tty. */
static int
client_read_pass(int fd, int prompt)
{
	struct termios	 saved, t;
	size_t		 n = 0;
	ssize_t		 r, w;
	char		 c;
	int		 restore = 0;

	if (prompt) {
		if (tcgetattr(fd, &saved) == 0) {
			t = saved;
			t.c_lflag &= ~(tcflag_t)ECHO;
			t.c_lflag |= ICANON;
			if (tcsetattr(fd, TCSAFLUSH, &t) == 0)
				restore = 1;
		}
		/* a courtesy: a prompt that cannot be shown changes nothing */
		w = write(fd, "Password: ", 10);
		(void)w;
	}
	while ((r = read(fd, &c, 1)) == 1 && c != '\n') {
		if (n < sizeof(client_pass) - 1)
			client_pass[n++] = c;
	}
	client_pass[n] = '\0';
	if (n > 0 && client_pass[n - 1] == '\r')
		client_pass[--n] = '\0';
	if (restore) {
		tcsetattr(fd, TCSAFLUSH, &saved);
		w = write(fd, "\n", 1);
		(void)w;
	}
	return (r == -1 ? -1 : 0);
}

/* The password for send/recv: -P file, $MYCHAT_PASSWORD, or the tty. */
static int
client_password(const char *file)
{
	const char	*env;
	int		 fd;

	if (file != NULL) {
		if ((fd = open(file, O_RDONLY | O_CLOEXEC)) == -1) {
			fprintf(stderr, "mychat: %s: %s\n", file,
			    strerror(errno));
			return (-1);
		}
		if (client_read_pass(fd, 0) == -1) {
			fprintf(stderr, "mychat: %s: %s\n", file,
			    strerror(errno));
			close(fd);
			return (-1);
		}
		close(fd);
	} else if ((env = getenv("MYCHAT_PASSWORD")) != NULL) {
		if (strlen(env) >= sizeof(client_pass)) {
			fprintf(stderr, "mychat: MYCHAT_PASSWORD too long\n");
			return (-1);
		}
		snprintf(client_pass, sizeof(client_pass), "%s", env);
	} else {
		if ((fd = open("/dev/tty", O_RDWR | O_CLOEXEC)) == -1) {
			fprintf(stderr, "mychat: no password: use -P file or "
			    "MYCHAT_PASSWORD\n");
			return (-1);
		}
		if (client_read_pass(fd, 1) == -1) {
			close(fd);
			return (-1);
		}
		close(fd);
	}
	if (client_pass[0] == '\0' || strlen(client_pass) > PROTO_PASS_MAX ||
	    strchr(client_pass, ' ') != NULL) {
		fprintf(stderr, "mychat: a password is 1 to %d bytes without "
		    "spaces\n", PROTO_PASS_MAX);
		return (-1);
	}
	return (0);
}

/* A decimal number from lo to hi, or -1. */
static long
client_number(const char *s, long lo, long hi)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return (-1);
	return (v);
}

/* Long options with no short form. */
enum {
	OPT_TLS = 256,
	OPT_STARTTLS,
	OPT_NO_TLS,
	OPT_CA,
	OPT_INSECURE
};

static const struct option client_longopts[] = {
	{ "tls",	no_argument,		NULL,	OPT_TLS },
	{ "starttls",	no_argument,		NULL,	OPT_STARTTLS },
	{ "no-tls",	no_argument,		NULL,	OPT_NO_TLS },
	{ "ca",		required_argument,	NULL,	OPT_CA },
	{ "insecure",	no_argument,		NULL,	OPT_INSECURE },
	{ NULL,		0,			NULL,	0 }
};

/*
 * Check the TLS options against each other and set TLS up; -1 after an
 * error message. --insecure is loud on every run: it is easy to leave in
 * a script and forget.
 */
static int
client_tls_setup(int ntls, enum ctls_mode mode, const char *ca,
    int insecure)
{
	if (ntls > 1) {
		fprintf(stderr, "mychat: --tls, --starttls and --no-tls "
		    "exclude each other\n");
		return (-1);
	}
	if (mode == CTLS_OFF && (ca != NULL || insecure)) {
		fprintf(stderr, "mychat: --ca and --insecure make no sense "
		    "with --no-tls\n");
		return (-1);
	}
	if (ca != NULL && insecure) {
		fprintf(stderr, "mychat: --ca and --insecure exclude each "
		    "other\n");
		return (-1);
	}
	if (insecure)
		fprintf(stderr, "mychat: WARNING: --insecure: the server's "
		    "certificate is not verified; anyone on the way can read "
		    "and change this session, password included\n");
	return (ctls_init(mode, ca, insecure));
}

/* Parse the options, then run the interactive client, send or recv. */
int
main(int argc, char *argv[])
{
	struct script_opts	 so;
	struct event_config	*cfg;
	struct event_base	*base;
	enum ctls_mode		 tls_mode = CTLS_AUTO;
	const char		*host = "localhost", *user = NULL;
	const char		*passfile = NULL, *cmd, *ca = NULL;
	char			 portbuf[16];
	long			 v;
	int			 ch, rv, timeout = CLIENT_TIMEOUT_DEFAULT, i;
	int			 host_opt = 0, port_opt = 0, ntls = 0;
	int			 insecure = 0;

	setlocale(LC_CTYPE, "");
	signal(SIGPIPE, SIG_IGN);

	while ((ch = getopt_long(argc, argv, "+hH:p:P:t:u:v", client_longopts,
	    NULL)) != -1) {
		switch (ch) {
		case OPT_TLS:
			tls_mode = CTLS_IMPLICIT;
			ntls++;
			break;
		case OPT_STARTTLS:
			tls_mode = CTLS_STARTTLS;
			ntls++;
			break;
		case OPT_NO_TLS:
			tls_mode = CTLS_OFF;
			ntls++;
			break;
		case OPT_CA:
			ca = optarg;
			break;
		case OPT_INSECURE:
			insecure = 1;
			break;
		case 'h':
			client_usage(stdout);
			return (EX_MC_OK);
		case 'H':
			host = optarg;
			host_opt = 1;
			break;
		case 'p':
			if ((v = client_number(optarg, 1, 65535)) == -1) {
				fprintf(stderr, "mychat: bad port: %s\n",
				    optarg);
				return (EX_MC_USAGE);
			}
			snprintf(portbuf, sizeof(portbuf), "%ld", v);
			port_opt = 1;
			break;
		case 'P':
			passfile = optarg;
			break;
		case 't':
			if ((v = client_number(optarg, 1, 86400)) == -1) {
				fprintf(stderr, "mychat: bad timeout: %s\n",
				    optarg);
				return (EX_MC_USAGE);
			}
			timeout = (int)v;
			break;
		case 'u':
			user = optarg;
			break;
		case 'v':
			client_verbose = 1;
			break;
		default:
			client_usage(stderr);
			return (EX_MC_USAGE);
		}
	}
	argc -= optind;
	argv += optind;
	if (!port_opt)
		snprintf(portbuf, sizeof(portbuf), "%d",
		    tls_mode == CTLS_IMPLICIT ? PROTO_DEFAULT_TLS_PORT :
		    PROTO_DEFAULT_PORT);
	if (client_tls_setup(ntls, tls_mode, ca, insecure) == -1)
		return (EX_MC_USAGE);

	memset(&so, 0, sizeof(so));
	cmd = argc > 0 ? argv[0] : NULL;
	if (cmd != NULL && (strcmp(cmd, "send") == 0 ||
	    strcmp(cmd, "recv") == 0)) {
		if (user == NULL || !proto_valid_name(user)) {
			fprintf(stderr, "mychat: %s needs -u name (1-32 "
			    "characters of A-Z a-z 0-9 _ . -)\n", cmd);
			return (EX_MC_USAGE);
		}
		if (strcmp(cmd, "send") == 0) {
			if (argc != 3 || !proto_valid_name(argv[1])) {
				client_usage(stderr);
				return (EX_MC_USAGE);
			}
			so.peer = argv[1];
			so.text = argv[2];
		} else {
			for (i = 1; i < argc; i++) {
				if (strcmp(argv[i], "--follow") == 0 ||
				    strcmp(argv[i], "-f") == 0)
					so.follow = 1;
				else if (strcmp(argv[i], "--unescape") == 0)
					so.unescape = 1;
				else {
					client_usage(stderr);
					return (EX_MC_USAGE);
				}
			}
		}
		if (client_password(passfile) == -1) {
			explicit_bzero(client_pass, sizeof(client_pass));
			return (EX_MC_USAGE);
		}
	} else {
		if (user != NULL || passfile != NULL || argc > 1) {
			client_usage(stderr);
			return (EX_MC_USAGE);
		}
		if (argc == 1) {
			if (host_opt) {
				client_usage(stderr);
				return (EX_MC_USAGE);
			}
			host = argv[0];
		}
	}

	/*
	 * poll, not epoll: stdin may be a regular file, which epoll refuses.
	 * A client watches two descriptors; poll is as good.
	 */
	cfg = event_config_new();
	event_config_avoid_method(cfg, "epoll");
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (base == NULL) {
		fprintf(stderr, "mychat: cannot set up the event loop\n");
		explicit_bzero(client_pass, sizeof(client_pass));
		ctls_free();
		return (EX_MC_USAGE);
	}
	clog_init(NULL);

	so.host = host;
	so.port = portbuf;
	so.user = user;
	so.password = client_pass;
	so.timeout = timeout;
	if (cmd == NULL || (strcmp(cmd, "send") != 0 &&
	    strcmp(cmd, "recv") != 0))
		rv = chat_main(base, host, portbuf, timeout);
	else if (strcmp(cmd, "send") == 0)
		rv = script_send(base, &so);
	else
		rv = script_recv(base, &so);
	explicit_bzero(client_pass, sizeof(client_pass));
	event_base_free(base);
	ctls_free();
	return (rv);
}

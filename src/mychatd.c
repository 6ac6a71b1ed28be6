/*
 * mychatd.c: main: options and configuration, daemon mode, signals,
 * timers, and the event loop's start and orderly end.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"
#include "mychat.h"
#include "xmalloc.h"

#define SHUTDOWN_GRACE_SECS	5

/* Options given on the command line; they win over the file, on reload too. */
struct cmdline {
	int		 port, tls_port, verbose;
	size_t		 max_line;
	int		 durability;		/* -1: not given */
	char		*dbdir, *tls_cert, *tls_key, *pidfile, *user;
	char		*listen[CONF_MAX_LISTEN];
	int		 nlisten;
};

static void __attribute__((noreturn))
usage(int status)
{
	fprintf(status == 0 ? stdout : stderr,
"usage: mychatd [-fhvV] [-a address] [-c file] [-d dbdir] [-D sync|nosync]\n"
"               [-l max-line] [-p port] [-P pidfile] [-u user]\n"
"               [--tls-port port] [--tls-cert file] [--tls-key file]\n"
"  -a address   listen on this numeric address (repeatable; default all)\n"
"  -c file      configuration file (see mychatd.conf(5))\n"
"  -d dbdir     database directory (default var/db)\n"
"  -D mode      durability: sync (fsync per commit group, default) or nosync\n"
"  -f           stay in the foreground, log to stderr\n"
"  -h           this help\n"
"  -l bytes     maximum line length (default %d)\n"
"  -p port      plain-text port (default %d)\n"
"  -P pidfile   pid file in daemon mode (default <dbdir>/mychatd.pid)\n"
"  -u user      drop root privileges to user after binding\n"
"  -v           more verbose logging (repeatable)\n"
"  -V           print the version and exit\n",
	    PROTO_LINE_DEFAULT, PROTO_DEFAULT_PORT);
	exit(status);
}

static int
parse_port(const char *s)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1 || v > 65535) {
		fprintf(stderr, "mychatd: bad port: %s\n", s);
		exit(1);
	}
	return ((int)v);
}

/* Lay the command-line options over the settings from the file. */
static void
apply_cmdline(struct conf *cf, const struct cmdline *cl)
{
	int	i;

	if (cl->port)
		cf->port = cl->port;
	if (cl->tls_port)
		cf->tls_port = cl->tls_port;
	if (cl->max_line)
		cf->max_line = cl->max_line;
	if (cl->durability != -1)
		cf->durability = cl->durability;
	if (cl->dbdir != NULL) {
		free(cf->dbdir);
		cf->dbdir = xstrdup(cl->dbdir);
	}
	if (cl->tls_cert != NULL) {
		free(cf->tls_cert);
		cf->tls_cert = xstrdup(cl->tls_cert);
	}
	if (cl->tls_key != NULL) {
		free(cf->tls_key);
		cf->tls_key = xstrdup(cl->tls_key);
	}
	if (cl->pidfile != NULL) {
		free(cf->pidfile);
		cf->pidfile = xstrdup(cl->pidfile);
	}
	if (cl->user != NULL) {
		free(cf->user);
		cf->user = xstrdup(cl->user);
	}
	if (cl->nlisten > 0) {
		for (i = 0; i < cf->nlisten; i++)
			free(cf->listen[i]);
		for (i = 0; i < cl->nlisten; i++)
			cf->listen[i] = xstrdup(cl->listen[i]);
		cf->nlisten = cl->nlisten;
	}
}

/* Load the file (if any) and the command line into a fresh conf. */
static int
load_conf(struct conf *cf, const char *path, const struct cmdline *cl,
    char *err, size_t errlen)
{
	conf_defaults(cf);
	if (path != NULL && conf_load(cf, path, err, errlen) == -1) {
		conf_free(cf);
		return (-1);
	}
	apply_cmdline(cf, cl);
	if (cf->max_line < 64 || cf->max_line > 64 * 1024 * 1024) {
		snprintf(err, errlen, "max-line must be 64 bytes to 64 MiB");
		conf_free(cf);
		return (-1);
	}
	if (cf->out_limit < 4096)
		cf->out_limit = 4096;
	return (0);
}

static void
apply_logging(struct conf *cf, int foreground)
{
	int	target = cf->log_target;

	/* a daemon has no stderr: stderr means syslog there */
	if (!foreground && target == LOG_TO_STDERR)
		target = LOG_TO_SYSLOG;
	if (log_open(target, cf->log_file, cf->log_facility) == -1)
		log_warn("log file %s", cf->log_file);
}

/* SIGHUP: re-read the file, keep what cannot change without a restart. */
static void
reload(struct server *srv, const struct cmdline *cl, int foreground)
{
	struct conf	*nc, *oc = srv->conf;
	struct conn	*c;
	struct tls	*t;
	char		 err[512];

	log_reopen();
	nc = xcalloc(1, sizeof(*nc));
	if (load_conf(nc, srv->conf_path, cl, err, sizeof(err)) == -1) {
		log_warnx("reload: %s: keeping the running configuration", err);
		free(nc);
		return;
	}
	if (nc->port != oc->port || nc->tls_port != oc->tls_port ||
	    strcmp(nc->dbdir, oc->dbdir) != 0 ||
	    nc->durability != oc->durability || nc->nlisten != oc->nlisten)
		log_warnx("reload: listen addresses, ports, database and "
		    "durability change only at restart");
	/* those keep their running values */
	nc->port = oc->port;
	nc->tls_port = oc->tls_port;
	nc->durability = oc->durability;
	free(nc->dbdir);
	nc->dbdir = xstrdup(oc->dbdir);
	if (nc->max_line > oc->max_line)
		srv->linebuf = xreallocarray(srv->linebuf, 1, nc->max_line + 2);
	if (srv->tls != NULL || nc->tls_port != 0) {
		if (nc->tls_cert != NULL && nc->tls_key != NULL) {
			if ((t = tls_new(nc->tls_cert, nc->tls_key, err,
			    sizeof(err))) == NULL)
				log_warnx("reload: %s: keeping the old "
				    "certificate", err);
			else {
				tls_free(srv->tls);
				srv->tls = t;
				log_info("reload: TLS certificate reloaded");
			}
		}
	}
	srv->conf = nc;
	apply_logging(nc, foreground);
	conf_free(oc);
	free(oc);
	TAILQ_FOREACH(c, &srv->conns, entry)
		conn_apply_conf(c);
	log_info("configuration reloaded");
}

static void
close_all(struct server *srv, const char *line)
{
	struct conn	*c, *next;

	for (c = TAILQ_FIRST(&srv->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->state == S_CLOSING)
			continue;
		conn_reply(c, RPL_CLOSING, "%s", line);
		conn_close_after(c);
	}
}

/* Begin the orderly end: no new connections, tell everyone, flush. */
void
server_stop(struct server *srv)
{
	struct timeval	tv = { SHUTDOWN_GRACE_SECS, 0 };

	if (srv->shutting_down)
		return;
	srv->shutting_down = 1;
	log_info("shutting down");
	listener_free_all(srv);
	close_all(srv, "server shutting down");
	event_base_loopexit(srv->base, &tv);
}

struct sigctx {
	struct server	*srv;
	struct cmdline	*cl;
	int		 foreground;
};

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct sigctx	*sc = arg;

	switch (sig) {
	case SIGTERM:
	case SIGINT:
		server_stop(sc->srv);
		break;
	case SIGHUP:
		reload(sc->srv, sc->cl, sc->foreground);
		break;
	default:
		fatalx("%s: unexpected signal %d", __func__, (int)sig);
	}
}

/* Once a second: close sessions that did not log in in time, sweep limits. */
static void
housekeep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server	*srv = arg;
	struct conn	*c, *next;
	time_t		 now = time(NULL);
	int		 lt = srv->conf->login_timeout;

	log_flush();
	if (srv->shutting_down && srv->nconns == 0)
		event_base_loopbreak(srv->base);
	limit_sweep(srv->limits);
	if (lt <= 0)
		return;
	for (c = TAILQ_FIRST(&srv->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		/* a LOGIN being checked on a worker gets its answer */
		if (c->state == S_NEW && now - c->since >= lt) {
			conn_reply(c, RPL_CLOSING, "login timeout");
			conn_close_after(c);
		}
	}
}

static void
checkpoint_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server	*srv = arg;

	if (!store_in_group(srv->store))
		store_checkpoint(srv->store);
}

static void
drop_privileges(const char *user)
{
	struct passwd	*pw;

	if ((pw = getpwnam(user)) == NULL)
		fatalx("unknown user %s", user);
	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		fatal("cannot drop privileges to %s", user);
}

/* One server per database: an exclusive lock on <dbdir>/mychatd.lock. */
static int
lock_dbdir(const char *dir)
{
	char	path[PATH_MAX];
	int	fd;

	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		fatal("database directory %s", dir);
	snprintf(path, sizeof(path), "%s/mychatd.lock", dir);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1)
		fatal("%s", path);
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK)
			fatalx("another mychatd is running on %s", dir);
		fatal("lock %s", path);
	}
	return (fd);
}

/*
 * Detach. The parent waits on a pipe until the child has opened the
 * database, so that a failure there still reaches the terminal and the
 * exit status.
 */
static int
daemonize(void)
{
	int	p[2], fd;
	char	buf[512];
	ssize_t	n;
	pid_t	pid;

	if (pipe(p) == -1)
		fatal("pipe");
	log_flush();	/* or the child would write the parent's lines again */
	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid > 0) {
		close(p[1]);
		n = read(p[0], buf, sizeof(buf) - 1);
		if (n <= 0)
			_exit(1);
		buf[n] = '\0';
		if (strcmp(buf, "ok") == 0)
			_exit(0);
		fprintf(stderr, "mychatd: %s\n", buf);
		_exit(1);
	}
	close(p[0]);
	if (setsid() == -1)
		fatal("setsid");
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > 2)
			close(fd);
	}
	return (p[1]);
}

static void
tell_parent(int fd, const char *msg)
{
	if (fd == -1)
		return;
	if (write(fd, msg, strlen(msg)) == -1)
		log_warn("%s", __func__);
	close(fd);
}

static const struct option longopts[] = {
	{ "tls-port", required_argument, NULL, 1 },
	{ "tls-cert", required_argument, NULL, 2 },
	{ "tls-key", required_argument, NULL, 3 },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

/*
 * SIGTERM or SIGINT before the event loop has its own handlers (the
 * database may take a while to open): remember it, stop right after.
 */
static volatile sig_atomic_t early_stop;

static void
early_stop_handler(int sig)
{
	early_stop = 1;
}

int
main(int argc, char *argv[])
{
	struct server	 srv;
	struct conf	*cf;
	struct cmdline	 cl;
	struct sigctx	 sc;
	struct timeval	 tv;
	char		 err[512], *pidpath = NULL, *end;
	const char	*addrs[] = { "0.0.0.0", "::" };
	int		 ch, foreground = 0, i, nok = 0, notify = -1, lockfd;
	int		 sigs[] = { SIGTERM, SIGINT, SIGHUP };
	FILE		*fp;
	unsigned long	 v;

	memset(&cl, 0, sizeof(cl));
	cl.durability = -1;
	memset(&srv, 0, sizeof(srv));
	log_init("mychatd", 0, LOG_DAEMON);

	while ((ch = getopt_long(argc, argv, "a:c:d:D:fhl:p:P:u:vV", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'a':
			if (cl.nlisten == CONF_MAX_LISTEN)
				fatalx("too many -a options");
			cl.listen[cl.nlisten++] = optarg;
			break;
		case 'c':
			srv.conf_path = optarg;
			break;
		case 'd':
			cl.dbdir = optarg;
			break;
		case 'D':
			if (strcmp(optarg, "sync") == 0)
				cl.durability = DURABLE_SYNC;
			else if (strcmp(optarg, "nosync") == 0)
				cl.durability = DURABLE_NOSYNC;
			else
				usage(1);
			break;
		case 'f':
			foreground = 1;
			break;
		case 'h':
			usage(0);
		case 'l':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || v == 0)
				usage(1);
			cl.max_line = v;
			break;
		case 'p':
			cl.port = parse_port(optarg);
			break;
		case 'P':
			cl.pidfile = optarg;
			break;
		case 'u':
			cl.user = optarg;
			break;
		case 'v':
			cl.verbose++;
			break;
		case 'V':
			printf("mychatd %s\n", PACKAGE_VERSION);
			return (0);
		case 1:
			cl.tls_port = parse_port(optarg);
			break;
		case 2:
			cl.tls_cert = optarg;
			break;
		case 3:
			cl.tls_key = optarg;
			break;
		default:
			usage(1);
		}
	}
	if (optind != argc)
		usage(1);
	log_setverbose(cl.verbose);

	cf = xcalloc(1, sizeof(*cf));
	if (load_conf(cf, srv.conf_path, &cl, err, sizeof(err)) == -1) {
		fprintf(stderr, "mychatd: %s\n", err);
		free(cf);
		return (1);
	}
	srv.conf = cf;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, early_stop_handler);
	signal(SIGINT, early_stop_handler);
	signal(SIGHUP, SIG_IGN);

	if (cf->tls_port != 0 || cf->tls_cert != NULL) {
		if ((srv.tls = tls_new(cf->tls_cert, cf->tls_key, err,
		    sizeof(err))) == NULL) {
			fprintf(stderr, "mychatd: %s\n", err);
			return (1);
		}
	}

	if ((srv.base = event_base_new()) == NULL)
		fatalx("event_base_new");
	for (i = 0; i < (cf->nlisten > 0 ? cf->nlisten : 2); i++) {
		const char *a = cf->nlisten > 0 ? cf->listen[i] : addrs[i];
		if (listener_add(&srv, a, cf->port, 0) == 0)
			nok++;
		if (cf->tls_port != 0 &&
		    listener_add(&srv, a, cf->tls_port, 1) == 0)
			nok++;
	}
	if (nok == 0) {
		fprintf(stderr, "mychatd: could not listen on any address\n");
		return (1);
	}
	if (cf->user != NULL && geteuid() == 0)
		drop_privileges(cf->user);
	lockfd = lock_dbdir(cf->dbdir);

	if (!foreground) {
		notify = daemonize();
		if (event_reinit(srv.base) == -1)
			fatalx("event_reinit");
	}
	apply_logging(cf, foreground);
	if (!foreground) {
		if (cf->pidfile != NULL)
			pidpath = xstrdup(cf->pidfile);
		else {
			pidpath = xmalloc(PATH_MAX);
			snprintf(pidpath, PATH_MAX, "%s/mychatd.pid",
			    cf->dbdir);
		}
		if ((fp = fopen(pidpath, "w")) == NULL) {
			snprintf(err, sizeof(err), "pid file %s: %s", pidpath,
			    strerror(errno));
			tell_parent(notify, err);
			fatalx("%s", err);
		}
		fprintf(fp, "%ld\n", (long)getpid());
		fclose(fp);
	}

	if (server_open(&srv, err, sizeof(err)) == -1) {
		tell_parent(notify, err);
		if (pidpath != NULL)
			unlink(pidpath);
		fatalx("%s", err);
	}
	srv.housekeep_ev = event_new(srv.base, -1, EV_PERSIST, housekeep_cb,
	    &srv);
	srv.checkpoint_ev = event_new(srv.base, -1, EV_PERSIST, checkpoint_cb,
	    &srv);
	tv.tv_sec = HOUSEKEEP_SECS;
	tv.tv_usec = 0;
	event_add(srv.housekeep_ev, &tv);
	tv.tv_sec = CHECKPOINT_SECS;
	event_add(srv.checkpoint_ev, &tv);
	sc.srv = &srv;
	sc.cl = &cl;
	sc.foreground = foreground;
	for (i = 0; i < 3; i++) {
		srv.sig_ev[i] = evsignal_new(srv.base, sigs[i], signal_cb, &sc);
		event_add(srv.sig_ev[i], NULL);
	}

	log_info("mychatd %s started: port %d%s, database %s, durability %s, "
	    "max line %zu, output limit %zu, idle timeout %d s",
	    PACKAGE_VERSION, cf->port, srv.tls != NULL ? " (+TLS)" : "",
	    cf->dbdir, cf->durability == DURABLE_SYNC ? "sync" : "nosync",
	    cf->max_line, cf->out_limit, cf->idle_timeout);
	tell_parent(notify, "ok");
	if (early_stop)
		server_stop(&srv);

	event_base_dispatch(srv.base);

	for (i = 0; i < 3; i++)
		event_free(srv.sig_ev[i]);
	event_free(srv.housekeep_ev);
	event_free(srv.checkpoint_ev);
	server_close(&srv);
	event_base_free(srv.base);
	if (pidpath != NULL) {
		unlink(pidpath);
		free(pidpath);
	}
	close(lockfd);
	log_info("stopped");
	conf_free(srv.conf);
	free(srv.conf);
	return (0);
}

/*
 * mychatctl.c: the administration tool of mychatd. It works directly on
 * the database directory through the store, which opens the Berkeley DB
 * environment with DB_REGISTER|DB_RECOVER like the server does, so it can
 * run while the server runs. See mychatctl(8).
 */
#include "config.h"

#include <sys/types.h>
#include <sys/stat.h>

#include <grp.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>


#include "conf.h"
#include "log.h"
#include "passwd.h"
#include "proto.h"
#include "store.h"
#include "xmalloc.h"

/* Exit codes, documented in mychatctl(8). */
#define EXIT_OK		0
#define EXIT_FAIL	1	/* database or system error */
#define EXIT_USAGE	2	/* bad command line, name or password */
#define EXIT_NOUSER	3	/* no such user */
#define EXIT_EXISTS	4	/* the user already exists */
#define EXIT_DAMAGED	5	/* verify found the database damaged */

#define CTL_PW_NONE	0
#define CTL_PW_NEWUSER	1	/* for an account that must not exist */
#define CTL_PW_USER	2	/* for an account that must exist */

/* One subcommand: its name, arguments and handler. */
struct ctl_cmd {
	const char	*name;
	int		 min_args;
	int		 max_args;
	int		 creates;	/* may create a new database */
	int		 password;	/* asks for a password (CTL_PW_*) */
	const char	*usage;
	int		(*fn)(struct store *, const char *, int, char **);
};

static int	ctl_useradd(struct store *, const char *, int, char **);
static int	ctl_userdel(struct store *, const char *, int, char **);
static int	ctl_passwd(struct store *, const char *, int, char **);
static int	ctl_users(struct store *, const char *, int, char **);
static int	ctl_pending(struct store *, const char *, int, char **);
static int	ctl_verify(struct store *, const char *, int, char **);
static int	ctl_backup(struct store *, const char *, int, char **);

static const struct ctl_cmd ctl_cmds[] = {
	{ "useradd", 1, 1, 1, CTL_PW_NEWUSER, "useradd name", ctl_useradd },
	{ "userdel", 1, 1, 0, CTL_PW_NONE, "userdel name", ctl_userdel },
	{ "passwd", 1, 1, 0, CTL_PW_USER, "passwd name", ctl_passwd },
	{ "users", 0, 0, 0, CTL_PW_NONE, "users", ctl_users },
	{ "pending", 0, 1, 0, CTL_PW_NONE, "pending [name]", ctl_pending },
	{ "verify", 0, 0, 0, CTL_PW_NONE, "verify", ctl_verify },
	{ "backup", 1, 1, 0, CTL_PW_NONE, "backup directory", ctl_backup }
};

#define CTL_NCMDS	(sizeof(ctl_cmds) / sizeof(ctl_cmds[0]))

static const char	*ctl_progname = "mychatctl";

/* The password of useradd and passwd, read before the database opens. */
static char		 ctl_pw[PROTO_PASS_MAX + 2];

static void	usage(void) __attribute__((noreturn));

/* Print the synopsis and exit 2. */
static void
usage(void)
{
	size_t	i;

	fprintf(stderr, "usage: %s [-c config] [-d dbdir] command [arg]\n",
	    ctl_progname);
	fprintf(stderr, "commands:\n");
	for (i = 0; i < CTL_NCMDS; i++)
		fprintf(stderr, "\t%s\n", ctl_cmds[i].usage);
	exit(EXIT_USAGE);
}

/* Format a time in milliseconds, or "-" for never. */
static const char *
ctl_time(int64_t ms, char *buf)
{
	if (ms <= 0)
		return ("-");
	proto_format_time(ms, buf);
	return (buf);
}

/* A password is 1-256 bytes without blanks or control characters. */
static int
ctl_valid_password(const char *pw)
{
	size_t			 n;
	const unsigned char	*p = (const unsigned char *)pw;

	for (n = 0; p[n] != '\0'; n++)
		if (p[n] <= 0x20 || p[n] == 0x7f)
			return (0);
	return (n >= 1 && n <= PROTO_PASS_MAX);
}

/* The terminal while echo is off, for the signal handler. */
static struct termios		ctl_tty_saved;
static volatile sig_atomic_t	ctl_tty_fd = -1;

/* A signal while echo is off: turn echo back on, then die of it. */
static void
ctl_tty_signal(int sig)
{
	if (ctl_tty_fd != -1)
		(void)tcsetattr(ctl_tty_fd, TCSAFLUSH, &ctl_tty_saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * Read one line from the terminal with echo off. Returns 0, or -1 when
 * there is no terminal or the read fails.
 */
static int
ctl_read_tty(const char *prompt, char *buf, size_t len)
{
	struct termios	 saved, noecho;
	struct sigaction sa, oint, oterm, ohup;
	FILE		*tty;
	size_t		 n;
	int		 fd, rv = 0;

	if ((fd = open("/dev/tty", O_RDWR | O_CLOEXEC)) == -1)
		return (-1);
	if ((tty = fdopen(fd, "r+")) == NULL) {
		close(fd);
		return (-1);
	}
	if (tcgetattr(fd, &saved) == -1) {
		fclose(tty);
		return (-1);
	}
	noecho = saved;
	noecho.c_lflag &= ~(tcflag_t)ECHO;
	noecho.c_lflag |= ECHONL;
	fputs(prompt, tty);
	fflush(tty);
	ctl_tty_saved = saved;
	ctl_tty_fd = fd;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = ctl_tty_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &oint);
	sigaction(SIGTERM, &sa, &oterm);
	sigaction(SIGHUP, &sa, &ohup);
	if (tcsetattr(fd, TCSAFLUSH, &noecho) == -1)
		rv = -1;
	else if (fgets(buf, (int)len, tty) == NULL)
		rv = -1;
	(void)tcsetattr(fd, TCSAFLUSH, &saved);
	ctl_tty_fd = -1;
	sigaction(SIGINT, &oint, NULL);
	sigaction(SIGTERM, &oterm, NULL);
	sigaction(SIGHUP, &ohup, NULL);
	fclose(tty);
	if (rv == 0) {
		n = strcspn(buf, "\r\n");
		if (buf[n] == '\0' && n + 1 == len) {
			/* Longer than the buffer: refuse rather than cut. */
			passwd_wipe(buf, len);
			buf[0] = ' ';
			buf[1] = '\0';
		} else
			buf[n] = '\0';
	}
	return (rv);
}

/*
 * Get a new password for name: from MYCHATCTL_PASSWORD, else asked twice
 * on the terminal. Returns an exit code.
 */
static int
ctl_get_password(const char *name, char *pw, size_t len)
{
	char	 again[PROTO_PASS_MAX + 2], prompt[128];
	char	*env;

	if ((env = getenv("MYCHATCTL_PASSWORD")) != NULL) {
		if (strlen(env) >= len) {
			fprintf(stderr, "%s: password longer than %d bytes\n",
			    ctl_progname, PROTO_PASS_MAX);
			return (EXIT_USAGE);
		}
		strcpy(pw, env);
	} else {
		snprintf(prompt, sizeof(prompt), "New password for %s: ",
		    name);
		if (ctl_read_tty(prompt, pw, len) == -1) {
			fprintf(stderr, "%s: cannot read a password: no "
			    "terminal (set MYCHATCTL_PASSWORD)\n",
			    ctl_progname);
			return (EXIT_FAIL);
		}
		if (ctl_valid_password(pw)) {
			if (ctl_read_tty("Again: ", again,
			    sizeof(again)) == -1) {
				fprintf(stderr, "%s: cannot read a password\n",
				    ctl_progname);
				return (EXIT_FAIL);
			}
			if (strcmp(pw, again) != 0) {
				passwd_wipe(again, sizeof(again));
				fprintf(stderr, "%s: the passwords differ\n",
				    ctl_progname);
				return (EXIT_USAGE);
			}
			passwd_wipe(again, sizeof(again));
		}
	}
	if (!ctl_valid_password(pw)) {
		fprintf(stderr, "%s: a password is 1 to %d bytes without "
		    "spaces or control characters\n", ctl_progname,
		    PROTO_PASS_MAX);
		return (EXIT_USAGE);
	}
	return (EXIT_OK);
}

/* Hash pw with yescrypt at the default cost into hash. Returns 0 or -1. */
static int
ctl_hash(const char *pw, char *hash, size_t len)
{
	if (passwd_hash(pw, hash, len) == -1) {
		fprintf(stderr, "%s: cannot hash the password: %s\n",
		    ctl_progname, strerror(errno));
		return (-1);
	}
	return (0);
}

/* A database error: nothing of this command is kept. */
static int
ctl_dberror(struct store *st)
{
	store_abort(st);
	fprintf(stderr, "%s: database error\n", ctl_progname);
	return (EXIT_FAIL);
}

/* Check a name argument; prints the problem. */
static int
ctl_check_name(const char *name)
{
	if (strchr(name, ' ') != NULL || !proto_valid_name(name)) {
		fprintf(stderr, "%s: invalid name \"%s\" (1-%d characters of "
		    "A-Z a-z 0-9 _ . -)\n", ctl_progname, name,
		    PROTO_NAME_MAX);
		return (-1);
	}
	return (0);
}

/* Commit the open write group; prints the failure. */
static int
ctl_commit(struct store *st)
{
	if (store_commit(st) == -1) {
		fprintf(stderr, "%s: commit failed, nothing was changed\n",
		    ctl_progname);
		return (-1);
	}
	return (0);
}

/* useradd name: create an account, like REGISTER. */
static int
ctl_useradd(struct store *st, const char *dbdir, int argc, char **argv)
{
	struct store_user	u;
	int			rv;

	if (ctl_check_name(argv[0]) == -1)
		return (EXIT_USAGE);
	switch (store_user_get(st, argv[0], &u)) {
	case -1:
		return (ctl_dberror(st));
	case 1:
		fprintf(stderr, "%s: %s already exists\n", ctl_progname,
		    u.name);
		return (EXIT_EXISTS);
	}
	memset(&u, 0, sizeof(u));
	strcpy(u.name, argv[0]);
	rv = ctl_hash(ctl_pw, u.hash, sizeof(u.hash));
	passwd_wipe(ctl_pw, sizeof(ctl_pw));
	if (rv == -1)
		return (EXIT_FAIL);
	u.created_ms = proto_now_ms();
	rv = store_user_add(st, &u);
	passwd_wipe(u.hash, sizeof(u.hash));
	if (rv == -1) {
		return (ctl_dberror(st));
	}
	if (rv == 0) {
		/* Registered meanwhile, between our lookup and the add. */
		store_abort(st);
		fprintf(stderr, "%s: %s already exists\n", ctl_progname,
		    argv[0]);
		return (EXIT_EXISTS);
	}
	if (ctl_commit(st) == -1)
		return (EXIT_FAIL);
	printf("%s added\n", u.name);
	return (EXIT_OK);
}

/* userdel name: delete an account (its messages stay in the log). */
static int
ctl_userdel(struct store *st, const char *dbdir, int argc, char **argv)
{
	if (ctl_check_name(argv[0]) == -1)
		return (EXIT_USAGE);
	switch (store_user_del(st, argv[0])) {
	case -1:
		return (ctl_dberror(st));
	case 0:
		store_abort(st);
		fprintf(stderr, "%s: no such user %s\n", ctl_progname,
		    argv[0]);
		return (EXIT_NOUSER);
	}
	if (ctl_commit(st) == -1)
		return (EXIT_FAIL);
	printf("%s deleted\n", argv[0]);
	return (EXIT_OK);
}

/* passwd name: set a new password. */
static int
ctl_passwd(struct store *st, const char *dbdir, int argc, char **argv)
{
	struct store_user	u;
	char			hash[STORE_HASH_MAX];
	int			rv;

	if (ctl_check_name(argv[0]) == -1)
		return (EXIT_USAGE);
	rv = ctl_hash(ctl_pw, hash, sizeof(hash));
	passwd_wipe(ctl_pw, sizeof(ctl_pw));
	if (rv == -1)
		return (EXIT_FAIL);
	/*
	 * Read the record right before the write, so that a login the server
	 * records meanwhile is not overwritten with an older one.
	 */
	rv = store_user_get(st, argv[0], &u);
	if (rv == 1) {
		memcpy(u.hash, hash, sizeof(u.hash));
		rv = store_user_put(st, &u) == -1 ? -1 : 1;
	}
	passwd_wipe(hash, sizeof(hash));
	passwd_wipe(u.hash, sizeof(u.hash));
	if (rv != 1) {
		store_abort(st);
		if (rv == 0) {
			fprintf(stderr, "%s: no such user %s\n", ctl_progname,
			    argv[0]);
			return (EXIT_NOUSER);
		}
		return (ctl_dberror(st));
	}
	if (ctl_commit(st) == -1)
		return (EXIT_FAIL);
	printf("password of %s changed\n", u.name);
	return (EXIT_OK);
}

/* Print one user of the users listing. */
static int
ctl_users_cb(const struct store_user *u, void *arg)
{
	char	 t1[PROTO_TIME_LEN + 1], t2[PROTO_TIME_LEN + 1];
	int	*n = arg;

	printf("%-32s %-24s %-24s %s\n", u->name, ctl_time(u->created_ms, t1),
	    ctl_time(u->last_login_ms, t2),
	    u->last_ip[0] != '\0' ? u->last_ip : "-");
	(*n)++;
	return (0);
}

/* users: every account with its creation and last login. */
static int
ctl_users(struct store *st, const char *dbdir, int argc, char **argv)
{
	int	n = 0;

	printf("%-32s %-24s %-24s %s\n", "NAME", "CREATED", "LAST-LOGIN",
	    "LAST-IP");
	if (store_user_scan(st, ctl_users_cb, &n) == -1) {
		return (ctl_dberror(st));
	}
	return (EXIT_OK);
}

/* The state of a pending listing. */
struct ctl_pending {
	struct store	*st;
	int		 failed;
};

/* Print the pending count of one user. */
static int
ctl_pending_one(struct store *st, const struct store_user *u)
{
	uint64_t	ack = 0, count = 0;

	if (store_ack_get(st, u->name, &ack) == -1 ||
	    store_pending_count(st, u->name, ack, &count) == -1) {
		fprintf(stderr, "%s: database error reading %s\n",
		    ctl_progname, u->name);
		return (-1);
	}
	printf("%-32s %8llu %llu\n", u->name, (unsigned long long)count,
	    (unsigned long long)ack);
	return (0);
}

/* Scan callback of pending without a name. */
static int
ctl_pending_cb(const struct store_user *u, void *arg)
{
	struct ctl_pending	*cp = arg;

	if (ctl_pending_one(cp->st, u) == -1)
		cp->failed = 1;
	return (0);
}

/*
 * pending [name]: the messages waiting for each user (or for one), that
 * is, addressed to it with an id above its ACK cursor.
 */
static int
ctl_pending(struct store *st, const char *dbdir, int argc, char **argv)
{
	struct store_user	u;
	struct ctl_pending	cp;

	if (argc == 1) {
		if (ctl_check_name(argv[0]) == -1)
			return (EXIT_USAGE);
		switch (store_user_get(st, argv[0], &u)) {
		case -1:
			return (ctl_dberror(st));
		case 0:
			fprintf(stderr, "%s: no such user %s\n", ctl_progname,
			    argv[0]);
			return (EXIT_NOUSER);
		}
		printf("%-32s %8s %s\n", "NAME", "PENDING", "ACKED");
		return (ctl_pending_one(st, &u) == -1 ? EXIT_FAIL : EXIT_OK);
	}
	printf("%-32s %8s %s\n", "NAME", "PENDING", "ACKED");
	cp.st = st;
	cp.failed = 0;
	if (store_user_scan(st, ctl_pending_cb, &cp) == -1 || cp.failed) {
		return (ctl_dberror(st));
	}
	return (EXIT_OK);
}

/* verify: check the structure of every database file. */
static int
ctl_verify(struct store *st, const char *dbdir, int argc, char **argv)
{
	char	err[1024];

	err[0] = '\0';
	switch (store_verify(st, err, sizeof(err))) {
	case -1:
		fprintf(stderr, "%s: verify: %s\n", ctl_progname,
		    err[0] != '\0' ? err : "database error");
		return (EXIT_FAIL);
	case 0:
		fprintf(stderr, "%s: %s: DAMAGED: %s\n", ctl_progname, dbdir,
		    err[0] != '\0' ? err : "verification failed");
		return (EXIT_DAMAGED);
	}
	printf("%s: %s\n", dbdir, err[0] != '\0' ? err : "ok");
	return (EXIT_OK);
}

/* backup dir: a consistent hot backup, safe while the server runs. */
static int
ctl_backup(struct store *st, const char *dbdir, int argc, char **argv)
{
	char	err[1024];

	err[0] = '\0';
	if (store_backup(st, argv[0], err, sizeof(err)) == -1) {
		fprintf(stderr, "%s: backup to %s failed: %s\n", ctl_progname,
		    argv[0], err[0] != '\0' ? err : "database error");
		return (EXIT_FAIL);
	}
	printf("backup of %s written to %s\n", dbdir, argv[0]);
	return (EXIT_OK);
}

/*
 * Open the store with the terminating signals held back until ctl_close:
 * a process that dies with the environment open makes the next one that
 * opens it run recovery, which a running server does not survive.
 */
static int
ctl_open(struct store **st, const char *dbdir)
{
	sigset_t	set;
	char		err[1024];

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (store_open(st, dbdir, 0, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s: %s\n", ctl_progname, err);
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		return (-1);
	}
	return (0);
}

/* Close the store (aborting an unfinished write) and let signals in. */
static void
ctl_close(struct store *st)
{
	sigset_t	set;

	if (store_in_group(st))
		store_abort(st);
	store_close(st);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
}

/*
 * Before asking for a password, check that the account exists (passwd) or
 * not (useradd); the prompt then runs with the database closed. Returns an
 * exit code; the display name goes into name.
 */
static int
ctl_precheck(const struct ctl_cmd *cmd, const char *dbdir, const char *arg,
    char *name, size_t len)
{
	struct store_user	 u;
	struct store		*st;
	int			 found;

	if (ctl_check_name(arg) == -1)
		return (EXIT_USAGE);
	if (ctl_open(&st, dbdir) == -1)
		return (EXIT_FAIL);
	found = store_user_get(st, arg, &u);
	ctl_close(st);
	if (found == -1) {
		return (ctl_dberror(st));
	}
	if (found == 1 && cmd->password == CTL_PW_NEWUSER) {
		fprintf(stderr, "%s: %s already exists\n", ctl_progname,
		    u.name);
		return (EXIT_EXISTS);
	}
	if (found == 0 && cmd->password == CTL_PW_USER) {
		fprintf(stderr, "%s: no such user %s\n", ctl_progname, arg);
		return (EXIT_NOUSER);
	}
	snprintf(name, len, "%s", found == 1 ? u.name : arg);
	return (EXIT_OK);
}

/*
 * Run as root on a database that belongs to the server's user, become
 * that user: Berkeley DB creates log files and regions in the directory as
 * it goes, and a file owned by root there would stop the server.
 */
static int
ctl_become_owner(const char *dbdir)
{
	struct stat	sb;

	if (geteuid() != 0 || stat(dbdir, &sb) == -1 || sb.st_uid == 0)
		return (0);
	if (setgroups(0, NULL) == -1 || setgid(sb.st_gid) == -1 ||
	    setuid(sb.st_uid) == -1) {
		fprintf(stderr, "%s: cannot become uid %lu, the owner of %s: "
		    "%s\n", ctl_progname, (unsigned long)sb.st_uid, dbdir,
		    strerror(errno));
		return (-1);
	}
	return (0);
}

int
main(int argc, char *argv[])
{
	const struct ctl_cmd	*cmd = NULL;
	struct store		*st = NULL;
	struct conf		 conf;
	struct stat		 sb;
	const char		*cfile = NULL, *dbdir = NULL;
	char			 err[1024], name[PROTO_NAME_MAX + 1];
	size_t			 i;
	int			 ch, rv;

	if (argv[0] != NULL && strrchr(argv[0], '/') != NULL)
		ctl_progname = strrchr(argv[0], '/') + 1;
	else if (argv[0] != NULL)
		ctl_progname = argv[0];
	log_init(ctl_progname, 0, LOG_TO_STDERR);

	while ((ch = getopt(argc, argv, "+c:d:h")) != -1) {
		switch (ch) {
		case 'c':
			cfile = optarg;
			break;
		case 'd':
			dbdir = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	for (i = 0; i < CTL_NCMDS; i++)
		if (strcmp(argv[0], ctl_cmds[i].name) == 0)
			cmd = &ctl_cmds[i];
	if (cmd == NULL) {
		fprintf(stderr, "%s: unknown command \"%s\"\n", ctl_progname,
		    argv[0]);
		usage();
	}
	if (argc - 1 < cmd->min_args || argc - 1 > cmd->max_args) {
		fprintf(stderr, "usage: %s [-c config] [-d dbdir] %s\n",
		    ctl_progname, cmd->usage);
		return (EXIT_USAGE);
	}

	/* The database: -d, else the configuration file's, else var/db. */
	conf_defaults(&conf);
	if (cfile != NULL && conf_load(&conf, cfile, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s: %s\n", ctl_progname, err);
		conf_free(&conf);
		return (EXIT_FAIL);
	}
	if (dbdir == NULL)
		dbdir = conf.dbdir;

	/* A closed pipe (users | head) must not kill a write group. */
	signal(SIGPIPE, SIG_IGN);

	/*
	 * Only useradd may create a database: anything else on a directory
	 * without one is a typo, not an empty database.
	 */
	snprintf(err, sizeof(err), "%s/users.db", dbdir);
	if (!cmd->creates && stat(err, &sb) == -1) {
		fprintf(stderr, "%s: %s: no mychat database here (%s)\n",
		    ctl_progname, dbdir, strerror(errno));
		conf_free(&conf);
		return (EXIT_FAIL);
	}
	if (ctl_become_owner(dbdir) == -1) {
		conf_free(&conf);
		return (EXIT_FAIL);
	}
	if (cmd->password != CTL_PW_NONE) {
		/* A password from the environment is checked first. */
		rv = EXIT_OK;
		if (getenv("MYCHATCTL_PASSWORD") != NULL)
			rv = ctl_get_password(argv[1], ctl_pw, sizeof(ctl_pw));
		if (rv == EXIT_OK)
			rv = ctl_precheck(cmd, dbdir, argv[1], name,
			    sizeof(name));
		if (rv == EXIT_OK && getenv("MYCHATCTL_PASSWORD") == NULL)
			rv = ctl_get_password(name, ctl_pw, sizeof(ctl_pw));
		if (rv != EXIT_OK) {
			passwd_wipe(ctl_pw, sizeof(ctl_pw));
			conf_free(&conf);
			return (rv);
		}
	}
	if (ctl_open(&st, dbdir) == -1) {
		passwd_wipe(ctl_pw, sizeof(ctl_pw));
		conf_free(&conf);
		return (EXIT_FAIL);
	}
	rv = cmd->fn(st, dbdir, argc - 1, argv + 1);
	ctl_close(st);
	passwd_wipe(ctl_pw, sizeof(ctl_pw));
	if (fflush(stdout) == EOF && rv == EXIT_OK)
		rv = EXIT_FAIL;
	conf_free(&conf);
	return (rv);
}

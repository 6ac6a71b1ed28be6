/*
 * conf.c: the daemon's settings: compiled-in defaults and the parser of
 * mychatd.conf(5), a file of "key value" lines.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include "conf.h"
#include "log.h"
#include "proto.h"
#include "xmalloc.h"

#define CONF_MAX_WORDS	4	/* key plus at most three values */

/* How a key's value is read. */
enum conf_type {
	CT_LISTEN,
	CT_INT,		/* plain decimal number */
	CT_SIZE,	/* bytes, with an optional K or M suffix */
	CT_BOOL,	/* yes or no */
	CT_STRING,	/* one word (a path or a name) */
	CT_DURABILITY,
	CT_EXEMPT,
	CT_ADMIN,
	CT_LOG,
	CT_FACILITY
};

/* One key of the file: where its value goes and what it may be. */
struct conf_key {
	const char	*name;
	enum conf_type	 type;
	int		 repeatable;
	long long	 min;
	long long	 max;
	size_t		 off;	/* offset of the field in struct conf */
};

#define OFF(f)	offsetof(struct conf, f)

static const struct conf_key conf_keys[] = {
	{ "listen", CT_LISTEN, 1, 0, 0, 0 },
	{ "port", CT_INT, 0, 1, 65535, OFF(port) },
	{ "tls-port", CT_INT, 0, 0, 65535, OFF(tls_port) },
	{ "tls-cert", CT_STRING, 0, 0, 0, OFF(tls_cert) },
	{ "tls-key", CT_STRING, 0, 0, 0, OFF(tls_key) },
	{ "require-tls", CT_BOOL, 0, 0, 1, OFF(require_tls) },
	{ "database", CT_STRING, 0, 0, 0, OFF(dbdir) },
	{ "durability", CT_DURABILITY, 0, 0, 0, 0 },
	{ "max-line", CT_SIZE, 0, 64, 64LL << 20, OFF(max_line) },
	{ "output-limit", CT_SIZE, 0, 4096, 1LL << 30, OFF(out_limit) },
	{ "idle-timeout", CT_INT, 0, 0, 31536000, OFF(idle_timeout) },
	{ "login-timeout", CT_INT, 0, 0, 31536000, OFF(login_timeout) },
	{ "max-connections", CT_INT, 0, 1, 1000000, OFF(max_conns) },
	{ "max-connections-per-ip", CT_INT, 0, 1, 1000000, OFF(max_conns_ip) },
	{ "command-rate", CT_INT, 0, 1, 1000000, OFF(cmd_rate) },
	{ "command-burst", CT_INT, 0, 1, 1000000, OFF(cmd_burst) },
	{ "login-failures", CT_INT, 0, 1, 1000000, OFF(login_failures) },
	{ "registrations-per-hour", CT_INT, 0, 1, 1000000, OFF(reg_per_hour) },
	{ "max-pending", CT_INT, 0, 1, INT_MAX, OFF(max_pending) },
	{ "exempt", CT_EXEMPT, 1, 0, 0, 0 },
	{ "admin", CT_ADMIN, 1, 0, 0, 0 },
	{ "hash-threads", CT_INT, 0, 1, 64, OFF(hash_threads) },
	{ "log", CT_LOG, 0, 0, 0, 0 },
	{ "log-facility", CT_FACILITY, 0, 0, 0, 0 },
	{ "pidfile", CT_STRING, 0, 0, 0, OFF(pidfile) },
	{ "user", CT_STRING, 0, 0, 0, OFF(user) }
};

#define CONF_NKEYS	(sizeof(conf_keys) / sizeof(conf_keys[0]))

static const struct {
	const char	*name;
	int		 facility;
} conf_facilities[] = {
	{ "daemon", LOG_DAEMON }, { "user", LOG_USER },
	{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
	{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
	{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
	{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 }
};

/* The state of one conf_load call, for error messages. */
struct conf_parse {
	const char	*path;
	int		 lineno;
	char		*errbuf;
	size_t		 errlen;
	int		 seen[CONF_NKEYS];	/* line of first use, or 0 */
	int		 exempt_set;		/* the file replaced the list */
};

static int	conf_error(struct conf_parse *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

/* Fill in the compiled-in defaults; every string is heap-allocated. */
void
conf_defaults(struct conf *conf)
{
	memset(conf, 0, sizeof(*conf));
	conf->nlisten = 0;
	conf->port = PROTO_DEFAULT_PORT;
	conf->tls_port = 0;
	conf->require_tls = 0;
	conf->dbdir = xstrdup("var/db");
	conf->durability = DURABLE_SYNC;
	conf->max_line = PROTO_LINE_DEFAULT;
	conf->out_limit = 262144;
	conf->idle_timeout = 300;
	conf->login_timeout = 60;
	conf->max_conns = 10000;
	conf->max_conns_ip = 1000;
	conf->cmd_rate = 1000;
	conf->cmd_burst = 2000;
	conf->login_failures = 10;
	conf->reg_per_hour = 100;
	conf->max_pending = 100000;
	conf->exempt[0] = xstrdup("127.0.0.1");
	conf->exempt[1] = xstrdup("::1");
	conf->nexempt = 2;
	conf->nadmins = 0;
	conf->hash_threads = 2;
	conf->log_target = LOG_TO_STDERR;
	conf->log_file = NULL;
	conf->log_facility = LOG_DAEMON;
	conf->pidfile = NULL;
	conf->user = NULL;
}

/* Free every string of the settings; the struct can then be refilled. */
void
conf_free(struct conf *conf)
{
	int	i;

	for (i = 0; i < conf->nlisten; i++)
		free(conf->listen[i]);
	for (i = 0; i < conf->nexempt; i++)
		free(conf->exempt[i]);
	for (i = 0; i < conf->nadmins; i++)
		free(conf->admins[i]);
	free(conf->tls_cert);
	free(conf->tls_key);
	free(conf->dbdir);
	free(conf->log_file);
	free(conf->pidfile);
	free(conf->user);
	memset(conf, 0, sizeof(*conf));
}

/* Is name (any case) one of the admin accounts? */
int
conf_is_admin(const struct conf *conf, const char *name)
{
	int	i;

	for (i = 0; i < conf->nadmins; i++)
		if (strcasecmp(conf->admins[i], name) == 0)
			return (1);
	return (0);
}

/* Is the numeric address ip exempt from the per-IP limits? */
int
conf_is_exempt(const struct conf *conf, const char *ip)
{
	int	i;

	for (i = 0; i < conf->nexempt; i++)
		if (strcmp(conf->exempt[i], ip) == 0)
			return (1);
	return (0);
}

/* Write "FILE:LINE: problem" into the caller's buffer; returns -1. */
static int
conf_error(struct conf_parse *p, const char *fmt, ...)
{
	char	msg[512];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->errlen > 0)
		snprintf(p->errbuf, p->errlen, "%s:%d: %s", p->path, p->lineno,
		    msg);
	return (-1);
}

/*
 * Split a line into words at blanks. A word may be double-quoted to hold
 * blanks or '#'; an unquoted word starting with '#' begins a comment.
 * Returns the number of words, or -1 (with the error set).
 */
static int
conf_split(struct conf_parse *p, char *line, char **words, int maxwords)
{
	char	*s = line, *q;
	int	 n = 0;

	for (;;) {
		while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
			s++;
		if (*s == '\0' || *s == '#')
			break;
		if (n == maxwords)
			return (n + 1);	/* the caller reports too many */
		if (*s == '"') {
			q = strchr(s + 1, '"');
			if (q == NULL)
				return (conf_error(p, "unterminated quote"));
			if (q[1] != '\0' && !isspace((unsigned char)q[1]))
				return (conf_error(p,
				    "text after a closing quote"));
			words[n++] = s + 1;
			*q = '\0';
			s = q + 1;
			continue;
		}
		words[n++] = s;
		while (*s != '\0' && *s != ' ' && *s != '\t' && *s != '\r' &&
		    *s != '\n')
			s++;
		if (*s != '\0')
			*s++ = '\0';
	}
	return (n);
}

/*
 * Parse a decimal number; with sizes, a K or M suffix multiplies by 1024
 * or 1048576. Returns -1 (with the error set) when it is not a number in
 * the key's range.
 */
static int
conf_number(struct conf_parse *p, const struct conf_key *k, const char *s,
    long long *out)
{
	const char	*t;
	long long	 v = 0, mult = 1;

	for (t = s; *t >= '0' && *t <= '9'; t++) {
		if (v > (LLONG_MAX - (*t - '0')) / 10) {
			v = LLONG_MAX;
			while (*t >= '0' && *t <= '9')
				t++;
			break;
		}
		v = v * 10 + (*t - '0');
	}
	if (t != s && k->type == CT_SIZE && t[0] != '\0' && t[1] == '\0') {
		if (*t == 'k' || *t == 'K')
			mult = 1024;
		else if (*t == 'm' || *t == 'M')
			mult = 1024 * 1024;
		if (mult != 1)
			t++;
	}
	if (t == s || *t != '\0')
		return (conf_error(p, "%s: bad number \"%s\"%s", k->name, s,
		    k->type == CT_SIZE ? " (bytes, optional K or M suffix)" :
		    ""));
	if (v > LLONG_MAX / mult)
		v = LLONG_MAX;
	else
		v *= mult;
	if (v < k->min || v > k->max)
		return (conf_error(p, "%s: %s out of range (%lld-%lld)",
		    k->name, s, k->min, k->max));
	*out = v;
	return (0);
}

/*
 * Canonical text of a numeric IPv4 or IPv6 address in buf (at least
 * INET6_ADDRSTRLEN bytes), so that "::0001" and "::1" compare equal.
 */
static int
conf_canon_addr(const char *s, char *buf, size_t len)
{
	struct in_addr	 a4;
	struct in6_addr	 a6;

	if (inet_pton(AF_INET, s, &a4) == 1)
		return (inet_ntop(AF_INET, &a4, buf, len) == NULL ? -1 : 0);
	if (inet_pton(AF_INET6, s, &a6) == 1)
		return (inet_ntop(AF_INET6, &a6, buf, len) == NULL ? -1 : 0);
	return (-1);
}

/* Apply one "key value..." line to conf. */
static int
conf_apply(struct conf_parse *p, struct conf *conf, const struct conf_key *k,
    char **v, int nv)
{
	char		 addr[INET6_ADDRSTRLEN], name[PROTO_NAME_MAX + 1];
	char		**sp;
	long long	 n;
	size_t		 i;
	int		 want = 1;

	if (k->type == CT_LOG && nv >= 1 && strcmp(v[0], "file") == 0)
		want = 2;
	if (nv < want)
		return (conf_error(p, "missing value for \"%s\"%s", k->name,
		    want == 2 ? " file (a path)" : ""));
	if (nv > want)
		return (conf_error(p, "too many values for \"%s\"", k->name));

	switch (k->type) {
	case CT_LISTEN:
		if (conf_canon_addr(v[0], addr, sizeof(addr)) == -1)
			return (conf_error(p, "listen: \"%s\" is not a numeric "
			    "IPv4 or IPv6 address", v[0]));
		if (conf->nlisten == CONF_MAX_LISTEN)
			return (conf_error(p, "too many \"listen\" lines "
			    "(at most %d)", CONF_MAX_LISTEN));
		conf->listen[conf->nlisten++] = xstrdup(addr);
		break;
	case CT_INT:
		if (conf_number(p, k, v[0], &n) == -1)
			return (-1);
		*(int *)(void *)((char *)conf + k->off) = (int)n;
		break;
	case CT_SIZE:
		if (conf_number(p, k, v[0], &n) == -1)
			return (-1);
		*(size_t *)(void *)((char *)conf + k->off) = (size_t)n;
		break;
	case CT_BOOL:
		if (strcmp(v[0], "yes") == 0)
			n = 1;
		else if (strcmp(v[0], "no") == 0)
			n = 0;
		else
			return (conf_error(p, "%s: expected yes or no, not "
			    "\"%s\"", k->name, v[0]));
		*(int *)(void *)((char *)conf + k->off) = (int)n;
		break;
	case CT_STRING:
		if (v[0][0] == '\0')
			return (conf_error(p, "%s: empty value", k->name));
		sp = (char **)(void *)((char *)conf + k->off);
		free(*sp);
		*sp = xstrdup(v[0]);
		break;
	case CT_DURABILITY:
		if (strcmp(v[0], "sync") == 0)
			conf->durability = DURABLE_SYNC;
		else if (strcmp(v[0], "nosync") == 0)
			conf->durability = DURABLE_NOSYNC;
		else
			return (conf_error(p, "durability: expected sync or "
			    "nosync, not \"%s\"", v[0]));
		break;
	case CT_EXEMPT:
		if (conf_canon_addr(v[0], addr, sizeof(addr)) == -1)
			return (conf_error(p, "exempt: \"%s\" is not a numeric "
			    "IPv4 or IPv6 address", v[0]));
		/* The first exempt line replaces the built-in list. */
		if (!p->exempt_set) {
			while (conf->nexempt > 0)
				free(conf->exempt[--conf->nexempt]);
			p->exempt_set = 1;
		}
		if (conf_is_exempt(conf, addr))
			break;
		if (conf->nexempt == CONF_MAX_EXEMPT)
			return (conf_error(p, "too many \"exempt\" lines "
			    "(at most %d)", CONF_MAX_EXEMPT));
		conf->exempt[conf->nexempt++] = xstrdup(addr);
		break;
	case CT_ADMIN:
		if (!proto_valid_name(v[0]) || strchr(v[0], ' ') != NULL)
			return (conf_error(p, "admin: invalid name \"%s\" "
			    "(1-%d characters of A-Z a-z 0-9 _ . -)", v[0],
			    PROTO_NAME_MAX));
		proto_lower(name, v[0], sizeof(name));
		if (conf_is_admin(conf, name))
			break;
		if (conf->nadmins == CONF_MAX_ADMINS)
			return (conf_error(p, "too many \"admin\" lines "
			    "(at most %d)", CONF_MAX_ADMINS));
		conf->admins[conf->nadmins++] = xstrdup(name);
		break;
	case CT_LOG:
		free(conf->log_file);
		conf->log_file = NULL;
		if (strcmp(v[0], "stderr") == 0)
			conf->log_target = LOG_TO_STDERR;
		else if (strcmp(v[0], "syslog") == 0)
			conf->log_target = LOG_TO_SYSLOG;
		else if (strcmp(v[0], "file") == 0) {
			if (v[1][0] == '\0')
				return (conf_error(p, "log: empty file name"));
			conf->log_target = LOG_TO_FILE;
			conf->log_file = xstrdup(v[1]);
		} else
			return (conf_error(p, "log: expected stderr, syslog or "
			    "file PATH, not \"%s\"", v[0]));
		break;
	case CT_FACILITY:
		for (i = 0; i < sizeof(conf_facilities) /
		    sizeof(conf_facilities[0]); i++)
			if (strcmp(v[0], conf_facilities[i].name) == 0)
				break;
		if (i == sizeof(conf_facilities) / sizeof(conf_facilities[0]))
			return (conf_error(p, "log-facility: expected daemon, "
			    "user or local0 to local7, not \"%s\"", v[0]));
		conf->log_facility = conf_facilities[i].facility;
		break;
	default:
		return (conf_error(p, "internal error: key type %d", k->type));
	}
	return (0);
}

/* What is wrong with key name given the whole file, or NULL. */
static const char *
conf_check_key(const char *name, const struct conf *conf)
{
	int	certkey = conf->tls_cert != NULL && conf->tls_key != NULL;

	if (strcmp(name, "tls-port") == 0 && conf->tls_port != 0) {
		if (!certkey)
			return ("tls-port needs tls-cert and tls-key");
		if (conf->tls_port == conf->port)
			return ("tls-port is the same as port");
	}
	if (strcmp(name, "require-tls") == 0 && conf->require_tls && !certkey)
		return ("require-tls needs tls-cert and tls-key");
	if ((strcmp(name, "tls-cert") == 0 || strcmp(name, "tls-key") == 0) &&
	    !certkey)
		return ("tls-cert and tls-key go together");
	return (NULL);
}

/*
 * Settings that only make sense together, checked after the last line.
 * Of several problems, the one on the earliest line is reported, as a
 * reader of the file would meet them.
 */
static int
conf_check(struct conf_parse *p, struct conf *conf)
{
	const char	*msg, *first = NULL;
	size_t		 i;

	for (i = 0; i < CONF_NKEYS; i++) {
		if (p->seen[i] == 0 ||
		    (msg = conf_check_key(conf_keys[i].name, conf)) == NULL)
			continue;
		if (first == NULL || p->seen[i] < p->lineno) {
			first = msg;
			p->lineno = p->seen[i];
		}
	}
	if (first != NULL)
		return (conf_error(p, "%s", first));
	return (0);
}

/*
 * Read the configuration file path into conf, over what conf holds (the
 * defaults). Returns 0, or -1 with "FILE:LINE: problem" in errbuf; conf
 * may then be partly changed but stays valid for conf_free.
 */
int
conf_load(struct conf *conf, const char *path, char *errbuf, size_t errlen)
{
	struct conf_parse	 p;
	FILE			*fp;
	char			*line = NULL, *words[CONF_MAX_WORDS];
	size_t			 cap = 0, i;
	ssize_t			 len;
	int			 n, rv = -1;

	memset(&p, 0, sizeof(p));
	p.path = path;
	p.errbuf = errbuf;
	p.errlen = errlen;
	if (errlen > 0)
		errbuf[0] = '\0';

	if ((fp = fopen(path, "r")) == NULL) {
		if (errlen > 0)
			snprintf(errbuf, errlen, "%s: %s", path,
			    strerror(errno));
		return (-1);
	}
	while ((len = getline(&line, &cap, fp)) != -1) {
		p.lineno++;
		if (memchr(line, '\0', (size_t)len) != NULL) {
			conf_error(&p, "NUL byte in line");
			goto out;
		}
		if ((n = conf_split(&p, line, words, CONF_MAX_WORDS)) == -1)
			goto out;
		if (n == 0)
			continue;
		for (i = 0; i < CONF_NKEYS; i++)
			if (strcmp(words[0], conf_keys[i].name) == 0)
				break;
		if (i == CONF_NKEYS) {
			conf_error(&p, "unknown key \"%s\"", words[0]);
			goto out;
		}
		if (n > CONF_MAX_WORDS) {
			conf_error(&p, "too many values for \"%s\"", words[0]);
			goto out;
		}
		if (p.seen[i] != 0 && !conf_keys[i].repeatable) {
			conf_error(&p, "duplicate \"%s\" (first set on line "
			    "%d)", words[0], p.seen[i]);
			goto out;
		}
		if (p.seen[i] == 0)
			p.seen[i] = p.lineno;
		if (conf_apply(&p, conf, &conf_keys[i], words + 1, n - 1) == -1)
			goto out;
	}
	if (ferror(fp)) {
		if (errlen > 0)
			snprintf(errbuf, errlen, "%s: %s", path,
			    strerror(errno));
		goto out;
	}
	rv = conf_check(&p, conf);
out:
	free(line);
	fclose(fp);
	return (rv);
}

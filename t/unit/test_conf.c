/* test_conf.c: unit tests of the configuration parser (TAP output). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "tap.h"

static char	tmpl[256];

/* Write text to the scratch file and return its path. */
static const char *
write_file(const char *text)
{
	FILE	*fp;

	if ((fp = fopen(tmpl, "w")) == NULL) {
		perror(tmpl);
		exit(1);
	}
	fputs(text, fp);
	fclose(fp);
	return (tmpl);
}

/* Load text over the defaults; the error text goes into err. */
static int
load(struct conf *c, const char *text, char *err, size_t errlen)
{
	conf_defaults(c);
	return (conf_load(c, write_file(text), err, errlen));
}

/* Expect text to be refused with the error "<file>:<line>: <problem>". */
static void
load_fails(const char *text, int line, const char *problem)
{
	struct conf	c;
	char		err[512], want[512];
	int		rv;

	rv = load(&c, text, err, sizeof(err));
	snprintf(want, sizeof(want), "%s:%d: %s", tmpl, line, problem);
	tap_ok(rv == -1, "refused: %s", problem);
	tap_is_str(rv == -1 ? err : "(accepted)", want, "  error text");
	conf_free(&c);
}

static void
test_defaults(void)
{
	struct conf	c;

	conf_defaults(&c);
	tap_ok(c.port == 5555 && c.tls_port == 0 && c.nlisten == 0,
	    "default ports, no listen address");
	tap_is_str(c.dbdir, "var/db", "default database directory");
	tap_ok(c.max_line == 65536 && c.out_limit == 262144, "default sizes");
	tap_ok(c.idle_timeout == 300 && c.login_timeout == 60,
	    "default timeouts");
	tap_ok(c.max_conns == 10000 && c.max_conns_ip == 1000,
	    "default connection limits");
	tap_ok(c.cmd_rate == 1000 && c.cmd_burst == 2000 &&
	    c.login_failures == 10 && c.reg_per_hour == 100 &&
	    c.max_pending == 100000, "default rate limits");
	tap_ok(c.nexempt == 2 && conf_is_exempt(&c, "127.0.0.1") &&
	    conf_is_exempt(&c, "::1") && !conf_is_exempt(&c, "10.0.0.1"),
	    "default exempt list is loopback");
	tap_ok(c.hash_threads == 2 && c.durability == DURABLE_SYNC,
	    "default hash threads and durability");
	tap_ok(c.log_target == LOG_TO_STDERR && c.log_facility == LOG_DAEMON &&
	    c.log_file == NULL, "default log");
	tap_ok(c.pidfile == NULL && c.user == NULL && c.nadmins == 0 &&
	    c.tls_cert == NULL && c.tls_key == NULL && !c.require_tls,
	    "default unset strings");
	conf_free(&c);
}

static void
test_full(void)
{
	struct conf	c;
	char		err[512];
	int		rv;

	rv = load(&c,
	    "# a full file\n"
	    "\n"
	    "   \t\n"
	    "listen 127.0.0.1\n"
	    "listen ::0001   # canonicalised\n"
	    "port 6000\n"
	    "tls-port 6001\n"
	    "tls-cert \"/etc/my chat/cert.pem\"\n"
	    "tls-key /etc/mychat/key.pem\n"
	    "require-tls yes\n"
	    "database /var/lib/mychat\n"
	    "durability nosync\n"
	    "max-line 4K\n"
	    "output-limit 1M\n"
	    "idle-timeout 0\n"
	    "login-timeout 30\n"
	    "max-connections 50\n"
	    "max-connections-per-ip 5\n"
	    "command-rate 10\n"
	    "command-burst 20\n"
	    "login-failures 3\n"
	    "registrations-per-hour 7\n"
	    "max-pending 99\n"
	    "exempt 192.0.2.1\n"
	    "exempt 2001:DB8::1\n"
	    "admin Alice\n"
	    "admin bob\n"
	    "admin ALICE\n"
	    "hash-threads 4\n"
	    "log file /var/log/mychatd.log\n"
	    "log-facility local3\n"
	    "pidfile /run/mychatd.pid\n"
	    "user\t_mychat\r\n",
	    err, sizeof(err));
	tap_ok(rv == 0, "full file loads");
	if (rv != 0)
		printf("#   error: %s\n", err);
	tap_ok(c.nlisten == 2, "two listen addresses");
	tap_is_str(c.listen[0], "127.0.0.1", "listen 1");
	tap_is_str(c.listen[1], "::1", "listen 2 canonical");
	tap_ok(c.port == 6000 && c.tls_port == 6001, "ports");
	tap_is_str(c.tls_cert, "/etc/my chat/cert.pem",
	    "quoted value keeps blanks");
	tap_is_str(c.tls_key, "/etc/mychat/key.pem", "tls-key");
	tap_ok(c.require_tls == 1, "require-tls yes");
	tap_is_str(c.dbdir, "/var/lib/mychat", "database");
	tap_ok(c.durability == DURABLE_NOSYNC, "durability nosync");
	tap_ok(c.max_line == 4096, "max-line 4K is 4096");
	tap_ok(c.out_limit == 1048576, "output-limit 1M is 1048576");
	tap_ok(c.idle_timeout == 0 && c.login_timeout == 30, "timeouts");
	tap_ok(c.max_conns == 50 && c.max_conns_ip == 5, "connection limits");
	tap_ok(c.cmd_rate == 10 && c.cmd_burst == 20 && c.login_failures == 3 &&
	    c.reg_per_hour == 7 && c.max_pending == 99, "rate limits");
	tap_ok(c.nexempt == 2 && conf_is_exempt(&c, "192.0.2.1") &&
	    conf_is_exempt(&c, "2001:db8::1") &&
	    !conf_is_exempt(&c, "127.0.0.1"),
	    "exempt lines replace the defaults, stored canonical");
	tap_ok(c.nadmins == 2, "duplicate admin stored once");
	tap_is_str(c.admins[0], "alice", "admin stored lower-case");
	tap_ok(conf_is_admin(&c, "ALICE") && conf_is_admin(&c, "Bob") &&
	    !conf_is_admin(&c, "carol") && !conf_is_admin(&c, "alic"),
	    "conf_is_admin is case-insensitive and exact");
	tap_ok(c.hash_threads == 4, "hash-threads");
	tap_ok(c.log_target == LOG_TO_FILE, "log file");
	tap_is_str(c.log_file, "/var/log/mychatd.log", "log file path");
	tap_ok(c.log_facility == LOG_LOCAL3, "log-facility local3");
	tap_is_str(c.pidfile, "/run/mychatd.pid", "pidfile");
	tap_is_str(c.user, "_mychat", "user (tab separator, CRLF line)");
	conf_free(&c);
	tap_ok(c.dbdir == NULL && c.nadmins == 0,
	    "conf_free clears the struct");
}

static void
test_partial(void)
{
	struct conf	c;
	char		err[512];

	tap_ok(load(&c, "port 7000\nlog syslog\n", err, sizeof(err)) == 0,
	    "partial file loads");
	tap_ok(c.port == 7000 && c.max_line == 65536 && c.idle_timeout == 300,
	    "keys not in the file keep their defaults");
	tap_is_str(c.dbdir, "var/db", "database default kept");
	tap_ok(c.nexempt == 2, "exempt defaults kept without exempt lines");
	tap_ok(c.log_target == LOG_TO_SYSLOG && c.log_file == NULL,
	    "log syslog");
	conf_free(&c);

	tap_ok(load(&c, "", err, sizeof(err)) == 0, "empty file loads");
	conf_free(&c);
	tap_ok(load(&c, "# only a comment", err, sizeof(err)) == 0,
	    "comment without a final newline loads");
	conf_free(&c);
	tap_ok(load(&c, "max-line 65536\nmax-line 1\n", err, sizeof(err)) == -1,
	    "duplicate key is refused");
	conf_free(&c);

	/* SIGHUP: a fresh struct, then the file again. */
	tap_ok(load(&c, "admin root\nidle-timeout 5\n", err,
	    sizeof(err)) == 0 &&
	    c.idle_timeout == 5 && conf_is_admin(&c, "root"),
	    "first load");
	conf_free(&c);
	tap_ok(load(&c, "idle-timeout 9\n", err, sizeof(err)) == 0 &&
	    c.idle_timeout == 9 && !conf_is_admin(&c, "root"),
	    "reload into a fresh struct forgets removed admins");
	conf_free(&c);
}

static void
test_errors(void)
{
	struct conf	c;
	char		err[512], nine[512];
	int		i;

	load_fails("port 1\nprot 5555\n", 2, "unknown key \"prot\"");
	load_fails("\n\n# x\nport\n", 4, "missing value for \"port\"");
	load_fails("port 55x\n", 1, "port: bad number \"55x\"");
	load_fails("port -1\n", 1, "port: bad number \"-1\"");
	load_fails("port 70000\n", 1, "port: 70000 out of range (1-65535)");
	load_fails("port 0\n", 1, "port: 0 out of range (1-65535)");
	load_fails("port 99999999999999999999999\n", 1,
	    "port: 99999999999999999999999 out of range (1-65535)");
	load_fails("max-line 63\n", 1,
	    "max-line: 63 out of range (64-67108864)");
	load_fails("max-line 4G\n", 1,
	    "max-line: bad number \"4G\" (bytes, optional K or M suffix)");
	load_fails("max-line K\n", 1,
	    "max-line: bad number \"K\" (bytes, optional K or M suffix)");
	load_fails("idle-timeout 5K\n", 1, "idle-timeout: bad number \"5K\"");
	load_fails("port 5555\nport 5556\n", 2,
	    "duplicate \"port\" (first set on line 1)");
	load_fails("port 5555 5556\n", 1, "too many values for \"port\"");
	load_fails("user a b c d e f\n", 1, "too many values for \"user\"");
	load_fails("require-tls maybe\n", 1,
	    "require-tls: expected yes or no, not \"maybe\"");
	load_fails("durability fast\n", 1,
	    "durability: expected sync or nosync, not \"fast\"");
	load_fails("log file\n", 1, "missing value for \"log\" file (a path)");
	load_fails("log stderr x\n", 1, "too many values for \"log\"");
	load_fails("log console\n", 1,
	    "log: expected stderr, syslog or file PATH, not \"console\"");
	load_fails("log-facility kern\n", 1,
	    "log-facility: expected daemon, user or local0 to local7, not "
	    "\"kern\"");
	load_fails("admin bad/name\n", 1, "admin: invalid name \"bad/name\" "
	    "(1-32 characters of A-Z a-z 0-9 _ . -)");
	load_fails("admin \"bob smith\"\n", 1,
	    "admin: invalid name \"bob smith\" "
	    "(1-32 characters of A-Z a-z 0-9 _ . -)");
	load_fails("admin abcdefghijabcdefghijabcdefghijabc\n", 1,
	    "admin: invalid name \"abcdefghijabcdefghijabcdefghijabc\" "
	    "(1-32 characters of A-Z a-z 0-9 _ . -)");
	load_fails("listen localhost\n", 1,
	    "listen: \"localhost\" is not a numeric IPv4 or IPv6 address");
	load_fails("exempt 10.0.0.300\n", 1,
	    "exempt: \"10.0.0.300\" is not a numeric IPv4 or IPv6 address");
	load_fails("user \"abc\n", 1, "unterminated quote");
	load_fails("user \"abc\"def\n", 1, "text after a closing quote");
	load_fails("database \"\"\n", 1, "database: empty value");
	load_fails("port 6000\ntls-port 6001\n", 2,
	    "tls-port needs tls-cert and tls-key");
	load_fails("tls-cert a\ntls-key b\ntls-port 5555\n", 3,
	    "tls-port is the same as port");
	load_fails("tls-cert a.pem\n", 1, "tls-cert and tls-key go together");
	load_fails("require-tls yes\n", 1,
	    "require-tls needs tls-cert and tls-key");
	/* of several problems, the earliest line's, not the table's order */
	load_fails("require-tls yes\ntls-port 6001\n", 1,
	    "require-tls needs tls-cert and tls-key");
	load_fails("tls-cert a.pem\nport 6000\ntls-port 6001\n", 1,
	    "tls-cert and tls-key go together");
	load_fails("tls-port 6001\nrequire-tls yes\ntls-key k.pem\n", 1,
	    "tls-port needs tls-cert and tls-key");

	nine[0] = '\0';
	for (i = 1; i <= 9; i++) {
		char	l[32];

		snprintf(l, sizeof(l), "listen 10.0.0.%d\n", i);
		strcat(nine, l);
	}
	load_fails(nine, 9, "too many \"listen\" lines (at most 8)");

	conf_defaults(&c);
	tap_ok(conf_load(&c, "/nonexistent/mychatd.conf", err,
	    sizeof(err)) == -1,
	    "missing file is refused");
	tap_is_str(err, "/nonexistent/mychatd.conf: No such file or directory",
	    "  error names the file");
	conf_free(&c);

	/* A tiny error buffer is never overrun. */
	conf_defaults(&c);
	memset(err, 'x', sizeof(err));
	tap_ok(conf_load(&c, write_file("bogus 1\n"), err, 8) == -1 &&
	    strlen(err) == 7 && err[8] == 'x', "error text is truncated");
	conf_free(&c);
}

/*
 * The example etc/mychatd.conf loads, and with every "#key value" line
 * uncommented it still loads and gives the built-in defaults: the
 * defaults it documents are the real ones.
 */
static void
test_example(void)
{
	struct conf	 c, d;
	FILE		*in, *out;
	char		 path[1024], err[512], line[1024];
	const char	*top;
	int		 n = 0;

	if ((top = getenv("TOP_SRCDIR")) == NULL) {
		printf("ok %d # SKIP TOP_SRCDIR not set\n", ++tap_count);
		return;
	}
	snprintf(path, sizeof(path), "%s/etc/mychatd.conf", top);
	conf_defaults(&c);
	tap_ok(conf_load(&c, path, err, sizeof(err)) == 0,
	    "etc/mychatd.conf loads as installed");
	conf_free(&c);

	if ((in = fopen(path, "r")) == NULL) {
		tap_ok(0, "open %s: %s", path, strerror(errno));
		return;
	}
	if ((out = fopen(tmpl, "w")) == NULL) {
		tap_ok(0, "open %s: %s", tmpl, strerror(errno));
		fclose(in);
		return;
	}
	while (fgets(line, sizeof(line), in) != NULL) {
		if (line[0] == '#' && line[1] >= 'a' && line[1] <= 'z') {
			fputs(line + 1, out);
			n++;
		}
	}
	fclose(in);
	fclose(out);
	tap_ok(n >= 28, "the example shows every key (%d lines)", n);
	conf_defaults(&c);
	conf_defaults(&d);
	tap_ok(conf_load(&c, tmpl, err, sizeof(err)) == 0,
	    "etc/mychatd.conf loads with every line uncommented");
	if (err[0] != '\0')
		printf("#   error: %s\n", err);
	tap_ok(c.port == d.port && c.tls_port == d.tls_port &&
	    c.require_tls == d.require_tls && c.durability == d.durability,
	    "example: network and durability defaults");
	tap_is_str(c.dbdir, d.dbdir, "example: database default");
	tap_ok(c.max_line == d.max_line && c.out_limit == d.out_limit &&
	    c.idle_timeout == d.idle_timeout &&
	    c.login_timeout == d.login_timeout &&
	    c.max_conns == d.max_conns && c.max_conns_ip == d.max_conns_ip &&
	    c.cmd_rate == d.cmd_rate && c.cmd_burst == d.cmd_burst &&
	    c.login_failures == d.login_failures &&
	    c.reg_per_hour == d.reg_per_hour &&
	    c.max_pending == d.max_pending && c.hash_threads == d.hash_threads,
	    "example: limits are the built-in defaults");
	tap_ok(c.nexempt == d.nexempt && conf_is_exempt(&c, "127.0.0.1") &&
	    conf_is_exempt(&c, "::1"), "example: exempt defaults");
	tap_ok(c.log_target == d.log_target &&
	    c.log_facility == d.log_facility, "example: log defaults");
	conf_free(&c);
	conf_free(&d);
}

int
main(void)
{
	const char	*dir;
	int		 fd;

	if ((dir = getenv("TMPDIR")) == NULL)
		dir = "/tmp";
	snprintf(tmpl, sizeof(tmpl), "%s/test_conf.XXXXXX", dir);
	if ((fd = mkstemp(tmpl)) == -1) {
		perror(tmpl);
		return (1);
	}
	close(fd);

	test_defaults();
	test_full();
	test_partial();
	test_errors();
	test_example();

	unlink(tmpl);
	return (tap_done());
}

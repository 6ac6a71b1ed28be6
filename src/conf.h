/*
 * conf.h: the daemon's settings. Filled with defaults by conf_defaults(),
 * then by the configuration file (conf_load, see mychatd.conf(5)), then by
 * command-line options. (Named conf.h because autoconf owns config.h.)
 */
#ifndef MYCHAT_CONF_H
#define MYCHAT_CONF_H

#include <stddef.h>

#define CONF_MAX_LISTEN		8
#define CONF_MAX_ADMINS		32
#define CONF_MAX_EXEMPT		32

enum durability {
	DURABLE_SYNC = 0,	/* fsync the log at every commit group */
	DURABLE_NOSYNC		/* DB_TXN_WRITE_NOSYNC: survives kill -9 only */
};

struct conf {
	/* network */
	char		*listen[CONF_MAX_LISTEN];	/* addresses; NULL-ended */
	int		 nlisten;	/* 0: default "127.0.0.1" and "::1"? see mychatd.c */
	int		 port;		/* plain port, default 5555 */
	int		 tls_port;	/* implicit TLS port, 0 = off */
	char		*tls_cert;	/* PEM certificate chain */
	char		*tls_key;	/* PEM private key */
	int		 require_tls;	/* 530 for LOGIN/REGISTER in clear */

	/* storage */
	char		*dbdir;
	enum durability	 durability;

	/* limits */
	size_t		 max_line;	/* bytes, not counting the EOL */
	size_t		 out_limit;	/* output buffer high mark, bytes */
	int		 idle_timeout;	/* seconds, 0 = none */
	int		 login_timeout;	/* seconds to log in, 0 = none */
	int		 max_conns;	/* total */
	int		 max_conns_ip;	/* per IP address */
	int		 cmd_rate;	/* commands per second per connection */
	int		 cmd_burst;	/* bucket size for cmd_rate */
	int		 login_failures; /* failed LOGINs per IP/account before 429 */
	int		 reg_per_hour;	/* REGISTERs per IP per hour */
	int		 max_pending;	/* pending messages per recipient */
	char		*exempt[CONF_MAX_EXEMPT]; /* IPs exempt from per-IP limits */
	int		 nexempt;

	/* accounts */
	char		*admins[CONF_MAX_ADMINS];	/* lower-case names */
	int		 nadmins;
	int		 hash_threads;	/* password hashing workers */

	/* process */
	int		 log_target;	/* LOG_TO_STDERR, LOG_TO_SYSLOG, LOG_TO_FILE */
	char		*log_file;
	int		 log_facility;	/* syslog facility, LOG_DAEMON default */
	char		*pidfile;
	char		*user;		/* drop privileges to this user */
};

void	conf_defaults(struct conf *);
int	conf_load(struct conf *, const char *, char *, size_t);
void	conf_free(struct conf *);
int	conf_is_admin(const struct conf *, const char *);
int	conf_is_exempt(const struct conf *, const char *);

#endif

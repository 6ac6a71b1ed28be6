/*
 * mychat.h: the server's shared structures, with prototypes grouped by the
 * file that defines them (tmux.h, smtpd.h). The wire protocol shared with
 * the client lives in proto.h; the store's interface in store.h.
 */
#ifndef MYCHAT_H
#define MYCHAT_H

#include <sys/queue.h>
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "conf.h"
#include "proto.h"
#include "store.h"
#include "unacked.h"

#define MYCHAT_ADDR_MAX		64	/* numeric address text */
#define MYCHAT_CONN_ADDR_MAX	46	/* INET6_ADDRSTRLEN */
#define PUMP_BATCH		64	/* messages read from the log per pump */
#define ONLINE_BUCKETS		4096	/* registry hash buckets */
#define HOUSEKEEP_SECS		1	/* sweep for login timeouts */
#define CHECKPOINT_SECS		30	/* store checkpoint interval */
#define CLOSE_FLUSH_SECS	10	/* max wait to flush a final reply */
#define PARK_SECS		1	/* sweep for quiet connections to park */

struct server;
struct auth;
struct auth_job;
struct online;
struct tls;

/* Session states; changed only through session_set_state(). */
enum sess_state {
	S_NEW = 0,		/* connected, not logged in */
	S_AUTHING,		/* a REGISTER/LOGIN hash is on a worker */
	S_READY,		/* logged in */
	S_CLOSING		/* final reply queued, closing after flush */
};

/* conn flags */
#define CONN_DISCARD	0x0001	/* dropping an overlong line up to EOL */
#define CONN_DEAD	0x0002	/* closed; freed by the reaper */
#define CONN_OUTFULL	0x0004	/* reading paused: output over the limit */
#define CONN_TLS	0x0008	/* the connection is encrypted */
#define CONN_STARTTLS	0x0010	/* upgrade after the 220 is flushed */
#define CONN_EOF	0x0040	/* the peer shut down its side */
#define CONN_PARKED	0x0080	/* quiet: no bufferevent, rd_ev watches */
#define CONN_ACTIVE	0x0100	/* read or wrote since the last park sweep */
#define CONN_SHORT_TO	0x0200	/* read timeout is what was left when parked */
#define CONN_FLUSHQ	0x0400	/* on srv->flushq: output to write this pass */
#define CONN_EXEMPT	0x0800	/* its address is exempt from the rate limit */

/*
 * One client connection and its protocol session.
 *
 * A quiet connection is parked (conn.c): its bufferevent, with its two
 * evbuffers, is freed and rd_ev alone waits for the socket to become
 * readable; anything written wakes it. c->bev is NULL while parked, so
 * everything but conn.c reaches the output through conn_output().
 */
struct conn {
	uint64_t		 id;
	struct server		*srv;
	struct bufferevent	*bev;
	int			 fd;
	int			 flags;
	enum sess_state		 state;
	int			 caught_up;	/* pushes come from memory */
	time_t			 since;		/* connect time */
	int64_t			 read_ms;	/* last read (idle timeout) */

	/* logged-in identity and chosen peer */
	struct online		*user;

	/* delivery: every message <= push_cursor was pushed */
	uint64_t		 push_cursor;

	/* replies held while this connection waits on a commit group */
	struct evbuffer		*held;
	size_t			 held_moved;
	unsigned int		 nwait;		/* staged ops in the group */
	int			 auth_known;	/* authname is an account */

	struct auth_job		*job;

	/* command rate limit: a token bucket */
	double			 tokens;
	struct timespec		 tokens_at;
	unsigned int		 flood_strikes;

	char			 addr[MYCHAT_CONN_ADDR_MAX];
	char			 peer[PROTO_NAME_MAX + 1];
	char			 authname[PROTO_NAME_MAX + 1]; /* "": none */

	/* server's list while open, then the reaper's (srv->dead) */
	TAILQ_ENTRY(conn)	 entry;
	TAILQ_ENTRY(conn)	 user_entry;	/* sessions of one account */
	TAILQ_ENTRY(conn)	 flush_entry;	/* while CONN_FLUSHQ */

	/*
	 * A plain connection reads its socket with rd_ev (conn.c), parked or
	 * not; its bufferevent holds the buffers and writes what a pass's
	 * write left. rd_off says what holds reading off.
	 */
	struct event		 rd_ev;
	unsigned int		 rd_off;
};
TAILQ_HEAD(conn_list, conn);

/* An account that has at least one session connected. */
struct online {
	char			 lname[PROTO_NAME_MAX + 1];
	char			 name[PROTO_NAME_MAX + 1];
	struct conn_list	 conns;
	unsigned int		 nconns;
	struct unacked		 unacked;	/* for the ACKED receipts */
	struct online		*next;		/* hash chain */
};

/* A write staged in the current commit group, answered after commit. */
enum op_type {
	OP_MSG,
	OP_REGISTER,
	OP_LOGIN,
	OP_ACK
};

struct group_op {
	enum op_type	 type;
	struct conn	*conn;
	size_t		 held_off;	/* where its reply goes in conn->held */
	uint64_t	 id;		/* MSG: message id; ACK: new cursor;
					   LOGIN: ack cursor */
	uint64_t	 count;		/* LOGIN: pending; ACK: old cursor */
	int		 dup;		/* OP_MSG: token seen, nothing stored */
	int		 online;	/* OP_MSG: recipient had a session */
	size_t		 line_off;	/* OP_MSG: push line in group->buf */
	size_t		 line_len;
	char		 name[PROTO_NAME_MAX + 1];	/* account */
	char		 rcpt[PROTO_NAME_MAX + 1];	/* OP_MSG recipient */
	size_t		 size;		/* OP_MSG text size, for the log */
};

/* The commit group of this loop pass. */
/* A sender an ACK covered, and its highest message the ACK covered. */
struct receipt {
	char		 sender[PROTO_NAME_MAX + 1];	/* lower case */
	uint64_t	 max;
};

struct commit_group {
	struct event	*commit_ev;
	struct event	*sync_ev;	/* the fsync thread finished a sync */
	struct group_op	*ops;
	size_t		 nops, opsalloc;
	char		*buf;		/* preformatted push lines */
	size_t		 buflen, bufalloc;
	int64_t		 time_ms;	/* the last push time formatted */
	char		 time_str[PROTO_TIME_LEN + 1];
	struct receipt	*rcpts;		/* one ACK's senders (group.c) */
	size_t		 nrcpts, rcptsalloc;
};

/* Counters for STATS. */
struct server_stats {
	uint64_t	conns_total;
	uint64_t	logins;
	uint64_t	registrations;
	uint64_t	msgs_accepted;
	uint64_t	msgs_pushed;
	uint64_t	bytes_in;
	uint64_t	bytes_out;
	uint64_t	cmds;
};

struct listener {
	struct server		*srv;
	struct evconnlistener	*lev;
	int			 tls;
	char			 addr[MYCHAT_ADDR_MAX + 8];
	struct listener		*next;
};

struct server {
	struct event_base	*base;
	struct conf		*conf;
	char			*conf_path;
	struct store		*store;
	struct auth		*auth;
	struct tls		*tls;
	struct limits		*limits;
	struct listener		*listeners;
	struct event		*accept_pause_ev;
	struct conn_list	 conns;
	struct conn_list	 dead;
	unsigned int		 nconns;
	uint64_t		 next_conn_id;
	struct online		*online[ONLINE_BUCKETS];
	unsigned int		 nonline;
	struct commit_group		 group;
	struct event		*reap_ev;
	struct conn_list	 flushq;	/* plain output to write (conn.c) */
	struct event		*flush_ev;	/* writes flushq, end of the pass */
	struct event		 park_ev;	/* conn.c sweep, PARK_SECS */
	int			 park_on;	/* park_ev is assigned */
	struct event		*housekeep_ev;
	struct event		*checkpoint_ev;
	struct event		*sig_ev[4];
	char			*linebuf;	/* one command line, max_line + 1 */
	char			*readbuf;	/* one read, CONN_READ_SIZE */
	char			 hostname[256];
	char			 dummy_hash[160];
	time_t			 started;
	int			 shutting_down;
	struct server_stats	 stats;
};

/* conn.c */
#define CONN_READ_SIZE	16384	/* bytes one read of a plain socket takes */
struct conn	*conn_new(struct server *, int, const struct sockaddr *, int);
void		 conn_setup(struct conn *);
void		 conn_apply_conf(struct conn *);
void		 conn_out_cb(struct evbuffer *, const struct evbuffer_cb_info *,
		     void *);
void		 conn_close(struct conn *, const char *);
void		 conn_close_after(struct conn *);
void		 conn_reply(struct conn *, int, const char *, ...)
		     __attribute__((format(printf, 3, 4)));
void		 conn_reply_more(struct conn *, int, const char *, ...)
		     __attribute__((format(printf, 3, 4)));
void		 conn_write(struct conn *, const char *, size_t);
void		 conn_push(struct conn *, const char *, size_t);
struct evbuffer	*conn_output(struct conn *);
int		 conn_output_full(struct conn *);
void		 conn_resume(struct conn *);
void		 conn_reap(struct server *);
void		 conn_reap_cb(evutil_socket_t, short, void *);
void		 conn_flush_cb(evutil_socket_t, short, void *);
int		 conn_starttls(struct conn *);
void		 conn_read_enable(struct conn *, int);

/* cmd.c */
void		 cmd_dispatch(struct conn *, char *, size_t);
void		 cmd_help(struct conn *);

/* session.c */
const char	*session_state_name(enum sess_state);
void		 session_set_state(struct conn *, enum sess_state);
void		 session_login(struct conn *, const char *);
void		 session_logout(struct conn *);
struct online	*session_find(struct server *, const char *);
struct online	*session_find_lower(struct server *, const char *);
void		 session_pump(struct conn *);
int		 session_push_msg(struct conn *, uint64_t, const char *, size_t);
void		 session_foreach_online(struct server *,
		     void (*)(struct online *, void *), void *);

/* group.c */
void		 group_init(struct server *);
void		 group_free(struct server *);
struct group_op	*group_stage(struct server *, struct conn *, enum op_type);
void		 group_set_line(struct server *, struct group_op *, uint64_t,
		     const char *, int64_t, const char *, size_t);
void		 group_commit_cb(evutil_socket_t, short, void *);
void		 group_sync_end(struct server *);
int		 group_pending(struct server *);

/* limit.c */
struct limits	*limit_new(void);
void		 limit_free(struct limits *);
void		 limit_sweep(struct limits *);
int		 limit_login_check(struct server *, const char *, const char *);
void		 limit_login_failed(struct server *, const char *, const char *);
void		 limit_login_ok(struct server *, const char *, const char *);
int		 limit_register(struct server *, const char *);
uint64_t	*limit_pending_get(struct server *, const char *);
void		 limit_pending_add(struct server *, const char *, int64_t);
void		 limit_pending_reset(struct server *);
unsigned int	 limit_conns_ip(struct server *, const char *);
void		 limit_conns_ip_add(struct server *, const char *, int);

/* listener.c */
int		 listener_add(struct server *, const char *, int, int);
void		 listener_free_all(struct server *);

/* auth.c */
typedef void	(*auth_cb)(struct auth_job *, int, void *);
struct auth	*auth_start(struct event_base *, int);
void		 auth_stop(struct auth *);
struct auth_job	*auth_hash(struct auth *, const char *, auth_cb, void *);
struct auth_job	*auth_verify(struct auth *, const char *, const char *,
		     auth_cb, void *);
const char	*auth_job_hash(const struct auth_job *);
void		 auth_cancel(struct auth_job *);

/* tls.c */
struct tls	*tls_new(const char *, const char *, char *, size_t);
void		 tls_free(struct tls *);
int		 tls_wrap(struct conn *);
void		 tls_close(struct conn *);
const char	*tls_error_string(struct conn *);

/* server.c */
int		 server_open(struct server *, char *, size_t);
void		 server_close(struct server *);
int64_t		 server_now_ms(struct server *);

/* mychatd.c */
void		 server_stop(struct server *);

#endif

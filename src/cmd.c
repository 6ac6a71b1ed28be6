/*
 * cmd.c: the command table and its handlers.
 *
 * cmd_dispatch() looks the verb up in a const table, then checks the
 * session state (401 before login), the arity (501 with the usage) and
 * the rate limit (429) before any handler runs (ngircd's My_Commands,
 * Redis's arity). Handlers write their own replies; writes they make are
 * staged in the commit group (group.c) and answered after the commit.
 * Reply texts follow doc/protocol.md, which must change with them.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "mychat.h"

#define HISTORY_DEFAULT		50
#define HISTORY_MAX		500
#define SYNC_DEFAULT		100
#define SYNC_MAX		1000
#define REPLY_BUDGET		(256 * 1024)	/* text bytes per listing */
#define FLOOD_STRIKES		50	/* 429s in a row before 421 */

/* cmd flags */
#define CMD_AUTH	0x01	/* needs login */
#define CMD_REST	0x02	/* takes the rest of the line verbatim */

struct cmd_entry {
	const char	*name;
	void		(*exec)(struct conn *, struct proto_cmd *);
	int		 min_args;
	int		 max_args;
	int		 flags;
	const char	*usage;
	const char	*help;
};

static void	cmd_hello(struct conn *, struct proto_cmd *);
static void	cmd_register(struct conn *, struct proto_cmd *);
static void	cmd_login(struct conn *, struct proto_cmd *);
static void	cmd_ping(struct conn *, struct proto_cmd *);
static void	cmd_help_cmd(struct conn *, struct proto_cmd *);
static void	cmd_close(struct conn *, struct proto_cmd *);
static void	cmd_starttls(struct conn *, struct proto_cmd *);
static void	cmd_to(struct conn *, struct proto_cmd *);
static void	cmd_msg(struct conn *, struct proto_cmd *);
static void	cmd_ack(struct conn *, struct proto_cmd *);
static void	cmd_history(struct conn *, struct proto_cmd *);
static void	cmd_sync(struct conn *, struct proto_cmd *);
static void	cmd_who(struct conn *, struct proto_cmd *);
static void	cmd_stats(struct conn *, struct proto_cmd *);

static const struct cmd_entry cmd_table[] = {
	{ "HELLO", cmd_hello, 0, 1, CMD_REST, "HELLO [anything]",
	    "who the server thinks you are" },
	{ "REGISTER", cmd_register, 2, 2, 0, "REGISTER <name> <password>",
	    "create an account and log in" },
	{ "LOGIN", cmd_login, 2, 2, 0, "LOGIN <name> <password>",
	    "log in; waiting messages follow" },
	{ "TO", cmd_to, 1, 1, CMD_AUTH, "TO <name>",
	    "choose the peer for MSG" },
	{ "MSG", cmd_msg, 1, 1, CMD_AUTH | CMD_REST, "MSG <text>",
	    "send text to the peer; @<token> MSG <text> for safe retries" },
	{ "ACK", cmd_ack, 1, 1, CMD_AUTH, "ACK <id>",
	    "acknowledge your messages up to id" },
	{ "HISTORY", cmd_history, 1, 3, CMD_AUTH,
	    "HISTORY <name> [count] [before-id]",
	    "the conversation with name, oldest first" },
	{ "SYNC", cmd_sync, 1, 2, CMD_AUTH, "SYNC <after-id> [count]",
	    "your messages, both ways, after id" },
	{ "WHO", cmd_who, 0, 0, CMD_AUTH, "WHO", "accounts online now" },
	{ "PING", cmd_ping, 0, 1, CMD_REST, "PING [token]", "PONG [token]" },
	{ "HELP", cmd_help_cmd, 0, 1, 0, "HELP", "this list" },
	{ "STATS", cmd_stats, 0, 0, CMD_AUTH, "STATS",
	    "server counters (admins only)" },
	{ "STARTTLS", cmd_starttls, 0, 0, 0, "STARTTLS",
	    "upgrade this connection to TLS" },
	{ "CLOSE", cmd_close, 0, 0, 0, "CLOSE", "end the session" },
	{ "QUIT", cmd_close, 0, 0, 0, "QUIT", "end the session" },
};

static const struct cmd_entry *
cmd_lookup(const char *verb)
{
	size_t	i;

	/* names are upper case: most fail on their first letter */
	for (i = 0; i < sizeof(cmd_table) / sizeof(cmd_table[0]); i++)
		if (cmd_table[i].name[0] == (verb[0] & ~0x20) &&
		    strcasecmp(cmd_table[i].name, verb) == 0)
			return (&cmd_table[i]);
	return (NULL);
}

/*
 * A token bucket of cmd_rate commands per second, cmd_burst deep. The
 * defaults (1000/s, 2000 deep) let a bulk sender's pipelined bursts
 * through untouched; exempt addresses are never limited.
 */
static int
cmd_rate_ok(struct conn *c)
{
	struct conf	*cf = c->srv->conf;
	struct timespec	 now;
	double		 dt;

	if (cf->cmd_rate <= 0 || (c->flags & CONN_EXEMPT))
		return (1);
	clock_gettime(CLOCK_MONOTONIC, &now);
	dt = (double)(now.tv_sec - c->tokens_at.tv_sec) +
	    (double)(now.tv_nsec - c->tokens_at.tv_nsec) / 1e9;
	c->tokens_at = now;
	c->tokens += dt * cf->cmd_rate;
	if (c->tokens > cf->cmd_burst)
		c->tokens = cf->cmd_burst;
	if (c->tokens < 1.0)
		return (0);
	c->tokens -= 1.0;
	return (1);
}

/* Run one command line (clean of CR/LF, NUL-terminated, len bytes). */
void
cmd_dispatch(struct conn *c, char *line, size_t len)
{
	const struct cmd_entry	*ce;
	struct proto_cmd	 cmd;

	if (!proto_line_clean(line, len)) {
		conn_reply(c, RPL_UNKNOWN, "invalid characters in command line");
		return;
	}
	if (proto_parse(line, len, &cmd) == 0)
		return;		/* empty lines are ignored */
	c->srv->stats.cmds++;
	if (!cmd_rate_ok(c)) {
		if (++c->flood_strikes >= FLOOD_STRIKES) {
			conn_reply(c, RPL_CLOSING, "too many commands, closing");
			conn_close_after(c);
			return;
		}
		conn_reply(c, RPL_SLOWDOWN, "slow down");
		return;
	}
	c->flood_strikes = 0;
	if ((ce = cmd_lookup(cmd.verb)) == NULL) {
		conn_reply(c, RPL_UNKNOWN, "unknown command");
		return;
	}
	if (cmd.tag != NULL && ce->exec != cmd_msg) {
		conn_reply(c, RPL_USAGE, "only MSG takes a @token");
		return;
	}
	if ((ce->flags & CMD_AUTH) && c->state != S_READY) {
		conn_reply(c, RPL_AUTH, "log in first");
		return;
	}
	if (ce->flags & CMD_REST)
		cmd.argc = cmd.restlen > 0 ? 1 : 0;
	else if (proto_split(&cmd) == -1) {
		conn_reply(c, RPL_USAGE, "usage: %s", ce->usage);
		return;
	}
	if (cmd.argc < ce->min_args || cmd.argc > ce->max_args) {
		conn_reply(c, RPL_USAGE, "usage: %s", ce->usage);
		return;
	}
	ce->exec(c, &cmd);
}

static void
cmd_hello(struct conn *c, struct proto_cmd *cmd)
{
	char	name[PROTO_NAME_MAX + 1];
	int	ret;

	ret = store_ip_get(c->srv->store, c->addr, name, sizeof(name));
	if (ret == -1) {
		conn_reply(c, RPL_TRYLATER, "try again later");
		return;
	}
	conn_reply(c, RPL_OK, "Hello %s", ret == 1 ? name : "guest");
}

static void
cmd_ping(struct conn *c, struct proto_cmd *cmd)
{
	if (cmd->restlen > 0)
		conn_reply(c, RPL_OK, "PONG %s", cmd->rest);
	else
		conn_reply(c, RPL_OK, "PONG");
}

/* The HELP text: one line per command, from the table. */
void
cmd_help(struct conn *c)
{
	size_t	i;

	conn_reply_more(c, RPL_OK, "mychat %s commands:", PACKAGE_VERSION);
	for (i = 0; i < sizeof(cmd_table) / sizeof(cmd_table[0]); i++) {
		if (cmd_table[i].exec == cmd_starttls && c->srv->tls == NULL)
			continue;
		conn_reply_more(c, RPL_OK, "%-36s %s", cmd_table[i].usage,
		    cmd_table[i].help);
	}
	conn_reply(c, RPL_OK, "end of HELP%s", c->srv->tls != NULL &&
	    !(c->flags & CONN_TLS) ? " (STARTTLS available)" : "");
}

static void
cmd_help_cmd(struct conn *c, struct proto_cmd *cmd)
{
	cmd_help(c);
}

static void
cmd_close(struct conn *c, struct proto_cmd *cmd)
{
	conn_reply(c, RPL_BYE, "bye");
	conn_close_after(c);
}

static void
cmd_starttls(struct conn *c, struct proto_cmd *cmd)
{
	if (c->srv->tls == NULL) {
		conn_reply(c, RPL_NOTLS, "TLS not available");
		return;
	}
	if (c->flags & CONN_TLS) {
		conn_reply(c, RPL_NOTLS, "already encrypted");
		return;
	}
	/*
	 * The session starts again inside TLS (RFC 3207). Leave the online
	 * registry before the 220 is queued, so that no push can follow it
	 * in clear text.
	 */
	session_logout(c);
	session_set_state(c, S_NEW);
	c->peer[0] = '\0';
	conn_reply(c, RPL_GOAHEAD, "go ahead");
	/*
	 * Whatever the client pipelined after STARTTLS is discarded; the
	 * handshake starts once the 220 is flushed.
	 */
	c->flags |= CONN_STARTTLS;
	conn_read_enable(c, 0);
	evbuffer_drain(bufferevent_get_input(c->bev),
	    evbuffer_get_length(bufferevent_get_input(c->bev)));
	if (c->nwait == 0 && evbuffer_get_length(conn_output(c)) == 0)
		conn_starttls(c);
}

/* Common checks of REGISTER and LOGIN; 0 means a reply was sent. */
static int
cmd_auth_precheck(struct conn *c)
{
	if (c->state == S_READY) {
		conn_reply(c, RPL_CONFLICT, "already logged in as %s",
		    c->user->name);
		return (0);
	}
	if (c->srv->conf->require_tls && !(c->flags & CONN_TLS)) {
		conn_reply(c, RPL_NEEDTLS, "encryption required, use STARTTLS");
		return (0);
	}
	return (1);
}

static int
cmd_valid_password(struct conn *c, const char *pw)
{
	if (strlen(pw) > PROTO_PASS_MAX) {
		conn_reply(c, RPL_BADARG, "password too long (max %d bytes)",
		    PROTO_PASS_MAX);
		return (0);
	}
	return (1);
}

/* Worker finished hashing a new account's password. */
static void
cmd_register_done(struct auth_job *job, int result, void *arg)
{
	struct conn		*c = arg;
	struct server		*srv = c->srv;
	struct store_user	 u;
	struct group_op		*op;
	int			 ret;

	c->job = NULL;
	if (c->state == S_CLOSING)
		return;		/* shutdown or timeout: the 421 is on its way */
	session_set_state(c, S_NEW);
	if (result != 1) {
		log_warnx("%s: hashing failed", __func__);
		conn_reply(c, RPL_TRYLATER, "try again later");
		goto out;
	}
	memset(&u, 0, sizeof(u));
	snprintf(u.name, sizeof(u.name), "%s", c->authname);
	snprintf(u.hash, sizeof(u.hash), "%s", auth_job_hash(job));
	u.created_ms = u.last_login_ms = proto_now_ms();
	snprintf(u.last_ip, sizeof(u.last_ip), "%s", c->addr);
	if ((ret = store_user_add(srv->store, &u)) == 0) {
		conn_reply(c, RPL_CONFLICT, "%s is taken", c->authname);
		goto out;
	}
	if (ret == 1)
		store_ip_put(srv->store, c->addr, u.name);
	/* a failed write fails the whole group: the reply becomes 451 */
	op = group_stage(srv, c, OP_REGISTER);
	snprintf(op->name, sizeof(op->name), "%s", u.name);
	/* logged in now, so pipelined commands work; undone on 451 */
	session_login(c, u.name);
	c->push_cursor = 0;
	c->caught_up = 0;
out:
	c->authname[0] = '\0';
	conn_resume(c);
}

static void
cmd_register(struct conn *c, struct proto_cmd *cmd)
{
	struct store_user	u;
	const char		*name = cmd->argv[0];
	int			ret;

	if (!cmd_auth_precheck(c))
		return;
	if (!proto_valid_name(name)) {
		conn_reply(c, RPL_BADARG,
		    "invalid name (1-32 characters of A-Z a-z 0-9 _ . -)");
		return;
	}
	if (!cmd_valid_password(c, cmd->argv[1]))
		return;
	if ((ret = store_user_get(c->srv->store, name, &u)) == -1) {
		conn_reply(c, RPL_TRYLATER, "try again later");
		return;
	}
	if (ret == 1) {
		conn_reply(c, RPL_CONFLICT, "%s is taken", u.name);
		return;
	}
	if (!limit_register(c->srv, c->addr)) {
		conn_reply(c, RPL_SLOWDOWN, "too many registrations from your "
		    "address, try again later");
		return;
	}
	snprintf(c->authname, sizeof(c->authname), "%s", name);
	session_set_state(c, S_AUTHING);
	c->job = auth_hash(c->srv->auth, cmd->argv[1], cmd_register_done, c);
}

/* Worker finished checking a LOGIN password. */
static void
cmd_login_done(struct auth_job *job, int result, void *arg)
{
	struct conn		*c = arg;
	struct server		*srv = c->srv;
	struct store_user	 u;
	struct group_op		*op;
	uint64_t		 cursor, pending;

	c->job = NULL;
	if (c->state == S_CLOSING)
		return;		/* shutdown or timeout: the 421 is on its way */
	session_set_state(c, S_NEW);
	if (result != 1 || !c->auth_known ||
	    store_user_get(srv->store, c->authname, &u) != 1) {
		if (result == -1)
			log_warnx("%s: password check failed", __func__);
		log_event("failed login for %s%s from %s", c->authname,
		    c->auth_known ? "" : " (no such account)", c->addr);
		limit_login_failed(srv, c->addr, c->authname);
		conn_reply(c, RPL_AUTH, "bad name or password");
		goto out;
	}
	limit_login_ok(srv, c->addr, c->authname);
	if (store_ack_get(srv->store, u.name, &cursor) == -1 ||
	    store_pending_count(srv->store, u.name, cursor, &pending) == -1) {
		conn_reply(c, RPL_TRYLATER, "try again later");
		goto out;
	}
	u.last_login_ms = proto_now_ms();
	snprintf(u.last_ip, sizeof(u.last_ip), "%s", c->addr);
	if (store_user_put(srv->store, &u) == 1)
		store_ip_put(srv->store, c->addr, u.name);
	op = group_stage(srv, c, OP_LOGIN);
	snprintf(op->name, sizeof(op->name), "%s", u.name);
	op->id = cursor;
	op->count = pending;
	session_login(c, u.name);
	c->push_cursor = cursor;
	c->caught_up = 0;
out:
	c->authname[0] = '\0';
	conn_resume(c);
}

static void
cmd_login(struct conn *c, struct proto_cmd *cmd)
{
	struct store_user	 u;
	const char		*stored;
	int			 ret = 0;

	if (!cmd_auth_precheck(c))
		return;
	char			 lname[PROTO_NAME_MAX + 1];
	int			 wait;

	if (strlen(cmd->argv[1]) > PROTO_PASS_MAX) {
		conn_reply(c, RPL_AUTH, "bad name or password");
		return;
	}
	proto_lower(lname, cmd->argv[0], sizeof(lname));
	if ((wait = limit_login_check(c->srv, c->addr, lname)) > 0) {
		conn_reply(c, RPL_SLOWDOWN, "too many failed logins, try again "
		    "in %d s", wait);
		return;
	}
	if (proto_valid_name(cmd->argv[0]) &&
	    (ret = store_user_get(c->srv->store, cmd->argv[0], &u)) == -1) {
		conn_reply(c, RPL_TRYLATER, "try again later");
		return;
	}
	/*
	 * An unknown name is checked against a dummy hash, so the reply
	 * takes as long as for a known name with a wrong password.
	 */
	snprintf(c->authname, sizeof(c->authname), "%s", lname);
	c->auth_known = ret == 1;
	stored = ret == 1 ? u.hash : c->srv->dummy_hash;
	session_set_state(c, S_AUTHING);
	c->job = auth_verify(c->srv->auth, cmd->argv[1], stored,
	    cmd_login_done, c);
}

static void
cmd_to(struct conn *c, struct proto_cmd *cmd)
{
	struct store_user	u;
	int			ret;

	if (!proto_valid_name(cmd->argv[0])) {
		conn_reply(c, RPL_BADARG,
		    "invalid name (1-32 characters of A-Z a-z 0-9 _ . -)");
		return;
	}
	if ((ret = store_user_get(c->srv->store, cmd->argv[0], &u)) == -1) {
		conn_reply(c, RPL_TRYLATER, "try again later");
		return;
	}
	if (ret == 0) {
		conn_reply(c, RPL_NOTFOUND, "no such user %s", cmd->argv[0]);
		return;
	}
	snprintf(c->peer, sizeof(c->peer), "%s", u.name);
	if (session_find(c->srv, u.name) != NULL)
		conn_reply(c, RPL_OK, "%s is online", u.name);
	else
		conn_reply(c, RPL_OFFLINE, "%s is offline, messages will be "
		    "queued", u.name);
}

static void
cmd_msg(struct conn *c, struct proto_cmd *cmd)
{
	struct server	*srv = c->srv;
	struct group_op	*op;
	char		 lpeer[PROTO_NAME_MAX + 1];
	int64_t		 now;
	uint64_t	 id = 0, *pending = NULL;
	int		 ret;

	if (c->peer[0] == '\0') {
		conn_reply(c, RPL_BADARG, "no recipient, use TO <name> first");
		return;
	}
	if (cmd->tag != NULL && !proto_valid_token(cmd->tag)) {
		conn_reply(c, RPL_USAGE,
		    "bad token (1-64 characters of A-Z a-z 0-9 . _ : -)");
		return;
	}
	if (!proto_valid_text(cmd->rest, cmd->restlen)) {
		conn_reply(c, RPL_BADARG,
		    "text must be UTF-8 without control characters");
		return;
	}
	proto_lower(lpeer, c->peer, sizeof(lpeer));
	if (srv->conf->max_pending > 0) {
		if ((pending = limit_pending_get(srv, lpeer)) == NULL) {
			conn_reply(c, RPL_TRYLATER, "try again later");
			return;
		}
		if (*pending >= (uint64_t)srv->conf->max_pending) {
			conn_reply(c, RPL_FULL, "%s has too many pending messages",
			    c->peer);
			return;
		}
	}
	now = server_now_ms(srv);
	ret = store_msg_add_l(srv->store, c->user->name, c->user->lname,
	    c->peer, lpeer, now, cmd->rest, cmd->restlen, cmd->tag, &id);
	/* the count looked up above, unless the limit is off */
	if (ret == 1 && pending != NULL)
		(*pending)++;
	else if (ret == 1)
		limit_pending_add(srv, lpeer, 1);
	/* on -1 the group is failed: the op is answered 451 at commit */
	op = group_stage(srv, c, OP_MSG);
	op->id = id;
	op->dup = ret == 0;
	op->size = cmd->restlen;
	op->online = session_find_lower(srv, lpeer) != NULL;
	proto_copy(op->name, c->user->name, sizeof(op->name));
	proto_copy(op->rcpt, c->peer, sizeof(op->rcpt));
	if (ret == 1)
		group_set_line(srv, op, id, c->user->name, now, cmd->rest,
		    cmd->restlen);
}

static void
cmd_ack(struct conn *c, struct proto_cmd *cmd)
{
	struct server		*srv = c->srv;
	struct store_msg	 m;
	struct group_op		*op;
	uint64_t		 id, cursor;
	int			 ret;

	if (proto_parse_id(cmd->argv[0], &id) == -1) {
		conn_reply(c, RPL_USAGE, "usage: ACK <id>");
		return;
	}
	if ((ret = store_msg_get(srv->store, id, &m)) == -1) {
		conn_reply(c, RPL_TRYLATER, "try again later");
		return;
	}
	/*
	 * A message staged in this same group is visible here and may be
	 * acked (a pipelined note to self): both commit or fail together.
	 */
	if (ret == 0 || strcasecmp(m.to, c->user->name) != 0) {
		conn_reply(c, RPL_NOTFOUND, "no message %llu for you",
		    (unsigned long long)id);
		return;
	}
	if (store_ack_get(srv->store, c->user->name, &cursor) == -1) {
		conn_reply(c, RPL_TRYLATER, "try again later");
		return;
	}
	if (id <= cursor) {
		conn_reply(c, RPL_OK, "acked %llu", (unsigned long long)id);
		return;
	}
	store_ack_put(srv->store, c->user->name, id);
	op = group_stage(srv, c, OP_ACK);
	proto_copy(op->name, c->user->name, sizeof(op->name));
	op->id = id;
	op->count = cursor;
}

/* One listing line: NNN-<id> <from> <to> <time> <text> */
struct listing {
	struct conn	*c;
	size_t		 bytes;
	uint64_t	 first, last;
	unsigned int	 n;
};

static int
cmd_list_cb(const struct store_msg *m, void *arg)
{
	struct listing	*l = arg;
	char		 ts[PROTO_TIME_LEN + 1], head[128];
	int		 n;

	proto_format_time(m->time_ms, ts);
	n = snprintf(head, sizeof(head), "%03d-%llu %s %s %s ", RPL_OK,
	    (unsigned long long)m->id, m->from, m->to, ts);
	conn_write(l->c, head, (size_t)n);
	conn_write(l->c, m->text, m->len);
	conn_write(l->c, "\r\n", 2);
	if (l->n++ == 0)
		l->first = m->id;
	l->last = m->id;
	l->bytes += m->len;
	return (0);
}

static void
cmd_history(struct conn *c, struct proto_cmd *cmd)
{
	struct store_user	u;
	struct listing		l;
	unsigned int		count = HISTORY_DEFAULT;
	uint64_t		before = 0;
	int			ret, more;

	if (!proto_valid_name(cmd->argv[0])) {
		conn_reply(c, RPL_BADARG,
		    "invalid name (1-32 characters of A-Z a-z 0-9 _ . -)");
		return;
	}
	if ((cmd->argc > 1 && proto_parse_count(cmd->argv[1], HISTORY_MAX,
	    &count) == -1) || (cmd->argc > 2 &&
	    proto_parse_id(cmd->argv[2], &before) == -1)) {
		conn_reply(c, RPL_USAGE, "usage: HISTORY <name> [count 1-%d] "
		    "[before-id]", HISTORY_MAX);
		return;
	}
	if ((ret = store_user_get(c->srv->store, cmd->argv[0], &u)) != 1) {
		if (ret == 0)
			conn_reply(c, RPL_NOTFOUND, "no such user %s",
			    cmd->argv[0]);
		else
			conn_reply(c, RPL_TRYLATER, "try again later");
		return;
	}
	memset(&l, 0, sizeof(l));
	l.c = c;
	if (store_history_scan(c->srv->store, c->user->name, u.name, before,
	    count, REPLY_BUDGET, cmd_list_cb, &l, &more) == -1) {
		conn_reply(c, RPL_TRYLATER, "try again later");
		return;
	}
	if (more && l.n > 0)
		conn_reply(c, RPL_OK, "%u messages, more before %llu", l.n,
		    (unsigned long long)l.first);
	else
		conn_reply(c, RPL_OK, "%u messages", l.n);
}

static int
cmd_sync_cb(const struct store_msg *m, void *arg)
{
	struct listing	*l = arg;

	cmd_list_cb(m, arg);
	return (l->bytes >= REPLY_BUDGET ? 1 : 0);
}

static void
cmd_sync(struct conn *c, struct proto_cmd *cmd)
{
	struct listing	l;
	unsigned int	count = SYNC_DEFAULT;
	uint64_t	after;
	int		more;

	if (proto_parse_id(cmd->argv[0], &after) == -1 ||
	    (cmd->argc > 1 && proto_parse_count(cmd->argv[1], SYNC_MAX,
	    &count) == -1)) {
		conn_reply(c, RPL_USAGE, "usage: SYNC <after-id> [count 1-%d]",
		    SYNC_MAX);
		return;
	}
	memset(&l, 0, sizeof(l));
	l.c = c;
	l.last = after;
	if (store_sync_scan(c->srv->store, c->user->name, after, count,
	    cmd_sync_cb, &l, &more) == -1) {
		conn_reply(c, RPL_TRYLATER, "try again later");
		return;
	}
	conn_reply(c, RPL_OK, "%u messages, cursor %llu%s", l.n,
	    (unsigned long long)l.last, more ? ", more" : "");
}

static void
cmd_who_cb(struct online *o, void *arg)
{
	struct conn	*c = arg;

	conn_reply_more(c, RPL_OK, "%s", o->name);
}

static void
cmd_who(struct conn *c, struct proto_cmd *cmd)
{
	session_foreach_online(c->srv, cmd_who_cb, c);
	conn_reply(c, RPL_OK, "%u online", c->srv->nonline);
}

static void
cmd_stats(struct conn *c, struct proto_cmd *cmd)
{
	struct server		*srv = c->srv;
	struct server_stats	*s = &srv->stats;
	struct store_stats	 ss;

	/* asked afresh each time: SIGHUP may have changed the admin list */
	if (!conf_is_admin(srv->conf, c->user->lname)) {
		conn_reply(c, RPL_FORBIDDEN, "not allowed");
		return;
	}
	store_get_stats(srv->store, &ss);
	conn_reply_more(c, RPL_OK, "version %s", PACKAGE_VERSION);
	conn_reply_more(c, RPL_OK, "uptime %lld",
	    (long long)(time(NULL) - srv->started));
	conn_reply_more(c, RPL_OK, "connections %u", srv->nconns);
	conn_reply_more(c, RPL_OK, "connections_total %llu",
	    (unsigned long long)s->conns_total);
	conn_reply_more(c, RPL_OK, "accounts_online %u", srv->nonline);
	conn_reply_more(c, RPL_OK, "logins %llu", (unsigned long long)s->logins);
	conn_reply_more(c, RPL_OK, "registrations %llu",
	    (unsigned long long)s->registrations);
	conn_reply_more(c, RPL_OK, "commands %llu", (unsigned long long)s->cmds);
	conn_reply_more(c, RPL_OK, "messages_accepted %llu",
	    (unsigned long long)s->msgs_accepted);
	conn_reply_more(c, RPL_OK, "messages_pushed %llu",
	    (unsigned long long)s->msgs_pushed);
	conn_reply_more(c, RPL_OK, "last_message_id %llu",
	    (unsigned long long)store_last_id(srv->store));
	conn_reply_more(c, RPL_OK, "bytes_in %llu",
	    (unsigned long long)s->bytes_in);
	conn_reply_more(c, RPL_OK, "bytes_out %llu",
	    (unsigned long long)s->bytes_out);
	conn_reply_more(c, RPL_OK, "commit_groups %llu",
	    (unsigned long long)ss.commits);
	conn_reply_more(c, RPL_OK, "commit_groups_failed %llu",
	    (unsigned long long)ss.failed_commits);
	conn_reply_more(c, RPL_OK, "mean_group_size %.2f", ss.commits == 0 ?
	    0.0 : (double)ss.committed_ops / (double)ss.commits);
	conn_reply_more(c, RPL_OK, "db_bytes %llu",
	    (unsigned long long)ss.db_bytes);
	conn_reply(c, RPL_OK, "end");
}

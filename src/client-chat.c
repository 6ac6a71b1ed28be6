/*
 * client-chat.c: the interactive client. It asks for an account (new or
 * existing), then sends what the user types to the chosen peer and shows
 * what arrives, ACKing every message once it is on the screen.
 *
 * Outgoing commands that change the server's idea of the peer (TO) and
 * messages (MSG) go through one ordered outbox. An entry leaves the outbox
 * only when the server has answered it, so after a lost connection the
 * client logs in again and resends what was not answered, with the same
 * retry token: the server stores each message once ("already stored").
 */
#include "config.h"

#include <sys/queue.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "client.h"
#include "xmalloc.h"

#define CHAT_BACKOFF_MAX	30	/* most seconds between reconnects */
#define CHAT_PING_EVERY		30	/* seconds of silence before a PING */
#define CHAT_HISTORY_DEFAULT	20

enum chat_step {
	STEP_MODE,		/* new account or log in? */
	STEP_NAME,
	STEP_PASS,
	STEP_PASS2,		/* the new password again */
	STEP_LOGIN,		/* waiting for the server */
	STEP_CHAT
};

enum out_kind {
	OUT_TO,			/* the user typed /to */
	OUT_MSG
};

struct outmsg {
	TAILQ_ENTRY(outmsg)	 entry;
	enum out_kind		 kind;
	char			 peer[PROTO_NAME_MAX + 1];
	char			 token[CLIENT_TOKEN_LEN + 1];
	char			*text;		/* escaped, as on the wire */
	int			 sent;
};

static struct {
	struct event_base	*base;
	struct cnet		*net;
	const char		*host;
	const char		*port;
	enum chat_step		 step;
	int			 reg;		/* REGISTER, not LOGIN */
	char			 name[PROTO_NAME_MAX + 1];
	char			 session_name[PROTO_NAME_MAX + 1]; /* authed */
	char			 pass[PROTO_PASS_MAX + 1];
	char			 suggest[PROTO_NAME_MAX + 1];
	int			 was_ready;	/* connected at least once */
	int			 tls_shown;	/* 0 none, 1 clear, 2 TLS */
	int			 authed;
	int			 ever_authed;
	char			 peer[PROTO_NAME_MAX + 1];	/* shown */
	char			 want_peer[PROTO_NAME_MAX + 1];	/* queued */
	char			 server_peer[PROTO_NAME_MAX + 1];
	int			 to_inflight;
	TAILQ_HEAD(, outmsg)	 out;
	uint64_t		 max_seen;	/* highest MSG id shown */
	int			 ack_due;
	struct event		*ack_ev;
	struct event		*retry_ev;
	struct event		*ping_ev;
	int			 backoff;
	int			 quitting;
	int			 closing;	/* CLOSE sent */
	int			 exit_code;
	int			 done;
	int			 refused;	/* exit code, refused login */
	char			*who;		/* names collected from WHO */
} ch;

static void	chat_pump(void);
static void	chat_ask(enum chat_step);
static void	chat_quit(void);
static void	chat_done(int);
static void	chat_forget(void);
static void	chat_submit(void);
static void	chat_retry_later(const char *, const char *);

static const char chat_help[] =
    "Commands:\n"
    "  /to <name>       talk to <name> (shows online, offline or unknown)\n"
    "  /who             who is online\n"
    "  /history [n]     the last n messages with the current peer (20)\n"
    "  /help            this help\n"
    "  /quit, !close    close the session and exit (also ^D)\n"
    "Any other line is a message to the current peer; start it with // to\n"
    "send a line that begins with /. A paste of several lines is one\n"
    "message. Incoming messages from someone else than the current peer\n"
    "are marked with >>>. \xe2\x9c\x93 means stored by the server, "
    "\xe2\x9c\x93\xe2\x9c\x93 read by the peer.";

/* Current UTC time in protocol format. */
static void
chat_now(char *buf)
{
	proto_format_time(proto_now_ms(), buf);
}

/* The prompt of the chat step. */
static void
chat_set_prompt(void)
{
	char	p[PROTO_NAME_MAX + 16];

	if (ch.peer[0] != '\0')
		snprintf(p, sizeof(p), "to %s> ", ch.peer);
	else
		snprintf(p, sizeof(p), "> ");
	ui_prompt(p);
}

/*
 * Print escaped text after a prefix; the lines of a multi-line message are
 * indented under the first one.
 */
static void
chat_show(const char *prefix, const char *text, const char *suffix)
{
	char	*u, *p, *out, *o;
	size_t	 ind = strlen(prefix), n = 0;

	u = text_unescape(text);
	text_sanitize(u);
	for (p = u; *p != '\0'; p++)
		if (*p == '\n')
			n++;
	out = o = xmalloc(strlen(u) + n * (ind + 1) + 1);
	for (p = u; *p != '\0'; p++) {
		*o++ = *p;
		if (*p == '\n') {
			memset(o, ' ', ind);
			o += ind;
		}
	}
	*o = '\0';
	ui_printf("%s%s%s", prefix, out, suffix);
	free(out);
	free(u);
}

/* The first n characters of escaped text, for a receipt. */
static char *
chat_excerpt(const char *text)
{
	char	*u, *p, *cut;
	size_t	 n = 0;

	u = text_unescape(text);
	for (p = u; *p != '\0'; p++)
		if (*p == '\n')
			*p = ' ';
	text_sanitize(u);
	/* Cut at 30 characters, not in the middle of a UTF-8 sequence. */
	for (p = u; *p != '\0'; p++) {
		if (((unsigned char)*p & 0xc0) != 0x80 && n++ == 30) {
			if (asprintf(&cut, "%.*s...", (int)(p - u), u) == -1)
				break;
			free(u);
			return (cut);
		}
	}
	return (u);
}

/* Free an outbox entry. */
static void
chat_out_free(struct outmsg *o)
{
	TAILQ_REMOVE(&ch.out, o, entry);
	free(o->text);
	free(o);
}

/*
 * TO <peer> was refused: drop the unsent messages queued for that peer
 * right after entry start (up to the next /to).
 */
static void
chat_drop_for(struct outmsg *start, const char *peer)
{
	struct outmsg	*o, *next;
	int		 n = 0;

	for (o = start; o != NULL; o = next) {
		next = TAILQ_NEXT(o, entry);
		if (o != start && o->kind == OUT_TO)
			break;
		if (o->kind == OUT_MSG && !o->sent &&
		    strcasecmp(o->peer, peer) == 0) {
			chat_out_free(o);
			n++;
		}
	}
	if (n > 0)
		ui_printf("%d message%s to %s not sent.", n, n == 1 ? "" : "s",
		    peer);
}

/* The first word of a reply text, as a name. */
static void
chat_word(char *dst, size_t size, const char *text)
{
	size_t	n = strcspn(text, " ");

	if (n >= size)
		n = size - 1;
	memcpy(dst, text, n);
	dst[n] = '\0';
}

/* Reply to TO, typed by the user (OUT_TO) or sent before a message. */
static void
chat_to_reply(void *arg, int code, int last, const char *text)
{
	struct outmsg	*o = arg;
	char		 name[PROTO_NAME_MAX + 1], safe[128];

	if (!last)
		return;
	ch.to_inflight = 0;
	snprintf(safe, sizeof(safe), "%s", text);
	text_sanitize(safe);
	if (code == RPL_OK || code == RPL_OFFLINE) {
		chat_word(name, sizeof(name), text);
		if (!proto_valid_name(name))
			snprintf(name, sizeof(name), "%s", o->peer);
		snprintf(ch.server_peer, sizeof(ch.server_peer), "%s", name);
		if (o->kind == OUT_TO) {
			snprintf(ch.peer, sizeof(ch.peer), "%s", name);
			if (strcasecmp(ch.want_peer, name) == 0)
				snprintf(ch.want_peer, sizeof(ch.want_peer),
				    "%s", name);
			if (code == RPL_OK)
				ui_printf("%s is online.", name);
			else
				ui_printf("%s is offline; your messages will "
				    "be kept and delivered when %s logs in.",
				    name, name);
			chat_set_prompt();
			chat_out_free(o);
		}
	} else {
		if (code == RPL_NOTFOUND)
			ui_printf("There is no user %s.", o->peer);
		else
			ui_printf("Cannot talk to %s: %d %s", o->peer, code,
			    safe);
		if (o->kind == OUT_TO) {
			if (strcasecmp(ch.want_peer, o->peer) == 0)
				snprintf(ch.want_peer, sizeof(ch.want_peer),
				    "%s", ch.peer);
			chat_drop_for(o, o->peer);
			chat_out_free(o);
		} else
			chat_drop_for(o, o->peer);
	}
	chat_pump();
}

/* Reply to a MSG: the receipt, or why it was refused. */
static void
chat_msg_reply(void *arg, int code, int last, const char *text)
{
	struct outmsg	*o = arg;
	char		 now[PROTO_TIME_LEN + 1], hm[32], safe[128];
	char		*ex;
	uint64_t	 id = 0;

	if (!last)
		return;
	chat_now(now);
	text_local_hm(now, hm, sizeof(hm));
	ex = chat_excerpt(o->text);
	snprintf(safe, sizeof(safe), "%s", text);
	text_sanitize(safe);
	if (code == RPL_STORED && proto_parse_id(text, &id) == 0) {
		clog_message(ch.name, o->peer, now, id, ch.name, o->text);
		if (strstr(text, "queued") != NULL)
			ui_printf("[%s] \xe2\x9c\x93 #%llu \"%s\" stored, %s "
			    "is offline", hm, (unsigned long long)id, ex,
			    o->peer);
		else
			ui_printf("[%s] \xe2\x9c\x93 #%llu \"%s\" delivered",
			    hm, (unsigned long long)id, ex);
	} else
		ui_printf("[%s] \xe2\x9c\x97 not sent to %s: \"%s\" (%d %s)",
		    hm, o->peer, ex, code, safe);
	free(ex);
	chat_out_free(o);
	chat_pump();
}

/*
 * Send what can be sent from the outbox, in order. A TO waits for its
 * reply before anything after it goes out, so that a refused TO cannot
 * send a message to the previous peer.
 */
static void
chat_pump(void)
{
	struct outmsg	*o;

	while (ch.authed && !ch.to_inflight) {
		TAILQ_FOREACH(o, &ch.out, entry)
			if (!o->sent)
				break;
		if (o == NULL)
			break;
		if (o->kind == OUT_TO) {
			o->sent = 1;
			ch.to_inflight = 1;
			cnet_send(ch.net, chat_to_reply, o, "TO %s", o->peer);
			break;
		}
		if (strcasecmp(ch.server_peer, o->peer) != 0) {
			ch.to_inflight = 1;
			cnet_send(ch.net, chat_to_reply, o, "TO %s", o->peer);
			break;
		}
		o->sent = 1;
		cnet_send(ch.net, chat_msg_reply, o, "@%s MSG %s", o->token,
		    o->text);
	}
	if (ch.quitting && ch.authed && !ch.closing &&
	    TAILQ_EMPTY(&ch.out))
		chat_quit();
}

/* A typed message: queue it for the current peer. */
static void
chat_send_text(const char *line)
{
	struct outmsg	*o;
	char		*esc;
	size_t		 len;

	if (ch.want_peer[0] == '\0') {
		ui_printf("Choose who to talk to first: /to <name>");
		return;
	}
	esc = text_escape(line, strlen(line));
	len = strlen(esc);
	if (len > CLIENT_SEND_MAX - CLIENT_MSG_OVERHEAD) {
		ui_printf("Message too long (%zu bytes, at most %d); not sent.",
		    len, CLIENT_SEND_MAX - CLIENT_MSG_OVERHEAD);
		free(esc);
		return;
	}
	if (!proto_valid_text(esc, len)) {
		ui_printf("The message holds control characters or invalid "
		    "UTF-8; not sent.");
		free(esc);
		return;
	}
	o = xcalloc(1, sizeof(*o));
	o->kind = OUT_MSG;
	snprintf(o->peer, sizeof(o->peer), "%s", ch.want_peer);
	text_token(o->token, sizeof(o->token));
	o->text = esc;
	TAILQ_INSERT_TAIL(&ch.out, o, entry);
	if (!ch.authed)
		ui_printf("(not connected: the message will be sent when the "
		    "connection is back)");
	chat_pump();
}

/* /to <name> */
static void
chat_cmd_to(const char *arg)
{
	struct outmsg	*o;

	while (*arg == ' ')
		arg++;
	if (!proto_valid_name(arg) || arg[strcspn(arg, " ")] != '\0') {
		ui_printf("usage: /to <name> (1-32 characters of A-Z a-z 0-9 "
		    "_ . -)");
		return;
	}
	o = xcalloc(1, sizeof(*o));
	o->kind = OUT_TO;
	snprintf(o->peer, sizeof(o->peer), "%s", arg);
	snprintf(ch.want_peer, sizeof(ch.want_peer), "%s", arg);
	TAILQ_INSERT_TAIL(&ch.out, o, entry);
	if (!ch.authed)
		ui_printf("(not connected: /to %s will be sent when the "
		    "connection is back)", arg);
	chat_pump();
}

/* Lines of the WHO reply. */
static void
chat_who_reply(void *arg, int code, int last, const char *text)
{
	char	*n;

	if (code != RPL_OK) {
		if (last)
			ui_printf("who: %d %s", code, text);
		return;
	}
	if (!last) {
		if (!proto_valid_name(text))
			return;
		if (ch.who == NULL)
			ch.who = xstrdup(text);
		else {
			if (asprintf(&n, "%s, %s", ch.who, text) == -1)
				return;
			free(ch.who);
			ch.who = n;
		}
		return;
	}
	ui_printf("Online: %s", ch.who != NULL ? ch.who : "nobody");
	free(ch.who);
	ch.who = NULL;
}

/* Lines of the HISTORY reply: "<id> <from> <to> <time> <text>". */
static void
chat_history_reply(void *arg, int code, int last, const char *text)
{
	char		*line, *f[4], *p, hm[32], prefix[80], safe[128];
	int		 i;

	if (code != RPL_OK || last) {
		snprintf(safe, sizeof(safe), "%s", text);
		text_sanitize(safe);
		if (code == RPL_NOTFOUND)
			ui_printf("No such user.");
		else if (code != RPL_OK)
			ui_printf("history: %d %s", code, safe);
		else
			ui_printf("-- %s --", safe);
		return;
	}
	line = p = xstrdup(text);
	for (i = 0; i < 4; i++) {
		f[i] = p;
		if ((p = strchr(p, ' ')) == NULL) {
			free(line);
			return;
		}
		*p++ = '\0';
	}
	if (!proto_valid_name(f[1])) {
		free(line);
		return;
	}
	text_local_hm(f[3], hm, sizeof(hm));
	snprintf(prefix, sizeof(prefix), "[%s] %s: ", hm, f[1]);
	chat_show(prefix, p, "");
	free(line);
}

/* Replies nobody waits for (ACK, PING): complain only on errors. */
static void
chat_quiet_reply(void *arg, int code, int last, const char *text)
{
	char	safe[128];

	if (last && code != RPL_OK) {
		snprintf(safe, sizeof(safe), "%s", text);
		text_sanitize(safe);
		ui_printf("%s: %d %s", (const char *)arg, code, safe);
	}
}

/* Send one cumulative ACK for everything shown so far. */
static void
chat_ack_cb(evutil_socket_t fd, short what, void *arg)
{
	if (!ch.ack_due || !ch.authed || ch.max_seen == 0)
		return;
	ch.ack_due = 0;
	cnet_send(ch.net, chat_quiet_reply, "ACK", "ACK %llu",
	    (unsigned long long)ch.max_seen);
}

/* A line the server sent on its own. */
static void
chat_push(void *arg, char *line, size_t len)
{
	struct cpush	 m;
	char		 hm[32], prefix[PROTO_NAME_MAX + 48], *f[3], *p;
	char		 copy[256], now[PROTO_TIME_LEN + 1];
	uint64_t	 id;

	if (strncmp(line, "MSG ", 4) == 0) {
		if (text_parse_push(line, &m) == -1) {
			ui_printf("(a malformed message from the server was "
			    "ignored)");
			return;
		}
		ch.ack_due = 1;
		event_active(ch.ack_ev, EV_TIMEOUT, 0);
		if (m.id <= ch.max_seen)
			return;		/* shown before a reconnect */
		text_local_hm(m.time, hm, sizeof(hm));
		if (strcasecmp(m.from, ch.peer) == 0)
			snprintf(prefix, sizeof(prefix), "[%s] %s: ", hm,
			    m.from);
		else
			snprintf(prefix, sizeof(prefix), "[%s] >>> %s: ", hm,
			    m.from);
		chat_show(prefix, m.text, "");
		clog_message(ch.name, m.from, m.time, m.id, m.from, m.text);
		ch.max_seen = m.id;
		return;
	}
	if (strncmp(line, "ACKED ", 6) == 0) {
		p = line + 6;
		f[0] = p;
		if ((p = strchr(p, ' ')) == NULL)
			return;
		*p++ = '\0';
		f[1] = p;
		if (proto_parse_id(f[0], &id) == -1 || !proto_valid_name(f[1]))
			return;
		chat_now(now);
		text_local_hm(now, hm, sizeof(hm));
		ui_printf("[%s] \xe2\x9c\x93\xe2\x9c\x93 %s has read your "
		    "messages up to #%llu", hm, f[1], (unsigned long long)id);
		return;
	}
	snprintf(copy, sizeof(copy), "%.*s", (int)len, line);
	text_sanitize(copy);
	ui_printf("server: %s", copy);
}

/* Reply to LOGIN or REGISTER. */
static void
chat_login_reply(void *arg, int code, int last, const char *text)
{
	char	safe[128], *p;
	size_t	n;

	if (!last)
		return;
	snprintf(safe, sizeof(safe), "%s", text);
	text_sanitize(safe);
	if (code == RPL_OK || code == RPL_CREATED) {
		/* "welcome <name>, <N> waiting" or "<name> registered" */
		p = safe;
		if (code == RPL_OK && strncmp(p, "welcome ", 8) == 0)
			p += 8;
		n = strcspn(p, " ,");
		if (n > 0 && n <= PROTO_NAME_MAX) {
			memcpy(ch.name, p, n);
			ch.name[n] = '\0';
		}
		if (strcasecmp(ch.name, ch.session_name) != 0) {
			/*
			 * Another account than before: what was seen and
			 * queued belongs to the other one (ids are global).
			 */
			chat_forget();
			snprintf(ch.session_name, sizeof(ch.session_name),
			    "%s", ch.name);
		}
		ch.authed = 1;
		ch.refused = EX_MC_OK;
		ch.reg = 0;
		ch.backoff = 0;
		ch.step = STEP_CHAT;
		ch.server_peer[0] = '\0';
		if (ch.ever_authed)
			ui_printf("*** logged in again as %s.", ch.name);
		else if (code == RPL_CREATED)
			ui_printf("Account %s created; you are logged in. "
			    "Type /help for help.", ch.name);
		else {
			p = strchr(safe, ',');
			ui_printf("Logged in as %s%s%s. Type /help for help.",
			    ch.name, p != NULL ? " -" : "",
			    p != NULL ? p + 1 : "");
		}
		if (!ch.ever_authed) {
			ch.ever_authed = 1;
			ui_multiline(1);
			chat_set_prompt();
			ui_pause(0);
		}
		chat_pump();
		return;
	}
	if (ch.ever_authed && text_reply_exit(code) == EX_MC_TEMP) {
		/* The server is busy or going down: keep trying. */
		cnet_disconnect(ch.net);
		chat_retry_later("login", safe);
		return;
	}
	explicit_bzero(ch.pass, sizeof(ch.pass));
	ch.refused = text_reply_exit(code);
	switch (code) {
	case RPL_CONFLICT:
		if (ch.reg)
			ui_printf("The name %s is already taken. Please choose "
			    "another one.", ch.name);
		else
			ui_printf("Login refused: %s", safe);
		break;
	case RPL_AUTH:
		ui_printf("Wrong name or password.");
		break;
	case RPL_BADARG:
		ui_printf("That name is not valid: use 1 to 32 letters, "
		    "digits, '_', '.' or '-'.");
		break;
	default:
		ui_printf("The server refused: %d %s", code, safe);
		break;
	}
	if (ch.ever_authed) {
		ui_printf("*** could not log in again; please log in.");
		ch.ever_authed = 0;
		ui_multiline(0);
	}
	chat_ask(STEP_MODE);
	ui_pause(0);
}

/* Drop the state of the previous account: peer, outbox, ACK cursor. */
static void
chat_forget(void)
{
	struct outmsg	*o;
	int		 n = 0;

	while ((o = TAILQ_FIRST(&ch.out)) != NULL) {
		if (o->kind == OUT_MSG)
			n++;
		chat_out_free(o);
	}
	if (n > 0 && ch.session_name[0] != '\0')
		ui_printf("%d message%s of %s not sent.", n, n == 1 ? "" : "s",
		    ch.session_name);
	ch.max_seen = 0;
	ch.ack_due = 0;
	ch.peer[0] = ch.want_peer[0] = ch.server_peer[0] = '\0';
}

/* Send LOGIN or REGISTER with the remembered name and password. */
static void
chat_login(void)
{
	cnet_send_secret(ch.net, chat_login_reply, NULL,
	    ch.reg ? "REGISTER" : "LOGIN", ch.name, ch.pass);
}

/* Reply to HELLO: the account last used from here, as a suggestion. */
static void
chat_hello_reply(void *arg, int code, int last, const char *text)
{
	char	name[PROTO_NAME_MAX + 1];

	if (!last || code != RPL_OK || strncmp(text, "Hello ", 6) != 0)
		return;
	chat_word(name, sizeof(name), text + 6);
	if (proto_valid_name(name) && strcmp(name, "guest") != 0)
		snprintf(ch.suggest, sizeof(ch.suggest), "%s", name);
	if (ch.step == STEP_NAME)
		chat_ask(STEP_NAME);
}

/* The server greeted us: first contact, or back after a loss. */
static void
chat_ready(void *arg, const char *greeting)
{
	char	safe[256];

	snprintf(safe, sizeof(safe), "%s", greeting);
	text_sanitize(safe);
	if (!ch.was_ready) {
		ch.was_ready = 1;
		ui_printf("Connected to %s port %s: %s", ch.host, ch.port,
		    safe);
		cnet_send(ch.net, chat_hello_reply, NULL, "HELLO mychat");
		chat_ask(STEP_MODE);
		ui_pause(0);
		return;
	}
	if (ch.ever_authed)
		ui_printf("*** connected again to %s port %s.", ch.host,
		    ch.port);
	if (ch.step == STEP_LOGIN || ch.step == STEP_CHAT) {
		ch.reg = ch.reg && !ch.ever_authed;
		chat_login();
	}
}

/*
 * Encrypted or not, said on the first connection and whenever it changes
 * (a server that drops its certificate between two connections).
 */
static void
chat_tls(void *arg, const char *desc)
{
	int	now = desc != NULL ? 2 : 1;

	if (ch.tls_shown == now)
		return;
	ch.tls_shown = now;
	if (desc != NULL)
		ui_printf("Encrypted: %s.", desc);
	else if (ctls_mode() == CTLS_OFF)
		ui_printf("Not encrypted (--no-tls): the password goes in "
		    "clear.");
	else
		ui_printf("Not encrypted: the server does not offer STARTTLS; "
		    "the password goes in clear.");
}

/* Try to connect again. */
static void
chat_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	cnet_connect(ch.net);
}

/* The connection failed or was lost. */
static void
chat_lost(void *arg, enum cnet_err e, const char *why)
{
	struct outmsg	*o;
	int		 n = 0;

	if (ch.closing) {
		chat_done(EX_MC_OK);
		return;
	}
	/* never retried: a certificate that fails will fail again */
	if (!ch.was_ready || e == CNET_ETLS) {
		ui_printf("mychat: %s: %s", cnet_strerr(e), why);
		chat_done(cnet_exit_code(e));
		return;
	}
	ch.authed = 0;
	ch.to_inflight = 0;
	ch.server_peer[0] = '\0';
	if (ch.quitting) {
		/* Leaving anyway; say what may not have gone out. */
		TAILQ_FOREACH(o, &ch.out, entry)
			if (o->kind == OUT_MSG)
				n++;
		ui_printf("*** %s: %s", cnet_strerr(e), why);
		if (n > 0)
			ui_printf("%d message%s may not have been sent.", n,
			    n == 1 ? "" : "s");
		chat_done(EX_MC_OK);
		return;
	}
	if (ch.step < STEP_LOGIN) {
		/*
		 * Still asking for the name or password (the server closes
		 * idle logins): connect again once there is something to
		 * send, without bothering the user now.
		 */
		return;
	}
	chat_retry_later(cnet_strerr(e), why);
}

/* Connect again after the next backoff delay (1, 2, 4 ... 30 s). */
static void
chat_retry_later(const char *what, const char *why)
{
	struct outmsg	*o;
	struct timeval	 tv;
	int		 n = 0;

	ch.authed = 0;
	ch.to_inflight = 0;
	ch.server_peer[0] = '\0';
	TAILQ_FOREACH(o, &ch.out, entry) {
		o->sent = 0;
		if (o->kind == OUT_MSG)
			n++;
	}
	ch.backoff = ch.backoff == 0 ? 1 : ch.backoff * 2;
	if (ch.backoff > CHAT_BACKOFF_MAX)
		ch.backoff = CHAT_BACKOFF_MAX;
	ui_printf("*** %s: %s; reconnecting in %d s%s", what, why,
	    ch.backoff, n > 0 ? " (unanswered messages will be resent)" : "");
	tv.tv_sec = ch.backoff;
	tv.tv_usec = 0;
	evtimer_add(ch.retry_ev, &tv);
}

/* Keep a quiet connection checked: a dead one fails the PING's timeout. */
static void
chat_ping_cb(evutil_socket_t fd, short what, void *arg)
{
	if (ch.authed && !cnet_busy(ch.net))
		cnet_send(ch.net, chat_quiet_reply, "PING", "PING");
}

/* Leave the event loop with an exit code. */
static void
chat_done(int code)
{
	if (ch.done)
		return;
	ch.done = 1;
	ch.exit_code = code;
	event_base_loopbreak(ch.base);
}

/* Reply to CLOSE. */
static void
chat_close_reply(void *arg, int code, int last, const char *text)
{
	if (!last)
		return;
	cnet_disconnect(ch.net);
	chat_done(EX_MC_OK);
}

/*
 * End the session: send CLOSE once every queued message is answered (the
 * outbox is empty); without a session, leave at once.
 */
static void
chat_quit(void)
{
	int	n = 0;
	struct outmsg *o;

	ch.quitting = 1;
	if (!ch.authed) {
		TAILQ_FOREACH(o, &ch.out, entry)
			if (o->kind == OUT_MSG)
				n++;
		if (n > 0)
			ui_printf("%d message%s not sent.", n,
			    n == 1 ? "" : "s");
		/* Input ended without a session: say why in the status. */
		chat_done(ch.ever_authed ? EX_MC_OK : ch.refused);
		return;
	}
	if (!TAILQ_EMPTY(&ch.out) || ch.closing)
		return;			/* chat_pump() comes back here */
	ch.closing = 1;
	ui_pause(1);
	cnet_send(ch.net, chat_close_reply, NULL, "CLOSE");
}

/* Ask the question of a login step. */
static void
chat_ask(enum chat_step s)
{
	char	p[PROTO_NAME_MAX + 16];

	ch.step = s;
	switch (s) {
	case STEP_MODE:
		ui_prompt("New account or log in? [n/l] ");
		break;
	case STEP_NAME:
		if (ch.suggest[0] != '\0' && !ch.reg) {
			snprintf(p, sizeof(p), "Name [%s]: ", ch.suggest);
			ui_prompt(p);
		} else
			ui_prompt("Name: ");
		break;
	case STEP_PASS:
		ui_secret(ch.reg ? "Choose a password: " : "Password: ");
		break;
	case STEP_PASS2:
		ui_secret("Repeat the password: ");
		break;
	case STEP_LOGIN:
	case STEP_CHAT:
		break;
	}
}

/* A line typed in the chat. */
static void
chat_line_chat(char *line)
{
	unsigned int	 n = CHAT_HISTORY_DEFAULT;
	char		*arg;

	if (strchr(line, '\n') != NULL) {	/* a paste: one message */
		chat_send_text(line);
		return;
	}
	if (line[strspn(line, " ")] == '\0')
		return;
	if (strcmp(line, "!close") == 0 || strcmp(line, "/quit") == 0 ||
	    strcmp(line, "/close") == 0) {
		chat_quit();
		return;
	}
	if (strncmp(line, "//", 2) == 0) {
		chat_send_text(line + 1);
		return;
	}
	if (line[0] != '/') {
		chat_send_text(line);
		return;
	}
	arg = line + strcspn(line, " ");
	if (*arg == ' ')
		*arg++ = '\0';
	while (*arg == ' ')
		arg++;
	if (strcmp(line, "/to") == 0)
		chat_cmd_to(arg);
	else if (strcmp(line, "/help") == 0)
		ui_printf("%s", chat_help);
	else if (strcmp(line, "/who") == 0) {
		if (!ch.authed)
			ui_printf("Not connected.");
		else
			cnet_send(ch.net, chat_who_reply, NULL, "WHO");
	} else if (strcmp(line, "/history") == 0) {
		if (*arg != '\0' && proto_parse_count(arg, 500, &n) == -1) {
			ui_printf("usage: /history [n], n from 1 to 500");
			return;
		}
		if (ch.peer[0] == '\0')
			ui_printf("Choose who to talk to first: /to <name>");
		else if (!ch.authed)
			ui_printf("Not connected.");
		else
			cnet_send(ch.net, chat_history_reply, NULL,
			    "HISTORY %s %u", ch.peer, n);
	} else
		ui_printf("Unknown command %s; type /help.", line);
}

/* Every line the user enters comes here (NULL: end of input). */
static void
chat_line(void *arg, char *line)
{
	size_t	len;

	if (line == NULL) {
		chat_quit();
		return;
	}
	switch (ch.step) {
	case STEP_MODE:
		len = strspn(line, " ");
		line += len;
		if (line[0] == 'n' || line[0] == 'N')
			ch.reg = 1;
		else if (line[0] == 'l' || line[0] == 'L' || line[0] == '\0')
			ch.reg = 0;
		else {
			ui_printf("Please answer n (create a new account) or l "
			    "(log in).");
			return;
		}
		chat_ask(STEP_NAME);
		break;
	case STEP_NAME:
		line += strspn(line, " ");
		line[strcspn(line, " ")] = '\0';
		if (line[0] == '\0' && ch.suggest[0] != '\0' && !ch.reg)
			line = ch.suggest;
		if (!proto_valid_name(line)) {
			ui_printf("A name is 1 to 32 letters, digits, '_', '.' "
			    "or '-'.");
			return;
		}
		snprintf(ch.name, sizeof(ch.name), "%s", line);
		chat_ask(STEP_PASS);
		break;
	case STEP_PASS:
		len = strlen(line);
		if (len == 0 || len > PROTO_PASS_MAX ||
		    strchr(line, ' ') != NULL) {
			ui_printf("A password is 1 to %d characters without "
			    "spaces.", PROTO_PASS_MAX);
			return;
		}
		memcpy(ch.pass, line, len + 1);
		if (ch.reg) {
			chat_ask(STEP_PASS2);
			break;
		}
		chat_submit();
		break;
	case STEP_PASS2:
		if (strcmp(line, ch.pass) != 0) {
			explicit_bzero(ch.pass, sizeof(ch.pass));
			ui_printf("The passwords differ; please choose one "
			    "again.");
			chat_ask(STEP_PASS);
			return;
		}
		chat_submit();
		break;
	case STEP_LOGIN:
		break;
	case STEP_CHAT:
		chat_line_chat(line);
		break;
	}
}

/* Name and password are in: log in (connecting first if need be). */
static void
chat_submit(void)
{
	ch.step = STEP_LOGIN;
	ui_pause(1);
	if (cnet_connected(ch.net))
		chat_login();
	else if (!evtimer_pending(ch.retry_ev, NULL) &&
	    !cnet_connecting(ch.net))
		cnet_connect(ch.net);	/* chat_ready logs in */
}

/* A signal: INT ends the session politely, TERM at once, WINCH redraws. */
static void
chat_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	switch (sig) {
	case SIGINT:
		if (ch.quitting)
			chat_done(EX_MC_OK);
		else
			chat_quit();
		break;
	case SIGWINCH:
		ui_resize();
		break;
	default:
		chat_done(EX_MC_OK);
		break;
	}
}

/* The interactive client; returns the exit code. */
int
chat_main(struct event_base *base, const char *host, const char *port,
    int timeout)
{
	static const struct cnet_cb cb = { chat_ready, chat_push, chat_lost,
	    chat_tls };
	struct event	*sigs[4];
	struct timeval	 tv = { CHAT_PING_EVERY, 0 };
	struct outmsg	*o;
	int		 signo[4] = { SIGINT, SIGTERM, SIGHUP, SIGWINCH };
	int		 i;

	memset(&ch, 0, sizeof(ch));
	TAILQ_INIT(&ch.out);
	ch.base = base;
	ch.host = host;
	ch.port = port;
	ch.net = cnet_new(base, host, port, timeout, &cb, NULL);
	ch.ack_ev = event_new(base, -1, 0, chat_ack_cb, NULL);
	ch.retry_ev = evtimer_new(base, chat_retry_cb, NULL);
	ch.ping_ev = event_new(base, -1, EV_PERSIST, chat_ping_cb, NULL);
	event_add(ch.ping_ev, &tv);
	for (i = 0; i < 4; i++) {
		sigs[i] = evsignal_new(base, signo[i], chat_signal_cb, NULL);
		event_add(sigs[i], NULL);
	}
	ui_init(base, chat_line, NULL);
	ui_pause(1);
	ui_printf("Connecting to %s port %s...", host, port);
	cnet_connect(ch.net);
	if (!ch.done)
		event_base_dispatch(base);
	ui_end();
	explicit_bzero(ch.pass, sizeof(ch.pass));
	while ((o = TAILQ_FIRST(&ch.out)) != NULL)
		chat_out_free(o);
	cnet_free(ch.net);
	for (i = 0; i < 4; i++)
		event_free(sigs[i]);
	event_free(ch.ack_ev);
	event_free(ch.retry_ev);
	event_free(ch.ping_ev);
	free(ch.who);
	return (ch.exit_code);
}

/*
 * client-script.c: the one-shot commands for scripts and cron.
 *
 *	mychat -u alice send bob "text"		exit 0 only after the 250
 *	mychat -u bob recv [--follow]		print, then ACK, what waits
 *
 * Errors go to stderr (the server's reply line as it came, or what went
 * wrong with the connection) and set the exit code of doc/mychat.1.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "client.h"
#include "xmalloc.h"

#define SCRIPT_RETRIES		3	/* resends of an unanswered MSG */
#define SCRIPT_BACKOFF_MAX	30

static struct {
	struct event_base	*base;
	struct script_opts	*o;
	struct cnet		*net;
	int			 exit_code;
	int			 done;
	int			 closing;
	/* send */
	char			 token[CLIENT_TOKEN_LEN + 1];
	char			*text;
	int			 msg_sent;
	int			 stored;
	int			 retries;
	/* recv */
	char			 name[PROTO_NAME_MAX + 1];
	unsigned long		 waiting;
	unsigned long		 printed;
	uint64_t		 max_seen;
	int			 ack_due;
	int			 acks_inflight;
	int			 logged_in;
	int			 ever_in;
	int			 backoff;
	struct event		*ack_ev;
	struct event		*idle_ev;
	struct event		*retry_ev;
} sc;

/* Leave the event loop with an exit code. */
static void
script_done(int code)
{
	if (sc.done)
		return;
	sc.done = 1;
	sc.exit_code = code;
	cnet_disconnect(sc.net);
	event_base_loopbreak(sc.base);
}

/* The server refused: its reply on stderr, the matching exit code. */
static void
script_refused(int code, const char *text)
{
	char	*safe = xstrdup(text);

	text_sanitize(safe);
	fprintf(stderr, "%d %s\n", code, safe);
	free(safe);
	script_done(text_reply_exit(code));
}

/* Reply to CLOSE: finished. */
static void
script_close_reply(void *arg, int code, int last, const char *text)
{
	if (last)
		script_done(EX_MC_OK);
}

/* Say goodbye; the exit code is already decided (0). */
static void
script_close(void)
{
	if (sc.closing)
		return;
	sc.closing = 1;
	cnet_send(sc.net, script_close_reply, NULL, "CLOSE");
}

/* Reply to MSG. */
static void
script_msg_reply(void *arg, int code, int last, const char *text)
{
	char		now[PROTO_TIME_LEN + 1];
	uint64_t	id;

	if (!last)
		return;
	if (code != RPL_STORED) {
		script_refused(code, text);
		return;
	}
	sc.stored = 1;
	if (proto_parse_id(text, &id) == 0) {
		proto_format_time(proto_now_ms(), now);
		clog_message(sc.o->user, sc.o->peer, now, id, sc.o->user,
		    sc.text);
	}
	if (client_verbose)
		fprintf(stderr, "%d %s\n", code, text);
	script_close();
}

/* Reply to TO: online (200) or offline (503) are both fine. */
static void
script_to_reply(void *arg, int code, int last, const char *text)
{
	if (!last)
		return;
	if (code != RPL_OK && code != RPL_OFFLINE) {
		script_refused(code, text);
		return;
	}
	if (client_verbose)
		fprintf(stderr, "%d %s\n", code, text);
	sc.msg_sent = 1;
	cnet_send(sc.net, script_msg_reply, NULL, "@%s MSG %s", sc.token,
	    sc.text);
}

/* Reply to LOGIN for send. */
static void
script_send_login_reply(void *arg, int code, int last, const char *text)
{
	if (!last)
		return;
	if (code != RPL_OK) {
		script_refused(code, text);
		return;
	}
	cnet_send(sc.net, script_to_reply, NULL, "TO %s", sc.o->peer);
}

/* Connected: log in. */
static void
script_send_ready(void *arg, const char *greeting)
{
	cnet_send_secret(sc.net, script_send_login_reply, NULL, "LOGIN",
	    sc.o->user, sc.o->password);
}

/* send ignores pushes (queued messages stay for recv). */
static void
script_send_push(void *arg, char *line, size_t len)
{
}

/* Reconnect after a loss. */
static void
script_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	cnet_connect(sc.net);
}

/* Wait, then connect again. */
static void
script_retry(void)
{
	struct timeval	tv;

	sc.backoff = sc.backoff == 0 ? 1 : sc.backoff * 2;
	if (sc.backoff > SCRIPT_BACKOFF_MAX)
		sc.backoff = SCRIPT_BACKOFF_MAX;
	tv.tv_sec = sc.backoff;
	tv.tv_usec = 0;
	evtimer_add(sc.retry_ev, &tv);
}

/*
 * The connection ended. A MSG that was sent but not answered is sent again
 * (same token: stored at most once) a few times before giving up.
 */
static void
script_send_lost(void *arg, enum cnet_err e, const char *why)
{
	if (sc.done)
		return;
	if (sc.stored) {
		script_done(EX_MC_OK);
		return;
	}
	fprintf(stderr, "mychat: %s: %s\n", cnet_strerr(e), why);
	if (sc.msg_sent && e == CNET_ELOST && sc.retries < SCRIPT_RETRIES) {
		sc.retries++;
		sc.msg_sent = 0;
		fprintf(stderr, "mychat: sending again (%d of %d)\n",
		    sc.retries, SCRIPT_RETRIES);
		script_retry();
		return;
	}
	script_done(cnet_exit_code(e));
}

/* Encrypted or not: said with -v (see mychat(1)). */
static void
script_tls(void *arg, const char *desc)
{
	if (!client_verbose)
		return;
	if (desc != NULL)
		fprintf(stderr, "mychat: TLS: %s\n", desc);
	else
		fprintf(stderr, "mychat: not encrypted: %s\n",
		    ctls_mode() == CTLS_OFF ? "--no-tls" :
		    "the server does not offer STARTTLS");
}

/* Set up the connection and the timers both commands use. */
static void
script_setup(struct event_base *base, struct script_opts *o,
    const struct cnet_cb *cb)
{
	memset(&sc, 0, sizeof(sc));
	sc.base = base;
	sc.o = o;
	sc.net = cnet_new(base, o->host, o->port, o->timeout, cb, NULL);
	sc.retry_ev = evtimer_new(base, script_retry_cb, NULL);
}

/* Run the loop and clean up. */
static int
script_run(void)
{
	cnet_connect(sc.net);
	if (!sc.done)
		event_base_dispatch(sc.base);
	cnet_free(sc.net);
	event_free(sc.retry_ev);
	if (sc.ack_ev != NULL)
		event_free(sc.ack_ev);
	if (sc.idle_ev != NULL)
		event_free(sc.idle_ev);
	free(sc.text);
	return (sc.exit_code);
}

/* mychat send <peer> <text|->: exit 0 only after the server's 250. */
int
script_send(struct event_base *base, struct script_opts *o)
{
	static const struct cnet_cb cb = { script_send_ready, script_send_push,
	    script_send_lost, script_tls };
	struct evbuffer	*buf;
	size_t		 len;
	char		*in;
	int		 n;

	script_setup(base, o, &cb);
	if (strcmp(o->text, "-") == 0) {
		/* The message is stdin, up to the line limit. */
		buf = evbuffer_new();
		while ((n = evbuffer_read(buf, 0, 65536)) > 0)
			if (evbuffer_get_length(buf) > CLIENT_SEND_MAX)
				break;
		if (n == -1) {
			fprintf(stderr, "mychat: stdin: %s\n", strerror(errno));
			evbuffer_free(buf);
			return (EX_MC_USAGE);
		}
		len = evbuffer_get_length(buf);
		in = xmalloc(len + 1);
		evbuffer_remove(buf, in, len);
		evbuffer_free(buf);
		in[len] = '\0';
		/* One final newline ends the text, it is not part of it. */
		if (len > 0 && in[len - 1] == '\n') {
			in[--len] = '\0';
			if (len > 0 && in[len - 1] == '\r')
				in[--len] = '\0';
		}
		sc.text = text_escape(in, len);
		free(in);
	} else
		sc.text = text_escape(o->text, strlen(o->text));
	len = strlen(sc.text);
	if (len == 0) {
		fprintf(stderr, "mychat: the message is empty\n");
		return (EX_MC_USAGE);
	}
	if (len > CLIENT_SEND_MAX - CLIENT_MSG_OVERHEAD) {
		fprintf(stderr, "mychat: the message is too long (%zu bytes "
		    "escaped, at most %d)\n", len,
		    CLIENT_SEND_MAX - CLIENT_MSG_OVERHEAD);
		return (EX_MC_USAGE);
	}
	if (!proto_valid_text(sc.text, len)) {
		fprintf(stderr, "mychat: the message holds control characters "
		    "or invalid UTF-8\n");
		return (EX_MC_USAGE);
	}
	text_token(sc.token, sizeof(sc.token));
	return (script_run());
}

/* Is everything printed and acknowledged? Then recv is finished. */
static void
script_recv_check(void)
{
	if (sc.o->follow || !sc.logged_in || sc.closing)
		return;
	if (sc.printed >= sc.waiting && sc.acks_inflight == 0 && !sc.ack_due)
		script_close();
}

/* Reply to ACK. */
static void
script_ack_reply(void *arg, int code, int last, const char *text)
{
	if (!last)
		return;
	sc.acks_inflight--;
	if (code != RPL_OK) {
		script_refused(code, text);
		return;
	}
	script_recv_check();
}

/* ACK everything printed so far (once per batch of pushes). */
static void
script_ack_cb(evutil_socket_t fd, short what, void *arg)
{
	if (!sc.ack_due || !sc.logged_in)
		return;
	sc.ack_due = 0;
	sc.acks_inflight++;
	cnet_send(sc.net, script_ack_reply, NULL, "ACK %llu",
	    (unsigned long long)sc.max_seen);
}

/* The promised messages did not all come in time. */
static void
script_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	fprintf(stderr, "mychat: %s: %lu of %lu waiting messages came in "
	    "%d s\n", cnet_strerr(CNET_ETIMEOUT), sc.printed, sc.waiting,
	    sc.o->timeout);
	script_done(EX_MC_TIMEOUT);
}

/* (Re)start the wait for the next promised message. */
static void
script_idle_arm(void)
{
	struct timeval	tv = { sc.o->timeout, 0 };

	if (sc.o->follow || sc.printed >= sc.waiting)
		evtimer_del(sc.idle_ev);
	else
		evtimer_add(sc.idle_ev, &tv);
}

/* A push for recv: print each new message, then have it ACKed. */
static void
script_recv_push(void *arg, char *line, size_t len)
{
	struct cpush	 m;
	char		*text, *p;

	if (strncmp(line, "MSG ", 4) != 0)
		return;
	if (text_parse_push(line, &m) == -1) {
		fprintf(stderr, "mychat: malformed message from the server "
		    "ignored\n");
		return;
	}
	if (m.id > sc.max_seen) {
		text = sc.o->unescape ? text_unescape(m.text) : xstrdup(m.text);
		/* Control characters cannot come from a real server. */
		for (p = text; *p != '\0'; p++)
			if (((unsigned char)*p < 0x20 && *p != '\t' &&
			    *p != '\n') || *p == 0x7f)
				*p = '?';
		printf("%s %s %s\n", m.time, m.from, text);
		free(text);
		if (fflush(stdout) == EOF || ferror(stdout)) {
			fprintf(stderr, "mychat: stdout: %s\n",
			    strerror(errno));
			script_done(EX_MC_USAGE);
			return;
		}
		clog_message(sc.name, m.from, m.time, m.id, m.from, m.text);
		sc.max_seen = m.id;
		sc.printed++;
	}
	sc.ack_due = 1;
	event_active(sc.ack_ev, EV_TIMEOUT, 0);
	script_idle_arm();
}

/* Reply to LOGIN for recv: "welcome <name>, <N> waiting". */
static void
script_recv_login_reply(void *arg, int code, int last, const char *text)
{
	const char	*p;
	size_t		 n;

	if (!last)
		return;
	if (code != RPL_OK) {
		script_refused(code, text);
		return;
	}
	sc.logged_in = 1;
	sc.ever_in = 1;
	sc.backoff = 0;
	p = strncmp(text, "welcome ", 8) == 0 ? text + 8 : sc.o->user;
	n = strcspn(p, " ,");
	if (n == 0 || n > PROTO_NAME_MAX)
		n = strlen(sc.o->user);
	snprintf(sc.name, sizeof(sc.name), "%.*s", (int)n, p);
	if (!proto_valid_name(sc.name))
		snprintf(sc.name, sizeof(sc.name), "%s", sc.o->user);
	sc.waiting = 0;
	sc.printed = 0;
	if ((p = strstr(text, ", ")) != NULL)
		sc.waiting = strtoul(p + 2, NULL, 10);
	if (client_verbose)
		fprintf(stderr, "%d %s\n", code, text);
	script_idle_arm();
	if (sc.ack_due)
		event_active(sc.ack_ev, EV_TIMEOUT, 0);
	script_recv_check();
}

/* Connected: log in. */
static void
script_recv_ready(void *arg, const char *greeting)
{
	cnet_send_secret(sc.net, script_recv_login_reply, NULL, "LOGIN",
	    sc.o->user, sc.o->password);
}

/* The connection ended: done, fatal, or (--follow) try again. */
static void
script_recv_lost(void *arg, enum cnet_err e, const char *why)
{
	if (sc.done)
		return;
	if (sc.closing && e != CNET_ETIMEOUT) {
		script_done(EX_MC_OK);
		return;
	}
	fprintf(stderr, "mychat: %s: %s\n", cnet_strerr(e), why);
	sc.logged_in = 0;
	sc.acks_inflight = 0;
	evtimer_del(sc.idle_ev);
	if (sc.o->follow && sc.ever_in && e != CNET_EPROTO &&
	    e != CNET_ETLS) {
		script_retry();
		fprintf(stderr, "mychat: reconnecting in %d s\n", sc.backoff);
		return;
	}
	script_done(cnet_exit_code(e));
}

/* mychat recv [--follow]: print waiting messages, ACK them. */
int
script_recv(struct event_base *base, struct script_opts *o)
{
	static const struct cnet_cb cb = { script_recv_ready, script_recv_push,
	    script_recv_lost, script_tls };

	script_setup(base, o, &cb);
	snprintf(sc.name, sizeof(sc.name), "%s", o->user);
	sc.ack_ev = event_new(base, -1, 0, script_ack_cb, NULL);
	sc.idle_ev = evtimer_new(base, script_idle_cb, NULL);
	return (script_run());
}

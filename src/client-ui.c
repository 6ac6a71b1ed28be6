/*
 * client-ui.c: the terminal of the interactive client.
 *
 * On a terminal, lines are edited with libedit (emacs keys, history) in
 * unbuffered mode: a libevent read event on stdin feeds el_gets() one key
 * at a time, so the event loop keeps running while the user types, and a
 * message that arrives meanwhile is printed above the line being edited:
 * the edit area is erased, the text printed, and libedit redraws the
 * prompt and the half-typed line (EL_REFRESH) with the cursor where it was.
 * (libedit's readline emulation was tried first: in callback mode it does
 * not reset its line after a newline, so a redraw showed the old line.)
 *
 * Passwords are read with the terminal's echo turned off. Lines that come
 * in faster than a human types (a paste of several lines) are joined into
 * one multi-line message when ui_multiline(1) is on.
 *
 * When stdin is not a terminal, lines are read as they come, one at a
 * time, with no prompts redrawn.
 */
#include "config.h"

#include <sys/ioctl.h>

#include <errno.h>
#include <histedit.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <wchar.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "client.h"
#include "xmalloc.h"

/* Longest line or paste taken from the terminal or stdin. */
#define UI_INPUT_MAX	(4 * CLIENT_SEND_MAX)

enum ui_mode {
	UI_EDIT,	/* libedit, echo */
	UI_SECRET	/* no echo */
};

static struct {
	struct event_base	*base;
	ui_line_fn		*fn;
	void			*arg;
	int			 tty;
	EditLine		*el;
	History			*hist;
	struct event		*ev_in;
	struct event		*ev_more;	/* deliver buffered lines */
	char			*prompt;
	enum ui_mode		 mode;
	int			 active;	/* prompt shown, input read */
	int			 in_handler;
	int			 paused;
	int			 multiline;
	int			 eof;
	int			 eof_told;	/* NULL delivered */
	int			 discard;	/* skipping an overlong line */
	struct evbuffer		*inbuf;		/* stdin bytes (no tty) */
	struct evbuffer		*paste;		/* lines of a paste */
	char			 secbuf[1024];	/* a password being typed */
	size_t			 seclen;
	char			*shown;		/* last prompt shown (no tty) */
	struct termios		 saved_tio;
	int			 echo_off;
} ui;

static void	ui_start(void);
static void	ui_stop(void);

/* libedit's prompt callback. */
static char *
ui_prompt_fn(EditLine *el)
{
	return (ui.prompt != NULL ? ui.prompt : "");
}

/* Is the interactive client on a terminal? */
int
ui_is_tty(void)
{
	return (ui.tty);
}

/* Display width of a multibyte string (bytes if it is not valid). */
static size_t
ui_width(const char *s, size_t len)
{
	wchar_t		 wbuf[1024];
	char		 tmp[4096];
	size_t		 n;
	int		 w;

	if (len >= sizeof(tmp))
		return (len);
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if ((n = mbstowcs(wbuf, tmp, 1024)) == (size_t)-1 || n >= 1024)
		return (len);
	if ((w = wcswidth(wbuf, n)) < 0)
		return (n);
	return ((size_t)w);
}

/* Terminal columns. */
static size_t
ui_cols(void)
{
	struct winsize	ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return (ws.ws_col);
	return (80);
}

/* Move the cursor to the start of the prompt and clear to the end. */
static void
ui_erase(void)
{
	const LineInfo	*li = el_line(ui.el);
	size_t		 w, rows;

	w = ui_width(ui.prompt, strlen(ui.prompt));
	if (li != NULL)
		w += ui_width(li->buffer, (size_t)(li->cursor - li->buffer));
	rows = w / ui_cols();
	fputc('\r', stdout);
	if (rows > 0)
		fprintf(stdout, "\033[%zuA", rows);
	fputs("\033[J", stdout);
}

/* Turn the terminal's echo off for a password, or back on. */
static void
ui_echo(int on)
{
	struct termios	t;

	if (!on && !ui.echo_off) {
		if (tcgetattr(STDIN_FILENO, &ui.saved_tio) == -1)
			return;
		t = ui.saved_tio;
		t.c_lflag &= ~(tcflag_t)ECHO;
		t.c_lflag |= ICANON;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &t);
		ui.echo_off = 1;
	} else if (on && ui.echo_off) {
		tcsetattr(STDIN_FILENO, TCSANOW, &ui.saved_tio);
		ui.echo_off = 0;
	}
}

/* Show the prompt and start taking input, as the mode says. */
static void
ui_start(void)
{
	if (ui.active || ui.paused || ui.in_handler)
		return;
	/* Without a terminal, lines read before the end still count. */
	if (ui.eof && (ui.tty || ui.eof_told))
		return;
	ui.active = 1;
	if (!ui.tty && ui.prompt[0] != '\0' &&
	    (ui.shown == NULL || strcmp(ui.shown, ui.prompt) != 0)) {
		/* No terminal: show each new prompt once, on its own line. */
		free(ui.shown);
		ui.shown = xstrdup(ui.prompt);
		fputs(ui.prompt, stdout);
		fputc('\n', stdout);
		fflush(stdout);
	}
	if (!ui.tty && ui.mode == UI_SECRET && isatty(STDIN_FILENO))
		ui_echo(0);	/* a terminal, but output goes elsewhere */
	if (ui.tty) {
		if (ui.mode == UI_EDIT)
			el_set(ui.el, EL_UNBUFFERED, 1);	/* prints it */
		else {
			ui_echo(0);
			fputs(ui.prompt, stdout);
			fflush(stdout);
		}
	}
	if (!ui.eof)
		event_add(ui.ev_in, NULL);
	if (!ui.tty && (ui.eof || evbuffer_get_length(ui.inbuf) > 0))
		event_active(ui.ev_more, EV_TIMEOUT, 0);
}

/* Hide the prompt and stop taking input (the terminal is cooked again). */
static void
ui_stop(void)
{
	if (!ui.active)
		return;
	ui.active = 0;
	event_del(ui.ev_in);
	if (!ui.tty)
		return;
	if (ui.mode == UI_EDIT) {
		ui_erase();
		fflush(stdout);
		el_set(ui.el, EL_UNBUFFERED, 0);
	} else {
		ui_echo(1);
		fputs("\r\033[K", stdout);
		fflush(stdout);
	}
}

/* Hand a complete line (NULL at EOF) to the owner, then show a prompt. */
static void
ui_deliver(char *line)
{
	ui.in_handler = 1;
	ui.fn(ui.arg, line);
	ui.in_handler = 0;
	ui_start();
}

/* A line ended at the terminal (libedit has moved to a fresh line). */
static void
ui_tty_line(const char *buf, size_t len)
{
	HistEvent	 ev;
	char		*line;
	int		 pending = 0;

	if (ui.multiline && ioctl(STDIN_FILENO, FIONREAD, &pending) == -1)
		pending = 0;
	ui.active = 0;
	event_del(ui.ev_in);
	el_set(ui.el, EL_UNBUFFERED, 0);
	if (pending > 0 && evbuffer_get_length(ui.paste) + len < UI_INPUT_MAX) {
		/* More is already waiting: a paste. Keep collecting. */
		evbuffer_add(ui.paste, buf, len);
		evbuffer_add(ui.paste, "\n", 1);
		ui_start();
		return;
	}
	evbuffer_add(ui.paste, buf, len);
	evbuffer_add(ui.paste, "", 1);
	line = xstrdup((char *)evbuffer_pullup(ui.paste, -1));
	evbuffer_drain(ui.paste, evbuffer_get_length(ui.paste));
	if (line[0] != '\0' && strchr(line, '\n') == NULL)
		history(ui.hist, &ev, H_ENTER, line);
	ui_deliver(line);
	free(line);
}

/* Password bytes from the terminal (cooked, no echo). */
static void
ui_tty_secret(void)
{
	char	*nl, line[sizeof(ui.secbuf)];
	ssize_t	 n;

	n = read(STDIN_FILENO, ui.secbuf + ui.seclen,
	    sizeof(ui.secbuf) - 1 - ui.seclen);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0 && ui.seclen < sizeof(ui.secbuf) - 1) {
		ui_stop();
		ui.eof = 1;
		ui_deliver(NULL);
		return;
	}
	if (n > 0)
		ui.seclen += (size_t)n;
	ui.secbuf[ui.seclen] = '\0';
	if ((nl = strchr(ui.secbuf, '\n')) == NULL) {
		if (ui.seclen < sizeof(ui.secbuf) - 1)
			return;
		nl = ui.secbuf + ui.seclen;	/* too long: cut */
	}
	*nl = '\0';
	memcpy(line, ui.secbuf, (size_t)(nl - ui.secbuf) + 1);
	explicit_bzero(ui.secbuf, sizeof(ui.secbuf));
	ui.seclen = 0;
	ui_echo(1);
	fputs("\n", stdout);
	fflush(stdout);
	ui.active = 0;
	event_del(ui.ev_in);
	ui_deliver(line);
	explicit_bzero(line, sizeof(line));
}

/* Deliver complete lines buffered from a non-terminal stdin. */
static void
ui_pipe_lines(evutil_socket_t fd, short what, void *arg)
{
	struct evbuffer_ptr	 p;
	size_t			 eol_len, len;
	char			*line;

	while (ui.active && !ui.paused) {
		p = evbuffer_search_eol(ui.inbuf, NULL, &eol_len,
		    EVBUFFER_EOL_LF);
		if (p.pos < 0) {
			len = evbuffer_get_length(ui.inbuf);
			if (len > UI_INPUT_MAX) {
				ui.discard = 1;
				evbuffer_drain(ui.inbuf, len);
			}
			if (!ui.eof || len == 0)
				break;
			/* A last line without a newline. */
			eol_len = 0;
			p.pos = (ev_ssize_t)len;
		}
		len = (size_t)p.pos;
		line = xmalloc(len + 1);
		evbuffer_remove(ui.inbuf, line, len);
		evbuffer_drain(ui.inbuf, eol_len);
		line[len] = '\0';
		if (len > 0 && line[len - 1] == '\r')
			line[len - 1] = '\0';
		if (ui.discard) {
			ui.discard = 0;
			ui_printf("input line too long, ignored");
			free(line);
			continue;
		}
		ui.active = 0;
		ui_echo(1);
		ui_deliver(line);
		if (ui.mode == UI_SECRET)
			explicit_bzero(line, len);
		free(line);
	}
	if (ui.eof && ui.active && evbuffer_get_length(ui.inbuf) == 0) {
		ui.active = 0;
		ui.eof_told = 1;
		event_del(ui.ev_in);
		ui.in_handler = 1;
		ui.fn(ui.arg, NULL);
		ui.in_handler = 0;
	}
}

/* stdin is readable. */
static void
ui_read_cb(evutil_socket_t fd, short what, void *arg)
{
	const char	*buf;
	int		 n;

	if (!ui.tty) {
		n = evbuffer_read(ui.inbuf, STDIN_FILENO, 65536);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			ui.eof = 1;
			event_del(ui.ev_in);
		}
		ui_pipe_lines(-1, 0, NULL);
		return;
	}
	if (ui.mode == UI_SECRET) {
		ui_tty_secret();
		return;
	}
	buf = el_gets(ui.el, &n);
	if (buf == NULL) {
		if (n == -1) {		/* EOF or an error on the terminal */
			ui_stop();
			ui.eof = 1;
			ui_deliver(NULL);
		}
		return;
	}
	if (n == 1 && buf[0] == 4) {	/* ^D on an empty line */
		ui_stop();
		fputs("\n", stdout);
		ui.eof = 1;
		ui_deliver(NULL);
		return;
	}
	if (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		ui_tty_line(buf, (size_t)n - 1);
}

/* Set up the terminal side; fn gets each input line. */
void
ui_init(struct event_base *base, ui_line_fn *fn, void *arg)
{
	HistEvent	ev;

	memset(&ui, 0, sizeof(ui));
	ui.base = base;
	ui.fn = fn;
	ui.arg = arg;
	ui.prompt = xstrdup("");
	ui.tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
	ui.inbuf = evbuffer_new();
	ui.paste = evbuffer_new();
	if (ui.tty) {
		ui.el = el_init("mychat", stdin, stdout, stderr);
		ui.hist = history_init();
		history(ui.hist, &ev, H_SETSIZE, 1000);
		history(ui.hist, &ev, H_SETUNIQUE, 1);
		el_set(ui.el, EL_EDITOR, "emacs");
		el_set(ui.el, EL_PROMPT, ui_prompt_fn);
		el_set(ui.el, EL_HIST, history, ui.hist);
		el_source(ui.el, NULL);
	}
	ui.ev_in = event_new(base, STDIN_FILENO, EV_READ | EV_PERSIST,
	    ui_read_cb, NULL);
	ui.ev_more = event_new(base, -1, 0, ui_pipe_lines, NULL);
}

/* Give the terminal back as it was. */
void
ui_end(void)
{
	if (ui.base == NULL)
		return;
	if (ui.active && ui.tty && ui.mode == UI_EDIT) {
		ui_erase();
		fflush(stdout);
	}
	ui_stop();
	ui_echo(1);
	if (ui.el != NULL) {
		el_end(ui.el);
		history_end(ui.hist);
	}
	event_free(ui.ev_in);
	event_free(ui.ev_more);
	evbuffer_free(ui.inbuf);
	evbuffer_free(ui.paste);
	explicit_bzero(ui.secbuf, sizeof(ui.secbuf));
	free(ui.shown);
	free(ui.prompt);
	ui.base = NULL;
}

/* Switch to mode m with prompt p, redrawing if input is live. */
static void
ui_switch(enum ui_mode m, const char *p)
{
	int	was = ui.active;

	if (was)
		ui_stop();
	free(ui.prompt);
	ui.prompt = xstrdup(p);
	ui.mode = m;
	ui_start();
}

/* Read the next lines with line editing after this prompt. */
void
ui_prompt(const char *p)
{
	if (ui.mode == UI_EDIT && strcmp(ui.prompt, p) == 0)
		return;
	ui_switch(UI_EDIT, p);
}

/* Read the next line without echo (a password). */
void
ui_secret(const char *p)
{
	ui_switch(UI_SECRET, p);
}

/* Stop (1) or resume (0) taking input, e.g. while a login is checked. */
void
ui_pause(int on)
{
	if (on) {
		ui.paused = 1;
		ui_stop();
	} else {
		ui.paused = 0;
		ui_start();
	}
}

/* Join pasted lines into one multi-line input (1) or not (0). */
void
ui_multiline(int on)
{
	ui.multiline = on;
}

/* The terminal was resized. */
void
ui_resize(void)
{
	if (ui.el != NULL)
		el_resize(ui.el);
}

/*
 * Print a message (a newline is added) without garbling the line being
 * edited: erase the prompt and the half-typed line, print, redraw both.
 */
void
ui_printf(const char *fmt, ...)
{
	va_list	 ap;
	char	*s;
	int	 len;

	va_start(ap, fmt);
	len = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (len == -1)
		return;
	if (ui.base == NULL || !ui.tty || !ui.active) {
		fputs(s, stdout);
		fputc('\n', stdout);
		fflush(stdout);
		free(s);
		return;
	}
	if (ui.mode == UI_EDIT) {
		ui_erase();
		fputs(s, stdout);
		fputc('\n', stdout);
		fflush(stdout);
		el_set(ui.el, EL_REFRESH);
	} else {
		fputs("\r\033[K", stdout);
		fputs(s, stdout);
		fputc('\n', stdout);
		fputs(ui.prompt, stdout);
		fflush(stdout);
	}
	free(s);
}

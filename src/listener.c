/*
 * listener.c: bind, listen and accept. Accepting drains the backlog in a
 * loop (libevent's listener does), the backlog is large, a full server
 * answers 421 and closes, and running out of descriptors pauses accepting
 * for a second instead of spinning (tmux server_accept, httpd).
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mychat.h"
#include "xmalloc.h"

#define LISTEN_BACKLOG	4096

static const char too_many[] = "421 too many connections\r\n";
static const char shutting[] = "421 server shutting down\r\n";

static void
listener_refuse(int fd, const char *line)
{
	/* best effort: the socket buffer is empty, this does not block */
	if (send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT) == -1)
		log_debug("%s: send: %s", __func__, strerror(errno));
	close(fd);
}

static void
listener_accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct listener	*l = arg;
	struct server	*srv = l->srv;
	struct conf	*cf = srv->conf;
	char		 addr[MYCHAT_ADDR_MAX];

	if (srv->shutting_down) {
		listener_refuse(fd, shutting);
		return;
	}
	if (cf->max_conns > 0 && (int)srv->nconns >= cf->max_conns) {
		log_warnx("refusing a connection: %u connections", srv->nconns);
		listener_refuse(fd, too_many);
		return;
	}
	if (cf->max_conns_ip > 0) {
		addr[0] = '\0';
		if (sa->sa_family == AF_INET)
			inet_ntop(AF_INET,
			    &((struct sockaddr_in *)sa)->sin_addr, addr,
			    sizeof(addr));
		else if (sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6,
			    &((struct sockaddr_in6 *)sa)->sin6_addr, addr,
			    sizeof(addr));
		if (!conf_is_exempt(cf, addr) && limit_conns_ip(srv, addr) >=
		    (unsigned int)cf->max_conns_ip) {
			log_warnx("refusing a connection from %s: per-address "
			    "limit %d", addr, cf->max_conns_ip);
			listener_refuse(fd, too_many);
			return;
		}
	}
	conn_new(srv, fd, sa, l->tls);
}

static void
listener_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server	*srv = arg;
	struct listener	*l;

	for (l = srv->listeners; l != NULL; l = l->next)
		evconnlistener_enable(l->lev);
}

static void
listener_error_cb(struct evconnlistener *lev, void *arg)
{
	struct listener	*l = arg;
	struct server	*srv = l->srv;
	struct timeval	 tv = { 1, 0 };
	struct listener	*ll;
	int		 e = EVUTIL_SOCKET_ERROR();

	if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
		log_warnx("accept: %s: pausing accepts for 1 s",
		    evutil_socket_error_to_string(e));
		for (ll = srv->listeners; ll != NULL; ll = ll->next)
			evconnlistener_disable(ll->lev);
		event_add(srv->accept_pause_ev, &tv);
		return;
	}
	log_warnx("accept on %s: %s", l->addr, evutil_socket_error_to_string(e));
}

/* Listen on addr (numeric IPv4 or IPv6) and port. 0 ok, -1 error. */
int
listener_add(struct server *srv, const char *addr, int port, int tls)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	struct listener		*l;
	socklen_t		 sslen;
	unsigned int		 flags;

	memset(&ss, 0, sizeof(ss));
	flags = LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE |
	    LEV_OPT_CLOSE_ON_EXEC;
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		sslen = sizeof(*sin);
	} else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		sslen = sizeof(*sin6);
		/* "::" and "0.0.0.0" side by side */
		flags |= LEV_OPT_BIND_IPV6ONLY;
	} else {
		log_warnx("listen: %s is not a numeric address", addr);
		return (-1);
	}
	if (srv->accept_pause_ev == NULL)
		srv->accept_pause_ev = evtimer_new(srv->base,
		    listener_resume_cb, srv);
	l = xcalloc(1, sizeof(*l));
	l->srv = srv;
	l->tls = tls;
	snprintf(l->addr, sizeof(l->addr), "%s%s%s:%d",
	    strchr(addr, ':') != NULL ? "[" : "", addr,
	    strchr(addr, ':') != NULL ? "]" : "", port);
	l->lev = evconnlistener_new_bind(srv->base, listener_accept_cb, l,
	    flags, LISTEN_BACKLOG, (struct sockaddr *)&ss, (int)sslen);
	if (l->lev == NULL) {
		log_warn("listen on %s", l->addr);
		free(l);
		return (-1);
	}
	evconnlistener_set_error_cb(l->lev, listener_error_cb);
	l->next = srv->listeners;
	srv->listeners = l;
	log_info("listening on %s%s", l->addr, tls ? " (TLS)" : "");
	return (0);
}

/* Stop listening everywhere (shutdown). */
void
listener_free_all(struct server *srv)
{
	struct listener	*l;

	while ((l = srv->listeners) != NULL) {
		srv->listeners = l->next;
		evconnlistener_free(l->lev);
		free(l);
	}
	if (srv->accept_pause_ev != NULL) {
		event_free(srv->accept_pause_ev);
		srv->accept_pause_ev = NULL;
	}
}

/* SPDX-License-Identifier: MIT */
/*
 * metrics --listen: a small HTTP/1.1 responder for GET /metrics.
 *
 * One thread, one epoll loop, every socket non-blocking: a client that
 * sends slowly, reads slowly or not at all holds a connection slot and
 * nothing else.  Limits, each closing only the connection that hits it:
 *   - the request head (request line and headers) must arrive whole within
 *     HEAD_MS of the connection and fit in HEAD_MAX bytes (431 otherwise);
 *   - a request line that is not "METHOD TARGET HTTP/1.x" is refused (400)
 *     as soon as its line ends, or at its first byte that cannot belong to it;
 *   - the response must be taken within WRITE_MS;
 *   - at most MAX_CONNS connections: a new one closes the oldest that has not
 *     sent its request yet;
 *   - at most PENDING_MAX response bytes waiting for slow readers (503).
 * Every answer closes the connection after it (Connection: close); the
 * socket is shut down for writing and drained briefly first, so that the
 * client gets the whole response rather than a reset.
 * Each GET /metrics is answered with a scrape made for it.  SIGINT, SIGTERM
 * and SIGHUP end the loop (read through a signalfd).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "metrics.h"
#include "shmctl.h"

#define HEAD_MAX     HTTP_HEAD_MAX
#define HEAD_MS      10000u
#define WRITE_MS     60000u
#define LINGER_MS    2000u
#define MAX_CONNS    512u
#define PENDING_MAX  (64u << 20)

enum cstate { C_FREE, C_READ, C_WRITE, C_LINGER };

struct conn {
	enum cstate state;
	int fd;
	uint64_t since_ms;        /* accepted (C_READ), answering (C_WRITE), lingering */
	uint64_t deadline_ms;
	size_t len;               /* bytes of head[] received */
	char *out;                /* the response, malloc()ed */
	size_t out_len, out_off;
	char head[HEAD_MAX];
};

struct server {
	const struct opts *o;
	int lfd, ep;
	struct conn *c;           /* MAX_CONNS entries */
	unsigned nconns;
	size_t pending;           /* response bytes not yet sent, all connections */
	uint64_t listen_paused_until;
	int sfd;                  /* signalfd of SIGINT, SIGTERM, SIGHUP */
	bool stop;
};

/* epoll data of the signalfd (the listener's is NULL, a connection's its conn) */
static char signal_tag;

static uint64_t now_ms(void)
{
	return now_mono_ns() / 1000000u;
}

/* ---- address ------------------------------------------------------------- */

/* "ADDR:PORT" or "[V6ADDR]:PORT", numeric only: the address is where we
 * bind, never a name to look up nor an implied "every interface". */
static int parse_listen(const char *arg, struct sockaddr_storage *ss, socklen_t *sl)
{
	char host[64];
	const char *port;
	if (arg[0] == '[') {
		const char *end = strchr(arg, ']');
		if (!end || end[1] != ':' || (size_t)(end - arg - 1) >= sizeof(host))
			return -EINVAL;
		memcpy(host, arg + 1, (size_t)(end - arg - 1));
		host[end - arg - 1] = 0;
		port = end + 2;
	} else {
		const char *colon = strrchr(arg, ':');
		if (!colon || (size_t)(colon - arg) >= sizeof(host) || memchr(arg, ':', (size_t)(colon - arg)))
			return -EINVAL;
		memcpy(host, arg, (size_t)(colon - arg));
		host[colon - arg] = 0;
		port = colon + 1;
	}
	uint64_t p;
	if (!host[0] || parse_count(port, &p) < 0 || p > 65535)
		return -EINVAL;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE };
	struct addrinfo *res = NULL;
	if (getaddrinfo(host, port, &hints, &res) != 0 || !res)
		return -EINVAL;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sl = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int open_listener(struct server *sv, const char *arg)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	if (parse_listen(arg, &ss, &sl) < 0)
		return fail(EXIT_ERROR, "metrics", "--listen '%s': expected a numeric ADDRESS:PORT, "
			    "e.g. 127.0.0.1:9464 or [::1]:9464", arg);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(EXIT_ERROR, "metrics", "socket: %s", strerror(errno));
	int one = 1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)       /* [::]:P means IPv6 only, as written */
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 128) < 0) {
		int e = errno;
		close(fd);
		return fail(EXIT_ERROR, arg, "%s", strerror(e));
	}
	sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN], port[8];
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 ||
	    getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		close(fd);
		return fail(EXIT_ERROR, arg, "getsockname: %s", strerror(errno));
	}
	printf(ss.ss_family == AF_INET6 ? "listening on http://[%s]:%s/metrics\n"
					: "listening on http://%s:%s/metrics\n", host, port);
	int rc = stdout_failed();
	if (rc) {
		close(fd);
		return fail(EXIT_ERROR, "stdout", "%s", strerror(rc));
	}
	sv->lfd = fd;
	return EXIT_OK;
}

/* ---- connections --------------------------------------------------------- */

static void conn_close(struct server *sv, struct conn *c)
{
	if (c->state == C_FREE)
		return;
	sv->pending -= c->out_len - c->out_off;
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	close(c->fd);      /* leaves the epoll set with it */
	c->state = C_FREE;
	sv->nconns--;
}

static void conn_watch(struct server *sv, struct conn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };
	if (epoll_ctl(sv->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		conn_close(sv, c);
}

/* Send what the socket takes now; done: shut down for writing and drain. */
static void conn_send(struct server *sv, struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			conn_watch(sv, c, EPOLLOUT);
			return;
		}
		if (n <= 0) {
			conn_close(sv, c);
			return;
		}
		c->out_off += (size_t)n;
		sv->pending -= (size_t)n;
	}
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	shutdown(c->fd, SHUT_WR);
	c->state = C_LINGER;
	c->since_ms = now_ms();
	c->deadline_ms = c->since_ms + LINGER_MS;
	conn_watch(sv, c, EPOLLIN | EPOLLRDHUP);
}

static const char *status_text(int code)
{
	switch (code) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Error";
	}
}

/* Answer with code; body (may be NULL: a line saying what went wrong) is
 * taken over.  head_only: a HEAD request. */
static void respond(struct server *sv, struct conn *c, int code, char *body, size_t blen,
		    bool head_only)
{
	char hdr[256], msg[64];
	const char *ctype = METRICS_CONTENT_TYPE;
	if (!body) {
		blen = (size_t)snprintf(msg, sizeof(msg), "%d %s\n", code, status_text(code));
		ctype = "text/plain; charset=utf-8";
	}
	if (sv->pending + blen > PENDING_MAX && code == 200) {
		free(body);
		respond(sv, c, 503, NULL, 0, head_only);
		return;
	}
	int hl = snprintf(hdr, sizeof(hdr), "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
			  "Content-Length: %zu\r\n%sConnection: close\r\n\r\n", code,
			  status_text(code), ctype, blen, code == 405 ? "Allow: GET, HEAD\r\n" : "");
	size_t send_body = head_only ? 0 : blen;
	c->out = malloc((size_t)hl + send_body);
	if (!c->out) {
		free(body);
		conn_close(sv, c);
		return;
	}
	memcpy(c->out, hdr, (size_t)hl);
	if (send_body)
		memcpy(c->out + hl, body ? body : msg, send_body);
	free(body);
	c->out_len = (size_t)hl + send_body;
	c->out_off = 0;
	sv->pending += c->out_len;
	c->state = C_WRITE;
	c->since_ms = now_ms();
	c->deadline_ms = c->since_ms + WRITE_MS;
	conn_send(sv, c);
}

static bool is_tchar(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* The request line "METHOD SP TARGET SP HTTP/1.x": the status to answer
 * with (200 for GET or HEAD /metrics), *head_only for HEAD. */
static int request_line(const char *line, size_t n, bool *head_only)
{
	size_t m = 0;
	while (m < n && is_tchar((unsigned char)line[m]))
		m++;
	if (m == 0 || m >= n || line[m] != ' ')
		return 400;
	const char *target = line + m + 1;
	const char *sp = memchr(target, ' ', n - m - 1);
	if (!sp || sp == target)
		return 400;
	size_t tlen = (size_t)(sp - target);
	const char *ver = sp + 1;
	size_t vlen = n - (size_t)(ver - line);
	if (vlen != 8 || memcmp(ver, "HTTP/1.", 7) || (ver[7] != '0' && ver[7] != '1'))
		return 400;
	for (size_t i = 0; i < tlen; i++)
		if ((unsigned char)target[i] <= 0x20 || (unsigned char)target[i] >= 0x7f)
			return 400;
	bool get = m == 3 && !memcmp(line, "GET", 3);
	*head_only = m == 4 && !memcmp(line, "HEAD", 4);
	size_t path = tlen;
	const char *q = memchr(target, '?', tlen);
	if (q)
		path = (size_t)(q - target);
	if (!(path == 8 && !memcmp(target, "/metrics", 8)))
		return 404;
	return get || *head_only ? 200 : 405;
}

int http_examine(const char *head, size_t len, bool *head_only)
{
	const char *nl = memchr(head, '\n', len);
	size_t first = nl ? (size_t)(nl - head) : len;
	/* the request line so far: only a token, spaces, a target and a version */
	for (size_t i = 0; i < first; i++) {
		unsigned char ch = (unsigned char)head[i];
		/* a CR only right before the LF, or last (its LF may come in
		 * the next segment) */
		if (ch < 0x20 && !(ch == '\r' && i + 1 == first))
			return 400;
		if (ch >= 0x7f)
			return 400;
	}
	if (first > 0 && !is_tchar((unsigned char)head[0]))
		return 400;
	if (!nl)
		return len >= HEAD_MAX ? 431 : 0;
	size_t ll = first && head[first - 1] == '\r' ? first - 1 : first;
	int code = request_line(head, ll, head_only);
	if (code == 400)
		return 400;
	/* the head ends with an empty line */
	for (size_t i = first; i + 1 < len; i++) {
		if (head[i] != '\n')
			continue;
		if (head[i + 1] == '\n' ||
		    (i + 2 < len && head[i + 1] == '\r' && head[i + 2] == '\n'))
			return code;
	}
	return len >= HEAD_MAX ? 431 : 0;
}

static void conn_read(struct server *sv, struct conn *c)
{
	if (c->state == C_LINGER) {
		char sink[4096];
		ssize_t n;
		while ((n = recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT)) > 0)
			;
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			conn_close(sv, c);
		return;
	}
	if (c->state != C_READ)
		return;
	for (;;) {
		ssize_t n = recv(c->fd, c->head + c->len, HEAD_MAX - c->len, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			conn_close(sv, c);
			return;
		}
		c->len += (size_t)n;
		bool head_only = false;
		int code = http_examine(c->head, c->len, &head_only);
		if (code == 0)
			continue;
		char *body = NULL;
		size_t blen = 0;
		if (code == 200 && metrics_scrape(sv->o, &body, &blen) < 0)
			code = 500;
		respond(sv, c, code, body, blen, head_only);
		return;
	}
}

/* The connection accepted longest ago that has not sent its request. */
static struct conn *oldest_reader(struct server *sv)
{
	struct conn *best = NULL;
	for (unsigned i = 0; i < MAX_CONNS; i++) {
		struct conn *c = &sv->c[i];
		if ((c->state == C_READ || c->state == C_LINGER) &&
		    (!best || c->since_ms < best->since_ms))
			best = c;
	}
	return best;
}

static struct conn *free_slot(struct server *sv)
{
	if (sv->nconns >= MAX_CONNS) {
		struct conn *old = oldest_reader(sv);
		if (!old)
			return NULL;
		conn_close(sv, old);
	}
	for (unsigned i = 0; i < MAX_CONNS; i++)
		if (sv->c[i].state == C_FREE)
			return &sv->c[i];
	return NULL;
}

static void accept_all(struct server *sv)
{
	for (;;) {
		int fd = accept4(sv->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* out of descriptors: make room, and let the listener
				 * rest a moment rather than spin on it */
				struct conn *old = oldest_reader(sv);
				if (old)
					conn_close(sv, old);
				sv->listen_paused_until = now_ms() + 100;
				struct epoll_event ev = { .events = 0, .data.ptr = NULL };
				(void)epoll_ctl(sv->ep, EPOLL_CTL_MOD, sv->lfd, &ev);
			}
			return;
		}
		struct conn *c = free_slot(sv);
		if (!c) {
			close(fd);     /* every slot is answering: refuse this one */
			continue;
		}
		c->state = C_READ;
		c->fd = fd;
		c->len = 0;
		c->since_ms = now_ms();
		c->deadline_ms = c->since_ms + HEAD_MS;
		sv->nconns++;
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
		if (epoll_ctl(sv->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
			conn_close(sv, c);
	}
}

/* Close what is past its deadline; the milliseconds to the next one. */
static int expire(struct server *sv)
{
	uint64_t now = now_ms(), next = UINT64_MAX;
	for (unsigned i = 0; i < MAX_CONNS; i++) {
		struct conn *c = &sv->c[i];
		if (c->state == C_FREE)
			continue;
		if (c->deadline_ms <= now)
			conn_close(sv, c);
		else if (c->deadline_ms < next)
			next = c->deadline_ms;
	}
	if (sv->listen_paused_until) {
		if (sv->listen_paused_until <= now) {
			sv->listen_paused_until = 0;
			struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
			(void)epoll_ctl(sv->ep, EPOLL_CTL_MOD, sv->lfd, &ev);
		} else if (sv->listen_paused_until < next) {
			next = sv->listen_paused_until;
		}
	}
	return next == UINT64_MAX ? -1 : (int)(next - now + 1);
}

static void on_event(struct server *sv, const struct epoll_event *ev)
{
	struct conn *c = ev->data.ptr;
	if (ev->data.ptr == &signal_tag) {
		sv->stop = true;
		return;
	}
	if (!c) {
		accept_all(sv);
		return;
	}
	if (c->state == C_FREE)
		return;                   /* closed earlier in this batch */
	if (ev->events & EPOLLOUT && c->state == C_WRITE)
		conn_send(sv, c);
	else if (ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		conn_read(sv, c);
	if (c->state != C_FREE && (ev->events & (EPOLLHUP | EPOLLERR)))
		conn_close(sv, c);
}

/* SIGINT, SIGTERM and SIGHUP through a signalfd in the epoll set: a signal
 * that comes just before epoll_wait() is not lost.  0 or -errno. */
static int catch_signals(struct server *sv)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	signal(SIGPIPE, SIG_IGN);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	sv->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sv->sfd < 0)
		return -errno;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &signal_tag };
	return epoll_ctl(sv->ep, EPOLL_CTL_ADD, sv->sfd, &ev) < 0 ? -errno : 0;
}

int http_serve(const struct opts *o, const char *addr)
{
	struct server sv = { .o = o, .lfd = -1, .ep = -1, .sfd = -1 };
	/* room for MAX_CONNS connections beside the segments being read */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < MAX_CONNS + 64 &&
	    rl.rlim_max >= MAX_CONNS + 64) {
		rl.rlim_cur = MAX_CONNS + 64;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	int rc = open_listener(&sv, addr);
	if (rc != EXIT_OK)
		return rc;
	sv.c = calloc(MAX_CONNS, sizeof(*sv.c));
	sv.ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
	if (!sv.c || sv.ep < 0 || epoll_ctl(sv.ep, EPOLL_CTL_ADD, sv.lfd, &lev) < 0) {
		rc = fail(EXIT_ERROR, "metrics", "%s", strerror(sv.c ? errno : ENOMEM));
		goto out;
	}
	int e = catch_signals(&sv);
	if (e < 0) {
		rc = fail(EXIT_ERROR, "metrics", "signals: %s", strerror(-e));
		goto out;
	}
	while (!sv.stop) {
		struct epoll_event evs[64];
		int n = epoll_wait(sv.ep, evs, 64, expire(&sv));
		if (n < 0 && errno != EINTR) {
			rc = fail(EXIT_ERROR, "metrics", "epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++)
			on_event(&sv, &evs[i]);
	}
out:
	if (sv.c)
		for (unsigned i = 0; i < MAX_CONNS; i++)
			conn_close(&sv, &sv.c[i]);
	free(sv.c);
	if (sv.ep >= 0)
		close(sv.ep);
	if (sv.sfd >= 0)
		close(sv.sfd);
	close(sv.lfd);
	return rc;
}

/* SPDX-License-Identifier: MIT */
#include "bell.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../fs/pathat.h"

static void bell_addr(uint64_t id, struct sockaddr_un *a, socklen_t *len)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	int n = snprintf(a->sun_path, sizeof(a->sun_path), BELL_DIR BELL_PREFIX "%016llx",
			 (unsigned long long)id);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
}

static uint64_t fresh_id(void)
{
	uint64_t id = 0;
	if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != (ssize_t)sizeof(id)) {
		/* no entropy yet (early boot): unique enough, and a taken name
		 * is only a retry (EADDRINUSE) */
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		id = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^
		     ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)&id;
	}
	return id ? id : 1;
}

/* The file's group and permission bits, once bound. */
static int bell_perms(const char *path, const struct bell *b, uint32_t mode, gid_t gid)
{
	/* A group we are not in cannot be given (EPERM): then the group bits
	 * mean our own group, and whoever reaches the ring through them
	 * reaches us through the other bits, or not at all -- as the ring. */
	if (gid != getegid() && chown(path, (uid_t)-1, gid) < 0 && errno != EPERM)
		return -errno;
	struct stat st;
	if (lstat(path, &st) < 0)
		return -errno;
	if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid() || st.st_ino != b->ino ||
	    st.st_dev != b->dev)
		return -EEXIST;        /* not what we bound: never touch it */
	/* sending needs write permission, nothing else does */
	mode_t m = S_IWUSR | (mode & (S_IWGRP | S_IWOTH));
	return chmod(path, m) < 0 ? -errno : 0;
}

int bell_make(struct bell *b, uint32_t mode, gid_t gid)
{
	b->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (b->fd < 0)
		return -errno;
	struct sockaddr_un a;
	socklen_t len;
	int rc = -EADDRINUSE;
	for (int tries = 0; tries < 16 && rc == -EADDRINUSE; tries++) {
		b->id = fresh_id();
		bell_addr(b->id, &a, &len);
		rc = bind(b->fd, (struct sockaddr *)&a, len) < 0 ? -errno : 0;
	}
	struct stat st;
	if (rc == 0 && stat(a.sun_path, &st) < 0)
		rc = -errno;
	if (rc == 0) {
		b->dev = st.st_dev;
		b->ino = st.st_ino;
		rc = bell_perms(a.sun_path, b, mode, gid);
		if (rc < 0 && rc != -EEXIST)
			bell_free(b);      /* removes the file we made */
	}
	if (rc < 0 && b->fd >= 0) {
		close(b->fd);
		b->fd = -1;
	}
	return rc;
}

void bell_free(struct bell *b)
{
	if (b->fd < 0)
		return;
	char name[64];
	snprintf(name, sizeof(name), BELL_PREFIX "%016llx", (unsigned long long)b->id);
	int dfd = open(BELL_DIR, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_RDONLY);
	if (dfd >= 0) {
		struct stat was = { .st_dev = b->dev, .st_ino = b->ino };
		(void)pathat_unlink_same(dfd, name, &was);
		close(dfd);
	}
	close(b->fd);
	b->fd = -1;
}

unsigned bell_drain(const struct bell *b)
{
	/* Several datagrams a call: recvmmsg() stops at the first EAGAIN and
	 * returns what it took, so a short count means the queue is empty --
	 * the usual drain (one ring waiting) is one system call, not two. */
	enum { BATCH = 8 };
	char c[BATCH];
	struct iovec iov[BATCH];
	struct mmsghdr m[BATCH];
	unsigned n = 0;
	for (;;) {
		for (unsigned i = 0; i < BATCH; i++) {
			iov[i] = (struct iovec){ .iov_base = &c[i], .iov_len = 1 };
			m[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
		}
		int got = recvmmsg(b->fd, m, BATCH, MSG_DONTWAIT, NULL);
		if (got <= 0)
			return n;
		n += (unsigned)got;
		/* bounded: a flood of rings cannot keep us here forever */
		if (got < BATCH || n >= 1u << 20)
			return n;
	}
}

int bell_ring(int *sock, uint64_t id)
{
	/* threads sharing a handle may race to make it: one wins */
	int fd = __atomic_load_n(sock, __ATOMIC_ACQUIRE);
	if (fd < 0) {
		fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		int none = -1;
		if (!__atomic_compare_exchange_n(sock, &none, fd, false, __ATOMIC_ACQ_REL,
						 __ATOMIC_ACQUIRE)) {
			close(fd);
			fd = none;
		}
	}
	struct sockaddr_un a;
	socklen_t len;
	bell_addr(id, &a, &len);
	if (sendto(fd, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&a, len) == 1)
		return 0;
	if (errno == ECONNREFUSED || errno == ENOENT)
		return 1;
	return -errno;
}

bool bell_alive(uint64_t id)
{
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return true;           /* cannot tell: keep it */
	struct sockaddr_un a;
	socklen_t len;
	bell_addr(id, &a, &len);
	bool alive = connect(s, (struct sockaddr *)&a, len) == 0 ||
		     (errno != ECONNREFUSED && errno != ENOENT);
	close(s);
	return alive;
}

int bell_remove_dead(uint64_t id)
{
	if (bell_alive(id))
		return 0;
	char name[64];
	snprintf(name, sizeof(name), BELL_PREFIX "%016llx", (unsigned long long)id);
	int dfd = open(BELL_DIR, O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_RDONLY);
	if (dfd < 0)
		return -errno;
	struct stat st;
	int rc;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		rc = errno == ENOENT ? 0 : -errno;
	else if (!S_ISSOCK(st.st_mode))
		rc = -EPROTO;           /* not a doorbell: never removed */
	else
		rc = pathat_unlink_same(dfd, name, &st) == 0 ? 1 : -EAGAIN;
	close(dfd);
	return rc;
}

uint64_t bell_id_of(const char *name)
{
	size_t n = strlen(BELL_PREFIX);
	if (strncmp(name, BELL_PREFIX, n) != 0 || strlen(name + n) != 16)
		return 0;
	uint64_t id = 0;
	for (const char *p = name + n; *p; p++) {
		int d = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
		if (d < 0)
			return 0;
		id = id << 4 | (uint64_t)d;
	}
	return id;
}

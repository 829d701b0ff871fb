/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mark.h"

#define MARK_MAGIC 0x324b524d42525253ull   /* "SRBRMRK2" */

struct mark_slot {
	uint64_t magic, gen;
	uint64_t v[MARK_VALS];
	uint64_t check;
	uint64_t pad[1];
};
_Static_assert(sizeof(struct mark_slot) == 128, "two slots on their own lines");

uint64_t mark_hash(const void *p, size_t n, uint64_t seed)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ull ^ seed;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h ^ (h >> 31);
}

static uint64_t slot_check(const struct mark_slot *s)
{
	return mark_hash(s, offsetof(struct mark_slot, check), 0x5eed);
}

int mark_path(const char *ring, const char *tag, char *buf, size_t cap)
{
	const char *name = NULL;
	if (!strncmp(ring, "shm:", 4))
		name = ring + 4;
	else if (!strchr(ring, ':'))
		name = ring;
	if (name) {
		if ((size_t)snprintf(buf, cap, "/dev/shm/.shmring-bridge-%s.%s", tag, name) >= cap)
			return -ENAMETOOLONG;
		return 0;
	}
	if (strncmp(ring, "file:", 5))
		return -ENOTSUP;
	const char *path = ring + 5, *slash = strrchr(path, '/');
	int dl = slash ? (int)(slash - path + 1) : 0;
	if ((size_t)snprintf(buf, cap, "%.*s.%s.bridge-%s", dl, path, slash ? slash + 1 : path, tag) >= cap)
		return -ENAMETOOLONG;
	return 0;
}

uint64_t mark_ring_id(const char *ring)
{
	char path[4200];
	struct stat st;
	if (!strncmp(ring, "shm:", 4) || !strchr(ring, ':'))
		snprintf(path, sizeof(path), "/dev/shm/%s", strchr(ring, ':') ? ring + 4 : ring);
	else if (!strncmp(ring, "file:", 5))
		snprintf(path, sizeof(path), "%s", ring + 5);
	else
		return 0;
	if (stat(path, &st) < 0)
		return 0;
	return ((uint64_t)st.st_dev << 40) ^ (uint64_t)st.st_ino;
}

int mark_open(struct mark *m, const char *path, uint64_t vals[MARK_VALS], bool *found)
{
	memset(m, 0, sizeof(*m));
	*found = false;
	m->fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (m->fd < 0)
		return -errno;
	struct stat st;
	if (fstat(m->fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
		close(m->fd);
		return -EACCES;
	}
	size_t size = 2 * sizeof(struct mark_slot);
	if ((size_t)st.st_size != size && (ftruncate(m->fd, 0) < 0 || posix_fallocate(m->fd, 0, (off_t)size))) {
		int e = errno;
		close(m->fd);
		return e ? -e : -ENOSPC;
	}
	m->map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
	if (m->map == MAP_FAILED) {
		int e = errno;
		close(m->fd);
		return -e;
	}
	/* read once: copy each slot, then validate the copy */
	struct mark_slot s[2];
	memcpy(s, m->map, sizeof(s));
	int best = -1;
	for (int i = 0; i < 2; i++)
		if (s[i].magic == MARK_MAGIC && s[i].check == slot_check(&s[i]) &&
		    (best < 0 || s[i].gen > s[best].gen))
			best = i;
	if (best >= 0) {
		memcpy(vals, s[best].v, sizeof(s[best].v));
		m->gen = s[best].gen;
		*found = true;
	}
	return 0;
}

void mark_write(struct mark *m, const uint64_t vals[MARK_VALS])
{
	struct mark_slot s = {.magic = MARK_MAGIC, .gen = ++m->gen};
	memcpy(s.v, vals, sizeof(s.v));
	s.check = slot_check(&s);
	struct mark_slot *slot = (struct mark_slot *)m->map + (m->gen & 1);
	/* The reader is the next bridge, after this one exited or died: the
	 * slot needs no ordering against a concurrent reader, only to be whole
	 * or rejected, which the check word decides.  The other slot, one
	 * generation older, stays intact meanwhile. */
	memcpy(slot, &s, sizeof(s));
}

void mark_close(struct mark *m)
{
	if (m->map) {
		munmap(m->map, 2 * sizeof(struct mark_slot));
		close(m->fd);
	}
	memset(m, 0, sizeof(*m));
}

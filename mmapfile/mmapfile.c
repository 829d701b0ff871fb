/* SPDX-License-Identifier: MIT */
#include "mmapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../ring/bcast.h"
#include "../ring/fixed.h"
#include "../ring/spsc.h"
#include "../shm/ctl.h"

#define PAGE 4096u

static int sync_range(uint8_t *base, uint64_t off, uint64_t len)
{
	uint64_t start = off & ~(uint64_t)(PAGE - 1);
	uint64_t end = (off + len + PAGE - 1) & ~(uint64_t)(PAGE - 1);
	if (msync(base + start, end - start, MS_SYNC) < 0)
		return -errno;
	return 0;
}

int mf_boot_id(uint8_t id[16])
{
	char buf[64];
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 32)
		return -EIO;
	int k = 0;
	for (ssize_t i = 0; i < n && k < 32; i++) {
		char c = buf[i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (v < 0)
			continue;   /* dashes, newline */
		if (k % 2 == 0)
			id[k / 2] = (uint8_t)(v << 4);
		else
			id[k / 2] |= (uint8_t)v;
		k++;
	}
	return k == 32 ? 0 : -EIO;
}

/* A broadcast ring after a reboot: the records the producer flushed stay
 * (from tail to durable_tail, or none), every subscriber line is free
 * again but a named one's, which keeps its position if that is still in
 * the ring (else it starts at tail, its count of messages unknown). */
static int recover_bcast(uint8_t *base, const struct seg_geom *g, struct ctl_shared *c)
{
	struct bcast_shared *sh = (struct bcast_shared *)(base + g->ring_off);
	struct spsc_geom rg = {
		.data = base + g->data_off, .cap = g->capacity,
		.mask = g->capacity - 1, .max_msg = g->max_msg,
	};
	/* relaxed throughout: we are alone with the mapping */
	uint64_t tail = atomic_load_explicit(&sh->tail, memory_order_relaxed);
	uint64_t dur = atomic_load_explicit(&c->persist.durable_tail, memory_order_relaxed);
	uint64_t head, last = 0;
	if (tail & 7u)
		return -EPROTO;
	if ((dur & 7u) || dur - tail > g->capacity || bc_walk(&rg, tail, &head, &last) < 0 ||
	    dur - tail > head - tail || !bc_boundary(&rg, tail, dur))
		dur = tail;
	int64_t lost = 0;
	for (uint64_t pos = dur, steps = 0; steps < g->capacity / 8; steps++) {
		const uint8_t *d;
		uint32_t len;
		uint64_t seq, end;
		if (bc_parse(&rg, pos, &d, &len, &seq, &end) < 0 || end - dur > g->capacity)
			break;
		lost++;                 /* best effort: a count for the operator */
		pos = end;
	}
	atomic_store_explicit(spsc_word(&rg, dur), 0, memory_order_relaxed);
	/* the hints as a pair again: the sequence number after the last
	 * record kept (joiners expect it at head) */
	uint64_t kept_end, kept_last = 0;
	if (dur != tail && bc_walk(&rg, tail, &kept_end, &kept_last) == 0 && kept_end == dur)
		atomic_store_explicit(&sh->head_seq, kept_last + 1, memory_order_relaxed);
	atomic_store_explicit(&sh->hint_ver, atomic_load_explicit(&sh->hint_ver,
				memory_order_relaxed) & ~1ull, memory_order_relaxed);
	atomic_store_explicit(&sh->head, dur, memory_order_relaxed);
	atomic_store_explicit(&sh->active, 0, memory_order_relaxed);
	atomic_store_explicit(&sh->sub_sleeping, 0, memory_order_relaxed);
	atomic_store_explicit(&sh->sub_polling, 0, memory_order_relaxed);
	atomic_store_explicit(&sh->prod_sleeping, 0, memory_order_relaxed);
	for (uint32_t i = 0; i < BC_MAX_SUBS; i++) {
		struct bc_sub *u = &sh->subs[i];
		uint64_t pos = atomic_load_explicit(&u->pos, memory_order_relaxed);
		bool named = u->name[0] != 0;
		atomic_store_explicit(&u->owner, 0, memory_order_relaxed);
		atomic_store_explicit(&u->state, named ? BC_PARKED : BC_FREE, memory_order_relaxed);
		if (named && (pos - tail > dur - tail || !bc_boundary(&rg, tail, pos))) {
			atomic_store_explicit(&u->pos, tail, memory_order_relaxed);
			atomic_store_explicit(&u->next_seq, 0, memory_order_relaxed);
		}
	}
	atomic_store_explicit(&c->persist.durable_tail, dur, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->dropped, (uint64_t)lost, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->repairs, 1, memory_order_relaxed);
	return 0;
}

/* A fixed-size ring after a reboot: the messages the producer flushed
 * stay (from the consumer's released position to durable_tail), the rest
 * are dropped. */
static void recover_fixed(uint8_t *base, const struct seg_geom *g, struct ctl_shared *c)
{
	struct fixed_shared *sh = (struct fixed_shared *)(base + g->ring_off);
	uint64_t slots = g->capacity / fx_stride_for(g->max_msg);
	/* relaxed throughout: we are alone with the mapping */
	uint64_t head = atomic_load_explicit(&sh->cons_head, memory_order_relaxed);
	uint64_t tail = atomic_load_explicit(&sh->prod_tail, memory_order_relaxed);
	uint64_t dur = atomic_load_explicit(&c->persist.durable_tail, memory_order_relaxed);
	/* the consumer may have released beyond it (its own flush): then the
	 * ring restarts empty at its position */
	if (dur - head > slots)
		dur = head;
	uint64_t lost = tail - dur <= slots ? tail - dur : 0;
	atomic_store_explicit(&sh->prod_tail, dur, memory_order_relaxed);
	atomic_store_explicit(&sh->cons_read, head, memory_order_relaxed);
	atomic_store_explicit(&sh->cons_sleeping, 0, memory_order_relaxed);
	atomic_store_explicit(&sh->prod_sleeping, 0, memory_order_relaxed);
	atomic_store_explicit(&c->persist.durable_tail, dur, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->dropped, lost, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->repairs, 1, memory_order_relaxed);
}

int mf_recover_alone(uint8_t *base, const struct seg_geom *g)
{
	struct ctl_shared *c = (struct ctl_shared *)(base + g->ctl_off);
	struct spsc_shared *sh = (struct spsc_shared *)(base + g->ring_off);
	static const uint8_t none[16];
	uint8_t now[16];
	int rc = mf_boot_id(now);
	if (rc < 0)
		return rc;
	if (memcmp(c->persist.boot_id, now, 16) == 0)
		return 0;
	if (memcmp(c->persist.boot_id, none, 16) == 0) {
		memcpy(c->persist.boot_id, now, 16);   /* first use of a new ring */
		return 0;
	}
	/* A reboot since the last use.  We are alone (the caller holds the
	 * exclusive in-use lock), and the kernel dropped the old boot's
	 * locks.  A holder that was inside the control section when the
	 * machine went down left `busy` set: this recovery is the repair it
	 * asks for, counted once below.  relaxed: nobody else maps the file. */
	atomic_store_explicit(&c->busy, 0, memory_order_relaxed);
	if (g->kind == SHMRING_MPMC) {
		/* Participants stay marked: the first join's repair finds them
		 * dead and sweeps the slots they held before reusing theirs. */
		memcpy(c->persist.boot_id, now, 16);
		atomic_fetch_add_explicit(&c->repairs, 1, memory_order_relaxed);
		return 1;
	}
	c->prod_owner = 0;
	c->cons_owner = 0;
	for (uint32_t i = 0; i < CTL_MAX_PARTS; i++)
		/* relaxed: nobody else maps the file */
		atomic_store_explicit(&c->parts[i].state, PART_FREE, memory_order_relaxed);
	if (g->kind == SHMRING_BCAST) {
		rc = recover_bcast(base, g, c);
		if (rc < 0)
			return rc;
		memcpy(c->persist.boot_id, now, 16);
		rc = sync_range(base, 0, g->size);
		return rc < 0 ? rc : 1;
	}
	if (g->kind == SHMRING_SPSC && (g->flags & SHMRING_FIXED)) {
		recover_fixed(base, g, c);
		memcpy(c->persist.boot_id, now, 16);
		rc = sync_range(base, 0, g->size);
		return rc < 0 ? rc : 1;
	}

	struct spsc_geom rg = {
		.data = base + g->data_off, .cap = g->capacity,
		.mask = g->capacity - 1, .max_msg = g->max_msg,
	};
	/* relaxed throughout: we are alone with the mapping */
	uint64_t head = atomic_load_explicit(&sh->cons_head, memory_order_relaxed);
	uint64_t dur = atomic_load_explicit(&c->persist.durable_tail, memory_order_relaxed);
	if (head & 7u)
		return -EPROTO;
	/* Only what the producer flushed is known to be whole on the disk.
	 * The consumer may have released beyond it (its own flush), then the
	 * ring restarts empty at its position. */
	uint64_t tail = (dur & 7u) || dur - head > g->capacity ? head : dur;
	int64_t lost = 0;
	for (uint64_t pos = tail, steps = 0; steps < g->capacity / 8; steps++) {
		void *d;
		uint32_t len;
		uint64_t end;
		if (spsc_parse(&rg, pos, &d, &len, &end) < 0 || end - tail > g->capacity)
			break;
		lost++;                 /* best effort: a count for the operator */
		pos = end;
	}
	atomic_store_explicit(spsc_word(&rg, tail), 0, memory_order_relaxed);
	atomic_store_explicit(&sh->cons_read, head, memory_order_relaxed);
	atomic_store_explicit(&sh->prod_tail, tail, memory_order_relaxed);
	atomic_store_explicit(&sh->cons_sleeping, 0, memory_order_relaxed);
	atomic_store_explicit(&sh->prod_sleeping, 0, memory_order_relaxed);
	atomic_store_explicit(&c->persist.durable_tail, tail, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->dropped, (uint64_t)lost, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->repairs, 1, memory_order_relaxed);
	memcpy(c->persist.boot_id, now, 16);
	/* the repaired state must not be older on the disk than what follows */
	rc = sync_range(base, 0, g->size);
	return rc < 0 ? rc : 1;
}

int mf_flush_records(uint8_t *base, const struct seg_geom *g, uint64_t *flushed, uint64_t tail)
{
	struct ctl_shared *c = (struct ctl_shared *)(base + g->ctl_off);
	/* positions count bytes, or slots of a SHMRING_FIXED ring */
	uint64_t unit = (g->flags & SHMRING_FIXED) ? fx_stride_for(g->max_msg) : 1;
	uint64_t lap = g->capacity / unit, from = *flushed, n = tail - from;
	if (n > lap)
		n = lap;                /* more than a lap: everything */
	if (n) {
		uint64_t at = from & (lap - 1);
		uint64_t first = n < lap - at ? n : lap - at;
		int rc = sync_range(base, g->data_off + at * unit, first * unit);
		if (rc == 0 && n > first)
			rc = sync_range(base, g->data_off, (n - first) * unit);
		if (rc < 0)
			return rc;
	}
	/* only now may the index vouch for them: payload before index */
	atomic_store_explicit(&c->persist.durable_tail, tail, memory_order_relaxed);
	int rc = sync_range(base, (uint64_t)((uint8_t *)&c->persist - base), sizeof(c->persist));
	if (rc == 0)
		*flushed = tail;
	return rc;
}

int mf_flush_position(uint8_t *base, const struct seg_geom *g)
{
	return sync_range(base, g->ring_off, g->kind == SHMRING_BCAST ? sizeof(struct bcast_shared)
								      : sizeof(struct spsc_shared));
}

int mf_flush_all(uint8_t *base, const struct seg_geom *g)
{
	return sync_range(base, 0, g->size);
}

/* SPDX-License-Identifier: MIT */
#include "segment.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../ring/bcast.h"
#include "../ring/fixed.h"
#include "../ring/mpmc.h"
#include "../ring/spsc.h"
#include "../sync/clock.h"
#include "ctl.h"
#include "../sync/lock.h"
#include "../sync/wait.h"

_Static_assert(sizeof(struct ctl_shared) <= SEG_RING_OFF - SEG_CTL_OFF, "control block fits");
_Static_assert(CTL_MAX_PARTS == MPMC_MAX_PARTS && CTL_MASK_WORDS == MPMC_MASK_WORDS,
	       "a ring word names a participant slot of the control block");
_Static_assert(sizeof(struct spsc_shared) <= SEG_DATA_OFF - SEG_RING_OFF, "ring state fits");
_Static_assert(SEG_DATA_OFF % 4096 == 0, "data area page aligned");
_Static_assert(sizeof(struct mpmc_shared) <= SEG_MPMC_DATA_OFF - SEG_RING_OFF, "MPMC state fits");
_Static_assert(SEG_MPMC_DATA_OFF % 4096 == 0, "MPMC data area page aligned");
_Static_assert(SEG_LOCK_CREATE != CTL_LOCK_OPEN && SEG_LOCK_CREATE != CTL_LOCK_CTL &&
	       SEG_LOCK_CREATE < CTL_LOCK_BASE, "the creator's lock byte is nobody else's");
/* seg_stamp() does not cover the MPMC layout, and any change to what it
 * hashes makes every existing file: ring unreadable: the MPMC layout is
 * pinned here, in absolute numbers, instead.  Changing any of these
 * needs a new SEG_VERSION. */
_Static_assert(MPMC_LINE == 128 && sizeof(struct mpmc_shared) == 17152 &&
	       offsetof(struct mpmc_shared, parts) == 512 && sizeof(struct mpmc_slot) == 16 &&
	       MPMC_ALIGN_MIN == 256 && MPMC_TSHIFT == 12,
	       "MPMC layout is part of format version 2");
/* The same for broadcast rings (ring/bcast.h): pinned, not stamped. */
_Static_assert(sizeof(struct bcast_shared) == 16896 && offsetof(struct bcast_shared, subs) == 512 &&
	       sizeof(struct bc_sub) == 256 && offsetof(struct bc_sub, state) == 128 &&
	       offsetof(struct bc_sub, name) == 152 && BC_HDR == 16 && BC_MAX_SUBS == 64,
	       "BCAST layout is part of format version 2");
/* The same for fixed-size rings (ring/fixed.h): an SPSC header with
 * SHMRING_FIXED in its flags, the state in an SPSC ring's place. */
_Static_assert(sizeof(struct fixed_shared) == 640 && sizeof(struct fixed_shared) ==
	       sizeof(struct spsc_shared) && offsetof(struct fixed_shared, cons_head) == 128 &&
	       offsetof(struct fixed_shared, cons_sleeping) == 256 &&
	       offsetof(struct fixed_shared, waits_full) == 384 &&
	       offsetof(struct fixed_shared, waits_empty) == 512 && FX_MIN_SLOTS == 2,
	       "FIXED layout is part of format version 2");
_Static_assert(sizeof(struct bcast_shared) <= SEG_BCAST_DATA_OFF - SEG_RING_OFF, "BCAST state fits");
_Static_assert(SEG_BCAST_DATA_OFF % 4096 == 0, "BCAST data area page aligned");

static uint64_t fnv1a(const void *p, size_t n, uint64_t h)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

uint64_t seg_stamp(void)
{
	/* Builds that disagree on any of these must refuse each other's
	 * segments (LMDB's format stamp, for the same reason). */
	const uint64_t facts[] = {
		sizeof(struct seg_hdr), sizeof(struct ctl_shared), sizeof(struct ctl_part),
		offsetof(struct ctl_shared, busy), offsetof(struct ctl_shared, parts),
		sizeof(struct spsc_shared), offsetof(struct spsc_shared, cons_head),
		offsetof(struct spsc_shared, cons_sleeping), _Alignof(_Atomic uint64_t),
		CTL_MAX_PARTS, CTL_LOCK_BASE, CTL_LOCK_OPEN, CTL_LOCK_CTL, SEG_LOCK_CREATE,
		SPSC_HDR, SPSC_TAG_MSG, SPSC_TAG_PAD,
		SEG_CTL_OFF, SEG_RING_OFF, SEG_DATA_OFF,
	};
	return fnv1a(facts, sizeof(facts), 0xcbf29ce484222325ull);
}

uint32_t seg_checksum(const struct seg_hdr *h)
{
	uint64_t x = fnv1a(h, offsetof(struct seg_hdr, checksum), 0xcbf29ce484222325ull);
	return (uint32_t)(x ^ (x >> 32));
}

static uint64_t round_pow2(uint64_t v)
{
	uint64_t p = SEG_MIN_CAP;
	while (p < v && p < SEG_MAX_CAP)
		p <<= 1;
	return p;
}

/* max_msg asked for, or a quarter of `cap`.  One limit for both kinds
 * (SPSC's: MPMC slots could hold a little more): a larger value asked for
 * is refused rather than shrunk behind the caller's back; the default is
 * clamped. */
static int plan_max_msg(const struct shmring_opts *o, uint64_t cap, uint64_t *max)
{
	if (o->max_msg > SPSC_MAX_MSG)
		return -EINVAL;
	*max = o->max_msg ? o->max_msg : cap / 4;
	if (*max > SPSC_MAX_MSG)
		*max = SPSC_MAX_MSG;
	return 0;
}

/* What every kind's plan sets alike, once capacity is known. */
static void plan_finish(const struct shmring_opts *o, struct seg_geom *g, uint64_t data_off)
{
	g->flags = o->flags;
	g->mode = o->mode ? o->mode : 0600;
	g->spin_ns = WAIT_SPIN_DEFAULT_NS;
	g->ctl_off = SEG_CTL_OFF;
	g->ring_off = SEG_RING_OFF;
	g->data_off = data_off;
	g->size = data_off + g->capacity;
}

/* MPMC: capacity bytes cut into slots of max_msg plus a slot header, a
 * power of two of them (ticket -> slot is a mask), at least two.  The
 * count stops at SEG_MPMC_MAX_SLOTS and where doubling would pass
 * SEG_MAX_CAP: a legal capacity then gets a little less than it asked
 * for, the same as a legal capacity past the slot limit, not -EINVAL. */
static int plan_mpmc(const struct shmring_opts *o, struct seg_geom *g)
{
	uint64_t want = o->capacity ? o->capacity : SEG_DEFAULT_CAP;
	if (want < SEG_MIN_CAP)
		want = SEG_MIN_CAP;
	uint64_t max;
	if (plan_max_msg(o, want, &max) < 0)
		return -EINVAL;
	uint64_t stride = mpmc_stride_for((uint32_t)max);
	/* two slots of the largest max_msg (< 2^32) are far below SEG_MAX_CAP,
	 * and the count only doubles while it stays within it */
	uint64_t n = 2;
	while (n * stride < want && n < SEG_MPMC_MAX_SLOTS && 2 * n * stride <= SEG_MAX_CAP)
		n <<= 1;
	g->capacity = n * stride;
	g->max_msg = (uint32_t)max;
	g->stall_ms = o->stall_ms ? o->stall_ms : MPMC_STALL_DEFAULT_MS;
	plan_finish(o, g, SEG_MPMC_DATA_OFF);
	g->flags |= SEG_HF_RANGES;
	return 0;
}

/* SHMRING_FIXED: capacity bytes cut into slots of max_msg rounded up to
 * 8, a power of two of them (index -> slot is a mask), at least two. */
static int plan_fixed(const struct shmring_opts *o, struct seg_geom *g)
{
	if (o->max_msg == 0 || o->max_msg > SPSC_MAX_MSG)
		return -EINVAL;        /* the one length of every message */
	uint64_t want = o->capacity ? o->capacity : SEG_DEFAULT_CAP;
	uint64_t stride = fx_stride_for(o->max_msg);
	uint64_t n = FX_MIN_SLOTS;
	while (n * stride < want && 2 * n * stride <= SEG_MAX_CAP)
		n <<= 1;
	g->capacity = n * stride;
	g->max_msg = o->max_msg;
	plan_finish(o, g, SEG_DATA_OFF);
	return 0;
}

/* A data area of slots of `stride` bytes: a power of two of them, from 2
 * to `most`, within SEG_MAX_CAP. */
static enum seg_fault check_slots(const struct seg_hdr *h, uint64_t stride, uint64_t most)
{
	if (h->capacity > SEG_MAX_CAP)
		return SEG_F_CAPACITY;
	if (h->capacity % stride)
		return SEG_F_SLOT_SIZE;
	uint64_t n = h->capacity / stride;
	if (n < 2 || n > most || (n & (n - 1)))
		return SEG_F_SLOT_COUNT;
	return SEG_SOUND;
}

/* The FIXED half of seg_check(): geometry that fixed.h can trust. */
static enum seg_fault check_fixed(const struct seg_hdr *h)
{
	if (h->max_msg == 0 || h->max_msg > SPSC_MAX_MSG)
		return SEG_F_MAX_MSG;
	return check_slots(h, fx_stride_for(h->max_msg), SEG_MAX_CAP);
}

/* The MPMC half of seg_check(): geometry that mpmc.h can trust. */
static enum seg_fault check_mpmc(const struct seg_hdr *h)
{
	if (h->max_msg == 0)
		return SEG_F_MAX_MSG;
	return check_slots(h, mpmc_stride_for(h->max_msg), SEG_MPMC_MAX_SLOTS);
}

static enum seg_fault check_spsc(const struct seg_hdr *h)
{
	if (h->capacity < SEG_MIN_CAP || h->capacity > SEG_MAX_CAP ||
	    (h->capacity & (h->capacity - 1)))
		return SEG_F_CAPACITY;
	uint64_t most = h->kind == SHMRING_BCAST ? bc_max_msg_for(h->capacity)
						 : spsc_max_msg_for(h->capacity);
	if (h->max_msg == 0 || h->max_msg > most)
		return SEG_F_SPSC_MAX_MSG;
	return SEG_SOUND;
}

static uint64_t data_off_for(uint32_t kind)
{
	return kind == SHMRING_MPMC ? SEG_MPMC_DATA_OFF :
	       kind == SHMRING_BCAST ? SEG_BCAST_DATA_OFF : SEG_DATA_OFF;
}

/* The flags a header of this kind may carry. */
static uint32_t flags_for(uint32_t kind)
{
	return SHMRING_PREFAULT | SHMRING_MLOCK | (kind == SHMRING_BCAST ? SHMRING_OVERWRITE : 0) |
	       (kind == SHMRING_SPSC ? SHMRING_FIXED : 0) |
	       (kind == SHMRING_MPMC ? SEG_HF_RANGES : 0);
}

void seg_mpmc_geom(const struct seg_geom *g, uint8_t *data, struct mpmc_geom *mg)
{
	*mg = mpmc_geom_make(data, g->capacity / mpmc_stride_for(g->max_msg), g->max_msg);
}

int seg_plan(const struct shmring_opts *o, struct seg_geom *g)
{
	static const struct shmring_opts zero;
	if (!o)
		o = &zero;
	memset(g, 0, sizeof(*g));
	g->kind = o->kind ? (uint32_t)o->kind : SHMRING_SPSC;
	if (g->kind != SHMRING_SPSC && g->kind != SHMRING_MPMC && g->kind != SHMRING_BCAST)
		return -EINVAL;
	if (o->flags & ~(SHMRING_PREFAULT | SHMRING_MLOCK | SHMRING_OVERWRITE | SHMRING_FIXED))
		return -EINVAL;
	if ((o->flags & SHMRING_OVERWRITE) && g->kind != SHMRING_BCAST)
		return -EINVAL;
	if ((o->flags & SHMRING_FIXED) && g->kind != SHMRING_SPSC)
		return g->kind == SHMRING_BCAST ? -ENOTSUP : -EINVAL;
	/* read and write bits only: an execute, setuid, setgid or sticky bit
	 * on memory other users can write would let them run code as us */
	if (o->mode & ~0666u)
		return -EINVAL;
	if (o->capacity > SEG_MAX_CAP)
		return -EINVAL;
	if (o->stall_ms > MPMC_STALL_MAX_MS)
		return -EINVAL;
	if (g->kind == SHMRING_MPMC)
		return plan_mpmc(o, g);
	if (o->flags & SHMRING_FIXED)
		return plan_fixed(o, g);
	uint64_t cap = round_pow2(o->capacity ? o->capacity : SEG_DEFAULT_CAP);
	uint64_t max;
	if (plan_max_msg(o, cap, &max) < 0)
		return -EINVAL;
	bool bc = g->kind == SHMRING_BCAST;
	/* A record and the filler before it must fit in an empty ring: grow
	 * the ring rather than refuse a legal max_msg. */
	while (max > (bc ? bc_max_msg_for(cap) : spsc_max_msg_for(cap))) {
		if (cap >= SEG_MAX_CAP)
			return -EINVAL;
		cap <<= 1;
	}
	g->capacity = cap;
	g->max_msg = (uint32_t)max;
	plan_finish(o, g, bc ? SEG_BCAST_DATA_OFF : SEG_DATA_OFF);
	if (bc)
		g->stall_ms = o->stall_ms ? o->stall_ms : MPMC_STALL_DEFAULT_MS;
	return 0;
}

enum seg_fault seg_check(const struct seg_hdr *h, uint64_t file_size, uid_t file_uid)
{
	if (h->magic != SEG_MAGIC)
		return SEG_F_MAGIC;
	/* relaxed: h is a private copy */
	uint32_t version = atomic_load_explicit(&h->version, memory_order_relaxed);
	if (version == 0)
		return SEG_F_UNPUBLISHED;
	if (version != SEG_VERSION)
		return SEG_F_VERSION;
	if (h->hdr_size != sizeof(*h))
		return SEG_F_HDR_SIZE;
	if (h->checksum != seg_checksum(h))
		return SEG_F_CHECKSUM;
	if (h->stamp != seg_stamp())
		return SEG_F_STAMP;
	enum seg_fault f;
	if (h->kind == SHMRING_MPMC)
		f = check_mpmc(h);
	else if (h->kind == SHMRING_SPSC && (h->flags & SHMRING_FIXED))
		f = check_fixed(h);
	else if (h->kind == SHMRING_SPSC || h->kind == SHMRING_BCAST)
		f = check_spsc(h);
	else
		return SEG_F_KIND;
	if (f != SEG_SOUND)
		return f;
	uint64_t data_off = data_off_for(h->kind);
	if (h->ctl_off != SEG_CTL_OFF || h->ring_off != SEG_RING_OFF || h->data_off != data_off)
		return SEG_F_OFFSETS;
	if (h->seg_size != data_off + h->capacity)
		return SEG_F_SEG_SIZE;
	if (h->flags & ~flags_for(h->kind))
		return SEG_F_FLAGS;
	if (file_size != h->seg_size)
		return SEG_F_FILE_SIZE;
	if (h->creator_uid != file_uid)
		return SEG_F_OWNER;
	return SEG_SOUND;
}

int seg_validate(const struct seg_hdr *h, uint64_t file_size, uid_t file_uid,
		 struct seg_geom *g)
{
	if (seg_check(h, file_size, file_uid) != SEG_SOUND)
		return -EPROTO;
	g->kind = h->kind;
	g->flags = h->flags;
	g->max_msg = h->max_msg;
	g->spin_ns = h->spin_ns > 1000000000u ? 1000000000u : h->spin_ns;
	g->mode = h->mode & 07777u;
	g->capacity = h->capacity;
	g->size = h->seg_size;
	g->ctl_off = h->ctl_off;
	g->ring_off = h->ring_off;
	g->data_off = h->data_off;
	g->creator_uid = h->creator_uid;
	g->creator_pid = h->creator_pid;
	g->created_ns = h->created_ns;
	return 0;
}

typedef unsigned long long ull;

/* seg_explain() for the faults of the header's identity: false for others */
static bool explain_header(enum seg_fault f, const struct seg_hdr *h, char *buf, size_t n)
{
	/* relaxed: h is a private copy */
	uint32_t version = atomic_load_explicit(&h->version, memory_order_relaxed);
	switch (f) {
	case SEG_F_MAGIC:
		snprintf(buf, n, "not a shmring segment (magic 0x%016llx)", (ull)h->magic);
		return true;
	case SEG_F_UNPUBLISHED:
		snprintf(buf, n, "not published (version 0): being created, or its creator died");
		return true;
	case SEG_F_VERSION:
		snprintf(buf, n, "layout version %u (this tool reads version %u)", version,
			 SEG_VERSION);
		return true;
	case SEG_F_HDR_SIZE:
		snprintf(buf, n, "header size %u (expected %zu)", h->hdr_size, sizeof(*h));
		return true;
	case SEG_F_CHECKSUM:
		snprintf(buf, n, "header checksum mismatch (stored 0x%08x, computed 0x%08x)",
			 h->checksum, seg_checksum(h));
		return true;
	case SEG_F_STAMP:
		snprintf(buf, n, "format stamp 0x%016llx differs from this build's 0x%016llx "
			 "(made by an incompatible build)", (ull)h->stamp, (ull)seg_stamp());
		return true;
	case SEG_F_KIND:
		snprintf(buf, n, "unknown kind %u", h->kind);
		return true;
	default:
		return false;
	}
}

/* seg_explain() for the faults of the ring's geometry: false for others */
static bool explain_geometry(enum seg_fault f, const struct seg_hdr *h, char *buf, size_t n)
{
	bool fixed = h->kind == SHMRING_SPSC && (h->flags & SHMRING_FIXED);
	uint64_t stride = fixed ? fx_stride_for(h->max_msg) : mpmc_stride_for(h->max_msg);
	uint64_t data_off = data_off_for(h->kind);
	switch (f) {
	case SEG_F_MAX_MSG:
		if (fixed)
			snprintf(buf, n, "max_msg %u (expected 1 to %u)", h->max_msg, SPSC_MAX_MSG);
		else
			snprintf(buf, n, "max_msg 0 (expected at least 1)");
		return true;
	case SEG_F_CAPACITY:
		if (h->kind == SHMRING_MPMC || fixed)
			snprintf(buf, n, "capacity %llu is above %llu", (ull)h->capacity,
				 (ull)SEG_MAX_CAP);
		else
			snprintf(buf, n, "capacity %llu is not a power of two in [%llu, %llu]",
				 (ull)h->capacity, (ull)SEG_MIN_CAP, (ull)SEG_MAX_CAP);
		return true;
	case SEG_F_SLOT_SIZE:
		snprintf(buf, n, "capacity %llu is not a whole number of %llu-byte slots "
			 "(max_msg %u)", (ull)h->capacity, (ull)stride, h->max_msg);
		return true;
	case SEG_F_SLOT_COUNT:
		snprintf(buf, n, "capacity %llu makes %llu slots of %llu bytes (expected a power "
			 "of two in [2, %llu])", (ull)h->capacity, (ull)(h->capacity / stride),
			 (ull)stride, (ull)(fixed ? SEG_MAX_CAP / stride : SEG_MPMC_MAX_SLOTS));
		return true;
	case SEG_F_SPSC_MAX_MSG:
		snprintf(buf, n, "max_msg %u out of range [1, %llu] for capacity %llu", h->max_msg,
			 (ull)(h->kind == SHMRING_BCAST ? bc_max_msg_for(h->capacity)
							: spsc_max_msg_for(h->capacity)),
			 (ull)h->capacity);
		return true;
	case SEG_F_OFFSETS:
		snprintf(buf, n, "offsets ctl %llu ring %llu data %llu (expected %u %u %llu)",
			 (ull)h->ctl_off, (ull)h->ring_off, (ull)h->data_off, SEG_CTL_OFF,
			 SEG_RING_OFF, (ull)data_off);
		return true;
	case SEG_F_SEG_SIZE:
		snprintf(buf, n, "segment size %llu in the header (expected %llu)",
			 (ull)h->seg_size, (ull)(data_off + h->capacity));
		return true;
	case SEG_F_FLAGS:
		snprintf(buf, n, "unknown flags 0x%x", h->flags);
		return true;
	default:
		return false;
	}
}

/* Worded for shmctl-tool, which reports them (shm/inspect.c). */
const char *seg_explain(enum seg_fault f, const struct seg_hdr *h, uint64_t file_size,
			uid_t file_uid, char *buf, size_t n)
{
	if (explain_header(f, h, buf, n) || explain_geometry(f, h, buf, n))
		return buf;
	switch (f) {
	case SEG_F_FILE_SIZE:
		snprintf(buf, n, "file size %llu differs from the header's %llu (truncated or grown)",
			 (ull)file_size, (ull)h->seg_size);
		break;
	case SEG_F_OWNER:
		snprintf(buf, n, "file owner uid %u differs from the creator uid %u",
			 (unsigned)file_uid, h->creator_uid);
		break;
	case SEG_SOUND:
		snprintf(buf, n, "%s", "");
		break;
	default:   /* explained above */
		break;
	}
	return buf;
}

/* Is a live creator still building the segment behind fd?  The creator's
 * lock (SEG_LOCK_CREATE) is tested through another open file description;
 * the kernel drops it if the creator dies.  A failed test (-2) says no:
 * the bounded wait is not worth it. */
static bool creator_busy(int fd)
{
	return lock_held(fd, SEG_LOCK_CREATE, 1) >= 0;
}

static int apply_flags(void *base, size_t size, uint32_t flags)
{
	if ((flags & SHMRING_MLOCK) && mlock(base, size) < 0)
		return -errno;
	return 0;
}

int seg_map(int fd, const struct seg_geom *g, uint32_t flags, void **base)
{
	int mflags = MAP_SHARED | ((flags & SHMRING_PREFAULT) ? MAP_POPULATE : 0);
	void *p = mmap(NULL, g->size, PROT_READ | PROT_WRITE, mflags, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	const struct seg_hdr *h = p;
	/* [H2] acquire: pairs with the creator's [H1]; the control block and
	 * ring state it initialised are visible through this mapping */
	if (atomic_load_explicit(&h->version, memory_order_acquire) != SEG_VERSION) {
		munmap(p, g->size);
		return -EPROTO;
	}
	int rc = apply_flags(p, g->size, flags);
	if (rc < 0) {
		munmap(p, g->size);
		return rc;
	}
	*base = p;
	return 0;
}

/* seg_create(), on the new empty file: the creator's lock, the mode, the
 * magic and the space.  0 or -errno. */
static int create_reserve(int fd, const struct seg_geom *g, uint32_t mode)
{
	/* Before the file grows past 0 bytes: openers wait for an unpublished
	 * header only while this lock is held (seg_read). */
	int rc = lock_set(fd, F_WRLCK, SEG_LOCK_CREATE);
	if (rc < 0)
		return rc;
	if (fchmod(fd, mode) < 0)
		return -errno;
	/* The magic first, with version 0: a creator killed from here on
	 * leaves a file that says "an unfinished ring" (seg_read refuses it
	 * once the creator's lock is gone; shmctl-tool gc can recognise and
	 * collect it). */
	uint64_t magic = SEG_MAGIC;
	if (pwrite(fd, &magic, sizeof(magic), 0) != (ssize_t)sizeof(magic))
		return errno ? -errno : -EIO;
	/* posix_fallocate, not ftruncate: on tmpfs ftruncate reserves nothing
	 * and a full /dev/shm would kill us with SIGBUS at the first touch. */
	do
		rc = posix_fallocate(fd, 0, (off_t)g->size);
	while (rc == EINTR);
	if (rc)
		return rc == EFBIG ? -ENOSPC : -rc;
	return 0;
}

/* seg_create(), on the mapped segment p: initialise the ring, then write
 * the header and publish it. */
static void create_publish(void *p, const struct seg_geom *g, uint32_t mode, uid_t uid)
{
	struct seg_hdr *h = p;
	/* The control block is zero from posix_fallocate: nobody inside its
	 * section, no participant.  SPSC: the ring state and data area are zero from posix_fallocate,
	 * and a ring with every position at 0 is empty and valid.  MPMC: each
	 * slot word says which ticket it waits for. */
	if (g->kind == SHMRING_MPMC) {
		struct mpmc_geom mg;
		seg_mpmc_geom(g, (uint8_t *)p + g->data_off, &mg);
		mpmc_init((struct mpmc_shared *)((uint8_t *)p + g->ring_off), &mg, g->stall_ms);
	}
	if (g->kind == SHMRING_BCAST)
		bc_init((struct bcast_shared *)((uint8_t *)p + g->ring_off), g->stall_ms);
	CRASH_POINT("create.before_publish");
	struct seg_hdr tmp = {
		.magic = SEG_MAGIC, .hdr_size = sizeof(tmp), .stamp = seg_stamp(),
		.kind = g->kind, .flags = g->flags, .seg_size = g->size,
		.capacity = g->capacity, .max_msg = g->max_msg, .spin_ns = g->spin_ns,
		.ctl_off = g->ctl_off, .ring_off = g->ring_off, .data_off = g->data_off,
		.creator_uid = (uint32_t)uid, .creator_pid = (int32_t)getpid(),
		.created_ns = clock_real_ns(), .mode = mode,
	};
	atomic_init(&tmp.version, SEG_VERSION);
	tmp.checksum = seg_checksum(&tmp);
	memcpy((uint8_t *)h + sizeof(h->magic) + sizeof(h->version),
	       (uint8_t *)&tmp + sizeof(h->magic) + sizeof(h->version),
	       sizeof(tmp) - sizeof(h->magic) - sizeof(h->version));
	h->magic = SEG_MAGIC;
	/* [H1] release: everything above is visible before the version says
	 * the segment is ready; pairs with [H2] in seg_map and the pread in
	 * seg_read */
	atomic_store_explicit(&h->version, SEG_VERSION, memory_order_release);
}

int seg_create(const char *path, const struct seg_geom *g, uint32_t mode)
{
	/* 0600 first: the umask can only narrow it, and nobody else can open
	 * the file before fchmod sets the mode actually asked for. */
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int rc = create_reserve(fd, g, mode);
	if (rc < 0)
		goto fail;
	void *p = mmap(NULL, g->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		rc = -errno;
		goto fail;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		munmap(p, g->size);
		goto fail;
	}
	create_publish(p, g, mode, st.st_uid);
	munmap(p, g->size);
	(void)lock_set(fd, F_UNLCK, SEG_LOCK_CREATE);   /* published: openers go on */
	return fd;
fail:
	unlink(path);
	close(fd);
	return rc;
}

int seg_open(const char *path)
{
	int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* An empty file made within the publication wait: its creator may not
 * have taken its lock yet. */
static bool just_created(const struct stat *st)
{
	uint64_t made = (uint64_t)st->st_ctim.tv_sec * 1000000000u + (uint64_t)st->st_ctim.tv_nsec;
	return st->st_size == 0 && clock_real_ns() - made < SEG_PUBLISH_WAIT_NS;
}

int seg_read(int fd, struct seg_geom *g)
{
	uint64_t give_up = clock_mono_ns() + SEG_PUBLISH_WAIT_NS;
	for (;;) {
		struct stat st;
		struct seg_hdr h;
		if (fstat(fd, &st) < 0)
			return -errno;
		if (!S_ISREG(st.st_mode))
			return -EPROTO;
		/* Tested before the header is read: a creator publishes, then
		 * lets its lock go, so "no lock" here and "unpublished" below
		 * mean it died, or never was; unless the file was still empty
		 * (the instant between its create and its lock). */
		bool building = creator_busy(fd);
		/* copy once with pread (no mapping: a short file cannot SIGBUS
		 * us), then validate only the copy */
		ssize_t n = st.st_size >= (off_t)sizeof(h) ? pread(fd, &h, sizeof(h), 0) : 0;
		if (n < 0)
			return -errno;
		/* relaxed: h is a private copy */
		bool published = n == (ssize_t)sizeof(h) &&
			atomic_load_explicit(&h.version, memory_order_relaxed) != 0;
		if (published)
			return seg_validate(&h, (uint64_t)st.st_size, st.st_uid, g);
		if ((n == (ssize_t)sizeof(h) && h.magic != SEG_MAGIC && h.magic != 0) ||
		    !(building || just_created(&st)) || clock_mono_ns() > give_up)
			return -EPROTO;     /* not a ring, or its creator died mid-way */
		struct timespec ms = { 0, 1000000 };
		nanosleep(&ms, NULL);       /* a creator is still building it */
	}
}

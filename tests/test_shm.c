/* SPDX-License-Identifier: MIT */
/*
 * Suite `shm`: POSIX shared-memory segments, white-box.  Header validation
 * field by field, hostile files in /dev/shm, impossible ring indices and
 * record headers, a full /dev/shm, creation modes and flags, the control
 * lock (a dead holder, a peer that keeps it, garbage in its word, threads),
 * and liveness / takeover of dead role holders.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "shmring.h"
#include "ring/mpmc.h"
#include "ring/spsc.h"
#include "shm/segment.h"
#include "shm/ctl.h"
#include "sync/lock.h"

#define MS (1000ll * 1000)
#define NOBODY 65534

/* every path a test names (t_ring_uri, t_remember) is removed after it */
TestSuite(shm, .fini = t_cleanup);

/* ---- helpers ----------------------------------------------------------- */

static void send_key(struct shmring *r, size_t len, uint64_t key)
{
	uint8_t buf[8192];
	cr_assert_leq(len, sizeof(buf));
	t_fill(buf, len, key);
	int rc = shmring_send(r, buf, len, 0);
	cr_assert_eq(rc, 0, "send %zu: %s", len, shmring_strerror(rc));
}

static void recv_key(struct shmring *r, size_t len, uint64_t key)
{
	uint8_t buf[8192];
	ssize_t n = shmring_recv(r, buf, sizeof(buf), 0);
	cr_assert_eq(n, (ssize_t)len, "recv key %llu: %zd (%s), want %zu",
		     (unsigned long long)key, n, n < 0 ? shmring_strerror((int)n) : "ok", len);
	cr_assert(t_check(buf, len, key), "content of key %llu", (unsigned long long)key);
}

/* Create a role-less ring and close it; the file stays. */
static void make_ring(const char *uri, uint64_t cap, uint32_t max)
{
	struct shmring *r = t_create(uri, cap, max);
	shmring_close(r);
}

static int open_rw(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	return fd;
}

static uint64_t file_size(const char *path)
{
	struct stat st;
	cr_assert_eq(stat(path, &st), 0, "stat %s", path);
	return (uint64_t)st.st_size;
}

/* Map a whole segment file (white-box access to its shared state). */
static uint8_t *map_seg(const char *path, size_t *size)
{
	int fd = open_rw(path);
	*size = (size_t)file_size(path);
	void *p = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	cr_assert_neq(p, MAP_FAILED, "mmap %s", path);
	return p;
}

static int count_dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

struct box {
	char uri[128];
	_Atomic int ready, go;
	int rc[8];
	int64_t val[8];
};

static struct box *box_new(const char *uri)
{
	struct box *b = t_shared(sizeof(*b));
	memset(b, 0, sizeof(*b));
	snprintf(b->uri, sizeof(b->uri), "%s", uri ? uri : "");
	return b;
}

static void box_free(struct box *b)
{
	t_unshared(b, sizeof(*b));
}

static void child_guard(void)
{
	alarm(20);
}

static int drop_to_nobody(void)
{
	if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
		return -1;
	return geteuid() == NOBODY ? 0 : -1;
}

/* ======================================================================= */
/* header validation                                                       */
/* ======================================================================= */

#define HDR_FIELD(f) #f, offsetof(struct seg_hdr, f), sizeof(((struct seg_hdr *)0)->f)

struct hdr_case {
	const char *name;
	size_t off, size;
	uint64_t value;     /* new value of the field */
	int xor;            /* value is xor-ed into the field instead */
	int want;           /* with the checksum recomputed */
};

static uint64_t get_field(const uint8_t *raw, size_t off, size_t size)
{
	uint64_t v = 0;
	memcpy(&v, raw + off, size);    /* little-endian */
	return v;
}

static void set_field(uint8_t *raw, size_t off, size_t size, uint64_t v)
{
	memcpy(raw + off, &v, size);
}

static void put_hdr(const char *path, const uint8_t raw[sizeof(struct seg_hdr)])
{
	int fd = open_rw(path);
	ssize_t n = pwrite(fd, raw, sizeof(struct seg_hdr), 0);
	close(fd);
	cr_assert_eq(n, (ssize_t)sizeof(struct seg_hdr), "pwrite header");
}

static void get_hdr(const char *path, uint8_t raw[sizeof(struct seg_hdr)])
{
	int fd = open_rw(path);
	ssize_t n = pread(fd, raw, sizeof(struct seg_hdr), 0);
	close(fd);
	cr_assert_eq(n, (ssize_t)sizeof(struct seg_hdr), "pread header");
}

static uint32_t checksum_of(const uint8_t *raw)
{
	struct seg_hdr h;
	memcpy(&h, raw, sizeof(h));
	return seg_checksum(&h);
}

/* Every way of opening must give `want`. */
static void expect_open_rc(const char *uri, int want, const char *what)
{
	const int how[] = { 0, SHMRING_PRODUCER, SHMRING_CONSUMER,
			    SHMRING_PRODUCER | SHMRING_CONSUMER, SHMRING_CREATE | SHMRING_PRODUCER };
	for (size_t i = 0; i < sizeof(how) / sizeof(how[0]); i++) {
		int rc = t_try_open(uri, how[i], NULL);
		cr_assert_eq(rc, want, "%s, oflags 0x%x: got %d (%s), want %d (%s)", what, how[i],
			     rc, shmring_strerror(rc), want, shmring_strerror(want));
	}
}

static void corrupt_and_check(const char *uri, const uint8_t *orig, const struct hdr_case *c,
			      int fix_checksum)
{
	const char *path = t_path_of(uri);
	uint8_t raw[sizeof(struct seg_hdr)];
	memcpy(raw, orig, sizeof(raw));
	uint64_t v = c->xor ? get_field(raw, c->off, c->size) ^ c->value : c->value;
	set_field(raw, c->off, c->size, v);
	cr_assert_neq(memcmp(raw, orig, sizeof(raw)), 0, "case %s changes nothing", c->name);
	if (fix_checksum && strcmp(c->name, "checksum") != 0) {
		uint32_t cs = checksum_of(raw);
		memcpy(raw + offsetof(struct seg_hdr, checksum), &cs, sizeof(cs));
	}
	put_hdr(path, raw);
	char what[128];
	snprintf(what, sizeof(what), "%s = 0x%llx, checksum %s", c->name, (unsigned long long)v,
		 fix_checksum ? "recomputed" : "stale");
	expect_open_rc(uri, fix_checksum ? c->want : -EPROTO, what);
	/* control: the untouched header opens again */
	put_hdr(path, orig);
	int rc = t_try_open(uri, SHMRING_PRODUCER | SHMRING_CONSUMER, NULL);
	cr_assert_eq(rc, 0, "restored header after %s: %s", what, shmring_strerror(rc));
}

static const struct hdr_case stale_cases[] = {
	{ HDR_FIELD(magic), 1, 1, 0 },
	{ HDR_FIELD(version), 0x10, 1, 0 },
	{ HDR_FIELD(hdr_size), 8, 1, 0 },
	{ HDR_FIELD(stamp), 1, 1, 0 },
	{ HDR_FIELD(kind), SHMRING_MPMC, 0, 0 },   /* -EPROTO: the checksum is wrong */
	{ HDR_FIELD(kind), 3, 0, 0 },
	{ HDR_FIELD(flags), SHMRING_PREFAULT, 1, 0 },
	{ HDR_FIELD(seg_size), 4096, 1, 0 },
	{ HDR_FIELD(capacity), 1, 1, 0 },
	{ HDR_FIELD(max_msg), 1, 1, 0 },
	{ HDR_FIELD(spin_ns), 1, 1, 0 },
	{ HDR_FIELD(ctl_off), 8, 1, 0 },
	{ HDR_FIELD(ring_off), 8, 1, 0 },
	{ HDR_FIELD(data_off), 8, 1, 0 },
	{ HDR_FIELD(creator_uid), 1, 1, 0 },
	{ HDR_FIELD(creator_pid), 1, 1, 0 },
	{ HDR_FIELD(created_ns), 1, 1, 0 },
	{ HDR_FIELD(mode), 1, 1, 0 },
	{ HDR_FIELD(checksum), 1, 1, 0 },
};

/* Ring of capacity 4096, max_msg 1000: seg_size 24576. */
static const struct hdr_case fixed_cases[] = {
	{ HDR_FIELD(magic), 1, 1, -EPROTO },
	{ HDR_FIELD(magic), 0x31474e49524d4854ull, 0, -EPROTO },  /* "THMRING1" */
	{ HDR_FIELD(version), SEG_VERSION + 1, 0, -EPROTO },
	{ HDR_FIELD(version), 1, 0, -EPROTO },          /* the layout with a pthread mutex */
	{ HDR_FIELD(version), 0xffffffffu, 0, -EPROTO },
	{ HDR_FIELD(hdr_size), 96, 0, -EPROTO },
	{ HDR_FIELD(hdr_size), 105, 0, -EPROTO },
	{ HDR_FIELD(hdr_size), 4096, 0, -EPROTO },
	{ HDR_FIELD(stamp), 1, 1, -EPROTO },
	{ HDR_FIELD(stamp), 0, 0, -EPROTO },
	{ HDR_FIELD(kind), 0, 0, -EPROTO },
	{ HDR_FIELD(kind), 3, 0, -EPROTO },
	{ HDR_FIELD(kind), 0xffffffffu, 0, -EPROTO },
	{ HDR_FIELD(kind), SHMRING_MPMC, 0, -EPROTO },   /* SPSC geometry is no MPMC ring */
	{ HDR_FIELD(flags), 0x4, 0, -EPROTO },
	{ HDR_FIELD(flags), 0x80000000u, 0, -EPROTO },
	{ HDR_FIELD(seg_size), 24576 + 4096, 0, -EPROTO },
	{ HDR_FIELD(seg_size), 24576 - 4096, 0, -EPROTO },
	{ HDR_FIELD(seg_size), 0, 0, -EPROTO },
	{ HDR_FIELD(seg_size), ~0ull, 0, -EPROTO },
	{ HDR_FIELD(capacity), 8192, 0, -EPROTO },      /* valid alone, not with seg_size */
	{ HDR_FIELD(capacity), 2048, 0, -EPROTO },
	{ HDR_FIELD(capacity), 4095, 0, -EPROTO },
	{ HDR_FIELD(capacity), 0, 0, -EPROTO },
	{ HDR_FIELD(capacity), 1ull << 41, 0, -EPROTO },
	{ HDR_FIELD(capacity), 1ull << 63, 0, -EPROTO },
	{ HDR_FIELD(max_msg), 0, 0, -EPROTO },
	{ HDR_FIELD(max_msg), 2041, 0, -EPROTO },       /* > capacity/2 - 8 */
	{ HDR_FIELD(max_msg), 0xffffffffu, 0, -EPROTO },
	{ HDR_FIELD(ctl_off), 0, 0, -EPROTO },
	{ HDR_FIELD(ctl_off), 4104, 0, -EPROTO },
	{ HDR_FIELD(ctl_off), 1ull << 40, 0, -EPROTO },
	{ HDR_FIELD(ring_off), 0, 0, -EPROTO },
	{ HDR_FIELD(ring_off), 16392, 0, -EPROTO },
	{ HDR_FIELD(ring_off), 24576, 0, -EPROTO },
	{ HDR_FIELD(data_off), 16384, 0, -EPROTO },
	{ HDR_FIELD(data_off), 20488, 0, -EPROTO },
	{ HDR_FIELD(data_off), 24576, 0, -EPROTO },
	{ HDR_FIELD(creator_uid), 1, 0, -EPROTO },
	{ HDR_FIELD(creator_uid), NOBODY, 0, -EPROTO },
};

Test(shm, header_field_corrupt_stale_checksum_is_eproto, .timeout = 30)
{
	const char *uri = t_ring_uri("hdr1");
	make_ring(uri, 4096, 1000);
	uint8_t orig[sizeof(struct seg_hdr)];
	get_hdr(t_path_of(uri), orig);
	cr_assert_eq(get_field(orig, 0, 8), SEG_MAGIC);
	cr_assert_eq(checksum_of(orig), (uint32_t)get_field(orig, offsetof(struct seg_hdr, checksum), 4),
		     "seg_checksum() agrees with the header the library wrote");
	for (size_t i = 0; i < sizeof(stale_cases) / sizeof(stale_cases[0]); i++)
		corrupt_and_check(uri, orig, &stale_cases[i], 0);
	cr_assert_eq(shmring_unlink(uri), 0);
}

Test(shm, header_field_corrupt_fixed_checksum_is_eproto, .timeout = 30)
{
	const char *uri = t_ring_uri("hdr2");
	make_ring(uri, 4096, 1000);
	uint8_t orig[sizeof(struct seg_hdr)];
	get_hdr(t_path_of(uri), orig);
	cr_assert_eq(get_field(orig, offsetof(struct seg_hdr, seg_size), 8), 24576);
	cr_assert_eq(get_field(orig, offsetof(struct seg_hdr, capacity), 8), 4096);
	for (size_t i = 0; i < sizeof(fixed_cases) / sizeof(fixed_cases[0]); i++)
		corrupt_and_check(uri, orig, &fixed_cases[i], 1);
	cr_assert_eq(shmring_unlink(uri), 0);
}

Test(shm, header_every_byte_flip_is_refused, .timeout = 30)
{
	/* Every single bit flip in the checksummed header is caught (the
	 * checksum alone guarantees it), and never crashes the opener. */
	const char *uri = t_ring_uri("hdrflip");
	make_ring(uri, 4096, 1000);
	const char *path = t_path_of(uri);
	uint8_t orig[sizeof(struct seg_hdr)], raw[sizeof(struct seg_hdr)];
	get_hdr(path, orig);
	for (size_t byte = 0; byte < sizeof(orig); byte++) {
		for (int bit = 0; bit < 8; bit += 3) {
			memcpy(raw, orig, sizeof(raw));
			raw[byte] ^= (uint8_t)(1u << bit);
			put_hdr(path, raw);
			int rc = t_try_open(uri, SHMRING_CONSUMER, NULL);
			cr_assert_eq(rc, -EPROTO, "byte %zu bit %d flipped: %s", byte, bit,
				     shmring_strerror(rc));
		}
	}
	put_hdr(path, orig);
	cr_assert_eq(t_try_open(uri, SHMRING_CONSUMER, NULL), 0);
	cr_assert_eq(shmring_unlink(uri), 0);
}

/* A header as seg_create() writes it, for geometry g, in private memory. */
static struct seg_hdr hdr_for(const struct seg_geom *g)
{
	struct seg_hdr h = {
		.magic = SEG_MAGIC, .hdr_size = sizeof(h), .stamp = seg_stamp(), .kind = g->kind,
		.flags = g->flags, .seg_size = g->size, .capacity = g->capacity,
		.max_msg = g->max_msg, .spin_ns = g->spin_ns, .ctl_off = g->ctl_off,
		.ring_off = g->ring_off, .data_off = g->data_off, .creator_uid = 1000,
		.mode = 0600,
	};
	atomic_init(&h.version, SEG_VERSION);
	h.checksum = seg_checksum(&h);
	return h;
}

struct fault_case {
	const char *name;
	size_t off, size;
	uint64_t value;
	int keep_checksum;      /* 0: recomputed after the change */
	enum seg_fault want;
};

static void expect_faults(enum shmring_kind kind, const struct fault_case *c, size_t n)
{
	struct shmring_opts o = { .kind = kind, .capacity = 65536, .max_msg = 1000 };
	struct seg_geom g;
	cr_assert_eq(seg_plan(&o, &g), 0);
	struct seg_hdr good = hdr_for(&g);
	char why[256];
	cr_assert_eq(seg_check(&good, g.size, 1000), SEG_SOUND, "a fresh header is sound");
	cr_assert_str_empty(seg_explain(SEG_SOUND, &good, g.size, 1000, why, sizeof(why)));
	cr_assert_eq(seg_check(&good, g.size + 4096, 1000), SEG_F_FILE_SIZE);
	for (size_t i = 0; i < n; i++) {
		struct seg_hdr h = good;
		uint8_t *raw = (uint8_t *)&h;
		uint64_t v = get_field(raw, c[i].off, c[i].size) ^ c[i].value;
		set_field(raw, c[i].off, c[i].size, v);
		if (!c[i].keep_checksum)
			h.checksum = seg_checksum(&h);
		enum seg_fault f = seg_check(&h, g.size, 1000);
		cr_assert_eq(f, c[i].want, "%s: fault %d, want %d", c[i].name, f, c[i].want);
		seg_explain(f, &h, g.size, 1000, why, sizeof(why));
		cr_assert(why[0] != 0, "%s: a reason in words", c[i].name);
		struct seg_geom out;
		cr_assert_eq(seg_validate(&h, g.size, 1000, &out), -EPROTO, "%s", c[i].name);
	}
}

/* The validator says which check failed, so the tool can report it. */
Test(shm, seg_check_names_the_failing_check, .timeout = 10)
{
	const struct fault_case common[] = {
		{ HDR_FIELD(magic), 1, 1, SEG_F_MAGIC },
		{ HDR_FIELD(version), SEG_VERSION, 0, SEG_F_UNPUBLISHED },
		{ HDR_FIELD(version), 1ull << 20, 0, SEG_F_VERSION },
		{ HDR_FIELD(hdr_size), 8, 0, SEG_F_HDR_SIZE },
		{ HDR_FIELD(checksum), 1, 1, SEG_F_CHECKSUM },
		{ HDR_FIELD(stamp), 1, 0, SEG_F_STAMP },
		{ HDR_FIELD(kind), 4, 0, SEG_F_KIND },
		{ HDR_FIELD(ctl_off), 8192, 0, SEG_F_OFFSETS },
		{ HDR_FIELD(seg_size), 4096, 0, SEG_F_SEG_SIZE },
		{ HDR_FIELD(flags), 0x80, 0, SEG_F_FLAGS },
	};
	expect_faults(SHMRING_SPSC, common, sizeof(common) / sizeof(common[0]));
	expect_faults(SHMRING_MPMC, common, sizeof(common) / sizeof(common[0]));
	const struct fault_case spsc[] = {
		{ HDR_FIELD(capacity), 1, 0, SEG_F_CAPACITY },
		{ HDR_FIELD(max_msg), 1u << 20, 0, SEG_F_SPSC_MAX_MSG },
	};
	expect_faults(SHMRING_SPSC, spsc, sizeof(spsc) / sizeof(spsc[0]));
	const struct fault_case mpmc[] = {
		{ HDR_FIELD(max_msg), 1000, 0, SEG_F_MAX_MSG },           /* 1000 ^ 1000 = 0 */
		{ HDR_FIELD(capacity), 1ull << 50, 0, SEG_F_CAPACITY },
		{ HDR_FIELD(capacity), 64, 0, SEG_F_SLOT_SIZE },
		{ HDR_FIELD(max_msg), 1000 ^ 3000, 0, SEG_F_SLOT_SIZE },
		/* 64 slots of 1088 bytes become 3 */
		{ HDR_FIELD(capacity), (64 * 1088) ^ (3 * 1088), 0, SEG_F_SLOT_COUNT },
	};
	expect_faults(SHMRING_MPMC, mpmc, sizeof(mpmc) / sizeof(mpmc[0]));
}

/* The slot-word check says why, and mw_valid() is exactly "no fault". */
Test(shm, mw_fault_names_what_is_wrong_with_a_slot_word, .timeout = 10)
{
	struct mpmc_geom g = mpmc_geom_make(NULL, 64, 1000);
	const uint64_t t = 1000;
	const struct { uint64_t w; enum mw_fault want; } c[] = {
		{ mw_make(t, MS_FREE, 0), MWF_NONE },
		{ mw_make(t + 64, MS_READING, 3), MWF_NONE },
		{ mw_make(t, 15, 0), MWF_STATE },
		{ mw_make(t, MS_WRITING, CTL_MAX_PARTS + 1), MWF_OWNER },
		{ mw_make(t, MS_READY, 3), MWF_UNHELD_OWNER },
		{ mw_make(t, MS_STUCK, 0), MWF_NO_OWNER },
		{ mw_make(t + 1, MS_FREE, 0), MWF_SLOT },
		{ mw_make_range(t, MS_WRITING, 3, 4), MWF_NONE },
		{ mw_make_range(t, MS_READY, 0, 2), MWF_RANGE },
		{ mw_make_range(t, MS_READING, 3, MPMC_RANGE_MAX + 1), MWF_RANGE },
	};
	char why[200];
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		cr_assert_eq(mw_fault(&g, c[i].w, t), c[i].want, "word %zu", i);
		cr_assert_eq(mw_valid(&g, c[i].w, t), c[i].want == MWF_NONE, "word %zu", i);
		mw_explain(&g, c[i].w, t, why, sizeof(why));
		cr_assert_eq(why[0] != 0, c[i].want != MWF_NONE, "word %zu: %s", i, why);
	}
	cr_assert_eq(g.stride, 1088);
	cr_assert_eq(g.mask, 63);
}

Test(shm, header_version_zero_refused_after_bounded_wait, .timeout = 20)
{
	/* version 0 is "being built": the opener waits (bounded) for a creator
	 * that is not coming, then refuses */
	const char *uri = t_ring_uri("hdrv0");
	make_ring(uri, 4096, 1000);
	uint8_t raw[sizeof(struct seg_hdr)];
	get_hdr(t_path_of(uri), raw);
	set_field(raw, offsetof(struct seg_hdr, version), 4, 0);
	put_hdr(t_path_of(uri), raw);
	uint64_t t0 = t_now_ns();
	int rc = t_try_open(uri, SHMRING_CONSUMER, NULL);
	uint64_t el = t_now_ns() - t0;
	cr_assert_eq(rc, -EPROTO, "version 0: %s", shmring_strerror(rc));
	cr_assert_lt(el, 5000 * MS, "bounded wait took %llu ns", (unsigned long long)el);
	cr_assert_eq(unlink(t_path_of(uri)), 0);
}

Test(shm, truncated_or_grown_file_is_eproto, .timeout = 20)
{
	const char *uri = t_ring_uri("trunc");
	make_ring(uri, 4096, 1000);
	const char *path = t_path_of(uri);
	uint64_t size = file_size(path);
	cr_assert_eq(size, SEG_DATA_OFF + 4096);
	int fd = open_rw(path);
	cr_assert_eq(ftruncate(fd, 4096), 0);
	close(fd);
	expect_open_rc(uri, -EPROTO, "truncated to one page");
	cr_assert_eq(unlink(path), 0);

	uri = t_ring_uri("grown");
	make_ring(uri, 4096, 1000);
	path = t_path_of(uri);
	fd = open_rw(path);
	cr_assert_eq(ftruncate(fd, (off_t)size + 4096), 0);
	close(fd);
	expect_open_rc(uri, -EPROTO, "grown by one page");
	/* shrunk by one page, to the size of a 0-capacity ring */
	fd = open_rw(path);
	cr_assert_eq(ftruncate(fd, (off_t)size - 4096), 0);
	close(fd);
	expect_open_rc(uri, -EPROTO, "shrunk by one page");
	/* smaller than the header itself */
	fd = open_rw(path);
	cr_assert_eq(ftruncate(fd, 50), 0);
	close(fd);
	cr_assert_eq(t_try_open(uri, SHMRING_CONSUMER, NULL), -EPROTO);
	cr_assert_eq(unlink(path), 0);
}

static const char *make_file(const char *tag, const void *data, size_t len)
{
	const char *uri = t_ring_uri(tag);
	int fd = open(t_path_of(uri), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0, "create %s: %s", t_path_of(uri), strerror(errno));
	if (len)
		cr_assert_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
	return uri;
}

/* Open, and try to unlink, n times: each must be -EPROTO (the file stays). */
static void refused_n_times(const char *uri, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		int rc = t_try_open(uri, SHMRING_CONSUMER, NULL);
		cr_assert_eq(rc, -EPROTO, "open %u: %s", i, shmring_strerror(rc));
		rc = shmring_unlink(uri);
		cr_assert_eq(rc, -EPROTO, "unlink %u: %s", i, shmring_strerror(rc));
	}
	cr_assert(t_exists(t_path_of(uri)), "shmring_unlink must not remove a non-ring");
}

Test(shm, unpublished_without_a_live_creator_is_refused_at_once, .timeout = 10)
{
	/* Zeros at a ring's name, and a ring whose version went back to 0:
	 * nobody holds the creator's lock, so no creator is coming.  Twenty
	 * opens and twenty unlinks each: no publication wait for any. */
	static uint8_t zeros[SEG_DATA_OFF + 4096];
	const char *uri = make_file("zeros", zeros, sizeof(zeros));
	refused_n_times(uri, 20);
	cr_assert_eq(unlink(t_path_of(uri)), 0);

	uri = t_ring_uri("unpub");
	make_ring(uri, 4096, 1000);
	uint8_t raw[sizeof(struct seg_hdr)];
	get_hdr(t_path_of(uri), raw);
	set_field(raw, offsetof(struct seg_hdr, version), 4, 0);
	put_hdr(t_path_of(uri), raw);
	refused_n_times(uri, 20);
	cr_assert_eq(unlink(t_path_of(uri)), 0);
}

struct publisher {
	const char *path;
	uint8_t hdr[sizeof(struct seg_hdr)];
	int lock_fd;
	_Atomic int published;
};

static void *publish_later(void *arg)
{
	struct publisher *pb = arg;
	t_sleep_ms(200);
	put_hdr(pb->path, pb->hdr);
	atomic_store(&pb->published, 1);
	close(pb->lock_fd);            /* the creator's lock goes with it */
	return NULL;
}

Test(shm, unpublished_with_a_live_creator_is_waited_for, .timeout = 20)
{
	/* A creator that holds its lock is still building the ring: the
	 * opener waits for the version, then attaches. */
	const char *uri = t_ring_uri("building");
	make_ring(uri, 4096, 1000);
	struct publisher pb = { .path = t_path_of(uri) };
	get_hdr(pb.path, pb.hdr);
	uint8_t raw[sizeof(struct seg_hdr)];
	memcpy(raw, pb.hdr, sizeof(raw));
	set_field(raw, offsetof(struct seg_hdr, version), 4, 0);
	put_hdr(pb.path, raw);
	pb.lock_fd = open_rw(pb.path);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = SEG_LOCK_CREATE, .l_len = 1 };
	cr_assert_eq(fcntl(pb.lock_fd, F_OFD_SETLK, &fl), 0, "lock: %s", strerror(errno));
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, publish_later, &pb), 0);
	struct shmring *r = NULL;
	int rc = shmring_open(uri, SHMRING_CONSUMER, NULL, &r);
	cr_assert_eq(rc, 0, "open while the creator builds: %s", shmring_strerror(rc));
	cr_assert(atomic_load(&pb.published), "attached only after the publication");
	pthread_join(th, NULL);
	shmring_close(r);
	cr_assert_eq(shmring_unlink(uri), 0);
}

Test(shm, zero_length_file_is_eproto, .timeout = 20)
{
	const char *uri = make_file("zero", NULL, 0);
	uint64_t t0 = t_now_ns();
	int rc = t_try_open(uri, SHMRING_CONSUMER, NULL);
	uint64_t el = t_now_ns() - t0;
	cr_assert_eq(rc, -EPROTO, "zero-length file: %s", shmring_strerror(rc));
	cr_assert_lt(el, 5000 * MS, "bounded wait took %llu ns", (unsigned long long)el);
	/* not a ring: shmring_unlink leaves it alone */
	rc = shmring_unlink(uri);
	cr_assert_eq(rc, -EPROTO, "unlink of a non-ring: %s", shmring_strerror(rc));
	cr_assert(t_exists(t_path_of(uri)));
	cr_assert_eq(unlink(t_path_of(uri)), 0);
}

Test(shm, random_bytes_file_is_eproto, .timeout = 20)
{
	static uint8_t junk[SEG_DATA_OFF + 4096];
	uint64_t s = 0xfeedface;
	for (size_t i = 0; i < sizeof(junk); i += 8) {
		uint64_t x = t_rand(&s);
		memcpy(junk + i, &x, 8);
	}
	const char *uri = make_file("junk", junk, sizeof(junk));
	expect_open_rc(uri, -EPROTO, "random bytes");
	cr_assert_eq(shmring_unlink(uri), -EPROTO);
	cr_assert(t_exists(t_path_of(uri)), "shmring_unlink must not remove a non-ring");
	cr_assert_eq(unlink(t_path_of(uri)), 0);

	/* the right magic and version in front of junk */
	uint64_t magic = SEG_MAGIC;
	uint32_t one = SEG_VERSION;
	memcpy(junk, &magic, 8);
	memcpy(junk + 8, &one, 4);
	uri = make_file("junk2", junk, sizeof(junk));
	expect_open_rc(uri, -EPROTO, "magic + version + random bytes");
	cr_assert_eq(unlink(t_path_of(uri)), 0);

	/* a text file */
	const char txt[] = "# not a ring\nkey=value\n";
	uri = make_file("txt", txt, sizeof(txt) - 1);
	cr_assert_eq(t_try_open(uri, SHMRING_CONSUMER, NULL), -EPROTO);
	cr_assert_eq(unlink(t_path_of(uri)), 0);
}

Test(shm, directory_named_like_a_ring_is_an_error, .timeout = 10)
{
	const char *uri = t_ring_uri("dir");
	const char *path = t_path_of(uri);
	cr_assert_eq(mkdir(path, 0700), 0, "mkdir: %s", strerror(errno));
	const int how[] = { 0, SHMRING_CONSUMER, SHMRING_PRODUCER, SHMRING_CREATE,
			    SHMRING_CREATE | SHMRING_EXCL };
	for (size_t i = 0; i < sizeof(how) / sizeof(how[0]); i++) {
		int rc = t_try_open(uri, how[i], NULL);
		cr_assert_lt(rc, 0, "directory opened with 0x%x", how[i]);
	}
	int rc = shmring_unlink(uri);
	cr_assert_lt(rc, 0, "shmring_unlink of a directory: %d", rc);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert(S_ISDIR(st.st_mode), "the directory is still there");
	cr_assert_eq(rmdir(path), 0);
}

Test(shm, fifo_named_like_a_ring_is_an_error, .timeout = 10)
{
	const char *uri = t_ring_uri("fifo");
	cr_assert_eq(mkfifo(t_path_of(uri), 0600), 0);
	int rc = t_try_open(uri, SHMRING_CONSUMER, NULL);
	cr_assert_lt(rc, 0, "a FIFO opened as a ring");
	rc = t_try_open(uri, SHMRING_CREATE, NULL);
	cr_assert_lt(rc, 0, "a FIFO opened as a ring with CREATE");
	cr_assert_eq(unlink(t_path_of(uri)), 0);
}

Test(shm, symlink_to_valid_ring_is_refused, .timeout = 10)
{
	const char *target = t_ring_uri("symtgt");
	make_ring(target, 4096, 0);
	const char *link = t_ring_uri("symlnk");
	cr_assert_eq(symlink(t_path_of(target), t_path_of(link)), 0);
	const int how[] = { 0, SHMRING_CONSUMER, SHMRING_PRODUCER, SHMRING_CREATE };
	for (size_t i = 0; i < sizeof(how) / sizeof(how[0]); i++) {
		int rc = t_try_open(link, how[i], NULL);
		cr_assert_neq(rc, 0, "symlink opened with 0x%x", how[i]);
		cr_assert(rc == -EACCES || rc == -ELOOP, "symlink, 0x%x: %s", how[i],
			  shmring_strerror(rc));
	}
	int rc = t_try_open(link, SHMRING_CREATE | SHMRING_EXCL, NULL);
	cr_assert_eq(rc, -EEXIST, "CREATE|EXCL over a symlink: %s", shmring_strerror(rc));
	rc = shmring_unlink(link);
	cr_assert_neq(rc, 0, "shmring_unlink through a symlink");
	cr_assert(t_exists(t_path_of(link)));
	/* the target is untouched and fine */
	cr_assert_eq(t_try_open(target, SHMRING_PRODUCER | SHMRING_CONSUMER, NULL), 0);
	/* a dangling symlink too */
	cr_assert_eq(unlink(t_path_of(link)), 0);
	cr_assert_eq(symlink("/dev/shm/does-not-exist-shmring", t_path_of(link)), 0);
	rc = t_try_open(link, SHMRING_CREATE | SHMRING_PRODUCER, NULL);
	cr_assert_neq(rc, 0, "CREATE through a dangling symlink");
	cr_assert(!t_exists("/dev/shm/does-not-exist-shmring"), "created through the symlink");
	cr_assert_eq(unlink(t_path_of(link)), 0);
	cr_assert_eq(shmring_unlink(target), 0);
}

/* ======================================================================= */
/* impossible indices and records                                          */
/* ======================================================================= */

#define CAP 4096u

struct seg_view {
	uint8_t *base;
	size_t size;
	struct spsc_shared *sh;
	uint8_t *data;
};

static struct seg_view view_of(const char *uri)
{
	struct seg_view v;
	v.base = map_seg(t_path_of(uri), &v.size);
	v.sh = (struct spsc_shared *)(v.base + SEG_RING_OFF);
	v.data = v.base + SEG_DATA_OFF;
	cr_assert_eq(v.size, SEG_DATA_OFF + CAP);
	return v;
}

static void view_drop(struct seg_view *v)
{
	munmap(v->base, v->size);
}

static void set_idx(struct seg_view *v, uint64_t tail, uint64_t head, uint64_t read)
{
	atomic_store(&v->sh->prod_tail, tail);
	atomic_store(&v->sh->cons_head, head);
	atomic_store(&v->sh->cons_read, read);
}

static void put_rec(struct seg_view *v, uint64_t pos, uint32_t len, uint32_t tag)
{
	uint32_t h[2] = { len, tag };
	memcpy(v->data + (pos & (CAP - 1)), h, sizeof(h));
}

Test(shm, impossible_indices_refuse_role_open, .timeout = 20)
{
	const char *uri = t_ring_uri("idx");
	make_ring(uri, CAP, 1000);
	struct seg_view v = view_of(uri);
	/* The data area is all zero: no record is published.  prod_tail is
	 * only the producer's hint (the consumer polls record headers), so a
	 * wild prod_tail must not stop anybody. */
	struct { const char *what; uint64_t tail, head, read; int cons, prod; } cases[] = {
		{ "misaligned head", 16, 4, 4, -EPROTO, -EPROTO },
		{ "misaligned head (1)", 0, 1, 1, -EPROTO, -EPROTO },
		{ "cons_read misaligned", 0, 0, 4, -EPROTO, 0 },
		{ "cons_read past the records, over zeros", 0, 0, 64, -EPROTO, 0 },
		{ "cons_read far away", 0, 0, 1ull << 40, -EPROTO, 0 },
		{ "cons_read behind head", 0, 64, 0, -EPROTO, 0 },
		{ "prod_tail beyond a whole ring (a hint)", CAP + 8, 0, 0, 0, 0 },
		{ "prod_tail misaligned (a hint)", 12, 0, 0, 0, 0 },
		{ "prod_tail huge (a hint)", ~0ull & ~7ull, 0, 0, 0, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		set_idx(&v, cases[i].tail, cases[i].head, cases[i].read);
		int rc = t_try_open(uri, SHMRING_CONSUMER, NULL);
		cr_assert_eq(rc, cases[i].cons, "%s: consumer open %s", cases[i].what,
			     shmring_strerror(rc));
		rc = t_try_open(uri, SHMRING_PRODUCER, NULL);
		cr_assert_eq(rc, cases[i].prod, "%s: producer open %s", cases[i].what,
			     shmring_strerror(rc));
		rc = t_try_open(uri, SHMRING_PRODUCER | SHMRING_CONSUMER, NULL);
		int both = cases[i].cons ? cases[i].cons : cases[i].prod;
		cr_assert_eq(rc, both, "%s: both roles open %s", cases[i].what,
			     shmring_strerror(rc));
		/* a refused open takes no role */
		struct shmring *mon = t_open_opts(uri, 0, NULL);
		struct shmring_stats st = t_stats(mon);
		cr_assert_eq(st.producers + st.consumers, 0, "%s: roles left behind", cases[i].what);
		cr_assert_leq(st.used, CAP, "%s: used %llu", cases[i].what,
			      (unsigned long long)st.used);
		shmring_close(mon);
	}
	/* records that go on for more than a ring: the producer's walk to the
	 * published end refuses them */
	set_idx(&v, 0, 0, 0);
	for (uint64_t pos = 0; pos < CAP; pos += 16)
		put_rec(&v, pos, 8, SPSC_TAG_MSG);
	cr_assert_eq(t_try_open(uri, SHMRING_PRODUCER, NULL), -EPROTO, "endless records");
	memset(v.data, 0, CAP);
	/* control: sane indices (anywhere in the 64-bit space) open fine */
	set_idx(&v, 1ull << 40, 1ull << 40, 1ull << 40);
	cr_assert_eq(t_try_open(uri, SHMRING_PRODUCER | SHMRING_CONSUMER, NULL), 0);
	set_idx(&v, 0, 0, 0);
	cr_assert_eq(t_try_open(uri, SHMRING_PRODUCER | SHMRING_CONSUMER, NULL), 0);
	view_drop(&v);
	cr_assert_eq(shmring_unlink(uri), 0);
}

Test(shm, prod_tail_is_only_a_hint, .timeout = 20)
{
	const char *uri = t_ring_uri("tailc");
	make_ring(uri, CAP, 1000);
	struct seg_view v = view_of(uri);
	struct shmring *p = t_open_opts(uri, SHMRING_PRODUCER, NULL);
	struct shmring *q = t_open_opts(uri, SHMRING_CONSUMER, NULL);
	send_key(p, 100, 1);
	recv_key(q, 100, 1);                /* head = read = 112 */
	uint64_t good = atomic_load(&v.sh->prod_tail);
	cr_assert_eq(good, 112);
	/* The consumer polls the record header at its own position: a wild
	 * prod_tail changes nothing it delivers, and stats stay in range. */
	const uint64_t bad[] = { 112 + CAP + 8, 113, 116, 104, 0, ~0ull };
	uint8_t buf[2048];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		atomic_store(&v.sh->prod_tail, bad[i]);
		ssize_t n = shmring_recv(q, buf, sizeof(buf), 0);
		cr_assert_eq(n, -EAGAIN, "prod_tail %llu: recv %zd", (unsigned long long)bad[i], n);
		cr_assert_leq(t_stats(q).used, CAP);
		atomic_store(&v.sh->prod_tail, good);
		send_key(p, 50, 10 + i);   /* the producer rewrites its hint */
		atomic_store(&v.sh->prod_tail, bad[i]);
		recv_key(q, 50, 10 + i);
	}
	shmring_close(p);
	shmring_close(q);
	view_drop(&v);
	cr_assert_eq(shmring_unlink(uri), 0);
}

Test(shm, corrupt_cons_head_under_open_producer_is_eproto, .timeout = 20)
{
	const char *uri = t_ring_uri("headc");
	make_ring(uri, CAP, 1000);
	struct seg_view v = view_of(uri);
	struct shmring *p = t_open_opts(uri, SHMRING_PRODUCER, NULL);
	/* fill it, so the producer must look at cons_head again */
	int k = 0;
	uint8_t buf[1000] = { 0 };
	while (shmring_send(p, buf, 500, 0) == 0)
		k++;
	cr_assert_gt(k, 0);
	const uint64_t bad[] = { 4, 1ull << 40, ~0ull & ~7ull };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		atomic_store(&v.sh->cons_head, bad[i]);
		int rc = shmring_send(p, buf, 500, 0);
		cr_assert_eq(rc, -EPROTO, "cons_head %llu: send %s", (unsigned long long)bad[i],
			     shmring_strerror(rc));
		struct shmring_msg m;
		rc = shmring_reserve(p, 500, &m, 0);
		cr_assert_eq(rc, -EPROTO, "cons_head %llu: reserve %s", (unsigned long long)bad[i],
			     shmring_strerror(rc));
	}
	atomic_store(&v.sh->cons_head, 0);
	cr_assert_eq(shmring_send(p, buf, 500, 0), -EAGAIN);
	shmring_close(p);
	view_drop(&v);
	cr_assert_eq(shmring_unlink(uri), 0);
}

struct rec_case {
	const char *what;
	void (*setup)(struct seg_view *v);   /* consumer has read up to 16 */
};

/* every case starts with one good 8-byte message at 0 already received */
static void rc_len_too_big(struct seg_view *v)
{
	put_rec(v, 16, 1001, SPSC_TAG_MSG);
	atomic_store(&v->sh->prod_tail, 16 + spsc_rec_size(1001));
}
static void rc_len_huge(struct seg_view *v)
{
	put_rec(v, 16, 0xfffffff0u, SPSC_TAG_MSG);
	atomic_store(&v->sh->prod_tail, 16 + 1024);
}
static void rc_bad_tag(struct seg_view *v)
{
	put_rec(v, 16, 8, 0xdeadbeefu);
	atomic_store(&v->sh->prod_tail, 32);
}
static void rc_zero_len_tag(struct seg_view *v)
{
	put_rec(v, 16, 5, 0);
	atomic_store(&v->sh->prod_tail, 32);
}
static void rc_unaligned_large(struct seg_view *v)
{
	/* payloads of SPSC_ALIGN_MIN bytes or more start 64-byte aligned */
	put_rec(v, 16, 300, SPSC_TAG_MSG);
	atomic_store(&v->sh->prod_tail, 16 + spsc_rec_size(300));
}
static void rc_pad_short(struct seg_view *v)
{
	put_rec(v, 16, 100, SPSC_TAG_PAD);
	atomic_store(&v->sh->prod_tail, 16 + 200);
}
static void rc_pad_long(struct seg_view *v)
{
	put_rec(v, 16, CAP, SPSC_TAG_PAD);
	atomic_store(&v->sh->prod_tail, 16 + 200);
}
static void rc_pad_zero(struct seg_view *v)
{
	put_rec(v, 16, 0, SPSC_TAG_PAD);
	atomic_store(&v->sh->prod_tail, 16 + 200);
}
static void rc_pad_last(struct seg_view *v)
{
	/* a filler with nothing after it */
	put_rec(v, 16, CAP - 16, SPSC_TAG_PAD);
	put_rec(v, 0, 0, 0);
	atomic_store(&v->sh->prod_tail, CAP);
}
static void rc_pad_pad(struct seg_view *v)
{
	/* a filler, then another filler from offset 0 */
	put_rec(v, 16, CAP - 16, SPSC_TAG_PAD);
	put_rec(v, 0, CAP, SPSC_TAG_PAD);
	atomic_store(&v->sh->prod_tail, CAP + 16);
}
static void rc_pad_then_unaligned(struct seg_view *v)
{
	put_rec(v, 16, CAP - 16, SPSC_TAG_PAD);
	put_rec(v, 0, 300, SPSC_TAG_MSG);
	atomic_store(&v->sh->prod_tail, CAP + 16);
}
static void rc_align_pad_wrong(struct seg_view *v)
{
	/* an alignment filler that does not lead to a 64-byte boundary */
	put_rec(v, 16, 16, SPSC_TAG_PAD);
	put_rec(v, 32, 300, SPSC_TAG_MSG);
	atomic_store(&v->sh->prod_tail, 32 + spsc_rec_size(300));
}
static void rc_pad_then_bad_tag(struct seg_view *v)
{
	put_rec(v, 16, CAP - 16, SPSC_TAG_PAD);
	put_rec(v, 0, 8, 0x12345678u);
	atomic_store(&v->sh->prod_tail, CAP + 16);
}

static const struct rec_case rec_cases[] = {
	{ "len > max_msg", rc_len_too_big },
	{ "len 0xfffffff0", rc_len_huge },
	{ "bad tag", rc_bad_tag },
	{ "zero tag with a length", rc_zero_len_tag },
	{ "large payload not 64-byte aligned", rc_unaligned_large },
	{ "filler shorter than the rest of the area", rc_pad_short },
	{ "filler of the whole capacity", rc_pad_long },
	{ "filler of length 0", rc_pad_zero },
	{ "filler with nothing after it", rc_pad_last },
	{ "filler then a filler at offset 0", rc_pad_pad },
	{ "filler then an unaligned large payload", rc_pad_then_unaligned },
	{ "alignment filler to a wrong boundary", rc_align_pad_wrong },
	{ "filler then a bad tag", rc_pad_then_bad_tag },
};

Test(shm, corrupt_record_headers_are_eproto, .timeout = 30)
{
	const char *uri = t_ring_uri("rec");
	make_ring(uri, CAP, 1000);
	struct seg_view v = view_of(uri);
	uint8_t buf[4096];
	for (size_t i = 0; i < sizeof(rec_cases) / sizeof(rec_cases[0]); i++) {
		const char *what = rec_cases[i].what;
		set_idx(&v, 0, 0, 0);
		memset(v.data, 0, CAP);
		struct shmring *q = t_open_opts(uri, SHMRING_CONSUMER, NULL);
		/* a well-formed record written by hand is delivered (control) */
		put_rec(&v, 0, 8, SPSC_TAG_MSG);
		memcpy(v.data + 8, "GOODMSG!", 8);
		atomic_store(&v.sh->prod_tail, 16);
		ssize_t n = shmring_recv(q, buf, sizeof(buf), 0);
		cr_assert_eq(n, 8, "%s: control recv %zd", what, n);
		cr_assert_eq(memcmp(buf, "GOODMSG!", 8), 0);

		uint64_t before = t_stats(q).msgs_recv;
		rec_cases[i].setup(&v);
		for (int again = 0; again < 2; again++) {
			memset(buf, 0x5c, sizeof(buf));
			n = shmring_recv(q, buf, sizeof(buf), 0);
			cr_assert_eq(n, -EPROTO, "%s: recv %zd", what, n);
			cr_assert_eq(buf[0], 0x5c, "%s: nothing copied", what);
			struct shmring_msg m = { 0 };
			int rc = shmring_acquire(q, &m, 0);
			cr_assert_eq(rc, -EPROTO, "%s: acquire %s", what, shmring_strerror(rc));
			struct iovec iov = { buf, sizeof(buf) };
			rc = shmring_recv_batch(q, &iov, 1, 0);
			cr_assert_eq(rc, -EPROTO, "%s: recv_batch %s", what, shmring_strerror(rc));
			n = shmring_recv(q, buf, sizeof(buf), 20 * MS);
			cr_assert_eq(n, -EPROTO, "%s: recv with timeout %zd", what, n);
		}
		cr_assert_eq(t_stats(q).msgs_recv, before, "%s: nothing counted", what);
		shmring_close(q);
	}
	view_drop(&v);
	cr_assert_eq(shmring_unlink(uri), 0);
}

/* A header rewritten between acquire and release (a hostile or broken
 * process with write access) is a damaged ring, not a bad argument. */
Test(shm, header_overwritten_after_acquire_release_is_eproto, .timeout = 20)
{
	const char *uri = t_ring_uri("relhdr");
	make_ring(uri, CAP, 1000);
	struct seg_view v = view_of(uri);
	struct shmring *p = t_open_opts(uri, SHMRING_PRODUCER, NULL);
	struct shmring *q = t_open_opts(uri, SHMRING_CONSUMER, NULL);
	cr_assert_eq(shmring_send(p, "GOODMSG!", 8, 0), 0);
	struct shmring_msg m = { 0 };
	cr_assert_eq(shmring_acquire(q, &m, 0), 0);
	cr_assert_eq(m.len, 8);
	uint64_t head = atomic_load(&v.sh->cons_head);
	put_rec(&v, head, 5000, SPSC_TAG_MSG);      /* runs past max_msg */
	int rc = shmring_release(q, &m);
	cr_assert_eq(rc, -EPROTO, "release: %s", shmring_strerror(rc));
	cr_assert_eq(atomic_load(&v.sh->cons_head), head, "nothing released");
	/* a header that parses but is not the one acquired: m no longer matches */
	put_rec(&v, head, 16, SPSC_TAG_MSG);
	rc = shmring_release(q, &m);
	cr_assert_eq(rc, -EINVAL, "release: %s", shmring_strerror(rc));
	shmring_close(q);
	shmring_close(p);
	view_drop(&v);
	cr_assert_eq(shmring_unlink(uri), 0);
}

Test(shm, record_running_past_end_of_data_area_is_eproto, .timeout = 20)
{
	const char *uri = t_ring_uri("edge");
	make_ring(uri, CAP, 1000);
	struct seg_view v = view_of(uri);
	uint8_t buf[4096];

	/* control: the consumer sits 16 bytes before the end; a filler there
	 * and a message at offset 0 is the legal wrap */
	set_idx(&v, CAP - 16, CAP - 16, CAP - 16);
	struct shmring *q = t_open_opts(uri, SHMRING_CONSUMER, NULL);
	put_rec(&v, CAP - 16, 16, SPSC_TAG_PAD);
	put_rec(&v, 0, 8, SPSC_TAG_MSG);
	memcpy(v.data + 8, "WRAPPED!", 8);
	atomic_store(&v.sh->prod_tail, CAP + 16);
	ssize_t n = shmring_recv(q, buf, sizeof(buf), 0);
	cr_assert_eq(n, 8, "legal wrap: %zd (%s)", n, n < 0 ? shmring_strerror((int)n) : "");
	cr_assert_eq(memcmp(buf, "WRAPPED!", 8), 0);
	shmring_close(q);

	/* a message header 16 bytes before the end claiming 100 bytes: it
	 * would be read across the end of the mapping */
	set_idx(&v, CAP - 16, CAP - 16, CAP - 16);
	q = t_open_opts(uri, SHMRING_CONSUMER, NULL);
	put_rec(&v, CAP - 16, 100, SPSC_TAG_MSG);
	atomic_store(&v.sh->prod_tail, CAP - 16 + spsc_rec_size(100));
	n = shmring_recv(q, buf, sizeof(buf), 0);
	cr_assert_eq(n, -EPROTO, "record across the end: %zd", n);
	struct shmring_msg m;
	int rc = shmring_acquire(q, &m, 0);
	cr_assert_eq(rc, -EPROTO, "acquire across the end: %s", shmring_strerror(rc));
	shmring_close(q);

	/* the same with the largest legal message at the last slot */
	set_idx(&v, CAP - 8, CAP - 8, CAP - 8);
	q = t_open_opts(uri, SHMRING_CONSUMER, NULL);
	put_rec(&v, CAP - 8, 1000, SPSC_TAG_MSG);
	atomic_store(&v.sh->prod_tail, CAP - 8 + spsc_rec_size(1000));
	n = shmring_recv(q, buf, sizeof(buf), 0);
	cr_assert_eq(n, -EPROTO, "max record at the last slot: %zd", n);
	shmring_close(q);
	view_drop(&v);
	cr_assert_eq(shmring_unlink(uri), 0);
}

/* ======================================================================= */
/* /dev/shm full                                                           */
/* ======================================================================= */

/* rc[0]: 8 MiB create, rc[1]: files left, rc[2]: 64 KiB create,
 * rc[3]: send, rc[4]: recv, rc[5]: unlink; exit 77: no privileges */
static int child_small_tmpfs(void *arg)
{
	struct box *b = arg;
	child_guard();
	if (unshare(CLONE_NEWNS) < 0)
		return errno == EPERM ? 77 : 10;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return 11;
	if (mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=1m,mode=1777") < 0)
		return errno == EPERM ? 77 : 12;
	if (count_dir_entries("/dev/shm") != 0)
		return 13;

	struct shmring_opts big = { .capacity = 8u << 20 };
	struct shmring *r = NULL;
	b->rc[0] = shmring_open(b->uri, SHMRING_CREATE | SHMRING_EXCL | SHMRING_PRODUCER, &big, &r);
	if (b->rc[0] == 0)
		shmring_close(r);
	b->rc[1] = count_dir_entries("/dev/shm");
	/* the same through CREATE without EXCL, and with a consumer role */
	b->rc[6] = shmring_open(b->uri, SHMRING_CREATE | SHMRING_CONSUMER, &big, &r);
	if (b->rc[6] == 0)
		shmring_close(r);
	b->rc[7] = count_dir_entries("/dev/shm");

	struct shmring_opts small = { .capacity = 64u << 10 };
	b->rc[2] = shmring_open(b->uri, SHMRING_CREATE | SHMRING_EXCL |
				SHMRING_PRODUCER | SHMRING_CONSUMER, &small, &r);
	if (b->rc[2] != 0)
		return 0;
	uint8_t msg[4096], got[4096];
	b->rc[3] = 0;
	b->rc[4] = 0;
	for (uint64_t k = 0; k < 200; k++) {
		t_fill(msg, sizeof(msg), k);
		int rc = shmring_send(r, msg, sizeof(msg), 0);
		if (rc < 0) {
			b->rc[3] = rc;
			break;
		}
		ssize_t n = shmring_recv(r, got, sizeof(got), 0);
		if (n != (ssize_t)sizeof(got) || !t_check(got, sizeof(got), k)) {
			b->rc[4] = n < 0 ? (int)n : -1;
			break;
		}
	}
	struct shmring_stats st;
	if (shmring_stats(r, &st) == 0)
		b->val[0] = (int64_t)st.capacity;
	shmring_close(r);
	b->rc[5] = shmring_unlink(b->uri);
	return 0;
}

Test(shm, full_dev_shm_is_enospc_not_sigbus, .timeout = 30)
{
	const char *uri = t_ring_uri("full");
	struct box *b = box_new(uri);
	memset(b->rc, 0x7f, sizeof(b->rc));
	int st = t_wait(t_spawn(child_small_tmpfs, b));
	if (st == 77) {
		box_free(b);
		cr_skip_test("unshare/mount of a private tmpfs not permitted (EPERM): "
			     "needs root or CAP_SYS_ADMIN");
	}
	cr_assert_neq(st, 128 + SIGBUS, "child died of SIGBUS");
	cr_assert_eq(st, 0, "child status %d (10-13: namespace/mount setup failed)", st);
	cr_assert_eq(b->rc[0], -ENOSPC, "8 MiB ring in a 1 MiB /dev/shm: %s",
		     shmring_strerror(b->rc[0]));
	cr_assert_eq(b->rc[1], 0, "%d file(s) left behind in /dev/shm", b->rc[1]);
	cr_assert_eq(b->rc[6], -ENOSPC, "CREATE without EXCL: %s", shmring_strerror(b->rc[6]));
	cr_assert_eq(b->rc[7], 0, "%d file(s) left behind (CREATE)", b->rc[7]);
	cr_assert_eq(b->rc[2], 0, "64 KiB ring in a 1 MiB /dev/shm: %s", shmring_strerror(b->rc[2]));
	cr_assert_eq(b->val[0], 65536);
	cr_assert_eq(b->rc[3], 0, "send: %s", shmring_strerror(b->rc[3]));
	cr_assert_eq(b->rc[4], 0, "recv: %d", b->rc[4]);
	cr_assert_eq(b->rc[5], 0, "unlink: %s", shmring_strerror(b->rc[5]));
	/* nothing of this reached the real /dev/shm */
	cr_assert(!t_exists(t_path_of(uri)), "the private mount leaked into /dev/shm");
	box_free(b);
}

/* ======================================================================= */
/* mode and creation                                                       */
/* ======================================================================= */

Test(shm, mode_bits_exact_despite_umask, .timeout = 10)
{
	mode_t old = umask(0777);
	const uint32_t ask[] = { 0, 0600, 0640, 0660, 0644, 0666, 0400 };
	const uint32_t want[] = { 0600, 0600, 0640, 0660, 0644, 0666, 0400 };
	int bad = -1;
	uint32_t got = 0;
	int rc = 0;
	for (size_t i = 0; i < sizeof(ask) / sizeof(ask[0]) && bad < 0; i++) {
		const char *uri = t_ring_uri("mode");
		struct shmring_opts o = { .capacity = 4096, .mode = ask[i] };
		struct shmring *r = NULL;
		rc = shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL, &o, &r);
		if (rc < 0) {
			bad = (int)i;
			break;
		}
		shmring_close(r);
		struct stat st;
		if (stat(t_path_of(uri), &st) < 0 || (st.st_mode & 07777) != want[i]) {
			got = st.st_mode & 07777;
			bad = (int)i;
		}
		(void)shmring_unlink(uri);
	}
	umask(old);
	cr_assert_eq(rc, 0, "create with mode %o: %s", bad >= 0 ? ask[bad] : 0,
		     shmring_strerror(rc));
	cr_assert_eq(bad, -1, "mode %o under umask 0777: got %o", bad >= 0 ? ask[bad] : 0, got);
}

Test(shm, prefault_flag_creates_and_works, .timeout = 10)
{
	const char *uri = t_ring_uri("prefault");
	struct shmring_opts o = { .capacity = 1 << 20, .flags = SHMRING_PREFAULT };
	struct shmring *c = t_open_opts(uri, SHMRING_CREATE | SHMRING_EXCL, &o);
	struct shmring *p = t_open_opts(uri, SHMRING_PRODUCER, &o);
	struct shmring *q = t_open_opts(uri, SHMRING_CONSUMER, NULL);
	for (uint64_t k = 0; k < 2000; k++) {
		send_key(p, (size_t)(k * 31 % 4000), k);
		recv_key(q, (size_t)(k * 31 % 4000), k);
	}
	uint8_t raw[sizeof(struct seg_hdr)];
	get_hdr(t_path_of(uri), raw);
	cr_assert_eq(get_field(raw, offsetof(struct seg_hdr, flags), 4), SHMRING_PREFAULT);
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
	cr_assert_eq(shmring_unlink(uri), 0);
}

Test(shm, mlock_flag_creates_and_works_or_fails_cleanly, .timeout = 10)
{
	const char *uri = t_ring_uri("mlock");
	struct shmring_opts o = { .capacity = 1 << 20, .flags = SHMRING_MLOCK | SHMRING_PREFAULT };
	struct shmring *c = NULL;
	int rc = shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL, &o, &c);
	cr_assert(rc == 0 || rc == -ENOMEM || rc == -EPERM, "MLOCK create: %s",
		  shmring_strerror(rc));
	if (rc == 0) {
		struct shmring *p = t_open_opts(uri, SHMRING_PRODUCER, NULL);
		struct shmring *q = t_open_opts(uri, SHMRING_CONSUMER, NULL);
		for (uint64_t k = 0; k < 500; k++) {
			send_key(p, 1000, k);
			recv_key(q, 1000, k);
		}
		shmring_close(p);
		shmring_close(q);
		shmring_close(c);
	}
	(void)shmring_unlink(uri);
}

/* rc[0]: MLOCK create as nobody with RLIMIT_MEMLOCK 4 KiB, rc[1]: file exists after */
static int child_mlock_low_limit(void *arg)
{
	struct box *b = arg;
	child_guard();
	struct rlimit rl = { 4096, 4096 };
	if (setrlimit(RLIMIT_MEMLOCK, &rl) < 0)
		return 10;
	if (drop_to_nobody() < 0)
		return 11;
	struct shmring_opts o = { .capacity = 1 << 20, .flags = SHMRING_MLOCK };
	struct shmring *r = NULL;
	b->rc[0] = shmring_open(b->uri, SHMRING_CREATE | SHMRING_EXCL | SHMRING_PRODUCER, &o, &r);
	if (b->rc[0] == 0) {
		b->rc[2] = shmring_send(r, "x", 1, 0);
		shmring_close(r);
	}
	b->rc[1] = t_exists(t_path_of(b->uri));
	/* what a retry sees (informational) */
	b->rc[3] = t_try_open(b->uri, SHMRING_CREATE | SHMRING_EXCL, NULL);
	b->rc[4] = t_try_open(b->uri, SHMRING_PRODUCER, NULL);
	return 0;
}

Test(shm, mlock_under_low_rlimit_fails_cleanly, .timeout = 15)
{
	const char *uri = t_ring_uri("mlocklow");
	struct box *b = box_new(uri);
	int st = t_wait(t_spawn(child_mlock_low_limit, b));
	cr_assert_eq(st, 0, "child status %d (10/11: setup failed)", st);
	cr_assert(b->rc[0] == 0 || b->rc[0] == -ENOMEM || b->rc[0] == -EPERM,
		  "MLOCK create under RLIMIT_MEMLOCK 4 KiB: %s", shmring_strerror(b->rc[0]));
	if (b->rc[0] < 0)
		cr_assert_eq(b->rc[1], 0, "a failed create (%s) left %s behind; then a retry "
			     "with CREATE|EXCL gets %s and a plain producer open gets %s",
			     shmring_strerror(b->rc[0]), t_path_of(uri), shmring_strerror(b->rc[3]),
			     shmring_strerror(b->rc[4]));
	box_free(b);
	(void)unlink(t_path_of(uri));
}

Test(shm, unknown_opts_flags_are_einval, .timeout = 10)
{
	const char *uri = t_ring_uri("flags");
	const uint32_t bad[] = { 0x4, 0x8, 0x100, 0x80000000u, 0xffffffffu };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct shmring_opts o = { .capacity = 4096, .flags = bad[i] };
		int rc = t_try_open(uri, SHMRING_CREATE | SHMRING_EXCL, &o);
		cr_assert_eq(rc, -EINVAL, "flags 0x%x: %s", bad[i], shmring_strerror(rc));
		rc = t_try_open(uri, SHMRING_CREATE, &o);
		cr_assert_eq(rc, -EINVAL, "flags 0x%x (no EXCL): %s", bad[i], shmring_strerror(rc));
	}
	cr_assert(!t_exists(t_path_of(uri)), "nothing created");
}

/* The planner alone (creating these would take gigabytes): the limit
 * itself is accepted, and a default max_msg of a quarter of a big ring is
 * clamped to it rather than refused. */
Test(shm, max_msg_limit_and_default_clamp, .timeout = 10)
{
	struct seg_geom g;
	for (int kind = SHMRING_SPSC; kind <= SHMRING_MPMC; kind++) {
		struct shmring_opts o = { .kind = (enum shmring_kind)kind,
					  .max_msg = SPSC_MAX_MSG };
		cr_assert_eq(seg_plan(&o, &g), 0, "kind %d at the limit", kind);
		cr_assert_eq(g.max_msg, SPSC_MAX_MSG);
		o.max_msg = SPSC_MAX_MSG + 1;
		cr_assert_eq(seg_plan(&o, &g), -EINVAL, "kind %d past the limit", kind);
		o.max_msg = 0;
		o.capacity = 1ull << 38;
		cr_assert_eq(seg_plan(&o, &g), 0, "kind %d, 256 GiB default", kind);
		cr_assert_eq(g.max_msg, SPSC_MAX_MSG, "kind %d default clamped", kind);
	}
	struct shmring_opts o = { .max_msg = SPSC_MAX_MSG };
	cr_assert_eq(seg_plan(&o, &g), 0);
	cr_assert_eq(g.capacity, 1ull << 33, "SPSC grows to hold the largest record");
	/* the largest capacity with the default max_msg: MPMC slots of ~4 GiB
	 * whose next power of two would pass 1 TiB stop below it */
	o = (struct shmring_opts){ .kind = SHMRING_MPMC, .capacity = SEG_MAX_CAP };
	cr_assert_eq(seg_plan(&o, &g), 0, "MPMC, 1 TiB, default max_msg");
	cr_assert_eq(g.capacity, 256 * mpmc_stride_for(SPSC_MAX_MSG), "256 slots of the largest");
	cr_assert_leq(g.capacity, SEG_MAX_CAP);
	o.max_msg = 1u << 30;
	cr_assert_eq(seg_plan(&o, &g), 0, "MPMC, 1 TiB, 1 GiB messages");
	cr_assert_eq(g.capacity, 512 * mpmc_stride_for(1u << 30));
}

Test(shm, capacity_rounds_up_to_power_of_two, .timeout = 10)
{
	const char *uri = t_ring_uri("round");
	struct shmring_opts o = { .capacity = 5000 };
	struct shmring *r = t_open_opts(uri, SHMRING_CREATE | SHMRING_EXCL, &o);
	struct shmring_stats st = t_stats(r);
	cr_assert_eq(st.capacity, 8192, "capacity 5000 -> %llu", (unsigned long long)st.capacity);
	cr_assert_eq(st.max_msg, 2048, "default max_msg = capacity/4: %u", st.max_msg);
	cr_assert_eq(file_size(t_path_of(uri)), SEG_DATA_OFF + 8192);
	uint8_t raw[sizeof(struct seg_hdr)];
	get_hdr(t_path_of(uri), raw);
	cr_assert_eq(get_field(raw, offsetof(struct seg_hdr, capacity), 8), 8192);
	shmring_close(r);
	cr_assert_eq(shmring_unlink(uri), 0);
}

Test(shm, large_max_msg_grows_capacity, .timeout = 10)
{
	struct { uint64_t cap; uint32_t max; uint64_t want; } cases[] = {
		{ 4096, 3000, 8192 },
		{ 4096, 2048, 8192 },      /* exactly capacity/2 */
		{ 4096, 1921, 8192 },
		{ 4096, 1920, 4096 },      /* the largest that fits as is: cap/2 - 128 */
		{ 65536, 100000, 262144 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *uri = t_ring_uri("grow");
		struct shmring_opts o = { .capacity = cases[i].cap, .max_msg = cases[i].max };
		struct shmring *r = t_open_opts(uri, SHMRING_CREATE | SHMRING_EXCL |
					      SHMRING_PRODUCER | SHMRING_CONSUMER, &o);
		struct shmring_stats st = t_stats(r);
		cr_assert_eq(st.capacity, cases[i].want, "cap %llu max %u: capacity %llu",
			     (unsigned long long)cases[i].cap, cases[i].max,
			     (unsigned long long)st.capacity);
		cr_assert_eq(st.max_msg, cases[i].max);
		/* a max_msg message fits an empty ring wherever the ring
		 * stands: walk the positions with small messages in between */
		uint32_t max = cases[i].max;
		uint8_t *msg = malloc(max), *got = malloc(max);
		cr_assert(msg && got);
		for (uint64_t k = 0; k < 600; k++) {
			t_fill(msg, max, k);
			int rc = shmring_send(r, msg, max, 0);
			cr_assert_eq(rc, 0, "max_msg %u into an empty ring, round %llu: %s", max,
				     (unsigned long long)k, shmring_strerror(rc));
			ssize_t n = shmring_recv(r, got, max, 0);
			cr_assert_eq(n, (ssize_t)max, "recv %zd", n);
			cr_assert(t_check(got, max, k), "max_msg message intact");
			size_t small = (size_t)(k % 24);
			cr_assert_eq(shmring_send(r, msg, small, 0), 0);
			cr_assert_eq(shmring_recv(r, got, max, 0), (ssize_t)small);
		}
		free(msg);
		free(got);
		shmring_close(r);
		cr_assert_eq(shmring_unlink(uri), 0);
	}
}

/* ======================================================================= */
/* control lock (shm/ctl.h)                                               */
/* ======================================================================= */

/* The control block of uri's file, mapped through a descriptor of our own. */
static struct ctl_shared *ctl_map(const char *uri, int *fd)
{
	*fd = open(t_path_of(uri), O_RDWR | O_CLOEXEC);
	if (*fd < 0)
		return NULL;
	void *p = mmap(NULL, SEG_RING_OFF - SEG_CTL_OFF, PROT_READ | PROT_WRITE, MAP_SHARED, *fd,
		       SEG_CTL_OFF);
	return p == MAP_FAILED ? NULL : p;
}

static void ctl_unmap(struct ctl_shared *c, int fd)
{
	munmap(c, SEG_RING_OFF - SEG_CTL_OFF);
	close(fd);
}

/* Is the control lock's byte free (as seen through fd)? */
static bool ctl_byte_free(int fd)
{
	return lock_held(fd, CTL_LOCK_CTL, 1) == -1;
}

static int child_lock_ctl_and_die(void *arg)
{
	struct box *b = arg;
	child_guard();
	int fd;
	struct ctl_shared *c = ctl_map(b->uri, &fd);
	if (!c)
		return 10;
	b->rc[0] = ctl_lock(c, NULL, fd, fd, NULL);
	if (b->rc[0] != 0)
		return 13;
	atomic_store(&b->ready, 1);
	raise(SIGKILL);          /* inside the section */
	return 14;
}

Test(shm, control_lock_holder_killed_is_repaired, .timeout = 20)
{
	const char *uri = t_ring_uri("robust");
	make_ring(uri, 4096, 0);
	struct box *b = box_new(uri);
	int st = t_wait(t_spawn(child_lock_ctl_and_die, b));
	cr_assert_eq(st, 128 + SIGKILL, "child status %d (ctl_lock: %s)", st,
		     shmring_strerror(b->rc[0]));
	cr_assert_eq(atomic_load(&b->ready), 1, "child held the lock when it died");
	int fd;
	struct ctl_shared *c = ctl_map(uri, &fd);
	cr_assert_not_null(c);
	cr_assert_neq(atomic_load(&c->busy), 0, "the dead holder left busy set");
	cr_assert(ctl_byte_free(fd), "the kernel freed the lock byte");

	struct shmring *p = NULL;
	int rc = shmring_open(uri, SHMRING_PRODUCER, NULL, &p);
	cr_assert_eq(rc, 0, "producer open after the holder died: %s", shmring_strerror(rc));
	struct shmring_stats s = t_stats(p);
	cr_assert_eq(s.repairs, 1, "repairs %llu", (unsigned long long)s.repairs);
	cr_assert_eq(s.producers, 1);
	cr_assert_eq(atomic_load(&c->busy), 0);
	/* the repair is done once: later locks are ordinary */
	struct shmring *q = t_open_opts(uri, SHMRING_CONSUMER, NULL);
	shmring_close(q);
	q = t_open_opts(uri, SHMRING_CONSUMER, NULL);
	s = t_stats(q);
	cr_assert_eq(s.repairs, 1, "repairs after more opens %llu", (unsigned long long)s.repairs);
	send_key(p, 100, 1);
	recv_key(q, 100, 1);
	shmring_close(p);
	shmring_close(q);
	ctl_unmap(c, fd);
	box_free(b);
	cr_assert_eq(shmring_unlink(uri), 0);
}

/* A peer that takes the control lock's byte through an open of its own
 * and keeps it. */
static int hold_ctl_byte(void *arg)
{
	struct box *b = arg;
	child_guard();
	int fd = open(t_path_of(b->uri), O_RDWR | O_CLOEXEC);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = CTL_LOCK_CTL,
			    .l_len = 1 };
	if (fd < 0 || fcntl(fd, F_OFD_SETLK, &fl) < 0)
		return 1;
	atomic_store(&b->ready, 1);
	while (!atomic_load(&b->go))
		t_sleep_ms(5);
	return 0;
}

/* Holding the byte costs availability, nothing else: opens with a role
 * give up with -ETIMEDOUT after the bound (no hang), a close gives up
 * waiting and still frees its role, the data path and role-less opens go
 * on; once the peer lets go, everything works and the roles it kept from
 * being given up are taken over. */
Test(shm, control_lock_held_by_peer_times_out, .timeout = 40)
{
	const char *uri = t_ring_uri("squat");
	make_ring(uri, 4096, 0);
	struct shmring *p = t_open_opts(uri, SHMRING_PRODUCER, NULL);
	struct shmring *q = t_open_opts(uri, SHMRING_CONSUMER, NULL);
	struct box *b = box_new(uri);
	pid_t h = t_spawn(hold_ctl_byte, b);
	while (!atomic_load(&b->ready))
		t_sleep_ms(1);

	uint64_t t0 = t_now_ns();
	int rc = t_try_open(uri, SHMRING_PRODUCER | SHMRING_CONSUMER, NULL);
	cr_assert_eq(rc, -ETIMEDOUT, "open with roles while the byte is held: %s",
		     shmring_strerror(rc));
	/* a hang check, not a timing claim */
	cr_assert_lt(t_now_ns() - t0, CTL_LOCK_TIMEOUT_NS + 8000 * MS, "waited past the bound");
	cr_assert_eq(t_try_open(uri, 0, NULL), 0, "a role-less open takes no control lock");
	send_key(p, 64, 7);
	recv_key(q, 64, 7);
	cr_assert_eq(shmring_close(q), 0, "close gives up waiting, and succeeds");

	atomic_store(&b->go, 1);
	cr_assert_eq(t_wait(h), 0);
	q = t_open_opts(uri, SHMRING_CONSUMER, NULL);
	struct shmring_stats s = t_stats(q);
	cr_assert_eq(s.consumers, 1, "the closed consumer is gone");
	cr_assert_eq(s.takeovers, 1, "its role was taken over: %llu",
		     (unsigned long long)s.takeovers);
	send_key(p, 64, 8);
	recv_key(q, 64, 8);
	shmring_close(p);
	shmring_close(q);
	box_free(b);
	cr_assert_eq(shmring_unlink(uri), 0);
}

/* Garbage in the control block's first words (busy, the reserved bytes,
 * the SPSC owners), as a hostile peer writes it. */
static void scribble_ctl(uint8_t *ctl, uint64_t *rnd)
{
	static const uint32_t v[] = { 0, 1, 2, 3, 0x10, 0x30, 0x40, 0x80, 0xffffffffu,
				      0x3ffffff0u, 0x40000000u, 0x80000000u, 0xc0000001u, 130,
				      131, 1000 };
	for (unsigned off = 0; off < 72; off += 4) {
		uint64_t r = t_rand(rnd);
		uint32_t w = r % 3 == 0 ? v[(r >> 8) % (sizeof(v) / sizeof(v[0]))]
			   : r % 3 == 1 ? (uint32_t)getpid() + (uint32_t)((r >> 8) % 64)
					: (uint32_t)(r >> 16);
		__atomic_store_n((uint32_t *)(void *)(ctl + off), w, __ATOMIC_RELAXED);
	}
}

static int scribbler(void *arg)
{
	struct box *b = arg;
	child_guard();
	int fd;
	struct ctl_shared *c = ctl_map(b->uri, &fd);
	if (!c)
		return 1;
	uint64_t rnd = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	while (!atomic_load(&b->go)) {
		scribble_ctl((uint8_t *)c, &rnd);
		sched_yield();
	}
	return 0;
}

/* A legitimate process: opens with a role, moves a message, closes, for
 * as long as it is asked.  Any result but 0, -EBUSY, -EPROTO, -ETIMEDOUT
 * (or -EAGAIN from the data calls) is a failure. */
static int legit(void *arg)
{
	struct box *b = arg;
	child_guard();
	static const int roles[] = { SHMRING_PRODUCER, SHMRING_CONSUMER,
				     SHMRING_PRODUCER | SHMRING_CONSUMER };
	for (unsigned i = 0; !atomic_load(&b->go) || i < 20; i++) {
		struct shmring *r = NULL;
		int rc = shmring_open(b->uri, roles[i % 3], NULL, &r);
		if (rc == -EBUSY || rc == -EPROTO || rc == -ETIMEDOUT)
			continue;
		if (rc != 0) {
			b->rc[1] = rc;
			return 2;
		}
		uint8_t buf[64] = { 0 };
		if (roles[i % 3] & SHMRING_PRODUCER)
			rc = shmring_send(r, buf, sizeof(buf), 0);
		if ((rc == 0 || rc == -EAGAIN) && (roles[i % 3] & SHMRING_CONSUMER))
			rc = (int)shmring_recv(r, buf, sizeof(buf), 0);
		if (rc < 0 && rc != -EAGAIN && rc != -EPROTO) {
			b->rc[2] = rc;
			return 3;
		}
		if ((rc = shmring_close(r)) != 0) {
			b->rc[3] = rc;
			return 4;
		}
		atomic_fetch_add(&b->ready, 1);
	}
	return 0;
}

/* Before: glibc's robust mutex lived in these words, and a peer's eight
 * bytes (kind PI|robust, a lock word naming no thread) made the next
 * opener abort, or its list links steered a holder's write.  Now the
 * words are data: opens and closes by legitimate processes, with the
 * garbage written once and then continuously, end in 0, -EBUSY, -EPROTO
 * or -ETIMEDOUT, never in a signal. */
Test(shm, control_block_garbage_never_crashes, .timeout = 60)
{
	const char *uri = t_ring_uri("ctlgarb");
	make_ring(uri, 4096, 0);
	int fd;
	struct ctl_shared *c = ctl_map(uri, &fd);
	cr_assert_not_null(c);
	/* glibc's pthread_mutex_t: __lock at 0, __owner at 8, __kind at 16 */
	uint32_t *w = (uint32_t *)(void *)c;
	w[0] = 0x3ffffff0u;
	w[2] = 0x3ffffff0u;
	w[4] = 0x30;           /* PTHREAD_MUTEX_PI_ROBUST_NORMAL_NP */
	struct box *b = box_new(uri);
	atomic_store(&b->go, 1);
	int st = t_wait(t_spawn(legit, b));
	cr_assert_eq(st, 0, "a legitimate opener after 8 bytes of garbage: status %d (%s %s %s)",
		     st, shmring_strerror(b->rc[1]), shmring_strerror(b->rc[2]),
		     shmring_strerror(b->rc[3]));

	atomic_store(&b->go, 0);
	atomic_store(&b->ready, 0);
	pid_t s = t_spawn(scribbler, b);
	pid_t l1 = t_spawn(legit, b), l2 = t_spawn(legit, b);
	t_sleep_ms(1500);
	atomic_store(&b->go, 1);
	int s1 = t_wait(l1), s2 = t_wait(l2);
	cr_assert_eq(t_wait(s), 0);
	cr_assert(s1 == 0 && s2 == 0, "legitimate processes: status %d and %d (%s %s %s)", s1, s2,
		  shmring_strerror(b->rc[1]), shmring_strerror(b->rc[2]),
		  shmring_strerror(b->rc[3]));
	cr_log_info("%d open/close rounds completed under continuous garbage",
		    atomic_load(&b->ready));
	/* once the peer stops, the ring is whole again */
	memset(c, 0, 72);
	struct shmring *p = t_open_opts(uri, SHMRING_PRODUCER, NULL);
	struct shmring *q = t_open_opts(uri, SHMRING_CONSUMER, NULL);
	while (shmring_recv(q, (uint8_t[64]){ 0 }, 64, 0) >= 0)
		;
	send_key(p, 50, 3);
	recv_key(q, 50, 3);
	shmring_close(p);
	shmring_close(q);
	ctl_unmap(c, fd);
	box_free(b);
	cr_assert_eq(shmring_unlink(uri), 0);
}

/* Threads and the control lock: tests/test_mpmc.c (the suite that also
 * runs under ThreadSanitizer). */


/* ======================================================================= */
/* liveness and takeover                                                   */
/* ======================================================================= */

/* Open `oflags`, optionally send/acquire, report ready, wait for go. */
static int child_hold_role(void *arg)
{
	struct box *b = arg;
	child_guard();
	struct shmring *r = NULL;
	b->rc[0] = shmring_open(b->uri, (int)b->val[0], NULL, &r);
	if (b->rc[0] != 0) {
		atomic_store(&b->ready, -1);
		return 1;
	}
	if (b->val[1] > 0) {               /* producer: send val[1] messages */
		for (int64_t k = 0; k < b->val[1]; k++) {
			uint8_t buf[100];
			t_fill(buf, sizeof(buf), (uint64_t)k);
			if (shmring_send(r, buf, sizeof(buf), 0) != 0)
				return 2;
		}
	}
	if (b->val[2] > 0) {               /* consumer: acquire and keep */
		struct shmring_msg m;
		b->rc[1] = shmring_acquire(r, &m, 1000 * MS);
		if (b->rc[1] != 0)
			return 3;
	}
	atomic_store(&b->ready, 1);
	while (!atomic_load(&b->go))
		t_sleep_ms(1);
	shmring_close(r);
	return 0;
}

static pid_t spawn_holder(struct box *b, int oflags, int64_t sends, int64_t acquire)
{
	b->val[0] = oflags;
	b->val[1] = sends;
	b->val[2] = acquire;
	atomic_store(&b->ready, 0);
	atomic_store(&b->go, 0);
	pid_t pid = t_spawn(child_hold_role, b);
	cr_assert(t_wait_flag(&b->ready, 1, 10000), "holder not ready: open %s",
		  shmring_strerror(b->rc[0]));
	return pid;
}

Test(shm, killed_producer_is_taken_over, .timeout = 20)
{
	const char *uri = t_ring_uri("takeover");
	make_ring(uri, 4096, 0);
	struct box *b = box_new(uri);
	pid_t pid = spawn_holder(b, SHMRING_PRODUCER, 3, 0);
	int rc = t_try_open(uri, SHMRING_PRODUCER, NULL);
	cr_assert_eq(rc, -EBUSY, "while the holder lives: %s", shmring_strerror(rc));

	kill(pid, SIGKILL);
	cr_assert_eq(t_wait(pid), 128 + SIGKILL);
	struct shmring *p = NULL;
	rc = shmring_open(uri, SHMRING_PRODUCER, NULL, &p);
	cr_assert_eq(rc, 0, "producer after the holder was killed: %s", shmring_strerror(rc));
	struct shmring_stats s = t_stats(p);
	cr_assert_eq(s.takeovers, 1, "takeovers %llu", (unsigned long long)s.takeovers);
	cr_assert_eq(s.producers, 1);
	/* the new producer continues where the dead one stopped */
	send_key(p, 50, 99);
	struct shmring *q = t_open_opts(uri, SHMRING_CONSUMER, NULL);
	for (uint64_t k = 0; k < 3; k++)
		recv_key(q, 100, k);
	recv_key(q, 50, 99);
	cr_assert_eq(t_stats(q).takeovers, 1, "a fresh consumer is no takeover");
	shmring_close(p);
	shmring_close(q);
	box_free(b);
	cr_assert_eq(shmring_unlink(uri), 0);
}

Test(shm, killed_consumer_holding_message_is_redelivered, .timeout = 20)
{
	const char *uri = t_ring_uri("redeliver");
	make_ring(uri, 4096, 0);
	struct shmring *p = t_open_opts(uri, SHMRING_PRODUCER, NULL);
	send_key(p, 100, 0);
	send_key(p, 100, 1);
	struct box *b = box_new(uri);
	pid_t pid = spawn_holder(b, SHMRING_CONSUMER, 0, 1);
	kill(pid, SIGKILL);
	cr_assert_eq(t_wait(pid), 128 + SIGKILL);
	struct shmring *q = t_open_opts(uri, SHMRING_CONSUMER, NULL);
	struct shmring_stats s = t_stats(q);
	cr_assert_eq(s.takeovers, 1);
	cr_assert_eq(s.msgs_redelivered, 1, "redelivered %llu",
		     (unsigned long long)s.msgs_redelivered);
	recv_key(q, 100, 0);
	recv_key(q, 100, 1);
	shmring_close(q);
	shmring_close(p);
	box_free(b);
	cr_assert_eq(shmring_unlink(uri), 0);
}

Test(shm, stopped_producer_is_alive, .timeout = 20)
{
	const char *uri = t_ring_uri("stopped");
	make_ring(uri, 4096, 0);
	struct box *b = box_new(uri);
	pid_t pid = spawn_holder(b, SHMRING_PRODUCER, 0, 0);
	cr_assert_eq(kill(pid, SIGSTOP), 0);
	int wst;
	cr_assert_eq(waitpid(pid, &wst, WUNTRACED), pid);
	cr_assert(WIFSTOPPED(wst), "child stopped");

	int rc = t_try_open(uri, SHMRING_PRODUCER, NULL);
	cr_assert_eq(rc, -EBUSY, "a stopped holder is alive: %s", shmring_strerror(rc));
	struct shmring *mon = t_open_opts(uri, 0, NULL);
	struct shmring_stats s = t_stats(mon);
	cr_assert_eq(s.producers, 1);
	cr_assert_eq(s.takeovers, 0);

	cr_assert_eq(kill(pid, SIGCONT), 0);
	atomic_store(&b->go, 1);
	int st = t_wait(pid);
	cr_assert_eq(st, 0, "holder exit status %d", st);
	s = t_stats(mon);
	cr_assert_eq(s.producers, 0);
	struct shmring *p = t_open_opts(uri, SHMRING_PRODUCER, NULL);
	s = t_stats(p);
	cr_assert_eq(s.takeovers, 0, "a clean close is no takeover: %llu",
		     (unsigned long long)s.takeovers);
	shmring_close(p);
	shmring_close(mon);
	box_free(b);
	cr_assert_eq(shmring_unlink(uri), 0);
}

Test(shm, reused_pid_does_not_fake_liveness, .timeout = 20)
{
	const char *uri = t_ring_uri("pidreuse");
	make_ring(uri, 4096, 0);
	struct box *b = box_new(uri);
	pid_t pid = spawn_holder(b, SHMRING_PRODUCER | SHMRING_CONSUMER, 0, 0);
	kill(pid, SIGKILL);
	cr_assert_eq(t_wait(pid), 128 + SIGKILL);

	/* the dead participant's slot now names a live process: us */
	size_t size;
	uint8_t *base = map_seg(t_path_of(uri), &size);
	struct ctl_shared *ctl = (struct ctl_shared *)(base + SEG_CTL_OFF);
	int found = 0;
	for (unsigned i = 0; i < CTL_MAX_PARTS; i++) {
		struct ctl_part *pt = &ctl->parts[i];
		if (atomic_load(&pt->state) == PART_ACTIVE && pt->pid == pid) {
			pt->pid = (int32_t)getpid();
			found++;
		}
	}
	cr_assert_eq(found, 1, "the dead holder's slot (pid %d) is in the table", (int)pid);
	cr_assert_neq(ctl->prod_owner, 0, "the dead holder still owns the producer role");

	struct shmring *p = NULL;
	int rc = shmring_open(uri, SHMRING_PRODUCER, NULL, &p);
	cr_assert_eq(rc, 0, "producer role behind a reused pid: %s", shmring_strerror(rc));
	struct shmring *q = NULL;
	rc = shmring_open(uri, SHMRING_CONSUMER, NULL, &q);
	cr_assert_eq(rc, 0, "consumer role behind a reused pid: %s", shmring_strerror(rc));
	struct shmring_stats s = t_stats(p);
	cr_assert_eq(s.takeovers, 2, "takeovers %llu", (unsigned long long)s.takeovers);
	cr_assert_eq(s.producers, 1);
	cr_assert_eq(s.consumers, 1);
	send_key(p, 10, 1);
	recv_key(q, 10, 1);
	shmring_close(p);
	shmring_close(q);
	munmap(base, size);
	box_free(b);
	cr_assert_eq(shmring_unlink(uri), 0);
}

/* A producer that forks, then dies: the grandchild (which inherited the
 * handle) must not keep the dead producer's role alive. */
static int child_producer_forks(void *arg)
{
	struct box *b = arg;
	child_guard();
	struct shmring *r = NULL;
	b->rc[0] = shmring_open(b->uri, SHMRING_PRODUCER, NULL, &r);
	if (b->rc[0] != 0)
		return 1;
	fflush(NULL);
	pid_t g = fork();
	if (g < 0)
		return 2;
	if (g == 0) {
		alarm(20);
		/* the inherited handle has no role here */
		b->rc[1] = shmring_send(r, "x", 1, 0);
		atomic_store(&b->ready, 1);
		while (!atomic_load(&b->go))
			t_sleep_ms(1);
		_exit(0);
	}
	b->val[0] = g;
	while (!atomic_load(&b->ready))
		t_sleep_ms(1);
	raise(SIGKILL);
	return 3;
}

Test(shm, forked_child_does_not_keep_dead_parents_role, .timeout = 20)
{
	const char *uri = t_ring_uri("forkrole");
	make_ring(uri, 4096, 0);
	struct box *b = box_new(uri);
	int st = t_wait(t_spawn(child_producer_forks, b));
	cr_assert_eq(st, 128 + SIGKILL, "producer status %d (open %s)", st,
		     shmring_strerror(b->rc[0]));
	pid_t g = (pid_t)b->val[0];
	cr_assert_gt(g, 0);
	cr_assert_eq(kill(g, 0), 0, "the grandchild is alive");
	cr_assert_eq(b->rc[1], -EPERM, "send on a handle inherited through fork: %s",
		     shmring_strerror(b->rc[1]));
	struct shmring *p = NULL;
	int rc = shmring_open(uri, SHMRING_PRODUCER, NULL, &p);
	atomic_store(&b->go, 1);
	if (rc == 0)
		shmring_close(p);
	cr_assert_eq(rc, 0, "producer role while a forked child of the dead holder lives: %s",
		     shmring_strerror(rc));
	box_free(b);
	cr_assert_eq(shmring_unlink(uri), 0);
}

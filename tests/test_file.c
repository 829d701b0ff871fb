/* SPDX-License-Identifier: MIT */
/*
 * file: rings (mmapfile/): restart, corruption of a closed file, hostile
 * paths, flush, and the recovery after a reboot (simulated: a different
 * boot id and a control-lock holder that died with the old boot).
 * The crash-consistency loop (every process killed, 300 rounds) is in
 * tests/test_crash.c.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "fs/pathat.h"
#include "mmapfile/mmapfile.h"
#include "ring/spsc.h"
#include "shm/segment.h"
#include "shm/ctl.h"

static char dir[128];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/shmring-test-file-%d", (int)getpid());
	mkdir(dir, 0755);
}

static void teardown(void)
{
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	(void)system(cmd);
}

TestSuite(file, .init = setup, .fini = teardown);

static const char *fpath(const char *name)
{
	static char b[4][256];
	static int k;
	char *p = b[k++ % 4];
	snprintf(p, 256, "%s/%s", dir, name);
	return p;
}

static const char *furi(const char *name)
{
	static char b[4][300];
	static int k;
	char *p = b[k++ % 4];
	snprintf(p, 300, "file:%s", fpath(name));
	return p;
}

static void put(struct shmring *p, uint64_t seq, uint32_t len)
{
	uint8_t buf[2048];
	memcpy(buf, &seq, 8);
	t_fill(buf + 8, len - 8, seq);
	int rc = shmring_send(p, buf, len, 0);
	cr_assert_eq(rc, 0, "send %lu: %s", (unsigned long)seq, shmring_strerror(rc));
}

static uint32_t len_of(uint64_t seq)
{
	return 8 + (uint32_t)(seq * 37 % 600);
}

static void get(struct shmring *c, uint64_t seq)
{
	uint8_t buf[2048];
	ssize_t n = shmring_recv(c, buf, sizeof(buf), 0);
	cr_assert_eq(n, (ssize_t)len_of(seq), "recv %lu: %zd (%s)", (unsigned long)seq, n,
		     n < 0 ? shmring_strerror((int)n) : "");
	uint64_t got;
	memcpy(&got, buf, 8);
	cr_assert_eq(got, seq);
	cr_assert(t_check(buf + 8, (size_t)n - 8, seq), "message %lu torn", (unsigned long)seq);
}

static int restart_reader(void *arg)
{
	const char *uri = arg;
	struct shmring *c = NULL;
	if (shmring_open(uri, SHMRING_CONSUMER, NULL, &c))
		return 10;
	uint8_t buf[2048];
	for (uint64_t seq = 0; seq < 1000; seq++) {
		ssize_t n = shmring_recv(c, buf, sizeof(buf), 0);
		uint64_t got;
		if (n != (ssize_t)len_of(seq))
			return 11;
		memcpy(&got, buf, 8);
		if (got != seq || !t_check(buf + 8, (size_t)n - 8, seq))
			return 12;
	}
	if (shmring_recv(c, buf, sizeof(buf), 0) != -EAGAIN)
		return 13;      /* nothing twice */
	shmring_close(c);
	return 0;
}

Test(file, restart_delivers_everything_once_in_order, .timeout = 30)
{
	const char *uri = furi("restart.ring");
	struct shmring_opts o = { .capacity = 1 << 20, .max_msg = 2000 };
	struct shmring *p = NULL;
	cr_assert_eq(shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL | SHMRING_PRODUCER, &o, &p), 0);
	for (uint64_t seq = 0; seq < 1000; seq++)
		put(p, seq, len_of(seq));
	cr_assert_eq(shmring_flush(p), 0);
	cr_assert_eq(shmring_close(p), 0);
	/* nobody maps it now; a new process reads it all back */
	cr_assert_eq(t_wait(t_spawn(restart_reader, (void *)uri)), 0);
	/* and a third one finds it drained: releases are persistent too */
	struct shmring *c = t_open(uri, SHMRING_CONSUMER);
	uint8_t buf[16];
	cr_assert_eq(shmring_recv(c, buf, sizeof(buf), 0), -EAGAIN);
	struct shmring_stats st;
	cr_assert_eq(shmring_stats(c, &st), 0);
	cr_assert_eq(st.msgs_sent, 1000);
	cr_assert_eq(st.msgs_recv, 1000);
	shmring_close(c);
	cr_assert_eq(shmring_unlink(uri), 0);
	cr_assert_eq(access(fpath("restart.ring"), F_OK), -1, "unlink removed the file");
}

Test(file, flush_advances_the_durable_index, .timeout = 10)
{
	const char *uri = furi("flush.ring");
	struct shmring_opts o = { .capacity = 65536 };
	struct shmring *p = NULL, *c = NULL, *m = NULL;
	cr_assert_eq(shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL | SHMRING_PRODUCER, &o, &p), 0);
	cr_assert_eq(shmring_open(uri, SHMRING_CONSUMER, NULL, &c), 0);
	cr_assert_eq(shmring_open(uri, 0, NULL, &m), 0);
	int fd = open(fpath("flush.ring"), O_RDWR);
	cr_assert_geq(fd, 0);
	struct ctl_shared *ctl = mmap(NULL, SEG_RING_OFF - SEG_CTL_OFF, PROT_READ, MAP_SHARED,
				      fd, SEG_CTL_OFF);
	cr_assert_neq(ctl, MAP_FAILED);
	for (uint64_t seq = 0; seq < 10; seq++)
		put(p, seq, len_of(seq));
	cr_assert_eq(atomic_load(&ctl->persist.durable_tail), 0, "nothing durable before flush");
	struct shmring_msg msg;
	cr_assert_eq(shmring_reserve(p, 16, &msg, 0), 0);
	cr_assert_eq(shmring_flush(p), -EINPROGRESS, "a reservation is open");
	cr_assert_eq(shmring_commit(p, &msg), 0);
	cr_assert_eq(shmring_flush(p), 0);
	uint64_t dur = atomic_load(&ctl->persist.durable_tail);
	uint64_t want = 0;
	for (uint64_t seq = 0; seq < 10; seq++)
		want += spsc_rec_size(len_of(seq)) + spsc_skip(want & 65535, len_of(seq));
	cr_assert_geq(dur, want, "durable_tail %lu covers the records", (unsigned long)dur);
	cr_assert_eq(shmring_flush(c), 0);
	cr_assert_eq(shmring_flush(m), 0);
	cr_assert_eq(shmring_flush(NULL), -EINVAL);
	munmap(ctl, SEG_RING_OFF - SEG_CTL_OFF);
	close(fd);
	shmring_close(p);
	shmring_close(c);
	shmring_close(m);
	shmring_unlink(uri);
	/* on shared memory flush has nothing to do */
	const char *s = t_uri("flushshm");
	struct shmring *x = t_create(s, 65536, 0);
	cr_assert_eq(shmring_flush(x), 0);
	shmring_close(x);
	shmring_unlink(s);
}

/* A reboot, simulated on a closed file: another boot id, a holder of the
 * control lock that died inside its section with the old boot (`busy`
 * set), a role of the old boot, and records published after the last
 * flush. */
Test(file, reboot_cuts_back_to_the_flushed_records, .timeout = 30)
{
	const char *uri = furi("reboot.ring");
	struct shmring_opts o = { .capacity = 65536, .max_msg = 2000 };
	struct shmring *p = NULL;
	cr_assert_eq(shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL | SHMRING_PRODUCER, &o, &p), 0);
	for (uint64_t seq = 0; seq < 20; seq++)
		put(p, seq, len_of(seq));
	cr_assert_eq(shmring_flush(p), 0);
	for (uint64_t seq = 20; seq < 30; seq++)
		put(p, seq, len_of(seq));     /* never flushed */
	shmring_close(p);

	t_fake_reboot(fpath("reboot.ring"));

	struct shmring *c = NULL;
	uint64_t t0 = t_now_ns();
	int rc = shmring_open(uri, SHMRING_CONSUMER | SHMRING_PRODUCER, NULL, &c);
	cr_assert_eq(rc, 0, "open after the reboot: %s", shmring_strerror(rc));
	cr_assert_lt(t_now_ns() - t0, 1000000000ull, "no wait on the old boot's lock");
	for (uint64_t seq = 0; seq < 20; seq++)
		get(c, seq);
	uint8_t buf[2048];
	cr_assert_eq(shmring_recv(c, buf, sizeof(buf), 0), -EAGAIN,
		     "records after the last flush are not trusted after a reboot");
	struct shmring_stats st;
	cr_assert_eq(shmring_stats(c, &st), 0);
	cr_assert_eq(st.msgs_dropped, 10, "the cut records are counted");
	cr_assert_eq(st.repairs, 1);
	/* and the ring works on */
	put(c, 100, len_of(100));
	get(c, 100);
	shmring_close(c);
	/* the next opener, same boot, changes nothing */
	cr_assert_eq(shmring_open(uri, SHMRING_CONSUMER, NULL, &c), 0);
	cr_assert_eq(shmring_stats(c, &st), 0);
	cr_assert_eq(st.repairs, 1);
	shmring_close(c);
	shmring_unlink(uri);
}

static int open_as_nobody(void *arg)
{
	struct passwd *pw = getpwnam("nobody");
	if (!pw || setgroups(0, NULL) || setgid(pw->pw_gid) || setuid(pw->pw_uid))
		return 100;
	struct shmring *r = NULL;
	int rc = shmring_open(arg, SHMRING_CONSUMER, NULL, &r);
	if (rc == 0)
		shmring_close(r);
	return -rc;
}

Test(file, hostile_paths_get_clear_errors, .timeout = 30)
{
	struct shmring *r = NULL;
	struct shmring_opts o = { .capacity = 65536 };
	const char *good = furi("good.ring");
	cr_assert_eq(shmring_open(good, SHMRING_CREATE | SHMRING_EXCL, &o, &r), 0);
	shmring_close(r);
	struct stat st;
	cr_assert_eq(stat(fpath("good.ring"), &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600, "default mode 0600");
	chmod(dir, 0755);

	/* another user cannot open a 0600 ring */
	int ex = t_wait(t_spawn(open_as_nobody, (void *)good));
	cr_assert_eq(ex, EACCES, "nobody: exit %d", ex);

	/* a ring whose file changed owner is another user's: refused; and
	 * with that user trusted, its header (made by us) disagrees */
	const char *chowned = furi("chowned.ring");
	cr_assert_eq(shmring_open(chowned, SHMRING_CREATE | SHMRING_EXCL, &o, &r), 0);
	shmring_close(r);
	cr_assert_eq(chown(fpath("chowned.ring"), 65534, 65534), 0);
	cr_assert_eq(shmring_open(chowned, SHMRING_CONSUMER, NULL, &r), -EACCES);
	cr_assert_eq(shmring_trust_owner(65534), 0);
	cr_assert_eq(shmring_open(chowned, SHMRING_CONSUMER, NULL, &r), -EPROTO);

	/* a directory */
	mkdir(fpath("adir"), 0700);
	int rc = shmring_open(furi("adir"), SHMRING_CONSUMER, NULL, &r);
	cr_assert(rc == -EISDIR || rc == -EPROTO, "directory: %s", shmring_strerror(rc));
	rc = shmring_open(furi("adir"), SHMRING_CREATE, &o, &r);
	cr_assert(rc == -EISDIR || rc == -EEXIST || rc == -EPROTO, "directory: %s",
		  shmring_strerror(rc));

	/* a symlink to a ring, and to something else */
	cr_assert_eq(symlink(fpath("good.ring"), fpath("link.ring")), 0);
	cr_assert_eq(symlink("/etc/passwd", fpath("passwd.ring")), 0);
	cr_assert_neq(shmring_open(furi("link.ring"), SHMRING_CONSUMER, NULL, &r), 0);
	rc = shmring_open(furi("passwd.ring"), SHMRING_CREATE | SHMRING_PRODUCER, &o, &r);
	cr_assert_neq(rc, 0, "a symlink to /etc/passwd");
	cr_assert_eq(shmring_unlink(furi("passwd.ring")), -EACCES, "not followed by unlink");

	/* a file that is not a ring, untouched by unlink */
	FILE *f = fopen(fpath("notes.txt"), "w");
	cr_assert_not_null(f);
	fprintf(f, "not a ring at all, but long enough to hold a header ........................"
		   "....................................................................\n");
	fclose(f);
	cr_assert_eq(shmring_open(furi("notes.txt"), SHMRING_CONSUMER, NULL, &r), -EPROTO);
	cr_assert_eq(shmring_unlink(furi("notes.txt")), -EPROTO);
	cr_assert_eq(access(fpath("notes.txt"), F_OK), 0);

	/* truncated */
	const char *trunc = furi("trunc.ring");
	cr_assert_eq(shmring_open(trunc, SHMRING_CREATE | SHMRING_EXCL, &o, &r), 0);
	shmring_close(r);
	cr_assert_eq(truncate(fpath("trunc.ring"), 8192), 0);
	cr_assert_eq(shmring_open(trunc, SHMRING_CONSUMER, NULL, &r), -EPROTO);

	/* another layout version */
	const char *ver = furi("version.ring");
	cr_assert_eq(shmring_open(ver, SHMRING_CREATE | SHMRING_EXCL, &o, &r), 0);
	shmring_close(r);
	int vfd = open(fpath("version.ring"), O_RDWR);
	uint32_t v2 = SEG_VERSION + 1;
	cr_assert_eq(pwrite(vfd, &v2, 4, offsetof(struct seg_hdr, version)), 4);
	close(vfd);
	cr_assert_eq(shmring_open(ver, SHMRING_CONSUMER, NULL, &r), -EPROTO);
	cr_assert_eq(shmring_open(ver, 0, NULL, &r), -EPROTO);

	/* a missing directory, an empty path */
	cr_assert_eq(shmring_open("file:/nonexistent-dir/x.ring", SHMRING_CREATE, &o, &r), -ENOENT);
	cr_assert_eq(shmring_open("file:", SHMRING_CREATE, &o, &r), -EINVAL);
	shmring_unlink(good);
	shmring_unlink(chowned);
}

/* ---- removal by name ---------------------------------------------------- */

/* Others may rename files in a world-writable directory without the sticky
 * bit: shmring_unlink refuses to remove a ring's name there, and a name
 * reached through a symlinked directory. */
static void make_closed_ring(const char *uri)
{
	struct shmring *r = NULL;
	struct shmring_opts o = { .capacity = 65536 };
	cr_assert_eq(shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL, &o, &r), 0, "create %s", uri);
	shmring_close(r);
}

Test(file, unlink_refuses_directories_others_can_rename_in, .timeout = 30)
{
	const char *uri = furi("shared.ring");
	make_closed_ring(uri);
	cr_assert_eq(chmod(dir, 0777), 0);
	int rc = shmring_unlink(uri);
	chmod(dir, 0755);
	cr_assert_eq(rc, -EACCES, "world-writable, not sticky: %s", shmring_strerror(rc));
	cr_assert_eq(access(fpath("shared.ring"), F_OK), 0, "the ring is still there");
	cr_assert_eq(chmod(dir, 01777), 0);
	rc = shmring_unlink(uri);
	chmod(dir, 0755);
	cr_assert_eq(rc, 0, "sticky: %s", shmring_strerror(rc));

	char link[160], luri[200];
	snprintf(link, sizeof(link), "%s.lnk", dir);
	make_closed_ring(uri);
	(void)unlink(link);
	cr_assert_eq(symlink(dir, link), 0);
	snprintf(luri, sizeof(luri), "file:%s/shared.ring", link);
	rc = shmring_unlink(luri);
	unlink(link);
	cr_assert_eq(rc, -EACCES, "through a symlinked directory: %s", shmring_strerror(rc));
	cr_assert_eq(shmring_unlink(uri), 0);
}

/* The name goes only if it still refers to the file that was checked: a
 * file renamed over it meanwhile stays. */
Test(file, unlink_removes_only_the_file_it_checked, .timeout = 30)
{
	const char *name;
	int fa = open(fpath("a"), O_CREAT | O_EXCL | O_WRONLY, 0600);
	int fb = open(fpath("b"), O_CREAT | O_EXCL | O_WRONLY, 0600);
	cr_assert(fa >= 0 && fb >= 0);
	struct stat was;
	cr_assert_eq(fstat(fa, &was), 0);
	int dfd = pathat_dir(fpath("a"), &name, true);
	cr_assert_geq(dfd, 0, "%s", strerror(-dfd));
	cr_assert_str_eq(name, "a");
	cr_assert_eq(rename(fpath("b"), fpath("a")), 0);   /* the swap */
	cr_assert_eq(pathat_unlink_same(dfd, name, &was), -ESTALE);
	struct stat now;
	cr_assert_eq(stat(fpath("a"), &now), 0, "the replacement is still there");
	cr_assert_eq(fstat(fb, &was), 0);
	cr_assert_eq(now.st_ino, was.st_ino);
	cr_assert_eq(pathat_unlink_same(dfd, name, &was), 0, "the file checked goes");
	cr_assert_eq(access(fpath("a"), F_OK), -1);
	close(fa);
	close(fb);
	close(dfd);

	/* the directory checks */
	cr_assert_eq(chmod(dir, 0777), 0);
	int strict = pathat_dir(fpath("a"), &name, true);
	int lax = pathat_dir(fpath("a"), &name, false);
	chmod(dir, 0755);
	cr_assert_eq(strict, -EACCES);
	cr_assert_geq(lax, 0);
	close(lax);
	cr_assert_eq(pathat_dir("/tmp/", &name, true), -EISDIR);
	dfd = pathat_dir("relative-name", &name, true);
	cr_assert_geq(dfd, 0, "a bare name is in the working directory");
	cr_assert_str_eq(name, "relative-name");
	close(dfd);
}

/* ---- corruption: 1000 variants of a closed ring file ------------------- */

#define CORRUPT_CAP 16384u
#define CORRUPT_MSGS 40

struct variant { unsigned flips; uint64_t off[8]; };

static int drain_variant(void *arg)
{
	const char *uri = arg;
	struct shmring *c = NULL;
	int rc = shmring_open(uri, SHMRING_CONSUMER, NULL, &c);
	if (rc < 0)
		return 0;       /* refused cleanly */
	uint8_t buf[4096];
	for (int i = 0; i < 4 * CORRUPT_MSGS; i++) {   /* bounded, whatever it says */
		ssize_t n = shmring_recv(c, buf, sizeof(buf), 0);
		if (n == -EAGAIN || n == -EPROTO || n == -EPIPE || n == -EMSGSIZE)
			break;
		if (n < 0)
			return 20;
		if (n > 2000)
			return 21;      /* longer than max_msg: must never happen */
	}
	shmring_close(c);
	return 0;
}

Test(file, corrupted_file_is_refused_or_read_safely, .timeout = 240)
{
	const char *orig = fpath("orig.ring");
	struct shmring_opts o = { .capacity = CORRUPT_CAP, .max_msg = 2000 };
	struct shmring *p = NULL;
	char ouri[300];
	snprintf(ouri, sizeof(ouri), "file:%s", orig);
	cr_assert_eq(shmring_open(ouri, SHMRING_CREATE | SHMRING_EXCL | SHMRING_PRODUCER, &o, &p), 0);
	for (uint64_t seq = 0; seq < CORRUPT_MSGS; seq++)
		put(p, seq, len_of(seq) % 300 + 8);
	shmring_close(p);
	struct stat st;
	cr_assert_eq(stat(orig, &st), 0);
	size_t size = (size_t)st.st_size;
	uint8_t *img = malloc(size);
	int fd = open(orig, O_RDONLY);
	cr_assert_eq(read(fd, img, size), (ssize_t)size);
	close(fd);

	uint64_t rnd = 99;
	unsigned refused = 0, intact = 0;
	const char *vpath = fpath("variant.ring");
	char vuri[300];
	snprintf(vuri, sizeof(vuri), "file:%s", vpath);
	for (int v = 0; v < 1000; v++) {
		uint8_t *copy = malloc(size);
		memcpy(copy, img, size);
		unsigned flips = 1 + (unsigned)(t_rand(&rnd) % 8);
		bool data_only = true;
		for (unsigned k = 0; k < flips; k++) {
			/* half in the header, control block and ring state, half in
			 * the records */
			uint64_t off = t_rand(&rnd) & 1 ? t_rand(&rnd) % SEG_DATA_OFF
				       : SEG_DATA_OFF + t_rand(&rnd) % 4096;
			copy[off] ^= (uint8_t)(1u << (t_rand(&rnd) % 8));
			data_only &= off >= SEG_DATA_OFF;
		}
		unlink(vpath);
		fd = open(vpath, O_CREAT | O_EXCL | O_WRONLY, 0600);
		cr_assert_geq(fd, 0);
		cr_assert_eq(write(fd, copy, size), (ssize_t)size);
		close(fd);
		free(copy);
		/* in a child: a crash is a signal, not our own death */
		int ex = t_wait(t_spawn(drain_variant, vuri));
		cr_assert_eq(ex, 0, "variant %d (%u flips): exit %d", v, flips, ex);
		struct shmring *c = NULL;
		if (shmring_open(vuri, SHMRING_CONSUMER, NULL, &c) < 0)
			refused++;
		else {
			intact++;
			shmring_close(c);
		}
		(void)data_only;
	}
	cr_log_info("corruption: 1000 variants, %u refused at open, %u opened and drained safely",
		    refused, intact);
	free(img);
}

/* Several processes create the same file: ring at once: one creates, the
 * others open what it made, and all agree on one ring. */
struct race { const char *uri; _Atomic int ready, go; _Atomic uint64_t cap[8]; _Atomic int rc[8]; };

static int race_child(void *arg)
{
	struct race *r = arg;
	int me = atomic_fetch_add(&r->ready, 1);
	while (!atomic_load(&r->go))
		;
	struct shmring_opts o = { .capacity = 4096u << me };   /* each asks differently */
	struct shmring *h = NULL;
	int rc = shmring_open(r->uri, SHMRING_CREATE, &o, &h);
	atomic_store(&r->rc[me], rc);
	if (rc == 0) {
		struct shmring_stats st;
		if (shmring_stats(h, &st) == 0)
			atomic_store(&r->cap[me], st.capacity);
		shmring_close(h);
	}
	return 0;
}

Test(file, concurrent_creators_agree_on_one_ring, .timeout = 60)
{
	for (int round = 0; round < 20; round++) {
		struct race *r = t_shared(sizeof(*r));
		char name[64];
		snprintf(name, sizeof(name), "race-%d.ring", round);
		r->uri = furi(name);
		pid_t pids[8];
		for (int i = 0; i < 8; i++)
			pids[i] = t_spawn(race_child, r);
		while (atomic_load(&r->ready) < 8)
			;
		atomic_store(&r->go, 1);
		for (int i = 0; i < 8; i++)
			cr_assert_eq(t_wait(pids[i]), 0);
		for (int i = 0; i < 8; i++) {
			cr_assert_eq(atomic_load(&r->rc[i]), 0, "round %d creator %d: %s", round, i,
				     shmring_strerror(atomic_load(&r->rc[i])));
			cr_assert_eq(atomic_load(&r->cap[i]), atomic_load(&r->cap[0]),
				     "round %d: creators saw different rings", round);
		}
		cr_assert_eq(shmring_unlink(r->uri), 0);
		t_unshared(r, sizeof(*r));
	}
}

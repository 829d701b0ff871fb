/* SPDX-License-Identifier: MIT */
/*
 * Seed corpus for the fuzz targets: real rings of each kind and state,
 * made with the library, written in the fuzz input format (image.h).
 *
 *   mkcorpus DIR...     writes every seed into each DIR
 *
 * `make fuzz-corpus` runs it into tests/fuzz/corpus/<target>/.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shmring.h"
#include "image.h"

static char **dirs;
static int ndirs;

static void die(const char *what, int rc)
{
	fprintf(stderr, "mkcorpus: %s: %s\n", what, rc < 0 ? shmring_strerror(rc) : strerror(errno));
	exit(1);
}

static struct shmring *open_ring(const char *uri, int oflags, const struct shmring_opts *o)
{
	struct shmring *r = NULL;
	int rc = shmring_open(uri, oflags, o, &r);
	if (rc < 0)
		die(uri, rc);
	return r;
}

static void send_n(struct shmring *p, unsigned n, size_t len)
{
	static uint8_t msg[1024];
	for (unsigned i = 0; i < n; i++) {
		memset(msg, 'a' + (int)(i % 26), sizeof(msg));
		int rc = shmring_send(p, msg, len + i % 7, 0);
		if (rc < 0)
			die("send", rc);
	}
}

static void recv_n(struct shmring *q, unsigned n)
{
	static uint8_t buf[1024];
	for (unsigned i = 0; i < n; i++) {
		ssize_t rc = shmring_recv(q, buf, sizeof(buf), 0);
		if (rc < 0)
			die("recv", (int)rc);
	}
}

/* Read up to len bytes at off of the file into out; the count read. */
static size_t grab(int fd, uint64_t off, uint8_t *out, size_t len)
{
	ssize_t n = pread(fd, out, len, (off_t)off);
	return n > 0 ? (size_t)n : 0;
}

/* The file behind uri, as a fuzz input with this control byte and script. */
static void emit(const char *name, const char *path, uint8_t ctrl, const uint8_t ops[IMG_NOPS])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(path, 0);
	struct stat st;
	if (fstat(fd, &st) < 0)
		die(path, 0);
	size_t max = IMG_DATA + 65536;
	uint8_t *in = calloc(1, max);
	if (!in)
		die("calloc", 0);
	in[IMG_CTRL] = ctrl;
	memcpy(in + IMG_OPS, ops, IMG_NOPS);
	grab(fd, 0, in + IMG_HDR, IMG_HDR_LEN);
	grab(fd, SEG_CTL_OFF, in + IMG_CTL, IMG_CTL_LEN);
	grab(fd, SEG_RING_OFF, in + IMG_RING, IMG_RING_LEN);
	struct seg_hdr h;
	memcpy(&h, in + IMG_HDR, sizeof(h));
	uint64_t data_off = h.kind == SHMRING_MPMC ? SEG_MPMC_DATA_OFF : SEG_DATA_OFF;
	size_t n = IMG_DATA + grab(fd, data_off, in + IMG_DATA, max - IMG_DATA);
	close(fd);
	while (n > IMG_DATA && in[n - 1] == 0)       /* the target zero-fills the rest */
		n--;
	for (int d = 0; d < ndirs; d++) {
		char out[512];
		snprintf(out, sizeof(out), "%s/%s", dirs[d], name);
		FILE *f = fopen(out, "wb");
		if (!f || fwrite(in, 1, n, f) != n || fclose(f) != 0)
			die(out, 0);
	}
	free(in);
}

/* a script through every op (image.h, fuzz_ring.c) */
static const uint8_t script[IMG_NOPS] = {
	0x23, 0xf0, 0x01, 0x32, 0x14, 0x25, 0x06, 0x07,
	0x08, 0x10, 0x0a, 0x1b, 0x0c, 0x0d, 0xf9, 0x00,
};
static const uint8_t script_recv[IMG_NOPS] = {
	0xf0, 0xf0, 0x01, 0x72, 0x0a, 0x00, 0x06, 0x07,
	0xf0, 0x01, 0x32, 0x0d, 0x06, 0x00, 0x00, 0x00,
};

enum { ALL = IMG_ALL_ROLES | IMG_FIX_HDR };

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: mkcorpus DIR...\n");
		return 2;
	}
	dirs = argv + 1;
	ndirs = argc - 1;
	char name[64], uri[96], path[128];
	snprintf(name, sizeof(name), "mkcorpus-%d", (int)getpid());
	snprintf(uri, sizeof(uri), "shm:%s", name);
	snprintf(path, sizeof(path), "/dev/shm/%s", name);
	const struct shmring_opts spsc = { .kind = SHMRING_SPSC, .capacity = 4096, .max_msg = 600 };
	const struct shmring_opts mpmc = { .kind = SHMRING_MPMC, .capacity = 4096, .max_msg = 200 };
	struct shmring *c, *p, *q;

	/* SPSC: empty; with messages; wrapped round; left by dead holders */
	c = open_ring(uri, SHMRING_CREATE | SHMRING_EXCL, &spsc);
	emit("spsc-empty", path, ALL, script);
	p = open_ring(uri, SHMRING_PRODUCER, NULL);
	q = open_ring(uri, SHMRING_CONSUMER, NULL);
	send_n(p, 6, 40);
	recv_n(q, 2);
	emit("spsc-queued", path, ALL, script_recv);
	emit("spsc-queued-raw", path, IMG_ALL_ROLES, script_recv);
	for (unsigned i = 0; i < 60; i++) {
		send_n(p, 1, 300);
		recv_n(q, 1);
	}
	send_n(p, 3, 250);
	emit("spsc-wrapped", path, ALL | 2, script_recv);
	shmring_close(p);
	shmring_close(q);
	pid_t kid = fork();
	if (kid == 0) {
		p = open_ring(uri, SHMRING_PRODUCER | SHMRING_CONSUMER, NULL);
		struct shmring_msg m;
		send_n(p, 2, 500);
		if (shmring_acquire(p, &m, 0) < 0 || shmring_reserve(p, 100, &m, 0) < 0)
			_exit(1);
		_exit(0);             /* no close: a dead producer and consumer */
	}
	int status;
	if (waitpid(kid, &status, 0) != kid || status != 0)
		die("dead SPSC holder", -EIO);
	emit("spsc-dead-holders", path, ALL | IMG_SHM, script_recv);
	shmring_close(c);
	shmring_unlink(uri);

	/* MPMC: empty; with messages from two producers; dead holders */
	c = open_ring(uri, SHMRING_CREATE | SHMRING_EXCL, &mpmc);
	emit("mpmc-empty", path, ALL, script);
	p = open_ring(uri, SHMRING_PRODUCER, NULL);
	struct shmring *p2 = open_ring(uri, SHMRING_PRODUCER, NULL);
	q = open_ring(uri, SHMRING_CONSUMER, NULL);
	for (unsigned i = 0; i < 5; i++) {
		send_n(p, 3, 60);
		send_n(p2, 3, 120);
		recv_n(q, 6);
	}
	send_n(p, 4, 30);
	send_n(p2, 3, 190);
	recv_n(q, 2);
	emit("mpmc-queued", path, ALL, script_recv);
	emit("mpmc-queued-raw", path, IMG_ALL_ROLES | 1, script);
	shmring_close(p);
	shmring_close(p2);
	shmring_close(q);
	kid = fork();
	if (kid == 0) {
		p = open_ring(uri, SHMRING_PRODUCER | SHMRING_CONSUMER, NULL);
		struct shmring_msg m;
		if (shmring_acquire(p, &m, 0) < 0 || shmring_reserve(p, 100, &m, 0) < 0)
			_exit(1);
		_exit(0);
	}
	if (waitpid(kid, &status, 0) != kid || status != 0)
		die("dead MPMC holder", -EIO);
	emit("mpmc-dead-holders", path, ALL | IMG_SHM, script_recv);
	shmring_close(c);
	shmring_unlink(uri);

	/* file: the durable ring's own state (persist area) */
	char fpath[128], furi[160];
	snprintf(fpath, sizeof(fpath), "/tmp/%s.ring", name);
	snprintf(furi, sizeof(furi), "file:%s", fpath);
	p = open_ring(furi, SHMRING_CREATE | SHMRING_EXCL | SHMRING_PRODUCER | SHMRING_CONSUMER,
		      &spsc);
	send_n(p, 5, 100);
	recv_n(p, 1);
	if (shmring_flush(p) < 0)
		die("flush", -EIO);
	send_n(p, 2, 100);
	emit("file-spsc", fpath, ALL, script_recv);
	shmring_close(p);
	shmring_unlink(furi);
	return 0;
}

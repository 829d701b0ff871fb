/* SPDX-License-Identifier: MIT */
/*
 * What both fuzz targets need: a private directory, unique file names in
 * it, and the input written there as a ring file (image.h).  Everything a
 * run makes is removed after each input; the directory at exit.  The
 * directory is on tmpfs (/dev/shm): file: rings msync, which costs a disk
 * write per call elsewhere.
 */
#ifndef SHMRING_TESTS_FUZZ_COMMON_H
#define SHMRING_TESTS_FUZZ_COMMON_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"

static char fz_dir[64];
static unsigned long fz_seq;
/* The control plane's lock bytes (the first 64 of the control block) of a
 * freshly made ring, put back over the input's when
 * SHMRING_FUZZ_KEEP_CTL_LOCK is set. */
static uint8_t fz_lock_template[64];
static int fz_keep_lock;

static void fz_cleanup(void)
{
	if (fz_dir[0])
		(void)rmdir(fz_dir);
}

/* A ring's file, named after this process and input. */
struct fz_file {
	char name[64];      /* fz-PID-N */
	char path[160];     /* /dev/shm/NAME or DIR/NAME */
	char uri[176];      /* shm:NAME or file:PATH */
};

/* The target's own start-up, after the common one. */
static void fz_setup(void);

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(fz_dir, sizeof(fz_dir), "/dev/shm/shmring-fuzz-XXXXXX");
	if (!mkdtemp(fz_dir)) {
		perror("mkdtemp");
		abort();
	}
	atexit(fz_cleanup);
	const char *k = getenv("SHMRING_FUZZ_KEEP_CTL_LOCK");
	fz_keep_lock = k && *k && strcmp(k, "0") != 0;
	if (fz_keep_lock) {
		char uri[96];
		snprintf(uri, sizeof(uri), "file:%s/template", fz_dir);
		struct shmring *r = NULL;
		if (shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL, NULL, &r) < 0)
			abort();
		shmring_close(r);
		int fd = open(uri + 5, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || pread(fd, fz_lock_template, sizeof(fz_lock_template), SEG_CTL_OFF) !=
				      (ssize_t)sizeof(fz_lock_template))
			abort();
		close(fd);
		unlink(uri + 5);
	}
	fz_setup();
	return 0;
}

/* Write input in[0..n) as a fresh ring file.  0, or -1 (skip the input). */
static int fz_make(struct fz_file *f, const uint8_t *in, size_t n, int shm)
{
	snprintf(f->name, sizeof(f->name), "fz-%d-%lu", (int)getpid(), fz_seq++);
	if (shm) {
		snprintf(f->path, sizeof(f->path), "/dev/shm/%s", f->name);
		snprintf(f->uri, sizeof(f->uri), "shm:%s", f->name);
	} else {
		snprintf(f->path, sizeof(f->path), "%s/%s", fz_dir, f->name);
		snprintf(f->uri, sizeof(f->uri), "file:%s", f->path);
	}
	int fd = open(f->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	int rc = img_write(fd, in, n);
	struct stat st;
	if (rc == 0 && fz_keep_lock && fstat(fd, &st) == 0 &&
	    st.st_size >= (off_t)(SEG_CTL_OFF + sizeof(fz_lock_template)))
		(void)!pwrite(fd, fz_lock_template, sizeof(fz_lock_template), SEG_CTL_OFF);
	close(fd);
	if (rc < 0) {
		unlink(f->path);
		return -1;
	}
	return 0;
}

#endif

/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: a ring file of fuzzed bytes (tests/fuzz/image.h),
 * opened through shmring_open as no role, producer, consumer or both, and
 * driven by the input's op script through every call of the data path
 * with timeout 0.  Any return value is fine; what must never happen is a
 * crash, an out-of-bounds access (ASan), undefined behaviour (UBSan), a
 * hang, or a result outside the contract (checked below, abort()).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "shmring.h"
#include "common.h"

#define BUF 4096

static volatile uint8_t sink;

/* Touch every byte the library handed out: ASan checks each. */
static void touch_in(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint8_t x = 0;
	for (size_t i = 0; i < n; i++)
		x ^= b[i];
	sink = x;
}

static void drive(struct shmring *r, const uint8_t *ops, const struct shmring_caps *caps)
{
	static uint8_t buf[8][BUF];
	static const uint8_t msg[BUF];
	struct shmring_msg m;
	struct iovec iov[8];
	struct shmring_stats st;
	struct shmring_caps c;
	for (unsigned i = 0; i < IMG_NOPS; i++) {
		unsigned op = ops[i] & 15u, arg = ops[i] >> 4;
		size_t len = (size_t)arg * 37u;
		unsigned n = arg % 8u + 1u;
		ssize_t got;
		int rc;
		switch (op) {
		case 0:
		case 13:
			got = shmring_recv(r, buf[0], op == 0 ? len + 1 : 1, 0);
			if (got > (ssize_t)(op == 0 ? len + 1 : 1))
				abort();
			break;
		case 1:
		case 10:
			if (shmring_acquire(r, &m, 0) == 0) {
				if (m.len > caps->max_msg)
					abort();
				touch_in(m.data, m.len);
				if (op == 1)
					(void)shmring_release(r, &m);   /* 10: left to close */
			}
			break;
		case 2:
			for (unsigned k = 0; k < n; k++)
				iov[k] = (struct iovec){ buf[k], (size_t)(k + 1) * 100u };
			rc = shmring_recv_batch(r, iov, n, 0);
			if (rc > (int)n)
				abort();
			for (int k = 0; k < rc; k++)
				if (iov[k].iov_len > (size_t)(k + 1) * 100u)
					abort();
			break;
		case 3:
			(void)shmring_send(r, msg, len, 0);
			break;
		case 4:
		case 11:
			if (shmring_reserve(r, len, &m, 0) == 0) {
				if (m.len != len)
					abort();
				memset(m.data, 0x5a, m.len);
				m.len /= 2;
				if (op == 4)
					(void)shmring_commit(r, &m);    /* 11: left to close */
			}
			break;
		case 5:
			for (unsigned k = 0; k < n; k++)
				iov[k] = (struct iovec){ (void *)msg, (size_t)k * 16u };
			rc = shmring_send_batch(r, iov, n, 0);
			if (rc > (int)n)
				abort();
			break;
		case 6:
			(void)shmring_stats(r, &st);
			break;
		case 7:
			(void)shmring_caps(r, &c);
			break;
		case 8:
			(void)!shmring_flush(r);
			break;
		case 9:
			if (arg == 15)
				(void)shmring_shutdown(r);
			break;
		case 12:
			(void)shmring_set_spin(r, arg * 100u);
			break;
		default:
			break;
		}
	}
}

static void fz_setup(void)
{
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t ctrl = size > IMG_CTRL ? data[IMG_CTRL] : 0;
	uint8_t ops[IMG_NOPS] = { 0 };
	if (size > IMG_OPS)
		memcpy(ops, data + IMG_OPS, size - IMG_OPS < IMG_NOPS ? size - IMG_OPS : IMG_NOPS);
	struct fz_file f;
	if (fz_make(&f, data, size, ctrl & IMG_SHM) < 0)
		return 0;
	static const int roles[4] = { 0, SHMRING_PRODUCER, SHMRING_CONSUMER,
				      SHMRING_PRODUCER | SHMRING_CONSUMER };
	unsigned first = ctrl & IMG_ROLES, last = (ctrl & IMG_ALL_ROLES) ? first + 3 : first;
	for (unsigned k = first; k <= last; k++) {
		struct shmring *r = NULL;
		if (shmring_open(f.uri, roles[k % 4], NULL, &r) < 0)
			continue;
		struct shmring_caps caps;
		if (shmring_caps(r, &caps) == 0)
			drive(r, ops, &caps);
		(void)shmring_close(r);
	}
	unlink(f.path);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * The stream contract through <shmring/inline.h>, built against the
 * installed headers as C11 and as C++17 (tests/sh/install.sh): a producer
 * and a consumer process, N messages of varying length through send,
 * reserve/commit and batches, received by recv, acquire/release and
 * batches, busy-polling for the first half and blocking for the second.  Every message carries its
 * sequence number and bytes derived from it; both sides sum what they
 * moved.  Prints "ok N SUM" and exits 0, or says what went wrong and exits 1.
 * An open with another layout version must fail with -EPROTO.
 */
#include <shmring/inline.h>

#include <errno.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define N 20000u
#define MAX 400u

static size_t len_of(uint64_t seq)
{
	return 8 + (size_t)(seq * 7919u % (MAX - 7));
}

static unsigned char byte_of(uint64_t seq, size_t k)
{
	return (unsigned char)(seq * 31u + k);
}

/* the message seq: its number, then its bytes */
static void fill(unsigned char *p, uint64_t seq, size_t len)
{
	memcpy(p, &seq, 8);
	for (size_t k = 8; k < len; k++)
		p[k] = byte_of(seq, k);
}

static uint64_t sum_of(const unsigned char *p, size_t len)
{
	uint64_t s = 0;
	for (size_t k = 0; k < len; k++)
		s = s * 131u + p[k];
	return s;
}

/* 0 if p holds message seq */
static int check(const unsigned char *p, size_t len, uint64_t seq)
{
	uint64_t got;
	if (len != len_of(seq))
		return 1;
	memcpy(&got, p, 8);
	if (got != seq)
		return 1;
	for (size_t k = 8; k < len; k++)
		if (p[k] != byte_of(seq, k))
			return 1;
	return 0;
}

static int64_t timeout_for(uint64_t seq)
{
	return seq < N / 2 ? 0 : SHMRING_FOREVER;
}

#define BATCH 4u

/* Messages seq.. as one batch of up to BATCH, sent by a producer (filled
 * here) or received by a consumer (checked here): how many moved, or
 * -errno (-EBADMSG: a message received is wrong). */
static int move_batch(struct shmring *r, uint64_t seq, bool producer, uint64_t *sum)
{
	static unsigned char bufs[BATCH][MAX];
	struct iovec v[BATCH];
	unsigned k = N - seq < BATCH ? (unsigned)(N - seq) : BATCH;
	int rc;
	for (unsigned i = 0; i < k; i++) {
		if (producer)
			fill(bufs[i], seq + i, len_of(seq + i));
		v[i].iov_base = bufs[i];
		v[i].iov_len = producer ? len_of(seq + i) : MAX;
	}
	do
		rc = producer ? shmring_inl_send_batch(r, v, k, timeout_for(seq))
			      : shmring_inl_recv_batch(r, v, k, timeout_for(seq));
	while (rc == -EAGAIN);
	for (int i = 0; i < rc; i++) {
		if (!producer && check(bufs[i], v[i].iov_len, seq + (uint64_t)i))
			return -EBADMSG;
		*sum += sum_of(bufs[i], v[i].iov_len);
	}
	return rc == 0 ? -EPROTO : rc;
}

static int produce(struct shmring *r, uint64_t *sum)
{
	unsigned char buf[MAX];
	for (uint64_t seq = 0; seq < N; seq++) {
		size_t len = len_of(seq);
		int rc;
		if (seq % 8 == 4) {
			if ((rc = move_batch(r, seq, true, sum)) > 0) {
				seq += (uint64_t)rc - 1;
				continue;
			}
		} else if (seq % 2) {
			struct shmring_msg m;
			while ((rc = shmring_inl_reserve(r, len, &m, timeout_for(seq))) == -EAGAIN)
				;
			if (rc == 0) {
				fill((unsigned char *)m.data, seq, len);
				*sum += sum_of((const unsigned char *)m.data, len);
				rc = shmring_inl_commit(r, &m);
			}
		} else {
			fill(buf, seq, len);
			*sum += sum_of(buf, len);
			while ((rc = shmring_inl_send(r, buf, len, timeout_for(seq))) == -EAGAIN)
				;
		}
		if (rc < 0) {
			printf("producer: message %llu: %s\n", (unsigned long long)seq,
			       shmring_strerror(rc));
			return 1;
		}
	}
	return 0;
}

static int consume(struct shmring *r, uint64_t *sum)
{
	unsigned char buf[MAX];
	for (uint64_t seq = 0; seq < N; seq++) {
		const unsigned char *p;
		size_t len;
		struct shmring_msg m;
		int rc;
		if (seq % 5 == 1) {
			if ((rc = move_batch(r, seq, false, sum)) > 0) {
				seq += (uint64_t)rc - 1;
				continue;
			}
			if (rc == -EBADMSG) {
				printf("consumer: a message from %llu on is wrong\n",
				       (unsigned long long)seq);
				return 1;
			}
			printf("consumer: batch at %llu: %s\n", (unsigned long long)seq,
			       shmring_strerror(rc));
			return 1;
		}
		if (seq % 3) {
			ssize_t n;
			while ((n = shmring_inl_recv(r, buf, sizeof(buf), timeout_for(seq))) == -EAGAIN)
				;
			rc = n < 0 ? (int)n : 0;
			p = buf;
			len = n < 0 ? 0 : (size_t)n;
		} else {
			while ((rc = shmring_inl_acquire(r, &m, timeout_for(seq))) == -EAGAIN)
				;
			p = (const unsigned char *)m.data;
			len = m.len;
		}
		if (rc < 0) {
			printf("consumer: message %llu: %s\n", (unsigned long long)seq,
			       shmring_strerror(rc));
			return 1;
		}
		if (check(p, len, seq)) {
			printf("consumer: message %llu is wrong (%zu bytes)\n",
			       (unsigned long long)seq, len);
			return 1;
		}
		*sum += sum_of(p, len);
		if (!(seq % 3) && (rc = shmring_inl_release(r, &m)) < 0) {
			printf("consumer: release %llu: %s\n", (unsigned long long)seq,
			       shmring_strerror(rc));
			return 1;
		}
	}
	return 0;
}

int main(void)
{
	char uri[96];
	struct shmring *p, *c;
	struct shmring_opts o;
	uint64_t psum = 0, csum = 0;
	int rc, st;

	snprintf(uri, sizeof(uri), "shm:shmring-test-inline-%ld", (long)getpid());
	rc = shmring_open_layout(uri, SHMRING_CREATE | SHMRING_PRODUCER, NULL, &p,
				 SHMRING_LAYOUT_VERSION + 1);
	if (rc != -EPROTO || p != NULL) {
		printf("another layout version: %d, not -EPROTO\n", rc);
		return 1;
	}
	memset(&o, 0, sizeof(o));
	o.capacity = 16384;          /* many laps, full and empty waits */
	o.max_msg = MAX;
	rc = shmring_inl_open(uri, SHMRING_CREATE | SHMRING_EXCL | SHMRING_PRODUCER, &o, &p);
	if (rc < 0) {
		printf("open: %s\n", shmring_strerror(rc));
		return 1;
	}
	/* a pipe from the consumer: its checksum */
	int fds[2];
	if (pipe(fds) < 0)
		return 1;
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		rc = shmring_inl_open(uri, SHMRING_CONSUMER, NULL, &c);
		if (rc < 0) {
			printf("consumer open: %s\n", shmring_strerror(rc));
			_exit(1);
		}
		rc = consume(c, &csum);
		shmring_close(c);
		if (write(fds[1], &csum, sizeof(csum)) != (ssize_t)sizeof(csum))
			_exit(1);
		_exit(rc);
	}
	close(fds[1]);
	rc = produce(p, &psum);
	if (rc)
		kill(pid, SIGKILL);
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		rc = 1;
	if (!rc && (read(fds[0], &csum, sizeof(csum)) != (ssize_t)sizeof(csum) || csum != psum)) {
		printf("checksums differ: sent %llu, received %llu\n", (unsigned long long)psum,
		       (unsigned long long)csum);
		rc = 1;
	}
	shmring_close(p);
	shmring_unlink(uri);
	if (!rc)
		printf("ok %u %llu\n", N, (unsigned long long)psum);
	return rc;
}

/*
 * A durable work queue on a file: ring.  Kill either side with kill -9 at
 * any moment, start it again, and no job is lost or done twice (a job the
 * dead worker held is done again: acquire/release make that visible).
 *
 *   durable_queue file:/var/tmp/jobs.ring submit 1000   # enqueue jobs 0..999
 *                                  (blocks while the 1 MiB queue is full)
 *   durable_queue file:/var/tmp/jobs.ring work   # do them; prints a summary
 *
 * The worker acknowledges a job (shmring_release) only after it is done,
 * and flushes its position every 64 jobs, so a reboot costs at most 64
 * repeated jobs; the submitter flushes after every batch, so a submitted
 * job survives a reboot too.
 */
#include <errno.h>
#include <inttypes.h>
#include <shmring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct job { uint64_t id; char what[48]; };

static int submit(const char *uri, uint64_t n)
{
	struct shmring_opts o = { .capacity = 1 << 20, .max_msg = sizeof(struct job) };
	struct shmring *q;
	int rc = shmring_open(uri, SHMRING_CREATE | SHMRING_PRODUCER, &o, &q);
	if (rc < 0) {
		fprintf(stderr, "submit: open %s: %s\n", uri, shmring_strerror(rc));
		return 1;
	}
	for (uint64_t i = 0; i < n; i++) {
		struct job j = { .id = i };
		snprintf(j.what, sizeof(j.what), "resize image %" PRIu64, i);
		if ((rc = shmring_send(q, &j, sizeof(j), SHMRING_FOREVER)) < 0)
			break;
		if (i % 64 == 63 && (rc = shmring_flush(q)) < 0)
			break;
	}
	if (rc >= 0)
		rc = shmring_flush(q);
	shmring_close(q);
	if (rc < 0) {
		fprintf(stderr, "submit: %s\n", shmring_strerror(rc));
		return 1;
	}
	return 0;
}

static int work(const char *uri)
{
	struct shmring *q;
	int rc = shmring_open(uri, SHMRING_CONSUMER, NULL, &q);
	if (rc < 0) {
		fprintf(stderr, "work: open %s: %s\n", uri, shmring_strerror(rc));
		return 1;
	}
	uint64_t done = 0, sum = 0;
	struct shmring_msg m;
	/* a short timeout: an empty queue means the work is done */
	while ((rc = shmring_acquire(q, &m, 200 * 1000 * 1000)) == 0) {
		struct job j;
		if (m.len != sizeof(j)) {
			fprintf(stderr, "work: a message of %zu bytes is not a job\n", m.len);
			return 1;
		}
		memcpy(&j, m.data, sizeof(j));
		sum += j.id;                    /* "do" the job */
		done++;
		if ((rc = shmring_release(q, &m)) < 0)   /* acknowledged only now */
			break;
		if (done % 64 == 0 && (rc = shmring_flush(q)) < 0)
			break;
	}
	struct shmring_stats st;
	if (shmring_stats(q, &st) == 0)
		printf("worked %" PRIu64 " jobs (id sum %" PRIu64 "); redelivered after crashes: %"
		       PRIu64 "\n", done, sum, st.msgs_redelivered);
	int flushed = shmring_flush(q);
	shmring_close(q);
	return (rc == -ETIMEDOUT || rc == -EPIPE) && flushed == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[2], "submit") == 0)
		return submit(argv[1], argc > 3 ? strtoull(argv[3], NULL, 10) : 100);
	if (argc == 3 && strcmp(argv[2], "work") == 0)
		return work(argv[1]);
	fprintf(stderr, "usage: %s file:PATH submit [N] | work\n", argv[0]);
	return 2;
}

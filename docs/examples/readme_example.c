/* The README's example: a producer process sends, a consumer receives. */
#include <errno.h>
#include <shmring.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
	struct shmring *r;
	struct shmring_opts o = { .capacity = 1 << 20, .max_msg = 4096 };
	int rc = shmring_open("shm:demo", SHMRING_CREATE | SHMRING_CONSUMER, &o, &r);
	if (rc < 0) {
		fprintf(stderr, "open: %s\n", shmring_strerror(rc));
		return 1;
	}
	if (fork() == 0) {                       /* producer process */
		struct shmring *p;
		if (shmring_open("shm:demo", SHMRING_PRODUCER, NULL, &p) < 0)
			_exit(1);
		for (int i = 0; i < 3; i++) {
			char msg[32];
			snprintf(msg, sizeof(msg), "tick %d", i);
			if (shmring_send(p, msg, strlen(msg), SHMRING_FOREVER) < 0)
				_exit(1);
		}
		shmring_shutdown(p);             /* end of stream */
		shmring_close(p);
		_exit(0);
	}
	char buf[4096];
	ssize_t n;
	while ((n = shmring_recv(r, buf, sizeof(buf), SHMRING_FOREVER)) >= 0)
		printf("got: %.*s\n", (int)n, buf);
	wait(NULL);
	shmring_close(r);
	shmring_unlink("shm:demo");
	return n == -EPIPE ? 0 : 1;              /* -EPIPE: stream over, drained */
}

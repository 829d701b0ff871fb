/* SPDX-License-Identifier: MIT */
/* shmring-bridge: SOURCE DESTINATION [options]; see shmring-bridge(1). */
#include <signal.h>
#include <string.h>

#include "bridge.h"

static void on_signal(int sig)
{
	(void)sig;
	br_stop = 1;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--bench"))
		return br_bench(argc - 1, argv + 1);
	struct br_conf c;
	int rc = br_parse(&c, argc, argv);
	if (rc)
		return rc;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	rc = c.outbound ? br_outbound(&c) : br_inbound(&c);
	nats_Close();
	return rc;
}

/* SPDX-License-Identifier: MIT */
/*
 * The broadcast ring kind's handle (SHMRING_BCAST): one producer, up to
 * 64 subscribers (consumer handles), each receiving every message.  The
 * ring algorithm is ring/bcast.h; backend/bcast.c holds the data path,
 * waiting, eviction, liveness and the roles.
 */
#ifndef SHMRING_BACKEND_BCAST_H
#define SHMRING_BACKEND_BCAST_H

#include "seg.h"
#include "../ring/bcast.h"

struct bcast_handle {
	struct seg_handle seg;
	struct bcast_shared *sh;   /* ring state in the mapping */
	struct spsc_geom g;
	bool overwrite;            /* SHMRING_OVERWRITE, from the header */
	uint64_t stall_ns;         /* the ring's stall timeout */
	/* producer */
	struct bc_prod prod;
	uint64_t flushed;          /* file: ring, records before it are durable */
	uint64_t blocked_since;    /* CLOCK_MONOTONIC ns of the first failed room
				      check since the last success; 0: none */
	uint64_t live_checked;     /* last look at the holders' liveness */
	uint64_t relay_seq;        /* sequence number when we last left sleepers to
				      a subscriber ([K7]); 0: none outstanding */
	/* subscriber */
	struct bc_cons cons;
	bool overflow;             /* the next receive returns -EOVERFLOW */
	uint64_t stale_from, stale_to;   /* acquired, then lapped: releases of
					    these give -ESTALE */
};

BACKEND_HIDDEN extern const struct shmring_backend_ops bch_ops;

/* The copying calls, which api/ops.c makes directly on a handle whose
 * roles carry HANDLE_BCAST and the role (arguments checked there): the
 * ops' send and recv. */
BACKEND_HIDDEN int bch_send(struct shmring *r, const void *msg, size_t len, int64_t timeout_ns);
BACKEND_HIDDEN ssize_t bch_recv(struct shmring *r, void *buf, size_t cap, int64_t timeout_ns);

#endif

/* SPDX-License-Identifier: MIT */
/* MPMC rings behind the backend table (api/mpmc.c). */
#ifndef SHMRING_API_MPMC_H
#define SHMRING_API_MPMC_H

#include "../fallback/fallback.h"

struct shmring;

__attribute__((visibility("hidden"))) extern const struct fb_ops mpmc_ops;

/* After mapping: copy and check the ring's geometry into the handle and
 * route its calls to mpmc_ops.  0 or -EPROTO. */
__attribute__((visibility("hidden"))) int mp_open(struct shmring *r);
/* Join the participant table with roles (lock_fd open); -EUSERS past 64
 * producers or 64 consumers. */
__attribute__((visibility("hidden"))) int mp_attach(struct shmring *r, uint32_t roles);
/* Give up the slots this handle holds and leave the table. */
__attribute__((visibility("hidden"))) void mp_detach(struct shmring *r);

#endif

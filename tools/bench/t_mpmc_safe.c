/* SPDX-License-Identifier: MIT */
/* The MPMC algorithm as the library has it (see mpmc_algo.h). */
#define ALGO(x) safe_##x
#define ALGO_COMMIT mpmc_commit
#define ALGO_NAME "mpmc-algo"
#define ALGO_NOTE(pxc) "ring/mpmc.h alone, " pxc ", as shipped"
#include "mpmc_algo.h"

ALGO_FAMILY(mpmc_safe)

/* SPDX-License-Identifier: MIT */
/* The MPMC algorithm with mpmc_nosafety.h's commit, without what recovery
 * needs from the holder (see mpmc_algo.h).  Never in the library. */
#include "mpmc_nosafety.h"

#define ALGO(x) nosafety_##x
#define ALGO_COMMIT mpmc_commit_nosafety
#define ALGO_NAME "mpmc-algo-nosafety"
#define ALGO_NOTE(pxc) "ring/mpmc.h, MPMC_CRASH_SAFE=0, " pxc
#include "mpmc_algo.h"

ALGO_FAMILY(mpmc_nosafety)

/* SPDX-License-Identifier: MIT */
/* The MPMC algorithm with its crash-safety bookkeeping compiled out
 * (MPMC_CRASH_SAFE=0; see mpmc_algo.h).  Never in the library. */
#define MPMC_CRASH_SAFE 0
#define ALGO(x) nosafety_##x
#include "mpmc_algo.h"

const struct transport bench_mpmc_nosafety_transports[] = {
	ALGO_T("mpmc-algo-nosafety", "ring/mpmc.h, MPMC_CRASH_SAFE=0, 1x1", 1, 1),
	ALGO_T("mpmc-algo-nosafety-2x2", "ring/mpmc.h, MPMC_CRASH_SAFE=0, 2x2", 2, 2),
};
const unsigned bench_mpmc_nosafety_count =
	sizeof(bench_mpmc_nosafety_transports) / sizeof(bench_mpmc_nosafety_transports[0]);

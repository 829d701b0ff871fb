/* SPDX-License-Identifier: MIT */
/* The MPMC algorithm driven directly (mpmc_algo.h), twice: as the library
 * has it, and with commit and release from mpmc_nosafety.h. */
#include "mpmc_nosafety.h"

#define ALGO(x) safe_##x
#define ALGO_COMMIT mpmc_commit
#include "mpmc_algo.h"
#undef ALGO
#undef ALGO_COMMIT

#define ALGO(x) nosafety_##x
#define ALGO_COMMIT mpmc_commit_nosafety
#include "mpmc_algo.h"

const struct transport bench_mpmc_algo_transports[] = {
	ALGO_T(safe, "mpmc-algo", "ring/mpmc.h alone, 1x1, as shipped", 1, 1),
	ALGO_T(safe, "mpmc-algo-2x2", "ring/mpmc.h alone, 2x2, as shipped", 2, 2),
	ALGO_T(nosafety, "mpmc-algo-nosafety", "ring/mpmc.h, MPMC_CRASH_SAFE=0, 1x1", 1, 1),
	ALGO_T(nosafety, "mpmc-algo-nosafety-2x2", "ring/mpmc.h, MPMC_CRASH_SAFE=0, 2x2", 2, 2),
};
const unsigned bench_mpmc_algo_count =
	sizeof(bench_mpmc_algo_transports) / sizeof(bench_mpmc_algo_transports[0]);

/* SPDX-License-Identifier: MIT */
/* The MPMC algorithm as the library has it (see mpmc_algo.h). */
#define ALGO(x) safe_##x
#include "mpmc_algo.h"

const struct transport bench_mpmc_safe_transports[] = {
	ALGO_T("mpmc-algo", "ring/mpmc.h alone, 1x1, as shipped", 1, 1),
	ALGO_T("mpmc-algo-2x2", "ring/mpmc.h alone, 2x2, as shipped", 2, 2),
};
const unsigned bench_mpmc_safe_count =
	sizeof(bench_mpmc_safe_transports) / sizeof(bench_mpmc_safe_transports[0]);

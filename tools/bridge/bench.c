/* SPDX-License-Identifier: MIT */
#include "bridge.h"
int br_bench(int argc, char **argv) { (void)argc; (void)argv; return BR_USAGE; }

/* SPDX-License-Identifier: MIT */
/*
 * The path helpers live in fs/pathat.h.  This name stays only for
 * tools/shmctl, which includes it until that tool's segment reading is
 * reworked; nothing in the library includes it.
 */
#include "../fs/pathat.h"

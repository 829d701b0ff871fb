/* SPDX-License-Identifier: MIT */
/*
 * Process-local heap memory of the library: handles, registry entries.
 * When the process has jemalloc, it comes from a dedicated jemalloc arena
 * (mallocx/dallocx), so the library's few allocations neither fragment nor
 * contend with the application's heap; otherwise from calloc/free.  Never
 * on the per-message path.
 */
#ifndef SHMRING_MEM_ALLOC_H
#define SHMRING_MEM_ALLOC_H

#include <stddef.h>

__attribute__((visibility("hidden"))) void *sr_zalloc(size_t size);
__attribute__((visibility("hidden"))) void sr_free(void *p);

#endif

/* SPDX-License-Identifier: MIT */
#include "alloc.h"

#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ALLOC_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define ALLOC_SANITIZED 1
#endif
#endif

#ifdef ALLOC_SANITIZED
/*
 * Sanitizer builds use the C allocator, which the sanitizer replaces: ASan
 * then catches a use of a closed handle, and TSan is not misled by
 * jemalloc's uninstrumented internal locks (it reports them as double locks).
 */
void *sr_zalloc(size_t size)
{
	return calloc(1, size ? size : 1);
}

void sr_free(void *p)
{
	free(p);
}

#else
#include <jemalloc/jemalloc.h>
#include <pthread.h>

static unsigned arena;
static int arena_ok;
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;

static void arena_init(void)
{
	size_t sz = sizeof(arena);
	arena_ok = mallctl("arenas.create", &arena, &sz, NULL, 0) == 0;
}

static int flags(void)
{
	pthread_once(&arena_once, arena_init);
	/* no thread cache: handles are few and long-lived, and a cache would
	 * keep freed ones alive in every thread that closed one */
	return MALLOCX_TCACHE_NONE | (arena_ok ? MALLOCX_ARENA(arena) : 0);
}

void *sr_zalloc(size_t size)
{
	return mallocx(size ? size : 1, flags() | MALLOCX_ZERO);
}

void sr_free(void *p)
{
	if (p)
		dallocx(p, flags());
}
#endif

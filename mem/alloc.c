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

/*
 * jemalloc only when the process already has it (linked in at start-up or
 * preloaded): the library never loads it itself.  Debian's libjemalloc.so.2
 * keeps its thread state in initial-exec TLS, which a library loaded by
 * dlopen() cannot get ("cannot allocate memory in static TLS block"), so a
 * DT_NEEDED on it would make libshmring.so impossible to dlopen.  Weak
 * references resolve to NULL when no jemalloc is loaded; the choice is made
 * once, so a block always goes back to the allocator it came from.
 */
#pragma weak mallocx
#pragma weak dallocx
#pragma weak mallctl

static unsigned arena;
static int use_je, use_arena;
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;

static void arena_init(void)
{
	size_t sz = sizeof(arena);

	use_je = mallocx && dallocx && mallctl;
	use_arena = use_je && mallctl("arenas.create", &arena, &sz, NULL, 0) == 0;
}

static int flags(void)
{
	/* no thread cache: handles are few and long-lived, and a cache would
	 * keep freed ones alive in every thread that closed one */
	return MALLOCX_TCACHE_NONE | (use_arena ? MALLOCX_ARENA(arena) : 0);
}

void *sr_zalloc(size_t size)
{
	pthread_once(&arena_once, arena_init);
	if (!use_je)
		return calloc(1, size ? size : 1);
	return mallocx(size ? size : 1, flags() | MALLOCX_ZERO);
}

void sr_free(void *p)
{
	if (!p)
		return;
	pthread_once(&arena_once, arena_init);
	if (use_je)
		dallocx(p, flags());
	else
		free(p);
}
#endif

/* SPDX-License-Identifier: MIT */
#include "fence.h"

#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

static _Atomic bool heavy_ok;

#if defined(__SANITIZE_THREAD__)
_Atomic unsigned fence_tsan_word;
#endif
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

static long membarrier(int cmd)
{
	return syscall(__NR_membarrier, cmd, 0, 0);
}

bool fence_register(void)
{
	/* Not pthread_once: a forked child is a new mm and must register
	 * again (the registration is per process), and a child is the usual
	 * place a ring is opened. */
	pthread_mutex_lock(&reg_lock);
	long q = membarrier(MEMBARRIER_CMD_QUERY);
	bool ok = q > 0 && (q & MEMBARRIER_CMD_GLOBAL_EXPEDITED) &&
		  membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0;
	/* relaxed: a flag for this process's own later calls */
	atomic_store_explicit(&heavy_ok, ok, memory_order_relaxed);
	pthread_mutex_unlock(&reg_lock);
	return ok;
}

bool fence_heavy(void)
{
	/* relaxed: a stale "false" only shortens a sleep slice */
	if (!atomic_load_explicit(&heavy_ok, memory_order_relaxed))
		return false;
	return membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0;
}

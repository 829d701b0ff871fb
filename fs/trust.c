/* SPDX-License-Identifier: MIT */
/* The process-wide list of trusted ring owners (fs/trust.h). */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shmring.h"
#include "trust.h"

/* uid + 1 per entry, 0 while free.  An entry goes from 0 to its value once
 * (compare-and-swap) and never changes again, and entries fill in order:
 * no lock, so neither a forked child nor a signal handler can wait here.
 * Process-local memory, not shared with any peer. */
static _Atomic uint64_t trusted[TRUST_MAX];

bool trust_owner_ok(uid_t owner)
{
	if (owner == geteuid())
		return true;
	for (unsigned i = 0; i < TRUST_MAX; i++) {
		/* relaxed: the value is all there is to see, no other data
		 * hangs on it */
		uint64_t v = atomic_load_explicit(&trusted[i], memory_order_relaxed);
		if (v == 0)
			return false;
		if (v == (uint64_t)owner + 1)
			return true;
	}
	return false;
}

int trust_check_fd(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	return trust_owner_ok(st.st_uid) ? 0 : -EACCES;
}

int shmring_trust_owner(uid_t uid)
{
	if (uid == (uid_t)-1)
		return -EINVAL;
	uint64_t want = (uint64_t)uid + 1;
	for (unsigned i = 0; i < TRUST_MAX; i++) {
		uint64_t v = 0;
		/* relaxed: as above; a failed swap loads what another thread
		 * put there, which may be this very uid */
		if (atomic_compare_exchange_strong_explicit(&trusted[i], &v, want,
							    memory_order_relaxed,
							    memory_order_relaxed) || v == want)
			return 0;
	}
	return -ENOSPC;
}

/* SPDX-License-Identifier: MIT */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../sync/clock.h"
#include "../sync/crash.h"
#include "../sync/lock.h"
#include "../sync/proc.h"

int ctl_hold_open(int fd)
{
	/* A gc holds the exclusive lock only while it re-checks and unlinks */
	return lock_set_until(fd, F_RDLCK, CTL_LOCK_OPEN, clock_mono_ns() + CTL_LOCK_TIMEOUT_NS);
}

int ctl_try_exclusive(int fd)
{
	return lock_set(fd, F_WRLCK, CTL_LOCK_OPEN);
}

bool ctl_alive(int check_fd, uint32_t slot)
{
	if (slot >= CTL_MAX_PARTS)
		return false;
	/* F_OFD_GETLK through the segment's own descriptor: a lock held by
	 * any other open file description, ours included, conflicts. */
	/* -2, the test failed: cannot prove death, assume alive */
	return lock_held(check_fd, CTL_LOCK_BASE + (off_t)slot, 1) != -1;
}

bool ctl_owner_alive(struct ctl_shared *c, int check_fd, uint32_t owner)
{
	if (owner == 0 || owner > CTL_MAX_PARTS)
		return false;
	/* relaxed: the control lock (or a stale snapshot for display) orders it */
	if (atomic_load_explicit(&c->parts[owner - 1].state, memory_order_relaxed) != PART_ACTIVE)
		return false;
	return ctl_alive(check_fd, owner - 1);
}

static void count1(_Atomic uint64_t *ctr)
{
	/* relaxed: written under the control lock, readers only display it */
	atomic_fetch_add_explicit(ctr, 1, memory_order_relaxed);
}

void ctl_repair(struct ctl_shared *c, int check_fd, const struct ctl_sweep *sw)
{
	uint64_t dead[CTL_MASK_WORDS] = { 0 };
	bool any = false;
	for (uint32_t i = 0; i < CTL_MAX_PARTS; i++) {
		struct ctl_part *p = &c->parts[i];
		/* relaxed: we hold the control lock, which orders every writer ([L1]) */
		if (atomic_load_explicit(&p->state, memory_order_relaxed) == PART_FREE)
			continue;
		if (ctl_alive(check_fd, i))
			continue;
		dead[i / 64] |= 1ull << (i % 64);
		any = true;
	}
	if (!any)
		goto owners;
	/* What the dead held in the ring goes first: their table slots stay
	 * taken (and dead) until it is done, so a crash here is redone. */
	if (sw)
		sw->fn(sw->arg, dead);
	CRASH_POINT("ctl.repair");
	for (uint32_t i = 0; i < CTL_MAX_PARTS; i++)
		if (dead[i / 64] & (1ull << (i % 64)))
			/* relaxed: under the control lock */
			atomic_store_explicit(&c->parts[i].state, PART_FREE, memory_order_relaxed);
owners:
	/* An owner naming a free or unknown slot is a dead holder: release the
	 * role.  Done after the sweep so a crash in between leaves work that
	 * the next repair finishes the same way. */
	if (c->prod_owner && !ctl_owner_alive(c, check_fd, c->prod_owner)) {
		c->prod_owner = 0;
		count1(&c->takeovers);
	}
	if (c->cons_owner && !ctl_owner_alive(c, check_fd, c->cons_owner)) {
		c->cons_owner = 0;
		count1(&c->takeovers);
	}
}

int ctl_lock(struct ctl_shared *c, pthread_mutex_t *local, int lock_fd, int check_fd,
	     const struct ctl_sweep *sw)
{
	uint64_t give_up = clock_mono_ns() + CTL_LOCK_TIMEOUT_NS;
	if (local) {
		/* timedlock takes CLOCK_REALTIME; a clock step only stretches or
		 * shortens this bound, which is a safety net, not a contract.
		 * (pthread_mutex_clocklock would be immune, but ThreadSanitizer
		 * does not intercept it.) */
		struct timespec ts = clock_ts(clock_real_ns() + CTL_LOCK_TIMEOUT_NS);
		int rc = pthread_mutex_timedlock(local, &ts);
		if (rc)
			return -rc;
	}
	int rc = lock_set_until(lock_fd, F_WRLCK, CTL_LOCK_CTL, give_up);
	if (rc < 0) {
		if (local)
			pthread_mutex_unlock(local);
		return rc;
	}
	/* [L1] acquire: pairs with [L2], the previous holder's release on
	 * leaving: everything it wrote to the table is visible.  Read once:
	 * any value but 0 (a holder died inside, or a peer wrote garbage)
	 * costs a repair, which is idempotent, never more. */
	uint32_t was = atomic_load_explicit(&c->busy, memory_order_acquire);
	if (was != 0) {
		/* busy stays set until the repair is done: dying here hands
		 * the same repair to the next holder */
		CRASH_POINT("ctl.ownerdead");
		ctl_repair(c, check_fd, sw);
		count1(&c->repairs);
	}
	/* relaxed: nobody reads busy while we hold the lock; the next reader
	 * takes the lock after we released it (ordered by [L2]) or after we
	 * died, when every store we executed is in memory. */
	atomic_store_explicit(&c->busy, 1, memory_order_relaxed);
	return 0;
}

void ctl_unlock(struct ctl_shared *c, pthread_mutex_t *local, int lock_fd)
{
	/* [L2] release: the section's writes come before the next holder's
	 * [L1] can read busy == 0 */
	atomic_store_explicit(&c->busy, 0, memory_order_release);
	/* cannot fail on a descriptor we locked through; if it did, closing
	 * lock_fd (close, death) still drops the byte */
	(void)lock_set(lock_fd, F_UNLCK, CTL_LOCK_CTL);
	if (local)
		pthread_mutex_unlock(local);
}

int ctl_join(struct ctl_shared *c, int lock_fd, uint32_t roles)
{
	for (uint32_t i = 0; i < CTL_MAX_PARTS; i++) {
		struct ctl_part *p = &c->parts[i];
		/* relaxed: under the control lock.  Dead slots were freed by the
		 * ctl_repair() that callers run first, so that no owner field
		 * can name a slot we reuse. */
		if (atomic_load_explicit(&p->state, memory_order_relaxed) != PART_FREE)
			continue;
		/* Lock first, then fill in, then mark active: a crash at any
		 * point leaves a slot that repair sees as dead and frees. */
		int rc = lock_set(lock_fd, F_WRLCK, CTL_LOCK_BASE + (off_t)i);
		if (rc == -EAGAIN)
			continue;       /* held by a process outside the table (a forked child) */
		if (rc < 0)
			return rc;
		/* relaxed: read by ctl_count() only after its acquire of state */
		atomic_store_explicit(&p->roles, roles, memory_order_relaxed);
		p->pid = (int32_t)getpid();
		p->gen++;
		p->start_ticks = proc_start_ticks(0);
		p->attach_ns = clock_real_ns();
		/* relaxed: no doorbell yet; its owner publishes one ([B0]) */
		atomic_store_explicit(&p->bell, 0, memory_order_relaxed);
		CRASH_POINT("ctl.join");
		/* [J1] release: the slot's fields are complete before anybody
		 * sees it active; pairs with [J2] in ctl_count() */
		atomic_store_explicit(&p->state, PART_ACTIVE, memory_order_release);
		atomic_store_explicit(&c->last_attach_ns, p->attach_ns, memory_order_relaxed);
		return (int)i;
	}
	return -EUSERS;
}

void ctl_leave(struct ctl_shared *c, int lock_fd, uint32_t slot)
{
	if (slot >= CTL_MAX_PARTS)
		return;
	/* relaxed: under the control lock */
	atomic_store_explicit(&c->parts[slot].state, PART_FREE, memory_order_relaxed);
	(void)lock_set(lock_fd, F_UNLCK, CTL_LOCK_BASE + (off_t)slot);
}

void ctl_count(struct ctl_shared *c, int check_fd, uint32_t *prods, uint32_t *conss)
{
	uint32_t np = 0, nc = 0;
	for (uint32_t i = 0; i < CTL_MAX_PARTS; i++) {
		struct ctl_part *p = &c->parts[i];
		/* [J2] acquire: pairs with [J1]; no lock, a snapshot for stats */
		if (atomic_load_explicit(&p->state, memory_order_acquire) != PART_ACTIVE)
			continue;
		/* relaxed: a slot reused meanwhile gives a stale but whole value */
		uint32_t roles = atomic_load_explicit(&p->roles, memory_order_relaxed);
		if (!ctl_alive(check_fd, i))
			continue;
		np += !!(roles & ROLE_PRODUCER);
		nc += !!(roles & ROLE_CONSUMER);
	}
	*prods = np;
	*conss = nc;
}

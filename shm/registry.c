/* SPDX-License-Identifier: MIT */
#include "registry.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <sys/mman.h>
#include <unistd.h>

#include <urcu-bp.h>
#include <urcu/rculfhash.h>

#include "../mem/alloc.h"

_Static_assert(sizeof(struct cds_lfht_node) <= sizeof(((struct seg_map *)0)->node_space),
	       "node fits");

/*
 * liburcu is not instrumented, so ThreadSanitizer cannot see that a grace
 * period orders every read-side section before the reclaimer's free.  Tell
 * it: each read section's end "releases" a token the reclaimer "acquires"
 * after synchronize_rcu().  No code at all in other builds.
 */
#if defined(__SANITIZE_THREAD__)
#define REG_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define REG_TSAN 1
#endif
#endif
#ifdef REG_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
static char grace_token;
#define read_unlock() (__tsan_release(&grace_token), rcu_read_unlock())
#define grace_done() __tsan_acquire(&grace_token)
#else
#define read_unlock() rcu_read_unlock()
#define grace_done() ((void)0)
#endif

static struct cds_lfht *table;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static struct cds_lfht_node *node_of(struct seg_map *m)
{
	return (struct cds_lfht_node *)(void *)m->node_space;
}

static struct seg_map *map_of(struct cds_lfht_node *n)
{
	return (struct seg_map *)(void *)((char *)n - offsetof(struct seg_map, node_space));
}

static unsigned long key_hash(dev_t dev, ino_t ino)
{
	uint64_t x = (uint64_t)dev * 0x9e3779b97f4a7c15ull ^ (uint64_t)ino;
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return (unsigned long)x;
}

struct key { dev_t dev; ino_t ino; };

static int key_match(struct cds_lfht_node *n, const void *k)
{
	const struct key *key = k;
	struct seg_map *m = map_of(n);
	/* [G2] acquire: pairs with [G0]; the same edge as [G1], for the key
	 * fields read before any reference is taken */
	(void)atomic_load_explicit(&m->refs, memory_order_acquire);
	return m->dev == key->dev && m->ino == key->ino;
}

static void table_init(void)
{
	/* urcu-bp's own fork handlers keep its registry consistent in a
	 * child forked while another thread was inside a read section. */
	pthread_atfork(urcu_bp_before_fork, urcu_bp_after_fork_parent,
		       urcu_bp_after_fork_child);
	/* A fixed bucket count: a process maps a handful of rings, and no
	 * auto-resize means no background resize thread in the library user's
	 * process (and nothing ThreadSanitizer cannot follow). */
	table = cds_lfht_new(64, 64, 64, 0, NULL);
}

int reg_init(void)
{
	pthread_once(&table_once, table_init);
	return table ? 0 : -ENOMEM;
}

/* Take a reference unless the entry is already on its way out. */
static int ref_get(struct seg_map *m)
{
	/* relaxed: a failed attempt reads nothing through the entry */
	long r = atomic_load_explicit(&m->refs, memory_order_relaxed);
	while (r > 0)
		/* [G1] acquire: pairs with [G0] in reg_put_new (through the
		 * release sequence of refs): the entry's fields are complete.
		 * RCU's own publication orders them too, but liburcu is not
		 * instrumented, so this edge is the one ThreadSanitizer sees. */
		if (atomic_compare_exchange_weak_explicit(&m->refs, &r, r + 1,
							  memory_order_acquire,
							  memory_order_relaxed))
			return 1;
	return 0;
}

struct seg_map *reg_get(dev_t dev, ino_t ino)
{
	struct key k = { dev, ino };
	struct cds_lfht_iter it;
	struct seg_map *found = NULL;

	rcu_read_lock();
	cds_lfht_lookup(table, key_hash(dev, ino), key_match, &k, &it);
	struct cds_lfht_node *n = cds_lfht_iter_get_node(&it);
	if (n && ref_get(map_of(n)))
		found = map_of(n);
	read_unlock();
	return found;
}

struct seg_map *reg_put_new(struct seg_map *m)
{
	struct key k = { m->dev, m->ino };
	/* [G0] release: the entry is fully built before anyone can take a
	 * reference to it; pairs with [G1] */
	atomic_store_explicit(&m->refs, 1, memory_order_release);
	for (;;) {
		rcu_read_lock();
		struct cds_lfht_node *n = cds_lfht_add_unique(table, key_hash(m->dev, m->ino),
							      key_match, &k, node_of(m));
		if (n == node_of(m)) {
			read_unlock();
			return m;
		}
		int got = ref_get(map_of(n));
		read_unlock();
		if (got)
			return map_of(n);
		/* the other entry is being torn down: it leaves the table
		 * before its grace period, so this loop ends */
		sched_yield();
	}
}

void reg_discard(struct seg_map *m)
{
	if (!m)
		return;
	if (m->base)
		munmap(m->base, m->geom.size);
	if (m->fd >= 0)
		close(m->fd);
	sr_free(m);
}

void reg_release(struct seg_map *m)
{
	/* acq_rel: the last releaser must see every other user's writes to
	 * the entry before it frees it */
	if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
		return;
	rcu_read_lock();
	cds_lfht_del(table, node_of(m));
	read_unlock();
	/* a reader may still hold the node from a lookup: wait it out */
	synchronize_rcu();
	grace_done();
	reg_discard(m);
}

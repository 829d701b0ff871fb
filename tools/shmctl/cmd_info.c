/* SPDX-License-Identifier: MIT */
/* info: the full header, indices, fill, participants and every counter. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmapfile/mmapfile.h"
#include "shm/segment.h"
#include "report.h"
#include "sync/bell.h"
#include "shmctl.h"
#include "table.h"
#include "sync/proc.h"
#include "sync/wait.h"

static const char *flags_str(uint32_t f, char *buf, size_t n)
{
	snprintf(buf, n, "%s%s%s%s%s", f & SHMRING_PREFAULT ? "prefault" : "",
		 (f & SHMRING_PREFAULT) && (f & SHMRING_MLOCK) ? "," : "",
		 f & SHMRING_MLOCK ? "mlock" : "",
		 (f & (SHMRING_PREFAULT | SHMRING_MLOCK)) && (f & SHMRING_FIXED) ? "," : "",
		 f & SHMRING_FIXED ? "fixed" : "");
	if (f & SEG_HF_RANGES)
		snprintf(buf + strlen(buf), n - strlen(buf), "%sranges", buf[0] ? "," : "");
	if (!buf[0])
		snprintf(buf, n, "%s", f ? "unknown" : "none");
	return buf;
}

static const char *hex64(uint64_t v, char *buf, size_t n)
{
	snprintf(buf, n, "0x%016llx", (unsigned long long)v);
	return buf;
}

/* Does the pid recorded for a slot still name the process that attached?
 * Display only: liveness is the lock. */
static int pid_matches(const struct tpart *p)
{
	/* a recorded pid of 0 would name ourselves */
	uint64_t t = p->pid > 0 ? proc_start_ticks(p->pid) : 0;
	return t != 0 && t == p->start_ticks;
}

static const char *owner_of(const struct tpart *p)
{
	return p->owns_prod && p->owns_cons ? "producer+consumer"
	       : p->owns_prod ? "producer" : p->owns_cons ? "consumer" : "-";
}

/* ---- MPMC slots ---------------------------------------------------------- */

/* What info adds for an MPMC ring: a walk of every slot word. */
struct mpmc_view {
	bool walked;
	struct tmwalk w;
	char why[300];          /* !walked: why not */
};

static void mpmc_look(struct tseg *s, struct mpmc_view *v)
{
	memset(v, 0, sizeof(*v));
	int rc = tseg_map(s);
	if (rc < 0) {
		snprintf(v->why, sizeof(v->why), "slots not read: mmap: %s", strerror(-rc));
		return;
	}
	tmpmc_walk(s, s->cons_ticket, 0, 0, true, NULL, NULL, &v->w);
	if (v->w.stop == WALK_FAULT || v->w.stop == WALK_NOMEM) {
		snprintf(v->why, sizeof(v->why), "slots not read: %s",
			 v->w.stop == WALK_NOMEM ? "out of memory" : v->w.reason);
		return;
	}
	v->walked = true;
}

/* "none" or "0, 5, 7": the participant slots whose bit is set */
static const char *mask_list(const _Atomic uint64_t *mask, char *buf, size_t n)
{
	size_t len = 0;
	buf[0] = 0;
	for (unsigned k = 0; k < MPMC_MASK_WORDS; k++) {
		/* relaxed: private copy */
		uint64_t m = atomic_load_explicit(&mask[k], memory_order_relaxed);
		for (unsigned b = 0; b < 64 && len + 8 < n; b++)
			if (m & (1ull << b))
				len += (size_t)snprintf(buf + len, n - len, "%s%u", len ? ", " : "",
							k * 64 + b);
	}
	return len ? buf : "none";
}

static void json_mask(struct jw *w, const char *key, const _Atomic uint64_t *mask)
{
	jw_arr(w, key);
	for (unsigned k = 0; k < MPMC_MASK_WORDS; k++) {
		/* relaxed: private copy */
		uint64_t m = atomic_load_explicit(&mask[k], memory_order_relaxed);
		for (unsigned b = 0; b < 64; b++)
			if (m & (1ull << b))
				jw_u64(w, NULL, k * 64 + b);
	}
	jw_arr_end(w);
}

/* ---- JSON -------------------------------------------------------------- */

static void json_spsc_ring(struct jw *w, const struct tseg *s)
{
	const struct spsc_shared *r = &s->ring;
	uint64_t acquired = s->cons_read - s->cons_head;
	JW_U64_OBJ(w, "indices", { "prod_tail", s->prod_tail }, { "cons_head", s->cons_head },
		   { "cons_read", s->cons_read }, { "used", s->used },
		   { "acquired", acquired <= s->g.capacity ? acquired : 0 });
	/* relaxed throughout: private copies */
#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)
	JW_U64_OBJ(w, "wait", { "prod_sleeping", LD(r->prod_sleeping) },
		   { "cons_sleeping", LD(r->cons_sleeping) }, { "prod_wake", LD(r->prod_wake) },
		   { "cons_wake", LD(r->cons_wake) }, { "shutdown", LD(r->shutdown) });
#undef LD
}

static void json_mpmc_ring(struct jw *w, const struct tseg *s)
{
	const struct mpmc_shared *m = &s->mring;
	JW_U64_OBJ(w, "indices", { "prod_ticket", s->prod_ticket },
		   { "cons_ticket", s->cons_ticket }, { "queued", s->queued }, { "used", s->used });
	jw_obj(w, "wait");
	json_mask(w, "prod_sleepers", m->prod_sleepers);
	json_mask(w, "cons_sleepers", m->cons_sleepers);
	/* relaxed: private copy */
	jw_u64(w, "shutdown", atomic_load_explicit(&m->shutdown, memory_order_relaxed));
	jw_obj_end(w);
}

/* The "mpmc" member: geometry, slot states and holders (null for SPSC). */
static void json_mpmc(struct jw *w, const struct tseg *s, const struct mpmc_view *v)
{
	if (!tseg_mpmc(s) || !s->have_state) {
		jw_null(w, "mpmc");
		return;
	}
	jw_obj(w, "mpmc");
	jw_u64(w, "slots", s->mg.nslots);
	jw_u64(w, "slot_size", s->mg.stride);
	jw_u64(w, "slot_header", s->mg.hdr);
	jw_u64(w, "stall_ms", s->stall_ms);
	jw_bool(w, "slots_read", v->walked);
	jw_str(w, "slots_note", v->walked ? NULL : v->why);
	if (!v->walked) {
		jw_null(w, "slot_states");
		jw_arr(w, "holders");
		jw_arr_end(w);
		jw_obj_end(w);
		return;
	}
	jw_obj(w, "slot_states");
	for (unsigned st = 0; st < MW_NSTATES; st++) {
		char key[16];
		snprintf(key, sizeof(key), "%s", mpmc_state_name(st));
		for (char *k = key; *k; k++)
			*k = (char)(*k - 'A' + 'a');
		jw_u64(w, key, v->w.states[st]);
	}
	jw_u64(w, "invalid", v->w.invalid);
	jw_u64(w, "changed", v->w.changed);
	jw_obj_end(w);
	jw_arr(w, "holders");
	for (uint32_t i = 0; i < CTL_MAX_PARTS; i++) {
		if (!v->w.held[i])
			continue;
		const struct tpart *p = tseg_part(s, i);
		jw_obj(w, NULL);
		jw_u64(w, "slot", i);
		if (p)
			jw_i64(w, "pid", p->pid);
		else
			jw_null(w, "pid");
		jw_str(w, "role", p ? roles_str(p->roles) : NULL);
		jw_bool(w, "alive", v->w.held_dead[i] == 0);
		jw_u64(w, "held", v->w.held[i]);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_obj_end(w);
}

static void json_header(struct jw *w, const struct tseg *s)
{
	const struct seg_hdr *h = &s->hdr;
	char buf[64];
	if (s->hdr_bytes < sizeof(*h)) {
		jw_null(w, "header");
		return;
	}
	jw_obj(w, "header");
	jw_str(w, "magic", hex64(h->magic, buf, sizeof(buf)));
	/* relaxed: private copy */
	jw_u64(w, "version", atomic_load_explicit(&h->version, memory_order_relaxed));
	jw_u64(w, "hdr_size", h->hdr_size);
	jw_str(w, "stamp", hex64(h->stamp, buf, sizeof(buf)));
	jw_bool(w, "stamp_ok", h->stamp == seg_stamp());
	jw_u64(w, "kind", h->kind);
	jw_str(w, "kind_name", kind_name(h->kind));
	jw_u64(w, "flags", h->flags);
	jw_str(w, "flag_names", flags_str(h->flags, buf, sizeof(buf)));
	jw_u64(w, "seg_size", h->seg_size);
	jw_u64(w, "capacity", h->capacity);
	jw_u64(w, "max_msg", h->max_msg);
	jw_u64(w, "spin_ns", h->spin_ns);
	jw_u64(w, "ctl_off", h->ctl_off);
	jw_u64(w, "ring_off", h->ring_off);
	jw_u64(w, "data_off", h->data_off);
	jw_u64(w, "creator_uid", h->creator_uid);
	jw_i64(w, "creator_pid", h->creator_pid);
	jw_u64(w, "created_ns", h->created_ns);
	jw_str(w, "created", fmt_time_utc(h->created_ns, buf, sizeof(buf)));
	jw_str(w, "mode", mode_str(h->mode, buf, sizeof(buf)));
	snprintf(buf, sizeof(buf), "0x%08x", h->checksum);
	jw_str(w, "checksum", buf);
	jw_bool(w, "checksum_ok", h->checksum == seg_checksum(h));
	jw_obj_end(w);
}

/* "roles": which participant slots own the producer and consumer roles */
static void json_roles(struct jw *w, const struct tseg *s)
{
	/* relaxed throughout: private copies */
#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)
	jw_obj(w, "roles");
	if (s->ctl.prod_owner)
		jw_u64(w, "producer_slot", s->ctl.prod_owner - 1);
	else
		jw_null(w, "producer_slot");
	if (s->ctl.cons_owner)
		jw_u64(w, "consumer_slot", s->ctl.cons_owner - 1);
	else
		jw_null(w, "consumer_slot");
	jw_u64(w, "last_attach_ns", LD(s->ctl.last_attach_ns));
	jw_u64(w, "last_close_ns", LD(s->ctl.last_close_ns));
	jw_obj_end(w);
#undef LD
}

static void json_participants(struct jw *w, const struct tseg *s)
{
	char buf[64];
	jw_arr(w, "participants");
	for (unsigned i = 0; i < s->nparts; i++) {
		const struct tpart *p = &s->parts[i];
		uint64_t started = ticks_to_real_ns(p->start_ticks);
		jw_obj(w, NULL);
		jw_u64(w, "slot", p->slot);
		jw_i64(w, "pid", p->pid);
		jw_u64(w, "gen", p->gen);
		jw_str(w, "role", roles_str(p->roles));
		jw_str(w, "owner_of", p->owns_prod || p->owns_cons ? owner_of(p) : NULL);
		jw_bool(w, "alive", p->alive);
		jw_u64(w, "start_ticks", p->start_ticks);
		if (started) {
			jw_u64(w, "started_ns", started);
			jw_str(w, "started", fmt_time_utc(started, buf, sizeof(buf)));
		} else {
			jw_null(w, "started_ns");
			jw_null(w, "started");
		}
		jw_u64(w, "attached_ns", p->attach_ns);
		jw_str(w, "attached", fmt_time_utc(p->attach_ns, buf, sizeof(buf)));
		jw_bool(w, "pid_matches", pid_matches(p));
		if (p->bell) {
			snprintf(buf, sizeof(buf), BELL_DIR BELL_PREFIX "%016llx",
				 (unsigned long long)p->bell);
			jw_str(w, "doorbell", buf);
		} else {
			jw_null(w, "doorbell");
		}
		jw_obj_end(w);
	}
	jw_arr_end(w);
}

/* "persist": file: rings' durability record (mmapfile/), also kept in
 * shm: rings */
static void json_persist(struct jw *w, const struct tseg *s)
{
	uint8_t now_id[16];
	static const uint8_t zero[16];
	bool known = mf_boot_id(now_id) == 0;
	char id[33];
	for (int i = 0; i < 16; i++)
		snprintf(id + 2 * i, 3, "%02x", s->ctl.persist.boot_id[i]);
	jw_obj(w, "persist");
	jw_str(w, "boot_id", memcmp(s->ctl.persist.boot_id, zero, 16) ? id : NULL);
	if (known)
		jw_bool(w, "this_boot", memcmp(s->ctl.persist.boot_id, now_id, 16) == 0);
	else
		jw_null(w, "this_boot");
	/* relaxed: private copy */
	jw_u64(w, "durable_tail", atomic_load_explicit(&s->ctl.persist.durable_tail,
						       memory_order_relaxed));
	jw_obj_end(w);
}

static void json_stats(struct jw *w, const struct tseg *s)
{
	struct shmring_stats st;
	tseg_stats(s, &st);
	JW_U64_OBJ(w, "stats", { "msgs_sent", st.msgs_sent }, { "bytes_sent", st.bytes_sent },
		   { "msgs_recv", st.msgs_recv }, { "bytes_recv", st.bytes_recv },
		   { "waits_full", st.waits_full }, { "waits_empty", st.waits_empty },
		   { "futex_wakes", st.futex_wakes }, { "futex_sleeps", st.futex_sleeps },
		   { "holes_skipped", st.holes_skipped },
		   { "msgs_redelivered", st.msgs_redelivered },
		   { "msgs_dropped", st.msgs_dropped }, { "repairs", st.repairs },
		   { "takeovers", st.takeovers }, { "stalls_skipped", st.stalls_skipped },
		   { "commits_cancelled", st.commits_cancelled }, { "lag_msgs", st.lag_msgs },
		   { "lag_bytes", st.lag_bytes }, { "msgs_lost", st.msgs_lost },
		   { "evictions", st.evictions });
}

/* "subscribers": a broadcast ring's lines in use, with their lag */
static void json_subscribers(struct jw *w, const struct tseg *s)
{
	static const char *const states[] = { "free", "active", "parked" };
	jw_arr(w, "subscribers");
	for (uint32_t i = 0; tseg_bcast(s) && i < BC_MAX_SUBS; i++) {
		struct seg_bc_sub v;
		seg_bc_sub(&s->bring, s->g.capacity, i, &v);
		if (v.state == BC_FREE)
			continue;
		jw_obj(w, NULL);
		jw_u64(w, "line", i);
		jw_str(w, "name", v.name[0] ? v.name : NULL);
		jw_str(w, "state", v.state <= BC_PARKED ? states[v.state] : "garbage");
		if (v.owner && v.owner <= CTL_MAX_PARTS)
			jw_u64(w, "slot", v.owner - 1);
		else
			jw_null(w, "slot");
		jw_bool(w, "alive", v.owner && v.owner <= CTL_MAX_PARTS &&
				    tseg_alive_now(s, v.owner - 1));
		jw_bool(w, "counted", v.counted);
		jw_u64(w, "pos", v.pos);
		jw_u64(w, "lag_msgs", v.lag_msgs);
		jw_u64(w, "lag_bytes", v.lag_bytes);
		jw_u64(w, "msgs_recv", v.msgs_recv);
		jw_u64(w, "msgs_lost", v.msgs_lost);
		jw_u64(w, "evictions", v.evictions);
		jw_obj_end(w);
	}
	jw_arr_end(w);
}

static void json_state(struct jw *w, const struct tseg *s)
{
	if (!s->have_state) {
		jw_null(w, "indices");
		jw_null(w, "wait");
		jw_null(w, "roles");
		jw_arr(w, "participants");
		jw_arr_end(w);
		jw_arr(w, "subscribers");
		jw_arr_end(w);
		jw_null(w, "persist");
		jw_null(w, "stats");
		return;
	}
	if (tseg_mpmc(s))
		json_mpmc_ring(w, s);
	else
		json_spsc_ring(w, s);
	json_roles(w, s);
	json_participants(w, s);
	json_subscribers(w, s);
	json_persist(w, s);
	json_stats(w, s);
}

/* ---- words ------------------------------------------------------------- */

static void kv(const char *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void kv(const char *k, const char *fmt, ...)
{
	va_list ap;
	printf("  %-14s", k);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static void human_spsc_ring(const struct tseg *s)
{
	char a[64], b[64];
	const struct spsc_shared *r = &s->ring;
	/* relaxed throughout: private copies */
#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)
	printf("ring\n");
	if (tseg_fixed(s)) {
		kv("format", "fixed: %llu slots of %u bytes, every message %u bytes",
		   (unsigned long long)(s->g.capacity / fx_stride_for(s->g.max_msg)),
		   fx_stride_for(s->g.max_msg), s->g.max_msg);
		kv("prod_tail", "%llu (messages published)", (unsigned long long)s->prod_tail);
		kv("cons_head", "%llu (messages released)", (unsigned long long)s->cons_head);
		kv("cons_read", "%llu (messages handed out)", (unsigned long long)s->cons_read);
	} else {
		kv("prod_tail", "%llu (producer's hint)", (unsigned long long)s->prod_tail);
		kv("cons_head", "%llu (released)", (unsigned long long)s->cons_head);
		kv("cons_read", "%llu (handed out)", (unsigned long long)s->cons_read);
	}
	kv("used", "%llu bytes (%.1f%%)", (unsigned long long)s->used, fill_pct(s));
	kv("shut down", "%s", LD(r->shutdown) ? "yes" : "no");
	kv("sleeping", "producer %s, consumer %s", (LD(r->prod_sleeping) & WAIT_WAITERS) ? "yes" : "no",
	   (LD(r->cons_sleeping) & WAIT_WAITERS) ? "yes" : "no");
	kv("owners", "producer %s, consumer %s",
	   s->ctl.prod_owner ? (snprintf(a, sizeof(a), "slot %u", s->ctl.prod_owner - 1), a) : "none",
	   s->ctl.cons_owner ? (snprintf(b, sizeof(b), "slot %u", s->ctl.cons_owner - 1), b) : "none");
#undef LD
}

/* A broadcast ring: its window and every subscriber's lag (who is slow). */
static void human_bcast_ring(const struct tseg *s)
{
	const struct bcast_shared *b = &s->bring;
	/* relaxed throughout: private copies */
#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)
	printf("ring\n");
	kv("head", "%llu (producer's hint), next message %llu",
	   (unsigned long long)s->prod_tail, (unsigned long long)LD(b->head_seq));
	kv("tail", "%llu (the oldest record kept)", (unsigned long long)s->cons_head);
	kv("policy", "%s, stall %u ms", (s->g.flags & SHMRING_OVERWRITE) ?
	   "overwrite (the producer never waits)" : "blocking (the producer waits for the "
	   "slowest live subscriber)", b->stall_ms);
	kv("lag", "%llu bytes (%.1f%%): the slowest counted subscriber",
	   (unsigned long long)s->used, fill_pct(s));
	kv("shut down", "%s", LD(b->shutdown) ? "yes" : "no");
	if (s->ctl.prod_owner)
		kv("producer", "slot %u", s->ctl.prod_owner - 1);
	else
		kv("producer", "none");
#undef LD
	static const char *const heads[] = { "LINE", "NAME", "STATE", "SLOT", "ALIVE", "COUNTED",
					     "LAG MSGS", "LAG BYTES", "RECEIVED", "LOST",
					     "EVICTED" };
	struct table t;
	tbl_init(&t, "rlllll" "rrrrr", heads);
	unsigned n = 0;
	for (uint32_t i = 0; i < BC_MAX_SUBS; i++) {
		struct seg_bc_sub v;
		seg_bc_sub(b, s->g.capacity, i, &v);
		if (v.state == BC_FREE)
			continue;
		bool owned = v.owner && v.owner <= CTL_MAX_PARTS;
		n++;
		tbl_cellf(&t, "%u", i);
		tbl_cell(&t, v.name[0] ? v.name : "-");
		tbl_cell(&t, v.state == BC_ACTIVE ? "active" : v.state == BC_PARKED ? "parked"
									: "garbage");
		if (owned)
			tbl_cellf(&t, "%u", v.owner - 1);
		else
			tbl_cell(&t, "-");
		tbl_cell(&t, !owned ? "-" : tseg_alive_now(s, v.owner - 1) ? "yes" : "DEAD");
		tbl_cell(&t, v.counted ? "yes" : "no");
		tbl_cellf(&t, "%llu", (unsigned long long)v.lag_msgs);
		tbl_cellf(&t, "%llu", (unsigned long long)v.lag_bytes);
		tbl_cellf(&t, "%llu", (unsigned long long)v.msgs_recv);
		tbl_cellf(&t, "%llu", (unsigned long long)v.msgs_lost);
		tbl_cellf(&t, "%llu", (unsigned long long)v.evictions);
	}
	printf("subscribers: %u\n", n);
	if (n)
		tbl_print(&t, stdout, "  ");
	tbl_free(&t);
}

/* Who holds slots: "slot 1 (pid 42): 2; slot 3 (pid 7, DEAD): 1" */
static void human_holders(const struct tseg *s, const struct mpmc_view *v)
{
	char line[1024];
	size_t len = 0;
	unsigned n = 0, more = 0;
	line[0] = 0;
	for (uint32_t i = 0; i < CTL_MAX_PARTS; i++) {
		if (!v->w.held[i])
			continue;
		if (n++ >= 8 || len + 80 > sizeof(line)) {
			more++;
			continue;
		}
		const struct tpart *p = tseg_part(s, i);
		char pid[32] = "not in the table";
		if (p)
			snprintf(pid, sizeof(pid), "pid %d", p->pid);
		len += (size_t)snprintf(line + len, sizeof(line) - len, "%sslot %u (%s%s): %llu",
					len ? "; " : "", i, pid, v->w.held_dead[i] ? ", DEAD" : "",
					(unsigned long long)v->w.held[i]);
	}
	if (more)
		snprintf(line + len, sizeof(line) - len, "; and %u more", more);
	kv("holders", "%s", n ? line : "none");
}

static void human_mpmc_ring(const struct tseg *s, const struct mpmc_view *v)
{
	char a[64], b[64];
	const struct mpmc_shared *m = &s->mring;
	printf("ring (mpmc)\n");
	kv("slots", "%llu of %llu bytes (header %u, max_msg %u), stall timeout %u ms",
	   (unsigned long long)s->mg.nslots, (unsigned long long)s->mg.stride, s->mg.hdr,
	   s->mg.max_msg, s->stall_ms);
	kv("prod_ticket", "%llu (producers' hint)", (unsigned long long)s->prod_ticket);
	kv("cons_ticket", "%llu (consumers' hint)", (unsigned long long)s->cons_ticket);
	kv("used", "%llu slot%s, %llu bytes (%.1f%%)", (unsigned long long)s->queued,
	   s->queued == 1 ? "" : "s", (unsigned long long)s->used, fill_pct(s));
	kv("shut down", "%s", s->shut_down ? "yes" : "no");
	kv("sleeping", "producers %s; consumers %s", mask_list(m->prod_sleepers, a, sizeof(a)),
	   mask_list(m->cons_sleepers, b, sizeof(b)));
	if (!v->walked) {
		kv("slot states", "%s", v->why);
		return;
	}
	const uint64_t *n = v->w.states;
	kv("slot states", "%llu free, %llu writing, %llu ready, %llu reading, %llu orphan, "
	   "%llu stuck%s", (unsigned long long)n[MS_FREE], (unsigned long long)n[MS_WRITING],
	   (unsigned long long)n[MS_READY], (unsigned long long)n[MS_READING],
	   (unsigned long long)n[MS_ORPHAN], (unsigned long long)n[MS_STUCK],
	   v->w.changed ? (snprintf(a, sizeof(a), ", %llu changed while read",
				    (unsigned long long)v->w.changed), a) : "");
	if (v->w.invalid)
		kv("", "%llu invalid word%s, the first at %s (see check)",
		   (unsigned long long)v->w.invalid, v->w.invalid == 1 ? "" : "s", v->w.reason);
	human_holders(s, v);
}

/* The file and its header: status, owner, format, geometry, creation. */
static void human_file(const struct tseg *s, uint64_t now)
{
	char a[64], b[64], c[64], safe[PATH_MAX + 16];
	const struct seg_hdr *h = &s->hdr;
	char uri[PATH_MAX + 8];
	printf("%s", fmt_safe(tseg_uri(s, uri, sizeof(uri)), safe, sizeof(safe)));
	printf("  (%s)\n", fmt_safe(s->path, safe, sizeof(safe)));
	if (s->status == TS_OK)
		kv("status", "ok%s", s->in_use ? ", in use" : ", not mapped by any process");
	else
		kv("status", "%s: %s%s", tstatus_name(s->status), s->reason,
		   s->in_use ? " (in use)" : "");
	kv("file", "%llu bytes, owner %s, mode %s", (unsigned long long)s->st.st_size,
	   user_name((uint32_t)s->st.st_uid, a, sizeof(a)), mode_str((uint32_t)s->st.st_mode, b, sizeof(b)));
	if (s->hdr_bytes < sizeof(*h))
		return;
	/* relaxed: private copy */
	uint32_t ver = atomic_load_explicit(&h->version, memory_order_relaxed);
	kv("format", "version %u, header %u bytes, stamp %s%s, checksum 0x%08x%s", ver,
	   h->hdr_size, hex64(h->stamp, a, sizeof(a)),
	   h->stamp == seg_stamp() ? "" : " (not this build's)", h->checksum,
	   h->checksum == seg_checksum(h) ? " ok" : " WRONG");
	kv("kind", "%s (%u)", kind_name(h->kind), h->kind);
	kv("capacity", "%llu (%s), max_msg %u (%s)", (unsigned long long)h->capacity,
	   fmt_size(h->capacity, a, sizeof(a)), h->max_msg, fmt_size(h->max_msg, b, sizeof(b)));
	kv("layout", "segment %llu bytes: control at %llu, ring at %llu, data at %llu",
	   (unsigned long long)h->seg_size, (unsigned long long)h->ctl_off,
	   (unsigned long long)h->ring_off, (unsigned long long)h->data_off);
	kv("flags", "%s, spin %u ns", flags_str(h->flags, a, sizeof(a)), h->spin_ns);
	kv("created", "%s (%s ago) by pid %d, uid %u, mode %s",
	   fmt_time(h->created_ns, a, sizeof(a)),
	   fmt_age(now > h->created_ns ? now - h->created_ns : 0, b, sizeof(b)),
	   h->creator_pid, h->creator_uid, mode_str(h->mode, c, sizeof(c)));
}

static void human_participants(const struct tseg *s)
{
	char a[64], b[64];
	printf("participants: %u live producer%s, %u dead; %u live consumer%s, %u dead\n",
	       s->prod_live, s->prod_live == 1 ? "" : "s", s->prod_dead,
	       s->cons_live, s->cons_live == 1 ? "" : "s", s->cons_dead);
	if (!s->nparts)
		return;
	static const char *const heads[] = { "SLOT", "PID", "ROLE", "ALIVE", "OWNER",
					     "STARTED", "ATTACHED", "POLLS" };
	struct table t;
	tbl_init(&t, "rrllll" "ll", heads);
	for (unsigned i = 0; i < s->nparts; i++) {
		const struct tpart *p = &s->parts[i];
		tbl_cellf(&t, "%u", p->slot);
		tbl_cellf(&t, "%d%s", p->pid, p->alive && !pid_matches(p) ? "?" : "");
		tbl_cell(&t, roles_str(p->roles));
		tbl_cell(&t, p->alive ? "yes" : "DEAD");
		tbl_cell(&t, owner_of(p));
		tbl_cell(&t, fmt_time(ticks_to_real_ns(p->start_ticks), a, sizeof(a)));
		tbl_cell(&t, fmt_time(p->attach_ns, b, sizeof(b)));
		tbl_cell(&t, p->bell ? "yes" : "no");   /* has a shmring_fd() doorbell */
	}
	tbl_print(&t, stdout, "  ");
	tbl_free(&t);
}

static void human_counters(const struct tseg *s)
{
	struct shmring_stats st;
	tseg_stats(s, &st);
	printf("counters\n");
	kv("sent", "%llu message%s, %llu bytes", (unsigned long long)st.msgs_sent,
	   st.msgs_sent == 1 ? "" : "s", (unsigned long long)st.bytes_sent);
	kv("received", "%llu message%s, %llu bytes", (unsigned long long)st.msgs_recv,
	   st.msgs_recv == 1 ? "" : "s", (unsigned long long)st.bytes_recv);
	kv("waits", "%llu on full, %llu on empty", (unsigned long long)st.waits_full,
	   (unsigned long long)st.waits_empty);
	kv("futex", "%llu wake-ups, %llu sleeps", (unsigned long long)st.futex_wakes,
	   (unsigned long long)st.futex_sleeps);
	if (tseg_mpmc(s))
		kv("recovery", "%llu repairs, %llu holes skipped, %llu stalls skipped, %llu commits "
		   "cancelled, %llu dropped, %llu redelivered, %llu takeovers",
		   (unsigned long long)st.repairs, (unsigned long long)st.holes_skipped,
		   (unsigned long long)st.stalls_skipped, (unsigned long long)st.commits_cancelled,
		   (unsigned long long)st.msgs_dropped, (unsigned long long)st.msgs_redelivered,
		   (unsigned long long)st.takeovers);
	else
		kv("recovery", "%llu repairs, %llu takeovers, %llu redelivered, %llu dropped, "
		   "%llu holes skipped", (unsigned long long)st.repairs,
		   (unsigned long long)st.takeovers, (unsigned long long)st.msgs_redelivered,
		   (unsigned long long)st.msgs_dropped, (unsigned long long)st.holes_skipped);
}

static void human(const struct tseg *s, const struct mpmc_view *v)
{
	char a[64], b[64];
	uint64_t now = now_real_ns();
	human_file(s, now);
	kv("last activity", "%s (%s ago, %s)", fmt_time(s->last_activity_ns, a, sizeof(a)),
	   fmt_age(now > s->last_activity_ns ? now - s->last_activity_ns : 0, b, sizeof(b)),
	   s->activity_from);
	if (!s->have_state)
		return;

	if (tseg_mpmc(s))
		human_mpmc_ring(s, v);
	else if (tseg_bcast(s))
		human_bcast_ring(s);
	else
		human_spsc_ring(s);
	/* relaxed throughout: private copies */
#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)
	if (!strcmp(s->backend, "file")) {
		uint8_t now_id[16];
		bool same = mf_boot_id(now_id) == 0 && !memcmp(now_id, s->ctl.persist.boot_id, 16);
		kv("durable", "records up to %llu flushed to disk; last used %s",
		   (unsigned long long)LD(s->ctl.persist.durable_tail),
		   same ? "in this boot" : "before the last reboot (recovered at the next open)");
	}
	kv("last attach", "%s", fmt_time(LD(s->ctl.last_attach_ns), a, sizeof(a)));
	kv("last close", "%s", fmt_time(LD(s->ctl.last_close_ns), a, sizeof(a)));
#undef LD
	human_participants(s);
	human_counters(s);
}

static int info_seg(const struct opts *o, struct tseg *s)
{
	int rc;
	struct mpmc_view *v = calloc(1, sizeof(*v));
	if (!v)
		return fail(EXIT_ERROR, NULL, "out of memory");
	if (tseg_mpmc(s) && s->have_state)
		mpmc_look(s, v);
	if (o->json) {
		struct jw w;
		jw_init(&w, stdout);
		jw_obj(&w, NULL);
		json_summary(&w, s);
		json_header(&w, s);
		json_state(&w, s);
		json_mpmc(&w, s, v);
		jw_obj_end(&w);
		jw_done(&w);
	} else {
		human(s, v);
	}
	rc = s->status == TS_OK ? EXIT_OK : EXIT_PROBLEM;
	if (rc != EXIT_OK)
		fail(rc, s->path, "%s: %s", tstatus_name(s->status), s->reason);
	free(v);
	return finish_output(rc);
}

int cmd_info(const struct opts *o)
{
	return with_target(o, info_seg);
}

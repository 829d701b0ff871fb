/* SPDX-License-Identifier: MIT */
/*
 * Suite `tool`: shmctl-tool run as a separate program (fork + exec, output
 * captured through pipes) against real segments made here: healthy ones,
 * corrupt ones, one whose owner was SIGKILLed, one held by a live process,
 * and files in /dev/shm that are not rings.  --json output is parsed by jq
 * (jparse below) and asserted field by field; human output is checked
 * for the key values.  gc is raced against a process that attaches and
 * detaches in a loop, and watch is driven under a pseudo-terminal.
 *
 * Every ring name is "t-<tag>-<pid>-<n>" with this test's pid, so that
 * `--match 't-*-<pid>-*'` confines list and gc to this test's files: the
 * tool is never let loose on anybody else's segments.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "shmring.h"
#include "ring/mpmc.h"
#include "ring/spsc.h"
#include "shm/segment.h"
#include "shm/ctl.h"

#define MS (1000ll * 1000)
#define HOUR_NS (3600ull * 1000000000ull)

/* ======================================================================= */
/* bookkeeping                                                             */
/* ======================================================================= */

/* every path a test names (new_uri, t_remember) is removed after it */
TestSuite(tool, .fini = t_cleanup);

static const char *name_of(const char *uri)
{
	return strncmp(uri, "shm:", 4) ? uri : uri + 4;
}

/* A fresh ring URI of this test, remembered for cleanup. */
static const char *new_uri(const char *tag)
{
	return t_ring_uri(tag);
}

/* The glob that matches every file this test process names. */
static const char *my_glob(void)
{
	static char g[64];
	snprintf(g, sizeof(g), "t-*-%d-*", (int)getpid());
	return g;
}

static void make_ring(const char *uri, uint64_t cap, uint32_t max)
{
	shmring_close(t_create(uri, cap, max));
}

/* ======================================================================= */
/* running the tool                                                        */
/* ======================================================================= */


static const char *tool_path(void)
{
	static char p[512];
	const char *b = getenv("SHMRING_TEST_BUILD");
	snprintf(p, sizeof(p), "%s/shmctl-tool", b && *b ? b : "build");
	return p;
}

/* Run the tool with argv (NULL-terminated), capture stderr, and stdout
 * unless it goes to the file out_path (then r.out stays empty).  Killed
 * after limit_s seconds. */
static struct t_run run_argv_to(char *const argv[], const char *out_path, unsigned limit_s)
{
	return t_run_prog(tool_path(), argv, NULL, out_path, limit_s);
}

static struct t_run run_argv(char *const argv[])
{
	return run_argv_to(argv, NULL, 20);
}

#define MAX_ARGS 24

/* tool("list", "--json", NULL) */
static struct t_run tool(const char *first, ...)
{
	char *argv[MAX_ARGS];
	int n = 0;
	argv[n++] = "shmctl-tool";
	va_list ap;
	va_start(ap, first);
	for (const char *a = first; a && n < MAX_ARGS - 1; a = va_arg(ap, const char *))
		argv[n++] = (char *)a;
	va_end(ap);
	argv[n] = NULL;
	return run_argv(argv);
}

static int lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Exit status as expected, and stderr empty (0) or exactly one line. */
static void expect(const struct t_run *r, int status, const char *what)
{
	cr_assert_eq(r->status, status, "%s: exit %d, want %d\nstdout: %s\nstderr: %s", what,
		     r->status, status, r->out, r->err);
	if (status == 0)
		cr_assert_eq(r->err_len, 0, "%s: stderr not empty: %s", what, r->err);
	else
		cr_assert_eq(lines(r->err), 1, "%s: stderr must be one line: '%s'", what, r->err);
}

/* ======================================================================= */
/* JSON through jq                                                         */
/* ======================================================================= */

/*
 * jq parses the document and writes it out again one value a line, in
 * document order, the first character saying what the line holds:
 *   O<n>  an object of n members, each a K<name> line and then its value
 *   A<n>  an array of n items
 *   S<s>  a string   N<text> a number   T / F true, false   Z null
 * Names and strings have '\', newline and NUL escaped as "\\", "\n" and
 * "\0".  The
 * test keeps only this flat reading; jq refuses what is not exactly one
 * JSON document.  jq 1.6 holds numbers as doubles: exact up to 2^53.
 */
static const char JQ_FLAT[] =
	"if length != 1 then error(\"\\(length) documents, want one\") else .[0] end"
	" | def esc: gsub(\"\\\\\\\\\"; \"\\\\\\\\\") | gsub(\"\\n\"; \"\\\\n\")"
	" | gsub(\"\\u0000\"; \"\\\\0\");"
	" def emit: if type == \"object\" then \"O\\(length)\","
	"   (to_entries[] | \"K\\(.key | esc)\", (.value | emit))"
	" elif type == \"array\" then \"A\\(length)\", (.[] | emit)"
	" elif type == \"string\" then \"S\\(esc)\""
	" elif type == \"number\" then \"N\\(tojson)\""
	" elif type == \"boolean\" then (if . then \"T\" else \"F\" end)"
	" else \"Z\" end; emit";

enum jt { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
	enum jt t;
	bool b;
	char *s;                 /* string value, or the number's text */
	size_t n;                /* items */
	struct jv **items;
	char **keys;             /* objects */
};

/* One line of jq's output without its first character, unescaped. */
static char *unesc(const char *p, size_t len)
{
	char *s = malloc(len + 1), *o = s;
	cr_assert_not_null(s);
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\\' && i + 1 < len) {
			i++;
			*o++ = p[i] == 'n' ? '\n' : p[i] == '0' ? '\0' : p[i];
		} else {
			*o++ = p[i];
		}
	}
	*o = 0;
	return s;
}

/* The next line of *pp as a value (with its members and items). */
static struct jv *jread(const char **pp, const char *doc)
{
	const char *p = *pp, *nl = strchr(p, '\n');
	cr_assert_not_null(nl, "jq output ends early for:\n%s", doc);
	*pp = nl + 1;
	struct jv *v = calloc(1, sizeof(*v));
	cr_assert_not_null(v);
	switch (*p) {
	case 'O':
	case 'A': {
		v->t = *p == 'O' ? J_OBJ : J_ARR;
		v->n = strtoul(p + 1, NULL, 10);
		v->items = calloc(v->n + 1, sizeof(*v->items));
		v->keys = calloc(v->n + 1, sizeof(*v->keys));
		cr_assert(v->items && v->keys);
		for (size_t i = 0; i < v->n; i++) {
			if (v->t == J_OBJ) {
				const char *k = *pp, *knl = strchr(k, '\n');
				cr_assert(*k == 'K' && knl, "jq: no member name for:\n%s", doc);
				v->keys[i] = unesc(k + 1, (size_t)(knl - k - 1));
				*pp = knl + 1;
			}
			v->items[i] = jread(pp, doc);
		}
		break;
	}
	case 'S': v->t = J_STR; v->s = unesc(p + 1, (size_t)(nl - p - 1)); break;
	case 'N': v->t = J_NUM; v->s = strndup(p + 1, (size_t)(nl - p - 1)); break;
	case 'T': v->t = J_BOOL; v->b = true; break;
	case 'F': v->t = J_BOOL; break;
	case 'Z': v->t = J_NULL; break;
	default: cr_assert_fail("jq: unexpected line '%.*s' for:\n%s", (int)(nl - p), p, doc);
	}
	return v;
}

/* Parse one whole document (jq fails on anything else). */
static struct jv *jparse(const char *text)
{
	char *argv[] = { "jq", "-r", "-s", (char *)JQ_FLAT, NULL };
	struct t_run r = t_run_prog("jq", argv, text, NULL, 20);
	cr_assert_eq(r.status, 0, "JSON: jq says %s in:\n%s", r.err, text);
	const char *p = r.out;
	struct jv *v = jread(&p, text);
	cr_assert_eq(*p, 0, "jq: more than one value for:\n%s", text);
	t_run_free(&r);
	return v;
}

static void jfree(struct jv *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		jfree(v->items[i]);
		free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->s);
	free(v);
}

/* "a.b.0.c": members by name, array items by index. */
static struct jv *jget(struct jv *v, const char *path)
{
	char part[128];
	while (v && *path) {
		size_t l = strcspn(path, ".");
		snprintf(part, sizeof(part), "%.*s", (int)l, path);
		path += l + (path[l] == '.');
		struct jv *next = NULL;
		if (v->t == J_OBJ) {
			for (size_t i = 0; i < v->n; i++)
				if (!strcmp(v->keys[i], part))
					next = v->items[i];
		} else if (v->t == J_ARR) {
			char *end;
			unsigned long k = strtoul(part, &end, 10);
			if (!*end && k < v->n)
				next = v->items[k];
		}
		v = next;
	}
	return v;
}

static struct jv *jmust(struct jv *v, const char *path, enum jt t)
{
	struct jv *x = jget(v, path);
	cr_assert_not_null(x, "JSON: no member %s", path);
	cr_assert_eq(x->t, t, "JSON: %s has type %d, want %d", path, x->t, t);
	return x;
}

static uint64_t ju64(struct jv *v, const char *path)
{
	const char *s = jmust(v, path, J_NUM)->s;
	/* jq writes a large number with an exponent */
	return s[strspn(s, "0123456789")] ? (uint64_t)strtod(s, NULL) : strtoull(s, NULL, 10);
}

static double jdbl(struct jv *v, const char *path)
{
	return strtod(jmust(v, path, J_NUM)->s, NULL);
}

static const char *jstr(struct jv *v, const char *path)
{
	return jmust(v, path, J_STR)->s;
}

static bool jbool(struct jv *v, const char *path)
{
	return jmust(v, path, J_BOOL)->b;
}

static bool jnull(struct jv *v, const char *path)
{
	struct jv *x = jget(v, path);
	cr_assert_not_null(x, "JSON: no member %s", path);
	return x->t == J_NULL;
}

/* The element of array `arr` whose string member `key` equals `val`. */
static struct jv *jfind(struct jv *arr, const char *key, const char *val)
{
	if (!arr || arr->t != J_ARR)
		return NULL;
	for (size_t i = 0; i < arr->n; i++) {
		struct jv *k = jget(arr->items[i], key);
		if (k && k->t == J_STR && !strcmp(k->s, val))
			return arr->items[i];
	}
	return NULL;
}

/* ======================================================================= */
/* segments in known states                                                */
/* ======================================================================= */

/* A child that opens a ring with a role, sends some messages, receives
 * some, says it is ready and waits to be killed or told to go. */
struct holder {
	char uri[160];
	int roles, nsend, nrecv;
	uint32_t len;
	_Atomic int ready, quit;
	int rc;
};

static int holder_main(void *arg)
{
	struct holder *h = arg;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	struct shmring *r = NULL;
	int rc = shmring_open(h->uri, h->roles, NULL, &r);
	if (rc < 0) {
		h->rc = rc;
		atomic_store(&h->ready, -1);
		return 1;
	}
	uint8_t buf[4096];
	for (int i = 0; i < h->nsend; i++) {
		t_fill(buf, h->len, (uint64_t)i);
		if ((rc = shmring_send(r, buf, h->len, 1000 * MS)) < 0) {
			h->rc = rc;
			atomic_store(&h->ready, -1);
			return 2;
		}
	}
	for (int i = 0; i < h->nrecv; i++) {
		ssize_t n = shmring_recv(r, buf, sizeof(buf), 1000 * MS);
		if (n < 0) {
			h->rc = (int)n;
			atomic_store(&h->ready, -1);
			return 3;
		}
	}
	atomic_store(&h->ready, 1);
	while (!atomic_load(&h->quit))
		t_sleep_ms(2);
	shmring_close(r);
	return 0;
}

static struct holder *holder_start(const char *uri, int roles, int nsend, int nrecv,
				   uint32_t len, pid_t *pid)
{
	struct holder *h = t_shared(sizeof(*h));
	memset(h, 0, sizeof(*h));
	snprintf(h->uri, sizeof(h->uri), "%s", uri);
	h->roles = roles;
	h->nsend = nsend;
	h->nrecv = nrecv;
	h->len = len;
	*pid = t_spawn(holder_main, h);
	for (int i = 0; i < 5000 && atomic_load(&h->ready) == 0; i++)
		t_sleep_ms(1);
	cr_assert_eq(atomic_load(&h->ready), 1, "holder on %s: %s", uri, shmring_strerror(h->rc));
	return h;
}

static void holder_kill(pid_t pid)
{
	kill(pid, SIGKILL);
	cr_assert_eq(t_wait(pid), 128 + SIGKILL);
}

static void holder_stop(struct holder *h, pid_t pid)
{
	atomic_store(&h->quit, 1);
	cr_assert_eq(t_wait(pid), 0);
	t_unshared(h, sizeof(*h));
}

static void patch_u64(const char *path, off_t off, uint64_t v) { t_patch(path, off, &v, 8); }
static void patch_u32(const char *path, off_t off, uint32_t v) { t_patch(path, off, &v, 4); }

/* Break the header checksum (the magic stays: still "ours"). */
static void corrupt_checksum(const char *path)
{
	uint32_t cs;
	t_peek(path, offsetof(struct seg_hdr, checksum), &cs, 4);
	patch_u32(path, offsetof(struct seg_hdr, checksum), cs ^ 0x5a5a5a5a);
}

/* Make a valid ring look `ago_ns` old: header (checksum recomputed) and
 * the control block's attach and close times. */
static void age_ring(const char *path, uint64_t ago_ns)
{
	struct seg_hdr h;
	t_peek(path, 0, &h, sizeof(h));
	uint64_t then = (uint64_t)time(NULL) * 1000000000ull - ago_ns;
	h.created_ns = then;
	h.checksum = seg_checksum(&h);
	t_patch(path, 0, &h, sizeof(h));
	patch_u64(path, SEG_CTL_OFF + offsetof(struct ctl_shared, last_attach_ns), then);
	patch_u64(path, SEG_CTL_OFF + offsetof(struct ctl_shared, last_close_ns), then);
}

static void set_mtime_ago(const char *path, time_t secs)
{
	struct timespec ts[2] = { { time(NULL) - secs, 0 }, { time(NULL) - secs, 0 } };
	cr_assert_eq(utimensat(AT_FDCWD, path, ts, 0), 0, "utimensat %s", path);
}

/* A file in /dev/shm that is not a ring (no shmring magic). */
static const char *make_foreign(const char *tag, size_t size)
{
	const char *path = t_remember(t_path_of(t_name(tag)));
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0, "create %s: %s", path, strerror(errno));
	char *buf = calloc(1, size);
	memcpy(buf, "not a ring, just bytes", 22);
	cr_assert_eq(write(fd, buf, size), (ssize_t)size);
	free(buf);
	close(fd);
	return path;
}

/* ======================================================================= */
/* list                                                                    */
/* ======================================================================= */

Test(tool, list_json_and_table_show_each_kind_of_segment, .timeout = 30)
{
	const char *live = new_uri("live"), *dead = new_uri("dead"), *bad = new_uri("bad");
	const char *idle = new_uri("idle");
	make_ring(live, 65536, 1024);
	make_ring(dead, 8192, 512);
	make_ring(bad, 4096, 100);
	make_ring(idle, 4096, 100);
	/* a role holder came and went: that is the ring's last activity
	 * (a monitor's open and close is not) */
	shmring_close(t_open(idle, SHMRING_CONSUMER));
	pid_t lp, dp;
	struct holder *lh = holder_start(live, SHMRING_PRODUCER, 5, 0, 100, &lp);
	struct holder *dh = holder_start(dead, SHMRING_PRODUCER | SHMRING_CONSUMER, 2, 0, 64, &dp);
	holder_kill(dp);
	corrupt_checksum(t_path_of(bad));
	const char *foreign = make_foreign("foreign", 200000);

	struct t_run r = tool("list", "--json", "--match", my_glob(), NULL);
	expect(&r, 1, "list with a corrupt segment");
	cr_assert(strstr(r.err, "1 corrupt segment"), "stderr: %s", r.err);
	struct jv *j = jparse(r.out);
	struct jv *segs = jmust(j, "segments", J_ARR);
	cr_assert_eq(segs->n, 4, "4 rings; the foreign file is skipped:\n%s", r.out);
	cr_assert_eq(ju64(j, "count"), 4);
	cr_assert_eq(ju64(j, "corrupt"), 1);
	cr_assert_null(jfind(segs, "path", foreign), "foreign file listed");

	struct jv *s = jfind(segs, "name", name_of(live));
	cr_assert_not_null(s);
	cr_assert_str_eq(jstr(s, "uri"), live);
	cr_assert_str_eq(jstr(s, "path"), t_path_of(live));
	cr_assert_str_eq(jstr(s, "backend"), "shm");
	cr_assert_str_eq(jstr(s, "status"), "ok");
	cr_assert(jnull(s, "reason"));
	cr_assert_str_eq(jstr(s, "kind"), "spsc");
	cr_assert_eq(ju64(s, "capacity"), 65536);
	cr_assert_eq(ju64(s, "max_msg"), 1024);
	cr_assert_eq(ju64(s, "size"), 20480 + 65536);
	cr_assert_eq(ju64(s, "used"), 5 * spsc_rec_size(100));
	cr_assert_float_eq(jdbl(s, "fill_pct"), 100.0 * 5 * 112 / 65536, 0.01);
	cr_assert_eq(ju64(s, "producers.live"), 1);
	cr_assert_eq(ju64(s, "producers.dead"), 0);
	cr_assert_eq(ju64(s, "consumers.live"), 0);
	cr_assert_eq(ju64(s, "consumers.dead"), 0);
	cr_assert(jbool(s, "in_use"));
	cr_assert_not(jbool(s, "shut_down"));
	cr_assert_eq(ju64(s, "owner.uid"), (uint64_t)getuid());
	cr_assert_str_eq(jstr(s, "mode"), "0600");
	cr_assert_str_eq(jstr(s, "last_activity_from"), "last attach");
	cr_assert_leq(ju64(s, "idle_s"), 10);

	s = jfind(segs, "name", name_of(dead));
	cr_assert_not_null(s);
	cr_assert_str_eq(jstr(s, "status"), "ok");
	cr_assert_eq(ju64(s, "capacity"), 8192);
	cr_assert_eq(ju64(s, "producers.live"), 0);
	cr_assert_eq(ju64(s, "producers.dead"), 1);
	cr_assert_eq(ju64(s, "consumers.dead"), 1, "one slot with both roles");
	cr_assert_not(jbool(s, "in_use"), "the killed process mapped it, nobody else");

	s = jfind(segs, "name", name_of(bad));
	cr_assert_not_null(s);
	cr_assert_str_eq(jstr(s, "status"), "corrupt");
	cr_assert(strstr(jstr(s, "reason"), "checksum"), "reason: %s", jstr(s, "reason"));
	cr_assert(jnull(s, "capacity"));
	cr_assert(jnull(s, "producers"));

	s = jfind(segs, "name", name_of(idle));
	cr_assert_str_eq(jstr(s, "status"), "ok");
	cr_assert_not(jbool(s, "in_use"));
	cr_assert_str_eq(jstr(s, "last_activity_from"), "last close");
	jfree(j);
	t_run_free(&r);

	/* the table: one row per ring, key values in it */
	r = tool("list", "--match", my_glob(), NULL);
	expect(&r, 1, "list (table)");
	cr_assert_eq(lines(r.out), 5, "header + 4 rows:\n%s", r.out);
	cr_assert(strstr(r.out, "NAME") && strstr(r.out, "CAPACITY") && strstr(r.out, "PROD"));
	const char *row = strstr(r.out, name_of(live));
	cr_assert_not_null(row);
	cr_assert(!strncmp(strstr(row, "spsc"), "spsc", 4));
	char want[64];
	snprintf(want, sizeof(want), "%.1f%%", 100.0 * 5 * 112 / 65536);
	cr_assert(strstr(row, "64K") && strstr(row, want) && strstr(row, "1/0") &&
		  strstr(row, "live") && strstr(row, "0600") && strstr(row, "ok, in use"),
		  "row: %.*s", (int)strcspn(row, "\n"), row);
	row = strstr(r.out, name_of(dead));
	cr_assert(strstr(row, "8K") && strstr(row, "0/1"), "row: %.*s", (int)strcspn(row, "\n"), row);
	row = strstr(r.out, name_of(bad));
	cr_assert(!strncmp(strstr(row, "corrupt: header checksum"), "corrupt", 7));
	cr_assert_null(strstr(r.out, "foreign"));
	t_run_free(&r);

	holder_stop(lh, lp);
	t_unshared(dh, sizeof(*dh));
}

Test(tool, list_dir_finds_file_rings_and_skips_other_files, .timeout = 30)
{
	char dir[] = "/tmp/shmctl-test-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char ring[300], junk[300], uri[320];
	snprintf(ring, sizeof(ring), "%s/%s", dir, t_name("fring"));
	snprintf(junk, sizeof(junk), "%s/%s", dir, t_name("junk"));
	snprintf(uri, sizeof(uri), "file:%s", ring);
	t_remember(ring);
	t_remember(junk);
	make_ring(uri, 16384, 256);
	int fd = open(junk, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "SHMRING", 7), 7, "a prefix of the magic is not the magic");
	close(fd);

	/* the same directory three times over (and /dev/shm again): once */
	char dir_slash[320];
	snprintf(dir_slash, sizeof(dir_slash), "%s/", dir);
	struct t_run r = tool("list", "--json", "--dir", dir, "--dir", dir_slash, "--dir", dir,
			    "--dir", "/dev/shm/", "--match", my_glob(), NULL);
	expect(&r, 0, "list --dir");
	struct jv *j = jparse(r.out);
	struct jv *segs = jmust(j, "segments", J_ARR);
	cr_assert_eq(segs->n, 1, "%s", r.out);
	struct jv *s = jfind(segs, "path", ring);
	cr_assert_not_null(s);
	cr_assert_str_eq(jstr(s, "backend"), "file");
	cr_assert_str_eq(jstr(s, "uri"), uri);
	cr_assert_str_eq(jstr(s, "status"), "ok");
	cr_assert_eq(ju64(s, "capacity"), 16384);
	jfree(j);
	t_run_free(&r);

	/* read-only commands take file: URIs */
	r = tool("info", "--json", uri, NULL);
	expect(&r, 0, "info file:");
	j = jparse(r.out);
	cr_assert_str_eq(jstr(j, "backend"), "file");
	cr_assert_eq(ju64(j, "max_msg"), 256);
	cr_assert(jbool(j, "persist.this_boot"), "%s", r.out);
	cr_assert_eq(ju64(j, "persist.durable_tail"), 0);
	jfree(j);
	t_run_free(&r);
	r = tool("check", uri, NULL);
	expect(&r, 0, "check file:");
	t_run_free(&r);
	/* gc --dir removes an idle file ring, never the junk next to it */
	r = tool("gc", "--min-age", "0s", "--dir", dir, "--match", my_glob(), NULL);
	expect(&r, 0, "gc --dir");
	cr_assert(strstr(r.out, "removed") && strstr(r.out, ring), "%s", r.out);
	cr_assert_not(t_exists(ring));
	cr_assert(t_exists(junk));
	t_run_free(&r);
	unlink(junk);
	rmdir(dir);
}

/* ======================================================================= */
/* info                                                                    */
/* ======================================================================= */

Test(tool, info_shows_header_indices_participants_and_counters, .timeout = 30)
{
	const char *uri = new_uri("info");
	make_ring(uri, 65536, 1024);
	pid_t pp, cp;
	struct holder *ph = holder_start(uri, SHMRING_PRODUCER, 3, 0, 100, &pp);
	struct holder *ch = holder_start(uri, SHMRING_CONSUMER, 0, 1, 0, &cp);
	holder_kill(cp);                  /* a consumer that died */

	struct t_run r = tool("info", "--json", uri, NULL);
	expect(&r, 0, "info");
	struct jv *j = jparse(r.out);
	cr_assert_str_eq(jstr(j, "status"), "ok");
	cr_assert_str_eq(jstr(j, "header.magic"), "0x31474e49524d4853");
	cr_assert_eq(ju64(j, "header.version"), SEG_VERSION);
	cr_assert_eq(ju64(j, "header.hdr_size"), 104);
	cr_assert(jbool(j, "header.stamp_ok"));
	cr_assert(jbool(j, "header.checksum_ok"));
	cr_assert_str_eq(jstr(j, "header.kind_name"), "spsc");
	cr_assert_eq(ju64(j, "header.capacity"), 65536);
	cr_assert_eq(ju64(j, "header.max_msg"), 1024);
	cr_assert_eq(ju64(j, "header.seg_size"), 20480 + 65536);
	cr_assert_eq(ju64(j, "header.ctl_off"), 4096);
	cr_assert_eq(ju64(j, "header.ring_off"), 16384);
	cr_assert_eq(ju64(j, "header.data_off"), 20480);
	cr_assert_eq(ju64(j, "header.creator_uid"), (uint64_t)getuid());
	cr_assert_eq(ju64(j, "header.creator_pid"), (uint64_t)getpid());
	cr_assert_str_eq(jstr(j, "header.mode"), "0600");
	cr_assert_eq(ju64(j, "indices.prod_tail"), 3 * 112);
	cr_assert_eq(ju64(j, "indices.cons_head"), 112);
	cr_assert_eq(ju64(j, "indices.cons_read"), 112);
	cr_assert_eq(ju64(j, "indices.used"), 2 * 112);
	cr_assert_eq(ju64(j, "used"), 2 * 112);
	cr_assert_eq(ju64(j, "producers.live"), 1);
	cr_assert_eq(ju64(j, "consumers.dead"), 1);
	cr_assert_eq(ju64(j, "roles.producer_slot"), 0);
	cr_assert_eq(ju64(j, "roles.consumer_slot"), 1, "the dead consumer still owns its role");

	struct jv *parts = jmust(j, "participants", J_ARR);
	cr_assert_eq(parts->n, 2);
	struct jv *p = jfind(parts, "role", "producer");
	cr_assert_not_null(p);
	cr_assert_eq(ju64(p, "pid"), (uint64_t)pp);
	cr_assert(jbool(p, "alive"));
	cr_assert(jbool(p, "pid_matches"));
	cr_assert_str_eq(jstr(p, "owner_of"), "producer");
	cr_assert_gt(ju64(p, "attached_ns"), 0);
	cr_assert_gt(ju64(p, "started_ns"), 0);
	p = jfind(parts, "role", "consumer");
	cr_assert_not_null(p);
	cr_assert_eq(ju64(p, "pid"), (uint64_t)cp);
	cr_assert_not(jbool(p, "alive"));
	cr_assert_not(jbool(p, "pid_matches"), "pid %d is gone", (int)cp);

	cr_assert_eq(ju64(j, "stats.msgs_sent"), 3);
	cr_assert_eq(ju64(j, "stats.bytes_sent"), 300);
	cr_assert_eq(ju64(j, "stats.msgs_recv"), 1);
	cr_assert_eq(ju64(j, "stats.bytes_recv"), 100);
	cr_assert_eq(ju64(j, "stats.takeovers"), 0);
	cr_assert_eq(ju64(j, "stats.repairs"), 0);
	cr_assert_eq(ju64(j, "stats.msgs_redelivered"), 0);
	cr_assert_eq(ju64(j, "stats.msgs_dropped"), 0);
	cr_assert_eq(ju64(j, "stats.holes_skipped"), 0);
	cr_assert_eq(ju64(j, "wait.shutdown"), 0);
	jfree(j);
	t_run_free(&r);

	r = tool("info", uri, NULL);
	expect(&r, 0, "info (words)");
	char want[64];
	cr_assert(strstr(r.out, "status        ok, in use"), "%s", r.out);
	cr_assert(strstr(r.out, "65536 (64K), max_msg 1024 (1K)"), "%s", r.out);
	cr_assert(strstr(r.out, "3 messages, 300 bytes"), "%s", r.out);
	cr_assert(strstr(r.out, "1 message, 100 bytes"), "%s", r.out);
	cr_assert(strstr(r.out, "1 live producer, 0 dead; 0 live consumers, 1 dead"), "%s", r.out);
	cr_assert(strstr(r.out, "DEAD"), "%s", r.out);
	snprintf(want, sizeof(want), " %d ", (int)pp);
	cr_assert(strstr(r.out, want), "producer pid in the table: %s", r.out);
	t_run_free(&r);

	/* a takeover by a new consumer shows in the counters */
	struct shmring *c = t_open(uri, SHMRING_CONSUMER);
	r = tool("info", "--json", uri, NULL);
	expect(&r, 0, "info after takeover");
	j = jparse(r.out);
	cr_assert_eq(ju64(j, "stats.takeovers"), 1);
	cr_assert_eq(ju64(j, "consumers.live"), 1);
	cr_assert_eq(ju64(j, "consumers.dead"), 0);
	jfree(j);
	t_run_free(&r);
	shmring_close(c);
	holder_stop(ph, pp);
	t_unshared(ch, sizeof(*ch));
}

Test(tool, info_of_corrupt_foreign_missing_and_bad_uri, .timeout = 30)
{
	const char *bad = new_uri("ibad");
	make_ring(bad, 4096, 100);
	corrupt_checksum(t_path_of(bad));
	struct t_run r = tool("info", "--json", bad, NULL);
	expect(&r, 1, "info of a corrupt ring");
	struct jv *j = jparse(r.out);
	cr_assert_str_eq(jstr(j, "status"), "corrupt");
	cr_assert_not(jbool(j, "header.checksum_ok"));
	cr_assert_eq(ju64(j, "header.capacity"), 4096, "raw header still shown");
	cr_assert(jnull(j, "indices"));
	cr_assert(jnull(j, "stats"));
	jfree(j);
	t_run_free(&r);

	const char *foreign = make_foreign("iforeign", 4096);
	const char *name = strrchr(foreign, '/') + 1;
	r = tool("info", name, NULL);
	expect(&r, 1, "info of a foreign file");
	cr_assert(strstr(r.err, "not a shmring segment") && strstr(r.err, foreign), "%s", r.err);
	cr_assert_eq(r.out_len, 0);
	t_run_free(&r);

	r = tool("info", t_name("missing"), NULL);
	expect(&r, 2, "info of a missing ring");
	cr_assert(strstr(r.err, "No such file"), "%s", r.err);
	t_run_free(&r);

	r = tool("info", "shm:no/slash", NULL);
	expect(&r, 2, "bad URI");
	cr_assert(strstr(r.err, "invalid ring URI"), "%s", r.err);
	t_run_free(&r);
	r = tool("info", "mq:queue", NULL);
	expect(&r, 2, "mq: URI");
	t_run_free(&r);
}

/* ======================================================================= */
/* check                                                                   */
/* ======================================================================= */

/* check must give exit 1 and a reason containing `want`. */
static void expect_corrupt(const char *uri, const char *want, const char *status)
{
	struct t_run r = tool("check", "--json", uri, NULL);
	expect(&r, 1, want);
	struct jv *j = jparse(r.out);
	cr_assert_not(jbool(j, "ok"));
	cr_assert_str_eq(jstr(j, "status"), status, "%s", r.out);
	cr_assert(strstr(jstr(j, "reason"), want), "reason '%s' lacks '%s'", jstr(j, "reason"), want);
	cr_assert(strstr(r.err, want), "stderr: %s", r.err);
	jfree(j);
	t_run_free(&r);
	r = tool("check", uri, NULL);
	expect(&r, 1, want);
	cr_assert(strstr(r.out, status) && strstr(r.out, want), "%s", r.out);
	t_run_free(&r);
}

static const char *ring_with(const char *tag, int nmsg, uint32_t len)
{
	const char *uri = new_uri(tag);
	struct shmring *r = t_create(uri, 4096, 1000);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	uint8_t buf[1000];
	for (int i = 0; i < nmsg; i++) {
		t_fill(buf, len, (uint64_t)i);
		cr_assert_eq(shmring_send(p, buf, len, 0), 0);
	}
	shmring_close(p);
	shmring_close(r);
	return uri;
}

Test(tool, check_accepts_healthy_and_names_each_corruption, .timeout = 30)
{
	const char *ok = ring_with("cok", 3, 40);
	struct t_run r = tool("check", "--json", ok, NULL);
	expect(&r, 0, "healthy ring");
	struct jv *j = jparse(r.out);
	cr_assert(jbool(j, "ok"));
	cr_assert_str_eq(jstr(j, "status"), "ok");
	cr_assert(jnull(j, "reason"));
	cr_assert(jbool(j, "records.verified"));
	cr_assert_eq(ju64(j, "records.messages"), 3);
	cr_assert_eq(ju64(j, "records.bytes"), 120);
	cr_assert_eq(jmust(j, "warnings", J_ARR)->n, 0);
	jfree(j);
	t_run_free(&r);
	r = tool("check", ok, NULL);
	expect(&r, 0, "healthy ring (words)");
	cr_assert(strstr(r.out, ": ok (spsc, capacity 4K, 3 messages queued, 120 bytes)"), "%s", r.out);
	t_run_free(&r);

	const char *u = ring_with("csum", 1, 8);
	corrupt_checksum(t_path_of(u));
	expect_corrupt(u, "checksum mismatch", "corrupt");

	u = ring_with("ctrunc", 1, 8);
	cr_assert_eq(truncate(t_path_of(u), 20480), 0);
	expect_corrupt(u, "file size 20480 differs", "corrupt");

	u = ring_with("cver", 1, 8);
	patch_u32(t_path_of(u), offsetof(struct seg_hdr, version), 0);
	expect_corrupt(u, "not published", "incomplete");

	u = ring_with("cstamp", 1, 8);
	{
		struct seg_hdr h;
		t_peek(t_path_of(u), 0, &h, sizeof(h));
		h.stamp ^= 1;
		h.checksum = seg_checksum(&h);
		t_patch(t_path_of(u), 0, &h, sizeof(h));
	}
	expect_corrupt(u, "incompatible build", "unsupported");

	u = ring_with("chead", 2, 8);
	patch_u64(t_path_of(u), SEG_RING_OFF + offsetof(struct spsc_shared, cons_head), 3);
	expect_corrupt(u, "multiple of 8", "corrupt");

	u = ring_with("cread", 2, 8);
	patch_u64(t_path_of(u), SEG_RING_OFF + offsetof(struct spsc_shared, cons_read), 8);
	expect_corrupt(u, "cons_read 8 is not on a record boundary", "corrupt");

	u = ring_with("ctag", 3, 8);
	patch_u64(t_path_of(u), SEG_DATA_OFF + 16, (uint64_t)0xdeadbeef << 32 | 8);
	expect_corrupt(u, "unknown record tag 0xdeadbeef at offset 16", "corrupt");

	u = ring_with("clen", 2, 8);
	patch_u64(t_path_of(u), SEG_DATA_OFF + 16, (uint64_t)SPSC_TAG_MSG << 32 | 1001);
	expect_corrupt(u, "length 1001 > max_msg 1000", "corrupt");

	u = ring_with("cpad", 1, 8);
	patch_u64(t_path_of(u), SEG_DATA_OFF, (uint64_t)SPSC_TAG_PAD << 32 | 24);
	expect_corrupt(u, "filler of 24 bytes at offset 0", "corrupt");

	u = ring_with("cend", 2, 8);
	/* no zero word after the records: the walk must stop, not loop */
	for (uint64_t off = 32; off < 4096; off += 16)
		patch_u64(t_path_of(u), SEG_DATA_OFF + (off_t)off, (uint64_t)SPSC_TAG_MSG << 32 | 8);
	expect_corrupt(u, "no end marker", "corrupt");

	u = ring_with("cslot", 0, 8);
	patch_u32(t_path_of(u), SEG_CTL_OFF + offsetof(struct ctl_shared, parts[7].state), 9);
	expect_corrupt(u, "slot 7 has state 9", "corrupt");

	u = ring_with("cowner", 0, 8);
	patch_u32(t_path_of(u), SEG_CTL_OFF + offsetof(struct ctl_shared, prod_owner), 1000);
	expect_corrupt(u, "producer owner 1000", "corrupt");

	u = ring_with("ctail", 1, 8);
	patch_u64(t_path_of(u), SEG_RING_OFF + offsetof(struct spsc_shared, prod_tail), 1ull << 40);
	expect_corrupt(u, "more than capacity", "corrupt");

	/* not ours at all */
	const char *f = make_foreign("cforeign", 100);
	r = tool("check", strrchr(f, '/') + 1, NULL);
	expect(&r, 1, "check of a foreign file");
	cr_assert(strstr(r.err, "not a shmring segment"));
	t_run_free(&r);
	r = tool("check", t_name("nothere"), NULL);
	expect(&r, 2, "check of a missing ring");
	t_run_free(&r);
}

Test(tool, check_warns_about_a_dead_holder_but_passes, .timeout = 30)
{
	const char *uri = new_uri("cdead");
	make_ring(uri, 4096, 100);
	pid_t pid;
	struct holder *h = holder_start(uri, SHMRING_PRODUCER, 2, 0, 10, &pid);
	holder_kill(pid);
	struct t_run r = tool("check", "--json", uri, NULL);
	expect(&r, 0, "dead holder");
	struct jv *j = jparse(r.out);
	cr_assert(jbool(j, "ok"));
	struct jv *w = jmust(j, "warnings", J_ARR);
	cr_assert_eq(w->n, 1, "%s", r.out);
	cr_assert(strstr(jstr(w, "0"), "dead and not yet cleaned up"), "%s", jstr(w, "0"));
	cr_assert_eq(ju64(j, "records.messages"), 2);
	jfree(j);
	t_run_free(&r);
	t_unshared(h, sizeof(*h));
}

/* The control block's busy word with the control lock's byte free: a
 * holder died inside its section.  check says so (a warning: the next
 * attach repairs it), without taking the lock; the same word while a live
 * process holds the byte is no finding. */
static int lock_and_wait(void *arg);

Test(tool, check_warns_about_a_control_lock_holder_that_died, .timeout = 30)
{
	const char *uri = new_uri("cbusy");
	make_ring(uri, 4096, 100);
	patch_u32(t_path_of(uri), SEG_CTL_OFF + offsetof(struct ctl_shared, busy), 1);
	struct t_run r = tool("check", "--json", uri, NULL);
	expect(&r, 0, "busy word left set");
	struct jv *j = jparse(r.out);
	cr_assert(jbool(j, "ok"));
	struct jv *w = jmust(j, "warnings", J_ARR);
	cr_assert_eq(w->n, 1, "%s", r.out);
	cr_assert(strstr(jstr(w, "0"), "died inside its section"), "%s", jstr(w, "0"));
	jfree(j);
	t_run_free(&r);

	patch_u32(t_path_of(uri), SEG_CTL_OFF + offsetof(struct ctl_shared, busy), 0);
	pid_t holder = t_spawn(lock_and_wait, (void *)uri);   /* sets busy, keeps the byte */
	t_sleep_ms(100);
	r = tool("check", uri, NULL);
	expect(&r, 0, "a live holder");
	cr_assert(!strstr(r.out, "died inside") && !strstr(r.err, "died inside"), "%s", r.out);
	t_run_free(&r);
	kill(holder, SIGKILL);
	t_wait(holder);
}

/* ======================================================================= */
/* dump                                                                    */
/* ======================================================================= */

static uint8_t *read_file(const char *path, size_t *n)
{
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	uint8_t *b = malloc((size_t)st.st_size);
	t_peek(path, 0, b, (size_t)st.st_size);
	*n = (size_t)st.st_size;
	return b;
}

static void hex_of(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

Test(tool, dump_shows_messages_and_changes_nothing, .timeout = 30)
{
	const char *uri = new_uri("dump");
	struct shmring *r0 = t_create(uri, 16384, 2000);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	uint8_t big[600];
	t_fill(big, sizeof(big), 42);
	cr_assert_eq(shmring_send(p, "hello \"ring\"\n", 13, 0), 0);
	cr_assert_eq(shmring_send(p, big, sizeof(big), 0), 0);
	cr_assert_eq(shmring_send(p, "", 0, 0), 0);
	size_t n0, n1;
	uint8_t *before = read_file(t_path_of(uri), &n0);

	struct t_run r = tool("dump", "--json", uri, NULL);
	expect(&r, 0, "dump --json");
	struct jv *j = jparse(r.out);
	cr_assert_eq(ju64(j, "count"), 3);
	cr_assert_str_eq(jstr(j, "stopped"), "end");
	struct jv *m = jmust(j, "messages", J_ARR);
	cr_assert_eq(m->n, 3);
	cr_assert_eq(ju64(m, "0.len"), 13);
	cr_assert_str_eq(jstr(m, "0.text"), "hello \"ring\"\n");
	cr_assert_str_eq(jstr(m, "0.hex"), "68656c6c6f202272696e67220a");
	cr_assert_eq(ju64(m, "0.pos"), 0);
	cr_assert_not(jbool(m, "0.acquired"));
	cr_assert_eq(ju64(m, "1.len"), 600);
	cr_assert_eq(ju64(m, "1.shown"), 256, "default --bytes 256");
	cr_assert(jbool(m, "1.truncated"));
	cr_assert_eq(ju64(m, "1.offset") % 64, 0, "a large payload's record sits before a "
		     "64-byte boundary: offset %llu", (unsigned long long)ju64(m, "1.offset"));
	char hex[1300];
	hex_of(big, 256, hex);
	cr_assert_str_eq(jstr(m, "1.hex"), hex);
	cr_assert_eq(ju64(m, "2.len"), 0);
	cr_assert_str_eq(jstr(m, "2.text"), "");
	jfree(j);
	t_run_free(&r);

	r = tool("dump", "--json", "--hex", "--bytes", "0", "--count", "2", uri, NULL);
	expect(&r, 0, "dump --bytes 0 --count 2");
	j = jparse(r.out);
	cr_assert_eq(ju64(j, "count"), 2);
	cr_assert_str_eq(jstr(j, "stopped"), "count");
	hex_of(big, sizeof(big), hex);
	cr_assert_str_eq(jstr(j, "messages.1.hex"), hex);
	cr_assert_null(jget(j, "messages.1.text"), "--hex: no text member");
	jfree(j);
	t_run_free(&r);

	r = tool("dump", uri, NULL);
	expect(&r, 0, "dump (words)");
	cr_assert(strstr(r.out, "\"hello \\\"ring\\\"\\n\""), "%s", r.out);
	cr_assert(strstr(r.out, "len 600"), "%s", r.out);
	cr_assert(strstr(r.out, "(256 of 600 bytes shown)"), "%s", r.out);
	cr_assert(strstr(r.out, "3 messages, 613 bytes: end of the queue"), "%s", r.out);
	t_run_free(&r);
	r = tool("dump", "--hex", "--count", "1", uri, NULL);
	expect(&r, 0, "dump --hex");
	cr_assert(strstr(r.out, "68 65 6c 6c 6f 20 22 72  69 6e 67 22 0a"), "%s", r.out);
	cr_assert(strstr(r.out, "|hello \"ring\".|"), "%s", r.out);
	t_run_free(&r);
	r = tool("dump", "--hex", "--text", uri, NULL);
	expect(&r, 2, "--hex with --text");
	t_run_free(&r);

	/* not one byte of the segment changed, and nothing was consumed */
	uint8_t *after = read_file(t_path_of(uri), &n1);
	cr_assert_eq(n0, n1);
	cr_assert_eq(memcmp(before, after, n0), 0, "dump changed the segment");
	free(before);
	free(after);
	struct shmring *c = t_open(uri, SHMRING_CONSUMER);
	char buf[2000];
	cr_assert_eq(shmring_recv(c, buf, sizeof(buf), 0), 13);
	/* acquired but not released: dump marks it */
	struct shmring_msg msg;
	cr_assert_eq(shmring_acquire(c, &msg, 0), 0);
	r = tool("dump", "--json", uri, NULL);
	expect(&r, 0, "dump with an acquired message");
	j = jparse(r.out);
	cr_assert_eq(ju64(j, "count"), 2);
	cr_assert(jbool(j, "messages.0.acquired"));
	cr_assert_eq(ju64(j, "messages.0.len"), 600);
	cr_assert_not(jbool(j, "messages.1.acquired"));
	jfree(j);
	t_run_free(&r);
	cr_assert_eq(shmring_release(c, &msg), 0);
	cr_assert_eq(shmring_recv(c, buf, sizeof(buf), 0), 0);
	shmring_close(c);
	shmring_close(p);
	shmring_close(r0);

	/* a corrupt record stops the dump with exit 1 */
	const char *bad = ring_with("dbad", 3, 8);
	patch_u64(t_path_of(bad), SEG_DATA_OFF + 16, (uint64_t)0x12345678 << 32 | 8);
	r = tool("dump", "--json", bad, NULL);
	expect(&r, 1, "dump of a corrupt record");
	j = jparse(r.out);
	cr_assert_eq(ju64(j, "count"), 1);
	cr_assert_str_eq(jstr(j, "stopped"), "corrupt");
	cr_assert(strstr(jstr(j, "reason"), "unknown record tag"));
	jfree(j);
	t_run_free(&r);
}

/* ======================================================================= */
/* create, rm, argument errors                                             */
/* ======================================================================= */

Test(tool, create_and_rm, .timeout = 30)
{
	const char *uri = new_uri("create");
	struct t_run r = tool("create", uri, "--capacity", "64K", "--max-msg", "1K", "--mode", "0640",
			    NULL);
	expect(&r, 0, "create");
	cr_assert(strstr(r.out, "capacity 64K") && strstr(r.out, "mode 0640"), "%s", r.out);
	t_run_free(&r);
	struct stat st;
	cr_assert_eq(stat(t_path_of(uri), &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0640);
	r = tool("info", "--json", uri, NULL);
	expect(&r, 0, "info of a created ring");
	struct jv *j = jparse(r.out);
	cr_assert_eq(ju64(j, "capacity"), 65536);
	cr_assert_eq(ju64(j, "max_msg"), 1024);
	cr_assert_str_eq(jstr(j, "header.mode"), "0640");
	jfree(j);
	t_run_free(&r);
	struct shmring *h = t_open(uri, SHMRING_PRODUCER | SHMRING_CONSUMER);
	shmring_close(h);

	r = tool("create", uri, "--capacity", "64K", NULL);
	expect(&r, 2, "create of an existing ring");
	cr_assert(strstr(r.err, "already exists"), "%s", r.err);
	t_run_free(&r);
	/* MPMC rings exist on shm: only; the refusal leaves nothing behind */
	char fpath[300], furi[320];
	snprintf(fpath, sizeof(fpath), "/tmp/%s", t_name("fmpmc"));
	snprintf(furi, sizeof(furi), "file:%s", fpath);
	t_remember(fpath);
	r = tool("create", furi, "--kind", "mpmc", NULL);
	expect(&r, 2, "create mpmc on file:");
	cr_assert(strstr(r.err, "mpmc") && strstr(r.err, "file:") && strstr(r.err, "shm:NAME"),
		  "%s", r.err);
	cr_assert_not(t_exists(fpath));
	t_run_free(&r);

	/* rm: idle ring */
	r = tool("rm", uri, NULL);
	expect(&r, 0, "rm");
	cr_assert(strstr(r.out, "removed"));
	cr_assert_not(t_exists(t_path_of(uri)));
	t_run_free(&r);
	r = tool("rm", uri, NULL);
	expect(&r, 2, "rm of a missing ring");
	t_run_free(&r);

	/* rm: a foreign file is left alone */
	const char *f = make_foreign("rmforeign", 100);
	r = tool("rm", strrchr(f, '/') + 1, NULL);
	expect(&r, 1, "rm of a foreign file");
	cr_assert(strstr(r.err, "not a shmring segment") && strstr(r.err, "left alone"), "%s", r.err);
	cr_assert(t_exists(f));
	t_run_free(&r);

	/* rm: a corrupt ring (magic present) is ours to remove */
	const char *bad = new_uri("rmbad");
	make_ring(bad, 4096, 100);
	corrupt_checksum(t_path_of(bad));
	r = tool("rm", bad, NULL);
	expect(&r, 0, "rm of a corrupt ring");
	cr_assert(strstr(r.out, "corrupt"), "%s", r.out);
	cr_assert_not(t_exists(t_path_of(bad)));
	t_run_free(&r);

	/* rm: in use needs --force */
	const char *busy = new_uri("rmbusy");
	make_ring(busy, 4096, 100);
	pid_t pid;
	struct holder *hh = holder_start(busy, SHMRING_CONSUMER, 0, 0, 0, &pid);
	r = tool("rm", busy, NULL);
	expect(&r, 1, "rm of a ring in use");
	cr_assert(strstr(r.err, "in use") && strstr(r.err, "--force"), "%s", r.err);
	cr_assert(t_exists(t_path_of(busy)));
	t_run_free(&r);
	r = tool("rm", "--force", busy, NULL);
	expect(&r, 0, "rm --force");
	cr_assert(strstr(r.out, "still mapped"), "%s", r.out);
	cr_assert_not(t_exists(t_path_of(busy)));
	t_run_free(&r);
	holder_stop(hh, pid);
}

Test(tool, usage_errors_are_exit_2_with_one_line, .timeout = 30)
{
	static const char *const cases[][8] = {
		{ NULL },
		{ "frobnicate", NULL },
		{ "list", "--bogus", NULL },
		{ "list", "extra", NULL },
		{ "info", NULL },
		{ "info", "a", "b", NULL },
		{ "gc", "--min-age", "10x", NULL },
		{ "gc", "--min-age", "", NULL },
		{ "gc", "--min-age", NULL },
		{ "watch", "x", "--interval", "0", NULL },
		{ "watch", "x", "--interval", "2d", NULL },
		{ "watch", "x", "--json", NULL },
		{ "dump", "x", "--count", "-1", NULL },
		{ "dump", "x", "--count", "1.5", NULL },
		{ "create", "x", "--capacity", "64Q", NULL },
		{ "create", "x", "--capacity", "99999999999999999999", NULL },
		{ "create", "x", "--capacity", "1.5", NULL },
		{ "create", "x", "--kind", "ring", NULL },
		{ "create", "x", "--mode", "0999", NULL },
		{ "create", "x", "--stall-ms", "500", NULL },
		{ "create", "x", "--kind", "spsc", "--stall-ms", "500", NULL },
		{ "create", "x", "--kind", "mpmc", "--stall-ms", "0", NULL },
		{ "create", "x", "--kind", "mpmc", "--stall-ms", "3600001", NULL },
		{ "create", "x", "--kind", "mpmc", "--stall-ms", "1s", NULL },
		{ "info", "x", "--stall-ms", "5", NULL },
		{ "rm", "x", "--dry-run", NULL },
		{ "check", "x", "--hex", NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[10] = { "shmctl-tool" };
		int n = 1;
		for (int k = 0; cases[i][k]; k++)
			argv[n++] = (char *)cases[i][k];
		argv[n] = NULL;
		struct t_run r = run_argv(argv);
		char what[128];
		snprintf(what, sizeof(what), "case %zu (%s %s)", i, argv[1] ? argv[1] : "",
			 argv[1] && argv[2] ? argv[2] : "");
		expect(&r, 2, what);
		cr_assert(!strncmp(r.err, "shmctl-tool: ", 13), "%s: %s", what, r.err);
		t_run_free(&r);
	}
	struct t_run r = tool("--help", NULL);
	expect(&r, 0, "--help");
	cr_assert(strstr(r.out, "gc [--min-age DURATION]"));
	t_run_free(&r);
	/* sizes and durations in every spelling the man page promises */
	const char *u = new_uri("sizes");
	r = tool("create", u, "--capacity", "1M", "--max-msg", "16KiB", NULL);
	expect(&r, 0, "create 1M");
	t_run_free(&r);
	r = tool("info", "--json", u, NULL);
	struct jv *j = jparse(r.out);
	cr_assert_eq(ju64(j, "capacity"), 1 << 20);
	cr_assert_eq(ju64(j, "max_msg"), 16384);
	jfree(j);
	t_run_free(&r);
	static const char *const ages[] = { "30s", "10m", "2h", "1d", "90", "1.5h", "500ms" };
	for (size_t i = 0; i < sizeof(ages) / sizeof(ages[0]); i++) {
		r = tool("gc", "--dry-run", "--json", "--min-age", ages[i], "--match", "x-none-*", NULL);
		expect(&r, 0, ages[i]);
		j = jparse(r.out);
		static const uint64_t want[] = { 30, 600, 7200, 86400, 90, 5400, 0 };
		cr_assert_eq(ju64(j, "min_age_s"), want[i], "%s", ages[i]);
		jfree(j);
		t_run_free(&r);
	}
}

/* ======================================================================= */
/* gc                                                                      */
/* ======================================================================= */

struct gc_scene {
	const char *dead_old, *live_old, *dead_young, *idle_old, *corrupt_old, *unpub_old;
	const char *corrupt_young, *foreign;
	pid_t live_pid;
	struct holder *live;
};

static void gc_scene(struct gc_scene *g)
{
	pid_t pid;
	g->dead_old = new_uri("gdo");
	g->live_old = new_uri("glo");
	g->dead_young = new_uri("gdy");
	g->idle_old = new_uri("gio");
	g->corrupt_old = new_uri("gco");
	g->unpub_old = new_uri("guo");
	g->corrupt_young = new_uri("gcy");
	const char *all[] = { g->dead_old, g->live_old, g->dead_young, g->idle_old, g->corrupt_old,
			      g->unpub_old, g->corrupt_young };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		make_ring(all[i], 4096, 100);

	struct holder *h = holder_start(g->dead_old, SHMRING_PRODUCER, 1, 0, 8, &pid);
	holder_kill(pid);
	t_unshared(h, sizeof(*h));
	age_ring(t_path_of(g->dead_old), HOUR_NS);
	h = holder_start(g->dead_young, SHMRING_CONSUMER, 0, 0, 0, &pid);
	holder_kill(pid);
	t_unshared(h, sizeof(*h));
	g->live = holder_start(g->live_old, SHMRING_PRODUCER, 1, 0, 8, &g->live_pid);
	age_ring(t_path_of(g->live_old), HOUR_NS);
	age_ring(t_path_of(g->idle_old), HOUR_NS);
	corrupt_checksum(t_path_of(g->corrupt_old));
	set_mtime_ago(t_path_of(g->corrupt_old), 3600);
	patch_u32(t_path_of(g->unpub_old), offsetof(struct seg_hdr, version), 0);
	set_mtime_ago(t_path_of(g->unpub_old), 3600);
	corrupt_checksum(t_path_of(g->corrupt_young));
	g->foreign = make_foreign("gforeign", 30000);
	set_mtime_ago(g->foreign, 86400);
}

static void expect_action(struct jv *acts, const char *uri, const char *action, const char *why)
{
	struct jv *a = jfind(acts, "path", t_path_of(uri));
	cr_assert_not_null(a, "%s: no action reported", uri);
	cr_assert_str_eq(jstr(a, "action"), action, "%s: %s (%s)", uri, jstr(a, "action"),
			 jstr(a, "reason"));
	cr_assert(strstr(jstr(a, "reason"), why), "%s: reason '%s' lacks '%s'", uri,
		  jstr(a, "reason"), why);
}

Test(tool, gc_removes_dead_and_old_keeps_live_young_and_foreign, .timeout = 40)
{
	struct gc_scene g;
	gc_scene(&g);
	const char *gone[] = { g.dead_old, g.idle_old, g.corrupt_old, g.unpub_old };
	const char *stay[] = { g.live_old, g.dead_young, g.corrupt_young };

	/* --dry-run: the same verdicts, nothing removed */
	struct t_run r = tool("gc", "--dry-run", "--json", "--match", my_glob(), NULL);
	expect(&r, 0, "gc --dry-run");
	struct jv *j = jparse(r.out);
	cr_assert(jbool(j, "dry_run"));
	cr_assert_eq(ju64(j, "min_age_s"), 600, "default --min-age is 10m");
	struct jv *acts = jmust(j, "actions", J_ARR);
	cr_assert_eq(acts->n, 7, "%s", r.out);
	cr_assert_null(jfind(acts, "path", g.foreign), "a foreign file is not even considered");
	expect_action(acts, g.dead_old, "would-remove", "1 dead producer");
	expect_action(acts, g.idle_old, "would-remove", "no live participant");
	expect_action(acts, g.corrupt_old, "would-remove", "corrupt: header checksum");
	expect_action(acts, g.unpub_old, "would-remove", "incomplete");
	expect_action(acts, g.live_old, "kept", "in use");
	expect_action(acts, g.dead_young, "kept", "younger than --min-age 10m");
	expect_action(acts, g.corrupt_young, "kept", "younger than");
	cr_assert_eq(ju64(j, "would_remove"), 4);
	cr_assert_eq(ju64(j, "kept"), 3);
	cr_assert_eq(ju64(j, "errors"), 0);
	jfree(j);
	t_run_free(&r);
	for (size_t i = 0; i < 4; i++)
		cr_assert(t_exists(t_path_of(gone[i])), "--dry-run removed %s", gone[i]);

	r = tool("gc", "--dry-run", "--match", my_glob(), NULL);
	expect(&r, 0, "gc --dry-run (words)");
	cr_assert_eq(lines(r.out), 4, "%s", r.out);
	char want[300];
	snprintf(want, sizeof(want), "would remove %s: ", t_path_of(g.dead_old));
	cr_assert(strstr(r.out, want), "%s", r.out);
	t_run_free(&r);

	/* the real thing */
	r = tool("gc", "--match", my_glob(), NULL);
	expect(&r, 0, "gc");
	cr_assert_eq(lines(r.out), 4, "%s", r.out);
	for (size_t i = 0; i < 4; i++) {
		snprintf(want, sizeof(want), "removed %s: ", t_path_of(gone[i]));
		cr_assert(strstr(r.out, want), "%s lacks '%s'", r.out, want);
		cr_assert_not(t_exists(t_path_of(gone[i])), "%s still there", gone[i]);
	}
	for (size_t i = 0; i < 3; i++)
		cr_assert(t_exists(t_path_of(stay[i])), "%s was removed", stay[i]);
	cr_assert(t_exists(g.foreign));
	t_run_free(&r);

	/* --verbose shows what stays and why */
	r = tool("gc", "--verbose", "--match", my_glob(), NULL);
	expect(&r, 0, "gc --verbose");
	snprintf(want, sizeof(want), "kept %s: in use", t_path_of(g.live_old));
	cr_assert(strstr(r.out, want), "%s", r.out);
	t_run_free(&r);

	/* --min-age 0s: the young dead ones go too; the live one never */
	r = tool("gc", "--json", "--min-age", "0s", "--match", my_glob(), NULL);
	expect(&r, 0, "gc --min-age 0s");
	j = jparse(r.out);
	acts = jmust(j, "actions", J_ARR);
	expect_action(acts, g.dead_young, "removed", "1 dead consumer");
	expect_action(acts, g.corrupt_young, "removed", "corrupt");
	expect_action(acts, g.live_old, "kept", "in use");
	cr_assert_eq(ju64(j, "removed"), 2);
	jfree(j);
	t_run_free(&r);
	cr_assert(t_exists(t_path_of(g.live_old)));
	cr_assert(t_exists(g.foreign));

	/* the live holder still works on the file it holds, under its name */
	holder_stop(g.live, g.live_pid);
	struct shmring *c = t_open(g.live_old, SHMRING_CONSUMER);
	char buf[64];
	cr_assert_eq(shmring_recv(c, buf, sizeof(buf), 0), 8);
	shmring_close(c);
}

/*
 * A process attaching and detaching 200 times while gc --min-age 0s runs in
 * a loop: gc must never unlink a segment that somebody has mapped (after
 * each open the attacher checks, through /proc/self/maps, that the file it
 * maps is still the one under the name), and what the attacher sends under
 * the name must be received by a fresh handle opened by name.
 */
struct race {
	char uri[160], name[160];
	_Atomic int done;
	_Atomic int failures;
	_Atomic int gc_runs, gc_removed, gc_bad;
	char why[256];
};

static struct race *R;

static void race_fail(const char *fmt, ...)
{
	if (atomic_fetch_add(&R->failures, 1) == 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(R->why, sizeof(R->why), fmt, ap);
		va_end(ap);
	}
}

/* 1: our mapping of /dev/shm/NAME is the file under that name now. */
static int mapping_is_live(void)
{
	char want[200];
	snprintf(want, sizeof(want), "/dev/shm/%s", R->name);
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f)
		return -1;
	char line[512];
	int found = 0, live = 1;
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, want);
		if (!p || (p[strlen(want)] != '\n' && p[strlen(want)] != ' '))
			continue;
		found = 1;
		unsigned long long ino = 0;
		sscanf(line, "%*s %*s %*s %*s %llu", &ino);
		struct stat st;
		if (strstr(p, "(deleted)") || stat(want, &st) < 0 || st.st_ino != ino)
			live = 0;
	}
	fclose(f);
	return found ? live : -1;
}

static int race_attacher(void *arg)
{
	(void)arg;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	uint64_t rnd = (uint64_t)getpid() * 2654435761u + 1;
	struct shmring_opts o = { .capacity = 65536, .max_msg = 256 };
	for (uint64_t i = 0; i < 200 && !R->failures; i++) {
		struct shmring *p = NULL, *c = NULL;
		int rc = shmring_open(R->uri, SHMRING_CREATE | SHMRING_PRODUCER, &o, &p);
		if (rc < 0) {
			race_fail("iteration %llu: open: %s", (unsigned long long)i, shmring_strerror(rc));
			break;
		}
		if (mapping_is_live() != 1)
			race_fail("iteration %llu: mapped an unlinked segment after open",
				  (unsigned long long)i);
		if ((rc = shmring_send(p, &i, sizeof(i), 0)) < 0)
			race_fail("iteration %llu: send: %s", (unsigned long long)i, shmring_strerror(rc));
		/* a fresh handle by name must see what we sent */
		rc = shmring_open(R->uri, SHMRING_CONSUMER, NULL, &c);
		if (rc < 0) {
			race_fail("iteration %llu: consumer open by name: %s", (unsigned long long)i,
				  shmring_strerror(rc));
		} else {
			uint64_t got = UINT64_MAX, v;
			while (shmring_recv(c, &v, sizeof(v), 0) == (ssize_t)sizeof(v))
				got = v;
			if (got != i)
				race_fail("iteration %llu: a handle by name did not receive it (last %llu)",
					  (unsigned long long)i, (unsigned long long)got);
			shmring_close(c);
		}
		if (mapping_is_live() != 1)
			race_fail("iteration %llu: segment unlinked while mapped", (unsigned long long)i);
		shmring_close(p);
		struct timespec ts = { 0, (long)(t_rand(&rnd) % 3000000) };
		nanosleep(&ts, NULL);
	}
	atomic_store(&R->done, 1);
	return 0;
}

static int race_gc_loop(void *arg)
{
	(void)arg;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	while (!atomic_load(&R->done)) {
		char *argv[] = { "shmctl-tool", "gc", "--json", "--min-age", "0s", "--match", R->name,
				 NULL };
		int po[2];
		if (pipe2(po, O_CLOEXEC) < 0)
			return 1;
		pid_t pid = fork();
		if (pid == 0) {
			dup2(po[1], 1);
			execv(tool_path(), argv);
			_exit(127);
		}
		close(po[1]);
		char out[8192];
		size_t n = 0;
		ssize_t k;
		while ((k = read(po[0], out + n, sizeof(out) - 1 - n)) > 0)
			n += (size_t)k;
		out[n] = 0;
		close(po[0]);
		int st;
		waitpid(pid, &st, 0);
		atomic_fetch_add(&R->gc_runs, 1);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			atomic_fetch_add(&R->gc_bad, 1);
		char *p = strstr(out, "\"removed\": ");
		if (p)
			atomic_fetch_add(&R->gc_removed, atoi(p + 11));
	}
	return 0;
}

Test(tool, gc_never_unlinks_a_segment_being_attached, .timeout = 60)
{
	R = t_shared(sizeof(*R));
	memset(R, 0, sizeof(*R));
	snprintf(R->uri, sizeof(R->uri), "%s", new_uri("race"));
	snprintf(R->name, sizeof(R->name), "%s", name_of(R->uri));
	pid_t gc1 = t_spawn(race_gc_loop, NULL);
	pid_t gc2 = t_spawn(race_gc_loop, NULL);
	pid_t att = t_spawn(race_attacher, NULL);
	cr_assert_eq(t_wait(att), 0);
	cr_assert_eq(t_wait(gc1), 0);
	cr_assert_eq(t_wait(gc2), 0);
	cr_assert_eq(R->failures, 0, "%d failures; first: %s", R->failures, R->why);
	cr_assert_eq(R->gc_bad, 0, "%d gc runs failed", R->gc_bad);
	cr_assert_geq(R->gc_runs, 10, "only %d gc runs", R->gc_runs);
	cr_log_info("gc race: %d gc runs removed the segment %d times", R->gc_runs, R->gc_removed);
	/* idle now: one more gc removes it */
	struct t_run r = tool("gc", "--min-age", "0s", "--match", R->name, NULL);
	expect(&r, 0, "final gc");
	cr_assert_not(t_exists(t_path_of(R->uri)));
	t_run_free(&r);
	t_unshared(R, sizeof(*R));
}

/* ======================================================================= */
/* watch, and never disturbing a ring                                      */
/* ======================================================================= */

struct pace {
	char uri[160];
	uint32_t rate, len;          /* messages per second, bytes each */
	_Atomic int started, stop;
	int rc;
};

/* Send `rate` messages per second in 10 ms steps of an absolute clock. */
static int pace_producer(void *arg)
{
	struct pace *pc = arg;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	struct shmring *p = NULL;
	if ((pc->rc = shmring_open(pc->uri, SHMRING_PRODUCER, NULL, &p)) < 0)
		return 1;
	uint8_t buf[4096];
	memset(buf, 7, sizeof(buf));
	uint32_t per_tick = pc->rate / 100;
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	atomic_store(&pc->started, 1);
	while (!atomic_load(&pc->stop)) {
		for (uint32_t i = 0; i < per_tick; i++)
			if ((pc->rc = shmring_send(p, buf, pc->len, 1000 * MS)) < 0)
				return 2;
		next.tv_nsec += 10 * MS;
		if (next.tv_nsec >= 1000 * MS) {
			next.tv_nsec -= 1000 * MS;
			next.tv_sec++;
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
	shmring_shutdown(p);
	shmring_close(p);
	return 0;
}

static int drain_consumer(void *arg)
{
	struct pace *pc = arg;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	struct shmring *c = NULL;
	if (shmring_open(pc->uri, SHMRING_CONSUMER, NULL, &c) < 0)
		return 1;
	uint8_t buf[4096];
	ssize_t n;
	while ((n = shmring_recv(c, buf, sizeof(buf), 200 * MS)) >= 0 || n == -ETIMEDOUT)
		if (atomic_load(&pc->stop) && n == -ETIMEDOUT)
			break;
	shmring_close(c);
	return 0;
}

/* Drop ANSI escape sequences (ESC [ params letter, ESC [ ? params letter). */
static void strip_ansi(char *s)
{
	char *o = s;
	while (*s) {
		if (s[0] == '\033' && s[1] == '[') {
			s += 2;
			while (*s && !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
				s++;
			if (*s)
				s++;
			continue;
		}
		*o++ = *s == '\r' ? '\n' : *s;
		s++;
	}
	*o = 0;
}

/* Every number after `label` in s, at most max; "-" entries are skipped. */
static int values_after(const char *s, const char *label, double *v, int max, int col)
{
	int n = 0;
	for (const char *p = strstr(s, label); p && n < max; p = strstr(p + 1, label)) {
		const char *q = p + strlen(label);
		double x[2];
		int got = sscanf(q, " %lf %lf", &x[0], &x[1]);
		if (got > col)
			v[n++] = x[col];
	}
	return n;
}

Test(tool, watch_on_a_terminal_shows_the_send_rate, .timeout = 40)
{
	const char *uri = new_uri("watch");
	make_ring(uri, 1 << 20, 4096);
	struct pace *pc = t_shared(sizeof(*pc));
	memset(pc, 0, sizeof(*pc));
	snprintf(pc->uri, sizeof(pc->uri), "%s", uri);
	pc->rate = 4000;
	pc->len = 500;
	pid_t cons = t_spawn(drain_consumer, pc);
	pid_t prod = t_spawn(pace_producer, pc);
	for (int i = 0; i < 3000 && !atomic_load(&pc->started); i++)
		t_sleep_ms(1);
	cr_assert(atomic_load(&pc->started), "producer: %s", shmring_strerror(pc->rc));
	t_sleep_ms(200);

	int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	cr_assert_geq(master, 0, "posix_openpt: %s", strerror(errno));
	cr_assert_eq(grantpt(master), 0);
	cr_assert_eq(unlockpt(master), 0);
	char slave[128];
	cr_assert_eq(ptsname_r(master, slave, sizeof(slave)), 0);
	fflush(NULL);
	pid_t w = fork();
	cr_assert_geq(w, 0);
	if (w == 0) {
		setsid();
		int s = open(slave, O_RDWR);       /* becomes the controlling terminal */
		if (s < 0)
			_exit(126);
		dup2(s, 0);
		dup2(s, 1);
		dup2(s, 2);
		char *argv[] = { "shmctl-tool", "watch", (char *)uri, "--interval", "0.5", "--count",
				 "7", NULL };
		execv(tool_path(), argv);
		_exit(127);
	}
	char *out = calloc(1, 1);
	size_t len = 0;
	uint64_t deadline = t_now_ns() + 20000 * MS;
	for (;;) {
		cr_assert_lt(t_now_ns(), deadline, "watch did not end");
		struct pollfd p = { .fd = master, .events = POLLIN };
		if (poll(&p, 1, 200) <= 0)
			continue;
		char buf[4096];
		ssize_t n = read(master, buf, sizeof(buf));
		if (n <= 0)
			break;                     /* EIO: the slave side closed */
		t_append(&out, &len, buf, (size_t)n);
	}
	int st = t_wait(w);
	close(master);
	atomic_store(&pc->stop, 1);
	cr_assert_eq(t_wait(prod), 0, "producer: %s", shmring_strerror(pc->rc));
	cr_assert_eq(t_wait(cons), 0);
	cr_assert_eq(st, 0, "watch exit %d; output:\n%s", st, out);

	cr_assert(strstr(out, "\033[H"), "redraws in place (cursor home)");
	cr_assert(strstr(out, "\033[K"), "clears to end of line");
	strip_ansi(out);
	cr_assert(strstr(out, "producers 1 live 0 dead   consumers 1 live 0 dead"), "%s", out);
	double in[16], out_r[16], mb[16];
	int n_in = values_after(out, "in (sent)", in, 16, 0);
	int n_out = values_after(out, "out (recv)", out_r, 16, 0);
	int n_mb = values_after(out, "in (sent)", mb, 16, 1);
	cr_assert_geq(n_in, 5, "rates in %d frames:\n%s", n_in, out);
	cr_assert_eq(n_in, n_out);
	cr_assert_eq(n_in, n_mb);
	/* Over the window (the first frame may straddle start-up) the rates
	 * shown are within 20% of the rate sent; each single frame within 50%,
	 * since a producer descheduled on a busy machine catches up in bursts. */
	double sum_in = 0, sum_out = 0, sum_mb = 0;
	for (int i = 1; i < n_in; i++) {
		cr_assert(in[i] > 2000 && in[i] < 6000, "in rate %.1f/s vs 4000/s\n%s", in[i], out);
		cr_assert(out_r[i] > 2000 && out_r[i] < 6000, "out rate %.1f/s vs 4000/s", out_r[i]);
		sum_in += in[i];
		sum_out += out_r[i];
		sum_mb += mb[i];
	}
	double k = n_in - 1;
	cr_log_info("watch: %.1f msgs/s in, %.1f out, %.3f MB/s over %d frames (sent 4000/s, 2.0 MB/s)",
		    sum_in / k, sum_out / k, sum_mb / k, n_in - 1);
	cr_assert(sum_in / k > 3200 && sum_in / k < 4800, "in rate %.1f/s vs 4000/s\n%s", sum_in / k, out);
	cr_assert(sum_out / k > 3200 && sum_out / k < 4800, "out rate %.1f/s vs 4000/s", sum_out / k);
	cr_assert(sum_mb / k > 1.6 && sum_mb / k < 2.4, "MB/s %.3f vs 2.0", sum_mb / k);
	free(out);
	t_unshared(pc, sizeof(*pc));
}

Test(tool, watch_into_a_pipe_prints_lines, .timeout = 30)
{
	const char *uri = new_uri("wpipe");
	make_ring(uri, 4096, 100);
	struct t_run r = tool("watch", uri, "--interval", "50ms", "--count", "3", NULL);
	expect(&r, 0, "watch | ...");
	cr_assert_eq(lines(r.out), 4, "header + 3 lines:\n%s", r.out);
	cr_assert(!strncmp(r.out, "TIME ", 5) && strstr(r.out, "IN_MSG/S"), "%s", r.out);
	cr_assert_null(strchr(r.out, '\033'), "no escape sequences into a pipe");
	t_run_free(&r);
}

Test(tool, output_write_errors_stop_the_tool, .timeout = 40)
{
	const char *uri = new_uri("wfull");
	make_ring(uri, 4096, 100);
	/* watch without --count: only the write error can end it */
	char *watch[] = { "shmctl-tool", "watch", (char *)uri, "--interval", "20ms", NULL };
	char *watch_json[] = { "shmctl-tool", "watch", (char *)uri, "--interval", "20ms",
			       "--json", NULL };
	/* --match: other suites' damaged segments would make list exit 1 */
	char *list[] = { "shmctl-tool", "list", "--match", (char *)my_glob(), NULL };
	char *info[] = { "shmctl-tool", "info", (char *)uri, NULL };
	char *const *cases[] = { watch, watch_json, list, info };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* every write fails with ENOSPC: the tool must stop by itself,
		 * exit 2 and say why once */
		struct t_run r = run_argv_to(cases[i], "/dev/full", 10);
		expect(&r, 2, cases[i][1]);
		cr_assert(strstr(r.err, "standard output") && strstr(r.err, strerror(ENOSPC)),
			  "%s: %s", cases[i][1], r.err);
		t_run_free(&r);
	}
}

/* --json: a stream of documents, one per interval, rates against a known
 * send rate */
Test(tool, watch_json_streams_one_document_per_interval, .timeout = 40)
{
	const char *uri = new_uri("wjson");
	make_ring(uri, 1 << 20, 4096);
	struct pace *pc = t_shared(sizeof(*pc));
	memset(pc, 0, sizeof(*pc));
	snprintf(pc->uri, sizeof(pc->uri), "%s", uri);
	pc->rate = 2000;
	pc->len = 100;
	pid_t cons = t_spawn(drain_consumer, pc);
	pid_t prod = t_spawn(pace_producer, pc);
	for (int i = 0; i < 3000 && !atomic_load(&pc->started); i++)
		t_sleep_ms(1);
	cr_assert(atomic_load(&pc->started), "producer: %s", shmring_strerror(pc->rc));
	t_sleep_ms(200);
	struct t_run r = tool("watch", uri, "--json", "--interval", "500ms", "--count", "4", NULL);
	expect(&r, 0, "watch --json");
	cr_assert_null(strchr(r.out, '\033'), "no escape sequences");
	/* split the stream at the top-level closing braces */
	int docs = 0;
	double sum = 0;
	char *p = r.out;
	for (char *end; (end = strstr(p, "\n}\n")) != NULL; p = end + 3) {
		end[2] = '\0';
		struct jv *j = jparse(p);
		cr_assert_not_null(j, "document %d is not JSON:\n%s", docs, p);
		cr_assert_str_eq(jstr(j, "status"), "ok");
		if (docs > 0) {
			cr_assert(jbool(j, "rates_valid"));
			sum += jdbl(j, "in_msgs_per_s");
		}
		jfree(j);
		docs++;
	}
	cr_assert_eq(docs, 4, "one document per interval:\n%s", r.out);
	double avg = sum / 3;
	cr_assert(avg > 2000 * 0.8 && avg < 2000 * 1.2, "in_msgs_per_s averaged %.1f for 2000/s", avg);
	t_run_free(&r);
	atomic_store(&pc->stop, 1);
	t_wait(prod);
	t_wait(cons);
	t_unshared(pc, sizeof(*pc));
}

static int lock_and_wait(void *arg)
{
	const char *uri = arg;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	int fd = open(t_path_of(uri), O_RDWR | O_CLOEXEC);
	struct ctl_shared *c = mmap(NULL, sizeof(*c), PROT_READ | PROT_WRITE, MAP_SHARED, fd,
				    SEG_CTL_OFF);
	if (fd < 0 || c == MAP_FAILED || ctl_lock(c, NULL, fd, fd, NULL) != 0)
		return 1;
	pause();                 /* holds the control lock until killed */
	return 0;
}

/* The inspecting commands never block on a lock a peer holds and never
 * take one: with the control lock held by a stopped peer and the gc lock
 * held exclusively, all of them finish; while they run, nobody else's
 * exclusive lock attempt fails because of them. */
Test(tool, inspection_never_blocks_and_takes_no_lock, .timeout = 30)
{
	const char *uri = ring_with("nolock", 2, 16);
	pid_t holder = t_spawn(lock_and_wait, (void *)uri);
	t_sleep_ms(100);
	int fd = open(t_path_of(uri), O_RDWR | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = CTL_LOCK_OPEN,
			    .l_len = 1 };
	cr_assert_eq(fcntl(fd, F_OFD_SETLK, &fl), 0, "exclusive gc lock");
	uint64_t t0 = t_now_ns();
	static const char *const cmds[][6] = {
		{ "list", "--match", NULL },
		{ "info", NULL }, { "check", NULL }, { "dump", NULL },
		{ "watch", "--count", "2", "--interval", "0.1", NULL },
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char *argv[10] = { "shmctl-tool", (char *)cmds[i][0] };
		int n = 2;
		if (i == 0)
			argv[n++] = "--match", argv[n++] = (char *)name_of(uri);
		else
			argv[n++] = (char *)uri;
		for (int k = 1; i && cmds[i][k]; k++)
			argv[n++] = (char *)cmds[i][k];
		argv[n] = NULL;
		struct t_run r = run_argv(argv);
		expect(&r, 0, cmds[i][0]);
		cr_assert(strstr(r.out, name_of(uri)) || i == 4, "%s: %s", cmds[i][0], r.out);
		t_run_free(&r);
	}
	cr_assert_lt(t_now_ns() - t0, 10000 * MS, "took too long");
	fl.l_type = F_UNLCK;
	cr_assert_eq(fcntl(fd, F_OFD_SETLK, &fl), 0);

	/* a watch running on it holds no lock: gc's exclusive lock succeeds */
	pid_t wpid = fork();
	if (wpid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		char *argv[] = { "shmctl-tool", "watch", (char *)uri, "--interval", "0.1", "--count",
				 "30", NULL };
		execv(tool_path(), argv);
		_exit(127);
	}
	t_sleep_ms(500);
	fl.l_type = F_WRLCK;
	cr_assert_eq(fcntl(fd, F_OFD_SETLK, &fl), 0, "watch holds the in-use lock");
	struct flock any = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = CTL_LOCK_BASE,
			     .l_len = CTL_MAX_PARTS };
	cr_assert_eq(fcntl(fd, F_OFD_GETLK, &any), 0);
	cr_assert_eq(any.l_type, F_UNLCK, "watch took a participant lock");
	fl.l_type = F_UNLCK;
	fcntl(fd, F_OFD_SETLK, &fl);
	cr_assert_eq(t_wait(wpid), 0);
	close(fd);
	kill(holder, SIGKILL);
	t_wait(holder);
}

/* ======================================================================= */
/* a hostile segment: random damage never crashes or hangs the tool        */
/* ======================================================================= */

static uint64_t interesting(uint64_t *rnd, uint64_t cap)
{
	static const uint64_t v[] = { 0, 1, 7, 8, 56, 255, 256, 4095, 4096, 4104, UINT32_MAX,
				      UINT64_MAX, 1ull << 63, 1ull << 40 };
	uint64_t r = t_rand(rnd);
	switch (r % 4) {
	case 0: return v[(r >> 8) % (sizeof(v) / sizeof(v[0]))];
	case 1: return (uint64_t)SPSC_TAG_MSG << 32 | ((r >> 8) % (cap + 64));
	case 2: return (uint64_t)SPSC_TAG_PAD << 32 | ((r >> 8) % (cap + 64));
	default: return t_rand(rnd);
	}
}

struct area {
	off_t at;
	size_t len;
};

static uint64_t spsc_value(uint64_t *rnd)
{
	return interesting(rnd, 4096);
}

/*
 * `iters` times: restore the file from orig, hit 1-3 random 8-byte words of
 * the areas (area[0] is the header: its checksum is often recomputed, so
 * that the damage gets past it; area[3] is hit more often), sometimes
 * truncate, then run check, dump and info: each must give a verdict (exit
 * 0 or 1), one line on stderr at most, and valid JSON.  verdicts[status]
 * counts check's.
 */
static void damage_loop(const char *uri, const uint8_t *orig, size_t size,
			const struct area area[4], uint64_t (*value)(uint64_t *rnd), int iters,
			int verdicts[3])
{
	const char *path = t_path_of(uri);
	uint64_t rnd = 0x5eedf00dull;
	for (int it = 0; it < iters; it++) {
		t_patch(path, 0, orig, size);                 /* restore, then damage */
		if (truncate(path, (off_t)size) < 0)
			cr_assert_fail("truncate");
		int hits = 1 + (int)(t_rand(&rnd) % 3);
		for (int h = 0; h < hits; h++) {
			unsigned a = (unsigned)(t_rand(&rnd) % 4);
			if (a == 0 && (t_rand(&rnd) & 1))
				a = 3;                      /* the header is less interesting */
			off_t at = area[a].at + (off_t)((t_rand(&rnd) % area[a].len) & ~7ull);
			uint64_t v = value(&rnd);
			t_patch(path, at, &v, 8);
			if (a == 0) {                       /* often keep the header believable */
				struct seg_hdr hd;
				t_peek(path, 0, &hd, sizeof(hd));
				if (t_rand(&rnd) % 3) {
					hd.checksum = seg_checksum(&hd);
					t_patch(path, 0, &hd, sizeof(hd));
				}
			}
		}
		if (t_rand(&rnd) % 10 == 0 && truncate(path, (off_t)(t_rand(&rnd) % size)) < 0)
			cr_assert_fail("truncate");
		const char *cmds[][6] = {
			{ "check", "--json", uri, NULL },
			{ "dump", "--json", "--count", "0", "--bytes", "0" },
			{ "info", "--json", uri, NULL },
		};
		for (int k = 0; k < 3; k++) {
			if (k == 2 && it % 3)
				continue;
			char *argv[10] = { "shmctl-tool" };
			int n = 1;
			for (int m = 0; m < 6 && cmds[k][m]; m++)
				argv[n++] = (char *)cmds[k][m];
			if (k == 1)
				argv[n++] = (char *)uri;
			argv[n] = NULL;
			struct t_run r = run_argv(argv);
			cr_assert(r.status == 0 || r.status == 1, "iteration %d, %s: exit %d\n%s\n%s",
				  it, cmds[k][0], r.status, r.out, r.err);
			cr_assert_leq(lines(r.err), 1, "iteration %d: %s", it, r.err);
			if (r.out_len) {
				struct jv *j = jparse(r.out);
				jfree(j);
			}
			if (k == 0)
				verdicts[r.status]++;
			t_run_free(&r);
		}
	}
}

Test(tool, random_damage_gives_a_verdict_never_a_crash, .timeout = 90)
{
	const char *uri = new_uri("fuzz");
	const char *path = t_path_of(uri);
	struct shmring *r0 = t_create(uri, 4096, 1000);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER), *c = t_open(uri, SHMRING_CONSUMER);
	uint8_t buf[1000];
	memset(buf, 'x', sizeof(buf));
	for (int i = 0; i < 12; i++) {           /* move the positions: wrap, fillers */
		cr_assert_eq(shmring_send(p, buf, 300, 0), 0);
		cr_assert_eq(shmring_recv(c, buf, sizeof(buf), 0), 300);
	}
	cr_assert_eq(shmring_send(p, "short", 5, 0), 0);
	cr_assert_eq(shmring_send(p, buf, 700, 0), 0);
	cr_assert_eq(shmring_send(p, buf, 260, 0), 0);
	shmring_close(c);
	shmring_close(p);
	shmring_close(r0);
	size_t size;
	uint8_t *orig = read_file(path, &size);
	struct t_run r = tool("check", "--json", uri, NULL);
	expect(&r, 0, "the undamaged ring");
	t_run_free(&r);

	static const struct area area[] = {
		{ 0, sizeof(struct seg_hdr) },
		{ SEG_CTL_OFF + 64, 64 + 4 * 64 },                  /* owners, counters, slots */
		{ SEG_RING_OFF, sizeof(struct spsc_shared) },
		{ SEG_DATA_OFF, 4096 },
	};
	int verdicts[3] = { 0 };
	damage_loop(uri, orig, size, area, spsc_value, 40, verdicts);
	cr_log_info("random damage: %d passed check, %d were refused", verdicts[0], verdicts[1]);
	cr_assert_gt(verdicts[1], 10, "most damage must be detected");
	free(orig);
}

/* ======================================================================= */
/* gc as an unprivileged user: what it may not remove, it says so         */
/* ======================================================================= */

#define NOBODY 65534

static struct t_run run_as_nobody(char *const argv[])
{
	return t_run_prog_as(tool_path(), argv, NULL, NULL, 20, NOBODY);
}

Test(tool, gc_reports_what_it_may_not_remove, .timeout = 30)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to run the tool as another user");
	char dir[] = "/tmp/shmctl-gcperm-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(chmod(dir, 0755), 0);      /* nobody may not unlink in it */
	char ring[300], ro[300], uri[320];
	snprintf(ring, sizeof(ring), "%s/%s", dir, t_name("gperm"));
	snprintf(ro, sizeof(ro), "%s/%s", dir, t_name("gro"));
	t_remember(ring);
	t_remember(ro);
	snprintf(uri, sizeof(uri), "file:%s", ring);
	make_ring(uri, 4096, 100);
	cr_assert_eq(chown(ring, NOBODY, NOBODY), 0);   /* writable by nobody, not removable */
	set_mtime_ago(ring, 3600);
	snprintf(uri, sizeof(uri), "file:%s", ro);
	make_ring(uri, 4096, 100);
	cr_assert_eq(chmod(ro, 0644), 0);               /* readable, not writable */
	age_ring(ro, HOUR_NS);

	char *argv[] = { "shmctl-tool", "gc", "--dir", dir, "--match", (char *)my_glob(), NULL };
	struct t_run r = run_as_nobody(argv);
	if (r.status == 126)
		cr_skip_test("cannot become nobody here");
	cr_assert_eq(r.status, 1, "exit %d\n%s\n%s", r.status, r.out, r.err);
	cr_assert_eq(lines(r.err), 1, "%s", r.err);
	cr_assert(strstr(r.err, ring) && strstr(r.err, "unlink: Permission denied"), "%s", r.err);
	cr_assert(t_exists(ring) && t_exists(ro));
	t_run_free(&r);

	char *argv2[] = { "shmctl-tool", "gc", "--json", "--dir", dir, "--match", (char *)my_glob(),
			  NULL };
	r = run_as_nobody(argv2);
	cr_assert_eq(r.status, 1, "exit %d\n%s\n%s", r.status, r.out, r.err);
	cr_assert_eq(lines(r.err), 1, "%s", r.err);
	struct jv *j = jparse(r.out);
	struct jv *acts = jmust(j, "actions", J_ARR);
	struct jv *a = jfind(acts, "path", ring);
	cr_assert_not_null(a, "%s", r.out);
	cr_assert_str_eq(jstr(a, "action"), "error");
	cr_assert_str_eq(jstr(a, "status"), "corrupt", "owner changed: the header disagrees");
	a = jfind(acts, "path", ro);
	cr_assert_not_null(a, "%s", r.out);
	cr_assert_str_eq(jstr(a, "action"), "kept");
	cr_assert(strstr(jstr(a, "reason"), "no write access"), "%s", jstr(a, "reason"));
	cr_assert_eq(ju64(j, "errors"), 1);
	jfree(j);
	t_run_free(&r);
	unlink(ring);
	unlink(ro);
	rmdir(dir);
}

/* ======================================================================= */
/* MPMC rings                                                              */
/* ======================================================================= */

static void make_mpmc(const char *uri, uint64_t cap, uint32_t max, uint32_t stall_ms)
{
	struct shmring_opts o = { .kind = SHMRING_MPMC, .capacity = cap, .max_msg = max,
				  .stall_ms = stall_ms };
	struct shmring *r = NULL;
	int rc = shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL, &o, &r);
	cr_assert_eq(rc, 0, "create %s: %s", uri, shmring_strerror(rc));
	shmring_close(r);
}

/* The geometry of an MPMC ring, from its header. */
static struct mpmc_geom mpmc_geom_of(const char *path)
{
	struct seg_hdr h;
	t_peek(path, 0, &h, sizeof(h));
	struct mpmc_geom g = { .max_msg = h.max_msg, .hdr = mpmc_hdr_for(h.max_msg),
			       .stride = mpmc_stride_for(h.max_msg) };
	g.nslots = h.capacity / g.stride;
	g.mask = g.nslots - 1;
	return g;
}

/* Write ticket t's slot word by hand through a mapping of the segment, as
 * tests/test_mpmc.c fabricates states. */
static void set_word(const char *uri, uint64_t t, uint64_t w)
{
	const char *path = t_path_of(uri);
	struct mpmc_geom g = mpmc_geom_of(path);
	struct stat st;
	int fd = open(path, O_RDWR | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(fstat(fd, &st), 0);
	uint8_t *base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(base, MAP_FAILED);
	g.data = base + SEG_MPMC_DATA_OFF;
	atomic_store(&mpmc_slot(&g, t)->word, w);
	munmap(base, (size_t)st.st_size);
	close(fd);
}

/* Members of a JSON document that must hold given numbers. */
struct jnum {
	const char *path;
	uint64_t v;
};

static void expect_nums(struct jv *j, const struct jnum *want, size_t n, const char *doc)
{
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(ju64(j, want[i].path), want[i].v, "%s = %llu, want %llu in\n%s",
			     want[i].path, (unsigned long long)ju64(j, want[i].path),
			     (unsigned long long)want[i].v, doc);
}

#define EXPECT_NUMS(j, doc, ...) do {                                              \
		const struct jnum want_[] = { __VA_ARGS__ };                        \
		expect_nums(j, want_, sizeof(want_) / sizeof(want_[0]), doc);      \
	} while (0)

static void send_str(struct shmring *p, const char *m)
{
	cr_assert_eq(shmring_send(p, m, strlen(m), 0), 0, "send %s", m);
}

/* The participant slot of the (single) participant with `role` in info --json. */
static struct jv *part_with(struct jv *info, const char *role)
{
	struct jv *p = jfind(jmust(info, "participants", J_ARR), "role", role);
	cr_assert_not_null(p, "no %s among the participants", role);
	return p;
}

Test(tool, mpmc_create_list_info_dump_check_watch_rm, .timeout = 30)
{
	const char *uri = new_uri("mp");
	struct t_run r = tool("create", uri, "--kind", "mpmc", "--capacity", "8K", "--max-msg", "100",
			    "--stall-ms", "750", NULL);
	expect(&r, 0, "create --kind mpmc");
	cr_assert(strstr(r.out, "mpmc, capacity 8K (64 slots of 128 bytes), stall timeout 750 ms"),
		  "%s", r.out);
	t_run_free(&r);
	r = tool("create", uri, "--kind", "mpmc", NULL);
	expect(&r, 2, "create of an existing MPMC ring");
	cr_assert(strstr(r.err, "already exists"), "%s", r.err);
	t_run_free(&r);

	/* ticket 0 received, 1 acquired and held, 2 waiting */
	struct shmring *p = t_open(uri, SHMRING_PRODUCER), *c = t_open(uri, SHMRING_CONSUMER);
	send_str(p, "m0");
	send_str(p, "m1");
	send_str(p, "hello \"m2\"");
	char buf[128];
	cr_assert_eq(shmring_recv(c, buf, sizeof(buf), 0), 2);
	struct shmring_msg held;
	cr_assert_eq(shmring_acquire(c, &held, 0), 0);
	cr_assert_eq(held.len, 2);

	r = tool("list", "--json", "--match", my_glob(), NULL);
	expect(&r, 0, "list");
	struct jv *j = jparse(r.out);
	struct jv *s = jfind(jmust(j, "segments", J_ARR), "uri", uri);
	cr_assert_not_null(s, "%s", r.out);
	cr_assert_str_eq(jstr(s, "status"), "ok");
	cr_assert_str_eq(jstr(s, "kind"), "mpmc");
	/* used: the one slot between the hints */
	EXPECT_NUMS(s, r.out, { "capacity", 8192 }, { "size", 40960 + 8192 }, { "used", 128 },
		    { "producers.live", 1 }, { "consumers.live", 1 });
	cr_assert_float_eq(jdbl(s, "fill_pct"), 100.0 * 128 / 8192, 0.01);
	cr_assert_not(jbool(s, "shut_down"));
	jfree(j);
	t_run_free(&r);
	r = tool("list", "--match", name_of(uri), NULL);
	expect(&r, 0, "list (table)");
	const char *row = strstr(r.out, name_of(uri));
	cr_assert_not_null(row, "%s", r.out);
	cr_assert(strstr(row, " mpmc ") && strstr(row, "8K") && strstr(row, "1.6%") &&
		  strstr(row, "1/0") && strstr(row, "live"), "row: %s", row);
	t_run_free(&r);

	r = tool("info", "--json", uri, NULL);
	expect(&r, 0, "info --json");
	j = jparse(r.out);
	cr_assert_str_eq(jstr(j, "header.kind_name"), "mpmc");
	cr_assert_eq(jmust(j, "wait.cons_sleepers", J_ARR)->n, 0);
	cr_assert(jbool(j, "mpmc.slots_read"));
	EXPECT_NUMS(j, r.out, { "header.data_off", 40960 }, { "header.max_msg", 100 },
		    { "indices.prod_ticket", 3 }, { "indices.cons_ticket", 2 },
		    { "indices.queued", 1 }, { "indices.used", 128 }, { "wait.shutdown", 0 },
		    { "mpmc.slots", 64 }, { "mpmc.slot_size", 128 }, { "mpmc.slot_header", 16 },
		    { "mpmc.stall_ms", 750 }, { "mpmc.slot_states.free", 62 },
		    { "mpmc.slot_states.ready", 1 }, { "mpmc.slot_states.reading", 1 },
		    { "mpmc.slot_states.writing", 0 }, { "mpmc.slot_states.orphan", 0 },
		    { "mpmc.slot_states.stuck", 0 }, { "mpmc.slot_states.invalid", 0 });
	uint64_t cslot = ju64(part_with(j, "consumer"), "slot");
	cr_assert(jbool(part_with(j, "producer"), "alive"));
	struct jv *holders = jmust(j, "mpmc.holders", J_ARR);
	cr_assert_eq(holders->n, 1, "%s", r.out);
	cr_assert_str_eq(jstr(holders, "0.role"), "consumer");
	cr_assert(jbool(holders, "0.alive"));
	/* the counters are summed over the participants */
	EXPECT_NUMS(j, r.out, { "mpmc.holders.0.slot", cslot },
		    { "mpmc.holders.0.pid", (uint64_t)getpid() }, { "mpmc.holders.0.held", 1 },
		    { "stats.msgs_sent", 3 }, { "stats.bytes_sent", 2 + 2 + 10 },
		    { "stats.msgs_recv", 1 }, { "stats.holes_skipped", 0 },
		    { "stats.stalls_skipped", 0 }, { "stats.commits_cancelled", 0 },
		    { "stats.msgs_dropped", 0 });
	jfree(j);
	t_run_free(&r);
	r = tool("info", uri, NULL);
	expect(&r, 0, "info");
	cr_assert(strstr(r.out, "ring (mpmc)"), "%s", r.out);
	cr_assert(strstr(r.out, "64 of 128 bytes (header 16, max_msg 100), stall timeout 750 ms"),
		  "%s", r.out);
	cr_assert(strstr(r.out, "62 free, 0 writing, 1 ready, 1 reading, 0 orphan, 0 stuck"),
		  "%s", r.out);
	char want[128];
	snprintf(want, sizeof(want), "slot %llu (pid %d): 1", (unsigned long long)cslot,
		 (int)getpid());
	cr_assert(strstr(r.out, want), "holders: %s", r.out);
	cr_assert(strstr(r.out, "0 stalls skipped, 0 commits cancelled"), "%s", r.out);
	t_run_free(&r);

	/* dump: the slots in use in ticket order, payloads as for SPSC */
	r = tool("dump", "--json", uri, NULL);
	expect(&r, 0, "dump --json");
	j = jparse(r.out);
	cr_assert_str_eq(jstr(j, "kind"), "mpmc");
	cr_assert_str_eq(jstr(j, "stopped"), "end");
	struct jv *m = jmust(j, "messages", J_ARR);
	cr_assert_str_eq(jstr(m, "0.state"), "READY");
	cr_assert(jnull(m, "0.owner"));
	cr_assert_str_eq(jstr(m, "0.text"), "hello \"m2\"");
	cr_assert_str_eq(jstr(m, "1.state"), "READING");
	cr_assert(jbool(m, "1.alive"));
	cr_assert(jbool(m, "1.acquired"));
	cr_assert_str_eq(jstr(m, "1.hex"), "6d31");
	/* the held slot comes last: a lap on from cons_ticket */
	EXPECT_NUMS(j, r.out, { "cons_ticket", 2 }, { "count", 2 }, { "messages.0.ticket", 2 },
		    { "messages.0.len", 10 }, { "messages.1.ticket", 1 },
		    { "messages.1.owner", cslot }, { "messages.1.offset", 1 * 128 + 16 });
	jfree(j);
	t_run_free(&r);
	r = tool("dump", "--count", "1", uri, NULL);
	expect(&r, 0, "dump --count 1");
	cr_assert(strstr(r.out, "#0  ticket 2  slot 2  READY  len 10"), "%s", r.out);
	cr_assert(strstr(r.out, "\"hello \\\"m2\\\"\""), "%s", r.out);
	cr_assert(strstr(r.out, "1 slot shown; more are in use"), "%s", r.out);
	t_run_free(&r);

	r = tool("check", "--json", uri, NULL);
	expect(&r, 0, "check --json");
	j = jparse(r.out);
	cr_assert(jbool(j, "ok"));
	cr_assert_eq(jmust(j, "problems", J_ARR)->n, 0);
	cr_assert_eq(jmust(j, "warnings", J_ARR)->n, 0, "%s", r.out);
	cr_assert(jbool(j, "records.verified"));
	EXPECT_NUMS(j, r.out, { "records.messages", 1 }, { "records.bytes", 10 },
		    { "slots.total", 64 }, { "slots.reading", 1 }, { "slots.held_by_dead", 0 });
	jfree(j);
	t_run_free(&r);
	r = tool("check", uri, NULL);
	expect(&r, 0, "check");
	cr_assert(strstr(r.out, ": ok (mpmc, 64 slots of 128 bytes, 1 message ready, 10 bytes, "
			 "1 slot held)"), "%s", r.out);
	t_run_free(&r);

	r = tool("watch", uri, "--count", "1", NULL);
	expect(&r, 0, "watch --count 1");
	cr_assert_eq(lines(r.out), 2, "%s", r.out);
	cr_assert(strstr(r.out, "1/0") && strstr(r.out, "1.6"), "%s", r.out);
	t_run_free(&r);
	r = tool("watch", uri, "--json", "--count", "1", NULL);
	expect(&r, 0, "watch --json --count 1");
	j = jparse(r.out);
	cr_assert_str_eq(jstr(j, "status"), "ok");
	cr_assert_eq(ju64(j, "producers_live"), 1);
	cr_assert_eq(ju64(j, "consumers_live"), 1);
	cr_assert_float_eq(jdbl(j, "fill_pct"), 1.6, 0.05);
	jfree(j);
	t_run_free(&r);

	/* rm: refused while mapped, then done */
	r = tool("rm", uri, NULL);
	expect(&r, 1, "rm of a ring in use");
	cr_assert(strstr(r.err, "in use"), "%s", r.err);
	t_run_free(&r);
	cr_assert_eq(shmring_release(c, &held), 0);
	shmring_close(c);
	shmring_close(p);
	r = tool("rm", uri, NULL);
	expect(&r, 0, "rm");
	cr_assert(strstr(r.out, "removed"), "%s", r.out);
	cr_assert_not(t_exists(t_path_of(uri)));
	t_run_free(&r);
}

Test(tool, mpmc_check_names_corrupt_slot_words, .timeout = 30)
{
	const char *uri = new_uri("mpbad");
	make_mpmc(uri, 8192, 100, 0);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	send_str(p, "a");
	send_str(p, "b");
	shmring_close(p);
	set_word(uri, 5, mw_make(5, 9, 0));                    /* no such state */
	set_word(uri, 6, mw_make(6, MS_WRITING, 200));         /* owner out of range */
	set_word(uri, 7, mw_make(3, MS_READY, 0));             /* another slot's ticket */
	set_word(uri, 8, mw_make(8 - 128, MS_READY, 0));       /* two laps behind */

	struct t_run r = tool("check", "--json", uri, NULL);
	expect(&r, 1, "check of corrupt slot words");
	struct jv *j = jparse(r.out);
	cr_assert_not(jbool(j, "ok"));
	cr_assert_str_eq(jstr(j, "status"), "corrupt");
	char want[128];
	snprintf(want, sizeof(want), "slot 5 (word 0x%016llx): state 9 is not a slot state",
		 (unsigned long long)mw_make(5, 9, 0));
	cr_assert(strstr(jstr(j, "reason"), want), "reason: %s", jstr(j, "reason"));
	struct jv *pr = jmust(j, "problems", J_ARR);
	cr_assert_eq(pr->n, 4);
	/* the sound slots are still counted */
	EXPECT_NUMS(j, r.out, { "problems_total", 4 }, { "slots.invalid", 4 }, { "slots.ready", 2 });
	cr_assert(strstr(jstr(pr, "1"), "slot 6 ") && strstr(jstr(pr, "1"), "owner 200"),
		  "%s", jstr(pr, "1"));
	cr_assert(strstr(jstr(pr, "2"), "slot 7 ") && strstr(jstr(pr, "2"), "ticket 3 belongs to "
		  "slot 3"), "%s", jstr(pr, "2"));
	cr_assert(strstr(jstr(pr, "3"), "slot 8 ") && strstr(jstr(pr, "3"), "more than a lap "
		  "behind"), "%s", jstr(pr, "3"));
	jfree(j);
	t_run_free(&r);
	r = tool("check", uri, NULL);
	expect(&r, 1, "check (words)");
	cr_assert(strstr(r.out, "corrupt: slot 5 (word"), "%s", r.out);
	cr_assert(strstr(r.out, "  problem: slot 8 "), "%s", r.out);
	cr_assert(strstr(r.err, "slot 5") && strstr(r.err, "and 3 more problems"), "%s", r.err);
	t_run_free(&r);

	/* dump stops at the first bad word; info shows the count, exit 0 */
	r = tool("dump", "--json", uri, NULL);
	expect(&r, 1, "dump of corrupt slot words");
	j = jparse(r.out);
	cr_assert_eq(ju64(j, "count"), 2, "the two messages before slot 5");
	cr_assert_str_eq(jstr(j, "stopped"), "corrupt");
	cr_assert(strstr(jstr(j, "reason"), "slot 5"), "%s", jstr(j, "reason"));
	jfree(j);
	t_run_free(&r);
	r = tool("info", "--json", uri, NULL);
	expect(&r, 0, "info of corrupt slot words");
	j = jparse(r.out);
	cr_assert_eq(ju64(j, "mpmc.slot_states.invalid"), 4);
	jfree(j);
	t_run_free(&r);
	r = tool("info", uri, NULL);
	expect(&r, 0, "info (words)");
	cr_assert(strstr(r.out, "4 invalid words, the first at slot 5"), "%s", r.out);
	t_run_free(&r);
}

/* Damage to an MPMC header or ring state that the tool must name: the
 * geometry of validate_mpmc() and the stall timeout of mp_open(). */
Test(tool, mpmc_geometry_damage_is_named, .timeout = 30)
{
	static const struct {
		uint64_t capacity;
		uint32_t max_msg;
		const char *want;
	} cases[] = {
		{ 8192, 300, "capacity 8192 is not a whole number of 384-byte slots (max_msg 300)" },
		{ 384, 100, "capacity 384 makes 3 slots of 128 bytes (expected a power of two" },
		{ 128, 100, "makes 1 slots of 128 bytes" },
		{ 8192, 0, "max_msg 0" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *uri = new_uri("mpgeo");
		make_mpmc(uri, 8192, 100, 0);
		struct seg_hdr h;
		t_peek(t_path_of(uri), 0, &h, sizeof(h));
		h.capacity = cases[i].capacity;
		h.max_msg = cases[i].max_msg;
		h.checksum = seg_checksum(&h);
		t_patch(t_path_of(uri), 0, &h, sizeof(h));
		expect_corrupt(uri, cases[i].want, "corrupt");
	}
	const char *uri = new_uri("mpdata");
	make_mpmc(uri, 8192, 100, 0);
	struct seg_hdr h;
	t_peek(t_path_of(uri), 0, &h, sizeof(h));
	h.data_off = SEG_DATA_OFF;
	h.checksum = seg_checksum(&h);
	t_patch(t_path_of(uri), 0, &h, sizeof(h));
	expect_corrupt(uri, "data 20480 (expected 4096 16384 40960)", "corrupt");

	uri = new_uri("mpstall");
	make_mpmc(uri, 8192, 100, 0);
	patch_u32(t_path_of(uri), SEG_RING_OFF + offsetof(struct mpmc_shared, stall_ms), 0);
	expect_corrupt(uri, "stall timeout 0 ms out of range", "corrupt");

	uri = new_uri("mptick");
	make_mpmc(uri, 8192, 100, 0);
	patch_u64(t_path_of(uri), SEG_RING_OFF + offsetof(struct mpmc_shared, cons_ticket), 1000);
	expect_corrupt(uri, "more than two laps", "corrupt");
}

Test(tool, mpmc_check_flags_a_slot_held_by_a_dead_participant, .timeout = 30)
{
	const char *uri = new_uri("mpdead");
	make_mpmc(uri, 8192, 100, 60000);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	send_str(p, "m0");
	send_str(p, "m1");
	send_str(p, "m2");
	pid_t pid;
	struct holder *h = holder_start(uri, SHMRING_CONSUMER, 0, 0, 0, &pid);
	holder_kill(pid);
	struct t_run r = tool("info", "--json", uri, NULL);
	expect(&r, 0, "info");
	struct jv *j = jparse(r.out);
	struct jv *dead = part_with(j, "consumer");
	cr_assert_not(jbool(dead, "alive"));
	unsigned dslot = (unsigned)ju64(dead, "slot");
	jfree(j);
	t_run_free(&r);
	/* the dead consumer had acquired ticket 1 */
	set_word(uri, 1, mw_make(1, MS_READING, dslot + 1));

	r = tool("check", "--json", uri, NULL);
	expect(&r, 1, "check with a slot held by a dead consumer");
	j = jparse(r.out);
	cr_assert_not(jbool(j, "ok"));
	cr_assert_str_eq(jstr(j, "status"), "needs-repair");
	char want[200];
	snprintf(want, sizeof(want), "slot 1 (ticket 1) is READING by participant slot %u (pid %d), "
		 "which is dead: the next producer or consumer to attach repairs it", dslot, (int)pid);
	cr_assert_str_eq(jstr(j, "reason"), want);
	cr_assert_eq(ju64(j, "slots.held_by_dead"), 1);
	cr_assert_eq(ju64(j, "slots.ready"), 2);
	jfree(j);
	t_run_free(&r);
	r = tool("check", uri, NULL);
	expect(&r, 1, "check (words)");
	cr_assert(strstr(r.out, "needs-repair: slot 1 (ticket 1) is READING"), "%s", r.out);
	cr_assert(strstr(r.err, "next producer or consumer to attach repairs it"), "%s", r.err);
	t_run_free(&r);

	r = tool("info", "--json", uri, NULL);
	expect(&r, 0, "info shows the dead holder");
	j = jparse(r.out);
	struct jv *holders = jmust(j, "mpmc.holders", J_ARR);
	cr_assert_eq(holders->n, 1);
	cr_assert_eq(ju64(holders, "0.slot"), dslot);
	cr_assert_eq(ju64(holders, "0.pid"), (uint64_t)pid);
	cr_assert_not(jbool(holders, "0.alive"));
	jfree(j);
	t_run_free(&r);
	r = tool("info", uri, NULL);
	snprintf(want, sizeof(want), "slot %u (pid %d, DEAD): 1", dslot, (int)pid);
	cr_assert(strstr(r.out, want), "%s", r.out);
	t_run_free(&r);
	r = tool("dump", uri, NULL);
	expect(&r, 0, "dump");
	snprintf(want, sizeof(want), "READING by slot %u (pid %d, DEAD)", dslot, (int)pid);
	cr_assert(strstr(r.out, want), "%s", r.out);
	t_run_free(&r);

	/* the same slot held by a participant slot that is free in the table:
	 * no attach sweeps it, the data path frees it */
	set_word(uri, 1, mw_make(1, MS_READING, 99));
	r = tool("check", uri, NULL);
	expect(&r, 1, "slot held by a free participant slot");
	cr_assert(strstr(r.out, "participant slot 98, which is dead and no longer in the table"),
		  "%s", r.out);
	t_run_free(&r);

	/* as promised: the next attach repairs what the dead participant held */
	set_word(uri, 1, mw_make(1, MS_READING, dslot + 1));
	struct shmring *c = t_open(uri, SHMRING_CONSUMER);
	r = tool("check", "--json", uri, NULL);
	expect(&r, 0, "check after the repair");
	j = jparse(r.out);
	cr_assert_eq(ju64(j, "slots.held_by_dead"), 0);
	jfree(j);
	t_run_free(&r);
	r = tool("info", "--json", uri, NULL);
	j = jparse(r.out);
	cr_assert_eq(ju64(j, "stats.msgs_dropped"), 1, "the held message was dropped");
	jfree(j);
	t_run_free(&r);
	shmring_close(c);
	shmring_close(p);
	t_unshared(h, sizeof(*h));
}

Test(tool, mpmc_gc_removes_dead_and_old_keeps_live, .timeout = 30)
{
	const char *old_dead = new_uri("mpgdo"), *old_live = new_uri("mpglo");
	const char *young = new_uri("mpgy");
	make_mpmc(old_dead, 8192, 100, 0);
	make_mpmc(old_live, 8192, 100, 0);
	make_mpmc(young, 8192, 100, 0);
	pid_t pid;
	struct holder *h = holder_start(old_dead, SHMRING_PRODUCER, 2, 0, 8, &pid);
	holder_kill(pid);
	t_unshared(h, sizeof(*h));
	age_ring(t_path_of(old_dead), HOUR_NS);
	struct holder *live = holder_start(old_live, SHMRING_CONSUMER, 0, 0, 0, &pid);
	age_ring(t_path_of(old_live), HOUR_NS);

	struct t_run r = tool("gc", "--dry-run", "--json", "--match", my_glob(), NULL);
	expect(&r, 0, "gc --dry-run");
	struct jv *j = jparse(r.out);
	struct jv *acts = jmust(j, "actions", J_ARR);
	cr_assert_eq(acts->n, 3, "%s", r.out);
	expect_action(acts, old_dead, "would-remove", "1 dead producer");
	expect_action(acts, old_live, "kept", "in use");
	expect_action(acts, young, "kept", "younger than --min-age");
	jfree(j);
	t_run_free(&r);
	cr_assert(t_exists(t_path_of(old_dead)));

	r = tool("gc", "--match", my_glob(), NULL);
	expect(&r, 0, "gc");
	cr_assert(strstr(r.out, t_path_of(old_dead)), "%s", r.out);
	cr_assert_not(t_exists(t_path_of(old_dead)));
	cr_assert(t_exists(t_path_of(old_live)) && t_exists(t_path_of(young)));
	t_run_free(&r);
	holder_stop(live, pid);
	/* its last close is now: young again */
	r = tool("gc", "--json", "--match", my_glob(), NULL);
	expect(&r, 0, "gc after the close");
	j = jparse(r.out);
	expect_action(jmust(j, "actions", J_ARR), old_live, "kept", "last close");
	jfree(j);
	t_run_free(&r);
	r = tool("gc", "--min-age", "0s", "--match", my_glob(), NULL);
	expect(&r, 0, "gc --min-age 0s");
	cr_assert_not(t_exists(t_path_of(old_live)));
	cr_assert_not(t_exists(t_path_of(young)));
	t_run_free(&r);
}

static uint64_t mpmc_value(uint64_t *rnd)
{
	uint64_t r = t_rand(rnd);
	switch (r % 3) {
	case 0: return mw_make((r >> 8) % 512, (unsigned)(r >> 20) % 8, (unsigned)(r >> 24) % 140);
	case 1: return interesting(rnd, 8192);
	default: return t_rand(rnd);
	}
}

Test(tool, mpmc_random_damage_gives_a_verdict_never_a_crash, .timeout = 90)
{
	const char *uri = new_uri("mpfuzz");
	make_mpmc(uri, 8192, 100, 0);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER), *c = t_open(uri, SHMRING_CONSUMER);
	char buf[128];
	for (int i = 0; i < 150; i++) {          /* a few laps */
		send_str(p, "lap");
		cr_assert_eq(shmring_recv(c, buf, sizeof(buf), 0), 3);
	}
	for (int i = 0; i < 20; i++)
		send_str(p, "queued message");
	shmring_close(c);
	shmring_close(p);
	size_t size;
	uint8_t *orig = read_file(t_path_of(uri), &size);
	struct t_run r = tool("check", "--json", uri, NULL);
	expect(&r, 0, "the undamaged ring");
	t_run_free(&r);
	static const struct area area[] = {
		{ 0, sizeof(struct seg_hdr) },
		{ SEG_CTL_OFF + 64, 64 + 4 * 64 },
		{ SEG_RING_OFF, 4 * MPMC_LINE },                    /* tickets, masks, stall, counters */
		{ SEG_MPMC_DATA_OFF, 8192 },
	};
	int verdicts[3] = { 0 };
	damage_loop(uri, orig, size, area, mpmc_value, 40, verdicts);
	cr_log_info("MPMC random damage: %d passed check, %d were refused", verdicts[0], verdicts[1]);
	cr_assert_gt(verdicts[1], 10, "most damage must be detected");
	free(orig);
}

/* ======================================================================= */
/* modes, owners and removal by name                                       */
/* ======================================================================= */

Test(tool, create_mode_takes_read_and_write_bits_only, .timeout = 30)
{
	const char *uri = new_uri("xmode");
	static const char *const bad[] = { "4777", "2666", "0777", "1666", "0700", "04600" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct t_run r = tool("create", uri, "--mode", bad[i], NULL);
		expect(&r, 2, bad[i]);
		cr_assert(strstr(r.err, "--mode") && strstr(r.err, "only read and write bits"),
			  "%s: %s", bad[i], r.err);
		cr_assert_not(t_exists(t_path_of(uri)), "--mode %s made %s", bad[i], t_path_of(uri));
		t_run_free(&r);
	}
	struct t_run r = tool("create", uri, "--mode", "0666", NULL);
	expect(&r, 0, "create --mode 0666");
	t_run_free(&r);
}

/* rm and gc remove a name only through its directory's descriptor, and
 * not at all in a directory that others may write without the sticky bit:
 * there anybody can swap the name between the check and the unlink. */
Test(tool, rm_and_gc_refuse_directories_others_can_rename_in, .timeout = 30)
{
	char dir[] = "/tmp/shmctl-ww-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char ring[300], uri[320];
	snprintf(ring, sizeof(ring), "%s/%s", dir, t_name("ww"));
	t_remember(ring);
	snprintf(uri, sizeof(uri), "file:%s", ring);
	make_ring(uri, 4096, 100);
	age_ring(ring, HOUR_NS);
	cr_assert_eq(chmod(dir, 0777), 0);

	struct t_run r = tool("rm", uri, NULL);
	expect(&r, 2, "rm in a world-writable directory");
	cr_assert(strstr(r.err, "not sticky"), "%s", r.err);
	cr_assert(t_exists(ring));
	t_run_free(&r);
	r = tool("gc", "--dir", dir, "--match", my_glob(), NULL);
	expect(&r, 1, "gc in a world-writable directory");
	cr_assert(strstr(r.err, ring) && strstr(r.err, "not sticky"), "%s", r.err);
	cr_assert(t_exists(ring));
	t_run_free(&r);

	cr_assert_eq(chmod(dir, 01777), 0);
	r = tool("rm", uri, NULL);
	expect(&r, 0, "rm in a sticky directory");
	cr_assert_not(t_exists(ring));
	t_run_free(&r);
	cr_assert_eq(rmdir(dir), 0);
}

static int create_as_nobody(void *arg)
{
	if (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) ||
	    setresuid(NOBODY, NOBODY, NOBODY))
		return 99;
	struct shmring_opts o = { .capacity = 4096, .mode = 0666 };
	struct shmring *r = NULL;
	int rc = shmring_open(arg, SHMRING_CREATE | SHMRING_EXCL, &o, &r);
	if (rc == 0)
		shmring_close(r);
	return -rc;
}

/* The tool reads any user's segment (it parses defensively and never maps
 * one through the library), and gc as root collects another user's
 * abandoned ring, which shmring_open itself would refuse. */
Test(tool, root_inspects_and_collects_another_users_ring, .timeout = 30)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to act as another user");
	const char *uri = new_uri("nobody");
	cr_assert_eq(t_wait(t_spawn(create_as_nobody, (void *)uri)), 0);
	struct shmring *h = NULL;
	cr_assert_eq(shmring_open(uri, SHMRING_CONSUMER, NULL, &h), -EACCES);
	struct t_run r = tool("info", uri, NULL);
	expect(&r, 0, "info of nobody's ring");
	t_run_free(&r);
	r = tool("check", uri, NULL);
	expect(&r, 0, "check of nobody's ring");
	t_run_free(&r);
	age_ring(t_path_of(uri), HOUR_NS);
	r = tool("gc", "--match", name_of(uri), NULL);
	expect(&r, 0, "gc");
	cr_assert_not(t_exists(t_path_of(uri)), "%s", r.out);
	t_run_free(&r);
}

/* ======================================================================= */
/* doorbells (shmring_fd)                                                  */
/* ======================================================================= */

/* A consumer of uri in a child that armed its doorbell and waits; the
 * child's pid.  Killed by the caller. */
static pid_t armed_poller(const char *uri)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct shmring *c;
		char b[64], ok = 1;
		if (shmring_open(uri, SHMRING_CONSUMER, NULL, &c) || shmring_fd(c) < 0 ||
		    shmring_recv(c, b, sizeof(b), 0) != -EAGAIN)
			ok = 0;
		if (write(p[1], &ok, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	char ok = 0;
	close(p[1]);
	cr_assert_eq(read(p[0], &ok, 1), 1);
	close(p[0]);
	cr_assert_eq(ok, 1, "the poller could not arm");
	return pid;
}

/* The doorbell path of the participant of `pid` in info --json's list. */
static char *doorbell_of(const char *uri, pid_t pid)
{
	struct t_run r = tool("info", "--json", uri, NULL);
	expect(&r, 0, "info");
	struct jv *j = jparse(r.out);
	struct jv *parts = jmust(j, "participants", J_ARR);
	char *path = NULL;
	for (size_t i = 0; i < parts->n; i++)
		if ((pid_t)ju64(parts->items[i], "pid") == pid)
			path = strdup(jstr(parts->items[i], "doorbell"));
	cr_assert_not_null(path, "no doorbell for pid %d in %s", (int)pid, r.out);
	jfree(j);
	t_run_free(&r);
	return path;
}

Test(tool, gc_removes_doorbells_of_dead_pollers_only, .timeout = 30)
{
	const char *uri = new_uri("bell");
	make_ring(uri, 4096, 100);
	pid_t dead = armed_poller(uri);
	char *dead_bell = doorbell_of(uri, dead);
	cr_assert_eq(kill(dead, SIGKILL), 0);
	cr_assert_eq(waitpid(dead, NULL, 0), dead);
	cr_assert(t_exists(dead_bell), "a killed poller leaves its doorbell file");
	pid_t live = armed_poller(uri);      /* takes the dead consumer's role over */
	char *live_bell = doorbell_of(uri, live);

	struct t_run r = tool("gc", "--json", "--match", "shmring-bell.*", NULL);
	expect(&r, 0, "gc");
	struct jv *j = jparse(r.out), *acts = jmust(j, "actions", J_ARR);
	cr_assert_null(jfind(acts, "path", live_bell), "%s", r.out);
	struct jv *a = jfind(acts, "path", dead_bell);
	cr_assert(a && !strcmp(jstr(a, "action"), "removed") &&
		  !strcmp(jstr(a, "backend"), "doorbell"), "%s", r.out);
	cr_assert(!t_exists(dead_bell), "gc removed the dead poller's doorbell");
	cr_assert(t_exists(live_bell), "gc kept the live poller's doorbell");
	jfree(j);
	t_run_free(&r);

	kill(live, SIGKILL);
	waitpid(live, NULL, 0);
	/* and unlinking the ring takes the doorbells its table names */
	cr_assert_eq(shmring_unlink(uri), 0);
	cr_assert(!t_exists(live_bell), "shmring_unlink removed the dead poller's doorbell");
	free(dead_bell);
	free(live_bell);
}

Test(tool, bcast_info_shows_every_subscribers_lag, .timeout = 30)
{
	const char *uri = new_uri("bc");
	struct t_run r = tool("create", uri, "--kind", "bcast", "--capacity", "8K",
			      "--stall-ms", "750", NULL);
	expect(&r, 0, "create --kind bcast");
	cr_assert(strstr(r.out, "bcast, capacity 8K, stall timeout 750 ms"), "%s", r.out);
	t_run_free(&r);
	/* three messages; one subscriber read them all, the other one */
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	struct shmring *fast = t_open(uri, SHMRING_CONSUMER), *slow = t_open(uri, SHMRING_CONSUMER);
	send_str(p, "m0");
	send_str(p, "m1");
	send_str(p, "m2");
	char buf[64];
	for (int i = 0; i < 3; i++)
		cr_assert_eq(shmring_recv(fast, buf, sizeof(buf), 0), 2);
	cr_assert_eq(shmring_recv(slow, buf, sizeof(buf), 0), 2);

	r = tool("info", "--json", uri, NULL);
	expect(&r, 0, "info --json");
	struct jv *j = jparse(r.out);
	cr_assert_str_eq(jstr(j, "header.kind_name"), "bcast");
	struct jv *subs = jmust(j, "subscribers", J_ARR);
	cr_assert_eq(subs->n, 2, "%s", r.out);
	/* records of 24 bytes: 16 of header and sequence number, 2 padded to 8 */
	EXPECT_NUMS(j, r.out, { "header.data_off", 36864 }, { "subscribers.0.lag_msgs", 0 },
		    { "subscribers.0.msgs_recv", 3 }, { "subscribers.1.lag_msgs", 2 },
		    { "subscribers.1.lag_bytes", 48 }, { "subscribers.1.msgs_recv", 1 },
		    { "stats.msgs_sent", 3 }, { "stats.msgs_recv", 4 }, { "stats.lag_msgs", 2 },
		    { "stats.lag_bytes", 48 }, { "stats.evictions", 0 });
	cr_assert(jbool(subs, "1.alive") && jbool(subs, "1.counted"));
	jfree(j);
	t_run_free(&r);
	r = tool("info", uri, NULL);
	expect(&r, 0, "info");
	cr_assert(strstr(r.out, "subscribers: 2"), "%s", r.out);
	cr_assert(strstr(r.out, "LAG MSGS"), "%s", r.out);
	t_run_free(&r);
	r = tool("check", uri, NULL);
	expect(&r, 0, "check");
	t_run_free(&r);
	r = tool("dump", uri, NULL);
	expect(&r, 0, "dump");
	cr_assert(strstr(r.out, "\"m2\""), "%s", r.out);
	t_run_free(&r);
	r = tool("list", "--match", name_of(uri), NULL);
	expect(&r, 0, "list");
	cr_assert(strstr(r.out, " bcast "), "%s", r.out);
	t_run_free(&r);
	shmring_close(slow);
	shmring_close(fast);
	shmring_close(p);
	r = tool("rm", uri, NULL);
	expect(&r, 0, "rm");
	t_run_free(&r);
}

/* A SHMRING_FIXED ring: info names the format and its counters, dump
 * shows the queued slots, check passes it, and garbage in its counters is
 * corruption, not a crash. */
Test(tool, fixed_ring_info_dump_check, .timeout = 30)
{
	const char *uri = new_uri("fixed");
	struct t_run r = tool("create", uri, "--fixed", NULL);
	expect(&r, 2, "create --fixed without --max-msg");
	t_run_free(&r);
	r = tool("create", uri, "--fixed", "--max-msg", "12", "--capacity", "4K", NULL);
	expect(&r, 0, "create --fixed");
	cr_assert(strstr(r.out, "fixed: 256 slots of 16 bytes"), "%s", r.out);
	t_run_free(&r);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	struct shmring *c = t_open(uri, SHMRING_CONSUMER);
	cr_assert_eq(shmring_send(p, "m0-fixed-len", 12, 0), 0);
	cr_assert_eq(shmring_send(p, "m1-fixed-len", 12, 0), 0);
	cr_assert_eq(shmring_send(p, "m2-fixed-len", 12, 0), 0);
	char b[12];
	cr_assert_eq(shmring_recv(c, b, sizeof(b), 0), 12);
	r = tool("info", uri, NULL);
	expect(&r, 0, "info");
	cr_assert(strstr(r.out, "fixed: 256 slots of 16 bytes, every message 12 bytes"), "%s", r.out);
	cr_assert(strstr(r.out, "3 messages, 36 bytes"), "%s", r.out);
	t_run_free(&r);
	r = tool("dump", uri, NULL);
	expect(&r, 0, "dump");
	cr_assert(strstr(r.out, "\"m1-fixed-len\"") && strstr(r.out, "\"m2-fixed-len\""), "%s",
		  r.out);
	cr_assert(strstr(r.out, "2 messages, 24 bytes"), "%s", r.out);
	t_run_free(&r);
	r = tool("check", uri, NULL);
	expect(&r, 0, "check");
	t_run_free(&r);
	r = tool("list", "--match", name_of(uri), NULL);
	expect(&r, 0, "list");
	t_run_free(&r);
	shmring_close(c);
	shmring_close(p);
	/* prod_tail (ring state at 16384) more than a ring ahead */
	patch_u64(t_path_of(uri), 16384, 1u << 20);
	r = tool("check", uri, NULL);
	cr_assert_eq(r.status, 1, "check: exit %d\n%s%s", r.status, r.out, r.err);
	cr_assert(strstr(r.out, "corrupt"), "%s", r.out);
	t_run_free(&r);
	r = tool("dump", uri, NULL);
	cr_assert_eq(r.status, 1, "dump: exit %d\n%s%s", r.status, r.out, r.err);
	t_run_free(&r);
}

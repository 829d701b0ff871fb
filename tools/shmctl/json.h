/* SPDX-License-Identifier: MIT */
/*
 * A small streaming JSON writer: one document per invocation, indented,
 * strings escaped (control characters, quotes, backslashes; bytes that are
 * not valid UTF-8 become \u00XX so the output is always valid JSON).
 */
#ifndef SHMCTL_JSON_H
#define SHMCTL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define JW_MAX_DEPTH 16

struct jw {
	FILE *f;
	int depth;
	unsigned count[JW_MAX_DEPTH];
};

void jw_init(struct jw *w, FILE *f);
/* key is NULL inside arrays and for the top-level value */
void jw_obj(struct jw *w, const char *key);
void jw_obj_end(struct jw *w);
void jw_arr(struct jw *w, const char *key);
void jw_arr_end(struct jw *w);
void jw_str(struct jw *w, const char *key, const char *s);       /* NULL: null */
void jw_bytes(struct jw *w, const char *key, const void *p, size_t n);
void jw_u64(struct jw *w, const char *key, uint64_t v);
void jw_i64(struct jw *w, const char *key, int64_t v);
void jw_dbl(struct jw *w, const char *key, double v, int decimals);
void jw_bool(struct jw *w, const char *key, bool v);
void jw_null(struct jw *w, const char *key);
/* key: an object of n unsigned members, in the order given */
struct jw_u64_field {
	const char *key;
	uint64_t v;
};
void jw_u64_obj(struct jw *w, const char *key, const struct jw_u64_field *f, size_t n);
#define JW_U64_OBJ(w, key, ...)                                                 \
	jw_u64_obj(w, key, (const struct jw_u64_field[]){ __VA_ARGS__ },        \
		   sizeof((const struct jw_u64_field[]){ __VA_ARGS__ }) /          \
			   sizeof(struct jw_u64_field))
/* Ends the document with a newline. */
void jw_done(struct jw *w);

#endif

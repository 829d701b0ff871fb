/* SPDX-License-Identifier: MIT */
#include "table.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void tbl_init(struct table *t, const char *aligns, const char *const *heads)
{
	memset(t, 0, sizeof(*t));
	t->ncols = (int)strlen(aligns);
	if (t->ncols > TBL_MAX_COLS)
		t->ncols = TBL_MAX_COLS;
	for (int i = 0; i < t->ncols; i++) {
		t->align[i] = aligns[i];
		t->head[i] = heads[i];
	}
}

void tbl_cell(struct table *t, const char *s)
{
	size_t idx = t->nrows * (size_t)t->ncols + (size_t)t->col;
	if (idx >= t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : (size_t)t->ncols * 16;
		char **n = realloc(t->cells, ncap * sizeof(*n));
		if (!n) {
			t->oom = 1;
			return;
		}
		t->cells = n;
		t->cap = ncap;
	}
	t->cells[idx] = strdup(s ? s : "");
	if (!t->cells[idx])
		t->oom = 1;
	if (++t->col == t->ncols) {
		t->col = 0;
		t->nrows++;
	}
}

void tbl_cellf(struct table *t, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	tbl_cell(t, buf);
}

static const char *cell(const struct table *t, size_t r, int c)
{
	const char *s = t->cells[r * (size_t)t->ncols + (size_t)c];
	return s ? s : "";
}

void tbl_print(const struct table *t, FILE *f, const char *indent)
{
	size_t w[TBL_MAX_COLS];
	for (int c = 0; c < t->ncols; c++) {
		w[c] = strlen(t->head[c]);
		for (size_t r = 0; r < t->nrows; r++) {
			size_t l = strlen(cell(t, r, c));
			if (l > w[c])
				w[c] = l;
		}
	}
	for (size_t r = 0; r <= t->nrows; r++) {
		fputs(indent ? indent : "", f);
		for (int c = 0; c < t->ncols; c++) {
			const char *s = r == 0 ? t->head[c] : cell(t, r - 1, c);
			int last = c == t->ncols - 1;
			if (t->align[c] == 'r')
				fprintf(f, "%*s", (int)w[c], s);
			else if (last)
				fputs(s, f);
			else
				fprintf(f, "%-*s", (int)w[c], s);
			if (!last)
				fputs("  ", f);
		}
		fputc('\n', f);
	}
}

void tbl_free(struct table *t)
{
	size_t n = t->nrows * (size_t)t->ncols + (size_t)t->col;
	for (size_t i = 0; i < n; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

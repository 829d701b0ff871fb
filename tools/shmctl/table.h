/* SPDX-License-Identifier: MIT */
/* Aligned text tables: collect every cell, then print with column widths. */
#ifndef SHMCTL_TABLE_H
#define SHMCTL_TABLE_H

#include <stdio.h>

#define TBL_MAX_COLS 16

struct table {
	int ncols;
	const char *head[TBL_MAX_COLS];
	char align[TBL_MAX_COLS];     /* 'l' or 'r' */
	char **cells;                 /* row-major, ncols per row */
	size_t nrows, cap;
	int col;                      /* next column of the row being filled */
	int oom;
};

/* aligns: one 'l'/'r' per column; heads: the column titles */
void tbl_init(struct table *t, const char *aligns, const char *const *heads);
/* Append one cell (copied); rows fill left to right. */
void tbl_cell(struct table *t, const char *s);
void tbl_cellf(struct table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tbl_print(const struct table *t, FILE *f, const char *indent);
void tbl_free(struct table *t);

#endif

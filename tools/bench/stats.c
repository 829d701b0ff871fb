/* SPDX-License-Identifier: MIT */
/* shmring-bench: the latency histogram and the median of repetitions. */
#include "bench.h"

#include <stdlib.h>

static uint64_t h_upper(unsigned i)
{
	if (i < H_SUB)
		return i;
	unsigned k = (i - H_SUB) / H_SUB + H_SUB_BITS;
	uint64_t sub = (i - H_SUB) % H_SUB + H_SUB;
	return ((sub + 1) << (k - H_SUB_BITS)) - 1;     /* wraps to max at the top */
}

void h_reset(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

void h_merge(struct hist *dst, const struct hist *src)
{
	for (unsigned i = 0; i < H_BUCKETS; i++)
		dst->b[i] += src->b[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

/* the upper bound of the bucket that holds the q-quantile, never above the
 * largest sample seen */
uint64_t h_percentile(const struct hist *h, double q)
{
	if (h->count == 0)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < H_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			uint64_t u = h_upper(i);
			return u < h->max ? u : h->max;
		}
	}
	return h->max;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* sorts v in place */
double median(double *v, unsigned n, double *min, double *max)
{
	if (n == 0) {
		*min = *max = 0;
		return 0;
	}
	qsort(v, n, sizeof(v[0]), cmp_double);
	*min = v[0];
	*max = v[n - 1];
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

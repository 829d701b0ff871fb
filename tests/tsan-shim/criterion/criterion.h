/* SPDX-License-Identifier: MIT */
/*
 * A small stand-in for <criterion/criterion.h>, used only for the
 * ThreadSanitizer build (make check SAN=thread).  Criterion cannot start
 * under TSan: its BoxFort arena maps memory at fixed addresses that TSan
 * reserves for itself ("Could not initialize inheritable arena", upstream
 * Criterion issue #274).  The test sources stay unchanged; this header
 * offers the subset they use, and tests/tsan-shim/runner.c runs each test
 * in a forked child with a timeout, printing Criterion-style results.
 */
#ifndef SHMRING_TSAN_SHIM_CRITERION_H
#define SHMRING_TSAN_SHIM_CRITERION_H

#include <stdbool.h>
#include <stddef.h>

struct shim_test_opts { int unused_; double timeout; bool disabled; };

void shim_register(const char *suite, const char *name, void (*fn)(void),
		   struct shim_test_opts opts);
struct shim_suite_opts { int unused_; void (*init)(void); void (*fini)(void); double timeout; };
void shim_suite(const char *suite, struct shim_suite_opts opts);
void shim_fail(const char *file, int line, const char *expr, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 4, 5)));
void shim_skip(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void shim_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define Test(suite, name, ...)                                                    \
	static void shim_t_##suite##_##name(void);                                \
	__attribute__((constructor)) static void shim_reg_##suite##_##name(void)  \
	{                                                                         \
		shim_register(#suite, #name, shim_t_##suite##_##name,             \
			      (struct shim_test_opts){ .unused_ = 0, __VA_ARGS__ }); \
	}                                                                         \
	static void shim_t_##suite##_##name(void)

#define TestSuite(suite, ...)                                                     \
	__attribute__((constructor)) static void shim_suite_##suite(void)         \
	{                                                                         \
		shim_suite(#suite, (struct shim_suite_opts){ .unused_ = 0, __VA_ARGS__ }); \
	}

#define cr_assert_fail(...) shim_fail(__FILE__, __LINE__, "cr_assert_fail", " " __VA_ARGS__)

#define SHIM_CHECK(cond, expr, ...) \
	do { if (!(cond)) shim_fail(__FILE__, __LINE__, expr, " " __VA_ARGS__); } while (0)

#define cr_assert(c, ...)          SHIM_CHECK((c), #c, __VA_ARGS__)
#define cr_assert_not(c, ...)      SHIM_CHECK(!(c), "!(" #c ")", __VA_ARGS__)
#define cr_assert_eq(a, b, ...)    SHIM_CHECK((a) == (b), #a " == " #b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...)   SHIM_CHECK((a) != (b), #a " != " #b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...)    SHIM_CHECK((a) < (b), #a " < " #b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...)   SHIM_CHECK((a) <= (b), #a " <= " #b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...)    SHIM_CHECK((a) > (b), #a " > " #b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...)   SHIM_CHECK((a) >= (b), #a " >= " #b, __VA_ARGS__)
#define cr_assert_null(p, ...)     SHIM_CHECK((p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_assert_not_null(p, ...) SHIM_CHECK((p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) SHIM_CHECK(strcmp((a), (b)) == 0, #a " eq " #b, __VA_ARGS__)
#define cr_skip_test(...)          shim_skip(" " __VA_ARGS__)
#define cr_log_info(...)           shim_log(__VA_ARGS__)
#define cr_log_warn(...)           shim_log(__VA_ARGS__)

#endif

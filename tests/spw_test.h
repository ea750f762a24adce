/* Skips that ctest reports as skips.
 *
 * cmocka's skip() ends a case as skipped, yet the executable still exits 0,
 * so ctest counts it as passed and nobody notices a test that never runs.
 * spw_skip() prints why and counts the skip; spw_test_exit() then makes the
 * executable exit 77 (SPW_TEST_SKIPPED, the SKIP_RETURN_CODE of every ctest
 * entry) when something skipped and nothing failed. tools/test.sh lists the
 * skipped entries and fails on any not in tests/may_skip.txt.
 *
 *   if (!have_thing())
 *       spw_skip("no thing on this machine");
 *   ...
 *   return spw_test_exit(cmocka_run_group_tests(tests, NULL, NULL));
 */
#ifndef SPW_TEST_H
#define SPW_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#define SPW_TEST_SKIPPED 77

/* One counter per executable; a function so an unused header costs nothing. */
static inline int *spw_test_skips_(void)
{
    static int n;
    return &n;
}

__attribute__((format(printf, 2, 3))) static inline void spw_test_note_skip_(const char *where,
                                                                             const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("skipped: %s: ", where);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    ++*spw_test_skips_();
}

/* Ends the current case as skipped, saying why. */
#define spw_skip(...)                               \
    do {                                            \
        spw_test_note_skip_(__func__, __VA_ARGS__); \
        skip();                                     \
    } while (0)

/* The exit status for `failed` failed cases: 1 on any failure (a raw count
 * could wrap to 0 or hit 77), else 77 when a case skipped, else 0. */
static inline int spw_test_exit(int failed)
{
    if (failed)
        return 1;
    if (*spw_test_skips_()) {
        printf("%d case(s) skipped: exit %d\n", *spw_test_skips_(), SPW_TEST_SKIPPED);
        return SPW_TEST_SKIPPED;
    }
    return 0;
}

/* For main(): the whole executable cannot run here. `return spw_test_skip_all(...)`. */
__attribute__((format(printf, 1, 2))) static inline int spw_test_skip_all(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("skipped: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    return SPW_TEST_SKIPPED;
}

#endif

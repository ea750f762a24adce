/* Rate adaptation on synthetic numbers (pure functions, no timing): the
 * path fit recovers rate and base delay from requests of mixed sizes and
 * follows a step of the link; the policy takes the most accurate rate point
 * that meets the objective and the fastest when none does. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "runtime/service/service_internal.h"
#include "splitwire/service.h"

/* Network time of a request of `bytes` on a path (ms). */
static double path_ms(double rate_bps, double base_ms, double bytes)
{
    return base_ms + bytes * 8.0 / rate_bps * 1000.0;
}

static void test_fit_recovers_path(void **state)
{
    (void)state;
    spw_path_estimate e = {0};
    static const double sizes[] = {1100, 3900, 2200, 1100, 3900, 2200, 1500, 3000};
    for (int i = 0; i < 8; i++)
        spw_path_estimate_add(&e, sizes[i], path_ms(1e6, 40, sizes[i]));
    assert_int_equal(e.samples, 8);
    assert_true(fabs(e.rate_bps / 1e6 - 1) < 0.01);
    assert_true(fabs(e.base_ms - 40) < 0.5);
}

static void test_fit_one_size_keeps_rate_unknown(void **state)
{
    (void)state;
    spw_path_estimate e = {0};
    for (int i = 0; i < 5; i++)
        spw_path_estimate_add(&e, 2000, 56);
    assert_true(e.rate_bps == 0); /* one size cannot split rate from delay */
    assert_true(fabs(e.base_ms - 56) < 1e-9);
    /* Nonsense is ignored. */
    spw_path_estimate_add(&e, NAN, 10);
    spw_path_estimate_add(&e, 100, -1);
    assert_int_equal(e.samples, 5);
}

static void test_fit_follows_a_step(void **state)
{
    (void)state;
    spw_path_estimate e = {0};
    static const double sizes[] = {1100, 3900, 2200};
    for (int i = 0; i < 12; i++)
        spw_path_estimate_add(&e, sizes[i % 3], path_ms(20e6, 40, sizes[i % 3]));
    assert_true(fabs(e.rate_bps / 20e6 - 1) < 0.02);
    /* 20 -> 1 Mbit/s: within a dozen requests the estimate is the new rate. */
    for (int i = 0; i < 12; i++)
        spw_path_estimate_add(&e, sizes[i % 3], path_ms(1e6, 40, sizes[i % 3]));
    assert_true(fabs(e.rate_bps / 1e6 - 1) < 0.1);
    /* ... and back up. */
    for (int i = 0; i < 12; i++)
        spw_path_estimate_add(&e, sizes[i % 3], path_ms(20e6, 40, sizes[i % 3]));
    assert_true(fabs(e.rate_bps / 20e6 - 1) < 0.1);
}

static void test_fit_one_size_step_up(void **state)
{
    (void)state;
    spw_path_estimate e = {0};
    static const double sizes[] = {1100, 3900, 2200};
    for (int i = 0; i < 6; i++)
        spw_path_estimate_add(&e, sizes[i % 3], path_ms(30e3, 40, sizes[i % 3]));
    assert_true(fabs(e.rate_bps / 30e3 - 1) < 0.01);
    /* The link gets faster while every request has one size: the fit
     * cannot see a slope, but no request can beat its bytes at the rate. */
    for (int i = 0; i < 3; i++)
        spw_path_estimate_add(&e, 1100, path_ms(20e6, 40, 1100));
    assert_true(e.rate_bps >= 1100 * 8 / path_ms(20e6, 40, 1100) * 1000 * 0.999);
    /* So the prediction for a larger request is no longer the slow link's. */
    spw_rate_point big = {3900, 0, 0};
    assert_true(spw_adapt_predict(&big, &e) < 3900 * 8 / 30e3 * 1e3 / 2);
}

static void test_policy(void **state)
{
    (void)state;
    /* Three rate points: small and least accurate, middle and best, large. */
    const spw_rate_point pts[3] = {{1100, 100, 0.70}, {2200, 100, 0.74}, {3900, 110, 0.727}};
    spw_path_estimate fast = {.rate_bps = 20e6, .base_ms = 40, .samples = 1};
    /* Every point meets 150 ms at 20 Mbit/s: the most accurate wins. */
    assert_int_equal(spw_adapt_choose(pts, 3, &fast, 150), 1);
    /* Prediction: compute + base + serialisation. */
    assert_true(fabs(spw_adapt_predict(&pts[2], &fast) - (110 + 40 + 3900 * 8 / 20e6 * 1e3)) <
                1e-9);
    /* At 1 Mbit/s only the small one fits: 100 + 40 + 8.8 ms. */
    spw_path_estimate slow = {.rate_bps = 1e6, .base_ms = 40, .samples = 1};
    assert_int_equal(spw_adapt_choose(pts, 3, &slow, 150), 0);
    /* None fits: the fastest predicted, not the most accurate. */
    spw_path_estimate crawl = {.rate_bps = 1e5, .base_ms = 300, .samples = 1};
    assert_int_equal(spw_adapt_choose(pts, 3, &crawl, 150), 0);
    /* Nothing measured yet: compute alone, so the most accurate that fits. */
    spw_path_estimate none = {0};
    assert_int_equal(spw_adapt_choose(pts, 3, &none, 150), 1);
    assert_int_equal(spw_adapt_choose(pts, 0, &fast, 150), -1);
    assert_int_equal(spw_adapt_choose(NULL, 3, &fast, 150), -1);
}

/* Points with the same networks share the least compute any of them
 * measured; the choice then follows the bytes alone: on a slow link the
 * smaller of two equal-cost points, which a noisy measurement of the
 * smaller one's compute hid before. Unknown work (0) shares nothing. */
static void test_shared_compute(void **state)
{
    (void)state;
    /* l8: 8.6 KB, more accurate; l32: 6.8 KB; l96: 4.5 KB, other networks. */
    spw_rate_point p[4] = {{8600, 40, 0.758}, {6800, 55, 0.753}, {4500, 0, 0.70}, {3000, 90, 0.6}};
    const int64_t macs[4] = {182000000, 182000000, 182000000, 0};
    spw_path_estimate e = {.rate_bps = 1e6, .base_ms = 45, .samples = 10};
    /* As measured, l32 looks slower than l8 (load): at 150 ms neither fits,
     * l8 (45 + 68.8 + 40 = 153.8) is "fastest" against l32 (45 + 54.4 + 55). */
    assert_int_equal(spw_adapt_choose(p, 2, &e, 150), 0);
    spw__adapt_share_compute(p, macs, 4);
    assert_true(p[0].compute_ms == 40 && p[1].compute_ms == 40);
    assert_true(p[2].compute_ms == 40); /* unmeasured, same networks */
    assert_true(p[3].compute_ms == 90); /* unknown work: its own */
    /* Equal compute: l32 (139.4 ms) meets 150 ms, l8 (153.8) does not. */
    assert_int_equal(spw_adapt_choose(p, 2, &e, 150), 1);
    /* Nothing measured: nothing to share. */
    spw_rate_point q[2] = {{100, 0, 1}, {200, 0, 2}};
    const int64_t same[2] = {5, 5};
    spw__adapt_share_compute(q, same, 2);
    assert_true(q[0].compute_ms == 0 && q[1].compute_ms == 0);
    spw__adapt_share_compute(NULL, same, 2); /* no crash */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fit_recovers_path),
        cmocka_unit_test(test_fit_one_size_keeps_rate_unknown),
        cmocka_unit_test(test_fit_follows_a_step),
        cmocka_unit_test(test_fit_one_size_step_up),
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_shared_compute),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

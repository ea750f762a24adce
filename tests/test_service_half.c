/* Sub-batches: a server half whose plans are smaller than its batches runs a
 * batch as consecutive sub-batches on them, and each image's scores must be
 * the same bits as on a plan as large as the batch, on every CPU backend,
 * with whole and partial sub-batches; cpu-fast's must also agree with
 * cpu-ref's. The committed tiny bundle keeps cpu-ref quick. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "drivers/backend.h"
#include "runtime/service/service_internal.h"
#include "spw_test.h"
#include "splitwire/splitwire.h"

#define BUNDLE SPW_TEST_DATA "/vectors/bundle/tiny"
#define MODELS SPW_TEST_DATA "/vectors/bundle/models"
#define MAX_B 8

static spw_bundle *bundle;
static spw_codec_tables *tables;

static void fill_symbols(int32_t *s, size_t n, unsigned seed)
{
    for (size_t e = 0; e < n; e++) {
        seed = seed * 1103515245u + 12345u;
        s[e] = (int32_t)((seed >> 16) % 9) - 4;
    }
}

/* Runs n slots of symbols on h; the scores stay in h->logits. */
static void run(spw_half *h, const int32_t *symbols, int n)
{
    spw_result out[MAX_B];
    memcpy(h->symbols, symbols, (size_t)n * h->latent_elems * sizeof(int32_t));
    assert_int_equal(spw__half_run(h, n, 5, out), 0);
}

static void sub_batches_on(const char *backend, float *ref_scores, bool compare_ref)
{
    spw_half *full = NULL;
    assert_int_equal(
        spw__half_open(bundle, tables, MODELS, backend, 1, MAX_B, MAX_B, NULL, 0, &full), 0);
    assert_int_equal(full->plan_batch, MAX_B);
    const size_t lat = full->latent_elems, cls = (size_t)full->classes;
    int32_t *symbols = malloc(MAX_B * lat * sizeof(int32_t));
    float *want = malloc(MAX_B * cls * sizeof(float));
    assert_non_null(symbols);
    assert_non_null(want);
    /* Plans of 1 (every image alone), 3 (a partial last sub-batch on a plan
     * larger than the slots left) and the backend's own choice. */
    const int plan_batches[] = {1, 3, 0};
    const int sizes[] = {MAX_B, 7, 5, 1};
    for (size_t p = 0; p < SPW_ARRAY_SIZE(plan_batches); p++) {
        spw_half *sub = NULL;
        assert_int_equal(spw__half_open(bundle, tables, MODELS, backend, 1, MAX_B, plan_batches[p],
                                        NULL, 0, &sub),
                         0);
        if (plan_batches[p])
            assert_int_equal(sub->plan_batch, plan_batches[p]);
        for (size_t k = 0; k < SPW_ARRAY_SIZE(sizes); k++) {
            int n = sizes[k];
            fill_symbols(symbols, (size_t)n * lat, 777u + (unsigned)(p * 10 + k));
            run(full, symbols, n);
            memcpy(want, full->logits, (size_t)n * cls * sizeof(float));
            run(sub, symbols, n);
            if (memcmp(want, sub->logits, (size_t)n * cls * sizeof(float)))
                fail_msg("%s: plan batch %d, batch of %d: scores differ from one plan of %d",
                         backend, plan_batches[p], n, MAX_B);
            if (ref_scores && !compare_ref && n == MAX_B && p == 0)
                memcpy(ref_scores, want, MAX_B * cls * sizeof(float));
        }
        spw__half_close(sub);
    }
    if (compare_ref) {
        /* The first case's symbols again, against cpu-ref's scores. */
        fill_symbols(symbols, MAX_B * lat, 777u);
        run(full, symbols, MAX_B);
        for (size_t e = 0; e < MAX_B * cls; e++) {
            float r = ref_scores[e], got = full->logits[e];
            if (fabsf(got - r) > 1e-4f * (fabsf(r) > 1 ? fabsf(r) : 1))
                fail_msg("%s score %zu: %g, cpu-ref %g", backend, e, (double)got, (double)r);
        }
    }
    free(symbols);
    free(want);
    spw__half_close(full);
}

static void test_sub_batches_match_full_batches(void **state)
{
    (void)state;
    spw_half *probe = NULL;
    assert_int_equal(
        spw__half_open(bundle, tables, MODELS, "cpu-ref", 1, MAX_B, 0, NULL, 0, &probe), 0);
    size_t cls = (size_t)probe->classes;
    spw__half_close(probe);
    float *ref = malloc(MAX_B * cls * sizeof(float));
    assert_non_null(ref);
    sub_batches_on("cpu-ref", ref, false);
    if (spw__backend_find("cpu-fast"))
        sub_batches_on("cpu-fast", ref, true);
    else
        spw_skip("cpu-fast not built or not available");
    free(ref);
}

static void test_plan_batch_choice(void **state)
{
    (void)state;
    /* The CPU backends plan single images on one thread (cpu-ref always
     * runs on one), whole batches on several; Vulkan whole batches. */
    assert_int_equal(spw__backend_plan_batch("cpu-ref", 0), 1);
    assert_int_equal(spw__backend_plan_batch("cpu-ref", 4), 1);
    if (spw__backend_find("cpu-fast")) {
        assert_int_equal(spw__backend_plan_batch("cpu-fast", 1), 1);
        assert_int_equal(spw__backend_plan_batch("cpu-fast", 2), 0);
    }
    if (spw__backend_find("vulkan"))
        assert_int_equal(spw__backend_plan_batch("vulkan", 1), 0);
    assert_int_equal(spw__backend_plan_batch("no-such-backend", 1), 0);
    spw_half *h = NULL;
    assert_int_equal(spw__half_open(bundle, tables, MODELS, "cpu-ref", 1, MAX_B, 0, NULL, 0, &h),
                     0);
    assert_int_equal(h->plan_batch, 1);
    assert_int_equal(h->n_plans, 1);
    spw_result out[MAX_B + 1];
    assert_int_equal(spw__half_run(h, MAX_B + 1, 5, out), SPW_EINVAL);
    assert_int_equal(spw__half_run(h, 0, 5, out), SPW_EINVAL);
    spw__half_close(h);
    /* A plan batch above max_batch is max_batch. */
    assert_int_equal(spw__half_open(bundle, tables, MODELS, "cpu-ref", 1, 2, 16, NULL, 0, &h), 0);
    assert_int_equal(h->plan_batch, 2);
    assert_int_equal(h->n_plans, 2);
    spw__half_close(h);
}

int main(void)
{
    if (spw_bundle_open(BUNDLE, &bundle) || spw_bundle_load_tables(bundle, &tables)) {
        fprintf(stderr, "cannot open %s: %s\n", BUNDLE, spw_error_detail());
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sub_batches_match_full_batches),
        cmocka_unit_test(test_plan_batch_choice),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    spw_codec_tables_free(tables);
    spw_bundle_close(bundle);
    return spw_test_exit(rc);
}

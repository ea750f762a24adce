/* Allocation failure: load, plan and run a model with the allocator failing
 * at the k-th call, for every k until the whole sequence succeeds. Every
 * failure must be a clean SPW_ENOMEM-style error with nothing leaked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "splitwire/splitwire.h"

static struct {
    long calls, budget, live;
} ctr;

static void *c_malloc(size_t n, void *ctx)
{
    (void)ctx;
    if (ctr.budget >= 0 && ctr.calls >= ctr.budget)
        return NULL;
    ctr.calls++;
    ctr.live++;
    return malloc(n);
}

static void *c_realloc(void *p, size_t n, void *ctx)
{
    (void)ctx;
    if (ctr.budget >= 0 && ctr.calls >= ctr.budget)
        return NULL;
    ctr.calls++;
    if (!p)
        ctr.live++;
    return realloc(p, n);
}

static void c_free(void *p, void *ctx)
{
    (void)ctx;
    if (p)
        ctr.live--;
    free(p);
}

/* One attempt; returns the status of the first failing step (0 = all ran). */
static int attempt(const char *path, const spw_tensor *in, spw_tensor *out)
{
    spw_model *m = NULL;
    spw_plan *p = NULL;
    int rc = spw_model_load(path, &m);
    if (rc == 0) {
        spw_plan_options o = {.backend = "cpu-ref", .batch = (int)in->dims[0]};
        rc = spw_plan_create(m, &o, &p);
    }
    if (rc == 0)
        rc = spw_plan_run(p, in, 1, out, 1);
    spw_plan_free(p);
    spw_model_free(m);
    return rc;
}

static void test_growing_budget(void **state)
{
    (void)state;
    const char *path = SPW_TEST_DATA "/vectors/ops/svbi_encoder_32.onnx";
    spw_tensor in, want;
    assert_int_equal(spw_npy_read(SPW_TEST_DATA "/vectors/ops/svbi_encoder_32_in0.npy", &in), 0);
    assert_int_equal(spw_npy_read(SPW_TEST_DATA "/vectors/ops/svbi_encoder_32_out0.npy", &want), 0);
    spw_tensor out = want;
    out.data = malloc(spw_tensor_nbytes(&want));
    /* Backends register on first use; do that with the normal allocator. */
    assert_true(spw_backend_count() >= 1);
    spw_allocator a = {c_malloc, c_realloc, c_free, NULL};
    int failures = 0;
    for (long k = 0;; k++) {
        ctr.calls = 0;
        ctr.live = 0;
        ctr.budget = k;
        spw_set_allocator(&a);
        int rc = attempt(path, &in, &out);
        spw_set_allocator(NULL);
        assert_int_equal(ctr.live, 0); /* nothing leaked, failed or not */
        if (rc == 0)
            break;
        assert_true(rc < 0);
        assert_string_not_equal(spw_strerror(rc), "unknown error");
        failures++;
        assert_true(k < 100000);
    }
    /* The run that finally succeeded computed the right answer. */
    const float *o = out.data, *w = want.data;
    for (int64_t i = 0; i < spw_tensor_numel(&want); i++)
        assert_float_equal(o[i], w[i], 1e-4 * (1 + (w[i] < 0 ? -w[i] : w[i])));
    assert_true(failures > 10);
    free(out.data);
    spw_free(in.data);
    spw_free(want.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_growing_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The Vulkan device's pipeline cache (drivers/vulkan/vk_pipeline.c). A
 * second plan of a model compiles nothing (no new pipeline, no new shader
 * module), pipelines outlive the plan that made them, and plans that share
 * them still compute the PyTorch-made output of the vector. A key with more
 * specialisation constants than the cache keeps is an error, never cut
 * short. Exits 77 (skipped) without a Vulkan device. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "spw_test.h"

#include "drivers/vulkan/vk_plan.h"

#define VECTOR SPW_TEST_DATA "/vectors/ops/inverted_residual"

static spw_vk_ctx *ctx;

static void counts(uint64_t *modules, uint64_t *pipelines)
{
    spw__vk_pipes_stats(ctx, modules, pipelines);
}

static spw_plan *vk_plan_of(spw_model *m, int batch)
{
    spw_plan *p = NULL;
    spw_plan_options o = {.backend = "vulkan", .batch = batch, .threads = 1};
    assert_int_equal(spw_plan_create(m, &o, &p), 0);
    assert_string_equal(spw_plan_backend(p), "vulkan");
    return p;
}

/* Runs plan on the vector's input; its output must match the stored one. */
static void check_output(spw_plan *plan)
{
    spw_tensor in, want, got;
    assert_int_equal(spw_npy_read(VECTOR "_in0.npy", &in), 0);
    assert_int_equal(spw_npy_read(VECTOR "_out0.npy", &want), 0);
    got = want;
    float *out = calloc((size_t)spw_tensor_numel(&want), sizeof(float));
    assert_non_null(out);
    got.data = out;
    assert_int_equal(spw_plan_run(plan, &in, 1, &got, 1), 0);
    const float *w = want.data;
    for (int64_t i = 0; i < spw_tensor_numel(&want); i++)
        if (fabsf(out[i] - w[i]) > 1e-4f * fmaxf(1.0f, fabsf(w[i])))
            fail_msg("element %lld: got %g, want %g", (long long)i, out[i], w[i]);
    free(out);
    spw_free(in.data);
    spw_free(want.data);
}

static void test_second_plan_compiles_nothing(void **state)
{
    (void)state;
    spw_model *m = NULL;
    assert_int_equal(spw_model_load(VECTOR ".onnx", &m), 0);
    uint64_t mod0, pipe0, mod1, pipe1, mod2, pipe2;
    counts(&mod0, &pipe0);
    spw_plan *first = vk_plan_of(m, 2);
    counts(&mod1, &pipe1);
    assert_true(pipe1 > pipe0);
    assert_true(mod1 > mod0);
    /* Fewer pipelines than dispatches would show sharing too, but a plan's
     * own layers may all differ: the second plan is the test. */
    spw_plan *second = vk_plan_of(m, 2);
    counts(&mod2, &pipe2);
    assert_int_equal(pipe2, pipe1);
    assert_int_equal(mod2, mod1);
    check_output(second);

    /* The first plan's pipelines outlive it. */
    spw_plan_free(first);
    spw_plan_free(second);
    spw_plan *third = vk_plan_of(m, 2);
    counts(&mod2, &pipe2);
    assert_int_equal(pipe2, pipe1);
    assert_int_equal(mod2, mod1);
    check_output(third);
    spw_plan_free(third);
    spw_model_free(m);
}

static void test_too_many_constants(void **state)
{
    (void)state;
    uint32_t words[SPW_VK_MAX_SPEC + 1] = {64, 1, 1};
    uint64_t mod0, pipe0, mod1, pipe1;
    counts(&mod0, &pipe0);
    VkPipeline p = VK_NULL_HANDLE;
    assert_int_equal(spw__vk_pipeline(ctx, SPW_VK_SH_COPY, words, SPW_VK_MAX_SPEC + 1, &p),
                     SPW_EINTERNAL);
    assert_non_null(strstr(spw_error_detail(), "specialisation constants"));
    assert_int_equal(spw__vk_pipeline(ctx, -1, words, 3, &p), SPW_EINTERNAL);
    assert_int_equal(spw__vk_pipeline(ctx, SPW_VK_SH_COUNT, words, 3, &p), SPW_EINTERNAL);
    assert_true(p == VK_NULL_HANDLE);

    /* A builder that pushes one constant too many marks the dispatch, and
     * the cache refuses it. */
    vk_disp d;
    memset(&d, 0, sizeof(d));
    for (int i = 0; i < SPW_VK_MAX_SPEC + 2; i++)
        spec(&d, 1);
    assert_int_equal(d.n_spec, SPW_VK_MAX_SPEC + 1);
    assert_int_equal(spw__vk_pipeline(ctx, SPW_VK_SH_COPY, d.spec, d.n_spec, &p), SPW_EINTERNAL);
    counts(&mod1, &pipe1);
    assert_int_equal(pipe1, pipe0);
    assert_int_equal(mod1, mod0);
}

static void test_same_key_same_pipeline(void **state)
{
    (void)state;
    /* cvt.comp: workgroup size, 13 post-op slots, then count and direction. */
    uint32_t spec[SPEC_SHAPE + 2] = {64, 1, 1};
    spec[SPEC_SHAPE] = 1000;
    VkPipeline a = VK_NULL_HANDLE, b = VK_NULL_HANDLE, c = VK_NULL_HANDLE;
    uint64_t mod0, pipe0, mod1, pipe1;
    counts(&mod0, &pipe0);
    assert_int_equal(spw__vk_pipeline(ctx, SPW_VK_SH_CVT, spec, SPEC_SHAPE + 2, &a), 0);
    assert_int_equal(spw__vk_pipeline(ctx, SPW_VK_SH_CVT, spec, SPEC_SHAPE + 2, &b), 0);
    assert_true(a != VK_NULL_HANDLE && a == b);
    spec[SPEC_SHAPE + 1] = 1;
    assert_int_equal(spw__vk_pipeline(ctx, SPW_VK_SH_CVT, spec, SPEC_SHAPE + 2, &c), 0);
    assert_true(c != VK_NULL_HANDLE && c != a);
    counts(&mod1, &pipe1);
    assert_true(pipe1 - pipe0 <= 2);
    assert_true(mod1 - mod0 <= 1);
}

int main(void)
{
    spw_backend *be = spw__backend_find("vulkan");
    if (!be || !be->ctx)
        return spw_test_skip_all("no Vulkan backend here");
    ctx = be->ctx;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_plan_compiles_nothing),
        cmocka_unit_test(test_too_many_constants),
        cmocka_unit_test(test_same_key_same_pipeline),
    };
    return spw_test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}

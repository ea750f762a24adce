/* Automatic backend choice when several backends can run a plan: whichever
 * candidate the calibration ranks first, the plan must be prepared on it and
 * give the reference's answer. The ranking is steered through
 * spw__plan_calibration_hook, so every position (first, middle, last) wins
 * once, whatever the machine's real timings. SPW_VULKAN_AS_DISCRETE=1 (set
 * here) makes a CPU Vulkan implementation a candidate beside cpu-fast;
 * without any Vulkan device cpu-fast is the only one (cpu-ref is taken only
 * when nothing else runs a plan) and the test says so. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "drivers/backend.h"
#include "runtime/graph/plan.h"

static const spw_backend *favoured;

static uint64_t favour(const spw_backend *be, uint64_t ns)
{
    (void)ns;
    return be == favoured ? 1 : 1000000;
}

static float *filled(size_t n, int mul, int mod, float scale)
{
    float *d = spw__malloc(n * sizeof(float));
    for (size_t i = 0; d && i < n; i++)
        d[i] = (float)((int)(i * (size_t)mul % (size_t)mod) - mod / 2) * scale;
    return d;
}

/* x (1x4x6x6) -> Conv 3x3 (4 -> 5, pad 1) + bias -> Relu -> y */
static spw_model *make_model(void)
{
    spw_graph *g;
    if (spw__graph_create(&g))
        return NULL;
    const int64_t xd[4] = {1, 4, 6, 6}, wd[4] = {5, 4, 3, 3}, bd[1] = {5};
    int x = spw__graph_add_value(g, "x");
    int c = spw__graph_add_value(g, "c"), y = spw__graph_add_value(g, "y");
    float *wdata = filled(5 * 4 * 3 * 3, 5, 11, 0.125f), *bdata = filled(5, 1, 5, 0.25f);
    spw_model *m = spw__calloc(1, sizeof(*m));
    if (x < 0 || c < 0 || y < 0 || !wdata || !bdata || !m)
        goto fail;
    g->values[x].dtype = SPW_F32;
    g->values[x].ndim = 4;
    memcpy(g->values[x].dims, xd, sizeof(xd));
    int w = spw__graph_add_const(g, "w", SPW_F32, 4, wd, wdata);
    wdata = NULL; /* handed to the graph */
    int b = spw__graph_add_const(g, "b", SPW_F32, 1, bd, bdata);
    bdata = NULL;
    int in[3] = {x, w, b};
    if (w < 0 || b < 0 || spw__graph_add_input(g, x))
        goto fail;
    int n = spw__graph_add_node(g, SPW_OP_CONV, "conv", in, 3, &c, 1);
    if (n < 0)
        goto fail;
    g->nodes[n].p.conv = (spw_conv_params){
        .kernel = {3, 3}, .stride = {1, 1}, .dilation = {1, 1}, .pads = {1, 1, 1, 1}, .group = 1};
    if (spw__graph_add_node(g, SPW_OP_RELU, "relu", &c, 1, &y, 1) < 0 ||
        spw__graph_add_output(g, y) || spw__graph_link(g) || spw__graph_infer_shapes(g, -1))
        goto fail;
    m->graph = g;
    return m;
fail:
    spw__free(wdata);
    spw__free(bdata);
    spw__free(m);
    spw__graph_free(g);
    return NULL;
}

static void run(spw_plan *plan, float *y)
{
    float x[4 * 6 * 6];
    for (size_t i = 0; i < SPW_ARRAY_SIZE(x); i++)
        x[i] = (float)((int)(i * 7 % 13) - 6) * 0.25f;
    spw_tensor in = {.dtype = SPW_F32, .ndim = 4, .dims = {1, 4, 6, 6}, .data = x};
    spw_tensor out = {.dtype = SPW_F32, .ndim = 4, .dims = {1, 5, 6, 6}, .data = y};
    assert_int_equal(spw_plan_run(plan, &in, 1, &out, 1), 0);
}

static void test_every_winner_is_prepared(void **state)
{
    (void)state;
    spw_model *m = make_model();
    assert_non_null(m);
    spw_plan_options ref_o = {.backend = "cpu-ref"};
    spw_plan *ref;
    assert_int_equal(spw_plan_create(m, &ref_o, &ref), 0);
    float want[5 * 6 * 6];
    run(ref, want);
    spw_plan_free(ref);

    spw_model_free(m);

    int n_cand = 0;
    for (int i = 0; i < spw__backend_count(); i++) {
        const spw_backend *be = spw__backend_get(i);
        if (be->manual_only || !strcmp(be->ops->name, "cpu-ref"))
            continue;
        n_cand++;
        favoured = be;
        spw__plan_calibration_hook = favour;
        spw_plan *plan;
        /* A fresh model each time: a model remembers its first choice. */
        m = make_model();
        assert_non_null(m);
        assert_int_equal(spw_plan_create(m, NULL, &plan), 0);
        spw__plan_calibration_hook = NULL;
        assert_string_equal(spw_plan_backend(plan), be->ops->name);
        float got[5 * 6 * 6];
        run(plan, got);
        for (size_t k = 0; k < SPW_ARRAY_SIZE(got); k++)
            assert_true(fabsf(got[k] - want[k]) <= 1e-4f * (1.0f + fabsf(want[k])));
        spw_plan_free(plan);
        spw_model_free(m);
        print_message("auto plan with %s ranked first: prepared on it, matches cpu-ref\n",
                      be->ops->name);
    }
    if (n_cand < 2)
        print_message("only %d automatic candidate(s): no ranking to steer\n", n_cand);
}

int main(void)
{
    setenv("SPW_VULKAN_AS_DISCRETE", "1", 0);
    setenv("SPW_VULKAN_FP16", "0", 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_winner_is_prepared),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

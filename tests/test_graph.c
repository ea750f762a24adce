/* Graph core and planner passes on graphs built in C: ordering, cycles,
 * fusion legality, BatchNorm folding arithmetic and arena assignment. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/graph/plan.h"

/* Adds a non-constant f32 value of shape 1x4x5x5. */
static int act(spw_graph *g, const char *name)
{
    int v = spw__graph_add_value(g, name);
    assert_true(v >= 0);
    g->values[v].dtype = SPW_F32;
    g->values[v].ndim = 4;
    int64_t d[4] = {1, 4, 5, 5};
    memcpy(g->values[v].dims, d, sizeof(d));
    return v;
}

static int cst(spw_graph *g, const char *name, int ndim, const int64_t *dims, float fill)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= dims[i];
    float *data = spw__malloc(sizeof(float) * (size_t)n);
    assert_non_null(data);
    for (int64_t i = 0; i < n; i++)
        data[i] = fill + 0.01f * (float)i;
    int v = spw__graph_add_const(g, name, SPW_F32, ndim, dims, data);
    assert_true(v >= 0);
    return v;
}

static int node1(spw_graph *g, spw_op op, const char *name, int a, int b, int out)
{
    int ins[2] = {a, b};
    int idx = spw__graph_add_node(g, op, name, ins, b == -2 ? 1 : 2, &out, 1);
    assert_true(idx >= 0);
    return idx;
}

/* x -> conv_a -> relu -> add(+ conv_b(x)) -> y */
static spw_graph *residual_block(void)
{
    spw_graph *g;
    assert_int_equal(spw__graph_create(&g), 0);
    int x = act(g, "x"), a = act(g, "a"), r = act(g, "r"), s = act(g, "s"), y = act(g, "y");
    int64_t wd[4] = {4, 4, 3, 3}, bd[1] = {4}, w1d[4] = {4, 4, 1, 1};
    int w = cst(g, "w", 4, wd, 0.1f), b = cst(g, "b", 1, bd, 0.0f);
    int w1 = cst(g, "w1", 4, w1d, 0.2f);
    assert_int_equal(spw__graph_add_input(g, x), 0);
    assert_int_equal(spw__graph_add_output(g, y), 0);
    /* Listed out of order on purpose: the add comes first. */
    node1(g, SPW_OP_ADD, "add", r, s, y);
    int ins[3] = {x, w, b};
    int c = spw__graph_add_node(g, SPW_OP_CONV, "conv_a", ins, 3, &a, 1);
    g->nodes[c].p.conv = (spw_conv_params){
        .kernel = {3, 3}, .stride = {1, 1}, .dilation = {1, 1}, .pads = {1, 1, 1, 1}, .group = 1};
    node1(g, SPW_OP_RELU, "relu", a, -2, r);
    int ins1[2] = {x, w1};
    c = spw__graph_add_node(g, SPW_OP_CONV, "conv_b", ins1, 2, &s, 1);
    g->nodes[c].p.conv =
        (spw_conv_params){.kernel = {1, 1}, .stride = {1, 1}, .dilation = {1, 1}, .group = 1};
    assert_int_equal(spw__graph_link(g), 0);
    return g;
}

static int find_node(const spw_graph *g, const char *name)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].name, name))
            return i;
    return -1;
}

static void test_topo_order(void **state)
{
    (void)state;
    spw_graph *g = residual_block();
    int order[8], n;
    assert_int_equal(spw__graph_topo_order(g, order, &n), 0);
    assert_int_equal(n, 4);
    int pos[8];
    for (int i = 0; i < n; i++)
        pos[order[i]] = i;
    assert_true(pos[find_node(g, "conv_a")] < pos[find_node(g, "relu")]);
    assert_true(pos[find_node(g, "relu")] < pos[find_node(g, "add")]);
    assert_true(pos[find_node(g, "conv_b")] < pos[find_node(g, "add")]);
    spw__graph_free(g);
}

static void test_cycle_and_double_definition(void **state)
{
    (void)state;
    spw_graph *g;
    assert_int_equal(spw__graph_create(&g), 0);
    int x = act(g, "x"), a = act(g, "a"), b = act(g, "b");
    assert_int_equal(spw__graph_add_input(g, x), 0);
    node1(g, SPW_OP_ADD, "n1", x, b, a);
    node1(g, SPW_OP_RELU, "n2", a, -2, b);
    assert_int_equal(spw__graph_add_output(g, b), 0);
    assert_int_equal(spw__graph_link(g), 0);
    int order[4], n;
    assert_int_equal(spw__graph_topo_order(g, order, &n), SPW_EFORMAT);
    assert_non_null(strstr(spw_error_detail(), "cycle"));
    /* A second producer of 'a'. */
    node1(g, SPW_OP_RELU, "n3", x, -2, a);
    assert_int_equal(spw__graph_link(g), SPW_EFORMAT);
    assert_non_null(strstr(spw_error_detail(), "n3"));
    spw__graph_free(g);
}

static void test_fuse_residual(void **state)
{
    (void)state;
    spw_graph *g = residual_block();
    assert_int_equal(spw__pass_fuse(g), 0);
    /* relu folds into conv_a, then the add folds into one of the convs. */
    int live = 0;
    for (int i = 0; i < g->n_nodes; i++)
        live += !g->nodes[i].dead;
    assert_int_equal(live, 2);
    const spw_node *ca = &g->nodes[find_node(g, "conv_a")];
    const spw_node *cb = &g->nodes[find_node(g, "conv_b")];
    int y = spw__graph_find_value(g, "y");
    const spw_node *owner = ca->outputs[0] == y ? ca : cb;
    assert_int_equal(owner->outputs[0], y);
    if (owner == ca) {
        assert_int_equal(ca->n_post, 2);
        assert_int_equal(ca->post[0].kind, SPW_POST_RELU);
        assert_int_equal(ca->post[1].kind, SPW_POST_ADD);
        assert_int_equal(ca->post[1].value, spw__graph_find_value(g, "s"));
    } else {
        /* conv_b absorbed the add: the relu stays on conv_a. */
        assert_int_equal(cb->n_post, 1);
        assert_int_equal(cb->post[0].kind, SPW_POST_ADD);
        assert_int_equal(ca->n_post, 1);
    }
    int order[8], n;
    assert_int_equal(spw__graph_topo_order(g, order, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(g->nodes[order[1]].outputs[0], y);
    spw__graph_free(g);
}

static void test_no_fusion_across_shared_or_visible_values(void **state)
{
    (void)state;
    spw_graph *g = residual_block();
    /* Making 'a' a graph output must keep conv_a's raw output visible. */
    int a = spw__graph_find_value(g, "a");
    assert_int_equal(spw__graph_add_output(g, a), 0);
    assert_int_equal(spw__pass_fuse(g), 0);
    assert_false(g->nodes[find_node(g, "relu")].dead);
    assert_int_equal(g->nodes[find_node(g, "conv_a")].n_post, 0);
    spw__graph_free(g);
}

static void test_fold_batchnorm(void **state)
{
    (void)state;
    spw_graph *g;
    assert_int_equal(spw__graph_create(&g), 0);
    int x = act(g, "x"), c = act(g, "c"), y = act(g, "y");
    int64_t wd[4] = {4, 4, 1, 1}, vd[1] = {4};
    int w = cst(g, "w", 4, wd, 1.0f);
    int scale = cst(g, "scale", 1, vd, 2.0f), bias = cst(g, "bias", 1, vd, 0.5f);
    int mean = cst(g, "mean", 1, vd, 0.25f), var = cst(g, "var", 1, vd, 3.0f);
    assert_int_equal(spw__graph_add_input(g, x), 0);
    assert_int_equal(spw__graph_add_output(g, y), 0);
    int ci[2] = {x, w};
    int cn = spw__graph_add_node(g, SPW_OP_CONV, "conv", ci, 2, &c, 1);
    g->nodes[cn].p.conv =
        (spw_conv_params){.kernel = {1, 1}, .stride = {1, 1}, .dilation = {1, 1}, .group = 1};
    int bi[5] = {c, scale, bias, mean, var};
    int bn = spw__graph_add_node(g, SPW_OP_BATCH_NORM, "bn", bi, 5, &y, 1);
    g->nodes[bn].p.bn.epsilon = 1e-5f;
    assert_int_equal(spw__graph_link(g), 0);
    assert_int_equal(spw__pass_fold_batchnorm(g), 0);
    const spw_node *conv = &g->nodes[cn];
    assert_true(g->nodes[bn].dead);
    assert_int_equal(conv->outputs[0], y);
    assert_int_equal(conv->n_inputs, 3);
    const float *nw = g->values[conv->inputs[1]].data;
    const float *nb = g->values[conv->inputs[2]].data;
    for (int o = 0; o < 4; o++) {
        double s = (2.0 + 0.01 * o) / sqrt(3.0 + 0.01 * o + 1e-5);
        for (int i = 0; i < 4; i++)
            assert_float_equal(nw[o * 4 + i], (1.0 + 0.01 * (o * 4 + i)) * s, 1e-5);
        assert_float_equal(nb[o], (0.0 - (0.25 + 0.01 * o)) * s + 0.5 + 0.01 * o, 1e-5);
    }
    spw__graph_free(g);
}

/* In a chain x -> n0 -> v0 -> n1 -> v1 ... buffers two steps apart can share. */
static void test_arena_reuse(void **state)
{
    (void)state;
    spw_graph *g;
    assert_int_equal(spw__graph_create(&g), 0);
    enum { N = 8 };
    int v[N + 1];
    char name[16];
    for (int i = 0; i <= N; i++) {
        snprintf(name, sizeof(name), "v%d", i);
        v[i] = act(g, name);
        g->values[v[i]].dims[1] = 1 + i % 3; /* mixed sizes */
    }
    assert_int_equal(spw__graph_add_input(g, v[0]), 0);
    assert_int_equal(spw__graph_add_output(g, v[N]), 0);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        /* Each step also reads v0, so the input stays alive throughout. */
        node1(g, SPW_OP_ADD, name, v[i], v[0], v[i + 1]);
    }
    assert_int_equal(spw__graph_link(g), 0);
    spw_plan plan = {0};
    plan.graph = g;
    plan.steps = malloc(sizeof(int) * N);
    assert_int_equal(spw__graph_topo_order(g, plan.steps, &plan.n_steps), 0);
    assert_int_equal(spw__plan_assign_buffers(&plan), 0);
    size_t sum = 0;
    for (int i = 0; i <= N; i++) {
        size_t sz = (size_t)spw__value_numel(&g->values[v[i]]) * 4;
        sum += (sz + 63) & ~(size_t)63;
        assert_int_equal(plan.offsets[v[i]] % SPW_ARENA_ALIGN, 0);
    }
    assert_true(plan.arena_size < sum);
    /* Values alive in the same step never overlap: v[i], v[i+1] and v0. */
    for (int i = 0; i < N; i++) {
        int live[3] = {v[0], v[i], v[i + 1]};
        for (int a = 0; a < 3; a++)
            for (int b = a + 1; b < 3; b++) {
                if (live[a] == live[b])
                    continue;
                size_t oa = plan.offsets[live[a]], ob = plan.offsets[live[b]];
                size_t sa = (size_t)spw__value_numel(&g->values[live[a]]) * 4;
                size_t sb = (size_t)spw__value_numel(&g->values[live[b]]) * 4;
                assert_true(oa + sa <= ob || ob + sb <= oa);
            }
    }
    for (int i = 0; i < g->n_values; i++)
        if (!(g->values[i].flags & SPW_VALUE_CONST))
            assert_true(plan.offsets[i] + (size_t)spw__value_numel(&g->values[i]) * 4 <=
                        plan.arena_size);
    free(plan.steps);
    spw__free(plan.offsets);
    spw__graph_free(g);
}

static void test_op_lookup(void **state)
{
    (void)state;
    assert_int_equal(spw__op_lookup("", "Conv"), SPW_OP_CONV);
    assert_int_equal(spw__op_lookup("ai.onnx", "Relu"), SPW_OP_RELU);
    assert_int_equal(spw__op_lookup("ai.splitwire", "GDN"), SPW_OP_GDN);
    assert_int_equal(spw__op_lookup("", "GDN"), SPW_OP_INVALID);
    assert_int_equal(spw__op_lookup("", "LSTM"), SPW_OP_INVALID);
    for (int op = 1; op < SPW_OP_COUNT; op++)
        assert_int_equal(spw__op_lookup(spw__op_domain(op), spw__op_name(op)), op);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topo_order),
        cmocka_unit_test(test_cycle_and_double_definition),
        cmocka_unit_test(test_fuse_residual),
        cmocka_unit_test(test_no_fusion_across_shared_or_visible_values),
        cmocka_unit_test(test_fold_batchnorm),
        cmocka_unit_test(test_arena_reuse),
        cmocka_unit_test(test_op_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

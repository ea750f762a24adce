/* Backend conformance: every op, built as a one-node model in C, on every
 * registered backend against the CPU reference. Odd shapes (5, 7, 11, 13),
 * a per-op bound on the normalised squared error, NaN/Inf checks, and guard
 * words around every output to catch writes past its end. Cases with known
 * int32 answers (quantize_ties: every element an exact .5 after the median)
 * are checked against them on every backend, cpu-ref included. A backend that does
 * not support an op is listed as skipped, not failed. The last case runs the
 * SVBI encoder (method.md, reference configuration) at 64x64 and requires
 * >= 99.9% identical quantised symbols.
 *
 * With SPW_VULKAN_FP16=1 (its own ctest entry) the Vulkan backend keeps
 * activations as fp16 and the bounds on it widen to what 16-bit storage
 * allows: normalised squared error <= 1e-6 (1e-3 relative RMS) and >= 99%
 * identical symbols. That entry skips (exit 77) without a Vulkan device with
 * 16-bit storage; otherwise the test forces fp32 storage. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "spw_test.h"
#include "spw_test_vk.h"

#include "drivers/backend.h"
#include "runtime/graph/plan.h"

/* ---- deterministic data ------------------------------------------------- */

static uint64_t rng_state;

static float frand(void) /* uniform in [-1, 1) */
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

/* ---- graph building ----------------------------------------------------- */

static int64_t prod(int nd, const int64_t *d)
{
    int64_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= d[i];
    return n;
}

static int input(spw_graph *g, const char *name, spw_dtype t, int nd, const int64_t *dims)
{
    int v = spw__graph_add_value(g, name);
    assert_true(v >= 0);
    g->values[v].dtype = t;
    g->values[v].ndim = nd;
    memcpy(g->values[v].dims, dims, sizeof(int64_t) * (size_t)nd);
    assert_int_equal(spw__graph_add_input(g, v), 0);
    return v;
}

static int value(spw_graph *g, const char *name)
{
    int v = spw__graph_add_value(g, name);
    assert_true(v >= 0);
    return v;
}

static int cst(spw_graph *g, const char *name, int nd, const int64_t *dims, float scale,
               float offset)
{
    int64_t n = prod(nd, dims);
    float *data = spw__malloc(sizeof(float) * (size_t)(n ? n : 1));
    assert_non_null(data);
    for (int64_t i = 0; i < n; i++)
        data[i] = frand() * scale + offset;
    int v = spw__graph_add_const(g, name, SPW_F32, nd, dims, data);
    assert_true(v >= 0);
    return v;
}

static int node(spw_graph *g, spw_op op, const char *name, const int *ins, int n_in, int out)
{
    int idx = spw__graph_add_node(g, op, name, ins, n_in, &out, 1);
    assert_true(idx >= 0);
    return idx;
}

/* The node just added (taken after the call: adding may move the array). */
static spw_node *add(spw_graph *g, spw_op op, const char *name, const int *ins, int n_in, int out)
{
    int idx = node(g, op, name, ins, n_in, out);
    return &g->nodes[idx];
}

static spw_graph *new_graph(void)
{
    spw_graph *g;
    assert_int_equal(spw__graph_create(&g), 0);
    return g;
}

static void output(spw_graph *g, int v)
{
    assert_int_equal(spw__graph_add_output(g, v), 0);
}

static spw_conv_params conv_p(int k, int stride, int pad, int dil, int group)
{
    return (spw_conv_params){.kernel = {k, k},
                             .stride = {stride, stride},
                             .dilation = {dil, dil},
                             .pads = {pad, pad, pad, pad},
                             .group = group};
}

/* x [N,C,H,W] -> Conv(w [M, C/group, k, k], bias) -> y */
static spw_graph *conv_graph(int64_t N, int64_t C, int64_t H, int64_t W, int64_t M, int k,
                             int stride, int pad, int dil, int group, bool bias)
{
    spw_graph *g = new_graph();
    int64_t xd[4] = {N, C, H, W}, wd[4] = {M, C / group, k, k}, bd[1] = {M};
    int x = input(g, "x", SPW_F32, 4, xd);
    float ws = 1.0f / sqrtf((float)(C / group * k * k));
    int ins[3] = {x, cst(g, "w", 4, wd, ws, 0), bias ? cst(g, "b", 1, bd, 0.5f, 0) : -1};
    int y = value(g, "y");
    int c = node(g, SPW_OP_CONV, "conv", ins, bias ? 3 : 2, y);
    g->nodes[c].p.conv = conv_p(k, stride, pad, dil, group);
    output(g, y);
    return g;
}

static spw_graph *g_conv3x3(void)
{
    return conv_graph(2, 5, 7, 11, 7, 3, 1, 1, 1, 1, true);
}
static spw_graph *g_conv3x3_s2(void)
{
    return conv_graph(1, 5, 13, 11, 7, 3, 2, 1, 1, 1, true);
}
static spw_graph *g_conv1x1(void)
{
    return conv_graph(1, 13, 7, 5, 11, 1, 1, 0, 1, 1, true);
}
static spw_graph *g_conv1x1_s2(void)
{
    return conv_graph(2, 7, 13, 11, 5, 1, 2, 0, 1, 1, false);
}
static spw_graph *g_conv_dw(void)
{
    return conv_graph(1, 7, 11, 13, 7, 3, 1, 1, 1, 7, true);
}
static spw_graph *g_conv_dw_s2(void)
{
    return conv_graph(1, 13, 11, 7, 13, 3, 2, 1, 1, 13, true);
}
static spw_graph *g_conv_group(void)
{
    return conv_graph(1, 6, 7, 5, 10, 3, 1, 1, 1, 2, true);
}
static spw_graph *g_conv5_dil(void)
{
    return conv_graph(1, 5, 13, 11, 7, 5, 1, 4, 2, 1, false);
}
static spw_graph *g_conv_wide(void)
{
    return conv_graph(1, 11, 5, 7, 37, 3, 1, 0, 1, 1, true);
}

/* Shapes for the row-tiled Vulkan kernel: several pixel tiles per row with a
 * partial last one, channels not a multiple of any channel tile, more input
 * channels than a subgroup has lanes, batch 2. */
static spw_graph *g_conv_rows(void)
{
    return conv_graph(2, 19, 9, 37, 53, 3, 1, 1, 1, 1, true);
}
static spw_graph *g_conv_rows_s2(void)
{
    return conv_graph(1, 11, 17, 23, 29, 3, 2, 1, 1, 1, true);
}
/* Pointwise, strided: input channels spanning several weight blocks with a
 * partial last one, output channels not a multiple of the tile. */
static spw_graph *g_conv1x1_wide(void)
{
    return conv_graph(2, 21, 9, 11, 53, 1, 2, 0, 1, 1, true);
}
/* Channel tiles inside groups (24 per group). */
static spw_graph *g_conv_rows_grouped(void)
{
    return conv_graph(1, 16, 9, 13, 48, 3, 1, 1, 1, 2, true);
}

/* A 5x3 kernel, strides 1 x 2, padding 2 top, 0 left, 1 bottom, 1 right. */
static spw_graph *g_conv_asym(void)
{
    spw_graph *g = new_graph();
    int64_t xd[4] = {1, 7, 11, 17}, wd[4] = {13, 7, 5, 3}, bd[1] = {13};
    int x = input(g, "x", SPW_F32, 4, xd);
    int ins[3] = {x, cst(g, "w", 4, wd, 0.1f, 0), cst(g, "b", 1, bd, 0.5f, 0)};
    int y = value(g, "y");
    spw_conv_params *p = &add(g, SPW_OP_CONV, "conv", ins, 3, y)->p.conv;
    *p = (spw_conv_params){
        .kernel = {5, 3}, .stride = {1, 2}, .dilation = {1, 1}, .pads = {2, 0, 1, 1}, .group = 1};
    output(g, y);
    return g;
}

/* Conv -> Relu -> Add(second conv) -> Clip: fusion puts the rest on a conv. */
static spw_graph *g_conv_fused(void)
{
    spw_graph *g = new_graph();
    int64_t xd[4] = {1, 5, 7, 11}, wd[4] = {7, 5, 3, 3}, w1d[4] = {7, 5, 1, 1}, bd[1] = {7};
    int x = input(g, "x", SPW_F32, 4, xd);
    int a = value(g, "a"), r = value(g, "r"), s = value(g, "s"), sum = value(g, "sum"),
        y = value(g, "y");
    int ca[3] = {x, cst(g, "w", 4, wd, 0.3f, 0), cst(g, "b", 1, bd, 0.5f, 0)};
    add(g, SPW_OP_CONV, "conv_a", ca, 3, a)->p.conv = conv_p(3, 1, 1, 1, 1);
    node(g, SPW_OP_RELU, "relu", &a, 1, r);
    int cb[2] = {x, cst(g, "w1", 4, w1d, 0.4f, 0)};
    add(g, SPW_OP_CONV, "conv_b", cb, 2, s)->p.conv = conv_p(1, 1, 0, 1, 1);
    int ad[2] = {r, s};
    node(g, SPW_OP_ADD, "add", ad, 2, sum);
    int cl = node(g, SPW_OP_CLIP, "clip", &sum, 1, y);
    g->nodes[cl].p.clip.min = -0.5f;
    g->nodes[cl].p.clip.max = 1.5f;
    output(g, y);
    return g;
}

static spw_graph *g_conv_transpose(void)
{
    spw_graph *g = new_graph();
    int64_t xd[4] = {1, 5, 7, 5}, wd[4] = {5, 3, 3, 3}, bd[1] = {3};
    int x = input(g, "x", SPW_F32, 4, xd);
    int ins[3] = {x, cst(g, "w", 4, wd, 0.3f, 0), cst(g, "b", 1, bd, 0.5f, 0)};
    int y = value(g, "y");
    int c = node(g, SPW_OP_CONV_TRANSPOSE, "deconv", ins, 3, y);
    g->nodes[c].p.conv = conv_p(3, 2, 1, 1, 1);
    g->nodes[c].p.conv.output_padding[0] = g->nodes[c].p.conv.output_padding[1] = 1;
    output(g, y);
    return g;
}

static spw_graph *pool_graph(spw_op op, int k, int stride, int pad, int count_pad, int ceil_mode)
{
    spw_graph *g = new_graph();
    int64_t xd[4] = {2, 5, 13, 11};
    int x = input(g, "x", SPW_F32, 4, xd);
    int y = value(g, "y");
    int p = node(g, op, "pool", &x, 1, y);
    g->nodes[p].p.pool = (spw_pool_params){.kernel = {k, k},
                                           .stride = {stride, stride},
                                           .dilation = {1, 1},
                                           .pads = {pad, pad, pad, pad},
                                           .ceil_mode = ceil_mode,
                                           .count_include_pad = count_pad};
    output(g, y);
    return g;
}

static spw_graph *g_avgpool(void)
{
    return pool_graph(SPW_OP_AVG_POOL, 3, 2, 1, 0, 0);
}
static spw_graph *g_avgpool_pad(void)
{
    return pool_graph(SPW_OP_AVG_POOL, 3, 2, 1, 1, 1);
}
static spw_graph *g_maxpool(void)
{
    return pool_graph(SPW_OP_MAX_POOL, 3, 2, 1, 0, 0);
}

static spw_graph *g_gpool(void)
{
    spw_graph *g = new_graph();
    int64_t xd[4] = {2, 13, 7, 5};
    int x = input(g, "x", SPW_F32, 4, xd);
    int y = value(g, "y");
    node(g, SPW_OP_GLOBAL_AVG_POOL, "gap", &x, 1, y);
    output(g, y);
    return g;
}

static spw_graph *g_gemm(void)
{
    spw_graph *g = new_graph();
    int64_t ad[2] = {5, 13}, bd[2] = {7, 13}, cd[1] = {7};
    int a = input(g, "a", SPW_F32, 2, ad);
    int ins[3] = {a, cst(g, "b", 2, bd, 0.3f, 0), cst(g, "c", 1, cd, 1.0f, 0)};
    int y = value(g, "y");
    int n = node(g, SPW_OP_GEMM, "gemm", ins, 3, y);
    g->nodes[n].p.gemm = (spw_gemm_params){.alpha = 0.5f, .beta = 2.0f, .trans_a = 0, .trans_b = 1};
    output(g, y);
    return g;
}

static spw_graph *g_gemm_ta(void)
{
    spw_graph *g = new_graph();
    int64_t ad[2] = {13, 5}, bd[2] = {13, 11}, cd[2] = {5, 1};
    int a = input(g, "a", SPW_F32, 2, ad);
    int ins[3] = {a, cst(g, "b", 2, bd, 0.3f, 0), cst(g, "c", 2, cd, 1.0f, 0)};
    int y = value(g, "y");
    int n = node(g, SPW_OP_GEMM, "gemm", ins, 3, y);
    g->nodes[n].p.gemm = (spw_gemm_params){.alpha = 1.0f, .beta = 1.0f, .trans_a = 1, .trans_b = 0};
    output(g, y);
    return g;
}

static spw_graph *matmul_graph(int na, const int64_t *ad, int nb, const int64_t *bd)
{
    spw_graph *g = new_graph();
    int ins[2] = {input(g, "a", SPW_F32, na, ad), input(g, "b", SPW_F32, nb, bd)};
    int y = value(g, "y");
    node(g, SPW_OP_MATMUL, "matmul", ins, 2, y);
    output(g, y);
    return g;
}

static spw_graph *g_matmul(void)
{
    int64_t ad[3] = {2, 5, 13}, bd[2] = {13, 7};
    return matmul_graph(3, ad, 2, bd);
}

static spw_graph *g_matmul_bcast(void)
{
    int64_t ad[4] = {3, 1, 5, 7}, bd[3] = {2, 7, 11};
    return matmul_graph(4, ad, 3, bd);
}

static spw_graph *g_matmul_vec(void)
{
    int64_t ad[1] = {13}, bd[3] = {2, 13, 5};
    return matmul_graph(1, ad, 3, bd);
}

static spw_graph *binary_graph(spw_op op, int na, const int64_t *ad, int nb, const int64_t *bd,
                               bool b_const)
{
    spw_graph *g = new_graph();
    int a = input(g, "a", SPW_F32, na, ad);
    int b = b_const ? cst(g, "b", nb, bd, 1.0f, 0) : input(g, "b", SPW_F32, nb, bd);
    int ins[2] = {a, b};
    int y = value(g, "y");
    node(g, op, "binary", ins, 2, y);
    output(g, y);
    return g;
}

static spw_graph *g_add_same(void)
{
    int64_t d[4] = {2, 7, 5, 11};
    return binary_graph(SPW_OP_ADD, 4, d, 4, d, false);
}

static spw_graph *g_add_bcast(void)
{
    int64_t ad[4] = {2, 7, 5, 11}, bd[3] = {7, 1, 1};
    return binary_graph(SPW_OP_ADD, 4, ad, 3, bd, true);
}

static spw_graph *g_mul_bcast_both(void)
{
    int64_t ad[4] = {1, 7, 1, 11}, bd[4] = {2, 1, 5, 1};
    return binary_graph(SPW_OP_MUL, 4, ad, 4, bd, false);
}

static spw_graph *unary_graph(spw_op op)
{
    spw_graph *g = new_graph();
    int64_t d[4] = {2, 7, 5, 11};
    int x = input(g, "x", SPW_F32, 4, d);
    int y = value(g, "y");
    int n = node(g, op, "act", &x, 1, y);
    if (op == SPW_OP_CLIP) {
        g->nodes[n].p.clip.min = -0.25f;
        g->nodes[n].p.clip.max = 0.5f;
    }
    if (op == SPW_OP_LEAKY_RELU)
        g->nodes[n].p.leaky.alpha = 0.01f;
    output(g, y);
    return g;
}

static spw_graph *g_relu(void)
{
    return unary_graph(SPW_OP_RELU);
}
static spw_graph *g_clip(void)
{
    return unary_graph(SPW_OP_CLIP);
}
static spw_graph *g_leaky(void)
{
    return unary_graph(SPW_OP_LEAKY_RELU);
}
static spw_graph *g_sigmoid(void)
{
    return unary_graph(SPW_OP_SIGMOID);
}
static spw_graph *g_hswish(void)
{
    return unary_graph(SPW_OP_HARD_SWISH);
}

static spw_graph *g_concat(void)
{
    spw_graph *g = new_graph();
    int64_t a[4] = {2, 5, 7, 3}, b[4] = {2, 7, 7, 3}, c[4] = {2, 1, 7, 3};
    int ins[3] = {input(g, "a", SPW_F32, 4, a), input(g, "b", SPW_F32, 4, b),
                  input(g, "c", SPW_F32, 4, c)};
    int y = value(g, "y");
    add(g, SPW_OP_CONCAT, "concat", ins, 3, y)->p.axis.axis = 1;
    output(g, y);
    return g;
}

static spw_graph *softmax_graph(int axis)
{
    spw_graph *g = new_graph();
    int64_t d[3] = {5, 13, 7};
    int x = input(g, "x", SPW_F32, 3, d);
    int y = value(g, "y");
    add(g, SPW_OP_SOFTMAX, "softmax", &x, 1, y)->p.axis.axis = axis;
    output(g, y);
    return g;
}

static spw_graph *g_softmax_mid(void)
{
    return softmax_graph(1);
}
static spw_graph *g_softmax_last(void)
{
    return softmax_graph(2);
}

static spw_graph *g_transpose(void)
{
    spw_graph *g = new_graph();
    int64_t d[4] = {2, 5, 7, 11};
    int x = input(g, "x", SPW_F32, 4, d);
    int y = value(g, "y");
    int n = node(g, SPW_OP_TRANSPOSE, "transpose", &x, 1, y);
    g->nodes[n].p.transpose.ndim = 4;
    int perm[4] = {0, 2, 3, 1};
    memcpy(g->nodes[n].p.transpose.perm, perm, sizeof(perm));
    output(g, y);
    return g;
}

static spw_graph *g_flatten(void)
{
    spw_graph *g = new_graph();
    int64_t d[4] = {2, 5, 7, 11};
    int x = input(g, "x", SPW_F32, 4, d);
    /* Relu first, so the flatten reads a computed value and writes a graph output. */
    int r = value(g, "r"), y = value(g, "y");
    node(g, SPW_OP_RELU, "relu", &x, 1, r);
    add(g, SPW_OP_FLATTEN, "flatten", &r, 1, y)->p.axis.axis = 1;
    output(g, y);
    return g;
}

static spw_graph *gdn_graph(int inverse)
{
    spw_graph *g = new_graph();
    int64_t xd[4] = {1, 7, 5, 11}, bd[1] = {7}, gd[2] = {7, 7};
    int x = input(g, "x", SPW_F32, 4, xd);
    int ins[3] = {x, cst(g, "beta", 1, bd, 0.2f, 1.0f), cst(g, "gamma", 2, gd, 0.05f, 0.1f)};
    int y = value(g, "y");
    add(g, SPW_OP_GDN, "gdn", ins, 3, y)->p.gdn.inverse = inverse;
    output(g, y);
    return g;
}

static spw_graph *g_gdn(void)
{
    return gdn_graph(0);
}
static spw_graph *g_igdn(void)
{
    return gdn_graph(1);
}

static spw_graph *g_batchnorm(void)
{
    spw_graph *g = new_graph();
    int64_t xd[4] = {2, 7, 5, 11}, cd[1] = {7};
    int x = input(g, "x", SPW_F32, 4, xd);
    int ins[5] = {x, cst(g, "scale", 1, cd, 0.5f, 1.0f), cst(g, "bias", 1, cd, 0.5f, 0),
                  cst(g, "mean", 1, cd, 0.3f, 0), cst(g, "var", 1, cd, 0.2f, 1.0f)};
    int y = value(g, "y");
    add(g, SPW_OP_BATCH_NORM, "bn", ins, 5, y)->p.bn.epsilon = 1e-5f;
    output(g, y);
    return g;
}

/* Pad over x [2, 5, 7, 11]: begins (0, 1, -2, 3), ends (0, 2, 1, -4). */
static spw_graph *pad_graph(spw_pad_mode mode, int rank)
{
    spw_graph *g = new_graph();
    int64_t xd[7] = {2, 5, 7, 11, 1, 1, 1};
    int64_t pads[2][4] = {{0, 1, -2, 3}, {0, 2, 1, -4}};
    if (rank == 7) {
        /* Unpadded leading axes merge: 7 axes fit the 6-axis kernel. */
        xd[0] = 1, xd[1] = 1, xd[2] = 2, xd[3] = 3, xd[4] = 5, xd[5] = 7, xd[6] = 4;
        int64_t p7[2][4] = {{0, 0, 2, 1}, {0, 0, 1, 3}};
        memcpy(pads, p7, sizeof(pads));
    }
    int x = input(g, "x", SPW_F32, rank, xd);
    int y = value(g, "y");
    spw_pad_params *p = &add(g, SPW_OP_PAD, "pad", &x, 1, y)->p.pad;
    p->mode = mode;
    p->ndim = rank;
    p->value = 0.75f;
    for (int i = 0; i < 4; i++) {
        p->pads[rank - 4 + i] = pads[0][i];
        p->pads[rank + rank - 4 + i] = pads[1][i];
    }
    output(g, y);
    return g;
}

static spw_graph *g_pad_constant(void)
{
    return pad_graph(SPW_PAD_CONSTANT, 4);
}
static spw_graph *g_pad_reflect(void)
{
    return pad_graph(SPW_PAD_REFLECT, 4);
}
static spw_graph *g_pad_edge(void)
{
    return pad_graph(SPW_PAD_EDGE, 4);
}
static spw_graph *g_pad_rank7(void)
{
    return pad_graph(SPW_PAD_REFLECT, 7);
}

static spw_graph *g_quantize(void)
{
    spw_graph *g = new_graph();
    int64_t xd[4] = {1, 7, 5, 11}, cd[1] = {7};
    int x = input(g, "x", SPW_F32, 4, xd);
    int ins[2] = {x, cst(g, "median", 1, cd, 0.5f, 0)};
    int y = value(g, "y");
    node(g, SPW_OP_QUANTIZE, "quantize", ins, 2, y);
    output(g, y);
    return g;
}

/* Real ties: medians on a 1/8 grid and inputs median + m + 0.5, so that
 * x - median is exactly m + 0.5 in fp32, and x is exact in fp16 too (|x| < 16
 * with 3 fractional bits). Every element is a tie; m runs over both signs
 * and parities, so half away from zero, half up and half down each differ
 * from half to even on some of them. */
#define TIE_C 6
#define TIE_S 26 /* 2 x 13: m = -6..6 twice per channel */
static const float tie_median[TIE_C] = {0.0f, 0.25f, -0.75f, 1.5f, -2.125f, 3.375f};

static int tie_m(int64_t k)
{
    return (int)(k % 13) - 6;
}

static spw_graph *g_quantize_ties(void)
{
    spw_graph *g = new_graph();
    int64_t xd[4] = {1, TIE_C, 2, 13}, cd[1] = {TIE_C};
    int x = input(g, "x", SPW_F32, 4, xd);
    float *med = spw__malloc(sizeof(tie_median));
    assert_non_null(med);
    memcpy(med, tie_median, sizeof(tie_median));
    int ins[2] = {x, spw__graph_add_const(g, "median", SPW_F32, 1, cd, med)};
    assert_true(ins[1] >= 0);
    int y = value(g, "y");
    node(g, SPW_OP_QUANTIZE, "quantize", ins, 2, y);
    output(g, y);
    return g;
}

static float tie_input(int64_t k)
{
    return tie_median[(k / TIE_S) % TIE_C] + (float)tie_m(k) + 0.5f;
}

/* Half to even by integer arithmetic (not by the rounding under test):
 * m + 0.5 goes to whichever of m and m + 1 is even. */
static int32_t tie_want(int64_t k)
{
    int m = tie_m(k);
    return m % 2 == 0 ? m : m + 1;
}

static spw_graph *g_dequantize(void)
{
    spw_graph *g = new_graph();
    int64_t xd[4] = {1, 7, 5, 11}, cd[1] = {7};
    int x = input(g, "x", SPW_I32, 4, xd);
    int ins[2] = {x, cst(g, "median", 1, cd, 0.5f, 0)};
    int y = value(g, "y");
    node(g, SPW_OP_DEQUANTIZE, "dequantize", ins, 2, y);
    output(g, y);
    return g;
}

/* The SVBI client encoder (method.md, reference configuration) at 64x64:
 * three residual down-sampling blocks 3 -> 48 -> 64 -> 48, then the latent
 * quantiser. Random weights scaled to keep activations near unit range. */
static void encoder_block(spw_graph *g, int x, int64_t cin, int64_t cout, int idx, int *out)
{
    char name[32];
    int64_t w3a[4] = {cout, cin, 3, 3}, w3b[4] = {cout, cout, 3, 3}, w1[4] = {cout, cin, 1, 1};
    int64_t bd[1] = {cout};
    int a = value(g, (snprintf(name, sizeof(name), "b%d_a", idx), name));
    int m = value(g, (snprintf(name, sizeof(name), "b%d_m", idx), name));
    int r = value(g, (snprintf(name, sizeof(name), "b%d_r", idx), name));
    int s = value(g, (snprintf(name, sizeof(name), "b%d_s", idx), name));
    int y = value(g, (snprintf(name, sizeof(name), "b%d_y", idx), name));
    int c1[3] = {x, cst(g, "w", 4, w3a, 1.7f / sqrtf((float)cin * 9), 0),
                 cst(g, "b", 1, bd, 0.1f, 0)};
    add(g, SPW_OP_CONV, "conv_a", c1, 3, a)->p.conv = conv_p(3, 2, 1, 1, 1);
    int c2[3] = {a, cst(g, "w", 4, w3b, 1.7f / sqrtf((float)cout * 9), 0),
                 cst(g, "b", 1, bd, 0.1f, 0)};
    add(g, SPW_OP_CONV, "conv_b", c2, 3, m)->p.conv = conv_p(3, 1, 1, 1, 1);
    node(g, SPW_OP_RELU, "relu", &m, 1, r);
    int c3[3] = {x, cst(g, "w", 4, w1, 1.0f / sqrtf((float)cin), 0), cst(g, "b", 1, bd, 0.1f, 0)};
    add(g, SPW_OP_CONV, "shortcut", c3, 3, s)->p.conv = conv_p(1, 2, 0, 1, 1);
    int ad[2] = {r, s};
    node(g, SPW_OP_ADD, "add", ad, 2, y);
    *out = y;
}

static spw_graph *encoder_graph(int64_t size)
{
    spw_graph *g = new_graph();
    int64_t xd[4] = {1, 3, size, size}, cd[1] = {48};
    int x = input(g, "image", SPW_F32, 4, xd);
    int b1, b2, b3;
    encoder_block(g, x, 3, 48, 1, &b1);
    encoder_block(g, b1, 48, 64, 2, &b2);
    encoder_block(g, b2, 64, 48, 3, &b3);
    /* Latents spread over several integers so rounding is exercised. */
    int sc = value(g, "scaled");
    int64_t one[1] = {1};
    int mul[2] = {b3, cst(g, "scale", 1, one, 0.0f, 4.0f)};
    node(g, SPW_OP_MUL, "scale", mul, 2, sc);
    int q = value(g, "symbols");
    int qi[2] = {sc, cst(g, "median", 1, cd, 0.3f, 0)};
    node(g, SPW_OP_QUANTIZE, "quantize", qi, 2, q);
    output(g, q);
    return g;
}

static spw_graph *g_encoder(void)
{
    return encoder_graph(64);
}

/* ---- running and comparing ---------------------------------------------- */

typedef struct op_case {
    const char *name;
    spw_graph *(*make)(void);
    double tol;       /* bound on sum((y - ref)^2) / sum(ref^2) */
    double min_equal; /* int32 outputs: fraction of identical elements */
    unsigned flags;   /* plan flags for both sides */
} op_case;

#define GUARD 16
#define CANARY 0x5a5aa5a5u

typedef struct run_out {
    spw_tensor t;
    uint32_t *mem; /* GUARD words, the data, GUARD words */
    size_t words;
} run_out;

/* Runs model on backend with inputs; 1 when the backend does not take it. */
static int run_model(const spw_model *m, const char *backend, unsigned flags, spw_tensor *in,
                     int n_in, run_out *out, char *why, size_t why_size)
{
    spw_plan_options o = {.backend = backend, .flags = flags};
    spw_plan *plan;
    int rc = spw_plan_create(m, &o, &plan);
    if (rc == SPW_EUNSUPPORTED || rc == SPW_ENODEV) {
        snprintf(why, why_size, "%s", spw_error_detail());
        return 1;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(spw_plan_output(plan, 0, &out->t), 0);
    size_t n = (size_t)spw_tensor_numel(&out->t);
    out->words = n;
    out->mem = malloc((n + 2 * GUARD) * 4);
    assert_non_null(out->mem);
    for (size_t i = 0; i < n + 2 * GUARD; i++)
        out->mem[i] = CANARY;
    out->t.data = out->mem + GUARD;
    rc = spw_plan_run(plan, in, n_in, &out->t, 1);
    if (rc)
        fprintf(stderr, "run on %s: %s: %s\n", backend, spw_strerror(rc), spw_error_detail());
    assert_int_equal(rc, 0);
    /* A second run must give the same answer (replayed command buffers). */
    rc = spw_plan_run(plan, in, n_in, &out->t, 1);
    assert_int_equal(rc, 0);
    spw_plan_free(plan);
    for (size_t i = 0; i < GUARD; i++) {
        assert_int_equal(out->mem[i], CANARY);
        assert_int_equal(out->mem[GUARD + n + i], CANARY);
    }
    return 0;
}

static spw_model *make_model(const op_case *c, spw_tensor *in, int *n_in)
{
    rng_state = 0x1234567ull + (uint64_t)strlen(c->name);
    spw_graph *g = c->make();
    assert_int_equal(spw__graph_link(g), 0);
    assert_int_equal(spw__graph_infer_shapes(g, -1), 0);
    spw_model *m = spw__calloc(1, sizeof(*m));
    assert_non_null(m);
    m->graph = g;
    *n_in = g->n_inputs;
    for (int i = 0; i < g->n_inputs; i++) {
        const spw_value *v = &g->values[g->inputs[i]];
        memset(&in[i], 0, sizeof(in[i]));
        in[i].dtype = v->dtype;
        in[i].ndim = v->ndim;
        memcpy(in[i].dims, v->dims, sizeof(int64_t) * (size_t)v->ndim);
        int64_t n = prod(v->ndim, v->dims);
        in[i].data = malloc((size_t)n * 4);
        assert_non_null(in[i].data);
        for (int64_t k = 0; k < n; k++) {
            if (v->dtype == SPW_I32) {
                ((int32_t *)in[i].data)[k] = (int32_t)(frand() * 20.0f);
            } else {
                float f = frand() * 2.0f;
                /* Halves before the median (random here, so no ties after
                 * it; quantize_ties has those). */
                if (!strcmp(c->name, "quantize") && k % 5 == 0)
                    f = (float)(k % 9) - 4.5f;
                if (c->make == g_quantize_ties)
                    f = tie_input(k);
                ((float *)in[i].data)[k] = f;
            }
        }
    }
    return m;
}

typedef struct report {
    char lines[4096];
    size_t used;
} report;

static report skipped;

/* Vulkan runs with fp16 activations (SPW_VULKAN_FP16=1). */
static bool fp16_mode;

/* The bound for a case on a backend: fp16 storage rounds every activation
 * to 11 significant bits. */
static double bound_tol(const op_case *c, const char *backend)
{
    return fp16_mode && !strcmp(backend, "vulkan") ? SPW_MAX(c->tol, 1e-6) : c->tol;
}

static double bound_equal(const op_case *c, const char *backend)
{
    return fp16_mode && !strcmp(backend, "vulkan") ? SPW_MIN(c->min_equal, 0.99) : c->min_equal;
}

/* Exact expected symbols: holds on fp16 storage too, as such cases use
 * inputs that fp16 represents exactly. Catches a change that every backend
 * shares (the rounding helper), which a comparison with cpu-ref cannot. */
static void check_want(const op_case *c, const char *backend, const run_out *o)
{
    if (c->make != g_quantize_ties)
        return;
    const int32_t *y = o->t.data;
    for (size_t i = 0; i < o->words; i++)
        if (y[i] != tie_want((int64_t)i))
            fail_msg("%s on %s: element %zu is %d, expected %d", c->name, backend, i, y[i],
                     tie_want((int64_t)i));
}

static void run_case(void **state)
{
    const op_case *c = *state;
    spw_tensor in[4];
    int n_in;
    spw_model *m = make_model(c, in, &n_in);
    char why[256];
    run_out ref;
    assert_int_equal(run_model(m, "cpu-ref", c->flags, in, n_in, &ref, why, sizeof(why)), 0);
    const size_t n = ref.words;
    bool is_int = ref.t.dtype == SPW_I32;
    check_want(c, "cpu-ref", &ref);

    for (int b = 0; b < spw_backend_count(); b++) {
        const char *name = spw_backend_name(b);
        if (!strcmp(name, "cpu-ref"))
            continue;
        run_out got;
        if (run_model(m, name, c->flags, in, n_in, &got, why, sizeof(why))) {
            int w = snprintf(skipped.lines + skipped.used, sizeof(skipped.lines) - skipped.used,
                             "  %-16s on %-8s skipped: %s\n", c->name, name, why);
            if (w > 0 && (size_t)w < sizeof(skipped.lines) - skipped.used)
                skipped.used += (size_t)w;
            continue;
        }
        assert_int_equal(got.words, n);
        if (is_int) {
            const int32_t *r = ref.t.data, *y = got.t.data;
            size_t same = 0;
            for (size_t i = 0; i < n; i++)
                same += r[i] == y[i];
            double frac = n ? (double)same / (double)n : 1.0;
            printf("  %-16s on %-8s identical %.5f (need %.5f)\n", c->name, name, frac,
                   bound_equal(c, name));
            assert_true(frac >= bound_equal(c, name));
            check_want(c, name, &got);
        } else {
            const float *r = ref.t.data, *y = got.t.data;
            double num = 0, den = 0;
            for (size_t i = 0; i < n; i++) {
                if (isfinite(r[i]) && !isfinite(y[i])) {
                    fprintf(stderr, "%s on %s: element %zu is %g, reference %g\n", c->name, name, i,
                            y[i], r[i]);
                    fail();
                }
                double d = (double)y[i] - r[i];
                num += d * d;
                den += (double)r[i] * r[i];
            }
            double err = den > 0 ? num / den : num;
            printf("  %-16s on %-8s nmse %.3g (bound %.1g)\n", c->name, name, err,
                   bound_tol(c, name));
            assert_true(err <= bound_tol(c, name));
        }
        free(got.mem);
    }
    free(ref.mem);
    for (int i = 0; i < n_in; i++)
        free(in[i].data);
    spw_model_free(m);
}

static const op_case cases[] = {
    {"conv3x3", g_conv3x3, 1e-10, 0, 0},
    {"conv3x3_s2", g_conv3x3_s2, 1e-10, 0, 0},
    {"conv1x1", g_conv1x1, 1e-10, 0, 0},
    {"conv1x1_s2", g_conv1x1_s2, 1e-10, 0, 0},
    {"conv_depthwise", g_conv_dw, 1e-10, 0, 0},
    {"conv_dw_s2", g_conv_dw_s2, 1e-10, 0, 0},
    {"conv_grouped", g_conv_group, 1e-10, 0, 0},
    {"conv5x5_dil2", g_conv5_dil, 1e-10, 0, 0},
    {"conv_37out", g_conv_wide, 1e-10, 0, 0},
    {"conv_rows", g_conv_rows, 1e-10, 0, 0},
    {"conv_rows_s2", g_conv_rows_s2, 1e-10, 0, 0},
    {"conv_rows_grouped", g_conv_rows_grouped, 1e-10, 0, 0},
    {"conv1x1_wide", g_conv1x1_wide, 1e-10, 0, 0},
    {"conv_asym", g_conv_asym, 1e-10, 0, 0},
    {"conv_fused", g_conv_fused, 1e-10, 0, 0},
    {"conv_transpose", g_conv_transpose, 1e-10, 0, 0},
    {"avgpool", g_avgpool, 1e-12, 0, 0},
    {"avgpool_padceil", g_avgpool_pad, 1e-12, 0, 0},
    {"maxpool", g_maxpool, 0, 0, 0},
    {"global_avgpool", g_gpool, 1e-12, 0, 0},
    {"gemm", g_gemm, 1e-10, 0, 0},
    {"gemm_trans_a", g_gemm_ta, 1e-10, 0, 0},
    {"matmul", g_matmul, 1e-10, 0, 0},
    {"matmul_bcast", g_matmul_bcast, 1e-10, 0, 0},
    {"matmul_vec", g_matmul_vec, 1e-10, 0, 0},
    {"add", g_add_same, 0, 0, 0},
    {"add_bcast_const", g_add_bcast, 0, 0, 0},
    {"mul_bcast_both", g_mul_bcast_both, 0, 0, 0},
    {"relu", g_relu, 0, 0, 0},
    {"clip", g_clip, 0, 0, 0},
    {"leaky_relu", g_leaky, 0, 0, 0},
    {"sigmoid", g_sigmoid, 1e-12, 0, 0},
    {"hard_swish", g_hswish, 1e-12, 0, 0},
    {"concat", g_concat, 0, 0, 0},
    {"softmax_axis1", g_softmax_mid, 1e-12, 0, 0},
    {"softmax_last", g_softmax_last, 1e-12, 0, 0},
    {"transpose", g_transpose, 0, 0, 0},
    {"flatten", g_flatten, 0, 0, SPW_PLAN_NO_FUSION},
    {"gdn", g_gdn, 1e-12, 0, 0},
    {"inverse_gdn", g_igdn, 1e-12, 0, 0},
    {"batchnorm", g_batchnorm, 1e-12, 0, SPW_PLAN_NO_FUSION},
    {"quantize", g_quantize, 0, 1.0, 0},
    {"quantize_ties", g_quantize_ties, 0, 1.0, 0},
    {"dequantize", g_dequantize, 0, 0, 0},
    {"pad_constant", g_pad_constant, 0, 0, 0},
    {"pad_reflect", g_pad_reflect, 0, 0, 0},
    {"pad_edge", g_pad_edge, 0, 0, 0},
    {"pad_rank7", g_pad_rank7, 0, 0, 0},
    {"svbi_encoder_64", g_encoder, 0, 0.999, 0},
};

/* A CPU-based Vulkan implementation runs only when named: automatic choice
 * must land on a backend that is not manual-only. */
static void test_auto_skips_manual_only(void **state)
{
    (void)state;
    spw_tensor in[4];
    int n_in;
    spw_model *m = make_model(&cases[0], in, &n_in);
    spw_plan *plan;
    assert_int_equal(spw_plan_create(m, NULL, &plan), 0);
    spw_backend *be = spw__backend_find(spw_plan_backend(plan));
    assert_non_null(be);
    assert_false(be->manual_only);
    spw_plan_free(plan);
    for (int i = 0; i < n_in; i++)
        free(in[i].data);
    spw_model_free(m);
}

static int print_skipped(void **state)
{
    (void)state;
    printf("backends:");
    for (int b = 0; b < spw_backend_count(); b++)
        printf(" %s", spw_backend_name(b));
    printf("\n%s", skipped.used ? "unsupported (skipped):\n" : "nothing skipped\n");
    printf("%s", skipped.lines);
    return 0;
}

int main(void)
{
    const char *h = getenv("SPW_VULKAN_FP16");
    fp16_mode = h && *h && strcmp(h, "0");
    if (!fp16_mode) {
        /* The exact bounds are for fp32 storage, which GPUs would not default to. */
        setenv("SPW_VULKAN_FP16", "0", 1);
    } else {
        int rc = spw_test_vk_fp16_storage();
        if (rc)
            return rc;
        /* The device has 16-bit storage: a missing backend is a failure. */
        if (!spw__backend_find("vulkan")) {
            printf("fp16: the Vulkan backend did not come up: %s\n", spw_error_detail());
            return 1;
        }
    }
    enum { N = SPW_ARRAY_SIZE(cases) };
    struct CMUnitTest tests[N + 1];
    for (size_t i = 0; i < N; i++)
        tests[i] = (struct CMUnitTest){cases[i].name, run_case, NULL, NULL, (void *)&cases[i]};
    tests[N] = (struct CMUnitTest){"auto_skips_manual_only", test_auto_skips_manual_only, NULL,
                                   NULL, NULL};
    return spw_test_exit(_cmocka_run_group_tests("conformance", tests, N + 1, NULL, print_skipped));
}

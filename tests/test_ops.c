/* Reference kernels: hand-computed examples, guard regions around every op's
 * output, and every ONNX vector of tests/vectors/ops run on every registered
 * backend that supports it (fused and unfused) against its PyTorch-made
 * output. A backend that cannot plan a vector is skipped and listed; cpu-ref
 * must run them all. */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "spw_test.h"
#include "spw_test_vk.h"

#include "drivers/cpu/ref_ops.h"
#include "runtime/graph/plan.h"

#define VECTOR_DIR SPW_TEST_DATA "/vectors/ops"
/* Per element: |got - want| <= TOL * max(1, |want|) on every backend with
 * fp32 storage. Worst seen over the vectors: cpu-ref 2.4e-7, cpu-fast 9.1e-7,
 * Vulkan on lavapipe 1.25e-6 (all igdn_block), so reordered float sums
 * (XNNPACK, GPUs) stay well inside it. */
#define TOL 1e-5
#define REF_BACKEND "cpu-ref"
/* With SPW_VULKAN_FP16=1 (the test_ops_fp16 entry) Vulkan stores activations
 * as fp16, rounded to 11 significant bits after every layer: a wider bound,
 * and quantised outputs (int32 symbols, or dequantised floats one step off)
 * need >= 99% of their elements right instead of all. */
#define TOL_FP16 5e-3
#define FP16_MIN_EQUAL 0.99
static bool fp16_mode;

/* "int64_t dims[]" literal and its length, for shapes written inline. */
#define SHAPE(...)                                                                     \
    (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (const int64_t[]) \
    {                                                                                  \
        __VA_ARGS__                                                                    \
    }

static const char *const op_names[SPW_OP_COUNT] = {
#define OP_NAME(e, name, domain) [SPW_OP_##e] = name,
    SPW_OP_LIST(OP_NAME)
#undef OP_NAME
};

/* ------------------------------------------------------------ helpers */

static int64_t numel(const spw_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->dims[i];
    return n;
}

static size_t elem_size(spw_dtype dt)
{
    return dt == SPW_I64 ? 8 : 4;
}

static spw_tensor view(spw_dtype dt, const void *data, int ndim, const int64_t *dims)
{
    spw_tensor t;
    memset(&t, 0, sizeof(t));
    t.dtype = dt;
    t.ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t.dims[i] = dims[i];
    t.data = (void *)data;
    return t;
}

static spw_tensor fview(const float *data, int ndim, const int64_t *dims)
{
    return view(SPW_F32, data, ndim, dims);
}

static spw_node make_node(spw_op op)
{
    spw_node n;
    memset(&n, 0, sizeof(n));
    n.op = op;
    return n;
}

static void conv_params(spw_node *n, int kh, int kw)
{
    spw_conv_params *p = &n->p.conv;
    p->kernel[0] = kh;
    p->kernel[1] = kw;
    p->stride[0] = p->stride[1] = 1;
    p->dilation[0] = p->dilation[1] = 1;
    p->group = 1;
}

static void pool_params(spw_node *n, int kh, int kw, int sh, int sw)
{
    spw_pool_params *p = &n->p.pool;
    p->kernel[0] = kh;
    p->kernel[1] = kw;
    p->stride[0] = sh;
    p->stride[1] = sw;
    p->dilation[0] = p->dilation[1] = 1;
}

static void run_kernel(const spw_node *n, const spw_tensor *in, int n_in, spw_tensor *out)
{
    spw_ref_kernel k = spw__ref_kernels[n->op];
    if (!k)
        fail_msg("no reference kernel for %s", op_names[n->op]);
    k(n, in, n_in, out);
}

static void assert_floats(const float *got, const float *want, int64_t n, double tol,
                          const char *what)
{
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= tol * fmax(1.0, fabs(want[i]))))
            fail_msg("%s: element %lld is %.9g, expected %.9g", what, (long long)i, (double)got[i],
                     (double)want[i]);
    }
}

/*
 * Guarded buffers: CANARY bytes on both sides of the data, checked after the
 * kernel ran. Output data starts as FILL so an element the kernel never wrote
 * is caught too (0xCCCCCCCC is neither a plausible float nor int32 result).
 */
#define GUARD 64
#define CANARY 0xA5
#define FILL 0xCC

typedef struct gbuf {
    spw_tensor t;
    unsigned char *block;
    size_t nbytes;
} gbuf;

static void gbuf_init(gbuf *g, const spw_tensor *shape)
{
    g->t = *shape;
    g->nbytes = (size_t)numel(shape) * elem_size(shape->dtype);
    g->block = malloc(g->nbytes + 2 * GUARD);
    assert_non_null(g->block);
    memset(g->block, CANARY, GUARD);
    memset(g->block + GUARD, FILL, g->nbytes);
    memset(g->block + GUARD + g->nbytes, CANARY, GUARD);
    g->t.data = g->block + GUARD;
}

static void gbuf_check_guards(const gbuf *g, const char *what)
{
    for (size_t i = 0; i < GUARD; i++) {
        if (g->block[i] != CANARY)
            fail_msg("%s: byte %zu before the buffer was overwritten", what, GUARD - i);
        if (g->block[GUARD + g->nbytes + i] != CANARY)
            fail_msg("%s: byte %zu after the buffer was overwritten", what, i);
    }
}

static void gbuf_check_written(const gbuf *g, const char *what)
{
    size_t es = elem_size(g->t.dtype);
    for (size_t i = 0; i < g->nbytes; i += es) {
        size_t k = 0;
        while (k < es && g->block[GUARD + i + k] == FILL)
            k++;
        if (k == es)
            fail_msg("%s: element %zu was never written", what, i / es);
    }
}

static void gbuf_free(gbuf *g)
{
    free(g->block);
    g->block = NULL;
}

/* ------------------------------------------------- hand-computed kernels */

static void test_kernel_table(void **state)
{
    (void)state;
    for (int op = 1; op < SPW_OP_COUNT; op++)
        if (!spw__ref_kernels[op])
            fail_msg("op %s has no reference kernel", op_names[op]);
}

/* Conv 3x3 on 5x5 with pads top 1, left 0, bottom 0, right 2. Checked against
 * an explicit zero-padded copy slid over without bounds tests, and against a
 * few sums done by hand. */
static void test_conv_asymmetric_pads(void **state)
{
    (void)state;
    float x[25], w[9], bias[1] = {0.5f};
    for (int i = 0; i < 25; i++)
        x[i] = (float)(i + 1);
    for (int i = 0; i < 9; i++)
        w[i] = 1.0f;
    spw_node n = make_node(SPW_OP_CONV);
    conv_params(&n, 3, 3);
    n.p.conv.pads[0] = 1; /* top */
    n.p.conv.pads[3] = 2; /* right */

    spw_tensor in[3] = {fview(x, SHAPE(1, 1, 5, 5)), fview(w, SHAPE(1, 1, 3, 3)),
                        fview(bias, SHAPE(1))};
    float y[4 * 5];
    spw_tensor out = fview(y, SHAPE(1, 1, 4, 5));
    run_kernel(&n, in, 3, &out);

    float padded[6][7] = {{0}};
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++)
            padded[i + 1][j] = x[i * 5 + j];
    float want[20];
    for (int oh = 0; oh < 4; oh++)
        for (int ow = 0; ow < 5; ow++) {
            float s = 0.5f;
            for (int kh = 0; kh < 3; kh++)
                for (int kw = 0; kw < 3; kw++)
                    s += padded[oh + kh][ow + kw];
            want[oh * 5 + ow] = s;
        }
    assert_floats(y, want, 20, 0, "conv asymmetric pads");
    /* rows 0-1, cols 0-2: 1+2+3 + 6+7+8 */
    assert_true(y[0] == 27.5f);
    /* rows 0-1, col 4 only (cols 5, 6 are the right pad): 5 + 10 */
    assert_true(y[4] == 15.5f);
    /* rows 2-4, cols 3-4: 14+15 + 19+20 + 24+25 */
    assert_true(y[3 * 5 + 3] == 117.5f);
}

/* Depthwise 3x3, stride 2, pad 1: channel 0 has a centre-only kernel (picks
 * x[2oh][2ow]); channel 1 sums -1 over the taps that fall inside. */
static void test_conv_depthwise(void **state)
{
    (void)state;
    float x[2 * 16], w[2 * 9] = {0};
    for (int i = 0; i < 16; i++) {
        x[i] = (float)i;
        x[16 + i] = 1.0f;
    }
    w[4] = 1.0f;
    for (int i = 0; i < 9; i++)
        w[9 + i] = -1.0f;
    spw_node n = make_node(SPW_OP_CONV);
    conv_params(&n, 3, 3);
    n.p.conv.group = 2;
    n.p.conv.stride[0] = n.p.conv.stride[1] = 2;
    for (int i = 0; i < 4; i++)
        n.p.conv.pads[i] = 1;
    spw_tensor in[3] = {fview(x, SHAPE(1, 2, 4, 4)), fview(w, SHAPE(2, 1, 3, 3)),
                        view(SPW_F32, NULL, 0, NULL)};
    float y[8];
    spw_tensor out = fview(y, SHAPE(1, 2, 2, 2));
    run_kernel(&n, in, 3, &out); /* omitted bias: data == NULL */
    const float want[8] = {0, 2, 8, 10, -4, -6, -6, -9};
    assert_floats(y, want, 8, 0, "depthwise");
}

/* ConvTranspose 2x2 stride 2 of ones: each input becomes a 2x2 block;
 * output_padding adds a last row/column that only gets the bias. With a
 * begin pad of 1 the same result is seen shifted by one. */
static void test_conv_transpose_output_padding(void **state)
{
    (void)state;
    const float x[4] = {1, 2, 3, 4}, w[4] = {1, 1, 1, 1}, bias[1] = {0.25f};
    spw_node n = make_node(SPW_OP_CONV_TRANSPOSE);
    conv_params(&n, 2, 2);
    n.p.conv.stride[0] = n.p.conv.stride[1] = 2;
    n.p.conv.output_padding[0] = n.p.conv.output_padding[1] = 1;
    spw_tensor in[3] = {fview(x, SHAPE(1, 1, 2, 2)), fview(w, SHAPE(1, 1, 2, 2)),
                        fview(bias, SHAPE(1))};
    float y[25], want[25];
    spw_tensor out = fview(y, SHAPE(1, 1, 5, 5));
    run_kernel(&n, in, 3, &out);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++)
            want[i * 5 + j] = 0.25f + (i < 4 && j < 4 ? x[(i / 2) * 2 + j / 2] : 0.0f);
    assert_floats(y, want, 25, 0, "conv transpose");

    n.p.conv.pads[0] = n.p.conv.pads[1] = 1; /* top, left */
    float y2[16], want2[16];
    spw_tensor out2 = fview(y2, SHAPE(1, 1, 4, 4));
    run_kernel(&n, in, 3, &out2);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            want2[i * 4 + j] = want[(i + 1) * 5 + j + 1];
    assert_floats(y2, want2, 16, 0, "conv transpose, begin pads");
}

static void test_broadcast_corners(void **state)
{
    (void)state;
    spw_node add = make_node(SPW_OP_ADD), mul = make_node(SPW_OP_MUL);

    /* [3,1] + [1,4]: both sides broadcast. */
    const float a[3] = {1, 2, 3}, b[4] = {10, 20, 30, 40};
    float y[12], want[12];
    spw_tensor in[2] = {fview(a, SHAPE(3, 1)), fview(b, SHAPE(1, 4))};
    spw_tensor out = fview(y, SHAPE(3, 4));
    run_kernel(&add, in, 2, &out);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
            want[i * 4 + j] = a[i] + b[j];
    assert_floats(y, want, 12, 0, "[3,1] + [1,4]");

    /* rank-0 scalar times [2,3], scalar on the left. */
    const float s[1] = {-2}, m[6] = {1, 2, 3, 4, 5, 6};
    in[0] = view(SPW_F32, s, 0, NULL);
    in[1] = fview(m, SHAPE(2, 3));
    out = fview(y, SHAPE(2, 3));
    run_kernel(&mul, in, 2, &out);
    const float want_s[6] = {-2, -4, -6, -8, -10, -12};
    assert_floats(y, want_s, 6, 0, "scalar * [2,3]");

    /* [1] + [2,3,1] -> [2,3,1]: lower rank, size-1 last axis. */
    const float one[1] = {0.5f};
    in[0] = fview(one, SHAPE(1));
    in[1] = fview(m, SHAPE(2, 3, 1));
    out = fview(y, SHAPE(2, 3, 1));
    run_kernel(&add, in, 2, &out);
    for (int i = 0; i < 6; i++)
        want[i] = m[i] + 0.5f;
    assert_floats(y, want, 6, 0, "[1] + [2,3,1]");

    /* Rank 8: [2,1,1,1,1,1,1,3] * [1,1,1,1,1,1,2,1] -> [2,1,1,1,1,1,2,3]. */
    const float c[2] = {10, 100};
    in[0] = fview(m, SHAPE(2, 1, 1, 1, 1, 1, 1, 3));
    in[1] = fview(c, SHAPE(1, 1, 1, 1, 1, 1, 2, 1));
    out = fview(y, SHAPE(2, 1, 1, 1, 1, 1, 2, 3));
    run_kernel(&mul, in, 2, &out);
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 2; k++)
            for (int j = 0; j < 3; j++)
                want[(i * 2 + k) * 3 + j] = m[i * 3 + j] * c[k];
    assert_floats(y, want, 12, 0, "rank-8 broadcast");
}

static void test_softmax_large(void **state)
{
    (void)state;
    spw_node n = make_node(SPW_OP_SOFTMAX);
    n.p.axis.axis = 1;
    /* Rows: near 1000 (exp overflows without the shift), +-3e38, all equal. */
    const float x[3][4] = {{1000, 1001, 1002, -1000}, {3e38f, -3e38f, 0, 3e38f}, {7, 7, 7, 7}};
    float y[12];
    spw_tensor in = fview(&x[0][0], SHAPE(3, 4));
    spw_tensor out = fview(y, SHAPE(3, 4));
    run_kernel(&n, &in, 1, &out);
    double e1 = exp(-1.0), e2 = exp(-2.0), sum = 1 + e1 + e2;
    const float want[12] = {(float)(e2 / sum),
                            (float)(e1 / sum),
                            (float)(1 / sum),
                            0,
                            0.5f,
                            0,
                            0,
                            0.5f,
                            0.25f,
                            0.25f,
                            0.25f,
                            0.25f};
    assert_floats(y, want, 12, 1e-6, "softmax");

    /* Middle axis of [2,3,2]: every (n, w) column sums to 1. */
    float x3[12], y3[12];
    for (int i = 0; i < 12; i++)
        x3[i] = 500.0f * (float)((i * 7) % 5);
    in = fview(x3, SHAPE(2, 3, 2));
    out = fview(y3, SHAPE(2, 3, 2));
    run_kernel(&n, &in, 1, &out);
    for (int b = 0; b < 2; b++)
        for (int w = 0; w < 2; w++) {
            double s = 0;
            for (int c = 0; c < 3; c++)
                s += y3[(b * 3 + c) * 2 + w];
            assert_true(fabs(s - 1.0) < 1e-6);
        }
}

/* Round half to even, saturation, and the codec tables that Quantize ignores. */
static void test_quantize_ties(void **state)
{
    (void)state;
    const float x[2][6] = {{0.5f, 1.5f, -0.5f, 2.5f, -1.5f, 0.49999997f},
                           {0.75f, 1.75f, -0.25f, 1e10f, -1e10f, 0.25f}};
    const float med[2] = {0.0f, 0.25f};
    const int32_t table[3] = {1, 2, 3};
    int32_t q[12];
    spw_node n = make_node(SPW_OP_QUANTIZE);
    spw_tensor in[3] = {fview(&x[0][0], SHAPE(1, 2, 6)), fview(med, SHAPE(2)),
                        view(SPW_I32, table, SHAPE(3))};
    spw_tensor out = view(SPW_I32, q, SHAPE(1, 2, 6));
    run_kernel(&n, in, 3, &out);
    const int32_t want[12] = {0, 2, 0, 2, -2, 0, 0, 2, 0, INT32_MAX, INT32_MIN, 0};
    for (int i = 0; i < 12; i++)
        assert_int_equal(q[i], want[i]);

    /* More ties after a non-zero median: odd and even below zero, and near
     * 2^22 where fp32 still holds the half (floor(x + 0.5) and roundf differ
     * from half to even on some of each). */
    const float xt[8] = {-2.25f, 3.75f, -3.25f, 5.75f, -6.25f, 4194302.75f, -4194301.25f, 0.75f};
    const float mt[1] = {0.25f};
    const int32_t wt[8] = {-2, 4, -4, 6, -6, 4194302, -4194302, 0};
    int32_t qt[8];
    spw_tensor tin[2] = {fview(xt, SHAPE(1, 1, 8)), fview(mt, SHAPE(1))};
    spw_tensor tout = view(SPW_I32, qt, SHAPE(1, 1, 8));
    run_kernel(&n, tin, 2, &tout);
    for (int i = 0; i < 8; i++)
        assert_int_equal(qt[i], wt[i]);

    /* Dequantize: symbol + median of its channel. */
    float y[12];
    spw_node d = make_node(SPW_OP_DEQUANTIZE);
    const int32_t sym[12] = {0, 1, -1, 2, -2, 7, 0, 1, -1, 2, -2, 7};
    spw_tensor din[2] = {view(SPW_I32, sym, SHAPE(1, 2, 6)), fview(med, SHAPE(1, 2, 1))};
    spw_tensor dout = fview(y, SHAPE(1, 2, 6));
    run_kernel(&d, din, 2, &dout);
    for (int i = 0; i < 12; i++)
        assert_true(y[i] == (float)sym[i] + med[i / 6]);
}

static void test_gdn(void **state)
{
    (void)state;
    /* Two channels, two positions (channel stride 2). */
    const float x[4] = {3, 0, 4, 1};
    const float beta[2] = {1, 2}, gamma[4] = {0.5f, 0.25f, 0, 1};
    float y[4];
    spw_node n = make_node(SPW_OP_GDN);
    spw_tensor in[3] = {fview(x, SHAPE(1, 2, 1, 2)), fview(beta, SHAPE(2)),
                        fview(gamma, SHAPE(2, 2))};
    spw_tensor out = fview(y, SHAPE(1, 2, 1, 2));
    /* norm0 = sqrt(1 + 0.5*x0^2 + 0.25*x1^2), norm1 = sqrt(2 + x1^2) */
    const double n00 = sqrt(1 + 4.5 + 4);
    const double n10 = sqrt(2 + 16.0), n11 = sqrt(2 + 1.0);
    run_kernel(&n, in, 3, &out);
    const float want[4] = {(float)(3 / n00), 0, (float)(4 / n10), (float)(1 / n11)};
    assert_floats(y, want, 4, 1e-7, "gdn");
    n.p.gdn.inverse = 1;
    run_kernel(&n, in, 3, &out);
    const float want_inv[4] = {(float)(3 * n00), 0, (float)(4 * n10), (float)(1 * n11)};
    assert_floats(y, want_inv, 4, 1e-7, "inverse gdn");
}

static void test_pad_modes(void **state)
{
    (void)state;
    const float x[4] = {1, 2, 3, 4};
    float y[9];
    spw_node n = make_node(SPW_OP_PAD);
    n.p.pad.ndim = 1;
    n.p.pad.pads[0] = 3;
    n.p.pad.pads[1] = 2;
    spw_tensor in = fview(x, SHAPE(4));
    spw_tensor out = fview(y, SHAPE(9));

    n.p.pad.mode = SPW_PAD_REFLECT;
    run_kernel(&n, &in, 1, &out);
    const float reflect[9] = {4, 3, 2, 1, 2, 3, 4, 3, 2};
    assert_floats(y, reflect, 9, 0, "reflect");

    n.p.pad.mode = SPW_PAD_EDGE;
    run_kernel(&n, &in, 1, &out);
    const float edge[9] = {1, 1, 1, 1, 2, 3, 4, 4, 4};
    assert_floats(y, edge, 9, 0, "edge");

    n.p.pad.mode = SPW_PAD_CONSTANT;
    n.p.pad.value = 9;
    run_kernel(&n, &in, 1, &out);
    const float constant[9] = {9, 9, 9, 1, 2, 3, 4, 9, 9};
    assert_floats(y, constant, 9, 0, "constant");

    /* Negative begin crops. */
    n.p.pad.pads[0] = -1;
    n.p.pad.pads[1] = 1;
    n.p.pad.value = 0;
    out = fview(y, SHAPE(4));
    run_kernel(&n, &in, 1, &out);
    const float crop[4] = {2, 3, 4, 0};
    assert_floats(y, crop, 4, 0, "negative pad");
}

/*
 * 4x4 input, 3x3 window, stride 2, pads 1 on every side, ceil_mode: windows
 * start at -1, 1 and 3; the last one covers row 3, row 4 (end pad) and row 5
 * (past the pad, created by ceil_mode only).
 */
static void test_pool_edges(void **state)
{
    (void)state;
    float x[16], ones[16], y[9], want[9];
    for (int i = 0; i < 16; i++) {
        x[i] = (float)i;
        ones[i] = 1;
    }
    spw_node n = make_node(SPW_OP_AVG_POOL);
    pool_params(&n, 3, 3, 2, 2);
    for (int i = 0; i < 4; i++)
        n.p.pool.pads[i] = 1;
    n.p.pool.ceil_mode = 1;
    spw_tensor in = fview(ones, SHAPE(1, 1, 4, 4));
    spw_tensor out = fview(y, SHAPE(1, 1, 3, 3));

    /* Without count_include_pad the mean of ones is one everywhere. */
    run_kernel(&n, &in, 1, &out);
    for (int i = 0; i < 9; i++)
        want[i] = 1;
    assert_floats(y, want, 9, 0, "avg pool");

    /* With it: valid / counted taps per axis are 2/3, 3/3 and 1/2. */
    n.p.pool.count_include_pad = 1;
    run_kernel(&n, &in, 1, &out);
    const double r[3] = {2.0 / 3.0, 1.0, 0.5};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            want[i * 3 + j] = (float)(r[i] * r[j]);
    assert_floats(y, want, 9, 1e-7, "avg pool count_include_pad");

    /* Max: the bottom-right valid tap; last valid row/col per window 1, 3, 3. */
    spw_node mp = make_node(SPW_OP_MAX_POOL);
    mp.p.pool = n.p.pool;
    in = fview(x, SHAPE(1, 1, 4, 4));
    run_kernel(&mp, &in, 1, &out);
    const int last[3] = {1, 3, 3};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            want[i * 3 + j] = (float)(last[i] * 4 + last[j]);
    assert_floats(y, want, 9, 0, "max pool");
}

static void test_gemm_broadcast_c(void **state)
{
    (void)state;
    /* op(A) = A^T with A stored [K=3, M=2]; B [K=3, N=2]; C [M, 1]. */
    const float a[6] = {1, 4, 2, 5, 3, 6}; /* A^T = [[1,2,3],[4,5,6]] */
    const float b[6] = {1, 0, 0, 1, 1, 1};
    const float c[2] = {10, 20};
    float y[4];
    spw_node n = make_node(SPW_OP_GEMM);
    n.p.gemm.alpha = 2;
    n.p.gemm.beta = 0.5f;
    n.p.gemm.trans_a = 1;
    spw_tensor in[3] = {fview(a, SHAPE(3, 2)), fview(b, SHAPE(3, 2)), fview(c, SHAPE(2, 1))};
    spw_tensor out = fview(y, SHAPE(2, 2));
    run_kernel(&n, in, 3, &out);
    /* A^T B = [[4, 5], [10, 11]] */
    const float want[4] = {2 * 4 + 5, 2 * 5 + 5, 2 * 10 + 10, 2 * 11 + 10};
    assert_floats(y, want, 4, 0, "gemm C [M,1]");

    /* Scalar C and no C at all. */
    const float cs[1] = {-1};
    in[2] = view(SPW_F32, cs, 0, NULL);
    run_kernel(&n, in, 3, &out);
    const float want_s[4] = {8 - 0.5f, 10 - 0.5f, 20 - 0.5f, 22 - 0.5f};
    assert_floats(y, want_s, 4, 0, "gemm scalar C");
    run_kernel(&n, in, 2, &out);
    const float want_n[4] = {8, 10, 20, 22};
    assert_floats(y, want_n, 4, 0, "gemm without C");
}

static void test_matmul_vectors(void **state)
{
    (void)state;
    spw_node n = make_node(SPW_OP_MATMUL);
    const float u[3] = {1, 2, 3}, v[3] = {4, 5, 6};
    float y[4];
    /* [3] @ [3] -> rank 0 */
    spw_tensor in[2] = {fview(u, SHAPE(3)), fview(v, SHAPE(3))};
    spw_tensor out = view(SPW_F32, y, 0, NULL);
    run_kernel(&n, in, 2, &out);
    assert_true(y[0] == 32);

    /* [2] @ [2,2,2] -> [2,2]: the vector is a row broadcast over the batch. */
    const float r[2] = {1, -1}, m[8] = {1, 2, 3, 4, 5, 6, 7, 9};
    in[0] = fview(r, SHAPE(2));
    in[1] = fview(m, SHAPE(2, 2, 2));
    out = fview(y, SHAPE(2, 2));
    run_kernel(&n, in, 2, &out);
    const float want[4] = {-2, -2, -2, -3};
    assert_floats(y, want, 4, 0, "vector @ batch");
}

/* Rank-8 transpose checked by scattering each input element to where the
 * permutation sends it (the kernel gathers). */
static void test_transpose_rank8(void **state)
{
    (void)state;
    const int64_t dims[8] = {2, 1, 3, 1, 2, 1, 1, 2};
    const int perm[8] = {7, 2, 0, 5, 4, 3, 6, 1};
    float x[24], y[24], want[24];
    for (int i = 0; i < 24; i++)
        x[i] = (float)i;
    spw_node n = make_node(SPW_OP_TRANSPOSE);
    n.p.transpose.ndim = 8;
    int64_t odims[8];
    for (int i = 0; i < 8; i++) {
        n.p.transpose.perm[i] = perm[i];
        odims[i] = dims[perm[i]];
    }
    spw_tensor in = fview(x, 8, dims);
    spw_tensor out = fview(y, 8, odims);
    run_kernel(&n, &in, 1, &out);

    for (int flat = 0; flat < 24; flat++) {
        int64_t idx[8], rem = flat;
        for (int i = 7; i >= 0; i--) {
            idx[i] = rem % dims[i];
            rem /= dims[i];
        }
        int64_t o = 0;
        for (int i = 0; i < 8; i++)
            o = o * odims[i] + idx[perm[i]];
        want[o] = x[flat];
    }
    assert_floats(y, want, 24, 0, "transpose rank 8");
}

static void test_concat_empty_input(void **state)
{
    (void)state;
    const float a[2] = {1, 2}, c[6] = {3, 4, 5, 6, 7, 8};
    float y[8];
    spw_node n = make_node(SPW_OP_CONCAT);
    n.p.axis.axis = 1;
    spw_tensor in[3] = {fview(a, SHAPE(2, 1)), fview(NULL, SHAPE(2, 0)), fview(c, SHAPE(2, 3))};
    spw_tensor out = fview(y, SHAPE(2, 4));
    run_kernel(&n, in, 3, &out);
    const float want[8] = {1, 3, 4, 5, 2, 6, 7, 8};
    assert_floats(y, want, 8, 0, "concat");
}

/* Post ops give bit-identical results to running the ops one by one. */
static void test_post_ops_match_kernels(void **state)
{
    (void)state;
    float x[7] = {-8, -1.5f, -0.25f, 0, 0.5f, 3, 9};
    const float addend[7] = {1, 1, 1, 1, 1, -10, 1};
    const int64_t d[1] = {7};
    spw_node conv = make_node(SPW_OP_CONV); /* the op itself does not matter */
    conv.n_post = 4;
    conv.post[0] = (spw_post_op){.kind = SPW_POST_CLIP, .a = -1, .b = 6};
    conv.post[1] = (spw_post_op){.kind = SPW_POST_ADD, .value = 0};
    conv.post[2] = (spw_post_op){.kind = SPW_POST_HARD_SWISH};
    conv.post[3] = (spw_post_op){.kind = SPW_POST_LEAKY_RELU, .a = 0.1f};
    float fused[7];
    memcpy(fused, x, sizeof(x));
    spw_tensor fout = fview(fused, 1, d);
    spw_tensor addends[SPW_MAX_POST];
    memset(addends, 0, sizeof(addends));
    addends[1] = fview(addend, 1, d);
    spw__ref_apply_post(&conv, &fout, addends);

    float t1[7], t2[7], t3[7], t4[7];
    spw_node clip = make_node(SPW_OP_CLIP), add = make_node(SPW_OP_ADD);
    spw_node hs = make_node(SPW_OP_HARD_SWISH), lr = make_node(SPW_OP_LEAKY_RELU);
    clip.p.clip.min = -1;
    clip.p.clip.max = 6;
    lr.p.leaky.alpha = 0.1f;
    spw_tensor a = fview(x, 1, d), o = fview(t1, 1, d);
    run_kernel(&clip, &a, 1, &o);
    spw_tensor pair[2] = {fview(t1, 1, d), fview(addend, 1, d)};
    o = fview(t2, 1, d);
    run_kernel(&add, pair, 2, &o);
    a = fview(t2, 1, d);
    o = fview(t3, 1, d);
    run_kernel(&hs, &a, 1, &o);
    a = fview(t3, 1, d);
    o = fview(t4, 1, d);
    run_kernel(&lr, &a, 1, &o);
    assert_memory_equal(fused, t4, sizeof(fused));

    /* And by hand for the ReLU/Sigmoid pair. */
    spw_node r = make_node(SPW_OP_RELU);
    r.n_post = 2;
    r.post[0] = (spw_post_op){.kind = SPW_POST_RELU};
    r.post[1] = (spw_post_op){.kind = SPW_POST_SIGMOID};
    spw__ref_apply_post(&r, &fout, addends);
    for (int i = 0; i < 7; i++) {
        float v = t4[i] < 0 ? 0 : t4[i];
        assert_true(fabs(fused[i] - 1.0 / (1.0 + exp(-(double)v))) < 1e-7);
    }
}

/* Identity, Reshape and Flatten may be planned in place. */
static void test_copy_in_place(void **state)
{
    (void)state;
    float x[6] = {1, 2, 3, 4, 5, 6};
    const float want[6] = {1, 2, 3, 4, 5, 6};
    spw_op ops[3] = {SPW_OP_IDENTITY, SPW_OP_RESHAPE, SPW_OP_FLATTEN};
    for (int i = 0; i < 3; i++) {
        spw_node n = make_node(ops[i]);
        spw_tensor in = fview(x, SHAPE(2, 3)), out = fview(x, SHAPE(6));
        run_kernel(&n, &in, 1, &out);
        assert_floats(x, want, 6, 0, op_names[ops[i]]);
    }
}

/* --------------------------------------------- guard regions, every op */

/* A small, valid instance of op with edge-heavy shapes: shapes go in in[] and
 * *out (data unset); an omitted optional input has ndim 0 and data NULL. */
static void set_shape(spw_tensor *t, spw_dtype dt, int ndim, const int64_t *dims)
{
    *t = view(dt, NULL, ndim, dims);
}

static int setup_op(spw_op op, spw_node *n, spw_tensor *in, spw_tensor *out)
{
    *n = make_node(op);
    const spw_dtype f = SPW_F32;
    switch (op) {
    case SPW_OP_CONV: /* groups 2, stride (2,1), dilation (1,2), pads t0 l2 b1 r1 */
        conv_params(n, 3, 3);
        n->p.conv.group = 2;
        n->p.conv.stride[0] = 2;
        n->p.conv.dilation[1] = 2;
        n->p.conv.pads[1] = 2;
        n->p.conv.pads[2] = 1;
        n->p.conv.pads[3] = 1;
        set_shape(&in[0], f, SHAPE(1, 4, 7, 5));
        set_shape(&in[1], f, SHAPE(6, 2, 3, 3));
        set_shape(&in[2], f, SHAPE(6));
        set_shape(out, f, SHAPE(1, 6, 3, 4));
        return 3;
    case SPW_OP_CONV_TRANSPOSE: /* groups 2, stride 2, pads t1 l0 b0 r1, output_padding 1 */
        conv_params(n, 3, 3);
        n->p.conv.group = 2;
        n->p.conv.stride[0] = n->p.conv.stride[1] = 2;
        n->p.conv.pads[0] = 1;
        n->p.conv.pads[3] = 1;
        n->p.conv.output_padding[0] = n->p.conv.output_padding[1] = 1;
        set_shape(&in[0], f, SHAPE(1, 4, 3, 5));
        set_shape(&in[1], f, SHAPE(4, 3, 3, 3));
        set_shape(&in[2], f, SHAPE(6));
        set_shape(out, f, SHAPE(1, 6, 7, 11));
        return 3;
    case SPW_OP_RELU:
    case SPW_OP_SIGMOID:
    case SPW_OP_HARD_SWISH:
    case SPW_OP_IDENTITY:
        set_shape(&in[0], f, SHAPE(2, 3, 5));
        set_shape(out, f, SHAPE(2, 3, 5));
        return 1;
    case SPW_OP_CLIP:
        n->p.clip.min = 0.5f;
        n->p.clip.max = 1.5f;
        set_shape(&in[0], f, SHAPE(2, 3, 5));
        set_shape(out, f, SHAPE(2, 3, 5));
        return 1;
    case SPW_OP_LEAKY_RELU:
        n->p.leaky.alpha = 0.01f;
        set_shape(&in[0], f, SHAPE(2, 3, 5));
        set_shape(out, f, SHAPE(2, 3, 5));
        return 1;
    case SPW_OP_ADD:
    case SPW_OP_MUL:
        set_shape(&in[0], f, SHAPE(3, 1, 5));
        set_shape(&in[1], f, SHAPE(2, 1, 4, 1));
        set_shape(out, f, SHAPE(2, 3, 4, 5));
        return 2;
    case SPW_OP_CONCAT:
        n->p.axis.axis = 1;
        set_shape(&in[0], f, SHAPE(2, 2, 3));
        set_shape(&in[1], f, SHAPE(2, 1, 3));
        set_shape(&in[2], f, SHAPE(2, 4, 3));
        set_shape(out, f, SHAPE(2, 7, 3));
        return 3;
    case SPW_OP_GLOBAL_AVG_POOL:
        set_shape(&in[0], f, SHAPE(2, 3, 5, 7));
        set_shape(out, f, SHAPE(2, 3, 1, 1));
        return 1;
    case SPW_OP_AVG_POOL: /* k3 s2 pads 1, ceil, count_include_pad: 4 -> 3 */
        pool_params(n, 3, 3, 2, 2);
        for (int i = 0; i < 4; i++)
            n->p.pool.pads[i] = 1;
        n->p.pool.ceil_mode = 1;
        n->p.pool.count_include_pad = 1;
        set_shape(&in[0], f, SHAPE(1, 2, 4, 4));
        set_shape(out, f, SHAPE(1, 2, 3, 3));
        return 1;
    case SPW_OP_MAX_POOL: /* k 2x3, s2, dilation (2,1), pads t1 r1, ceil */
        pool_params(n, 2, 3, 2, 2);
        n->p.pool.dilation[0] = 2;
        n->p.pool.pads[0] = 1;
        n->p.pool.pads[3] = 1;
        n->p.pool.ceil_mode = 1;
        set_shape(&in[0], f, SHAPE(1, 2, 7, 5));
        set_shape(out, f, SHAPE(1, 2, 4, 3));
        return 1;
    case SPW_OP_GEMM: /* transA, transB, C [M,1] */
        n->p.gemm.alpha = 1;
        n->p.gemm.beta = 1;
        n->p.gemm.trans_a = n->p.gemm.trans_b = 1;
        set_shape(&in[0], f, SHAPE(5, 3));
        set_shape(&in[1], f, SHAPE(4, 5));
        set_shape(&in[2], f, SHAPE(3, 1));
        set_shape(out, f, SHAPE(3, 4));
        return 3;
    case SPW_OP_MATMUL:
        set_shape(&in[0], f, SHAPE(2, 1, 3, 5));
        set_shape(&in[1], f, SHAPE(4, 5, 2));
        set_shape(out, f, SHAPE(2, 4, 3, 2));
        return 2;
    case SPW_OP_FLATTEN:
        n->p.axis.axis = 1;
        set_shape(&in[0], f, SHAPE(2, 3, 5));
        set_shape(out, f, SHAPE(2, 15));
        return 1;
    case SPW_OP_RESHAPE:
        set_shape(&in[0], f, SHAPE(2, 3, 5));
        set_shape(out, f, SHAPE(5, 6));
        return 1;
    case SPW_OP_TRANSPOSE:
        n->p.transpose.ndim = 4;
        n->p.transpose.perm[0] = 3;
        n->p.transpose.perm[1] = 0;
        n->p.transpose.perm[2] = 2;
        n->p.transpose.perm[3] = 1;
        set_shape(&in[0], f, SHAPE(2, 3, 1, 5));
        set_shape(out, f, SHAPE(5, 2, 1, 3));
        return 1;
    case SPW_OP_BATCH_NORM:
        n->p.bn.epsilon = 1e-5f;
        set_shape(&in[0], f, SHAPE(2, 3, 5));
        for (int i = 1; i < 5; i++)
            set_shape(&in[i], f, SHAPE(3));
        set_shape(out, f, SHAPE(2, 3, 5));
        return 5;
    case SPW_OP_SOFTMAX:
        n->p.axis.axis = 1;
        set_shape(&in[0], f, SHAPE(2, 5, 3));
        set_shape(out, f, SHAPE(2, 5, 3));
        return 1;
    case SPW_OP_PAD: /* reflect, begins (0,2,1), ends (1,0,3) */
        n->p.pad.mode = SPW_PAD_REFLECT;
        n->p.pad.ndim = 3;
        n->p.pad.pads[1] = 2;
        n->p.pad.pads[2] = 1;
        n->p.pad.pads[3] = 1;
        n->p.pad.pads[5] = 3;
        set_shape(&in[0], f, SHAPE(2, 3, 4));
        set_shape(out, f, SHAPE(3, 5, 8));
        return 1;
    case SPW_OP_GDN:
        set_shape(&in[0], f, SHAPE(1, 4, 3, 5));
        set_shape(&in[1], f, SHAPE(4));
        set_shape(&in[2], f, SHAPE(4, 4));
        set_shape(out, f, SHAPE(1, 4, 3, 5));
        return 3;
    case SPW_OP_QUANTIZE:
        set_shape(&in[0], f, SHAPE(1, 3, 5, 2));
        set_shape(&in[1], f, SHAPE(3));
        set_shape(out, SPW_I32, SHAPE(1, 3, 5, 2));
        return 2;
    case SPW_OP_DEQUANTIZE:
        set_shape(&in[0], SPW_I32, SHAPE(1, 3, 5, 2));
        set_shape(&in[1], f, SHAPE(3));
        set_shape(out, f, SHAPE(1, 3, 5, 2));
        return 2;
    default:
        return -1;
    }
}

/* Runs every op with its output between canaries and checks that the kernel
 * wrote every output element, nothing outside, and none of its inputs. */
static void test_guard_regions(void **state)
{
    (void)state;
    for (int op = 1; op < SPW_OP_COUNT; op++) {
        spw_node n;
        spw_tensor shapes[8], out_shape;
        int n_in = setup_op((spw_op)op, &n, shapes, &out_shape);
        if (n_in < 0)
            fail_msg("no guard-region setup for %s", op_names[op]);

        gbuf in[8], out;
        spw_tensor views[8];
        unsigned char *copies[8];
        for (int k = 0; k < n_in; k++) {
            gbuf_init(&in[k], &shapes[k]);
            /* Positive values in [0.1, 1.9]: valid for variances, GDN beta and gamma. */
            int64_t cnt = numel(&shapes[k]);
            for (int64_t i = 0; i < cnt; i++) {
                if (shapes[k].dtype == SPW_I32)
                    ((int32_t *)in[k].t.data)[i] = (int32_t)(i % 7) - 3;
                else
                    ((float *)in[k].t.data)[i] = 0.1f + 0.1f * (float)((i * 7 + k) % 19);
            }
            views[k] = in[k].t;
            copies[k] = malloc(in[k].nbytes + 1);
            assert_non_null(copies[k]);
            memcpy(copies[k], in[k].t.data, in[k].nbytes);
        }
        gbuf_init(&out, &out_shape);
        run_kernel(&n, views, n_in, &out.t);

        gbuf_check_guards(&out, op_names[op]);
        gbuf_check_written(&out, op_names[op]);
        for (int k = 0; k < n_in; k++) {
            gbuf_check_guards(&in[k], op_names[op]);
            if (memcmp(copies[k], in[k].t.data, in[k].nbytes))
                fail_msg("%s: input %d was modified", op_names[op], k);
            free(copies[k]);
            gbuf_free(&in[k]);
        }
        gbuf_free(&out);
    }
}

/* ----------------------------------------- ONNX vectors vs PyTorch */

static bool ops_covered[SPW_OP_COUNT];

/* Worst |got - want| / max(1, |want|) over all elements; NaN counts as infinite. */
static double worst_error(const spw_tensor *got, const spw_tensor *want, int64_t *where)
{
    double worst = 0;
    *where = -1;
    for (int64_t i = 0, n = numel(want); i < n; i++) {
        double g, w;
        if (want->dtype == SPW_I32) {
            g = ((const int32_t *)got->data)[i];
            w = ((const int32_t *)want->data)[i];
        } else {
            g = ((const float *)got->data)[i];
            w = ((const float *)want->data)[i];
        }
        double e = fabs(g - w) / fmax(1.0, fabs(w));
        if (isnan(e))
            e = INFINITY;
        if (e > worst || *where < 0) {
            worst = e > worst ? e : worst;
            *where = i;
        }
    }
    return worst;
}

/* fp16 mode: worst relative error over the elements that are not quantiser
 * flips; *flips gets the fraction that are (an int32 symbol that differs, a
 * float one step of 1 away: a rounding decided the other way). */
static double fp16_error(const spw_tensor *got, const spw_tensor *want, double tol, double *flips)
{
    double worst = 0;
    int64_t n = numel(want), flipped = 0;
    for (int64_t i = 0; i < n; i++) {
        double g, w;
        if (want->dtype == SPW_I32) {
            g = ((const int32_t *)got->data)[i];
            w = ((const int32_t *)want->data)[i];
        } else {
            g = ((const float *)got->data)[i];
            w = ((const float *)want->data)[i];
        }
        double scale = fmax(1.0, fabs(w)), e = fabs(g - w) / scale;
        if (isnan(e))
            e = INFINITY;
        if (e > tol && (want->dtype == SPW_I32 || fabs(fabs(g - w) - 1.0) <= tol * scale))
            flipped++;
        else if (e > worst)
            worst = e;
    }
    *flips = n ? (double)flipped / (double)n : 0.0;
    return worst;
}

static bool same_shape(const spw_tensor *a, const spw_tensor *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i])
            return false;
    return true;
}

#define MAX_IO 8

typedef struct vector_case {
    char name[128];
    spw_tensor in[MAX_IO], want[MAX_IO];
    int n_in, n_out;
} vector_case;

static void load_npys(const char *name, const char *kind, spw_tensor *t, int *n)
{
    char path[512];
    for (*n = 0; *n < MAX_IO; (*n)++) {
        snprintf(path, sizeof(path), "%s/%s_%s%d.npy", VECTOR_DIR, name, kind, *n);
        if (access(path, R_OK) != 0)
            break;
        int rc = spw_npy_read(path, &t[*n]);
        if (rc)
            fail_msg("%s: %s", path, spw_error_detail());
    }
}

/* Backends that could not plan a vector, listed after the run. */
static char skipped[8192];

static void note_skip(const char *backend, const char *name)
{
    size_t len = strlen(skipped);
    snprintf(skipped + len, sizeof(skipped) - len, "%s%s:%s", len ? ", " : "", backend, name);
}

/* Plans the model on backend with the given flags, runs it, and leaves the
 * outputs in got[] (malloc'd, shaped like the expected outputs). Returns
 * false when a backend other than the reference does not support the model. */
static bool run_plan(const vector_case *vc, const spw_model *m, const char *backend, unsigned flags,
                     spw_tensor *got)
{
    spw_plan_options opts;
    memset(&opts, 0, sizeof(opts));
    opts.backend = backend;
    /* The batch comes from the first input whose leading dim the model leaves
     * free; a model with fixed shapes takes the default. */
    for (int k = 0; k < vc->n_in && !opts.batch; k++) {
        spw_tensor desc;
        assert_int_equal(spw_model_input(m, k, &desc, NULL), 0);
        if (desc.ndim > 0 && desc.dims[0] < 0)
            opts.batch = (int)vc->in[k].dims[0];
    }
    opts.flags = flags;
    spw_plan *plan = NULL;
    int rc = spw_plan_create(m, &opts, &plan);
    if (rc == SPW_EUNSUPPORTED && strcmp(backend, REF_BACKEND))
        return false;
    if (rc)
        fail_msg("%s on %s: spw_plan_create(flags %u): %s: %s", vc->name, backend, flags,
                 spw_err_name(rc), spw_error_detail());
    for (int k = 0; k < vc->n_out; k++) {
        spw_tensor desc;
        assert_int_equal(spw_plan_output(plan, k, &desc), 0);
        if (!same_shape(&desc, &vc->want[k])) {
            char a[128], b[128];
            fail_msg("%s: output %d is %s, PyTorch made %s", vc->name, k,
                     spw_tensor_shape_str(&desc, a, sizeof(a)),
                     spw_tensor_shape_str(&vc->want[k], b, sizeof(b)));
        }
        got[k] = vc->want[k];
        got[k].layout = SPW_LAYOUT_NCHW;
        got[k].data = calloc((size_t)numel(&vc->want[k]) + 1, elem_size(vc->want[k].dtype));
        assert_non_null(got[k].data);
    }
    rc = spw_plan_run(plan, vc->in, vc->n_in, got, vc->n_out);
    if (rc)
        fail_msg("%s on %s: spw_plan_run(flags %u): %s: %s", vc->name, backend, flags,
                 spw_err_name(rc), spw_error_detail());
    spw_plan_free(plan);
    return true;
}

static void test_vector(void **state)
{
    vector_case *vc = *state;
    char path[512];
    snprintf(path, sizeof(path), "%s/%s.onnx", VECTOR_DIR, vc->name);
    spw_model *m = NULL;
    int rc = spw_model_load(path, &m);
    if (rc)
        fail_msg("%s: spw_model_load: %s: %s", vc->name, spw_err_name(rc), spw_error_detail());
    for (int i = 0; i < m->graph->n_nodes; i++)
        if (!m->graph->nodes[i].dead && (unsigned)m->graph->nodes[i].op < SPW_OP_COUNT)
            ops_covered[m->graph->nodes[i].op] = true;

    load_npys(vc->name, "in", vc->in, &vc->n_in);
    load_npys(vc->name, "out", vc->want, &vc->n_out);
    assert_int_equal(vc->n_in, spw_model_num_inputs(m));
    assert_int_equal(vc->n_out, spw_model_num_outputs(m));
    assert_true(vc->n_out > 0);

    for (int b = 0; b < spw_backend_count(); b++) {
        const char *be = spw_backend_name(b);
        const bool half = fp16_mode && !strcmp(be, "vulkan");
        const double tol = half ? TOL_FP16 : TOL;
        spw_tensor fused[MAX_IO], unfused[MAX_IO];
        if (!run_plan(vc, m, be, 0, fused)) {
            note_skip(be, vc->name);
            continue;
        }
        if (!run_plan(vc, m, be, SPW_PLAN_NO_FUSION, unfused)) {
            note_skip(be, vc->name);
            for (int k = 0; k < vc->n_out; k++)
                free(fused[k].data);
            continue;
        }
        for (int k = 0; k < vc->n_out; k++) {
            if (half) {
                double sf, su;
                double ef = fp16_error(&fused[k], &vc->want[k], tol, &sf);
                double eu = fp16_error(&unfused[k], &vc->want[k], tol, &su);
                print_message("  %-24s %-9s out%d  fp16: worst rel err vs PyTorch %.3g (fused) "
                              "%.3g (unfused), quantiser flips %.4f / %.4f\n",
                              vc->name, be, k, ef, eu, sf, su);
                if (!(ef <= tol) || !(eu <= tol) || !(sf <= 1 - FP16_MIN_EQUAL) ||
                    !(su <= 1 - FP16_MIN_EQUAL))
                    fail_msg("%s on %s: out%d exceeds %g or has more than %g flips", vc->name, be,
                             k, tol, 1 - FP16_MIN_EQUAL);
                free(fused[k].data);
                free(unfused[k].data);
                continue;
            }
            int64_t at_f, at_u, at_fu;
            double ef = worst_error(&fused[k], &vc->want[k], &at_f);
            double eu = worst_error(&unfused[k], &vc->want[k], &at_u);
            double efu = worst_error(&fused[k], &unfused[k], &at_fu);
            print_message("  %-24s %-9s out%d  worst rel err vs PyTorch %.3g (fused) %.3g "
                          "(unfused), fused vs unfused %.3g\n",
                          vc->name, be, k, ef, eu, efu);
            if (!(ef <= tol) || !(eu <= tol) || !(efu <= tol))
                fail_msg("%s on %s: out%d exceeds %g: fused %.3g at %lld, unfused %.3g at "
                         "%lld, between %.3g at %lld",
                         vc->name, be, k, tol, ef, (long long)at_f, eu, (long long)at_u, efu,
                         (long long)at_fu);
            free(fused[k].data);
            free(unfused[k].data);
        }
    }
    for (int k = 0; k < vc->n_in; k++)
        spw_free(vc->in[k].data);
    for (int k = 0; k < vc->n_out; k++)
        spw_free(vc->want[k].data);
    spw_model_free(m);
}

/* Runs after every vector: each op of the table appears in at least one. */
static void test_vectors_cover_ops(void **state)
{
    int n_cases = *(int *)*state;
    assert_true(n_cases >= 25);
    for (int op = 1; op < SPW_OP_COUNT; op++)
        if (!ops_covered[op])
            fail_msg("no vector in %s exercises %s", VECTOR_DIR, op_names[op]);
    print_message("  backends:");
    for (int b = 0; b < spw_backend_count(); b++)
        print_message(" %s", spw_backend_name(b));
    print_message("\n  skipped (backend:vector, unsupported): %s\n", skipped[0] ? skipped : "none");
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(((const vector_case *)a)->name, ((const vector_case *)b)->name);
}

/* Every <case>.onnx in the vector directory is a case: adding a vector needs
 * no change here. */
static vector_case *discover(int *count)
{
    vector_case *cases = NULL;
    int n = 0, cap = 0;
    DIR *d = opendir(VECTOR_DIR);
    if (!d)
        return NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len <= 5 || len >= sizeof(cases->name) + 5 || strcmp(e->d_name + len - 5, ".onnx"))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            vector_case *grown = realloc(cases, (size_t)cap * sizeof(*cases));
            if (!grown)
                break;
            cases = grown;
        }
        memset(&cases[n], 0, sizeof(cases[n]));
        memcpy(cases[n].name, e->d_name, len - 5);
        n++;
    }
    closedir(d);
    if (n)
        qsort(cases, (size_t)n, sizeof(*cases), cmp_names);
    *count = n;
    return cases;
}

int main(void)
{
    const char *h = getenv("SPW_VULKAN_FP16");
    fp16_mode = h && *h && strcmp(h, "0");
    if (!fp16_mode)
        setenv("SPW_VULKAN_FP16", "0", 1); /* the fp32 bounds; GPUs default to fp16 */
    bool have_vulkan = false;
    for (int b = 0; b < spw_backend_count(); b++)
        have_vulkan |= !strcmp(spw_backend_name(b), "vulkan");
    if (fp16_mode) {
        int rc = spw_test_vk_fp16_storage();
        if (rc)
            return rc;
        /* The device has 16-bit storage: a missing backend is a failure. */
        if (!have_vulkan) {
            printf("fp16: the Vulkan backend did not come up: %s\n", spw_error_detail());
            return 1;
        }
    }
    static const struct CMUnitTest direct[] = {
        cmocka_unit_test(test_kernel_table),
        cmocka_unit_test(test_conv_asymmetric_pads),
        cmocka_unit_test(test_conv_depthwise),
        cmocka_unit_test(test_conv_transpose_output_padding),
        cmocka_unit_test(test_broadcast_corners),
        cmocka_unit_test(test_softmax_large),
        cmocka_unit_test(test_quantize_ties),
        cmocka_unit_test(test_gdn),
        cmocka_unit_test(test_pad_modes),
        cmocka_unit_test(test_pool_edges),
        cmocka_unit_test(test_gemm_broadcast_c),
        cmocka_unit_test(test_matmul_vectors),
        cmocka_unit_test(test_transpose_rank8),
        cmocka_unit_test(test_concat_empty_input),
        cmocka_unit_test(test_post_ops_match_kernels),
        cmocka_unit_test(test_copy_in_place),
        cmocka_unit_test(test_guard_regions),
    };
    int failed = cmocka_run_group_tests_name("ref_kernels", direct, NULL, NULL);

    int n_cases = 0;
    vector_case *cases = discover(&n_cases);
    struct CMUnitTest *tests = calloc((size_t)n_cases + 1, sizeof(*tests));
    char(*names)[160] = calloc((size_t)n_cases + 1, sizeof(*names));
    if (!tests || !names) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (int i = 0; i < n_cases; i++) {
        snprintf(names[i], sizeof(names[i]), "vector_%s", cases[i].name);
        tests[i] = (struct CMUnitTest){names[i], test_vector, NULL, NULL, &cases[i]};
    }
    tests[n_cases] =
        (struct CMUnitTest){"vectors_cover_every_op", test_vectors_cover_ops, NULL, NULL, &n_cases};
    failed += _cmocka_run_group_tests("onnx_vectors", tests, (size_t)n_cases + 1, NULL, NULL);

    free(tests);
    free(names);
    free(cases);
    return failed ? 1 : 0;
}

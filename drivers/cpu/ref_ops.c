/* Reference kernels: the kernel table, fused post ops, element-wise and
 * normalisation ops, and the latent quantiser. The spatial, linear and
 * data-movement kernels live in ref_conv.c, ref_linear.c and ref_layout.c. */
#include <limits.h>
#include <math.h>

#include "drivers/cpu/ref_internal.h"

/* ---- unary activations ------------------------------------------------ */

static SPW__REF_KERNEL(ref_relu)
{
    const float *x = in[0].data;
    float *y = out->data;
    for (int64_t i = 0, n = spw__ref_numel(out); i < n; i++)
        y[i] = spw__ref_relu(x[i]);
}

static SPW__REF_KERNEL(ref_clip)
{
    const float *x = in[0].data;
    float *y = out->data;
    const float lo = node->p.clip.min, hi = node->p.clip.max;
    for (int64_t i = 0, n = spw__ref_numel(out); i < n; i++)
        y[i] = spw__ref_clip(x[i], lo, hi);
}

static SPW__REF_KERNEL(ref_leaky_relu)
{
    const float *x = in[0].data;
    float *y = out->data;
    const float alpha = node->p.leaky.alpha;
    for (int64_t i = 0, n = spw__ref_numel(out); i < n; i++)
        y[i] = spw__ref_leaky_relu(x[i], alpha);
}

static SPW__REF_KERNEL(ref_sigmoid)
{
    const float *x = in[0].data;
    float *y = out->data;
    for (int64_t i = 0, n = spw__ref_numel(out); i < n; i++)
        y[i] = spw__ref_sigmoid(x[i]);
}

static SPW__REF_KERNEL(ref_hard_swish)
{
    const float *x = in[0].data;
    float *y = out->data;
    for (int64_t i = 0, n = spw__ref_numel(out); i < n; i++)
        y[i] = spw__ref_hard_swish(x[i]);
}

/* ---- broadcasting binary ops ------------------------------------------ */

/* Strides that read t as if broadcast to out's shape (ONNX multidirectional
 * broadcasting): dims aligned on the right, a size-1 or missing axis repeats. */
static void broadcast_strides(const spw_tensor *t, const spw_tensor *out, int64_t *strides)
{
    const int shift = out->ndim - t->ndim;
    int64_t s = 1;
    for (int i = out->ndim - 1; i >= 0; i--) {
        int64_t d = i - shift >= 0 ? t->dims[i - shift] : 1;
        strides[i] = d == 1 ? 0 : s;
        s *= d;
    }
}

static void binary(const spw_tensor *in, spw_tensor *out, int is_mul)
{
    const float *a = in[0].data, *b = in[1].data;
    float *y = out->data;
    const int nd = out->ndim;

    if (spw__ref_numel(out) == 0)
        return;
    if (nd == 0) {
        y[0] = is_mul ? a[0] * b[0] : a[0] + b[0];
        return;
    }
    int64_t sa[SPW_MAX_DIMS], sb[SPW_MAX_DIMS], idx[SPW_MAX_DIMS] = {0};
    broadcast_strides(&in[0], out, sa);
    broadcast_strides(&in[1], out, sb);

    /* Walk rows of the last axis; the outer index advances like an odometer. */
    const int64_t row = out->dims[nd - 1];
    const int64_t la = sa[nd - 1], lb = sb[nd - 1];
    int64_t o = 0;
    do {
        int64_t oa = 0, ob = 0;
        for (int i = 0; i < nd - 1; i++) {
            oa += idx[i] * sa[i];
            ob += idx[i] * sb[i];
        }
        for (int64_t j = 0; j < row; j++) {
            float u = a[oa + j * la], v = b[ob + j * lb];
            y[o + j] = is_mul ? u * v : u + v;
        }
        o += row;
    } while (spw__ref_next_index(idx, out->dims, nd - 1));
}

static SPW__REF_KERNEL(ref_add)
{
    binary(in, out, 0);
}

static SPW__REF_KERNEL(ref_mul)
{
    binary(in, out, 1);
}

/* ---- normalisation ---------------------------------------------------- */

/* Softmax along one axis (opset 13), shifted by the maximum so exp() cannot
 * overflow; the sum is in double. */
static SPW__REF_KERNEL(ref_softmax)
{
    const float *x = in[0].data;
    float *y = out->data;
    const int axis = node->p.axis.axis;
    const int64_t outer = spw__ref_span(out, 0, axis);
    const int64_t n = out->ndim ? out->dims[axis] : 1;
    const int64_t inner = spw__ref_span(out, axis + 1, out->ndim);

    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const float *xs = x + o * n * inner + i;
            float *ys = y + o * n * inner + i;
            float mx = -INFINITY;
            for (int64_t k = 0; k < n; k++)
                mx = xs[k * inner] > mx ? xs[k * inner] : mx;
            double sum = 0.0;
            for (int64_t k = 0; k < n; k++)
                sum += exp((double)xs[k * inner] - mx);
            for (int64_t k = 0; k < n; k++)
                ys[k * inner] = (float)(exp((double)xs[k * inner] - mx) / sum);
        }
}

/* BatchNormalization (inference): X, scale, B, mean, var; channel axis 1. */
static SPW__REF_KERNEL(ref_batch_norm)
{
    const float *x = in[0].data, *scale = in[1].data, *bias = in[2].data;
    const float *mean = in[3].data, *var = in[4].data;
    float *y = out->data;
    const int64_t N = out->dims[0], C = out->ndim > 1 ? out->dims[1] : 1;
    const int64_t S = spw__ref_span(out, 2, out->ndim);

    for (int64_t c = 0; c < C; c++) {
        double k = scale[c] / sqrt((double)var[c] + node->p.bn.epsilon);
        for (int64_t n = 0; n < N; n++) {
            const float *xc = x + (n * C + c) * S;
            float *yc = y + (n * C + c) * S;
            for (int64_t s = 0; s < S; s++)
                yc[s] = (float)(((double)xc[s] - mean[c]) * k + bias[c]);
        }
    }
}

/*
 * GDN (ai.splitwire): X [N, C, ...], beta [C], gamma [C, C] (row c weighs the
 * squares of all channels for output channel c):
 *   norm_c = sqrt(beta_c + sum_j gamma[c][j] * x_j^2)
 *   GDN: y_c = x_c / norm_c      inverse GDN: y_c = x_c * norm_c
 */
static SPW__REF_KERNEL(ref_gdn)
{
    const float *x = in[0].data, *beta = in[1].data, *gamma = in[2].data;
    float *y = out->data;
    const int inverse = node->p.gdn.inverse;
    const int64_t N = out->dims[0], C = out->dims[1];
    const int64_t S = spw__ref_span(out, 2, out->ndim);

    for (int64_t n = 0; n < N; n++)
        for (int64_t s = 0; s < S; s++) {
            const float *xs = x + n * C * S + s;
            float *ys = y + n * C * S + s;
            for (int64_t c = 0; c < C; c++) {
                double acc = beta[c];
                for (int64_t j = 0; j < C; j++) {
                    double v = xs[j * S];
                    acc += (double)gamma[c * C + j] * v * v;
                }
                double norm = sqrt(acc);
                double v = xs[c * S];
                ys[c * S] = (float)(inverse ? v * norm : v / norm);
            }
        }
}

/* ---- latent quantiser (ai.splitwire) ---------------------------------- */

/*
 * Quantize: X f32 [N, C, ...], medians [C] (any shape with C elements), then
 * optional codec tables that only the entropy coder reads. The subtraction is
 * in float, as in the reference implementation, before rounding.
 */
static SPW__REF_KERNEL(ref_quantize)
{
    const float *x = in[0].data, *median = in[1].data;
    int32_t *q = out->data;
    const int64_t N = out->dims[0], C = out->ndim > 1 ? out->dims[1] : 1;
    const int64_t S = spw__ref_span(out, 2, out->ndim);

    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t s = 0; s < S; s++) {
                int64_t i = (n * C + c) * S + s;
                q[i] = spw__round_i32(x[i] - median[c]);
            }
}

/* Dequantize: symbols int32 [N, C, ...], medians [C]: y = symbol + median_c. */
static SPW__REF_KERNEL(ref_dequantize)
{
    const int32_t *q = in[0].data;
    const float *median = in[1].data;
    float *y = out->data;
    const int64_t N = out->dims[0], C = out->ndim > 1 ? out->dims[1] : 1;
    const int64_t S = spw__ref_span(out, 2, out->ndim);

    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t s = 0; s < S; s++) {
                int64_t i = (n * C + c) * S + s;
                y[i] = (float)q[i] + median[c];
            }
}

/* ---- table and post ops ----------------------------------------------- */

const spw_ref_kernel spw__ref_kernels[SPW_OP_COUNT] = {
    [SPW_OP_CONV] = spw__ref_conv,
    [SPW_OP_CONV_TRANSPOSE] = spw__ref_conv_transpose,
    [SPW_OP_RELU] = ref_relu,
    [SPW_OP_CLIP] = ref_clip,
    [SPW_OP_LEAKY_RELU] = ref_leaky_relu,
    [SPW_OP_SIGMOID] = ref_sigmoid,
    [SPW_OP_HARD_SWISH] = ref_hard_swish,
    [SPW_OP_ADD] = ref_add,
    [SPW_OP_MUL] = ref_mul,
    [SPW_OP_CONCAT] = spw__ref_concat,
    [SPW_OP_GLOBAL_AVG_POOL] = spw__ref_global_avg_pool,
    [SPW_OP_AVG_POOL] = spw__ref_avg_pool,
    [SPW_OP_MAX_POOL] = spw__ref_max_pool,
    [SPW_OP_GEMM] = spw__ref_gemm,
    [SPW_OP_MATMUL] = spw__ref_matmul,
    [SPW_OP_FLATTEN] = spw__ref_copy,
    [SPW_OP_RESHAPE] = spw__ref_copy,
    [SPW_OP_TRANSPOSE] = spw__ref_transpose,
    [SPW_OP_BATCH_NORM] = ref_batch_norm,
    [SPW_OP_SOFTMAX] = ref_softmax,
    [SPW_OP_IDENTITY] = spw__ref_copy,
    [SPW_OP_PAD] = spw__ref_pad,
    [SPW_OP_GDN] = ref_gdn,
    [SPW_OP_QUANTIZE] = ref_quantize,
    [SPW_OP_DEQUANTIZE] = ref_dequantize,
};

void spw__ref_apply_post(const spw_node *node, spw_tensor *out, const spw_tensor *addends)
{
    float *y = out->data;
    const int64_t n = spw__ref_numel(out);

    for (int k = 0; k < node->n_post; k++) {
        const spw_post_op *p = &node->post[k];
        switch (p->kind) {
        case SPW_POST_RELU:
            for (int64_t i = 0; i < n; i++)
                y[i] = spw__ref_relu(y[i]);
            break;
        case SPW_POST_CLIP:
            for (int64_t i = 0; i < n; i++)
                y[i] = spw__ref_clip(y[i], p->a, p->b);
            break;
        case SPW_POST_LEAKY_RELU:
            for (int64_t i = 0; i < n; i++)
                y[i] = spw__ref_leaky_relu(y[i], p->a);
            break;
        case SPW_POST_SIGMOID:
            for (int64_t i = 0; i < n; i++)
                y[i] = spw__ref_sigmoid(y[i]);
            break;
        case SPW_POST_HARD_SWISH:
            for (int64_t i = 0; i < n; i++)
                y[i] = spw__ref_hard_swish(y[i]);
            break;
        case SPW_POST_ADD: {
            const float *b = addends[k].data;
            for (int64_t i = 0; i < n; i++)
                y[i] += b[i];
            break;
        }
        }
    }
}

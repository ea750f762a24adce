/* Shared pieces of the reference kernels (drivers/cpu/ref_*.c). Not installed. */
#ifndef SPW_CPU_REF_INTERNAL_H
#define SPW_CPU_REF_INTERNAL_H

#include <math.h>
#include <stdint.h>

#include "drivers/cpu/ref_ops.h"

#define SPW__REF_KERNEL(fn) \
    void fn(const spw_node *node, const spw_tensor *in, int n_in, spw_tensor *out)

/* ref_conv.c: spatial ops, NCHW. */
SPW__REF_KERNEL(spw__ref_conv);
SPW__REF_KERNEL(spw__ref_conv_transpose);
SPW__REF_KERNEL(spw__ref_avg_pool);
SPW__REF_KERNEL(spw__ref_max_pool);
SPW__REF_KERNEL(spw__ref_global_avg_pool);
/* ref_linear.c: matrix products. */
SPW__REF_KERNEL(spw__ref_gemm);
SPW__REF_KERNEL(spw__ref_matmul);
/* ref_layout.c: data movement, any element type. */
SPW__REF_KERNEL(spw__ref_copy);
SPW__REF_KERNEL(spw__ref_concat);
SPW__REF_KERNEL(spw__ref_transpose);
SPW__REF_KERNEL(spw__ref_pad);

static inline int64_t spw__ref_numel(const spw_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->dims[i];
    return n;
}

/* Product of dims[from, to). */
static inline int64_t spw__ref_span(const spw_tensor *t, int from, int to)
{
    int64_t n = 1;
    for (int i = from; i < to; i++)
        n *= t->dims[i];
    return n;
}

/* Bytes per element. Kept here rather than calling spw_dtype_size() so the
 * kernels depend on nothing but the C library. */
static inline size_t spw__ref_esize(spw_dtype dt)
{
    switch (dt) {
    case SPW_F16:
        return 2;
    case SPW_I8:
    case SPW_U8:
        return 1;
    case SPW_I64:
        return 8;
    default:
        return 4;
    }
}

/* Row-major strides of t's dims. */
static inline void spw__ref_strides(const spw_tensor *t, int64_t *strides)
{
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        strides[i] = s;
        s *= t->dims[i];
    }
}

/* Advances a row-major multi-index over dims[0, ndim) by one; false after the last. */
static inline int spw__ref_next_index(int64_t *idx, const int64_t *dims, int ndim)
{
    for (int i = ndim - 1; i >= 0; i--) {
        if (++idx[i] < dims[i])
            return 1;
        idx[i] = 0;
    }
    return 0;
}

/* Scalar activations shared by the op kernels and the fused post ops, so a
 * fused and an unfused plan compute bit-identical results. Comparisons are
 * written so that NaN passes through, as it does in PyTorch. */
static inline float spw__ref_relu(float x)
{
    return x < 0.0f ? 0.0f : x;
}

static inline float spw__ref_clip(float x, float lo, float hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

static inline float spw__ref_leaky_relu(float x, float alpha)
{
    return x < 0.0f ? x * alpha : x;
}

static inline float spw__ref_sigmoid(float x)
{
    /* Evaluated in double and split by sign so exp() never overflows. */
    double d = x;
    if (d >= 0.0)
        return (float)(1.0 / (1.0 + exp(-d)));
    double e = exp(d);
    return (float)(e / (1.0 + e));
}

static inline float spw__ref_hard_swish(float x)
{
    /* x * relu6(x + 3) / 6 in this order, as PyTorch evaluates it. */
    return x * spw__ref_clip(x + 3.0f, 0.0f, 6.0f) / 6.0f;
}

#endif

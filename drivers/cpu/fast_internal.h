/* cpu-fast internals: the per-plan action list and our own NHWC kernels.
 * Not installed.
 *
 * A plan compiles to a flat list of actions. Most are XNNPACK operators,
 * created and set up once on the fixed arena pointers, so a run only calls
 * xnn_run_operator; the rest are kernels of ours for what XNNPACK lacks.
 * 4-D activations live in the arena as NHWC; every other rank, and every
 * constant, is row-major as the graph gives it. */
#ifndef SPW_CPU_FAST_INTERNAL_H
#define SPW_CPU_FAST_INTERNAL_H

#include <pthreadpool.h>
#include <xnnpack.h>

#include "drivers/backend.h"
#include "drivers/cpu/ref_ops.h"

/* A tensor as 4-byte elements: dims in the graph's logical (NCHW) order,
 * strides in elements over its storage, so one walker handles NHWC, NCHW,
 * permuted and broadcast (stride 0) operands alike. */
typedef struct fast_view {
    int ndim;
    int64_t dims[SPW_MAX_DIMS];
    int64_t strides[SPW_MAX_DIMS];
    void *data;
} fast_view;

struct fast_action;
typedef void (*fast_kernel)(const struct fast_action *a);

/* One unit of work of a step: xop when XNNPACK runs it, else fn. */
typedef struct fast_action {
    xnn_operator_t xop;
    fast_kernel fn;
    int step; /* index into plan->steps, for the profile */
    const spw_node *node;
    pthreadpool_t pool;
    fast_view view[3]; /* fn operands: [0] output, [1] and [2] inputs */
    /* Contiguous channel addressing: element i has channel (i / inner) % channels. */
    int64_t outer, channels, inner;
    const float *aux; /* kernel constants (BatchNorm scale and shift, medians) */
    const float *tmp; /* intermediate from an earlier action (GDN) */
    float lo, hi;     /* clamp applied after an own add */
    int mode;         /* kernel-specific switch */
    /* Bridge to a reference kernel (NCHW views). */
    spw_tensor *ref_in;
    int n_ref_in;
    spw_tensor ref_out;
    void *ext; /* larger per-kernel state (Winograd; mutable while running) */
} fast_action;

typedef struct fast_weights fast_weights;

typedef struct fast_plan {
    pthreadpool_t pool;
    fast_weights *weights; /* the model's, shared with its other plans */
    int threads;
    fast_action *acts;
    int n_acts, cap_acts;
    void **blocks; /* packed constants and scratch, spw__aligned_alloc'd */
    int n_blocks, cap_blocks;
    xnn_operator_t *inner_ops; /* run by our kernels, not by the action list */
    int n_inner_ops, cap_inner_ops;
} fast_plan;

/* XNNPACK may read up to XNN_EXTRA_BYTES past any input; every buffer we
 * hand it is padded by this much. */
#define FAST_PAD 64

/* fast_weights.c: the allocator XNNPACK is initialised with, and a model's
 * cache of packed weights. Operators that pack weights are created between
 * capture_begin and capture_end (op NULL when creation failed), so their
 * packed blocks are shared with identical ones of the model's other plans. */
extern const struct xnn_allocator spw__fast_xnn_allocator;
int spw__fast_weights_create(fast_weights **out);
void spw__fast_weights_release(fast_weights *w);
void spw__fast_capture_begin(void);
/* key (key_size bytes, NULL for none) names everything the create call was
 * given, its weights by the shared constants' addresses: a later
 * spw__fast_clone with the same key returns a copy of the operator as
 * created, without packing again (NULL when there is none). */
void spw__fast_capture_end(fast_weights *w, xnn_operator_t op, const void *key, size_t key_size);
xnn_operator_t spw__fast_clone(fast_weights *w, const void *key, size_t key_size);

/* fast_prepare.c */
int spw__fast_build(spw_backend *be, spw_plan *plan, fast_plan *fp);
void spw__fast_release(fast_plan *fp);
/* The op table's row for op (fast_prepare.c). */
spw_row_kind spw__fast_op_row(spw_op op);
/* Zeroed, pre-faulted, padded block owned by fp (NULL on failure). */
void *spw__fast_block(fast_plan *fp, size_t bytes);

/* fast_winograd.c: 3x3, stride 1, pad 1 convolutions as Winograd F(2x2, 3x3):
 * our input transform, 16 GEMMs as one grouped 1x1 XNNPACK convolution per
 * thread, our output transform with bias, clamp and residual add fused, all
 * a tile row at a time so the transformed data stays in cache. Builds the
 * state for *ext (0, or 0 with *ext NULL when the shape does not pay). */
typedef struct fast_wino_args {
    const float *x; /* NHWC input, dims N, C, H, W in xdims (NCHW order) */
    int64_t xdims[4];
    float *y; /* NHWC output, same H and W */
    int64_t cout;
    const float *weight;   /* OIHW, 3x3 */
    bool shared_weight;    /* weight is the model's: its address may key a template */
    const float *bias;     /* or NULL */
    float lo, hi;          /* clamp after the bias */
    const float *residual; /* or NULL: y = clamp(y + residual, lo2, hi2) */
    float lo2, hi2;
} fast_wino_args;

int spw__fast_winograd_prepare(fast_plan *fp, const fast_wino_args *args, void **ext);
void spw__fast_winograd_run(const fast_action *a);

/* fast_kernels.c: own kernels, each reading its operands from the action. */
void spw__fast_copy(const fast_action *a);   /* view[0] <- view[1], same dims */
void spw__fast_memcpy(const fast_action *a); /* inner elements */
void spw__fast_pad(const fast_action *a);
void spw__fast_softmax(const fast_action *a);
void spw__fast_binary(const fast_action *a);      /* broadcast views; mode 1 = mul */
void spw__fast_add_inplace(const fast_action *a); /* view[0] += view[1], clamp, threaded */
void spw__fast_batch_norm(const fast_action *a);
void spw__fast_quantize(const fast_action *a);
void spw__fast_dequantize(const fast_action *a);
void spw__fast_gdn_finish(const fast_action *a);
void spw__fast_bridge(const fast_action *a);   /* reference kernel on NCHW copies */
void spw__fast_post_ref(const fast_action *a); /* node->post[mode..] with ref loops */

#endif

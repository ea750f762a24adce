/* cpu-fast plan preparation: turns each step into actions. XNNPACK
 * operators are created (weights packed) and set up on the arena's fixed
 * pointers here, once; what XNNPACK cannot express becomes one of our NHWC
 * kernels, and the rare rest a reference kernel bridged through NCHW
 * scratch. Nothing made here is reallocated while the plan runs. */
#include <math.h>
#include <string.h>

#include "drivers/cpu/fast_internal.h"

typedef struct build_ctx {
    spw_plan *plan;
    fast_plan *fp;
    const spw_graph *g;
    char *arena;
    int step;
} build_ctx;

/* ---- bookkeeping --------------------------------------------------------- */

/* A zeroed, pre-faulted block owned by the plan, padded for XNNPACK's reads. */
void *spw__fast_block(fast_plan *fp, size_t bytes)
{
    if (spw__grow((void **)&fp->blocks, &fp->cap_blocks, fp->n_blocks + 1, sizeof(void *)))
        return NULL;
    void *p = spw__aligned_alloc(SPW_ARENA_ALIGN, bytes + FAST_PAD);
    if (!p) {
        spw__error(SPW_ENOMEM, "cpu-fast: no memory for a %zu-byte block", bytes);
        return NULL;
    }
    memset(p, 0, bytes + FAST_PAD);
    fp->blocks[fp->n_blocks++] = p;
    return p;
}

static void *new_block(build_ctx *c, size_t bytes)
{
    return spw__fast_block(c->fp, bytes);
}

static fast_action *new_action(build_ctx *c, const spw_node *n)
{
    fast_plan *fp = c->fp;
    if (spw__grow((void **)&fp->acts, &fp->cap_acts, fp->n_acts + 1, sizeof(fast_action)))
        return NULL;
    fast_action *a = &fp->acts[fp->n_acts++];
    memset(a, 0, sizeof(*a));
    a->step = c->step;
    a->node = n;
    a->pool = fp->pool;
    return a;
}

/* Takes ownership of op: it is deleted if it cannot be recorded. */
static int push_xnn(build_ctx *c, const spw_node *n, xnn_operator_t op)
{
    fast_action *a = new_action(c, n);
    if (!a) {
        xnn_delete_operator(op);
        return SPW_ENOMEM;
    }
    a->xop = op;
    return 0;
}

/* Drops the actions recorded since mark (a fast path that gave up). */
static void rollback(build_ctx *c, int mark)
{
    fast_plan *fp = c->fp;
    while (fp->n_acts > mark) {
        fast_action *a = &fp->acts[--fp->n_acts];
        if (a->xop)
            xnn_delete_operator(a->xop);
    }
}

/* XNNPACK refusing a shape sends the step elsewhere; running out of memory
 * is an error like any other allocation failure. */
static int xnn_oom(const spw_node *n)
{
    return spw__error(SPW_ENOMEM, "cpu-fast: out of memory creating node '%s'", n->name);
}

/* A float's bits as a key word (keys of operators copied from templates). */
static int64_t fbits(float f)
{
    int32_t b;
    memcpy(&b, &f, sizeof(b));
    return b;
}

/* ---- values and views ---------------------------------------------------- */

static const spw_value *val(build_ctx *c, int v)
{
    return &c->g->values[v];
}

static bool is_const(build_ctx *c, int v)
{
    return v >= 0 && (val(c, v)->flags & SPW_VALUE_CONST);
}

/* A 4-D activation: stored NHWC in the arena. */
static bool is_nhwc(build_ctx *c, int v)
{
    return v >= 0 && !is_const(c, v) && val(c, v)->ndim == 4;
}

static void *ptr(build_ctx *c, int v)
{
    return is_const(c, v) ? val(c, v)->data : c->arena + c->plan->offsets[v];
}

/* Whether v (or an absent input) is one of the model's shared constants: its
 * address then names its contents for as long as the weights live, so it
 * may key an operator template. */
static bool stable(build_ctx *c, int v)
{
    return v < 0 || (val(c, v)->flags & SPW_VALUE_SHARED);
}

static int64_t numel(build_ctx *c, int v)
{
    return spw__value_numel(val(c, v));
}

static void rowmajor_view(fast_view *w, void *data, int ndim, const int64_t *dims)
{
    memset(w, 0, sizeof(*w));
    w->ndim = ndim;
    w->data = data;
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        w->dims[i] = dims[i];
        w->strides[i] = s;
        s *= dims[i];
    }
}

/* Logical (NCHW) dims over the value's real storage. */
static void view_of(build_ctx *c, int v, fast_view *w)
{
    const spw_value *x = val(c, v);
    rowmajor_view(w, ptr(c, v), x->ndim, x->dims);
    if (is_nhwc(c, v)) {
        const int64_t C = x->dims[1], H = x->dims[2], W = x->dims[3];
        w->strides[0] = H * W * C;
        w->strides[1] = 1;
        w->strides[2] = W * C;
        w->strides[3] = C;
    }
}

/* Channel addressing of a contiguous tensor: NHWC puts the channel last. */
static void channel_split(build_ctx *c, int v, fast_action *a)
{
    const spw_value *x = val(c, v);
    if (is_nhwc(c, v)) {
        a->outer = x->dims[0] * x->dims[2] * x->dims[3];
        a->channels = x->dims[1];
        a->inner = 1;
        return;
    }
    a->outer = x->ndim > 0 ? x->dims[0] : 1;
    a->channels = x->ndim > 1 ? x->dims[1] : 1;
    a->inner = 1;
    for (int i = 2; i < x->ndim; i++)
        a->inner *= x->dims[i];
}

static int emit_copy(build_ctx *c, const spw_node *n, const fast_view *dst, const fast_view *src)
{
    fast_action *a = new_action(c, n);
    if (!a)
        return SPW_ENOMEM;
    a->fn = spw__fast_copy;
    a->view[0] = *dst;
    a->view[1] = *src;
    return 0;
}

/* ---- fused post ops ------------------------------------------------------ */

/* Folds the RELU/CLIP post ops from index `from` on into [lo, hi] while the
 * intervals intersect (then the composition is one clamp); returns how many. */
static int clamp_run(const spw_node *n, int from, float *lo, float *hi)
{
    *lo = -INFINITY;
    *hi = INFINITY;
    int k = from;
    for (; k < n->n_post; k++) {
        const spw_post_op *p = &n->post[k];
        float a, b;
        if (p->kind == SPW_POST_RELU) {
            a = 0.0f;
            b = INFINITY;
        } else if (p->kind == SPW_POST_CLIP) {
            a = p->a;
            b = p->b;
        } else {
            break;
        }
        float nlo = a > *lo ? a : *lo, nhi = b < *hi ? b : *hi;
        if (!(nlo < nhi))
            break;
        *lo = nlo;
        *hi = nhi;
    }
    return k - from;
}

/* The reference loops for the post ops from `from` on, over contiguous data. */
static int emit_post_ref(build_ctx *c, const spw_node *n, int from, float *y, int64_t count)
{
    spw_tensor *addends = new_block(c, sizeof(spw_tensor) * SPW_MAX_POST);
    if (!addends)
        return SPW_ENOMEM;
    for (int k = from; k < n->n_post; k++) {
        if (n->post[k].kind != SPW_POST_ADD)
            continue;
        spw_tensor *t = &addends[k - from];
        t->dtype = SPW_F32;
        t->ndim = 1;
        t->dims[0] = count;
        t->data = ptr(c, n->post[k].value);
    }
    fast_action *a = new_action(c, n);
    if (!a)
        return SPW_ENOMEM;
    a->fn = spw__fast_post_ref;
    a->mode = from;
    a->ref_in = addends;
    a->ref_out.dtype = SPW_F32;
    a->ref_out.ndim = 1;
    a->ref_out.dims[0] = count;
    a->ref_out.data = y;
    return 0;
}

/* Post ops run in place on the output: XNNPACK unary operators (in place is
 * safe for its element-wise kernels), and our threaded add for residuals
 * with any clamp that follows folded in. */
static int emit_posts(build_ctx *c, const spw_node *n, int from, float *y, int64_t count)
{
    const size_t cnt = (size_t)count;
    int k = from;
    while (k < n->n_post) {
        const spw_post_op *p = &n->post[k];
        xnn_operator_t op = NULL;
        enum xnn_status st = xnn_status_success;
        float lo, hi;
        int used = 1;
        switch (p->kind) {
        case SPW_POST_RELU:
        case SPW_POST_CLIP:
            used = clamp_run(n, k, &lo, &hi);
            if (!used)
                return emit_post_ref(c, n, k, y, count);
            st = xnn_create_clamp_nc_f32(cnt, cnt, cnt, lo, hi, 0, &op);
            if (st == xnn_status_success)
                st = xnn_setup_clamp_nc_f32(op, 1, y, y, c->fp->pool);
            break;
        case SPW_POST_LEAKY_RELU:
            st = xnn_create_leaky_relu_nc_f32(cnt, cnt, cnt, p->a, 0, &op);
            if (st == xnn_status_success)
                st = xnn_setup_leaky_relu_nc_f32(op, 1, y, y, c->fp->pool);
            break;
        case SPW_POST_SIGMOID:
            st = xnn_create_sigmoid_nc_f32(cnt, cnt, cnt, 0, &op);
            if (st == xnn_status_success)
                st = xnn_setup_sigmoid_nc_f32(op, 1, y, y, c->fp->pool);
            break;
        case SPW_POST_HARD_SWISH:
            st = xnn_create_hardswish_nc_f32(cnt, cnt, cnt, 0, &op);
            if (st == xnn_status_success)
                st = xnn_setup_hardswish_nc_f32(op, 1, y, y, c->fp->pool);
            break;
        case SPW_POST_ADD: {
            fast_action *a = new_action(c, n);
            if (!a)
                return SPW_ENOMEM;
            a->fn = spw__fast_add_inplace;
            a->view[0].data = y;
            a->view[1].data = ptr(c, p->value);
            a->inner = count;
            int clamps = clamp_run(n, k + 1, &a->lo, &a->hi);
            a->mode = clamps > 0;
            k += 1 + clamps;
            continue;
        }
        default:
            return emit_post_ref(c, n, k, y, count);
        }
        if (st != xnn_status_success) {
            if (op)
                xnn_delete_operator(op);
            if (st == xnn_status_out_of_memory)
                return xnn_oom(n);
            SPW_LOGD("cpu-fast: node '%s': post op %d on our loops (XNNPACK status %d)", n->name, k,
                     (int)st);
            return emit_post_ref(c, n, k, y, count);
        }
        int rc = push_xnn(c, n, op);
        if (rc)
            return rc;
        k += used;
    }
    return 0;
}

/* ---- ops on XNNPACK ------------------------------------------------------ */

/* Each emit_* returns 1 when it recorded the step's work (setting *post_from
 * to the first post op still to run), 0 when the step should go to the
 * bridge instead, or a negative status. */

/* A 3x3 stride-1 pad-1 convolution through Winograd F(2x2, 3x3), with its
 * clamps and a residual add (and the clamps after it) fused. 0 when the
 * shape does not pay (the direct convolution takes it). */
static int emit_winograd(build_ctx *c, const spw_node *n, int *post_from)
{
    const int x = n->inputs[0], w = n->inputs[1], b = n->n_inputs > 2 ? n->inputs[2] : -1;
    const int y = n->outputs[0];
    fast_wino_args args = {.x = ptr(c, x),
                           .y = ptr(c, y),
                           .cout = val(c, y)->dims[1],
                           .weight = val(c, w)->data,
                           .shared_weight = stable(c, w),
                           .bias = b >= 0 ? val(c, b)->data : NULL};
    memcpy(args.xdims, val(c, x)->dims, sizeof(args.xdims));
    int k = clamp_run(n, 0, &args.lo, &args.hi);
    args.lo2 = -INFINITY;
    args.hi2 = INFINITY;
    if (k < n->n_post && n->post[k].kind == SPW_POST_ADD) {
        args.residual = ptr(c, n->post[k].value);
        k += 1 + clamp_run(n, k + 1, &args.lo2, &args.hi2);
    }
    void *ext = NULL;
    int rc = spw__fast_winograd_prepare(c->fp, &args, &ext);
    if (rc || !ext)
        return rc;
    fast_action *a = new_action(c, n);
    if (!a)
        return SPW_ENOMEM;
    a->fn = spw__fast_winograd_run;
    a->ext = ext;
    SPW_LOGD("cpu-fast: conv '%s' as Winograd F(2x2, 3x3)", n->name);
    *post_from = k;
    return 1;
}

static int emit_conv(build_ctx *c, const spw_node *n, int *post_from)
{
    const int x = n->inputs[0], w = n->inputs[1], b = n->n_inputs > 2 ? n->inputs[2] : -1;
    const int y = n->outputs[0];
    if (!is_nhwc(c, x) || !is_nhwc(c, y) || !is_const(c, w) || val(c, w)->ndim != 4 ||
        (b >= 0 && !is_const(c, b)))
        return 0;
    const spw_conv_params *p = &n->p.conv;
    const int64_t *xd = val(c, x)->dims, *wd = val(c, w)->dims;
    const int64_t C = xd[1], M = val(c, y)->dims[1], KH = wd[2], KW = wd[3];
    const int64_t G = p->group > 0 ? p->group : 1;
    const int64_t cin_g = C / G, cout_g = M / G;
    if (KH == 3 && KW == 3 && G == 1 && p->stride[0] <= 1 && p->stride[1] <= 1 &&
        p->dilation[0] <= 1 && p->dilation[1] <= 1 && p->pads[0] == 1 && p->pads[1] == 1 &&
        p->pads[2] == 1 && p->pads[3] == 1) {
        int rc = emit_winograd(c, n, post_from);
        if (rc)
            return rc;
    }
    float lo, hi;
    int clamps = clamp_run(n, 0, &lo, &hi);
    const float *src = val(c, w)->data;
    const void *bias = b >= 0 ? val(c, b)->data : NULL;
    const int64_t key[] = {SPW_OP_CONV,
                           p->pads[0],
                           p->pads[1],
                           p->pads[2],
                           p->pads[3],
                           KH,
                           KW,
                           p->stride[0],
                           p->stride[1],
                           p->dilation[0],
                           p->dilation[1],
                           G,
                           C,
                           M,
                           (int64_t)(intptr_t)src,
                           (int64_t)(intptr_t)bias,
                           fbits(lo),
                           fbits(hi)};
    const bool keyed = stable(c, w) && stable(c, b);
    enum xnn_status st = xnn_status_success;
    xnn_operator_t op = keyed ? spw__fast_clone(c->fp->weights, key, sizeof(key)) : NULL;
    if (!op) {
        /* XNNPACK takes filters as [group][out][kh][kw][in]: OIHW -> OHWI. */
        float *packed = spw__malloc(sizeof(float) * (size_t)(M * KH * KW * cin_g));
        if (!packed)
            return spw__error(SPW_ENOMEM, "cpu-fast: no memory packing '%s'", n->name);
        for (int64_t m = 0; m < M; m++)
            for (int64_t i = 0; i < cin_g; i++)
                for (int64_t k = 0; k < KH * KW; k++)
                    packed[(m * KH * KW + k) * cin_g + i] = src[(m * cin_g + i) * KH * KW + k];
        spw__fast_capture_begin();
        st = xnn_create_convolution2d_nhwc_f32(
            (uint32_t)p->pads[0], (uint32_t)p->pads[3], (uint32_t)p->pads[2], (uint32_t)p->pads[1],
            (uint32_t)KH, (uint32_t)KW, (uint32_t)SPW_MAX(p->stride[0], 1),
            (uint32_t)SPW_MAX(p->stride[1], 1), (uint32_t)SPW_MAX(p->dilation[0], 1),
            (uint32_t)SPW_MAX(p->dilation[1], 1), (uint32_t)G, (size_t)cin_g, (size_t)cout_g,
            (size_t)C, (size_t)M, packed, bias, lo, hi, 0, &op);
        spw__fast_capture_end(c->fp->weights, st == xnn_status_success ? op : NULL,
                              keyed ? key : NULL, sizeof(key));
        spw__free(packed);
    }
    if (st == xnn_status_success)
        st = xnn_setup_convolution2d_nhwc_f32(op, (size_t)xd[0], (size_t)xd[2], (size_t)xd[3],
                                              ptr(c, x), ptr(c, y), c->fp->pool);
    if (st != xnn_status_success) {
        if (op)
            xnn_delete_operator(op);
        if (st == xnn_status_out_of_memory)
            return xnn_oom(n);
        SPW_LOGD("cpu-fast: conv '%s' bridged (XNNPACK status %d)", n->name, (int)st);
        return 0;
    }
    *post_from = clamps;
    int rc = push_xnn(c, n, op);
    return rc ? rc : 1;
}

static int emit_conv_transpose(build_ctx *c, const spw_node *n, int *post_from)
{
    const int x = n->inputs[0], w = n->inputs[1], b = n->n_inputs > 2 ? n->inputs[2] : -1;
    const int y = n->outputs[0];
    if (!is_nhwc(c, x) || !is_nhwc(c, y) || !is_const(c, w) || val(c, w)->ndim != 4 ||
        (b >= 0 && !is_const(c, b)))
        return 0;
    const spw_conv_params *p = &n->p.conv;
    const int64_t *xd = val(c, x)->dims, *wd = val(c, w)->dims, *yd = val(c, y)->dims;
    const int64_t C = xd[1], KH = wd[2], KW = wd[3], cout_g = wd[1];
    const int64_t G = p->group > 0 ? p->group : 1;
    const int64_t cin_g = C / G, M = G * cout_g;
    const int sh = SPW_MAX(p->stride[0], 1), sw = SPW_MAX(p->stride[1], 1);
    const int dh = SPW_MAX(p->dilation[0], 1), dw = SPW_MAX(p->dilation[1], 1);
    const int adj_h = p->output_padding[0], adj_w = p->output_padding[1];
    /* Only when XNNPACK's output size is the one shape inference found. */
    if (sh * (xd[2] - 1) + adj_h + (KH - 1) * dh + 1 - p->pads[0] - p->pads[2] != yd[2] ||
        sw * (xd[3] - 1) + adj_w + (KW - 1) * dw + 1 - p->pads[1] - p->pads[3] != yd[3])
        return 0;
    /* ONNX [in][out/g][kh][kw] -> XNNPACK [group][out/g][kh][kw][in/g]. */
    const float *src = val(c, w)->data;
    float *packed = spw__malloc(sizeof(float) * (size_t)(M * KH * KW * cin_g));
    if (!packed)
        return spw__error(SPW_ENOMEM, "cpu-fast: no memory packing '%s'", n->name);
    for (int64_t g = 0; g < G; g++)
        for (int64_t o = 0; o < cout_g; o++)
            for (int64_t i = 0; i < cin_g; i++)
                for (int64_t k = 0; k < KH * KW; k++)
                    packed[((g * cout_g + o) * KH * KW + k) * cin_g + i] =
                        src[((g * cin_g + i) * cout_g + o) * KH * KW + k];
    float lo, hi;
    int clamps = clamp_run(n, 0, &lo, &hi);
    xnn_operator_t op = NULL;
    spw__fast_capture_begin();
    enum xnn_status st = xnn_create_deconvolution2d_nhwc_f32(
        (uint32_t)p->pads[0], (uint32_t)p->pads[3], (uint32_t)p->pads[2], (uint32_t)p->pads[1],
        (uint32_t)KH, (uint32_t)KW, (uint32_t)sh, (uint32_t)sw, (uint32_t)dh, (uint32_t)dw,
        (uint32_t)G, (size_t)cin_g, (size_t)cout_g, (size_t)C, (size_t)M, packed,
        b >= 0 ? val(c, b)->data : NULL, lo, hi, 0, &op);
    spw__fast_capture_end(c->fp->weights, st == xnn_status_success ? op : NULL, NULL, 0);
    spw__free(packed);
    if (st == xnn_status_success)
        st = xnn_setup_deconvolution2d_nhwc_f32(op, (size_t)xd[0], (size_t)xd[2], (size_t)xd[3],
                                                (uint32_t)adj_h, (uint32_t)adj_w, ptr(c, x),
                                                ptr(c, y), c->fp->pool);
    if (st != xnn_status_success) {
        if (op)
            xnn_delete_operator(op);
        if (st == xnn_status_out_of_memory)
            return xnn_oom(n);
        SPW_LOGD("cpu-fast: conv-transpose '%s' bridged (XNNPACK status %d)", n->name, (int)st);
        return 0;
    }
    *post_from = clamps;
    int rc = push_xnn(c, n, op);
    return rc ? rc : 1;
}

/* Gemm (no transposed A, C broadcast along rows) and MatMul by a constant
 * matrix: XNNPACK's fully connected operator over rows of A. */
static int emit_fully_connected(build_ctx *c, const spw_node *n, int *post_from)
{
    const int a = n->inputs[0], bw = n->inputs[1], y = n->outputs[0];
    if (a < 0 || is_const(c, a) || is_nhwc(c, a) || is_nhwc(c, y) || !is_const(c, bw) ||
        val(c, bw)->ndim != 2 || val(c, a)->ndim < 1)
        return 0;
    const spw_value *A = val(c, a), *B = val(c, bw);
    size_t K, N, rows;
    uint32_t flags = XNN_FLAG_TRANSPOSE_WEIGHTS; /* B as [K, N] */
    const spw_value *C = NULL;
    float alpha = 1.0f, beta = 1.0f;
    if (n->op == SPW_OP_GEMM) {
        const spw_gemm_params *p = &n->p.gemm;
        const int cv = n->n_inputs > 2 ? n->inputs[2] : -1;
        if (p->trans_a || A->ndim != 2)
            return 0;
        K = (size_t)A->dims[1];
        N = (size_t)(p->trans_b ? B->dims[0] : B->dims[1]);
        rows = (size_t)A->dims[0];
        if (p->trans_b)
            flags = 0;
        /* C must be one value per output column (or a scalar) to be a bias. */
        if (cv >= 0) {
            C = val(c, cv);
            int64_t cn = spw__value_numel(C);
            bool row = C->ndim <= 1 || (C->ndim == 2 && C->dims[0] == 1);
            if (!is_const(c, cv) || !(cn == 1 || (cn == (int64_t)N && row)))
                return 0;
        }
        alpha = p->alpha;
        beta = p->beta;
    } else {
        K = (size_t)A->dims[A->ndim - 1];
        N = (size_t)B->dims[1];
        if ((size_t)B->dims[0] != K || K == 0)
            return 0;
        rows = (size_t)spw__value_numel(A) / K;
    }
    float lo, hi;
    int clamps = clamp_run(n, 0, &lo, &hi);
    const int64_t key[] = {n->op,
                           (int64_t)K,
                           (int64_t)N,
                           flags,
                           (int64_t)(intptr_t)B->data,
                           fbits(alpha),
                           (int64_t)(intptr_t)(C ? C->data : NULL),
                           C ? spw__value_numel(C) : 0,
                           fbits(beta),
                           fbits(lo),
                           fbits(hi)};
    const bool keyed = stable(c, bw) && stable(c, n->n_inputs > 2 ? n->inputs[2] : -1);
    enum xnn_status st = xnn_status_success;
    xnn_operator_t op = keyed ? spw__fast_clone(c->fp->weights, key, sizeof(key)) : NULL;
    float *scaled = NULL, *bias = NULL;
    if (!op) {
        const float *kernel = B->data;
        if (C) {
            int64_t cn = spw__value_numel(C);
            bias = spw__malloc(sizeof(float) * N);
            if (!bias)
                return spw__error(SPW_ENOMEM, "cpu-fast: no memory packing '%s'", n->name);
            const float *cd = C->data;
            for (size_t j = 0; j < N; j++)
                bias[j] = beta * cd[cn == 1 ? 0 : j];
        }
        if (alpha != 1.0f) {
            scaled = spw__malloc(sizeof(float) * K * N);
            if (!scaled) {
                spw__free(bias);
                return spw__error(SPW_ENOMEM, "cpu-fast: no memory packing '%s'", n->name);
            }
            for (size_t i = 0; i < K * N; i++)
                scaled[i] = alpha * kernel[i];
            kernel = scaled;
        }
        spw__fast_capture_begin();
        st = xnn_create_fully_connected_nc_f32(K, N, K, N, kernel, bias, lo, hi, flags, &op);
        spw__fast_capture_end(c->fp->weights, st == xnn_status_success ? op : NULL,
                              keyed ? key : NULL, sizeof(key));
    }
    spw__free(bias);
    spw__free(scaled);
    if (st == xnn_status_success)
        st = xnn_setup_fully_connected_nc_f32(op, rows, ptr(c, a), ptr(c, y), c->fp->pool);
    if (st != xnn_status_success) {
        if (op)
            xnn_delete_operator(op);
        if (st == xnn_status_out_of_memory)
            return xnn_oom(n);
        SPW_LOGD("cpu-fast: '%s' bridged (XNNPACK status %d)", n->name, (int)st);
        return 0;
    }
    *post_from = clamps;
    int rc = push_xnn(c, n, op);
    return rc ? rc : 1;
}

static int emit_pool(build_ctx *c, const spw_node *n, int *post_from)
{
    const int x = n->inputs[0], y = n->outputs[0];
    if (!is_nhwc(c, x) || !is_nhwc(c, y))
        return 0;
    const spw_pool_params *p = &n->p.pool;
    const int64_t *xd = val(c, x)->dims, *yd = val(c, y)->dims;
    const int64_t C = xd[1], H = xd[2], W = xd[3], OH = yd[2], OW = yd[3];
    const int kh = p->kernel[0], kw = p->kernel[1];
    const int sh = SPW_MAX(p->stride[0], 1), sw = SPW_MAX(p->stride[1], 1);
    const int dh = SPW_MAX(p->dilation[0], 1), dw = SPW_MAX(p->dilation[1], 1);
    const bool declared_pads = p->pads[0] || p->pads[1] || p->pads[2] || p->pads[3];
    /* XNNPACK leaves padding out of both the max and the average's divisor;
     * counting it is only the same when there is none. */
    if (n->op == SPW_OP_AVG_POOL && (dh != 1 || dw != 1 || (p->count_include_pad && declared_pads)))
        return 0;
    /* ceil_mode: extra bottom/right padding reproduces the extra window. */
    int64_t pt = p->pads[0], pl = p->pads[1], pb = p->pads[2], pr = p->pads[3];
    const int64_t eh = (int64_t)(kh - 1) * dh + 1, ew = (int64_t)(kw - 1) * dw + 1;
    pb = SPW_MAX(pb, (OH - 1) * sh + eh - (H + pt));
    pr = SPW_MAX(pr, (OW - 1) * sw + ew - (W + pl));
    if (H + pt + pb < eh || W + pl + pr < ew || (H + pt + pb - eh) / sh + 1 != OH ||
        (W + pl + pr - ew) / sw + 1 != OW)
        return 0;
    float lo, hi;
    int clamps = clamp_run(n, 0, &lo, &hi);
    xnn_operator_t op = NULL;
    enum xnn_status st;
    if (n->op == SPW_OP_MAX_POOL) {
        st = xnn_create_max_pooling2d_nhwc_f32(
            (uint32_t)pt, (uint32_t)pr, (uint32_t)pb, (uint32_t)pl, (uint32_t)kh, (uint32_t)kw,
            (uint32_t)sh, (uint32_t)sw, (uint32_t)dh, (uint32_t)dw, (size_t)C, (size_t)C, (size_t)C,
            lo, hi, 0, &op);
        if (st == xnn_status_success)
            st = xnn_setup_max_pooling2d_nhwc_f32(op, (size_t)xd[0], (size_t)H, (size_t)W,
                                                  ptr(c, x), ptr(c, y), c->fp->pool);
    } else {
        st = xnn_create_average_pooling2d_nhwc_f32(
            (uint32_t)pt, (uint32_t)pr, (uint32_t)pb, (uint32_t)pl, (uint32_t)kh, (uint32_t)kw,
            (uint32_t)sh, (uint32_t)sw, (size_t)C, (size_t)C, (size_t)C, lo, hi, 0, &op);
        if (st == xnn_status_success)
            st = xnn_setup_average_pooling2d_nhwc_f32(op, (size_t)xd[0], (size_t)H, (size_t)W,
                                                      ptr(c, x), ptr(c, y), c->fp->pool);
    }
    if (st != xnn_status_success) {
        if (op)
            xnn_delete_operator(op);
        if (st == xnn_status_out_of_memory)
            return xnn_oom(n);
        SPW_LOGD("cpu-fast: pool '%s' bridged (XNNPACK status %d)", n->name, (int)st);
        return 0;
    }
    *post_from = clamps;
    int rc = push_xnn(c, n, op);
    return rc ? rc : 1;
}

static int emit_global_avg_pool(build_ctx *c, const spw_node *n, int *post_from)
{
    const int x = n->inputs[0], y = n->outputs[0];
    if (!is_nhwc(c, x))
        return 0;
    const int64_t *xd = val(c, x)->dims;
    const size_t C = (size_t)xd[1];
    float lo, hi;
    int clamps = clamp_run(n, 0, &lo, &hi);
    xnn_operator_t op = NULL;
    enum xnn_status st = xnn_create_global_average_pooling_nwc_f32(C, C, C, lo, hi, 0, &op);
    if (st == xnn_status_success)
        st = xnn_setup_global_average_pooling_nwc_f32(op, (size_t)xd[0], (size_t)(xd[2] * xd[3]),
                                                      ptr(c, x), ptr(c, y), c->fp->pool);
    if (st != xnn_status_success) {
        if (op)
            xnn_delete_operator(op);
        if (st == xnn_status_out_of_memory)
            return xnn_oom(n);
        return 0;
    }
    *post_from = clamps;
    int rc = push_xnn(c, n, op);
    return rc ? rc : 1;
}

/* Relu, Clip, LeakyRelu, Sigmoid, HardSwish as nodes of their own. */
static int emit_unary(build_ctx *c, const spw_node *n, int *post_from)
{
    const int x = n->inputs[0], y = n->outputs[0];
    if (is_const(c, x))
        return 0;
    const size_t cnt = (size_t)numel(c, y);
    const float *in = ptr(c, x);
    float *out = ptr(c, y);
    pthreadpool_t pool = c->fp->pool;
    xnn_operator_t op = NULL;
    enum xnn_status st;
    spw_post_op act;
    if (!spw__op_activation(n, &act))
        return 0;
    switch (act.kind) {
    case SPW_POST_RELU:
    case SPW_POST_CLIP: {
        float lo = act.kind == SPW_POST_RELU ? 0.0f : act.a;
        float hi = act.kind == SPW_POST_RELU ? INFINITY : act.b;
        if (!(lo < hi))
            return 0;
        st = xnn_create_clamp_nc_f32(cnt, cnt, cnt, lo, hi, 0, &op);
        if (st == xnn_status_success)
            st = xnn_setup_clamp_nc_f32(op, 1, in, out, pool);
        break;
    }
    case SPW_POST_LEAKY_RELU:
        st = xnn_create_leaky_relu_nc_f32(cnt, cnt, cnt, act.a, 0, &op);
        if (st == xnn_status_success)
            st = xnn_setup_leaky_relu_nc_f32(op, 1, in, out, pool);
        break;
    case SPW_POST_SIGMOID:
        st = xnn_create_sigmoid_nc_f32(cnt, cnt, cnt, 0, &op);
        if (st == xnn_status_success)
            st = xnn_setup_sigmoid_nc_f32(op, 1, in, out, pool);
        break;
    default:
        st = xnn_create_hardswish_nc_f32(cnt, cnt, cnt, 0, &op);
        if (st == xnn_status_success)
            st = xnn_setup_hardswish_nc_f32(op, 1, in, out, pool);
        break;
    }
    if (st != xnn_status_success) {
        if (op)
            xnn_delete_operator(op);
        if (st == xnn_status_out_of_memory)
            return xnn_oom(n);
        return 0;
    }
    *post_from = 0;
    int rc = push_xnn(c, n, op);
    return rc ? rc : 1;
}

/* The shape XNNPACK's nd binary ops should see for operand v of an output
 * of rank out_nd, in the output's storage order, and the data to give it.
 * False when the operand is not stored in that order (our loop takes it). */
static bool storage_operand(build_ctx *c, int v, int out_nd, size_t *shape, size_t *rank,
                            const float **data, int *rc)
{
    const spw_value *x = val(c, v);
    *rc = 0;
    if (out_nd == 4) {
        int64_t d[4] = {1, 1, 1, 1}; /* logical N, C, H, W after right alignment */
        for (int i = 0; i < x->ndim; i++)
            d[4 - x->ndim + i] = x->dims[i];
        shape[0] = (size_t)d[0];
        shape[1] = (size_t)d[2];
        shape[2] = (size_t)d[3];
        shape[3] = (size_t)d[1];
        *rank = 4;
        if (is_nhwc(c, v)) {
            *data = ptr(c, v);
            return true;
        }
        if (is_const(c, v)) {
            /* Constants are NCHW: store a padded NHWC copy. */
            const float *src = x->data;
            float *dst = new_block(c, sizeof(float) * (size_t)(d[0] * d[1] * d[2] * d[3]));
            if (!dst) {
                *rc = SPW_ENOMEM;
                return false;
            }
            for (int64_t nn = 0; nn < d[0]; nn++)
                for (int64_t ch = 0; ch < d[1]; ch++)
                    for (int64_t s = 0; s < d[2] * d[3]; s++)
                        dst[(nn * d[2] * d[3] + s) * d[1] + ch] =
                            src[(nn * d[1] + ch) * d[2] * d[3] + s];
            *data = dst;
            return true;
        }
        /* A lower-rank activation reads the same either way only when its
         * channel or its plane has one element. */
        *data = ptr(c, v);
        return d[1] == 1 || d[2] * d[3] == 1;
    }
    if (is_nhwc(c, v) || out_nd > XNN_MAX_TENSOR_DIMS)
        return false;
    *rank = x->ndim ? (size_t)x->ndim : 1;
    shape[0] = 1;
    for (int i = 0; i < x->ndim; i++)
        shape[i] = (size_t)x->dims[i];
    if (is_const(c, v)) {
        size_t bytes = sizeof(float) * (size_t)spw__value_numel(x);
        float *dst = new_block(c, bytes);
        if (!dst) {
            *rc = SPW_ENOMEM;
            return false;
        }
        memcpy(dst, x->data, bytes);
        *data = dst;
    } else {
        *data = ptr(c, v);
    }
    return true;
}

/* View of operand v broadcast to the output's logical dims. */
static void broadcast_view(build_ctx *c, int v, const fast_view *out, fast_view *w)
{
    fast_view own;
    view_of(c, v, &own);
    memset(w, 0, sizeof(*w));
    w->ndim = out->ndim;
    w->data = own.data;
    const int shift = out->ndim - own.ndim;
    for (int i = 0; i < out->ndim; i++) {
        w->dims[i] = out->dims[i];
        int j = i - shift;
        w->strides[i] = (j >= 0 && own.dims[j] != 1) ? own.strides[j] : 0;
    }
}

static int emit_binary(build_ctx *c, const spw_node *n, int *post_from)
{
    const int a = n->inputs[0], b = n->inputs[1], y = n->outputs[0];
    const int out_nd = val(c, y)->ndim;
    size_t sa[XNN_MAX_TENSOR_DIMS], sb[XNN_MAX_TENSOR_DIMS], ra = 0, rb = 0;
    const float *pa = NULL, *pb = NULL;
    int rc = 0;
    bool xnn_ok = out_nd <= XNN_MAX_TENSOR_DIMS &&
                  storage_operand(c, a, out_nd, sa, &ra, &pa, &rc) && !rc &&
                  storage_operand(c, b, out_nd, sb, &rb, &pb, &rc) && !rc;
    if (rc)
        return rc;
    if (xnn_ok) {
        float lo, hi;
        int clamps = clamp_run(n, 0, &lo, &hi);
        xnn_operator_t op = NULL;
        enum xnn_status st;
        if (n->op == SPW_OP_MUL) {
            st = xnn_create_multiply_nd_f32(lo, hi, 0, &op);
            if (st == xnn_status_success)
                st = xnn_setup_multiply_nd_f32(op, ra, sa, rb, sb, pa, pb, ptr(c, y), c->fp->pool);
        } else {
            st = xnn_create_add_nd_f32(lo, hi, 0, &op);
            if (st == xnn_status_success)
                st = xnn_setup_add_nd_f32(op, ra, sa, rb, sb, pa, pb, ptr(c, y), c->fp->pool);
        }
        if (st == xnn_status_success) {
            *post_from = clamps;
            rc = push_xnn(c, n, op);
            return rc ? rc : 1;
        }
        if (op)
            xnn_delete_operator(op);
        if (st == xnn_status_out_of_memory)
            return xnn_oom(n);
    }
    fast_action *act = new_action(c, n);
    if (!act)
        return SPW_ENOMEM;
    act->fn = spw__fast_binary;
    act->mode = n->op == SPW_OP_MUL;
    view_of(c, y, &act->view[0]);
    broadcast_view(c, a, &act->view[0], &act->view[1]);
    broadcast_view(c, b, &act->view[0], &act->view[2]);
    *post_from = 0;
    return 1;
}

/* GDN over pixels with the channel innermost: XNNPACK squares and applies
 * gamma as a fully connected layer with beta as its bias; our loop divides. */
static int emit_gdn(build_ctx *c, const spw_node *n, int *post_from)
{
    const int x = n->inputs[0], beta = n->inputs[1], gamma = n->inputs[2], y = n->outputs[0];
    const spw_value *X = val(c, x);
    if (!(is_nhwc(c, x) || (!is_const(c, x) && X->ndim == 2)) || !is_const(c, beta) ||
        !is_const(c, gamma))
        return 0;
    const size_t C = (size_t)X->dims[1], total = (size_t)numel(c, x), pixels = total / C;
    if ((size_t)numel(c, beta) != C || (size_t)numel(c, gamma) != C * C)
        return 0;
    float *sq = new_block(c, sizeof(float) * total);
    float *norm = new_block(c, sizeof(float) * total);
    if (!sq || !norm)
        return SPW_ENOMEM;
    xnn_operator_t op_sq = NULL, op_fc = NULL;
    enum xnn_status st = xnn_create_square_nc_f32(C, C, C, 0, &op_sq);
    if (st == xnn_status_success)
        st = xnn_setup_square_nc_f32(op_sq, pixels, ptr(c, x), sq, c->fp->pool);
    if (st == xnn_status_success) {
        spw__fast_capture_begin();
        st = xnn_create_fully_connected_nc_f32(C, C, C, C, val(c, gamma)->data, val(c, beta)->data,
                                               -INFINITY, INFINITY, 0, &op_fc);
        spw__fast_capture_end(c->fp->weights, st == xnn_status_success ? op_fc : NULL, NULL, 0);
    }
    if (st == xnn_status_success)
        st = xnn_setup_fully_connected_nc_f32(op_fc, pixels, sq, norm, c->fp->pool);
    if (st != xnn_status_success) {
        if (op_sq)
            xnn_delete_operator(op_sq);
        if (op_fc)
            xnn_delete_operator(op_fc);
        return st == xnn_status_out_of_memory ? xnn_oom(n) : 0;
    }
    int rc = push_xnn(c, n, op_sq);
    if (rc) {
        xnn_delete_operator(op_fc);
        return rc;
    }
    if ((rc = push_xnn(c, n, op_fc)))
        return rc;
    fast_action *a = new_action(c, n);
    if (!a)
        return SPW_ENOMEM;
    a->fn = spw__fast_gdn_finish;
    a->view[0].data = ptr(c, y);
    a->view[1].data = ptr(c, x);
    a->tmp = norm;
    a->inner = (int64_t)total;
    a->mode = n->p.gdn.inverse;
    *post_from = 0;
    return 1;
}

/* ---- our kernels --------------------------------------------------------- */

static int emit_batch_norm(build_ctx *c, const spw_node *n, int *post_from)
{
    const int x = n->inputs[0], y = n->outputs[0];
    if (is_const(c, x) || n->n_inputs < 5)
        return 0;
    fast_action probe;
    channel_split(c, x, &probe);
    const int64_t C = probe.channels;
    for (int k = 1; k < 5; k++)
        if (!is_const(c, n->inputs[k]) || numel(c, n->inputs[k]) != C)
            return 0;
    float *aux = new_block(c, sizeof(float) * (size_t)(3 * C));
    if (!aux)
        return SPW_ENOMEM;
    const float *scale = val(c, n->inputs[1])->data, *shift = val(c, n->inputs[2])->data;
    const float *mean = val(c, n->inputs[3])->data, *var = val(c, n->inputs[4])->data;
    for (int64_t ch = 0; ch < C; ch++) {
        aux[ch] = mean[ch];
        aux[C + ch] = (float)(scale[ch] / sqrt((double)var[ch] + n->p.bn.epsilon));
        aux[2 * C + ch] = shift[ch];
    }
    fast_action *a = new_action(c, n);
    if (!a)
        return SPW_ENOMEM;
    channel_split(c, x, a);
    a->fn = spw__fast_batch_norm;
    a->aux = aux;
    a->view[0].data = ptr(c, y);
    a->view[1].data = ptr(c, x);
    *post_from = 0;
    return 1;
}

static int emit_quantize(build_ctx *c, const spw_node *n, int *post_from)
{
    const int x = n->inputs[0], med = n->inputs[1], y = n->outputs[0];
    if (is_const(c, x) || med < 0)
        return 0;
    fast_action probe;
    channel_split(c, x, &probe);
    if (numel(c, med) != probe.channels)
        return 0;
    fast_action *a = new_action(c, n);
    if (!a)
        return SPW_ENOMEM;
    channel_split(c, x, a);
    a->fn = n->op == SPW_OP_QUANTIZE ? spw__fast_quantize : spw__fast_dequantize;
    a->aux = ptr(c, med);
    a->view[0].data = ptr(c, y);
    a->view[1].data = ptr(c, x);
    *post_from = 0;
    return 1;
}

static int emit_softmax(build_ctx *c, const spw_node *n, int *post_from)
{
    fast_action *a = new_action(c, n);
    if (!a)
        return SPW_ENOMEM;
    a->fn = spw__fast_softmax;
    view_of(c, n->outputs[0], &a->view[0]);
    view_of(c, n->inputs[0], &a->view[1]);
    *post_from = 0;
    return 1;
}

static int emit_pad(build_ctx *c, const spw_node *n, int *post_from)
{
    fast_action *a = new_action(c, n);
    if (!a)
        return SPW_ENOMEM;
    a->fn = spw__fast_pad;
    view_of(c, n->outputs[0], &a->view[0]);
    view_of(c, n->inputs[0], &a->view[1]);
    *post_from = 0;
    return 1;
}

static int emit_transpose(build_ctx *c, const spw_node *n, int *post_from)
{
    fast_view dst, src, perm;
    view_of(c, n->outputs[0], &dst);
    view_of(c, n->inputs[0], &src);
    perm = src;
    for (int i = 0; i < dst.ndim; i++) {
        perm.dims[i] = src.dims[n->p.transpose.perm[i]];
        perm.strides[i] = src.strides[n->p.transpose.perm[i]];
    }
    *post_from = 0;
    int rc = emit_copy(c, n, &dst, &perm);
    return rc ? rc : 1;
}

static int emit_concat(build_ctx *c, const spw_node *n, int *post_from)
{
    const int axis = n->p.axis.axis;
    fast_view out;
    view_of(c, n->outputs[0], &out);
    int64_t at = 0;
    for (int k = 0; k < n->n_inputs; k++) {
        int v = n->inputs[k];
        if (v < 0)
            continue;
        fast_view src, dst = out;
        view_of(c, v, &src);
        dst.dims[axis] = src.dims[axis];
        dst.data = (float *)out.data + at * out.strides[axis];
        at += src.dims[axis];
        int rc = emit_copy(c, n, &dst, &src);
        if (rc)
            return rc;
    }
    *post_from = 0;
    return 1;
}

/* Reshape, Flatten and Identity keep the logical row-major order; only a
 * 4-D activation on either side is stored otherwise and needs a walk. */
static int emit_reshape(build_ctx *c, const spw_node *n, int *post_from)
{
    const int x = n->inputs[0], y = n->outputs[0];
    const spw_value *X = val(c, x), *Y = val(c, y);
    fast_view dst, src;
    int rc;
    *post_from = 0;
    if (!is_nhwc(c, x) && !is_nhwc(c, y)) {
        fast_action *a = new_action(c, n);
        if (!a)
            return SPW_ENOMEM;
        a->fn = spw__fast_memcpy;
        a->view[0].data = ptr(c, y);
        a->view[1].data = ptr(c, x);
        a->inner = numel(c, y);
        return 1;
    }
    if (is_nhwc(c, x) && is_nhwc(c, y)) {
        bool same = true;
        for (int i = 0; i < 4; i++)
            same = same && X->dims[i] == Y->dims[i];
        if (same) {
            view_of(c, y, &dst);
            view_of(c, x, &src);
            rc = emit_copy(c, n, &dst, &src);
            return rc ? rc : 1;
        }
        /* Through an NCHW copy in scratch. */
        float *tmp = new_block(c, sizeof(float) * (size_t)numel(c, x));
        if (!tmp)
            return SPW_ENOMEM;
        rowmajor_view(&dst, tmp, 4, X->dims);
        view_of(c, x, &src);
        if ((rc = emit_copy(c, n, &dst, &src)))
            return rc;
        view_of(c, y, &dst);
        rowmajor_view(&src, tmp, 4, Y->dims);
        rc = emit_copy(c, n, &dst, &src);
        return rc ? rc : 1;
    }
    if (is_nhwc(c, x)) {
        rowmajor_view(&dst, ptr(c, y), 4, X->dims);
        view_of(c, x, &src);
    } else {
        view_of(c, y, &dst);
        rowmajor_view(&src, ptr(c, x), 4, Y->dims);
    }
    rc = emit_copy(c, n, &dst, &src);
    return rc ? rc : 1;
}

/* ---- the bridge ---------------------------------------------------------- */

/* Any op with a reference kernel: 4-D activations are copied to NCHW
 * scratch, the reference kernel runs, and a 4-D result is copied back. */
static int emit_bridge(build_ctx *c, const spw_node *n)
{
    const int y = n->outputs[0];
    const int n_in = n->n_inputs;
    spw_tensor *tin = new_block(c, sizeof(spw_tensor) * (size_t)(n_in ? n_in : 1));
    if (!tin)
        return SPW_ENOMEM;
    fast_view dst, src;
    int rc;
    for (int k = 0; k < n_in; k++) {
        int v = n->inputs[k];
        if (v < 0)
            continue;
        const spw_value *x = val(c, v);
        tin[k].dtype = x->dtype;
        tin[k].layout = SPW_LAYOUT_NCHW;
        tin[k].ndim = x->ndim;
        memcpy(tin[k].dims, x->dims, sizeof(tin[k].dims));
        tin[k].data = ptr(c, v);
        if (is_nhwc(c, v)) {
            tin[k].data = new_block(c, 4 * (size_t)numel(c, v));
            if (!tin[k].data)
                return SPW_ENOMEM;
            rowmajor_view(&dst, tin[k].data, 4, x->dims);
            view_of(c, v, &src);
            if ((rc = emit_copy(c, n, &dst, &src)))
                return rc;
        }
    }
    const spw_value *Y = val(c, y);
    void *out = ptr(c, y);
    if (is_nhwc(c, y)) {
        out = new_block(c, 4 * (size_t)numel(c, y));
        if (!out)
            return SPW_ENOMEM;
    }
    fast_action *a = new_action(c, n);
    if (!a)
        return SPW_ENOMEM;
    a->fn = spw__fast_bridge;
    a->ref_in = tin;
    a->n_ref_in = n_in;
    a->ref_out.dtype = Y->dtype;
    a->ref_out.ndim = Y->ndim;
    memcpy(a->ref_out.dims, Y->dims, sizeof(a->ref_out.dims));
    a->ref_out.data = out;
    if (is_nhwc(c, y)) {
        view_of(c, y, &dst);
        rowmajor_view(&src, out, 4, Y->dims);
        if ((rc = emit_copy(c, n, &dst, &src)))
            return rc;
    }
    SPW_LOGD("cpu-fast: node '%s' (%s) runs the reference kernel", n->name, spw__op_name(n->op));
    return 0;
}

/* The op table: one row per op of SPW_OP_LIST (docs/ADDING_AN_OP.md). An
 * emitter returns 1 when it took the node, 0 to leave it to the bridge
 * (emit_bridge: cpu-ref's kernel on NCHW copies), or an error. */
typedef int (*fast_emit)(build_ctx *c, const spw_node *n, int *post_from);
static const struct {
    spw_row_kind kind;
    fast_emit emit;
} fast_rows[SPW_OP_COUNT] = {
    [SPW_OP_INVALID] = {SPW_ROW_NONE, NULL},
    [SPW_OP_CONV] = {SPW_ROW_RUNS, emit_conv},
    [SPW_OP_CONV_TRANSPOSE] = {SPW_ROW_RUNS, emit_conv_transpose},
    [SPW_OP_RELU] = {SPW_ROW_RUNS, emit_unary},
    [SPW_OP_CLIP] = {SPW_ROW_RUNS, emit_unary},
    [SPW_OP_LEAKY_RELU] = {SPW_ROW_RUNS, emit_unary},
    [SPW_OP_SIGMOID] = {SPW_ROW_RUNS, emit_unary},
    [SPW_OP_HARD_SWISH] = {SPW_ROW_RUNS, emit_unary},
    [SPW_OP_ADD] = {SPW_ROW_RUNS, emit_binary},
    [SPW_OP_MUL] = {SPW_ROW_RUNS, emit_binary},
    [SPW_OP_CONCAT] = {SPW_ROW_RUNS, emit_concat},
    [SPW_OP_GLOBAL_AVG_POOL] = {SPW_ROW_RUNS, emit_global_avg_pool},
    [SPW_OP_AVG_POOL] = {SPW_ROW_RUNS, emit_pool},
    [SPW_OP_MAX_POOL] = {SPW_ROW_RUNS, emit_pool},
    [SPW_OP_GEMM] = {SPW_ROW_RUNS, emit_fully_connected},
    [SPW_OP_MATMUL] = {SPW_ROW_RUNS, emit_fully_connected},
    [SPW_OP_FLATTEN] = {SPW_ROW_RUNS, emit_reshape},
    [SPW_OP_RESHAPE] = {SPW_ROW_RUNS, emit_reshape},
    [SPW_OP_TRANSPOSE] = {SPW_ROW_RUNS, emit_transpose},
    [SPW_OP_BATCH_NORM] = {SPW_ROW_RUNS, emit_batch_norm},
    [SPW_OP_SOFTMAX] = {SPW_ROW_RUNS, emit_softmax},
    [SPW_OP_IDENTITY] = {SPW_ROW_RUNS, emit_reshape},
    [SPW_OP_PAD] = {SPW_ROW_RUNS, emit_pad},
    [SPW_OP_GDN] = {SPW_ROW_RUNS, emit_gdn},
    [SPW_OP_QUANTIZE] = {SPW_ROW_RUNS, emit_quantize},
    [SPW_OP_DEQUANTIZE] = {SPW_ROW_RUNS, emit_quantize},
};

spw_row_kind spw__fast_op_row(spw_op op)
{
    return (unsigned)op < SPW_OP_COUNT ? fast_rows[op].kind : SPW_ROW_MISSING;
}

static int emit_step(build_ctx *c, const spw_node *n)
{
    const int y = n->outputs[0];
    if (numel(c, y) == 0)
        return 0;
    const int mark = c->fp->n_acts;
    int post_from = 0, rc = 0;
    if ((unsigned)n->op < SPW_OP_COUNT && fast_rows[n->op].emit)
        rc = fast_rows[n->op].emit(c, n, &post_from);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        rollback(c, mark);
        post_from = 0;
        if ((rc = emit_bridge(c, n)))
            return rc;
    }
    if (post_from < n->n_post)
        return emit_posts(c, n, post_from, ptr(c, y), numel(c, y));
    return 0;
}

int spw__fast_build(spw_backend *be, spw_plan *plan, fast_plan *fp)
{
    (void)be;
    build_ctx c = {.plan = plan, .fp = fp, .g = plan->graph, .arena = plan->arena->host};
    for (int s = 0; s < plan->n_steps; s++) {
        const spw_node *n = &plan->graph->nodes[plan->steps[s]];
        c.step = s;
        int rc = emit_step(&c, n);
        if (rc < 0)
            return spw__error_context(rc, "cpu-fast: node '%s' (%s)", n->name, spw__op_name(n->op));
    }
    return 0;
}

void spw__fast_release(fast_plan *fp)
{
    for (int i = 0; i < fp->n_acts; i++)
        if (fp->acts[i].xop)
            xnn_delete_operator(fp->acts[i].xop);
    for (int i = 0; i < fp->n_inner_ops; i++)
        xnn_delete_operator(fp->inner_ops[i]);
    for (int i = 0; i < fp->n_blocks; i++)
        spw__aligned_free(fp->blocks[i]);
    spw__free(fp->inner_ops);
    fp->inner_ops = NULL;
    fp->n_inner_ops = 0;
    spw__free(fp->acts);
    spw__free(fp->blocks);
    fp->acts = NULL;
    fp->blocks = NULL;
    fp->n_acts = fp->n_blocks = 0;
}

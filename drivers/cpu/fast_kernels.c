/* cpu-fast's own kernels: what XNNPACK does not offer (data movement with
 * NCHW semantics over NHWC storage, Pad, Softmax on any axis, BatchNorm,
 * the quantiser, the GDN tail, broadcasting the XNNPACK binary ops cannot
 * take) and the bridge to a reference kernel for the rare remainder.
 * Operands were resolved at prepare time; nothing here checks or allocates. */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "drivers/cpu/fast_internal.h"

static int64_t view_numel(const fast_view *v)
{
    int64_t n = 1;
    for (int i = 0; i < v->ndim; i++)
        n *= v->dims[i];
    return n;
}

/* Advances idx over dims[0, nd) like an odometer; 0 after the last. */
static int next_index(int64_t *idx, const int64_t *dims, int nd)
{
    for (int i = nd - 1; i >= 0; i--) {
        if (++idx[i] < dims[i])
            return 1;
        idx[i] = 0;
    }
    return 0;
}

static int64_t offset_of(const int64_t *idx, const int64_t *strides, int nd)
{
    int64_t o = 0;
    for (int i = 0; i < nd; i++)
        o += idx[i] * strides[i];
    return o;
}

void spw__fast_copy(const fast_action *a)
{
    const fast_view *d = &a->view[0], *s = &a->view[1];
    const int nd = d->ndim;
    uint32_t *dp = d->data;
    const uint32_t *sp = s->data;
    if (view_numel(d) == 0)
        return;
    if (nd == 0) {
        dp[0] = sp[0];
        return;
    }
    /* The last axis is the inner loop; the others advance per row. */
    const int64_t n = d->dims[nd - 1], ds = d->strides[nd - 1], ss = s->strides[nd - 1];
    int64_t idx[SPW_MAX_DIMS] = {0};
    do {
        uint32_t *dr = dp + offset_of(idx, d->strides, nd - 1);
        const uint32_t *sr = sp + offset_of(idx, s->strides, nd - 1);
        if (ds == 1 && ss == 1) {
            memcpy(dr, sr, (size_t)n * 4);
        } else {
            for (int64_t j = 0; j < n; j++)
                dr[j * ds] = sr[j * ss];
        }
    } while (next_index(idx, d->dims, nd - 1));
}

void spw__fast_memcpy(const fast_action *a)
{
    if (a->view[0].data != a->view[1].data && a->inner)
        memmove(a->view[0].data, a->view[1].data, (size_t)a->inner * 4);
}

/* Source coordinate for output coordinate i shifted by the begin pad:
 * reflect mirrors without repeating the border, edge clamps, constant
 * answers -1 outside [0, n). */
static int64_t pad_source(int64_t i, int64_t n, spw_pad_mode mode)
{
    if (i >= 0 && i < n)
        return i;
    if (mode == SPW_PAD_EDGE)
        return i < 0 ? 0 : n - 1;
    if (mode == SPW_PAD_REFLECT) {
        if (n == 1)
            return 0;
        int64_t period = 2 * (n - 1);
        i %= period;
        if (i < 0)
            i += period;
        return i < n ? i : period - i;
    }
    return -1;
}

void spw__fast_pad(const fast_action *a)
{
    const spw_pad_params *p = &a->node->p.pad;
    const fast_view *d = &a->view[0], *s = &a->view[1];
    const int nd = d->ndim;
    float *dp = d->data;
    const float *sp = s->data;
    if (view_numel(d) == 0)
        return;
    int64_t idx[SPW_MAX_DIMS] = {0};
    do {
        int64_t src = 0;
        for (int i = 0; i < nd && src >= 0; i++) {
            int64_t begin = i < p->ndim ? p->pads[i] : 0;
            int64_t k = pad_source(idx[i] - begin, s->dims[i], p->mode);
            src = k < 0 ? -1 : src + k * s->strides[i];
        }
        dp[offset_of(idx, d->strides, nd)] = src < 0 ? p->value : sp[src];
    } while (next_index(idx, d->dims, nd));
}

/* Softmax along node's axis over strided views: shift by the row maximum so
 * exp cannot overflow; the sum in double keeps long rows exact enough. */
void spw__fast_softmax(const fast_action *a)
{
    const fast_view *d = &a->view[0], *s = &a->view[1];
    const int nd = d->ndim;
    const int axis = a->node->p.axis.axis;
    float *dp = d->data;
    const float *sp = s->data;
    if (view_numel(d) == 0)
        return;
    if (nd == 0) {
        dp[0] = 1.0f;
        return;
    }
    int64_t rows[SPW_MAX_DIMS];
    for (int i = 0; i < nd; i++)
        rows[i] = i == axis ? 1 : d->dims[i];
    const int64_t n = d->dims[axis], dstep = d->strides[axis], sstep = s->strides[axis];
    int64_t idx[SPW_MAX_DIMS] = {0};
    do {
        const float *x = sp + offset_of(idx, s->strides, nd);
        float *y = dp + offset_of(idx, d->strides, nd);
        float mx = -INFINITY;
        for (int64_t k = 0; k < n; k++)
            mx = x[k * sstep] > mx ? x[k * sstep] : mx;
        double sum = 0.0;
        for (int64_t k = 0; k < n; k++) {
            float e = expf(x[k * sstep] - mx);
            y[k * dstep] = e;
            sum += e;
        }
        const float inv = (float)(1.0 / sum);
        for (int64_t k = 0; k < n; k++)
            y[k * dstep] *= inv;
    } while (next_index(idx, rows, nd));
}

/* Add or Mul over views already broadcast to the output's dims (stride 0 on
 * repeated axes). Used where XNNPACK's nd ops cannot see the operands in
 * the output's storage order. */
void spw__fast_binary(const fast_action *a)
{
    const fast_view *d = &a->view[0], *x = &a->view[1], *y = &a->view[2];
    const int nd = d->ndim;
    float *dp = d->data;
    const float *xp = x->data, *yp = y->data;
    const int mul = a->mode;
    if (view_numel(d) == 0)
        return;
    if (nd == 0) {
        dp[0] = mul ? xp[0] * yp[0] : xp[0] + yp[0];
        return;
    }
    const int64_t n = d->dims[nd - 1];
    const int64_t ds = d->strides[nd - 1], xs = x->strides[nd - 1], ys = y->strides[nd - 1];
    int64_t idx[SPW_MAX_DIMS] = {0};
    do {
        float *dr = dp + offset_of(idx, d->strides, nd - 1);
        const float *xr = xp + offset_of(idx, x->strides, nd - 1);
        const float *yr = yp + offset_of(idx, y->strides, nd - 1);
        if (mul)
            for (int64_t j = 0; j < n; j++)
                dr[j * ds] = xr[j * xs] * yr[j * ys];
        else
            for (int64_t j = 0; j < n; j++)
                dr[j * ds] = xr[j * xs] + yr[j * ys];
    } while (next_index(idx, d->dims, nd - 1));
}

/* Residual add fused after an op: y = clamp(y + r, lo, hi), split across
 * the pool in tiles (XNNPACK's add of two equal shapes runs on one thread). */
#define ADD_TILE 8192

static void add_tile(void *ctx, size_t start, size_t count)
{
    const fast_action *a = ctx;
    float *y = (float *)a->view[0].data + start;
    const float *r = (const float *)a->view[1].data + start;
    const float lo = a->lo, hi = a->hi;
    if (a->mode) {
        for (size_t i = 0; i < count; i++) {
            float v = y[i] + r[i];
            v = v < lo ? lo : v;
            y[i] = v > hi ? hi : v;
        }
    } else {
        for (size_t i = 0; i < count; i++)
            y[i] += r[i];
    }
}

void spw__fast_add_inplace(const fast_action *a)
{
    pthreadpool_parallelize_1d_tile_1d(a->pool, add_tile, (void *)a, (size_t)a->inner, ADD_TILE, 0);
}

/* BatchNormalization over contiguous (outer, channels, inner) storage; aux
 * holds mean, then scale / sqrt(var + eps), then the shift, per channel. */
void spw__fast_batch_norm(const fast_action *a)
{
    const float *x = a->view[1].data;
    float *y = a->view[0].data;
    const int64_t C = a->channels, S = a->inner;
    const float *mean = a->aux, *k = a->aux + C, *b = a->aux + 2 * C;
    for (int64_t o = 0; o < a->outer; o++)
        for (int64_t c = 0; c < C; c++) {
            const float *xs = x + (o * C + c) * S;
            float *ys = y + (o * C + c) * S;
            for (int64_t s = 0; s < S; s++)
                ys[s] = (xs[s] - mean[c]) * k[c] + b[c];
        }
}

void spw__fast_quantize(const fast_action *a)
{
    const float *x = a->view[1].data, *median = a->aux;
    int32_t *q = a->view[0].data;
    const int64_t C = a->channels, S = a->inner;
    for (int64_t o = 0; o < a->outer; o++)
        for (int64_t c = 0; c < C; c++) {
            const int64_t base = (o * C + c) * S;
            for (int64_t s = 0; s < S; s++)
                q[base + s] = spw__round_i32(x[base + s] - median[c]);
        }
}

void spw__fast_dequantize(const fast_action *a)
{
    const int32_t *q = a->view[1].data;
    const float *median = a->aux;
    float *y = a->view[0].data;
    const int64_t C = a->channels, S = a->inner;
    for (int64_t o = 0; o < a->outer; o++)
        for (int64_t c = 0; c < C; c++) {
            const int64_t base = (o * C + c) * S;
            for (int64_t s = 0; s < S; s++)
                y[base + s] = (float)q[base + s] + median[c];
        }
}

/* GDN's last step: tmp holds beta + gamma @ x^2 per element (XNNPACK made
 * it); y = x / sqrt(tmp), or x * sqrt(tmp) for the inverse. */
void spw__fast_gdn_finish(const fast_action *a)
{
    const float *x = a->view[1].data, *t = a->tmp;
    float *y = a->view[0].data;
    const int64_t n = a->inner;
    if (a->mode)
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] * sqrtf(t[i]);
    else
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] / sqrtf(t[i]);
}

void spw__fast_bridge(const fast_action *a)
{
    spw_tensor out = a->ref_out;
    spw__ref_kernels[a->node->op](a->node, a->ref_in, a->n_ref_in, &out);
}

/* Post ops from index mode on, with the reference loops (used only when an
 * XNNPACK operator for them could not be made). */
void spw__fast_post_ref(const fast_action *a)
{
    spw_node sub = *a->node;
    spw_tensor out = a->ref_out;
    sub.n_post = a->node->n_post - a->mode;
    memmove(sub.post, a->node->post + a->mode, sizeof(sub.post[0]) * (size_t)sub.n_post);
    spw__ref_apply_post(&sub, &out, a->ref_in);
}

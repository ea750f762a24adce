/* Shape inference: dtype and dims of every computed value, with every
 * attribute checked against the shapes it meets.
 *
 * A dim of -1 is unknown: the free batch dim of an input when no batch is
 * bound, and whatever is computed from it. Checks that involve an unknown dim
 * are skipped; they run again when a plan binds the batch. Graph inputs may
 * leave only their leading dim free. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "runtime/graph/graph.h"

/* Largest dim and element count a tensor may have: far above any real model,
 * low enough that byte sizes and index arithmetic never overflow. */
#define MAX_DIM ((int64_t)INT32_MAX)
#define MAX_NUMEL ((int64_t)1 << 40)

typedef struct infer {
    spw_graph *g;
    spw_node *n;
} infer;

static int node_err(const infer *c, int status, const char *fmt, ...) SPW_PRINTF(3, 4);

static int node_err(const infer *c, int status, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return spw__error(status, "node '%s' (%s): %s", c->n->name, spw__op_name(c->n->op), msg);
}

#define DIMS(v, buf) spw__dims_str((v)->ndim, (v)->dims, (buf), sizeof(buf))

static bool is_float(spw_dtype t)
{
    return t == SPW_F32 || t == SPW_F16;
}

/* Input k, or NULL when absent or omitted. */
static const spw_value *in(const infer *c, int k)
{
    if (k >= c->n->n_inputs || c->n->inputs[k] < 0)
        return NULL;
    return &c->g->values[c->n->inputs[k]];
}

/* Product of dims[from, to): -1 when one is unknown, -2 on overflow. */
static int64_t dims_product(const int64_t *dims, int from, int to)
{
    int64_t p = 1;
    bool unknown = false;
    for (int i = from; i < to; i++) {
        if (dims[i] < 0)
            unknown = true;
        else if (__builtin_mul_overflow(p, dims[i], &p))
            return -2;
    }
    return unknown ? -1 : p;
}

/* Checks dims against the limits (unknown dims count as 1). */
static int check_size(const infer *c, const char *what, int ndim, const int64_t *dims)
{
    int64_t p = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < -1 || dims[i] > MAX_DIM || (dims[i] > 0 && p > MAX_NUMEL / dims[i])) {
            char buf[128];
            spw__dims_str(ndim, dims, buf, sizeof(buf));
            return c ? node_err(c, SPW_ESHAPE, "%s would be %s, beyond the size limit", what, buf)
                     : spw__error(SPW_ESHAPE, "%s is %s, beyond the size limit", what, buf);
        }
        if (dims[i] > 0)
            p *= dims[i];
    }
    return 0;
}

/* Sets the node's output; a shape declared in the file (or inferred before)
 * must agree, with -1 on either side matching anything. */
static int set_output(const infer *c, spw_dtype dtype, int ndim, const int64_t *dims)
{
    int rc = check_size(c, "the output", ndim, dims);
    if (rc)
        return rc;
    spw_value *v = &c->g->values[c->n->outputs[0]];
    bool ok = v->dtype == SPW_DTYPE_INVALID || v->dtype == dtype;
    if (ok && v->ndim >= 0) {
        ok = v->ndim == ndim;
        for (int i = 0; i < ndim && ok; i++)
            ok = v->dims[i] < 0 || dims[i] < 0 || v->dims[i] == dims[i];
    }
    if (!ok) {
        char want[128], got[128];
        spw__dims_str(v->ndim, v->dims, want, sizeof(want));
        spw__dims_str(ndim, dims, got, sizeof(got));
        return node_err(c, SPW_ESHAPE, "output '%s' is declared %s %s but computes to %s %s",
                        v->name, spw_dtype_name(v->dtype), want, spw_dtype_name(dtype), got);
    }
    v->dtype = dtype;
    v->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        v->dims[i] = dims[i];
    return 0;
}

static int same_shape_output(const infer *c, const spw_value *x)
{
    return set_output(c, x->dtype, x->ndim, x->dims);
}

static int need_float(const infer *c, int k, const spw_value *v)
{
    if (!is_float(v->dtype))
        return node_err(c, SPW_EUNSUPPORTED, "input %d '%s' is %s; only f32 and f16 are supported",
                        k, v->name, spw_dtype_name(v->dtype));
    return 0;
}

static int need_rank(const infer *c, int k, const spw_value *v, int rank)
{
    if (v->ndim != rank) {
        char buf[128];
        return node_err(c,
                        rank == 4 && (v->ndim == 3 || v->ndim == 5) ? SPW_EUNSUPPORTED : SPW_ESHAPE,
                        "input %d '%s' has shape %s; expected %d dims%s", k, v->name, DIMS(v, buf),
                        rank, rank == 4 ? " (N, C, H, W)" : "");
    }
    return 0;
}

/* A 1-D input of n elements (n < 0: not checked). */
static int need_vector(const infer *c, int k, const char *role, int64_t n)
{
    const spw_value *v = in(c, k);
    char buf[128];
    if (v->ndim != 1 || (n >= 0 && v->dims[0] >= 0 && v->dims[0] != n))
        return node_err(c, SPW_ESHAPE, "%s '%s' has shape %s; expected %lld values", role, v->name,
                        DIMS(v, buf), (long long)n);
    return 0;
}

static int norm_axis(const infer *c, int *axis, int rank, bool inclusive)
{
    int hi = inclusive ? rank : rank - 1;
    if (*axis < -rank || *axis > hi)
        return node_err(c, SPW_ESHAPE, "axis %d is out of range for %d dims", *axis, rank);
    if (*axis < 0)
        *axis += rank;
    return 0;
}

/* ---- windows: conv, conv-transpose, pools -------------------------------- */

/* One spatial axis of a window op: resolves auto_pad into explicit pads and
 * computes the output size (-1 when the input size is unknown). */
static int window_axis(const infer *c, int axis, int64_t in_size, int k, int s, int d,
                       spw_auto_pad ap, int ceil_mode, bool pool, int *pb, int *pe, int64_t *out)
{
    int64_t ek = (int64_t)(k - 1) * d + 1; /* dilated kernel extent */
    if (ap == SPW_AUTO_PAD_VALID)
        *pb = *pe = 0;
    if (in_size < 0) {
        if (ap == SPW_AUTO_PAD_SAME_UPPER || ap == SPW_AUTO_PAD_SAME_LOWER)
            return node_err(c, SPW_EUNSUPPORTED, "auto_pad SAME needs a known size on axis %d",
                            axis + 2);
        *out = -1;
        return 0;
    }
    if (ap == SPW_AUTO_PAD_SAME_UPPER || ap == SPW_AUTO_PAD_SAME_LOWER) {
        int64_t o = (in_size + s - 1) / s;
        int64_t total = SPW_MAX((o - 1) * s + ek - in_size, 0);
        if (total > INT_MAX)
            return node_err(c, SPW_ESHAPE, "padding on axis %d is too large", axis + 2);
        int half = (int)(total / 2), rest = (int)(total - total / 2);
        *pb = ap == SPW_AUTO_PAD_SAME_UPPER ? half : rest;
        *pe = ap == SPW_AUTO_PAD_SAME_UPPER ? rest : half;
    }
    if (pool && (*pb >= ek || *pe >= ek))
        return node_err(c, SPW_ESHAPE, "pads %d+%d on axis %d must be smaller than the kernel %lld",
                        *pb, *pe, axis + 2, (long long)ek);
    int64_t span = in_size + *pb + *pe;
    if (span < ek)
        return node_err(c, SPW_ESHAPE,
                        "kernel %d (dilated to %lld) does not fit axis %d of size %lld with pads "
                        "%d+%d",
                        k, (long long)ek, axis + 2, (long long)in_size, *pb, *pe);
    int64_t o = (span - ek) / s + 1;
    if (ceil_mode && (span - ek) % s) {
        o++;
        /* The last window must start inside the input or the leading pad. */
        if ((o - 1) * s >= in_size + *pb)
            o--;
    }
    *out = o;
    return 0;
}

static int check_window(const infer *c, const int *kernel, const int *stride, const int *dilation,
                        const int *pads, int group)
{
    for (int i = 0; i < 2; i++)
        if (kernel[i] < 1 || stride[i] < 1 || dilation[i] < 1 || kernel[i] > (1 << 20) ||
            stride[i] > (1 << 20) || dilation[i] > (1 << 20))
            return node_err(c, SPW_ESHAPE, "invalid kernel %dx%d, stride %dx%d or dilation %dx%d",
                            kernel[0], kernel[1], stride[0], stride[1], dilation[0], dilation[1]);
    for (int i = 0; i < 4; i++)
        if (pads[i] < 0 || pads[i] > (1 << 20))
            return node_err(c, SPW_ESHAPE, "pad %d is invalid", pads[i]);
    if (group < 1)
        return node_err(c, SPW_ESHAPE, "group %d is invalid", group);
    return 0;
}

static int infer_conv(const infer *c)
{
    spw_conv_params *p = &c->n->p.conv;
    const spw_value *x = in(c, 0), *w = in(c, 1), *b = in(c, 2);
    bool tr = c->n->op == SPW_OP_CONV_TRANSPOSE;
    char xs[128], ws[128];
    int rc;
    if ((rc = need_rank(c, 0, x, 4)) || (rc = need_rank(c, 1, w, 4)) ||
        (rc = need_float(c, 0, x)) || (rc = need_float(c, 1, w)))
        return rc;
    for (int i = 0; i < 2; i++) {
        if (p->kernel[i] == 0 && w->dims[2 + i] > 0 && w->dims[2 + i] <= (1 << 20))
            p->kernel[i] = (int)w->dims[2 + i];
        if (w->dims[2 + i] >= 0 && w->dims[2 + i] != p->kernel[i])
            return node_err(c, SPW_ESHAPE, "kernel_shape %dx%d does not match weight %s",
                            p->kernel[0], p->kernel[1], DIMS(w, ws));
    }
    if ((rc = check_window(c, p->kernel, p->stride, p->dilation, p->pads, p->group)))
        return rc;
    int64_t cin = x->dims[1], g = p->group, cout;
    if (!tr) {
        /* W is [Cout, Cin/group, kH, kW]. */
        if (w->dims[0] >= 0 && w->dims[0] % g)
            return node_err(c, SPW_ESHAPE,
                            "weight %s has %lld output channels, not divisible by "
                            "group %lld",
                            DIMS(w, ws), (long long)w->dims[0], (long long)g);
        if (cin >= 0 && w->dims[1] >= 0 && cin != w->dims[1] * g)
            return node_err(c, SPW_ESHAPE,
                            "input %s has %lld channels; weight %s with group %lld expects %lld",
                            DIMS(x, xs), (long long)cin, DIMS(w, ws), (long long)g,
                            (long long)(w->dims[1] * g));
        cout = w->dims[0];
    } else {
        /* W is [Cin, Cout/group, kH, kW]. */
        if (cin >= 0 && cin % g)
            return node_err(c, SPW_ESHAPE,
                            "input %s has %lld channels, not divisible by group "
                            "%lld",
                            DIMS(x, xs), (long long)cin, (long long)g);
        if (cin >= 0 && w->dims[0] >= 0 && cin != w->dims[0])
            return node_err(c, SPW_ESHAPE, "input %s has %lld channels; weight %s expects %lld",
                            DIMS(x, xs), (long long)cin, DIMS(w, ws), (long long)w->dims[0]);
        cout = w->dims[1] < 0 ? -1 : w->dims[1] * g;
    }
    if (b && (rc = need_vector(c, 2, "bias", cout)))
        return rc;

    int64_t out[4] = {x->dims[0], cout, 0, 0};
    for (int i = 0; i < 2; i++) {
        int *pb = &p->pads[i], *pe = &p->pads[2 + i];
        if (!tr) {
            rc = window_axis(c, i, x->dims[2 + i], p->kernel[i], p->stride[i], p->dilation[i],
                             p->auto_pad, 0, false, pb, pe, &out[2 + i]);
            if (rc)
                return rc;
            continue;
        }
        /* out = s*(in-1) + output_padding + dilated kernel - pads */
        int64_t s = p->stride[i], ek = (int64_t)(p->kernel[i] - 1) * p->dilation[i] + 1;
        int64_t op = p->output_padding[i], in_size = x->dims[2 + i];
        if (op < 0 || (op >= s && op >= p->dilation[i]))
            return node_err(c, SPW_ESHAPE,
                            "output_padding %lld must be smaller than the stride %lld or the "
                            "dilation %d",
                            (long long)op, (long long)s, p->dilation[i]);
        int64_t want = p->output_shape[i];
        if (!want &&
            (p->auto_pad == SPW_AUTO_PAD_SAME_UPPER || p->auto_pad == SPW_AUTO_PAD_SAME_LOWER))
            want = in_size < 0 ? -1 : in_size * s;
        if (p->auto_pad == SPW_AUTO_PAD_VALID)
            *pb = *pe = 0;
        if (in_size < 0) {
            if (want)
                return node_err(c, SPW_EUNSUPPORTED,
                                "output_shape/auto_pad needs a known size on axis %d", i + 2);
            out[2 + i] = -1;
            continue;
        }
        int64_t full = s * (in_size - 1) + op + ek;
        if (want) {
            /* Resolve the requested size into explicit pads, as ONNX does. */
            int64_t total = full - want;
            if (total < 0 || total > INT_MAX)
                return node_err(c, SPW_EUNSUPPORTED,
                                "output size %lld on axis %d would need padding %lld",
                                (long long)want, i + 2, (long long)total);
            int half = (int)(total / 2), rest = (int)(total - total / 2);
            bool upper = p->auto_pad == SPW_AUTO_PAD_SAME_UPPER;
            *pb = upper ? half : rest;
            *pe = upper ? rest : half;
        }
        out[2 + i] = full - *pb - *pe;
        if (out[2 + i] < 1)
            return node_err(c, SPW_ESHAPE, "pads %d+%d leave no output on axis %d (input %lld)",
                            *pb, *pe, i + 2, (long long)in_size);
    }
    p->auto_pad = SPW_AUTO_PAD_NOTSET;
    p->output_shape[0] = p->output_shape[1] = 0;
    return set_output(c, x->dtype, 4, out);
}

static int infer_pool(const infer *c)
{
    spw_pool_params *p = &c->n->p.pool;
    const spw_value *x = in(c, 0);
    int rc;
    if ((rc = need_rank(c, 0, x, 4)) || (rc = need_float(c, 0, x)) ||
        (rc = check_window(c, p->kernel, p->stride, p->dilation, p->pads, 1)))
        return rc;
    int64_t out[4] = {x->dims[0], x->dims[1], 0, 0};
    for (int i = 0; i < 2; i++)
        if ((rc = window_axis(c, i, x->dims[2 + i], p->kernel[i], p->stride[i], p->dilation[i],
                              p->auto_pad, p->ceil_mode, true, &p->pads[i], &p->pads[2 + i],
                              &out[2 + i])))
            return rc;
    p->auto_pad = SPW_AUTO_PAD_NOTSET;
    return set_output(c, x->dtype, 4, out);
}

/* ---- element-wise and matrix ops ----------------------------------------- */

/* ONNX multidirectional (numpy) broadcasting. */
static int broadcast(const infer *c, const spw_value *a, const spw_value *b, int *rank,
                     int64_t *out)
{
    int r = SPW_MAX(a->ndim, b->ndim);
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->ndim), ib = i - (r - b->ndim);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da == db || db == 1)
            out[i] = da;
        else if (da == 1)
            out[i] = db;
        else if (da < 0 || db < 0)
            out[i] = da < 0 ? db : da; /* the unknown side must match the known one */
        else {
            char as[128], bs[128];
            return node_err(c, SPW_ESHAPE, "cannot broadcast %s with %s (dim %d: %lld vs %lld)",
                            DIMS(a, as), DIMS(b, bs), i, (long long)da, (long long)db);
        }
    }
    *rank = r;
    return 0;
}

static int infer_binary(const infer *c)
{
    const spw_value *a = in(c, 0), *b = in(c, 1);
    bool fa = is_float(a->dtype), fb = is_float(b->dtype);
    if (fa != fb || (!fa && a->dtype != b->dtype))
        return node_err(c, SPW_EFORMAT, "inputs are %s and %s", spw_dtype_name(a->dtype),
                        spw_dtype_name(b->dtype));
    int64_t dims[SPW_MAX_DIMS];
    int r, rc = broadcast(c, a, b, &r, dims);
    if (rc)
        return rc;
    /* f16 activations with f32 constants (all float constants are f32)
     * keep the activation's type. */
    spw_dtype t =
        (a->flags & SPW_VALUE_CONST) && !(b->flags & SPW_VALUE_CONST) ? b->dtype : a->dtype;
    return set_output(c, t, r, dims);
}

static int infer_gemm(const infer *c)
{
    const spw_gemm_params *p = &c->n->p.gemm;
    const spw_value *a = in(c, 0), *b = in(c, 1), *bias = in(c, 2);
    char as[128], bs[128];
    int rc;
    if ((rc = need_rank(c, 0, a, 2)) || (rc = need_rank(c, 1, b, 2)) ||
        (rc = need_float(c, 0, a)) || (rc = need_float(c, 1, b)))
        return rc;
    int64_t m = a->dims[p->trans_a ? 1 : 0], ka = a->dims[p->trans_a ? 0 : 1];
    int64_t kb = b->dims[p->trans_b ? 1 : 0], n = b->dims[p->trans_b ? 0 : 1];
    if (ka >= 0 && kb >= 0 && ka != kb)
        return node_err(c, SPW_ESHAPE,
                        "A %s (transA=%d) and B %s (transB=%d) disagree on K: "
                        "%lld vs %lld",
                        DIMS(a, as), p->trans_a, DIMS(b, bs), p->trans_b, (long long)ka,
                        (long long)kb);
    int64_t out[2] = {m, n};
    if (bias) {
        /* C broadcasts one way only, onto [M, N]. */
        if (bias->ndim > 2 || !is_float(bias->dtype))
            return node_err(c, SPW_ESHAPE, "C '%s' must be a float tensor of at most 2 dims",
                            bias->name);
        for (int i = 0; i < bias->ndim; i++) {
            int64_t d = bias->dims[i], o = out[2 - bias->ndim + i];
            if (d != 1 && d >= 0 && o >= 0 && d != o)
                return node_err(c, SPW_ESHAPE, "C %s does not broadcast to %lldx%lld",
                                DIMS(bias, bs), (long long)m, (long long)n);
        }
    }
    return set_output(c, a->dtype, 2, out);
}

static int infer_matmul(const infer *c)
{
    const spw_value *a = in(c, 0), *b = in(c, 1);
    char as[128], bs[128];
    int rc;
    if ((rc = need_float(c, 0, a)) || (rc = need_float(c, 1, b)))
        return rc;
    if (a->ndim < 1 || b->ndim < 1)
        return node_err(c, SPW_ESHAPE, "inputs must have at least 1 dim, got %s and %s",
                        DIMS(a, as), DIMS(b, bs));
    /* numpy rules: a 1-D A is a row [1,K], a 1-D B a column [K,1]; the added
     * dim is dropped again. The leading dims broadcast. */
    spw_value ea = *a, eb = *b;
    if (a->ndim == 1)
        ea.ndim = 2, ea.dims[0] = 1, ea.dims[1] = a->dims[0];
    if (b->ndim == 1)
        eb.ndim = 2, eb.dims[0] = b->dims[0], eb.dims[1] = 1;
    int64_t ka = ea.dims[ea.ndim - 1], kb = eb.dims[eb.ndim - 2];
    if (ka >= 0 && kb >= 0 && ka != kb)
        return node_err(c, SPW_ESHAPE, "%s times %s: inner dims %lld and %lld differ", DIMS(a, as),
                        DIMS(b, bs), (long long)ka, (long long)kb);
    spw_value ba = ea, bb = eb;
    ba.ndim -= 2;
    bb.ndim -= 2;
    int64_t out[SPW_MAX_DIMS + 2];
    int r;
    if ((rc = broadcast(c, &ba, &bb, &r, out)))
        return rc;
    if (a->ndim > 1)
        out[r++] = ea.dims[ea.ndim - 2];
    if (b->ndim > 1)
        out[r++] = eb.dims[eb.ndim - 1];
    if (r > SPW_MAX_DIMS)
        return node_err(c, SPW_EUNSUPPORTED, "output would have %d dims", r);
    return set_output(c, a->dtype, r, out);
}

/* ---- data movement ------------------------------------------------------- */

static int infer_concat(const infer *c)
{
    const spw_value *x = in(c, 0);
    int *axis = &c->n->p.axis.axis, rc;
    if ((rc = norm_axis(c, axis, x->ndim, false)))
        return rc;
    int64_t out[SPW_MAX_DIMS];
    memcpy(out, x->dims, sizeof(int64_t) * (size_t)x->ndim);
    for (int k = 1; k < c->n->n_inputs; k++) {
        const spw_value *v = in(c, k);
        char xs[128], vs[128];
        if (!v)
            return node_err(c, SPW_EFORMAT, "input %d is missing", k);
        if (v->dtype != x->dtype && !(is_float(v->dtype) && is_float(x->dtype)))
            return node_err(c, SPW_EFORMAT, "input %d '%s' is %s, input 0 is %s", k, v->name,
                            spw_dtype_name(v->dtype), spw_dtype_name(x->dtype));
        bool ok = v->ndim == x->ndim;
        for (int i = 0; i < x->ndim && ok; i++)
            ok = i == *axis || v->dims[i] < 0 || x->dims[i] < 0 || v->dims[i] == x->dims[i];
        if (!ok)
            return node_err(c, SPW_ESHAPE,
                            "input %d '%s' %s does not match input 0 %s outside axis %d", k,
                            v->name, DIMS(v, vs), DIMS(x, xs), *axis);
        for (int i = 0; i < x->ndim; i++)
            if (out[i] < 0 && v->dims[i] >= 0 && i != *axis)
                out[i] = v->dims[i];
        if (out[*axis] < 0 || v->dims[*axis] < 0)
            out[*axis] = -1;
        else if (__builtin_add_overflow(out[*axis], v->dims[*axis], &out[*axis]) ||
                 out[*axis] > MAX_DIM)
            return node_err(c, SPW_ESHAPE, "concatenated axis is too large");
    }
    return set_output(c, x->dtype, x->ndim, out);
}

static int infer_flatten(const infer *c)
{
    const spw_value *x = in(c, 0);
    int *axis = &c->n->p.axis.axis, rc;
    if ((rc = norm_axis(c, axis, x->ndim, true)))
        return rc;
    int64_t out[2] = {dims_product(x->dims, 0, *axis), dims_product(x->dims, *axis, x->ndim)};
    if (out[0] < -1 || out[1] < -1)
        return node_err(c, SPW_ESHAPE, "element count overflows");
    return set_output(c, x->dtype, 2, out);
}

static int infer_reshape(const infer *c)
{
    const spw_value *x = in(c, 0);
    const int64_t *t = c->n->p.reshape.shape;
    int tn = c->n->p.reshape.ndim, az = c->n->p.reshape.allowzero;
    char xs[128], ts[128];
    int64_t out[SPW_MAX_DIMS];
    bool copied_in[SPW_MAX_DIMS] = {false};
    int infer_at = -1;
    if (tn < 0 || tn > SPW_MAX_DIMS)
        return node_err(c, SPW_ESHAPE, "target shape has %d dims", tn);
    /* The target as written: -1 and 0 are meaningful there. */
    ts[0] = '\0';
    for (int i = 0, used = 0; i < tn && used < (int)sizeof(ts); i++) {
        int w =
            snprintf(ts + used, sizeof(ts) - (size_t)used, "%s%lld", i ? "," : "", (long long)t[i]);
        used = w < 0 ? (int)sizeof(ts) : used + w;
    }
    for (int i = 0; i < tn; i++) {
        if (t[i] < -1 || t[i] > MAX_DIM)
            return node_err(c, SPW_ESHAPE, "shape[%d] = %lld is invalid", i, (long long)t[i]);
        if (t[i] == -1) {
            if (infer_at >= 0)
                return node_err(c, SPW_ESHAPE, "shape [%s] has more than one -1", ts);
            infer_at = i;
            out[i] = 1;
        } else if (t[i] == 0 && !az) {
            /* 0 copies the input dim at the same index. */
            if (i >= x->ndim)
                return node_err(c, SPW_ESHAPE, "shape[%d] = 0 copies a dim input %s lacks", i,
                                DIMS(x, xs));
            out[i] = x->dims[i];
            copied_in[i] = true;
        } else {
            out[i] = t[i];
        }
    }
    if (az && infer_at >= 0)
        for (int i = 0; i < tn; i++)
            if (t[i] == 0)
                return node_err(c, SPW_ESHAPE, "allowzero=1 with both 0 and -1 in shape [%s]", ts);
    /* Copied dims are equal on both sides and cancel out, so a copied
     * unknown batch dim still lets -1 be resolved. */
    int64_t have = 1, want = 1;
    bool have_unknown = false;
    for (int i = 0; i < x->ndim; i++) {
        if (copied_in[i])
            continue;
        if (x->dims[i] < 0)
            have_unknown = true;
        else if (__builtin_mul_overflow(have, x->dims[i], &have))
            return node_err(c, SPW_ESHAPE, "element count overflows");
    }
    for (int i = 0; i < tn; i++)
        if (i != infer_at && !(t[i] == 0 && !az) && __builtin_mul_overflow(want, out[i], &want))
            return node_err(c, SPW_ESHAPE, "shape [%s] overflows", ts);
    if (infer_at >= 0) {
        if (have_unknown)
            out[infer_at] = -1;
        else if (want == 0 || have % want)
            return node_err(c, SPW_ESHAPE, "cannot reshape %s into [%s]", DIMS(x, xs), ts);
        else
            out[infer_at] = have / want;
    } else if (!have_unknown && have != want) {
        return node_err(c, SPW_ESHAPE, "cannot reshape %s into [%s]: element counts differ",
                        DIMS(x, xs), ts);
    }
    return set_output(c, x->dtype, tn, out);
}

static int infer_transpose(const infer *c)
{
    const spw_value *x = in(c, 0);
    int *perm = c->n->p.transpose.perm, *np = &c->n->p.transpose.ndim;
    if (*np == 0 && x->ndim > 0) {
        *np = x->ndim; /* ONNX default: reverse the axes */
        for (int i = 0; i < x->ndim; i++)
            perm[i] = x->ndim - 1 - i;
    }
    if (*np != x->ndim)
        return node_err(c, SPW_ESHAPE, "perm has %d entries, input has %d dims", *np, x->ndim);
    unsigned seen = 0;
    int64_t out[SPW_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) {
        if (perm[i] < 0 || perm[i] >= x->ndim || (seen >> perm[i] & 1u))
            return node_err(c, SPW_ESHAPE, "perm is not a permutation of 0..%d", x->ndim - 1);
        seen |= 1u << perm[i];
        out[i] = x->dims[perm[i]];
    }
    return set_output(c, x->dtype, x->ndim, out);
}

static int infer_pad(const infer *c)
{
    const spw_value *x = in(c, 0);
    const spw_pad_params *p = &c->n->p.pad;
    char xs[128];
    if (p->ndim != x->ndim)
        return node_err(c, SPW_ESHAPE, "%d pads given for input %s; expected %d (2 per dim)",
                        2 * p->ndim, DIMS(x, xs), 2 * x->ndim);
    int64_t out[SPW_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) {
        int64_t b = p->pads[i], e = p->pads[x->ndim + i], d = x->dims[i];
        if (b < -MAX_DIM || b > MAX_DIM || e < -MAX_DIM || e > MAX_DIM)
            return node_err(c, SPW_ESHAPE, "pads on dim %d are out of range", i);
        if (d < 0) {
            out[i] = -1;
            continue;
        }
        out[i] = d + b + e;
        if (out[i] < 0)
            return node_err(c, SPW_ESHAPE, "pads %lld+%lld on dim %d of %s leave %lld elements",
                            (long long)b, (long long)e, i, DIMS(x, xs), (long long)out[i]);
        /* reflect mirrors without repeating the edge, so it needs pad < size;
         * edge needs an element to repeat. */
        if (p->mode == SPW_PAD_REFLECT && (b >= d || e >= d) && (b > 0 || e > 0))
            return node_err(c, SPW_ESHAPE, "reflect pads %lld+%lld need dim %d (%lld) larger",
                            (long long)b, (long long)e, i, (long long)d);
        if (p->mode == SPW_PAD_EDGE && d == 0 && (b > 0 || e > 0))
            return node_err(c, SPW_ESHAPE, "edge padding of the empty dim %d", i);
    }
    return set_output(c, x->dtype, x->ndim, out);
}

/* ---- normalisation and the splitwire ops --------------------------------- */

static int infer_batchnorm(const infer *c)
{
    const spw_value *x = in(c, 0);
    static const char *const roles[] = {"scale", "B", "mean", "var"};
    char xs[128];
    int rc;
    if (x->ndim < 2)
        return node_err(c, SPW_ESHAPE, "input %s needs at least 2 dims", DIMS(x, xs));
    if ((rc = need_float(c, 0, x)))
        return rc;
    for (int k = 1; k <= 4; k++)
        if ((rc = need_float(c, k, in(c, k))) || (rc = need_vector(c, k, roles[k - 1], x->dims[1])))
            return rc;
    return same_shape_output(c, x);
}

static int infer_gdn(const infer *c)
{
    const spw_value *x = in(c, 0), *gamma = in(c, 2);
    char gs[128];
    int rc;
    if ((rc = need_rank(c, 0, x, 4)) || (rc = need_float(c, 0, x)) ||
        (rc = need_float(c, 1, in(c, 1))) || (rc = need_float(c, 2, gamma)) ||
        (rc = need_vector(c, 1, "beta", x->dims[1])))
        return rc;
    int64_t ch = x->dims[1];
    if (gamma->ndim != 2 || (ch >= 0 && (gamma->dims[0] != ch || gamma->dims[1] != ch)))
        return node_err(c, SPW_ESHAPE, "gamma '%s' has shape %s; expected %lldx%lld", gamma->name,
                        DIMS(gamma, gs), (long long)ch, (long long)ch);
    if (c->n->p.gdn.inverse != 0 && c->n->p.gdn.inverse != 1)
        return node_err(c, SPW_ESHAPE, "inverse must be 0 or 1");
    return same_shape_output(c, x);
}

static int need_dtype(const infer *c, int k, spw_dtype t)
{
    const spw_value *v = in(c, k);
    if (v->dtype != t)
        return node_err(c, SPW_EFORMAT, "input %d '%s' is %s; expected %s", k, v->name,
                        spw_dtype_name(v->dtype), spw_dtype_name(t));
    return 0;
}

static int infer_quantize(const infer *c)
{
    const spw_value *y = in(c, 0);
    bool quant = c->n->op == SPW_OP_QUANTIZE;
    int rc;
    if ((rc = need_rank(c, 0, y, 4)) ||
        (rc = quant ? need_float(c, 0, y) : need_dtype(c, 0, SPW_I32)) ||
        (rc = need_dtype(c, 1, SPW_F32)) || (rc = need_vector(c, 1, "medians", y->dims[1])))
        return rc;
    if (!quant)
        return set_output(c, SPW_F32, y->ndim, y->dims);

    /* The coder's tables: all three or none. */
    int present = 0;
    for (int k = 2; k < 5; k++)
        present += in(c, k) != NULL;
    if (present != 0 && present != 3)
        return node_err(c, SPW_EFORMAT,
                        "quantized_cdf, cdf_length and offset must be given together");
    if (present) {
        const spw_value *cdf = in(c, 2), *len = in(c, 3);
        int64_t ch = y->dims[1];
        char cs[128];
        for (int k = 2; k < 5; k++)
            if ((rc = need_dtype(c, k, SPW_I32)))
                return rc;
        if (cdf->ndim != 2 || (ch >= 0 && cdf->dims[0] != ch) || cdf->dims[1] < 2)
            return node_err(c, SPW_ESHAPE,
                            "quantized_cdf '%s' has shape %s; expected %lldxL "
                            "with L >= 2",
                            cdf->name, DIMS(cdf, cs), (long long)ch);
        if ((rc = need_vector(c, 3, "cdf_length", ch)) || (rc = need_vector(c, 4, "offset", ch)))
            return rc;
        if ((len->flags & SPW_VALUE_CONST) && len->data) {
            const int32_t *l = len->data;
            for (int64_t i = 0; i < len->dims[0]; i++)
                if (l[i] < 2 || l[i] > cdf->dims[1])
                    return node_err(c, SPW_ESHAPE, "cdf_length[%lld] = %d is outside [2, %lld]",
                                    (long long)i, (int)l[i], (long long)cdf->dims[1]);
        }
    }
    return set_output(c, SPW_I32, y->ndim, y->dims);
}

static int infer_global_pool(const infer *c)
{
    const spw_value *x = in(c, 0);
    int rc = need_rank(c, 0, x, 4);
    if (rc || (rc = need_float(c, 0, x)))
        return rc;
    int64_t out[4] = {x->dims[0], x->dims[1], 1, 1};
    return set_output(c, x->dtype, 4, out);
}

static int infer_unary(const infer *c)
{
    const spw_value *x = in(c, 0);
    int rc = need_float(c, 0, x);
    return rc ? rc : same_shape_output(c, x);
}

static int infer_softmax(const infer *c)
{
    const spw_value *x = in(c, 0);
    int rc = need_float(c, 0, x);
    if (rc || (rc = norm_axis(c, &c->n->p.axis.axis, x->ndim, false)))
        return rc;
    return same_shape_output(c, x);
}

static int infer_identity(const infer *c)
{
    return same_shape_output(c, in(c, 0));
}

/* ---- driver -------------------------------------------------------------- */

/* One row per op of SPW_OP_LIST (docs/ADDING_AN_OP.md): the inputs it takes
 * (lo required and present, at most hi) and its rule. Parameter inputs that
 * import folds into the node (Clip's bounds, Reshape's shape, Pad's pads)
 * are tolerated. */
static const struct {
    int lo, hi;
    int (*rule)(const infer *c);
} shape_rows[SPW_OP_COUNT] = {
    [SPW_OP_CONV] = {2, 3, infer_conv},
    [SPW_OP_CONV_TRANSPOSE] = {2, 3, infer_conv},
    [SPW_OP_RELU] = {1, 1, infer_unary},
    [SPW_OP_CLIP] = {1, 3, infer_unary},
    [SPW_OP_LEAKY_RELU] = {1, 1, infer_unary},
    [SPW_OP_SIGMOID] = {1, 1, infer_unary},
    [SPW_OP_HARD_SWISH] = {1, 1, infer_unary},
    [SPW_OP_ADD] = {2, 2, infer_binary},
    [SPW_OP_MUL] = {2, 2, infer_binary},
    [SPW_OP_CONCAT] = {1, INT_MAX, infer_concat},
    [SPW_OP_GLOBAL_AVG_POOL] = {1, 1, infer_global_pool},
    [SPW_OP_AVG_POOL] = {1, 1, infer_pool},
    [SPW_OP_MAX_POOL] = {1, 1, infer_pool},
    [SPW_OP_GEMM] = {2, 3, infer_gemm},
    [SPW_OP_MATMUL] = {2, 2, infer_matmul},
    [SPW_OP_FLATTEN] = {1, 1, infer_flatten},
    [SPW_OP_RESHAPE] = {1, 2, infer_reshape},
    [SPW_OP_TRANSPOSE] = {1, 1, infer_transpose},
    [SPW_OP_BATCH_NORM] = {5, 5, infer_batchnorm},
    [SPW_OP_SOFTMAX] = {1, 1, infer_softmax},
    [SPW_OP_IDENTITY] = {1, 1, infer_identity},
    [SPW_OP_PAD] = {1, 4, infer_pad},
    [SPW_OP_GDN] = {3, 3, infer_gdn},
    [SPW_OP_QUANTIZE] = {2, 5, infer_quantize},
    [SPW_OP_DEQUANTIZE] = {2, 2, infer_quantize},
};

bool spw__shape_has_rule(spw_op op)
{
    return (unsigned)op < SPW_OP_COUNT && shape_rows[op].rule;
}

static int infer_node(const infer *c)
{
    const spw_node *n = c->n;
    if (!spw__shape_has_rule(n->op))
        return node_err(c, SPW_EUNSUPPORTED, "no shape inference for this op");
    const int lo = shape_rows[n->op].lo, hi = shape_rows[n->op].hi;
    if (n->n_outputs != 1)
        return node_err(c, SPW_EUNSUPPORTED, "has %d outputs; only 1 is supported", n->n_outputs);
    if (n->n_inputs < lo || n->n_inputs > hi)
        return node_err(c, SPW_EFORMAT, "has %d inputs; expected %d to %d", n->n_inputs, lo,
                        hi == INT_MAX ? n->n_inputs : hi);
    for (int k = 0; k < n->n_inputs; k++) {
        const spw_value *v = in(c, k);
        if (!v) {
            if (k < lo)
                return node_err(c, SPW_EFORMAT, "required input %d is missing", k);
            continue;
        }
        if (v->ndim < 0 || v->ndim > SPW_MAX_DIMS || v->dtype == SPW_DTYPE_INVALID)
            return node_err(c, SPW_ESHAPE, "input %d '%s' has no known shape", k, v->name);
    }
    return shape_rows[n->op].rule(c);
}

/* Binds the batch and checks what the graph's inputs declare. */
static int bind_inputs(spw_graph *g, int batch)
{
    for (int i = 0; i < g->n_inputs; i++) {
        int idx = g->inputs[i];
        if (idx < 0 || idx >= g->n_values)
            return spw__error(SPW_EFORMAT, "graph input %d is invalid", i);
        spw_value *v = &g->values[idx];
        if (v->ndim < 0 || v->ndim > SPW_MAX_DIMS || v->dtype == SPW_DTYPE_INVALID)
            return spw__error(SPW_EFORMAT, "graph input '%s' has no type or shape", v->name);
        for (int d = 0; d < v->ndim; d++) {
            if (v->dims[d] < 0 && d == 0 && batch > 0)
                v->dims[0] = batch;
            else if (v->dims[d] < 0 && d > 0)
                return spw__error(SPW_EUNSUPPORTED,
                                  "graph input '%s': dim %d is free; only the leading (batch) "
                                  "dim may be",
                                  v->name, d);
            else if (v->dims[d] == 0)
                return spw__error(SPW_ESHAPE, "graph input '%s': dim %d is 0", v->name, d);
        }
        int rc = check_size(NULL, v->name, v->ndim, v->dims);
        if (rc)
            return rc;
    }
    return 0;
}

int spw__graph_infer_shapes(spw_graph *g, int batch)
{
    int rc, count = 0;
    if ((rc = spw__graph_link(g)) || (rc = bind_inputs(g, batch)))
        return rc;
    int *order = spw__malloc(sizeof(int) * (size_t)(g->n_nodes ? g->n_nodes : 1));
    if (!order)
        return spw__error(SPW_ENOMEM, "out of memory for shape inference");
    if ((rc = spw__graph_topo_order(g, order, &count)))
        goto out;
    for (int i = 0; i < count && !rc; i++) {
        infer c = {g, &g->nodes[order[i]]};
        rc = infer_node(&c);
    }
out:
    spw__free(order);
    return rc;
}

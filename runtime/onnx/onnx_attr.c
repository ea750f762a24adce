/* Node attributes, and the constant inputs ONNX uses as parameters (Clip
 * min/max, Reshape shape, Pad pads/value), decoded into spw_op_params with
 * ONNX's defaults. Values are range-checked here; checks that need shapes
 * happen in shape inference. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "runtime/onnx/onnx_internal.h"

typedef Onnx__AttributeProto attr_t;

/* Window sizes, strides, dilations and pads beyond this are corrupt files,
 * and keeping them small keeps every later product inside int64. */
#define MAX_WINDOW (1 << 20)
#define MAX_GROUP (1 << 24)

#define NODE_FMT "node '%s' (%s): "
#define NODE_ARGS(nd) (nd)->name, (nd)->op_type

enum {
    A_UNDEF = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED,
    A_FLOAT = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT,
    A_INT = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT,
    A_STRING = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING,
    A_TENSOR = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR,
    A_GRAPH = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH,
    A_FLOATS = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS,
    A_INTS = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS,
    A_STRINGS = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS,
};

static const char *attr_type_name(int t)
{
    switch (t) {
    case A_FLOAT:
        return "FLOAT";
    case A_INT:
        return "INT";
    case A_STRING:
        return "STRING";
    case A_TENSOR:
        return "TENSOR";
    case A_GRAPH:
        return "GRAPH";
    case A_FLOATS:
        return "FLOATS";
    case A_INTS:
        return "INTS";
    case A_STRINGS:
        return "STRINGS";
    default:
        return "another type";
    }
}

/* Files from IR version 1 carry no type; infer it from the field in use. */
static int attr_type(const attr_t *a)
{
    if (a->has_type && (int)a->type != A_UNDEF)
        return (int)a->type;
    if (a->has_f)
        return A_FLOAT;
    if (a->has_i)
        return A_INT;
    if (a->has_s)
        return A_STRING;
    if (a->t)
        return A_TENSOR;
    if (a->g)
        return A_GRAPH;
    if (a->n_floats)
        return A_FLOATS;
    if (a->n_ints)
        return A_INTS;
    if (a->n_strings)
        return A_STRINGS;
    return A_UNDEF;
}

/* The attribute called name, NULL when absent; *rc is set when present with
 * the wrong type. */
static const attr_t *attr_find(const spw_onnx_node *nd, const char *name, int want, int *rc)
{
    *rc = 0;
    for (size_t i = 0; i < nd->np->n_attribute; i++) {
        const attr_t *a = nd->np->attribute[i];
        if (!a->name || strcmp(a->name, name))
            continue;
        int t = attr_type(a);
        if (t != want) {
            *rc = spw__error(SPW_EFORMAT, NODE_FMT "attribute '%s' must be %s, not %s",
                             NODE_ARGS(nd), name, attr_type_name(want), attr_type_name(t));
            return NULL;
        }
        return a;
    }
    return NULL;
}

static int get_int(const spw_onnx_node *nd, const char *name, int64_t def, int64_t lo, int64_t hi,
                   int64_t *out)
{
    int rc;
    const attr_t *a = attr_find(nd, name, A_INT, &rc);
    if (rc)
        return rc;
    int64_t v = a ? a->i : def;
    if (v < lo || v > hi)
        return spw__error(SPW_EFORMAT, NODE_FMT "attribute '%s' = %lld is outside [%lld, %lld]",
                          NODE_ARGS(nd), name, (long long)v, (long long)lo, (long long)hi);
    *out = v;
    return 0;
}

static int get_int32(const spw_onnx_node *nd, const char *name, int def, int lo, int hi, int *out)
{
    int64_t v = 0;
    int rc = get_int(nd, name, def, lo, hi, &v);
    if (!rc)
        *out = (int)v;
    return rc;
}

static int get_float(const spw_onnx_node *nd, const char *name, float def, float *out)
{
    int rc;
    const attr_t *a = attr_find(nd, name, A_FLOAT, &rc);
    if (rc)
        return rc;
    *out = a ? a->f : def;
    return 0;
}

/* A list of exactly n ints in [lo, hi] into dst; dst untouched when absent.
 * The spatial attributes are the only lists here, so a wrong length means a
 * 1-D or 3-D op, which is unsupported rather than malformed. */
static int get_ints(const spw_onnx_node *nd, const char *name, size_t n, int64_t lo, int64_t hi,
                    int *dst, bool *found)
{
    int rc;
    const attr_t *a = attr_find(nd, name, A_INTS, &rc);
    if (found)
        *found = a != NULL;
    if (rc || !a)
        return rc;
    if (a->n_ints != n)
        return spw__error(SPW_EUNSUPPORTED,
                          NODE_FMT "attribute '%s' has %zu values, expected %zu (only 2-D "
                                   "spatial ops are supported)",
                          NODE_ARGS(nd), name, a->n_ints, n);
    for (size_t i = 0; i < n; i++) {
        int64_t v = a->ints[i];
        if (v < lo || v > hi)
            return spw__error(SPW_EFORMAT,
                              NODE_FMT "attribute '%s'[%zu] = %lld is outside [%lld, %lld]",
                              NODE_ARGS(nd), name, i, (long long)v, (long long)lo, (long long)hi);
        dst[i] = (int)v;
    }
    return 0;
}

/* True when the STRING attribute a equals s. */
static bool str_is(const attr_t *a, const char *s)
{
    size_t n = strlen(s);
    return a->s.len == n && (n == 0 || !memcmp(a->s.data, s, n));
}

static int bad_string(const spw_onnx_node *nd, const attr_t *a, int status)
{
    int len = (int)SPW_MIN(a->s.len, 40);
    char shown[41];
    for (int i = 0; i < len; i++) {
        unsigned char c = a->s.data[i];
        shown[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    shown[len] = '\0';
    return spw__error(status, NODE_FMT "attribute '%s' value '%s' is not supported", NODE_ARGS(nd),
                      a->name, shown);
}

static int get_auto_pad(const spw_onnx_node *nd, spw_auto_pad *out)
{
    int rc;
    const attr_t *a = attr_find(nd, "auto_pad", A_STRING, &rc);
    if (rc)
        return rc;
    *out = SPW_AUTO_PAD_NOTSET;
    if (!a || str_is(a, "NOTSET") || str_is(a, ""))
        return 0;
    if (str_is(a, "SAME_UPPER"))
        *out = SPW_AUTO_PAD_SAME_UPPER;
    else if (str_is(a, "SAME_LOWER"))
        *out = SPW_AUTO_PAD_SAME_LOWER;
    else if (str_is(a, "VALID"))
        *out = SPW_AUTO_PAD_VALID;
    else
        return bad_string(nd, a, SPW_EFORMAT);
    return 0;
}

/* Attributes each op understands; others are ignored with a debug note. */
static const char *const conv_attrs[] = {"kernel_shape",   "strides",      "dilations",
                                         "pads",           "group",        "auto_pad",
                                         "output_padding", "output_shape", NULL};
static const char *const pool_attrs[] = {"kernel_shape",  "strides",           "dilations",
                                         "pads",          "ceil_mode",         "auto_pad",
                                         "storage_order", "count_include_pad", NULL};
static const char *const gemm_attrs[] = {"alpha", "beta", "transA", "transB", NULL};
static const char *const alpha_attrs[] = {"alpha", NULL};
static const char *const axis_attrs[] = {"axis", NULL};
static const char *const perm_attrs[] = {"perm", NULL};
static const char *const reshape_attrs[] = {"allowzero", NULL};
static const char *const pad_attrs[] = {"mode", NULL};
static const char *const bn_attrs[] = {"epsilon", "momentum", "training_mode", NULL};
static const char *const gdn_attrs[] = {"inverse", NULL};
static const char *const no_attrs[] = {NULL};

static void note_unknown(const spw_onnx_node *nd, const char *const *known)
{
    for (size_t i = 0; i < nd->np->n_attribute; i++) {
        const char *name = nd->np->attribute[i]->name ? nd->np->attribute[i]->name : "";
        bool ok = false;
        for (const char *const *k = known; *k && !ok; k++)
            ok = !strcmp(*k, name);
        if (!ok)
            SPW_LOGD(NODE_FMT "ignoring attribute '%s'", NODE_ARGS(nd), name);
    }
}

static int decode_conv(const spw_onnx_importer *im, spw_onnx_node *nd)
{
    spw_conv_params *c = &nd->p.conv;
    bool transpose = nd->op == SPW_OP_CONV_TRANSPOSE;
    int rc;
    c->stride[0] = c->stride[1] = 1;
    c->dilation[0] = c->dilation[1] = 1;
    /* kernel_shape stays 0 when absent: shape inference takes it from W. */
    if ((rc = get_ints(nd, "kernel_shape", 2, 1, MAX_WINDOW, c->kernel, NULL)) ||
        (rc = get_ints(nd, "strides", 2, 1, MAX_WINDOW, c->stride, NULL)) ||
        (rc = get_ints(nd, "dilations", 2, 1, MAX_WINDOW, c->dilation, NULL)) ||
        (rc = get_ints(nd, "pads", 4, 0, MAX_WINDOW, c->pads, NULL)) ||
        (rc = get_int32(nd, "group", 1, 1, MAX_GROUP, &c->group)) ||
        (rc = get_auto_pad(nd, &c->auto_pad)))
        return rc;
    if (!transpose)
        return 0;
    if ((rc = get_ints(nd, "output_padding", 2, 0, MAX_WINDOW, c->output_padding, NULL)))
        return rc;
    const attr_t *a = attr_find(nd, "output_shape", A_INTS, &rc);
    if (rc || !a)
        return rc;
    /* Spatial sizes only; a full N,C,H,W list is accepted for its last two. */
    if (a->n_ints != 2 && a->n_ints != 4)
        return spw__error(SPW_EUNSUPPORTED,
                          NODE_FMT "attribute 'output_shape' has %zu values, expected 2",
                          NODE_ARGS(nd), a->n_ints);
    for (int i = 0; i < 2; i++) {
        int64_t v = a->ints[a->n_ints - 2 + (size_t)i];
        if (v < 1 || v > SPW_ONNX_MAX_DIM)
            return spw__error(SPW_EFORMAT,
                              NODE_FMT "attribute 'output_shape' value %lld is invalid",
                              NODE_ARGS(nd), (long long)v);
        c->output_shape[i] = (int)v;
    }
    return 0;
}

static int decode_pool(const spw_onnx_importer *im, spw_onnx_node *nd)
{
    spw_pool_params *p = &nd->p.pool;
    bool have_kernel;
    int rc;
    p->stride[0] = p->stride[1] = 1;
    p->dilation[0] = p->dilation[1] = 1;
    if ((rc = get_ints(nd, "kernel_shape", 2, 1, MAX_WINDOW, p->kernel, &have_kernel)))
        return rc;
    if (!have_kernel)
        return spw__error(SPW_EFORMAT, NODE_FMT "attribute 'kernel_shape' is required",
                          NODE_ARGS(nd));
    if ((rc = get_ints(nd, "strides", 2, 1, MAX_WINDOW, p->stride, NULL)) ||
        (rc = get_ints(nd, "dilations", 2, 1, MAX_WINDOW, p->dilation, NULL)) ||
        (rc = get_ints(nd, "pads", 4, 0, MAX_WINDOW, p->pads, NULL)) ||
        (rc = get_int32(nd, "ceil_mode", 0, 0, 1, &p->ceil_mode)) ||
        (rc = get_auto_pad(nd, &p->auto_pad)))
        return rc;
    if (nd->op == SPW_OP_AVG_POOL)
        return get_int32(nd, "count_include_pad", 0, 0, 1, &p->count_include_pad);
    return 0;
}

/* Constant input k of the node, *out NULL when omitted. ONNX lets these be
 * computed tensors; a planner needs them fixed, so anything else is
 * unsupported. */
static int const_input(const spw_onnx_importer *im, const spw_onnx_node *nd, int k,
                       const char *role, const spw_value **out)
{
    *out = NULL;
    const Onnx__NodeProto *np = nd->np;
    if ((size_t)k >= np->n_input || !np->input[k] || !np->input[k][0])
        return 0;
    int v = spw__onnx_find(im, np->input[k]);
    if (v < 0 || !(im->g->values[v].flags & SPW_VALUE_CONST))
        return spw__error(SPW_EUNSUPPORTED,
                          NODE_FMT "input %d (%s) '%s' must be a constant (an initializer or "
                                   "a Constant node)",
                          NODE_ARGS(nd), k, role, np->input[k]);
    *out = &im->g->values[v];
    return 0;
}

static int scalar_f32(const spw_onnx_node *nd, const spw_value *v, const char *role, float *out)
{
    int64_t n = spw__value_numel(v);
    if (n != 1)
        return spw__error(SPW_EFORMAT, NODE_FMT "%s '%s' must hold one value, not %lld",
                          NODE_ARGS(nd), role, v->name, (long long)n);
    switch (v->dtype) {
    case SPW_F32:
        *out = *(const float *)v->data;
        return 0;
    case SPW_I8:
        *out = *(const int8_t *)v->data;
        return 0;
    case SPW_U8:
        *out = *(const uint8_t *)v->data;
        return 0;
    case SPW_I32:
        *out = (float)*(const int32_t *)v->data;
        return 0;
    case SPW_I64:
        *out = (float)*(const int64_t *)v->data;
        return 0;
    default:
        return spw__error(SPW_EFORMAT, NODE_FMT "%s '%s' has unsupported type %s", NODE_ARGS(nd),
                          role, v->name, spw_dtype_name(v->dtype));
    }
}

/* A 1-D INT64 constant of at most max values; *n receives its length. */
static int int64_list(const spw_onnx_node *nd, const spw_value *v, const char *role, int max,
                      int *n)
{
    if (v->dtype != SPW_I64 || v->ndim != 1)
        return spw__error(SPW_EFORMAT, NODE_FMT "%s '%s' must be a 1-D INT64 tensor", NODE_ARGS(nd),
                          role, v->name);
    if (v->dims[0] > max)
        return spw__error(SPW_EUNSUPPORTED, NODE_FMT "%s '%s' has %lld values (at most %d)",
                          NODE_ARGS(nd), role, v->name, (long long)v->dims[0], max);
    *n = (int)v->dims[0];
    return 0;
}

static int decode_clip(const spw_onnx_importer *im, spw_onnx_node *nd)
{
    const spw_value *lo, *hi;
    int rc;
    nd->p.clip.min = -INFINITY;
    nd->p.clip.max = INFINITY;
    if ((rc = const_input(im, nd, 1, "min", &lo)) || (rc = const_input(im, nd, 2, "max", &hi)) ||
        (lo && (rc = scalar_f32(nd, lo, "min", &nd->p.clip.min))) ||
        (hi && (rc = scalar_f32(nd, hi, "max", &nd->p.clip.max))))
        return rc;
    nd->n_keep = 1;
    return 0;
}

static int decode_reshape(const spw_onnx_importer *im, spw_onnx_node *nd)
{
    const spw_value *shape;
    int rc, n = 0;
    if ((rc = const_input(im, nd, 1, "shape", &shape)))
        return rc;
    if (!shape)
        return spw__error(SPW_EFORMAT, NODE_FMT "input 1 (shape) is missing", NODE_ARGS(nd));
    if ((rc = int64_list(nd, shape, "shape", SPW_MAX_DIMS, &n)) ||
        (rc = get_int32(nd, "allowzero", 0, 0, 1, &nd->p.reshape.allowzero)))
        return rc;
    const int64_t *s = shape->data;
    for (int i = 0; i < n; i++) {
        if (s[i] < -1 || s[i] > SPW_ONNX_MAX_DIM)
            return spw__error(SPW_EFORMAT, NODE_FMT "shape[%d] = %lld is invalid", NODE_ARGS(nd), i,
                              (long long)s[i]);
        nd->p.reshape.shape[i] = s[i];
    }
    nd->p.reshape.ndim = n;
    nd->n_keep = 1;
    return 0;
}

static int decode_pad(const spw_onnx_importer *im, spw_onnx_node *nd)
{
    spw_pad_params *p = &nd->p.pad;
    const spw_value *pads, *value;
    int rc, n = 0;
    const attr_t *mode = attr_find(nd, "mode", A_STRING, &rc);
    if (rc)
        return rc;
    if (!mode || str_is(mode, "constant"))
        p->mode = SPW_PAD_CONSTANT;
    else if (str_is(mode, "reflect"))
        p->mode = SPW_PAD_REFLECT;
    else if (str_is(mode, "edge"))
        p->mode = SPW_PAD_EDGE;
    else
        return bad_string(nd, mode, SPW_EUNSUPPORTED);
    if ((rc = const_input(im, nd, 1, "pads", &pads)) ||
        (rc = const_input(im, nd, 2, "constant_value", &value)))
        return rc;
    if ((size_t)3 < nd->np->n_input && nd->np->input[3] && nd->np->input[3][0])
        return spw__error(SPW_EUNSUPPORTED, NODE_FMT "the 'axes' input is not supported",
                          NODE_ARGS(nd));
    if (!pads)
        return spw__error(SPW_EFORMAT, NODE_FMT "input 1 (pads) is missing", NODE_ARGS(nd));
    if ((rc = int64_list(nd, pads, "pads", 2 * SPW_MAX_DIMS, &n)))
        return rc;
    if (n % 2)
        return spw__error(SPW_EFORMAT, NODE_FMT "pads '%s' has an odd count %d", NODE_ARGS(nd),
                          pads->name, n);
    const int64_t *s = pads->data;
    for (int i = 0; i < n; i++) {
        if (s[i] < -SPW_ONNX_MAX_DIM || s[i] > SPW_ONNX_MAX_DIM)
            return spw__error(SPW_EFORMAT, NODE_FMT "pads[%d] = %lld is out of range",
                              NODE_ARGS(nd), i, (long long)s[i]);
        p->pads[i] = s[i];
    }
    p->ndim = n / 2;
    p->value = 0.0f;
    if (value && (rc = scalar_f32(nd, value, "constant_value", &p->value)))
        return rc;
    nd->n_keep = 1;
    return 0;
}

static int decode_transpose(const spw_onnx_importer *im, spw_onnx_node *nd)
{
    int rc;
    const attr_t *a = attr_find(nd, "perm", A_INTS, &rc);
    if (rc || !a)
        return rc; /* ndim 0: reverse the axes, resolved by shape inference */
    if (a->n_ints > SPW_MAX_DIMS)
        return spw__error(SPW_EUNSUPPORTED, NODE_FMT "attribute 'perm' has %zu values (at most %d)",
                          NODE_ARGS(nd), a->n_ints, SPW_MAX_DIMS);
    for (size_t i = 0; i < a->n_ints; i++) {
        if (a->ints[i] < 0 || a->ints[i] >= (int64_t)a->n_ints)
            return spw__error(SPW_EFORMAT, NODE_FMT "attribute 'perm'[%zu] = %lld is out of range",
                              NODE_ARGS(nd), i, (long long)a->ints[i]);
        nd->p.transpose.perm[i] = (int)a->ints[i];
    }
    nd->p.transpose.ndim = (int)a->n_ints;
    return 0;
}

static int decode_gemm(const spw_onnx_importer *im, spw_onnx_node *nd)
{
    int rc;
    if ((rc = get_float(nd, "alpha", 1.0f, &nd->p.gemm.alpha)) ||
        (rc = get_float(nd, "beta", 1.0f, &nd->p.gemm.beta)) ||
        (rc = get_int32(nd, "transA", 0, 0, 1, &nd->p.gemm.trans_a)))
        return rc;
    return get_int32(nd, "transB", 0, 0, 1, &nd->p.gemm.trans_b);
}

static int decode_leaky_relu(const spw_onnx_importer *im, spw_onnx_node *nd)
{
    return get_float(nd, "alpha", 0.01f, &nd->p.leaky.alpha);
}

static int decode_concat(const spw_onnx_importer *im, spw_onnx_node *nd)
{
    int rc = 0;
    const attr_t *a = attr_find(nd, "axis", A_INT, &rc);
    if (!rc && !a)
        rc = spw__error(SPW_EFORMAT, NODE_FMT "attribute 'axis' is required", NODE_ARGS(nd));
    if (!rc)
        rc = get_int32(nd, "axis", 0, -SPW_MAX_DIMS, SPW_MAX_DIMS, &nd->p.axis.axis);
    return rc;
}

static int decode_flatten(const spw_onnx_importer *im, spw_onnx_node *nd)
{
    return get_int32(nd, "axis", 1, -SPW_MAX_DIMS, SPW_MAX_DIMS, &nd->p.axis.axis);
}

/* Opset 13 made Softmax act on one axis, default the last. */
static int decode_softmax(const spw_onnx_importer *im, spw_onnx_node *nd)
{
    return get_int32(nd, "axis", -1, -SPW_MAX_DIMS, SPW_MAX_DIMS, &nd->p.axis.axis);
}

static int decode_batch_norm(const spw_onnx_importer *im, spw_onnx_node *nd)
{
    int rc, training;
    if ((rc = get_float(nd, "epsilon", 1e-5f, &nd->p.bn.epsilon)) ||
        (rc = get_int32(nd, "training_mode", 0, 0, 1, &training)))
        return rc;
    if (training)
        return spw__error(SPW_EUNSUPPORTED, NODE_FMT "training_mode=1 is not supported",
                          NODE_ARGS(nd));
    return 0;
}

static int decode_gdn(const spw_onnx_importer *im, spw_onnx_node *nd)
{
    return get_int32(nd, "inverse", 0, 0, 1, &nd->p.gdn.inverse);
}

/* One row per op of SPW_OP_LIST (docs/ADDING_AN_OP.md): the attributes it
 * knows (others are noted and ignored) and its decoder, NULL for an op
 * without attributes or parameter inputs. */
static const struct {
    const char *const *known;
    int (*decode)(const spw_onnx_importer *im, spw_onnx_node *nd);
} attr_rows[SPW_OP_COUNT] = {
    [SPW_OP_CONV] = {conv_attrs, decode_conv},
    [SPW_OP_CONV_TRANSPOSE] = {conv_attrs, decode_conv},
    [SPW_OP_RELU] = {no_attrs, NULL},
    [SPW_OP_CLIP] = {no_attrs, decode_clip},
    [SPW_OP_LEAKY_RELU] = {alpha_attrs, decode_leaky_relu},
    [SPW_OP_SIGMOID] = {no_attrs, NULL},
    [SPW_OP_HARD_SWISH] = {no_attrs, NULL},
    [SPW_OP_ADD] = {no_attrs, NULL},
    [SPW_OP_MUL] = {no_attrs, NULL},
    [SPW_OP_CONCAT] = {axis_attrs, decode_concat},
    [SPW_OP_GLOBAL_AVG_POOL] = {no_attrs, NULL},
    [SPW_OP_AVG_POOL] = {pool_attrs, decode_pool},
    [SPW_OP_MAX_POOL] = {pool_attrs, decode_pool},
    [SPW_OP_GEMM] = {gemm_attrs, decode_gemm},
    [SPW_OP_MATMUL] = {no_attrs, NULL},
    [SPW_OP_FLATTEN] = {axis_attrs, decode_flatten},
    [SPW_OP_RESHAPE] = {reshape_attrs, decode_reshape},
    [SPW_OP_TRANSPOSE] = {perm_attrs, decode_transpose},
    [SPW_OP_BATCH_NORM] = {bn_attrs, decode_batch_norm},
    [SPW_OP_SOFTMAX] = {axis_attrs, decode_softmax},
    [SPW_OP_IDENTITY] = {no_attrs, NULL},
    [SPW_OP_PAD] = {pad_attrs, decode_pad},
    [SPW_OP_GDN] = {gdn_attrs, decode_gdn},
    [SPW_OP_QUANTIZE] = {no_attrs, NULL},
    [SPW_OP_DEQUANTIZE] = {no_attrs, NULL},
};

bool spw__onnx_has_attr_row(spw_op op)
{
    return (unsigned)op < SPW_OP_COUNT && attr_rows[op].known;
}

int spw__onnx_decode_params(const spw_onnx_importer *im, spw_onnx_node *nd)
{
    const char *const *known = no_attrs;
    int rc = 0;
    memset(&nd->p, 0, sizeof(nd->p));
    nd->n_keep = (int)SPW_MIN(nd->np->n_input, (size_t)INT32_MAX);
    if (spw__onnx_has_attr_row(nd->op)) {
        known = attr_rows[nd->op].known;
        if (attr_rows[nd->op].decode)
            rc = attr_rows[nd->op].decode(im, nd);
    }
    if (!rc)
        note_unknown(nd, known);
    return rc;
}

int spw__onnx_constant_value(const spw_onnx_node *nd, spw_onnx_tensor *out)
{
    static const struct {
        const char *name;
        int type;
    } forms[] = {{"value", A_TENSOR},  {"value_float", A_FLOAT}, {"value_floats", A_FLOATS},
                 {"value_int", A_INT}, {"value_ints", A_INTS},   {"sparse_value", -1},
                 {"value_string", -1}, {"value_strings", -1}};
    const attr_t *found = NULL;
    int found_type = 0;
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < nd->np->n_attribute; i++) {
        const attr_t *a = nd->np->attribute[i];
        const char *name = a->name ? a->name : "";
        size_t k = 0;
        while (k < SPW_ARRAY_SIZE(forms) && strcmp(forms[k].name, name))
            k++;
        if (k == SPW_ARRAY_SIZE(forms)) {
            SPW_LOGD(NODE_FMT "ignoring attribute '%s'", NODE_ARGS(nd), name);
            continue;
        }
        if (forms[k].type < 0)
            return spw__error(SPW_EUNSUPPORTED, NODE_FMT "attribute '%s' is not supported",
                              NODE_ARGS(nd), name);
        if (found)
            return spw__error(SPW_EFORMAT, NODE_FMT "has both '%s' and '%s'", NODE_ARGS(nd),
                              found->name, name);
        if (attr_type(a) != forms[k].type)
            return spw__error(SPW_EFORMAT, NODE_FMT "attribute '%s' must be %s, not %s",
                              NODE_ARGS(nd), name, attr_type_name(forms[k].type),
                              attr_type_name(attr_type(a)));
        found = a;
        found_type = forms[k].type;
    }
    if (!found)
        return spw__error(SPW_EFORMAT, NODE_FMT "has no value attribute", NODE_ARGS(nd));

    char what[160];
    size_t n = 1, elem;
    const void *src;
    switch (found_type) {
    case A_TENSOR:
        if (!found->t)
            return spw__error(SPW_EFORMAT, NODE_FMT "attribute 'value' holds no tensor",
                              NODE_ARGS(nd));
        snprintf(what, sizeof(what), NODE_FMT "value", NODE_ARGS(nd));
        return spw__onnx_tensor_decode(found->t, what, out);
    case A_FLOAT:
        out->dtype = SPW_F32, elem = sizeof(float), src = &found->f;
        break;
    case A_FLOATS:
        out->dtype = SPW_F32, elem = sizeof(float), src = found->floats, n = found->n_floats;
        break;
    case A_INT:
        out->dtype = SPW_I64, elem = sizeof(int64_t), src = &found->i;
        break;
    default:
        out->dtype = SPW_I64, elem = sizeof(int64_t), src = found->ints, n = found->n_ints;
        break;
    }
    if (found_type == A_FLOATS || found_type == A_INTS) {
        if (n > (size_t)SPW_ONNX_MAX_DIM)
            return spw__error(SPW_EUNSUPPORTED, NODE_FMT "value list is too long", NODE_ARGS(nd));
        out->ndim = 1;
        out->dims[0] = (int64_t)n;
    }
    out->data = spw__malloc(n * elem);
    if (!out->data)
        return spw__error(SPW_ENOMEM, NODE_FMT "out of memory", NODE_ARGS(nd));
    if (n)
        memcpy(out->data, src, n * elem);
    return 0;
}

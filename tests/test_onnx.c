/* ONNX import and shape inference. Models are built here with protobuf-c
 * (so malformed variants are easy to make) and a few come from
 * tests/vectors/onnx (written by tools/onnx_testgen.py with onnx.helper). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "onnx/onnx.pb-c.h"
#include "runtime/onnx/onnx_import.h"

/* ---- a scratch arena for the protobuf structures the tests build --------- */

static struct {
    void *p[16384];
    int n;
} arena;

static void *amem(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    assert_non_null(p);
    assert_true(arena.n < (int)(sizeof(arena.p) / sizeof(arena.p[0])));
    arena.p[arena.n++] = p;
    return p;
}

static char *astr(const char *s)
{
    char *d = amem(strlen(s) + 1);
    strcpy(d, s);
    return d;
}

static int arena_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < arena.n; i++)
        free(arena.p[i]);
    arena.n = 0;
    return 0;
}

/* ---- model builder ------------------------------------------------------- */

#define CAP 64
#define TF ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT
#define TF16 ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16
#define TF64 ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE
#define TI8 ONNX__TENSOR_PROTO__DATA_TYPE__INT8
#define TU8 ONNX__TENSOR_PROTO__DATA_TYPE__UINT8
#define TI32 ONNX__TENSOR_PROTO__DATA_TYPE__INT32
#define TI64 ONNX__TENSOR_PROTO__DATA_TYPE__INT64

/* DIMS(1, 3, 8, 8) -> count, array */
#define DIMS(...)                                                                \
    (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (const int64_t[]) \
    {                                                                            \
        __VA_ARGS__                                                              \
    }

typedef Onnx__ModelProto model_t;

static model_t *mb_new(int64_t opset)
{
    model_t *m = amem(sizeof(*m));
    onnx__model_proto__init(m);
    m->has_ir_version = 1;
    m->ir_version = 8;
    m->producer_name = astr("test_onnx");
    m->opset_import = amem(4 * sizeof(void *));
    const char *domains[] = {"", "ai.splitwire"};
    for (int i = 0; i < 2; i++) {
        Onnx__OperatorSetIdProto *o = amem(sizeof(*o));
        onnx__operator_set_id_proto__init(o);
        o->domain = astr(domains[i]);
        o->has_version = 1;
        o->version = i ? 1 : opset;
        m->opset_import[m->n_opset_import++] = o;
    }
    Onnx__GraphProto *g = amem(sizeof(*g));
    onnx__graph_proto__init(g);
    g->name = astr("g");
    g->node = amem(CAP * sizeof(void *));
    g->initializer = amem(CAP * sizeof(void *));
    g->input = amem(CAP * sizeof(void *));
    g->output = amem(CAP * sizeof(void *));
    m->graph = g;
    return m;
}

static Onnx__ValueInfoProto *vinfo(const char *name, int elem, int ndim, const int64_t *dims)
{
    Onnx__ValueInfoProto *vi = amem(sizeof(*vi));
    onnx__value_info_proto__init(vi);
    vi->name = astr(name);
    if (elem < 0)
        return vi;
    Onnx__TypeProto *tp = amem(sizeof(*tp));
    Onnx__TypeProto__Tensor *tt = amem(sizeof(*tt));
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    tt->has_elem_type = 1;
    tt->elem_type = elem;
    vi->type = tp;
    if (ndim < 0)
        return vi;
    Onnx__TensorShapeProto *sh = amem(sizeof(*sh));
    onnx__tensor_shape_proto__init(sh);
    sh->dim = amem((size_t)(ndim ? ndim : 1) * sizeof(void *));
    sh->n_dim = (size_t)ndim;
    for (int i = 0; i < ndim; i++) {
        Onnx__TensorShapeProto__Dimension *d = amem(sizeof(*d));
        onnx__tensor_shape_proto__dimension__init(d);
        if (dims[i] >= 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[i];
        } else if (dims[i] == -1) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = astr("N");
        } /* -2: a dim with neither */
        sh->dim[i] = d;
    }
    tt->shape = sh;
    return vi;
}

static void g_input(model_t *m, const char *name, int elem, int ndim, const int64_t *dims)
{
    m->graph->input[m->graph->n_input++] = vinfo(name, elem, ndim, dims);
}

static void g_output(model_t *m, const char *name, int elem, int ndim, const int64_t *dims)
{
    m->graph->output[m->graph->n_output++] = vinfo(name, elem, ndim, dims);
}

/* A tensor with dims and no data yet. */
static Onnx__TensorProto *tensor(const char *name, int type, int ndim, const int64_t *dims)
{
    Onnx__TensorProto *t = amem(sizeof(*t));
    onnx__tensor_proto__init(t);
    t->name = astr(name);
    t->has_data_type = 1;
    t->data_type = type;
    t->dims = amem((size_t)(ndim ? ndim : 1) * sizeof(int64_t));
    t->n_dims = (size_t)ndim;
    for (int i = 0; i < ndim; i++)
        t->dims[i] = dims[i];
    return t;
}

static void set_raw(Onnx__TensorProto *t, const void *data, size_t len)
{
    t->has_raw_data = 1;
    t->raw_data.data = amem(len);
    t->raw_data.len = len;
    memcpy(t->raw_data.data, data, len);
}

static int64_t count(int ndim, const int64_t *dims)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= dims[i];
    return n;
}

static void g_init(model_t *m, Onnx__TensorProto *t)
{
    m->graph->initializer[m->graph->n_initializer++] = t;
}

/* f32 initializer in raw_data filled with a ramp (values are irrelevant to
 * shapes; the ramp makes conversions checkable). */
static Onnx__TensorProto *init_f32(model_t *m, const char *name, int ndim, const int64_t *dims)
{
    Onnx__TensorProto *t = tensor(name, TF, ndim, dims);
    int64_t n = count(ndim, dims);
    float *v = amem((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        v[i] = (float)i * 0.5f;
    set_raw(t, v, (size_t)n * sizeof(float));
    g_init(m, t);
    return t;
}

static Onnx__TensorProto *init_f32_val(model_t *m, const char *name, int ndim, const int64_t *dims,
                                       float value)
{
    Onnx__TensorProto *t = tensor(name, TF, ndim, dims);
    t->n_float_data = (size_t)count(ndim, dims);
    t->float_data = amem(t->n_float_data * sizeof(float));
    for (size_t i = 0; i < t->n_float_data; i++)
        t->float_data[i] = value;
    g_init(m, t);
    return t;
}

static Onnx__TensorProto *init_i64(model_t *m, const char *name, int n, const int64_t *vals)
{
    int64_t dims[1] = {n};
    Onnx__TensorProto *t = tensor(name, TI64, 1, dims);
    t->n_int64_data = (size_t)n;
    t->int64_data = amem((size_t)(n ? n : 1) * sizeof(int64_t));
    memcpy(t->int64_data, vals, (size_t)n * sizeof(int64_t));
    g_init(m, t);
    return t;
}

static Onnx__TensorProto *init_i32(model_t *m, const char *name, int ndim, const int64_t *dims,
                                   int32_t value)
{
    Onnx__TensorProto *t = tensor(name, TI32, ndim, dims);
    t->n_int32_data = (size_t)count(ndim, dims);
    t->int32_data = amem(t->n_int32_data * sizeof(int32_t));
    for (size_t i = 0; i < t->n_int32_data; i++)
        t->int32_data[i] = value;
    g_init(m, t);
    return t;
}

/* "a,,b" -> {"a", "", "b"}; "" -> none. */
static size_t split(const char *list, char ***out)
{
    size_t n = *list ? 1 : 0;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    char **v = amem((n ? n : 1) * sizeof(char *));
    const char *p = list;
    for (size_t i = 0; i < n; i++) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        v[i] = amem(len + 1);
        memcpy(v[i], p, len);
        p += len + 1;
    }
    *out = v;
    return n;
}

static Onnx__NodeProto *node(model_t *m, const char *op, const char *name, const char *ins,
                             const char *outs)
{
    Onnx__NodeProto *n = amem(sizeof(*n));
    onnx__node_proto__init(n);
    n->op_type = astr(op);
    if (name)
        n->name = astr(name);
    if (!strcmp(op, "GDN") || !strcmp(op, "Quantize") || !strcmp(op, "Dequantize"))
        n->domain = astr("ai.splitwire");
    n->n_input = split(ins, &n->input);
    n->n_output = split(outs, &n->output);
    n->attribute = amem(16 * sizeof(void *));
    m->graph->node[m->graph->n_node++] = n;
    return n;
}

static Onnx__AttributeProto *attr(Onnx__NodeProto *n, const char *name,
                                  Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto *a = amem(sizeof(*a));
    onnx__attribute_proto__init(a);
    a->name = astr(name);
    a->has_type = 1;
    a->type = type;
    n->attribute[n->n_attribute++] = a;
    return a;
}

static void a_int(Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}

static void a_float(Onnx__NodeProto *n, const char *name, float v)
{
    Onnx__AttributeProto *a = attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = v;
}

static void a_ints(Onnx__NodeProto *n, const char *name, int cnt, const int64_t *v)
{
    Onnx__AttributeProto *a = attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = (size_t)cnt;
    a->ints = amem((size_t)(cnt ? cnt : 1) * sizeof(int64_t));
    memcpy(a->ints, v, (size_t)cnt * sizeof(int64_t));
}

static void a_floats(Onnx__NodeProto *n, const char *name, int cnt, const float *v)
{
    Onnx__AttributeProto *a = attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);
    a->n_floats = (size_t)cnt;
    a->floats = amem((size_t)(cnt ? cnt : 1) * sizeof(float));
    memcpy(a->floats, v, (size_t)cnt * sizeof(float));
}

static void a_str(Onnx__NodeProto *n, const char *name, const char *s)
{
    Onnx__AttributeProto *a = attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1;
    a->s.len = strlen(s);
    a->s.data = (uint8_t *)astr(s);
}

static void a_tensor(Onnx__NodeProto *n, const char *name, Onnx__TensorProto *t)
{
    Onnx__AttributeProto *a = attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    a->t = t;
}

static uint8_t *pack(const model_t *m, size_t *size)
{
    *size = onnx__model_proto__get_packed_size(m);
    uint8_t *buf = amem(*size);
    assert_int_equal(onnx__model_proto__pack(m, buf), *size);
    return buf;
}

/* SPW_ONNX_DUMP=dir writes every model the tests build there (a fuzzing corpus). */
static void dump(const uint8_t *buf, size_t size)
{
    static int serial;
    const char *dir = getenv("SPW_ONNX_DUMP");
    if (!dir)
        return;
    char path[512];
    snprintf(path, sizeof(path), "%s/model_%04d.onnx", dir, serial++);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(buf, 1, size, f);
        fclose(f);
    }
}

static int import(const model_t *m, spw_graph **g)
{
    size_t size;
    uint8_t *buf = pack(m, &size);
    dump(buf, size);
    return spw__onnx_import(buf, size, g);
}

/* Import, link and infer at batch; *g is NULL on failure. */
static int load(const model_t *m, int batch, spw_graph **g)
{
    int rc = import(m, g);
    if (rc)
        return rc;
    if ((rc = spw__graph_link(*g)) || (rc = spw__graph_infer_shapes(*g, batch))) {
        spw__graph_free(*g);
        *g = NULL;
    }
    return rc;
}

static void expect_fail(const model_t *m, int batch, int status, const char *needle)
{
    spw_graph *g = NULL;
    int rc = load(m, batch, &g);
    if (rc != status || !strstr(spw_error_detail(), needle))
        fail_msg("expected %s containing \"%s\", got %s: %s", spw_err_name(status), needle,
                 spw_err_name(rc), spw_error_detail());
    assert_null(g);
}

static spw_graph *expect_ok(const model_t *m, int batch)
{
    spw_graph *g = NULL;
    int rc = load(m, batch, &g);
    if (rc)
        fail_msg("load failed: %s: %s", spw_err_name(rc), spw_error_detail());
    return g;
}

static const spw_value *val(const spw_graph *g, const char *name)
{
    int v = spw__graph_find_value(g, name);
    if (v < 0)
        fail_msg("no value '%s'", name);
    return &g->values[v];
}

static const spw_node *find_node(const spw_graph *g, const char *name)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].name, name))
            return &g->nodes[i];
    fail_msg("no node '%s'", name);
    return NULL;
}

static void expect_dims(const spw_graph *g, const char *name, int ndim, const int64_t *dims)
{
    const spw_value *v = val(g, name);
    char want[128], got[128];
    spw__dims_str(ndim, dims, want, sizeof(want));
    spw__dims_str(v->ndim, v->dims, got, sizeof(got));
    if (strcmp(want, got))
        fail_msg("value '%s': expected %s, got %s", name, want, got);
}

/* x[N,3,8,8] -> op -> y, the usual harness for one-op tests. */
static model_t *one_input(int64_t opset, int ndim, const int64_t *dims)
{
    model_t *m = mb_new(opset);
    g_input(m, "x", TF, ndim, dims);
    g_output(m, "y", TF, -1, NULL);
    return m;
}

/* ---- tests --------------------------------------------------------------- */

static void test_conv_basic(void **state)
{
    (void)state;
    model_t *m = mb_new(13);
    g_input(m, "x", TF, DIMS(-1, 3, 8, 8));
    g_output(m, "y", TF, DIMS(-1, 4, 8, 8));
    init_f32(m, "w", DIMS(4, 3, 3, 3));
    init_f32(m, "b", DIMS(4));
    Onnx__NodeProto *c = node(m, "Conv", "c1", "x,w,b", "h");
    a_ints(c, "pads", DIMS(1, 1, 1, 1));
    node(m, "Relu", NULL, "h", "y");
    spw_graph *g = expect_ok(m, -1);
    assert_int_equal(g->opset, 13);
    assert_string_equal(g->producer, "test_onnx");
    assert_string_equal(g->name, "g");
    assert_int_equal(g->n_inputs, 1);
    assert_int_equal(g->n_outputs, 1);
    assert_int_equal(g->n_nodes, 2);
    const spw_node *n = find_node(g, "c1");
    assert_int_equal(n->op, SPW_OP_CONV);
    assert_int_equal(n->p.conv.kernel[0], 3); /* from the weight */
    assert_int_equal(n->p.conv.kernel[1], 3);
    assert_int_equal(n->p.conv.stride[0], 1);
    assert_int_equal(n->p.conv.dilation[1], 1);
    assert_int_equal(n->p.conv.group, 1);
    assert_int_equal(n->p.conv.pads[3], 1);
    /* the anonymous Relu got "<op>_<index>" */
    assert_int_equal(find_node(g, "Relu_1")->op, SPW_OP_RELU);
    expect_dims(g, "h", DIMS(-1, 4, 8, 8));
    const spw_value *w = val(g, "w");
    assert_true(w->flags & SPW_VALUE_CONST);
    assert_int_equal(w->dtype, SPW_F32);
    assert_int_equal(w->nbytes, 4 * 27 * sizeof(float));
    assert_true(((const float *)w->data)[3] == 1.5f);
    assert_true(val(g, "x")->flags & SPW_VALUE_INPUT);
    assert_int_equal(val(g, "x")->dims[0], -1);
    spw__graph_free(g);

    g = expect_ok(m, 3);
    expect_dims(g, "y", DIMS(3, 4, 8, 8));
    spw__graph_free(g);
}

static void test_conv_attributes(void **state)
{
    (void)state;
    model_t *m = one_input(13, DIMS(1, 4, 9, 10));
    init_f32(m, "w", DIMS(6, 2, 3, 3));
    Onnx__NodeProto *c = node(m, "Conv", "c", "x,w", "y");
    a_ints(c, "kernel_shape", DIMS(3, 3));
    a_ints(c, "strides", DIMS(2, 1));
    a_ints(c, "dilations", DIMS(1, 2));
    a_ints(c, "pads", DIMS(0, 1, 2, 3));
    a_int(c, "group", 2);
    a_str(c, "unknown_attr", "ignored");
    spw_graph *g = expect_ok(m, -1);
    const spw_conv_params *p = &find_node(g, "c")->p.conv;
    assert_int_equal(p->stride[0], 2);
    assert_int_equal(p->dilation[1], 2);
    assert_int_equal(p->group, 2);
    assert_int_equal(p->pads[0], 0);
    assert_int_equal(p->pads[1], 1);
    assert_int_equal(p->pads[2], 2);
    assert_int_equal(p->pads[3], 3);
    /* H: (9+0+2-3)/2+1 = 5; W: (10+1+3-5)/1+1 = 10 */
    expect_dims(g, "y", DIMS(1, 6, 5, 10));
    spw__graph_free(g);

    static const struct {
        const char *mode;
        int64_t out;
        int pb, pe;
    } cases[] = {{"SAME_UPPER", 4, 0, 1}, {"SAME_LOWER", 4, 1, 0}, {"VALID", 3, 0, 0}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        m = one_input(13, DIMS(1, 2, 7, 7));
        init_f32(m, "w", DIMS(2, 2, 2, 2));
        c = node(m, "Conv", "c", "x,w", "y");
        a_ints(c, "strides", DIMS(2, 2));
        a_ints(c, "pads", DIMS(5, 5, 5, 5)); /* ignored under auto_pad */
        a_str(c, "auto_pad", cases[i].mode);
        g = expect_ok(m, -1);
        p = &find_node(g, "c")->p.conv;
        assert_int_equal(p->auto_pad, SPW_AUTO_PAD_NOTSET);
        assert_int_equal(p->pads[0], cases[i].pb);
        assert_int_equal(p->pads[2], cases[i].pe);
        expect_dims(g, "y", DIMS(1, 2, cases[i].out, cases[i].out));
        spw__graph_free(g);
    }

    m = one_input(13, DIMS(1, 2, 7, 7));
    init_f32(m, "w", DIMS(2, 2, 2, 2));
    a_str(node(m, "Conv", "c", "x,w", "y"), "auto_pad", "SAME_MIDDLE");
    expect_fail(m, -1, SPW_EFORMAT, "node 'c' (Conv): attribute 'auto_pad' value 'SAME_MIDDLE'");

    m = one_input(13, DIMS(1, 2, 7, 7));
    init_f32(m, "w", DIMS(2, 2, 2, 2));
    a_ints(node(m, "Conv", "c", "x,w", "y"), "strides", DIMS(0, 1));
    expect_fail(m, -1, SPW_EFORMAT, "node 'c' (Conv): attribute 'strides'[0] = 0");

    m = one_input(13, DIMS(1, 2, 7, 7, 7));
    init_f32(m, "w", DIMS(2, 2, 2, 2, 2));
    a_ints(node(m, "Conv", "c", "x,w", "y"), "kernel_shape", DIMS(2, 2, 2));
    expect_fail(m, -1, SPW_EUNSUPPORTED, "only 2-D");

    m = one_input(13, DIMS(1, 2, 7, 7));
    init_f32(m, "w", DIMS(2, 2, 2, 2));
    a_ints(node(m, "Conv", "c", "x,w", "y"), "kernel_shape", DIMS(3, 3));
    expect_fail(m, -1, SPW_ESHAPE, "kernel_shape 3x3 does not match weight 2x2x2x2");

    m = one_input(13, DIMS(1, 2, 3, 3));
    init_f32(m, "w", DIMS(2, 2, 3, 3));
    a_ints(node(m, "Conv", "c", "x,w", "y"), "dilations", DIMS(2, 2));
    expect_fail(m, -1, SPW_ESHAPE, "does not fit");
}

static void test_conv_transpose(void **state)
{
    (void)state;
    model_t *m = one_input(13, DIMS(-1, 4, 5, 6));
    init_f32(m, "w", DIMS(4, 3, 3, 3));
    init_f32(m, "b", DIMS(3));
    Onnx__NodeProto *c = node(m, "ConvTranspose", "ct", "x,w,b", "y");
    a_ints(c, "strides", DIMS(2, 2));
    a_ints(c, "pads", DIMS(1, 1, 1, 1));
    a_ints(c, "output_padding", DIMS(1, 0));
    spw_graph *g = expect_ok(m, 2);
    /* 2*(5-1)+1+3-2 = 10, 2*(6-1)+0+3-2 = 11 */
    expect_dims(g, "y", DIMS(2, 3, 10, 11));
    spw__graph_free(g);

    /* output_shape becomes pads: total = 2*4+3-9 = 2 -> 1+1; W: 2*5+3-12 = 1 -> 1 at the
     * start for NOTSET. */
    m = one_input(13, DIMS(1, 4, 5, 6));
    init_f32(m, "w", DIMS(4, 3, 3, 3));
    c = node(m, "ConvTranspose", "ct", "x,w", "y");
    a_ints(c, "strides", DIMS(2, 2));
    a_ints(c, "output_shape", DIMS(9, 12));
    g = expect_ok(m, -1);
    const spw_conv_params *p = &find_node(g, "ct")->p.conv;
    expect_dims(g, "y", DIMS(1, 3, 9, 12));
    assert_int_equal(p->pads[0], 1);
    assert_int_equal(p->pads[2], 1);
    assert_int_equal(p->pads[1], 1);
    assert_int_equal(p->pads[3], 0);
    assert_int_equal(p->output_shape[0], 0);
    spw__graph_free(g);

    /* SAME_UPPER: out = in * stride */
    m = one_input(13, DIMS(1, 4, 5, 6));
    init_f32(m, "w", DIMS(4, 3, 3, 3));
    c = node(m, "ConvTranspose", "ct", "x,w", "y");
    a_ints(c, "strides", DIMS(2, 2));
    a_str(c, "auto_pad", "SAME_UPPER");
    g = expect_ok(m, -1);
    expect_dims(g, "y", DIMS(1, 3, 10, 12));
    spw__graph_free(g);

    /* an output_shape bigger than the natural size would need negative pads */
    m = one_input(13, DIMS(1, 4, 5, 6));
    init_f32(m, "w", DIMS(4, 3, 3, 3));
    a_ints(node(m, "ConvTranspose", "ct", "x,w", "y"), "output_shape", DIMS(40, 40));
    expect_fail(m, -1, SPW_EUNSUPPORTED, "node 'ct' (ConvTranspose): output size 40");

    m = one_input(13, DIMS(1, 4, 5, 6));
    init_f32(m, "w", DIMS(4, 3, 3, 3));
    a_ints(node(m, "ConvTranspose", "ct", "x,w", "y"), "output_padding", DIMS(1, 1));
    expect_fail(m, -1, SPW_ESHAPE, "output_padding 1 must be smaller");

    /* grouped: W [Cin, Cout/g, k, k] */
    m = one_input(13, DIMS(1, 4, 5, 6));
    init_f32(m, "w", DIMS(4, 3, 3, 3));
    a_int(node(m, "ConvTranspose", "ct", "x,w", "y"), "group", 2);
    g = expect_ok(m, -1);
    expect_dims(g, "y", DIMS(1, 6, 7, 8));
    spw__graph_free(g);

    m = one_input(13, DIMS(1, 5, 5, 6));
    init_f32(m, "w", DIMS(4, 3, 3, 3));
    node(m, "ConvTranspose", "ct", "x,w", "y");
    expect_fail(m, -1, SPW_ESHAPE, "input 1x5x5x6 has 5 channels; weight 4x3x3x3 expects 4");
}

static void test_pools(void **state)
{
    (void)state;
    model_t *m = one_input(13, DIMS(-1, 3, 10, 11));
    Onnx__NodeProto *p = node(m, "MaxPool", "mp", "x", "a");
    a_ints(p, "kernel_shape", DIMS(3, 3));
    a_ints(p, "strides", DIMS(2, 2));
    a_int(p, "ceil_mode", 1);
    a_int(p, "storage_order", 0);
    p = node(m, "AveragePool", "ap", "a", "b");
    a_ints(p, "kernel_shape", DIMS(2, 2));
    a_ints(p, "pads", DIMS(1, 0, 1, 0));
    a_int(p, "count_include_pad", 1);
    p = node(m, "MaxPool", "dil", "b", "c");
    a_ints(p, "kernel_shape", DIMS(2, 2));
    a_ints(p, "dilations", DIMS(2, 1));
    p = node(m, "AveragePool", "same", "c", "d");
    a_ints(p, "kernel_shape", DIMS(3, 3));
    a_ints(p, "strides", DIMS(2, 2));
    a_str(p, "auto_pad", "SAME_LOWER");
    node(m, "GlobalAveragePool", "gap", "d", "y");
    spw_graph *g = expect_ok(m, 4);
    /* ceil((10-3)/2)+1 = 5 (not 6: the last window would start in the padding),
     * ceil((11-3)/2)+1 = 5 */
    expect_dims(g, "a", DIMS(4, 3, 5, 5));
    const spw_pool_params *pp = &find_node(g, "mp")->p.pool;
    assert_int_equal(pp->ceil_mode, 1);
    assert_int_equal(pp->count_include_pad, 0);
    pp = &find_node(g, "ap")->p.pool;
    assert_int_equal(pp->count_include_pad, 1);
    expect_dims(g, "b", DIMS(4, 3, 6, 4));
    expect_dims(g, "c", DIMS(4, 3, 4, 3));
    expect_dims(g, "d", DIMS(4, 3, 2, 2));
    pp = &find_node(g, "same")->p.pool;
    assert_int_equal(pp->auto_pad, SPW_AUTO_PAD_NOTSET);
    assert_int_equal(pp->pads[0], 1); /* total 1, the extra at the start */
    assert_int_equal(pp->pads[2], 0);
    expect_dims(g, "y", DIMS(4, 3, 1, 1));
    spw__graph_free(g);

    /* ceil_mode where the extra window is legal */
    m = one_input(13, DIMS(1, 1, 6, 6));
    p = node(m, "MaxPool", "mp", "x", "y");
    a_ints(p, "kernel_shape", DIMS(3, 3));
    a_ints(p, "strides", DIMS(2, 2));
    a_int(p, "ceil_mode", 1);
    g = expect_ok(m, -1);
    expect_dims(g, "y", DIMS(1, 1, 3, 3));
    spw__graph_free(g);

    m = one_input(13, DIMS(1, 3, 10, 11));
    node(m, "MaxPool", "mp", "x", "y");
    expect_fail(m, -1, SPW_EFORMAT, "node 'mp' (MaxPool): attribute 'kernel_shape' is required");

    m = one_input(13, DIMS(1, 3, 10, 11));
    p = node(m, "AveragePool", "ap", "x", "y");
    a_ints(p, "kernel_shape", DIMS(2, 2));
    a_ints(p, "pads", DIMS(2, 0, 0, 0));
    expect_fail(m, -1, SPW_ESHAPE, "must be smaller than the kernel");

    m = one_input(13, DIMS(1, 3, 10, 11));
    p = node(m, "MaxPool", "mp", "x", "y,idx");
    a_ints(p, "kernel_shape", DIMS(2, 2));
    expect_fail(m, -1, SPW_EUNSUPPORTED, "only 1 is supported");

    m = one_input(13, DIMS(1, 3, 10, 11));
    p = node(m, "AveragePool", "ap", "x", "y");
    a_ints(p, "kernel_shape", DIMS(2, 2));
    a_int(p, "ceil_mode", 2);
    expect_fail(m, -1, SPW_EFORMAT, "attribute 'ceil_mode' = 2 is outside [0, 1]");
}

static void test_gemm_matmul(void **state)
{
    (void)state;
    model_t *m = one_input(13, DIMS(-1, 12));
    init_f32(m, "w", DIMS(10, 12));
    init_f32(m, "c", DIMS(10));
    Onnx__NodeProto *n = node(m, "Gemm", "fc", "x,w,c", "y");
    a_float(n, "alpha", 0.5f);
    a_int(n, "transB", 1);
    spw_graph *g = expect_ok(m, 2);
    const spw_gemm_params *p = &find_node(g, "fc")->p.gemm;
    assert_true(p->alpha == 0.5f);
    assert_true(p->beta == 1.0f);
    assert_int_equal(p->trans_a, 0);
    assert_int_equal(p->trans_b, 1);
    expect_dims(g, "y", DIMS(2, 10));
    spw__graph_free(g);

    m = one_input(13, DIMS(12, 3));
    init_f32(m, "w", DIMS(12, 10));
    n = node(m, "Gemm", "fc", "x,w", "y");
    a_int(n, "transA", 1);
    a_float(n, "beta", 0.0f);
    g = expect_ok(m, -1);
    assert_true(find_node(g, "fc")->p.gemm.beta == 0.0f);
    expect_dims(g, "y", DIMS(3, 10));
    spw__graph_free(g);

    m = one_input(13, DIMS(2, 12));
    init_f32(m, "w", DIMS(11, 10));
    node(m, "Gemm", "fc", "x,w", "y");
    expect_fail(m, -1, SPW_ESHAPE, "node 'fc' (Gemm): A 2x12 (transA=0) and B 11x10");

    m = one_input(13, DIMS(2, 12));
    init_f32(m, "w", DIMS(12, 10));
    init_f32(m, "c", DIMS(3, 10));
    node(m, "Gemm", "fc", "x,w,c", "y");
    expect_fail(m, -1, SPW_ESHAPE, "does not broadcast");

    m = one_input(13, DIMS(2, 12));
    init_f32(m, "w", DIMS(12, 10));
    a_float(node(m, "Gemm", "fc", "x,w", "y"), "transA", 1.0f);
    expect_fail(m, -1, SPW_EFORMAT, "node 'fc' (Gemm): attribute 'transA' must be INT, not FLOAT");

    /* MatMul: batched with broadcasting, vector operands */
    m = one_input(13, DIMS(-1, 1, 5, 4));
    init_f32(m, "w", DIMS(3, 4, 6));
    init_f32(m, "v", DIMS(6));
    node(m, "MatMul", "mm", "x,w", "a");
    node(m, "MatMul", "mv", "a,v", "y");
    g = expect_ok(m, 2);
    expect_dims(g, "a", DIMS(2, 3, 5, 6));
    expect_dims(g, "y", DIMS(2, 3, 5));
    spw__graph_free(g);

    m = one_input(13, DIMS(5, 4));
    init_f32(m, "w", DIMS(5, 6));
    node(m, "MatMul", "mm", "x,w", "y");
    expect_fail(m, -1, SPW_ESHAPE, "node 'mm' (MatMul): 5x4 times 5x6: inner dims 4 and 5 differ");
}

static void test_activations(void **state)
{
    (void)state;
    model_t *m = one_input(13, DIMS(-1, 3, 4, 4));
    init_f32_val(m, "lo", 0, NULL, -1.0f);
    Onnx__TensorProto *hi = tensor("hi", TF64, 0, NULL);
    double six = 6.0;
    set_raw(hi, &six, sizeof(six));
    g_init(m, hi);
    node(m, "LeakyRelu", "l1", "x", "a");
    a_float(node(m, "LeakyRelu", "l2", "a", "b"), "alpha", 0.2f);
    node(m, "Clip", "c1", "b,lo,hi", "c");
    node(m, "Clip", "c2", "c,,hi", "d");
    node(m, "Clip", "c3", "d", "e");
    node(m, "HardSwish", "hs", "e", "f");
    node(m, "Sigmoid", "sg", "f", "h");
    node(m, "Identity", "id", "h", "y");
    spw_graph *g = expect_ok(m, -1);
    assert_true(find_node(g, "l1")->p.leaky.alpha == 0.01f);
    assert_true(find_node(g, "l2")->p.leaky.alpha == 0.2f);
    const spw_node *c = find_node(g, "c1");
    assert_int_equal(c->n_inputs, 1); /* min/max live in the params */
    assert_true(c->p.clip.min == -1.0f && c->p.clip.max == 6.0f);
    c = find_node(g, "c2");
    assert_true(isinf(c->p.clip.min) && c->p.clip.min < 0 && c->p.clip.max == 6.0f);
    c = find_node(g, "c3");
    assert_true(isinf(c->p.clip.min) && isinf(c->p.clip.max) && c->p.clip.max > 0);
    expect_dims(g, "y", DIMS(-1, 3, 4, 4));
    assert_int_equal(val(g, "y")->dtype, SPW_F32);
    spw__graph_free(g);

    /* a computed clip bound is not supported */
    m = one_input(13, DIMS(1, 3));
    g_input(m, "lo", TF, 0, NULL);
    node(m, "Clip", "c", "x,lo", "y");
    expect_fail(m, -1, SPW_EUNSUPPORTED, "node 'c' (Clip): input 1 (min) 'lo' must be a constant");

    m = one_input(13, DIMS(1, 3));
    init_f32(m, "lo", DIMS(2));
    node(m, "Clip", "c", "x,lo", "y");
    expect_fail(m, -1, SPW_EFORMAT, "min 'lo' must hold one value");

    m = mb_new(13);
    g_input(m, "x", TI32, DIMS(1, 3));
    g_output(m, "y", TI32, -1, NULL);
    node(m, "Relu", "r", "x", "y");
    expect_fail(m, -1, SPW_EUNSUPPORTED, "node 'r' (Relu): input 0 'x' is i32");
}

static void test_axis_ops(void **state)
{
    (void)state;
    model_t *m = one_input(13, DIMS(-1, 3, 4, 5));
    init_f32(m, "k", DIMS(1, 2, 4, 5));
    a_int(node(m, "Concat", "cat", "x,k,x", "a"), "axis", -3);
    node(m, "Flatten", "fl", "a", "b");
    node(m, "Softmax", "sm", "b", "c");
    a_int(node(m, "Flatten", "fl0", "a", "d"), "axis", 0);
    a_int(node(m, "Softmax", "sm0", "a", "e"), "axis", 0);
    node(m, "Transpose", "tr", "a", "f");
    a_ints(node(m, "Transpose", "tr2", "a", "y"), "perm", DIMS(0, 2, 3, 1));
    spw_graph *g = expect_ok(m, 1);
    assert_int_equal(find_node(g, "cat")->p.axis.axis, 1); /* normalised */
    expect_dims(g, "a", DIMS(1, 8, 4, 5));
    assert_int_equal(find_node(g, "fl")->p.axis.axis, 1);
    expect_dims(g, "b", DIMS(1, 160));
    assert_int_equal(find_node(g, "sm")->p.axis.axis, 1); /* -1 by default */
    expect_dims(g, "d", DIMS(1, 160));
    assert_int_equal(find_node(g, "sm0")->p.axis.axis, 0);
    const spw_node *t = find_node(g, "tr");
    assert_int_equal(t->p.transpose.ndim, 4);
    assert_int_equal(t->p.transpose.perm[0], 3);
    expect_dims(g, "f", DIMS(5, 4, 8, 1));
    expect_dims(g, "y", DIMS(1, 4, 5, 8));
    spw__graph_free(g);

    /* a constant with batch 1 does not concatenate with batch 2 */
    g = NULL;
    assert_int_equal(load(m, 2, &g), SPW_ESHAPE);
    spw__graph_free(g);

    /* unbound, the batch is learnt from the constant */
    g = expect_ok(m, -1);
    expect_dims(g, "b", DIMS(1, 160));
    spw__graph_free(g);

    m = one_input(13, DIMS(1, 3, 4, 5));
    node(m, "Concat", "cat", "x,x", "y");
    expect_fail(m, -1, SPW_EFORMAT, "node 'cat' (Concat): attribute 'axis' is required");

    m = one_input(13, DIMS(1, 3, 4, 5));
    init_f32(m, "k", DIMS(1, 2, 3, 5));
    a_int(node(m, "Concat", "cat", "x,k", "y"), "axis", 1);
    expect_fail(m, -1, SPW_ESHAPE, "input 1 'k' 1x2x3x5 does not match input 0 1x3x4x5");

    m = one_input(13, DIMS(1, 3, 4, 5));
    a_int(node(m, "Softmax", "sm", "x", "y"), "axis", 4);
    expect_fail(m, -1, SPW_ESHAPE, "node 'sm' (Softmax): axis 4 is out of range for 4 dims");

    m = one_input(13, DIMS(1, 3, 4, 5));
    a_ints(node(m, "Transpose", "tr", "x", "y"), "perm", DIMS(0, 1, 1, 2));
    expect_fail(m, -1, SPW_ESHAPE, "perm is not a permutation");

    m = one_input(13, DIMS(1, 3, 4, 5));
    a_ints(node(m, "Transpose", "tr", "x", "y"), "perm", DIMS(1, 0));
    expect_fail(m, -1, SPW_ESHAPE, "perm has 2 entries, input has 4 dims");
}

static void test_reshape(void **state)
{
    (void)state;
    model_t *m = one_input(14, DIMS(-1, 6, 4, 5));
    init_i64(m, "s1", DIMS(0, -1, 5));
    init_i64(m, "s2", DIMS(0, 5, 24));
    init_i64(m, "s3", DIMS(2, 0, 60));
    node(m, "Reshape", "r1", "x,s1", "a");
    node(m, "Reshape", "r2", "a,s2", "b");
    init_f32(m, "e", DIMS(0, 4));
    a_int(node(m, "Reshape", "r3", "e,s3", "c"), "allowzero", 1);
    g_output(m, "c", TF, -1, NULL);
    node(m, "Identity", NULL, "b", "y");
    spw_graph *g = expect_ok(m, 3);
    const spw_node *r = find_node(g, "r1");
    assert_int_equal(r->n_inputs, 1);
    assert_int_equal(r->p.reshape.ndim, 3);
    assert_int_equal(r->p.reshape.shape[1], -1);
    assert_int_equal(find_node(g, "r3")->p.reshape.allowzero, 1);
    expect_dims(g, "a", DIMS(3, 24, 5));
    expect_dims(g, "b", DIMS(3, 5, 24));
    expect_dims(g, "c", DIMS(2, 0, 60)); /* 0 elements into 0: allowed */
    spw__graph_free(g);

    /* batch unknown: the copied batch cancels and -1 still resolves */
    m = one_input(14, DIMS(-1, 6, 4, 5));
    init_i64(m, "s1", DIMS(0, -1, 5));
    node(m, "Reshape", "r1", "x,s1", "y");
    g = expect_ok(m, -1);
    expect_dims(g, "y", DIMS(-1, 24, 5));
    spw__graph_free(g);

    m = one_input(14, DIMS(2, 6, 4, 5));
    init_i64(m, "s", DIMS(7, -1));
    node(m, "Reshape", "r", "x,s", "y");
    expect_fail(m, -1, SPW_ESHAPE, "node 'r' (Reshape): cannot reshape 2x6x4x5 into [7,-1]");

    m = one_input(14, DIMS(2, 6, 4, 5));
    init_i64(m, "s", DIMS(2, 6, 21));
    node(m, "Reshape", "r", "x,s", "y");
    expect_fail(m, -1, SPW_ESHAPE, "cannot reshape 2x6x4x5 into [2,6,21]: element counts");

    m = one_input(14, DIMS(2, 6, 4, 5));
    init_i64(m, "s", DIMS(-1, -1));
    node(m, "Reshape", "r", "x,s", "y");
    expect_fail(m, -1, SPW_ESHAPE, "more than one -1");

    m = one_input(14, DIMS(2, 6, 4, 5));
    init_i64(m, "s", DIMS(0, -1));
    a_int(node(m, "Reshape", "r", "x,s", "y"), "allowzero", 1);
    expect_fail(m, -1, SPW_ESHAPE, "allowzero=1 with both 0 and -1");

    m = one_input(14, DIMS(2, 6));
    g_input(m, "s", TI64, DIMS(2));
    node(m, "Reshape", "r", "x,s", "y");
    expect_fail(m, -1, SPW_EUNSUPPORTED,
                "node 'r' (Reshape): input 1 (shape) 's' must be a constant");

    m = one_input(14, DIMS(2, 6));
    init_i64(m, "s", DIMS(-3, 4));
    node(m, "Reshape", "r", "x,s", "y");
    expect_fail(m, -1, SPW_EFORMAT, "shape[0] = -3 is invalid");

    m = one_input(14, DIMS(2, 6));
    init_f32(m, "s", DIMS(2));
    node(m, "Reshape", "r", "x,s", "y");
    expect_fail(m, -1, SPW_EFORMAT, "must be a 1-D INT64 tensor");
}

static void test_pad(void **state)
{
    (void)state;
    model_t *m = one_input(13, DIMS(-1, 2, 5, 6));
    init_i64(m, "p", DIMS(0, 0, 1, 2, 0, 0, 3, -1));
    init_f32_val(m, "v", 0, NULL, 2.5f);
    node(m, "Pad", "pc", "x,p,v", "a");
    a_str(node(m, "Pad", "pr", "a,p", "b"), "mode", "reflect");
    a_str(node(m, "Pad", "pe", "b,p", "y"), "mode", "edge");
    spw_graph *g = expect_ok(m, 1);
    const spw_node *n = find_node(g, "pc");
    assert_int_equal(n->n_inputs, 1);
    assert_int_equal(n->p.pad.mode, SPW_PAD_CONSTANT);
    assert_int_equal(n->p.pad.ndim, 4);
    assert_int_equal(n->p.pad.pads[2], 1);
    assert_int_equal(n->p.pad.pads[7], -1);
    assert_true(n->p.pad.value == 2.5f);
    assert_int_equal(find_node(g, "pr")->p.pad.mode, SPW_PAD_REFLECT);
    assert_int_equal(find_node(g, "pe")->p.pad.mode, SPW_PAD_EDGE);
    expect_dims(g, "a", DIMS(1, 2, 9, 7));
    expect_dims(g, "y", DIMS(1, 2, 17, 9));
    spw__graph_free(g);

    m = one_input(13, DIMS(1, 2, 5, 6));
    init_i64(m, "p", DIMS(0, 0, 1, 2, 0, 0, 3));
    node(m, "Pad", "pc", "x,p", "y");
    expect_fail(m, -1, SPW_EFORMAT, "node 'pc' (Pad): pads 'p' has an odd count 7");

    m = one_input(13, DIMS(1, 2, 5, 6));
    init_i64(m, "p", DIMS(0, 0, 1, 1));
    node(m, "Pad", "pc", "x,p", "y");
    expect_fail(m, -1, SPW_ESHAPE, "node 'pc' (Pad): 4 pads given for input 1x2x5x6; expected 8");

    m = one_input(13, DIMS(1, 2, 5, 6));
    init_i64(m, "p", DIMS(0, 0, -3, 0, 0, 0, -3, 0));
    node(m, "Pad", "pc", "x,p", "y");
    expect_fail(m, -1, SPW_ESHAPE, "leave -1 elements");

    m = one_input(13, DIMS(1, 2, 5, 6));
    init_i64(m, "p", DIMS(0, 0, 5, 0, 0, 0, 0, 0));
    a_str(node(m, "Pad", "pr", "x,p", "y"), "mode", "reflect");
    expect_fail(m, -1, SPW_ESHAPE, "reflect pads 5+0");

    m = one_input(13, DIMS(1, 2, 5, 6));
    init_i64(m, "p", DIMS(0, 0, 1, 0, 0, 0, 0, 0));
    a_str(node(m, "Pad", "pw", "x,p", "y"), "mode", "wrap");
    expect_fail(m, -1, SPW_EUNSUPPORTED, "attribute 'mode' value 'wrap' is not supported");

    m = one_input(13, DIMS(1, 2, 5, 6));
    init_i64(m, "p", DIMS(0, 0, 1, 0, 0, 0, 0, 0));
    init_i64(m, "ax", DIMS(2));
    node(m, "Pad", "pa", "x,p,,ax", "y");
    expect_fail(m, -1, SPW_EUNSUPPORTED, "the 'axes' input is not supported");
}

static void test_batchnorm(void **state)
{
    (void)state;
    model_t *m = one_input(15, DIMS(-1, 4, 3, 3));
    const char *names[] = {"s", "b", "mu", "var"};
    for (int i = 0; i < 4; i++)
        init_f32(m, names[i], DIMS(4));
    node(m, "BatchNormalization", "bn", "x,s,b,mu,var", "a");
    Onnx__NodeProto *n = node(m, "BatchNormalization", "bn2", "a,s,b,mu,var", "y");
    a_float(n, "epsilon", 1e-3f);
    a_float(n, "momentum", 0.5f);
    a_int(n, "training_mode", 0);
    spw_graph *g = expect_ok(m, -1);
    assert_true(find_node(g, "bn")->p.bn.epsilon == 1e-5f);
    assert_true(find_node(g, "bn2")->p.bn.epsilon == 1e-3f);
    expect_dims(g, "y", DIMS(-1, 4, 3, 3));
    spw__graph_free(g);

    m = one_input(15, DIMS(1, 4, 3, 3));
    for (int i = 0; i < 4; i++)
        init_f32(m, names[i], DIMS(4));
    a_int(node(m, "BatchNormalization", "bn", "x,s,b,mu,var", "y"), "training_mode", 1);
    expect_fail(m, -1, SPW_EUNSUPPORTED, "node 'bn' (BatchNormalization): training_mode=1");

    m = one_input(15, DIMS(1, 4, 3, 3));
    for (int i = 0; i < 4; i++)
        init_f32(m, names[i], 1, (const int64_t[]){i == 2 ? 5 : 4});
    node(m, "BatchNormalization", "bn", "x,s,b,mu,var", "y");
    expect_fail(m, -1, SPW_ESHAPE, "node 'bn' (BatchNormalization): mean 'mu' has shape 5");

    /* trailing empty outputs are omitted optional outputs */
    m = one_input(15, DIMS(1, 4, 3, 3));
    for (int i = 0; i < 4; i++)
        init_f32(m, names[i], DIMS(4));
    node(m, "BatchNormalization", "bn", "x,s,b,mu,var", "y,,");
    g = expect_ok(m, -1);
    assert_int_equal(find_node(g, "bn")->n_outputs, 1);
    spw__graph_free(g);
}

static void test_splitwire_ops(void **state)
{
    (void)state;
    model_t *m = one_input(13, DIMS(-1, 3, 4, 4));
    init_f32(m, "beta", DIMS(3));
    init_f32(m, "gamma", DIMS(3, 3));
    init_f32(m, "med", DIMS(3));
    init_i32(m, "cdf", DIMS(3, 6), 7);
    init_i32(m, "len", DIMS(3), 6);
    init_i32(m, "off", DIMS(3), -2);
    node(m, "GDN", "gdn", "x,beta,gamma", "a");
    a_int(node(m, "GDN", "igdn", "a,beta,gamma", "b"), "inverse", 1);
    node(m, "Quantize", "q", "b,med,cdf,len,off", "sym");
    node(m, "Quantize", "q2", "b,med", "sym2");
    node(m, "Dequantize", "dq", "sym,med", "y");
    g_output(m, "sym2", TI32, DIMS(-1, 3, 4, 4));
    spw_graph *g = expect_ok(m, 2);
    assert_int_equal(find_node(g, "gdn")->p.gdn.inverse, 0);
    assert_int_equal(find_node(g, "igdn")->p.gdn.inverse, 1);
    assert_int_equal(find_node(g, "q")->op, SPW_OP_QUANTIZE);
    assert_int_equal(find_node(g, "q")->n_inputs, 5);
    assert_int_equal(val(g, "sym")->dtype, SPW_I32);
    assert_int_equal(val(g, "y")->dtype, SPW_F32);
    expect_dims(g, "sym", DIMS(2, 3, 4, 4));
    expect_dims(g, "y", DIMS(2, 3, 4, 4));
    spw__graph_free(g);

    m = one_input(13, DIMS(1, 3, 4, 4));
    init_f32(m, "beta", DIMS(3));
    init_f32(m, "gamma", DIMS(3, 4));
    node(m, "GDN", "gdn", "x,beta,gamma", "y");
    expect_fail(m, -1, SPW_ESHAPE, "node 'gdn' (GDN): gamma 'gamma' has shape 3x4; expected 3x3");

    m = one_input(13, DIMS(1, 3, 4, 4));
    init_f32(m, "beta", DIMS(4));
    init_f32(m, "gamma", DIMS(3, 3));
    node(m, "GDN", "gdn", "x,beta,gamma", "y");
    expect_fail(m, -1, SPW_ESHAPE, "beta 'beta' has shape 4; expected 3 values");

    m = one_input(13, DIMS(1, 3, 4, 4));
    init_f32(m, "beta", DIMS(3));
    init_f32(m, "gamma", DIMS(3, 3));
    a_int(node(m, "GDN", "gdn", "x,beta,gamma", "y"), "inverse", 2);
    expect_fail(m, -1, SPW_EFORMAT, "attribute 'inverse' = 2");

    m = one_input(13, DIMS(1, 3, 4, 4));
    init_f32(m, "med", DIMS(2));
    node(m, "Quantize", "q", "x,med", "y");
    expect_fail(m, -1, SPW_ESHAPE, "node 'q' (Quantize): medians 'med' has shape 2");

    m = one_input(13, DIMS(1, 3, 4, 4));
    init_f32(m, "med", DIMS(3));
    init_i32(m, "cdf", DIMS(3, 6), 0);
    node(m, "Quantize", "q", "x,med,cdf", "y");
    expect_fail(m, -1, SPW_EFORMAT, "must be given together");

    m = one_input(13, DIMS(1, 3, 4, 4));
    init_f32(m, "med", DIMS(3));
    init_i32(m, "cdf", DIMS(3, 6), 0);
    init_i32(m, "len", DIMS(3), 7);
    init_i32(m, "off", DIMS(3), 0);
    node(m, "Quantize", "q", "x,med,cdf,len,off", "y");
    expect_fail(m, -1, SPW_ESHAPE, "cdf_length[0] = 7 is outside [2, 6]");

    m = one_input(13, DIMS(1, 3, 4, 4));
    init_i32(m, "med", DIMS(3), 0);
    node(m, "Quantize", "q", "x,med", "y");
    expect_fail(m, -1, SPW_EFORMAT, "input 1 'med' is i32; expected f32");

    m = one_input(13, DIMS(1, 3, 4, 4));
    init_f32(m, "med", DIMS(3));
    node(m, "Dequantize", "dq", "x,med", "y");
    expect_fail(m, -1, SPW_EFORMAT, "node 'dq' (Dequantize): input 0 'x' is f32; expected i32");
}

static void test_broadcast(void **state)
{
    (void)state;
    model_t *m = one_input(13, DIMS(-1, 3, 4, 5));
    init_f32(m, "a", DIMS(3, 1, 1));
    init_f32(m, "b", DIMS(5));
    init_f32(m, "c", DIMS(2, 1, 1, 1, 1));
    node(m, "Add", "add", "x,a", "p");
    node(m, "Mul", "mul", "b,p", "q");
    node(m, "Add", "add5", "q,c", "y");
    spw_graph *g = expect_ok(m, -1);
    expect_dims(g, "q", DIMS(-1, 3, 4, 5));
    expect_dims(g, "y", DIMS(2, -1, 3, 4, 5));
    spw__graph_free(g);

    m = one_input(13, DIMS(1, 3, 4, 5));
    init_f32(m, "a", DIMS(4, 1, 1));
    node(m, "Add", "add", "x,a", "y");
    expect_fail(m, -1, SPW_ESHAPE,
                "node 'add' (Add): cannot broadcast 1x3x4x5 with 4x1x1 (dim 1: 3 vs 4)");

    m = one_input(13, DIMS(1, 3));
    init_i64(m, "a", DIMS(1, 2, 3));
    node(m, "Mul", "mul", "x,a", "y");
    expect_fail(m, -1, SPW_EFORMAT, "node 'mul' (Mul): inputs are f32 and i64");
}

static void test_initializers(void **state)
{
    (void)state;
    model_t *m = one_input(13, DIMS(4));
    /* raw little-endian FLOAT16 and DOUBLE */
    Onnx__TensorProto *t = tensor("h_raw", TF16, DIMS(4));
    const uint8_t h[] = {0x00, 0x38, 0x00, 0xbd, 0x00, 0x40, 0xff, 0x7b};
    set_raw(t, h, sizeof(h));
    g_init(m, t);
    t = tensor("d_raw", TF64, DIMS(4));
    const double d[] = {0.25, -3.0, 1e300, -1e300};
    set_raw(t, d, sizeof(d));
    g_init(m, t);
    /* typed fields */
    t = tensor("h_typed", TF16, DIMS(4));
    t->n_int32_data = 4;
    t->int32_data = amem(4 * sizeof(int32_t));
    t->int32_data[0] = 0x3800, t->int32_data[1] = 0xbd00, t->int32_data[2] = 0x7c00,
    t->int32_data[3] = 0x0001;
    g_init(m, t);
    t = tensor("d_typed", TF64, DIMS(4));
    t->n_double_data = 4;
    t->double_data = amem(4 * sizeof(double));
    for (int i = 0; i < 4; i++)
        t->double_data[i] = d[i];
    g_init(m, t);
    t = tensor("i8", TI8, DIMS(3));
    t->n_int32_data = 3;
    t->int32_data = amem(3 * sizeof(int32_t));
    t->int32_data[0] = -128, t->int32_data[1] = 5, t->int32_data[2] = 127;
    g_init(m, t);
    t = tensor("u8", TU8, DIMS(2));
    t->n_int32_data = 2;
    t->int32_data = amem(2 * sizeof(int32_t));
    t->int32_data[0] = 255, t->int32_data[1] = 1;
    g_init(m, t);
    t = tensor("i32raw", TI32, DIMS(2));
    const int32_t i32[] = {-7, 1 << 30};
    set_raw(t, i32, sizeof(i32));
    g_init(m, t);
    t = tensor("i64raw", TI64, DIMS(1));
    const int64_t i64[] = {-((int64_t)1 << 40)};
    set_raw(t, i64, sizeof(i64));
    g_init(m, t);
    init_f32_val(m, "scalar", 0, NULL, 3.0f);
    init_f32(m, "empty", DIMS(0, 4));
    g_init(m, tensor("empty_typed", TI64, DIMS(3, 0))); /* no data field at all */
    /* an input that is also an initializer is a constant */
    g_input(m, "h_raw", TF16, DIMS(4));
    node(m, "Add", "a1", "x,h_raw", "s");
    node(m, "Add", "a2", "s,d_typed", "y");
    spw_graph *g = expect_ok(m, -1);
    assert_int_equal(g->n_inputs, 1);
    const spw_value *v = val(g, "h_raw");
    assert_int_equal(v->dtype, SPW_F32);
    assert_true(v->flags & SPW_VALUE_CONST);
    const float *f = v->data;
    assert_true(f[0] == 0.5f && f[1] == -1.25f && f[2] == 2.0f && f[3] == 65504.0f);
    f = val(g, "d_raw")->data;
    assert_true(f[0] == 0.25f && f[1] == -3.0f && isinf(f[2]) && f[2] > 0 && f[3] < 0 &&
                isinf(f[3]));
    f = val(g, "h_typed")->data;
    assert_true(f[0] == 0.5f && f[1] == -1.25f && isinf(f[2]) && f[3] == ldexpf(1.0f, -24));
    assert_int_equal(val(g, "d_typed")->dtype, SPW_F32);
    const int8_t *s8 = val(g, "i8")->data;
    assert_true(s8[0] == -128 && s8[1] == 5 && s8[2] == 127);
    assert_int_equal(val(g, "i8")->dtype, SPW_I8);
    const uint8_t *u8 = val(g, "u8")->data;
    assert_true(u8[0] == 255 && u8[1] == 1);
    const int32_t *s32 = val(g, "i32raw")->data;
    assert_true(s32[0] == -7 && s32[1] == 1 << 30);
    assert_true(*(const int64_t *)val(g, "i64raw")->data == -((int64_t)1 << 40));
    v = val(g, "scalar");
    assert_int_equal(v->ndim, 0);
    assert_true(*(const float *)v->data == 3.0f);
    v = val(g, "empty");
    assert_int_equal(v->nbytes, 0);
    assert_int_equal(val(g, "empty_typed")->nbytes, 0);
    spw__graph_free(g);

    /* size mismatches name the tensor */
    m = one_input(13, DIMS(4));
    t = tensor("w", TF, DIMS(2, 3));
    set_raw(t, d, 20);
    g_init(m, t);
    node(m, "Identity", NULL, "x", "y");
    expect_fail(m, -1, SPW_EFORMAT, "initializer 'w': 6 elements of FLOAT");

    m = one_input(13, DIMS(4));
    t = tensor("w", TF, DIMS(2, 3));
    t->n_float_data = 5;
    t->float_data = amem(5 * sizeof(float));
    g_init(m, t);
    node(m, "Identity", NULL, "x", "y");
    expect_fail(m, -1, SPW_EFORMAT,
                "initializer 'w': 6 elements of FLOAT expected, float_data holds 5");

    m = one_input(13, DIMS(4));
    t = tensor("w", TI8, DIMS(1));
    t->n_int32_data = 1;
    t->int32_data = amem(sizeof(int32_t));
    t->int32_data[0] = 300;
    g_init(m, t);
    node(m, "Identity", NULL, "x", "y");
    expect_fail(m, -1, SPW_EFORMAT,
                "initializer 'w': int32_data[0] = 300 is out of range for INT8");

    m = one_input(13, DIMS(4));
    t = tensor("w", TF, DIMS(1));
    set_raw(t, d, 4);
    t->n_float_data = 1;
    t->float_data = amem(sizeof(float));
    g_init(m, t);
    node(m, "Identity", NULL, "x", "y");
    expect_fail(m, -1, SPW_EFORMAT, "initializer 'w': has both raw_data and float_data");

    m = one_input(13, DIMS(4));
    t = tensor("w", TF, DIMS(4));
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    g_init(m, t);
    node(m, "Identity", NULL, "x", "y");
    expect_fail(m, -1, SPW_EUNSUPPORTED, "initializer 'w': external data");

    m = one_input(13, DIMS(4));
    g_init(m, tensor("w", ONNX__TENSOR_PROTO__DATA_TYPE__BOOL, DIMS(4)));
    node(m, "Identity", NULL, "x", "y");
    expect_fail(m, -1, SPW_EUNSUPPORTED, "initializer 'w': data type BOOL");

    /* absurd dims: no allocation is attempted */
    m = one_input(13, DIMS(4));
    t = tensor("w", TF, DIMS(2147483647, 2147483647, 2147483647, 4));
    set_raw(t, d, 8);
    g_init(m, t);
    node(m, "Identity", NULL, "x", "y");
    expect_fail(m, -1, SPW_EFORMAT, "initializer 'w'");

    /* empty, but the partial products overflow int64 */
    m = one_input(13, DIMS(4));
    g_init(m, tensor("w", TF, DIMS(2147483647, 2147483647, 3, 0)));
    node(m, "Identity", NULL, "x", "y");
    expect_fail(m, -1, SPW_EFORMAT, "initializer 'w': element count overflows");

    m = one_input(13, DIMS(4));
    t = tensor("w", TF, DIMS(-2));
    g_init(m, t);
    node(m, "Identity", NULL, "x", "y");
    expect_fail(m, -1, SPW_EFORMAT, "initializer 'w': dim 0 is -2");

    m = one_input(13, DIMS(4));
    init_f32(m, "w", DIMS(2));
    init_f32(m, "w", DIMS(2));
    node(m, "Identity", NULL, "x", "y");
    expect_fail(m, -1, SPW_EFORMAT, "initializer 'w' is defined twice");
}

static void test_typed_file(void **state)
{
    (void)state;
    void *data;
    size_t size;
    assert_int_equal(
        spw__read_file(SPW_TEST_DATA "/vectors/onnx/typed_initializers.onnx", &data, &size), 0);
    spw_graph *g;
    assert_int_equal(spw__onnx_import(data, size, &g), 0);
    spw__free(data);
    assert_int_equal(spw__graph_infer_shapes(g, -1), 0);
    assert_int_equal(g->opset, 14);
    const float *f = val(g, "a16")->data;
    assert_true(f[0] == 0.5f && f[1] == -1.25f && f[2] == 2.0f && f[3] == 65504.0f);
    f = val(g, "a64")->data;
    assert_true(f[0] == 0.25f && f[1] == 1e-3f && f[2] == -3.0f && isinf(f[3]));
    f = val(g, "a32")->data;
    assert_true(f[3] == 4.0f);
    assert_int_equal(((const int8_t *)val(g, "ai8")->data)[0], -128);
    assert_int_equal(((const uint8_t *)val(g, "au8")->data)[2], 255);
    expect_dims(g, "y", DIMS(2, 4));
    spw__graph_free(g);
}

static void test_vector_files(void **state)
{
    (void)state;
    static const struct {
        const char *file, *out;
        int64_t dims[4];
        spw_dtype dtype;
    } files[] = {{"encoder.onnx", "sym", {3, 8, 4, 4}, SPW_I32},
                 {"decoder.onnx", "prob", {3, 15}, SPW_F32}};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[512];
        void *data;
        size_t size;
        snprintf(path, sizeof(path), "%s/vectors/onnx/%s", SPW_TEST_DATA, files[i].file);
        assert_int_equal(spw__read_file(path, &data, &size), 0);
        spw_graph *g;
        int rc = spw__onnx_import(data, size, &g);
        spw__free(data);
        if (rc)
            fail_msg("%s: %s", files[i].file, spw_error_detail());
        assert_int_equal(spw__graph_infer_shapes(g, -1), 0);
        const spw_value *v = val(g, files[i].out);
        assert_int_equal(v->dims[0], -1);
        spw_graph *c;
        assert_int_equal(spw__graph_clone(g, &c), 0);
        rc = spw__graph_infer_shapes(c, 3);
        if (rc)
            fail_msg("%s: %s", files[i].file, spw_error_detail());
        v = val(c, files[i].out);
        assert_int_equal(v->dtype, files[i].dtype);
        for (int d = 0; d < v->ndim; d++)
            assert_int_equal(v->dims[d], files[i].dims[d]);
        spw__graph_free(c);
        spw__graph_free(g);
    }
}

static void test_constant_nodes(void **state)
{
    (void)state;
    model_t *m = one_input(13, DIMS(2, 6));
    /* consumer first: Constant nodes are imported before other nodes */
    node(m, "Reshape", "r", "x,shape", "a");
    Onnx__NodeProto *c = node(m, "Constant", "cs", "", "shape");
    Onnx__TensorProto *t = tensor("ignored_name", TI64, DIMS(2));
    const int64_t s[] = {3, 4};
    set_raw(t, s, sizeof(s));
    a_tensor(c, "value", t);
    a_float(node(m, "Constant", NULL, "", "cf"), "value_float", 1.5f);
    a_floats(node(m, "Constant", NULL, "", "cfs"), "value_floats", 4, (const float[]){1, 2, 3, 4});
    a_int(node(m, "Constant", NULL, "", "ci"), "value_int", 7);
    a_ints(node(m, "Constant", NULL, "", "cis"), "value_ints", DIMS(5, 6));
    node(m, "Add", "add", "a,cfs", "b");
    node(m, "Clip", "clip", "b,cf", "y");
    spw_graph *g = expect_ok(m, -1);
    assert_int_equal(g->n_nodes, 3); /* constants are values, not nodes */
    expect_dims(g, "a", DIMS(3, 4));
    assert_true(find_node(g, "clip")->p.clip.min == 1.5f);
    const spw_value *v = val(g, "cfs");
    assert_true(v->flags & SPW_VALUE_CONST);
    assert_int_equal(v->ndim, 1);
    assert_true(((const float *)v->data)[3] == 4.0f);
    v = val(g, "ci");
    assert_int_equal(v->dtype, SPW_I64);
    assert_int_equal(v->ndim, 0);
    assert_int_equal(*(const int64_t *)v->data, 7);
    assert_int_equal(((const int64_t *)val(g, "cis")->data)[1], 6);
    assert_int_equal(spw__graph_find_value(g, "ignored_name"), -1);
    spw__graph_free(g);

    m = one_input(13, DIMS(2));
    c = node(m, "Constant", "k", "", "c");
    a_float(c, "value_float", 1.0f);
    a_int(c, "value_int", 1);
    node(m, "Add", NULL, "x,c", "y");
    expect_fail(m, -1, SPW_EFORMAT, "node 'k' (Constant): has both 'value_float' and 'value_int'");

    m = one_input(13, DIMS(2));
    a_str(node(m, "Constant", "k", "", "c"), "value_string", "hello");
    node(m, "Add", NULL, "x,c", "y");
    expect_fail(m, -1, SPW_EUNSUPPORTED, "node 'k' (Constant): attribute 'value_string'");

    m = one_input(13, DIMS(2));
    a_int(node(m, "Constant", "k", "", "c"), "value_float", 1);
    node(m, "Add", NULL, "x,c", "y");
    expect_fail(m, -1, SPW_EFORMAT, "attribute 'value_float' must be FLOAT, not INT");

    m = one_input(13, DIMS(2));
    init_f32(m, "c", DIMS(2));
    a_float(node(m, "Constant", "k", "", "c"), "value_float", 1.0f);
    node(m, "Add", NULL, "x,c", "y");
    expect_fail(m, -1, SPW_EFORMAT, "node 'k' (Constant): output 'c' is already defined");
}

static void test_opsets(void **state)
{
    (void)state;
    model_t *m = one_input(11, DIMS(2));
    node(m, "Relu", NULL, "x", "y");
    expect_fail(m, -1, SPW_EUNSUPPORTED, "ai.onnx opset 11; opset 13 or newer");

    m = one_input(13, DIMS(2));
    m->opset_import[0]->domain = astr("ai.onnx");
    m->opset_import[1]->domain = astr("com.example");
    m->opset_import[1]->version = 4;
    node(m, "Relu", NULL, "x", "y");
    spw_graph *g = expect_ok(m, -1);
    assert_int_equal(g->opset, 13);
    spw__graph_free(g);

    m = one_input(13, DIMS(2));
    m->opset_import[1]->version = 2;
    node(m, "Relu", NULL, "x", "y");
    expect_fail(m, -1, SPW_EUNSUPPORTED, "opset 2 of domain 'ai.splitwire'");

    m = one_input(13, DIMS(2));
    m->opset_import[0]->domain = astr("ai.splitwire");
    m->opset_import[0]->version = 1;
    node(m, "Relu", "r", "x", "y");
    expect_fail(m, -1, SPW_EFORMAT, "node 'r' (Relu): the model imports no ai.onnx opset");

    m = one_input(13, DIMS(1, 2, 2, 2));
    m->n_opset_import = 1;
    init_f32(m, "beta", DIMS(2));
    init_f32(m, "gamma", DIMS(2, 2));
    node(m, "GDN", "gdn", "x,beta,gamma", "y");
    expect_fail(m, -1, SPW_EFORMAT,
                "node 'gdn' (GDN): the model does not import domain 'ai.splitwire'");

    m = one_input(13, DIMS(2));
    m->graph = NULL;
    expect_fail(m, -1, SPW_EFORMAT, "the model has no graph");
}

static void test_unsupported(void **state)
{
    (void)state;
    model_t *m = one_input(13, DIMS(2));
    node(m, "Foo", "X", "x", "y");
    expect_fail(m, -1, SPW_EUNSUPPORTED, "node 'X': unsupported op 'Foo' (domain '')");

    m = one_input(13, DIMS(2));
    node(m, "Relu", "r", "x", "y")->domain = astr("com.other");
    expect_fail(m, -1, SPW_EUNSUPPORTED, "node 'r': unsupported op 'Relu' (domain 'com.other')");

    m = one_input(13, DIMS(2));
    node(m, "Dropout", NULL, "x", "y");
    expect_fail(m, -1, SPW_EUNSUPPORTED, "node 'Dropout_0': unsupported op 'Dropout'");

    m = mb_new(13);
    g_input(m, "x", TF64, DIMS(2));
    g_output(m, "y", TF, -1, NULL);
    node(m, "Relu", NULL, "x", "y");
    expect_fail(m, -1, SPW_EUNSUPPORTED, "graph input 'x' has element type DOUBLE");

    m = mb_new(13);
    g_input(m, "x", TF, DIMS(1, 2, 3, 4, 5, 6, 7, 8, 9));
    g_output(m, "y", TF, -1, NULL);
    node(m, "Relu", NULL, "x", "y");
    expect_fail(m, -1, SPW_EUNSUPPORTED, "graph input 'x' has 9 dims");

    /* only the leading dim may be free */
    m = one_input(13, DIMS(1, -1, 3));
    node(m, "Relu", NULL, "x", "y");
    expect_fail(m, -1, SPW_EUNSUPPORTED, "graph input 'x': dim 1 is free");
    m = one_input(13, DIMS(-2, 3));
    node(m, "Relu", NULL, "x", "y");
    spw_graph *g = expect_ok(m, 5); /* a dim with no value is free too */
    expect_dims(g, "y", DIMS(5, 3));
    spw__graph_free(g);

    m = mb_new(13);
    g_input(m, "x", TF, -1, NULL);
    g_output(m, "y", TF, -1, NULL);
    node(m, "Relu", NULL, "x", "y");
    expect_fail(m, -1, SPW_EUNSUPPORTED, "graph input 'x' has no shape");
}

static void test_inconsistent(void **state)
{
    (void)state;
    model_t *m = one_input(13, DIMS(1, 4, 8, 8));
    init_f32(m, "w", DIMS(6, 3, 3, 3));
    node(m, "Conv", "conv3", "x,w", "y");
    expect_fail(m, -1, SPW_ESHAPE,
                "node 'conv3' (Conv): input 1x4x8x8 has 4 channels; weight 6x3x3x3 with group "
                "1 expects 3");

    m = one_input(13, DIMS(1, 4, 8, 8));
    init_f32(m, "w", DIMS(6, 2, 3, 3));
    a_int(node(m, "Conv", "c", "x,w", "y"), "group", 4);
    expect_fail(m, -1, SPW_ESHAPE,
                "weight 6x2x3x3 has 6 output channels, not divisible by group 4");

    m = one_input(13, DIMS(1, 4, 8, 8));
    init_f32(m, "w", DIMS(6, 4, 3, 3));
    init_f32(m, "b", DIMS(5));
    node(m, "Conv", "c", "x,w,b", "y");
    expect_fail(m, -1, SPW_ESHAPE, "bias 'b' has shape 5; expected 6 values");

    m = one_input(13, DIMS(1, 4, 8));
    init_f32(m, "w", DIMS(6, 4, 3));
    node(m, "Conv", "c", "x,w", "y");
    expect_fail(m, -1, SPW_EUNSUPPORTED, "expected 4 dims");

    /* declared output shape that disagrees */
    m = mb_new(13);
    g_input(m, "x", TF, DIMS(-1, 4, 8, 8));
    g_output(m, "y", TF, DIMS(-1, 4, 4, 8));
    node(m, "Relu", "r", "x", "y");
    expect_fail(m, -1, SPW_ESHAPE, "node 'r' (Relu): output 'y' is declared f32 Nx4x4x8 but");

    m = mb_new(13);
    g_input(m, "x", TF, DIMS(1, 4));
    g_output(m, "y", TI32, DIMS(1, 4));
    node(m, "Relu", "r", "x", "y");
    expect_fail(m, -1, SPW_ESHAPE, "declared i32");

    /* missing required input */
    m = one_input(13, DIMS(1, 4, 8, 8));
    node(m, "Conv", "c", "x,", "y");
    expect_fail(m, -1, SPW_EFORMAT, "node 'c' (Conv): required input 1 is missing");

    m = one_input(13, DIMS(1, 4));
    node(m, "Add", "a", "x", "y");
    expect_fail(m, -1, SPW_EFORMAT, "node 'a' (Add): has 1 inputs; expected 2 to 2");

    /* huge dims: element counts are overflow-checked */
    m = one_input(13, DIMS(2147483647, 2147483647, 4));
    node(m, "Relu", NULL, "x", "y");
    expect_fail(m, -1, SPW_ESHAPE, "beyond the size limit");

    m = one_input(13, DIMS(1, 65536, 65536));
    init_f32(m, "k", DIMS(1, 65536, 1));
    a_int(node(m, "Concat", "cat", "x,k", "a"), "axis", 2);
    init_f32(m, "o", DIMS(256, 1, 1, 1));
    node(m, "Mul", "m", "a,o", "y");
    expect_fail(m, -1, SPW_ESHAPE, "node 'm' (Mul): the output would be 256x1x65536x65537");

    m = one_input(13, DIMS(1, 0, 4));
    node(m, "Relu", NULL, "x", "y");
    expect_fail(m, -1, SPW_ESHAPE, "graph input 'x': dim 1 is 0");
}

static void test_graph_errors(void **state)
{
    (void)state;
    /* cycle: a -> b -> a */
    model_t *m = one_input(13, DIMS(2));
    node(m, "Add", "n1", "x,b", "a");
    node(m, "Relu", "n2", "a", "b");
    node(m, "Relu", "n3", "b", "y");
    expect_fail(m, -1, SPW_EFORMAT, "is part of a cycle");

    m = one_input(13, DIMS(2));
    node(m, "Relu", "n1", "x", "y");
    node(m, "Sigmoid", "n2", "x", "y");
    expect_fail(m, -1, SPW_EFORMAT, "node 'n2' (Sigmoid): output 'y' is already defined elsewhere");

    m = one_input(13, DIMS(2));
    init_f32(m, "w", DIMS(2));
    node(m, "Relu", "n1", "x", "w");
    node(m, "Relu", "n2", "w", "y");
    expect_fail(m, -1, SPW_EFORMAT, "node 'n1' (Relu): output 'w' is already defined");

    m = one_input(13, DIMS(2));
    node(m, "Add", "n1", "x,nope", "y");
    expect_fail(m, -1, SPW_EFORMAT, "node 'n1' (Add): input 'nope' is neither");

    m = one_input(13, DIMS(2));
    node(m, "Relu", "n1", "x", "z");
    expect_fail(m, -1, SPW_EFORMAT, "graph output 'y' is never produced");

    m = one_input(13, DIMS(2));
    g_output(m, "y", TF, -1, NULL);
    node(m, "Relu", "n1", "x", "y");
    expect_fail(m, -1, SPW_EFORMAT, "graph output 'y' is listed twice");

    m = one_input(13, DIMS(2));
    g_input(m, "x", TF, DIMS(2));
    node(m, "Relu", "n1", "x", "y");
    expect_fail(m, -1, SPW_EFORMAT, "graph input 'x' is listed twice");

    m = one_input(13, DIMS(2));
    node(m, "Relu", "n1", "x", "");
    expect_fail(m, -1, SPW_EFORMAT, "node 'n1' (Relu): has no outputs");

    m = mb_new(13);
    g_input(m, "x", TF, DIMS(2));
    node(m, "Relu", "n1", "x", "y");
    expect_fail(m, -1, SPW_EFORMAT, "the graph has no outputs");

    /* fuzzer finding: a parameter-folding op without any input */
    m = one_input(13, DIMS(2));
    node(m, "Clip", "c", "", "y");
    expect_fail(m, -1, SPW_EFORMAT, "node 'c' (Clip): has 0 inputs");

    m = one_input(13, DIMS(2));
    a_ints(node(m, "Relu", "n1", "x", "y"), "whatever", DIMS(1));
    spw_graph *g = expect_ok(m, -1); /* unknown attributes are ignored */
    spw__graph_free(g);
}

/* Truncating a valid file anywhere must fail cleanly (or, at a field
 * boundary, parse as a smaller model that then fails or loads). */
static void test_truncated(void **state)
{
    (void)state;
    void *data;
    size_t size;
    assert_int_equal(spw__read_file(SPW_TEST_DATA "/vectors/onnx/decoder.onnx", &data, &size), 0);
    int format_errors = 0;
    for (size_t len = 0; len < size; len++) {
        spw_graph *g = NULL;
        int rc = spw__onnx_import(data, len, &g);
        if (!rc) {
            rc = spw__graph_infer_shapes(g, -1);
            spw__graph_free(g);
        }
        assert_true(rc < 0);
        assert_int_not_equal(rc, SPW_ENOMEM);
        assert_true(spw_error_detail()[0] != '\0');
        format_errors += rc == SPW_EFORMAT;
    }
    assert_true(format_errors > (int)size / 2);
    spw_graph *g = NULL;
    assert_int_equal(spw__onnx_import(data, 3000, &g), SPW_EFORMAT);
    assert_non_null(strstr(spw_error_detail(), "truncated"));
    spw__free(data);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static void test_byte_flips(void **state)
{
    (void)state;
    static const char *const files[] = {"encoder.onnx", "decoder.onnx", "typed_initializers.onnx"};
    for (size_t f = 0; f < 3; f++) {
        char path[512];
        void *data;
        size_t size;
        snprintf(path, sizeof(path), "%s/vectors/onnx/%s", SPW_TEST_DATA, files[f]);
        assert_int_equal(spw__read_file(path, &data, &size), 0);
        uint8_t *copy = malloc(size);
        assert_non_null(copy);
        for (int iter = 0; iter < 1500; iter++) {
            memcpy(copy, data, size);
            int flips = 1 + (int)(rnd() % 4);
            for (int k = 0; k < flips; k++) {
                size_t at = rnd() % size;
                copy[at] = (uint8_t)(rnd() % 3 ? copy[at] ^ (1u << (rnd() % 8)) : rnd());
            }
            spw_graph *g = NULL;
            int rc = spw__onnx_import(copy, size, &g);
            if (!rc) {
                rc = spw__graph_infer_shapes(g, (int)(rnd() % 3) - 1);
                spw__graph_free(g);
            }
            assert_true(rc <= 0);
        }
        free(copy);
        spw__free(data);
    }
}

/* Inputs the fuzzer once crashed on (tests/vectors/onnx/regress). */
static void test_fuzz_regressions(void **state)
{
    (void)state;
    static const char *const files[] = {"empty_tensor_without_data.bin", "clip_without_inputs.bin"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[512];
        void *data;
        size_t size;
        snprintf(path, sizeof(path), "%s/vectors/onnx/regress/%s", SPW_TEST_DATA, files[i]);
        assert_int_equal(spw__read_file(path, &data, &size), 0);
        spw_graph *g = NULL;
        int rc = spw__onnx_import(data, size, &g);
        if (!rc) {
            rc = spw__graph_infer_shapes(g, -1);
            spw__graph_free(g);
        }
        assert_true(rc <= 0);
        spw__free(data);
    }
}

/* An allocator that fails the k-th allocation and counts live blocks. */
static struct {
    long budget, calls, live;
} fa;

static void *fa_malloc(size_t size, void *ctx)
{
    (void)ctx;
    if (++fa.calls == fa.budget)
        return NULL;
    void *p = malloc(size);
    fa.live += p != NULL;
    return p;
}

static void *fa_realloc(void *ptr, size_t size, void *ctx)
{
    (void)ctx;
    if (++fa.calls == fa.budget)
        return NULL;
    void *p = realloc(ptr, size);
    fa.live += p && !ptr;
    return p;
}

static void fa_free(void *ptr, void *ctx)
{
    (void)ctx;
    fa.live -= ptr != NULL;
    free(ptr);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    void *data;
    size_t size;
    assert_int_equal(spw__read_file(SPW_TEST_DATA "/vectors/onnx/decoder.onnx", &data, &size), 0);
    uint8_t *copy = malloc(size);
    assert_non_null(copy);
    memcpy(copy, data, size);
    spw__free(data);
    static const spw_allocator failing = {fa_malloc, fa_realloc, fa_free, NULL};
    int rc = -1;
    long k;
    for (k = 1; k < 100000 && rc; k++) {
        fa.budget = k;
        fa.calls = 0;
        fa.live = 0;
        spw_set_allocator(&failing);
        spw_graph *g = NULL;
        rc = spw__onnx_import(copy, size, &g);
        if (!rc) {
            rc = spw__graph_infer_shapes(g, 2);
            spw__graph_free(g);
        }
        spw_set_allocator(NULL);
        if (rc && rc != SPW_ENOMEM)
            fail_msg("allocation %ld failed: got %s: %s", k, spw_err_name(rc), spw_error_detail());
        assert_int_equal(fa.live, 0);
    }
    assert_int_equal(rc, 0);
    assert_true(k > 50); /* the decode and the graph both allocate */
    free(copy);
}

/* docs/OPS.md documents every op of SPW_OP_LIST. */
static void test_ops_documented(void **state)
{
    (void)state;
    void *data;
    size_t size;
    assert_int_equal(spw__read_file(SPW_SOURCE_DIR "/docs/OPS.md", &data, &size), 0);
    for (int op = 1; op < SPW_OP_COUNT; op++) {
        char heading[96];
        snprintf(heading, sizeof(heading), "\n### %s\n", spw__op_name((spw_op)op));
        if (!strstr(data, heading))
            fail_msg("docs/OPS.md lacks a section '### %s'", spw__op_name((spw_op)op));
    }
    spw__free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_conv_basic, arena_teardown),
        cmocka_unit_test_teardown(test_conv_attributes, arena_teardown),
        cmocka_unit_test_teardown(test_conv_transpose, arena_teardown),
        cmocka_unit_test_teardown(test_pools, arena_teardown),
        cmocka_unit_test_teardown(test_gemm_matmul, arena_teardown),
        cmocka_unit_test_teardown(test_activations, arena_teardown),
        cmocka_unit_test_teardown(test_axis_ops, arena_teardown),
        cmocka_unit_test_teardown(test_reshape, arena_teardown),
        cmocka_unit_test_teardown(test_pad, arena_teardown),
        cmocka_unit_test_teardown(test_batchnorm, arena_teardown),
        cmocka_unit_test_teardown(test_splitwire_ops, arena_teardown),
        cmocka_unit_test_teardown(test_broadcast, arena_teardown),
        cmocka_unit_test_teardown(test_initializers, arena_teardown),
        cmocka_unit_test_teardown(test_typed_file, arena_teardown),
        cmocka_unit_test_teardown(test_vector_files, arena_teardown),
        cmocka_unit_test_teardown(test_constant_nodes, arena_teardown),
        cmocka_unit_test_teardown(test_opsets, arena_teardown),
        cmocka_unit_test_teardown(test_unsupported, arena_teardown),
        cmocka_unit_test_teardown(test_inconsistent, arena_teardown),
        cmocka_unit_test_teardown(test_graph_errors, arena_teardown),
        cmocka_unit_test_teardown(test_truncated, arena_teardown),
        cmocka_unit_test_teardown(test_byte_flips, arena_teardown),
        cmocka_unit_test_teardown(test_fuzz_regressions, arena_teardown),
        cmocka_unit_test_teardown(test_alloc_failures, arena_teardown),
        cmocka_unit_test_teardown(test_ops_documented, arena_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* ONNX import: protobuf bytes -> spw_graph.
 *
 * Order of work: a cheap wire-format walk (clear errors for truncated files,
 * and a nesting limit so hostile input cannot exhaust the stack inside
 * protobuf-c's recursive decoder), the protobuf-c decode through the library
 * allocator, then opsets, initializers, graph inputs, Constant nodes, the
 * other nodes and finally the graph outputs. Constants come first so nodes
 * can read their parameter inputs (Clip, Reshape, Pad) whatever the file's
 * node order is. */
#include <stdio.h>
#include <string.h>

#include "runtime/onnx/onnx_internal.h"

/* Model -> graph -> node -> attribute -> graph ... ; real files stay far
 * below this, and it bounds the decoder's recursion. */
#define MAX_NESTING 32
/* Per-node input/output lists longer than this are not a CNN. */
#define MAX_NODE_IO (1 << 20)

/* ---- wire-format walk ---------------------------------------------------- */

static int read_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*pos >= len)
            return -1;
        uint8_t b = p[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

static int wire_check(const uint8_t *p, size_t len, size_t base,
                      const ProtobufCMessageDescriptor *desc, int depth)
{
    if (depth > MAX_NESTING)
        return spw__error(SPW_EFORMAT,
                          "not a valid ONNX model: messages nested deeper than %d at byte %zu",
                          MAX_NESTING, base);
    size_t pos = 0;
    while (pos < len) {
        size_t at = base + pos;
        uint64_t key, v;
        if (read_varint(p, len, &pos, &key))
            return spw__error(SPW_EFORMAT,
                              "not a valid ONNX model: truncated field key at byte %zu", at);
        uint64_t field = key >> 3;
        unsigned wire = (unsigned)(key & 7);
        if (field == 0 || field > 0x1fffffff)
            return spw__error(SPW_EFORMAT,
                              "not a valid ONNX model: invalid field number at byte %zu", at);
        switch (wire) {
        case 0:
            if (read_varint(p, len, &pos, &v))
                return spw__error(SPW_EFORMAT,
                                  "not a valid ONNX model: field %llu at byte %zu is truncated",
                                  (unsigned long long)field, at);
            break;
        case 1:
        case 5: {
            size_t n = wire == 1 ? 8 : 4;
            if (len - pos < n)
                return spw__error(SPW_EFORMAT,
                                  "not a valid ONNX model: field %llu at byte %zu is truncated",
                                  (unsigned long long)field, at);
            pos += n;
            break;
        }
        case 2: {
            if (read_varint(p, len, &pos, &v) || v > len - pos)
                return spw__error(SPW_EFORMAT,
                                  "not a valid ONNX model: field %llu at byte %zu is truncated "
                                  "(%zu of its bytes present)",
                                  (unsigned long long)field, at, len - SPW_MIN(pos, len));
            const ProtobufCFieldDescriptor *f =
                desc ? protobuf_c_message_descriptor_get_field(desc, (unsigned)field) : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                int rc = wire_check(p + pos, (size_t)v, base + pos, f->descriptor, depth + 1);
                if (rc)
                    return rc;
            }
            pos += (size_t)v;
            break;
        }
        default:
            return spw__error(SPW_EFORMAT,
                              "not a valid ONNX model: unsupported wire type %u at byte %zu", wire,
                              at);
        }
    }
    return 0;
}

/* ---- protobuf-c allocator ------------------------------------------------ */

/* Routes protobuf-c through spw__malloc so replaced allocators (and their
 * failures) cover the decode too; `failed` tells ENOMEM from bad bytes. */
typedef struct pb_state {
    bool failed;
} pb_state;

static void *pb_alloc(void *ctx, size_t size)
{
    void *p = spw__malloc(size);
    if (!p)
        ((pb_state *)ctx)->failed = true;
    return p;
}

static void pb_free(void *ctx, void *ptr)
{
    (void)ctx;
    spw__free(ptr);
}

/* ---- name index ---------------------------------------------------------- */

static size_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)h;
}

int spw__onnx_find(const spw_onnx_importer *im, const char *name)
{
    for (size_t h = hash_name(name) & im->mask;; h = (h + 1) & im->mask) {
        int v = im->slots[h];
        if (v < 0 || !strcmp(im->g->values[v].name, name))
            return v;
    }
}

static int index_init(spw_onnx_importer *im, size_t names)
{
    size_t cap = 16;
    while (cap < 2 * names) {
        if (cap > ((size_t)1 << 29))
            return spw__error(SPW_EUNSUPPORTED, "the model names too many values (%zu)", names);
        cap *= 2;
    }
    im->slots = spw__malloc(cap * sizeof(int));
    if (!im->slots)
        return spw__error(SPW_ENOMEM, "out of memory indexing %zu value names", names);
    memset(im->slots, 0xff, cap * sizeof(int));
    im->mask = cap - 1;
    return 0;
}

/* Indexes value v, whose name must be new. The index holds at least twice as
 * many slots as the file has names, so a free slot always exists. */
static void index_insert(spw_onnx_importer *im, int v)
{
    size_t h = hash_name(im->g->values[v].name) & im->mask;
    while (im->slots[h] >= 0)
        h = (h + 1) & im->mask;
    im->slots[h] = v;
}

static int add_value(spw_onnx_importer *im, const char *name)
{
    int v = spw__graph_add_value(im->g, name);
    if (v >= 0)
        index_insert(im, v);
    return v;
}

static int find_or_add(spw_onnx_importer *im, const char *name)
{
    int v = spw__onnx_find(im, name);
    return v >= 0 ? v : add_value(im, name);
}

/* Adds a decoded constant; frees t->data when the graph does not take it. */
static int add_const(spw_onnx_importer *im, const char *name, spw_onnx_tensor *t)
{
    int v = spw__graph_add_const(im->g, name, t->dtype, t->ndim, t->dims, t->data);
    if (v < 0) {
        spw__free(t->data);
        return v;
    }
    t->data = NULL;
    index_insert(im, v);
    return v;
}

static const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

/* ---- pieces of the model ------------------------------------------------- */

static int check_opsets(spw_onnx_importer *im, const Onnx__ModelProto *m)
{
    int64_t onnx = -1;
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[i];
        const char *domain = str_or_empty(o->domain);
        int64_t version = o->has_version ? o->version : 0;
        if (!*domain || !strcmp(domain, "ai.onnx")) {
            onnx = SPW_MAX(onnx, version);
        } else if (!strcmp(domain, SPW_DOMAIN_SPLITWIRE)) {
            if (version != 1)
                return spw__error(SPW_EUNSUPPORTED,
                                  "the model imports opset %lld of domain '%s'; only version 1 "
                                  "is supported",
                                  (long long)version, domain);
            im->splitwire_opset = true;
        } else {
            SPW_LOGD("ignoring opset import of domain '%s' version %lld", domain,
                     (long long)version);
        }
    }
    if (onnx >= 0 && onnx < SPW_ONNX_MIN_OPSET)
        return spw__error(SPW_EUNSUPPORTED,
                          "the model uses ai.onnx opset %lld; opset %d or newer is required "
                          "(re-export it with a newer opset)",
                          (long long)onnx, SPW_ONNX_MIN_OPSET);
    im->g->opset = onnx < 0 ? 0 : onnx;
    return 0;
}

/* Type and shape of a graph input or output. With need set (inputs) both
 * element type and shape must be present. Dims given by name (dim_param) or
 * not at all become -1: a free size, bound at plan time. */
static int value_type(const Onnx__ValueInfoProto *vi, const char *what, bool need, spw_value *v)
{
    const char *name = str_or_empty(vi->name);
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case == ONNX__TYPE_PROTO__VALUE__NOT_SET) {
        if (need)
            return spw__error(SPW_EFORMAT, "%s '%s' has no type", what, name);
        return 0;
    }
    if (tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
        return spw__error(SPW_EUNSUPPORTED, "%s '%s' is not a tensor", what, name);
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (!tt->has_elem_type) {
        if (need)
            return spw__error(SPW_EFORMAT, "%s '%s' has no element type", what, name);
        return 0;
    }
    spw_dtype dtype = spw__onnx_value_dtype(tt->elem_type);
    if (dtype == SPW_DTYPE_INVALID)
        return spw__error(SPW_EUNSUPPORTED, "%s '%s' has element type %s, which is not supported",
                          what, name, spw__onnx_type_name(tt->elem_type));
    if (!tt->shape) {
        if (need)
            return spw__error(SPW_EUNSUPPORTED, "%s '%s' has no shape", what, name);
        v->dtype = dtype;
        return 0;
    }
    if (tt->shape->n_dim > SPW_MAX_DIMS)
        return spw__error(SPW_EUNSUPPORTED, "%s '%s' has %zu dims (at most %d supported)", what,
                          name, tt->shape->n_dim, SPW_MAX_DIMS);
    int64_t dims[SPW_MAX_DIMS];
    for (size_t i = 0; i < tt->shape->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        dims[i] = -1;
        if (d->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
            continue;
        if (d->dim_value < 0 || d->dim_value > SPW_ONNX_MAX_DIM)
            return spw__error(SPW_EFORMAT, "%s '%s': dim %zu is %lld", what, name, i,
                              (long long)d->dim_value);
        dims[i] = d->dim_value;
    }
    v->dtype = dtype;
    v->ndim = (int)tt->shape->n_dim;
    memcpy(v->dims, dims, sizeof(int64_t) * tt->shape->n_dim);
    return 0;
}

static int import_initializers(spw_onnx_importer *im, const Onnx__GraphProto *gp)
{
    if (gp->n_sparse_initializer)
        return spw__error(SPW_EUNSUPPORTED, "sparse initializers are not supported");
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *t = gp->initializer[i];
        const char *name = str_or_empty(t->name);
        char what[160];
        snprintf(what, sizeof(what), "initializer '%s'", name);
        if (!*name)
            return spw__error(SPW_EFORMAT, "initializer %zu has no name", i);
        if (spw__onnx_find(im, name) >= 0)
            return spw__error(SPW_EFORMAT, "%s is defined twice", what);
        spw_onnx_tensor dec;
        int rc = spw__onnx_tensor_decode(t, what, &dec);
        if (rc)
            return rc;
        if ((rc = add_const(im, name, &dec)) < 0)
            return rc;
    }
    return 0;
}

static int import_inputs(spw_onnx_importer *im, const Onnx__GraphProto *gp)
{
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        const char *name = str_or_empty(vi->name);
        if (!*name)
            return spw__error(SPW_EFORMAT, "graph input %zu has no name", i);
        int v = spw__onnx_find(im, name);
        if (v >= 0) {
            /* Older exporters list every initializer as an input too. */
            if (im->g->values[v].flags & SPW_VALUE_CONST)
                continue;
            return spw__error(SPW_EFORMAT, "graph input '%s' is listed twice", name);
        }
        if ((v = add_value(im, name)) < 0)
            return v;
        int rc = value_type(vi, "graph input", true, &im->g->values[v]);
        if (rc || (rc = spw__graph_add_input(im->g, v)))
            return rc;
    }
    return 0;
}

static int import_outputs(spw_onnx_importer *im, const Onnx__GraphProto *gp)
{
    if (!gp->n_output)
        return spw__error(SPW_EFORMAT, "the graph has no outputs");
    for (size_t i = 0; i < gp->n_output; i++) {
        const Onnx__ValueInfoProto *vi = gp->output[i];
        const char *name = str_or_empty(vi->name);
        if (!*name)
            return spw__error(SPW_EFORMAT, "graph output %zu has no name", i);
        int v = find_or_add(im, name);
        if (v < 0)
            return v;
        spw_value *val = &im->g->values[v];
        if (val->flags & SPW_VALUE_OUTPUT)
            return spw__error(SPW_EFORMAT, "graph output '%s' is listed twice", name);
        /* The declared type of a computed output is kept for shape inference
         * to check against. */
        int rc = 0;
        if (!(val->flags & (SPW_VALUE_CONST | SPW_VALUE_INPUT)))
            rc = value_type(vi, "graph output", false, val);
        if (rc || (rc = spw__graph_add_output(im->g, v)))
            return rc;
    }
    return 0;
}

static bool is_default_domain(const char *domain)
{
    return !domain || !*domain || !strcmp(domain, "ai.onnx");
}

static bool is_constant_node(const Onnx__NodeProto *np)
{
    return is_default_domain(np->domain) && np->op_type && !strcmp(np->op_type, "Constant");
}

/* Name used in messages: the node's own, or the one the graph will give it. */
static const char *node_label(const spw_onnx_importer *im, const Onnx__NodeProto *np, char *buf,
                              size_t size)
{
    if (np->name && *np->name)
        return np->name;
    snprintf(buf, size, "%s_%d", str_or_empty(np->op_type), im->g->n_nodes);
    return buf;
}

static int import_constant(spw_onnx_importer *im, const Onnx__NodeProto *np)
{
    char buf[96];
    spw_onnx_node nd = {.np = np, .op_type = "Constant"};
    nd.name = node_label(im, np, buf, sizeof(buf));
    if (np->n_output != 1 || !np->output[0] || !np->output[0][0])
        return spw__error(SPW_EFORMAT, "node '%s' (Constant): needs exactly one named output",
                          nd.name);
    const char *out = np->output[0];
    if (spw__onnx_find(im, out) >= 0)
        return spw__error(SPW_EFORMAT, "node '%s' (Constant): output '%s' is already defined",
                          nd.name, out);
    spw_onnx_tensor t;
    int rc = spw__onnx_constant_value(&nd, &t);
    if (rc)
        return rc;
    rc = add_const(im, out, &t);
    return rc < 0 ? rc : 0;
}

static int import_node(spw_onnx_importer *im, const Onnx__NodeProto *np)
{
    char buf[96];
    const char *op_type = str_or_empty(np->op_type);
    const char *domain = str_or_empty(np->domain);
    spw_onnx_node nd = {.np = np, .op_type = op_type};
    nd.name = node_label(im, np, buf, sizeof(buf));
    nd.op = spw__op_lookup(domain, op_type);
    if (nd.op == SPW_OP_INVALID)
        return spw__error(SPW_EUNSUPPORTED, "node '%s': unsupported op '%s' (domain '%s')", nd.name,
                          op_type, domain);
    if (!*spw__op_domain(nd.op) && im->g->opset == 0)
        return spw__error(SPW_EFORMAT, "node '%s' (%s): the model imports no ai.onnx opset",
                          nd.name, op_type);
    if (*spw__op_domain(nd.op) && !im->splitwire_opset)
        return spw__error(SPW_EFORMAT, "node '%s' (%s): the model does not import domain '%s'",
                          nd.name, op_type, spw__op_domain(nd.op));
    if (np->n_input > MAX_NODE_IO || np->n_output > MAX_NODE_IO)
        return spw__error(SPW_EUNSUPPORTED, "node '%s' (%s): too many inputs or outputs", nd.name,
                          op_type);
    int rc = spw__onnx_decode_params(im, &nd);
    if (rc)
        return rc;

    /* Trailing empty output names are omitted optional outputs. */
    size_t n_out = np->n_output;
    while (n_out && (!np->output[n_out - 1] || !np->output[n_out - 1][0]))
        n_out--;
    if (!n_out)
        return spw__error(SPW_EFORMAT, "node '%s' (%s): has no outputs", nd.name, op_type);
    int n_in = (int)SPW_MIN((size_t)nd.n_keep, np->n_input);
    int *ins = spw__malloc(sizeof(int) * (size_t)(n_in + (int)n_out));
    if (!ins)
        return spw__error(SPW_ENOMEM, "node '%s' (%s): out of memory", nd.name, op_type);
    int *outs = ins + n_in;
    for (int k = 0; k < n_in && !rc; k++) {
        const char *name = np->input[k];
        if (!name || !*name) {
            ins[k] = -1; /* an omitted optional input */
            continue;
        }
        int v = find_or_add(im, name);
        if (v < 0)
            rc = v;
        ins[k] = v;
    }
    for (size_t k = 0; k < n_out && !rc; k++) {
        const char *name = np->output[k];
        if (!name || !*name) {
            rc = spw__error(SPW_EFORMAT, "node '%s' (%s): output %zu has no name", nd.name, op_type,
                            k);
            break;
        }
        int v = find_or_add(im, name);
        if (v < 0)
            rc = v;
        outs[k] = v;
    }
    if (!rc) {
        int idx = spw__graph_add_node(im->g, nd.op, np->name, ins, n_in, outs, (int)n_out);
        if (idx < 0)
            rc = idx;
        else
            im->g->nodes[idx].p = nd.p;
    }
    spw__free(ins);
    return rc;
}

/* Upper bound of distinct names, to size the index once. */
static int count_names(const Onnx__GraphProto *gp, size_t *out)
{
    size_t n = 1;
    bool ok = spw__add_ok(n, gp->n_initializer, &n) && spw__add_ok(n, gp->n_input, &n) &&
              spw__add_ok(n, gp->n_output, &n);
    for (size_t i = 0; i < gp->n_node && ok; i++)
        ok = spw__add_ok(n, gp->node[i]->n_input, &n) && spw__add_ok(n, gp->node[i]->n_output, &n);
    if (!ok)
        return spw__error(SPW_EUNSUPPORTED, "the model names too many values");
    *out = n;
    return 0;
}

static int import_model(spw_onnx_importer *im, const Onnx__ModelProto *m)
{
    int rc;
    const Onnx__GraphProto *gp = m->graph;
    if ((rc = check_opsets(im, m)))
        return rc;
    if (!gp)
        return spw__error(SPW_EFORMAT, "the model has no graph");
    if ((m->producer_name && *m->producer_name &&
         !(im->g->producer = spw__strdup(m->producer_name))) ||
        (gp->name && *gp->name && !(im->g->name = spw__strdup(gp->name))))
        return spw__error(SPW_ENOMEM, "out of memory copying model names");
    size_t names = 0;
    if ((rc = count_names(gp, &names)) || (rc = index_init(im, names)))
        return rc;
    if ((rc = import_initializers(im, gp)) || (rc = import_inputs(im, gp)))
        return rc;
    for (size_t i = 0; i < gp->n_node; i++)
        if (is_constant_node(gp->node[i]) && (rc = import_constant(im, gp->node[i])))
            return rc;
    for (size_t i = 0; i < gp->n_node; i++)
        if (!is_constant_node(gp->node[i]) && (rc = import_node(im, gp->node[i])))
            return rc;
    return import_outputs(im, gp);
}

int spw__onnx_import(const void *data, size_t size, spw_graph **out)
{
    static const uint8_t empty[1];
    if (!out || (!data && size))
        return spw__error(SPW_EINVAL, "spw__onnx_import: NULL argument");
    *out = NULL;
    if (!data)
        data = empty;
    int rc = wire_check(data, size, 0, &onnx__model_proto__descriptor, 0);
    if (rc)
        return rc;

    pb_state st = {false};
    ProtobufCAllocator pa = {pb_alloc, pb_free, &st};
    Onnx__ModelProto *m = onnx__model_proto__unpack(&pa, size, data);
    if (!m)
        return st.failed
                   ? spw__error(SPW_ENOMEM, "out of memory decoding the ONNX protobuf")
                   : spw__error(SPW_EFORMAT, "not a valid ONNX model: protobuf decoding failed");

    spw_graph *g;
    if ((rc = spw__graph_create(&g)))
        goto fail_model;
    spw_onnx_importer im = {.g = g};
    rc = import_model(&im, m);
    spw__free(im.slots);
    if (rc)
        goto fail_graph;
    onnx__model_proto__free_unpacked(m, &pa);
    *out = g;
    return 0;

fail_graph:
    spw__graph_free(g);
fail_model:
    onnx__model_proto__free_unpacked(m, &pa);
    return rc;
}

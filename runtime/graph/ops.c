/* The op table: names, domains and cost accounting. */
#include <string.h>

#include "runtime/graph/graph.h"

static const struct {
    const char *name;
    const char *domain;
} op_info[SPW_OP_COUNT] = {[SPW_OP_INVALID] = {"Invalid", ""},
#define SPW__OP_INFO(e, n, d) [SPW_OP_##e] = {n, d},
                           SPW_OP_LIST(SPW__OP_INFO)
#undef SPW__OP_INFO
};

const char *spw__op_name(spw_op op)
{
    return (unsigned)op < SPW_OP_COUNT ? op_info[op].name : "Invalid";
}

const char *spw__op_domain(spw_op op)
{
    return (unsigned)op < SPW_OP_COUNT ? op_info[op].domain : "";
}

spw_op spw__op_lookup(const char *domain, const char *op_type)
{
    if (!domain || !strcmp(domain, "ai.onnx"))
        domain = "";
    for (int i = 1; i < SPW_OP_COUNT; i++)
        if (!strcmp(op_info[i].name, op_type) && !strcmp(op_info[i].domain, domain))
            return (spw_op)i;
    return SPW_OP_INVALID;
}

static int64_t numel_of(const spw_graph *g, int v)
{
    return v < 0 ? 0 : spw__value_numel(&g->values[v]);
}

/* Multiply-accumulates per op family, at the inferred shapes: out is the
 * output's element count, x and w the first two inputs (NULL if absent). */
static int64_t macs_conv(const spw_node *n, int64_t out, const spw_value *x, const spw_value *w)
{
    /* Each output element sums Cin/group * kH * kW products: W is [Cout, Cin/g, kH, kW]. */
    if (!w || w->ndim != 4)
        return 0;
    return out * w->dims[1] * w->dims[2] * w->dims[3];
}

static int64_t macs_conv_transpose(const spw_node *n, int64_t out, const spw_value *x,
                                   const spw_value *w)
{
    /* Every input element scatters into Cout/group * kH * kW outputs: W is [Cin, Cout/g, kH, kW]. */
    int64_t in = x ? spw__value_numel(x) : -1;
    if (!w || w->ndim != 4 || in < 0)
        return 0;
    return in * w->dims[1] * w->dims[2] * w->dims[3];
}

static int64_t macs_gemm(const spw_node *n, int64_t out, const spw_value *x, const spw_value *w)
{
    if (!x || x->ndim != 2)
        return 0;
    return out * (n->p.gemm.trans_a ? x->dims[0] : x->dims[1]);
}

static int64_t macs_matmul(const spw_node *n, int64_t out, const spw_value *x, const spw_value *w)
{
    if (!x || x->ndim < 1)
        return 0;
    return out * x->dims[x->ndim - 1];
}

static int64_t macs_gdn(const spw_node *n, int64_t out, const spw_value *x, const spw_value *w)
{
    /* sum over C of gamma * x^2 per output element */
    if (!x || x->ndim < 2)
        return 0;
    return out * x->dims[1];
}

static int64_t macs_pool(const spw_node *n, int64_t out, const spw_value *x, const spw_value *w)
{
    return out * n->p.pool.kernel[0] * n->p.pool.kernel[1];
}

static int64_t macs_global_pool(const spw_node *n, int64_t out, const spw_value *x,
                                const spw_value *w)
{
    return x ? spw__value_numel(x) : 0;
}

static int64_t macs_per_output(const spw_node *n, int64_t out, const spw_value *x,
                               const spw_value *w)
{
    return out;
}

/* Graph-level facts per op (docs/ADDING_AN_OP.md, optional rows): whether
 * its output can carry fused post ops, the post op it becomes when fused
 * into its producer (an activation), and its multiply-accumulates (NULL:
 * data movement, 0). */
static const struct {
    bool carries_post;
    spw_post_kind as_post;
    int64_t (*macs)(const spw_node *n, int64_t out, const spw_value *x, const spw_value *w);
} op_rows[SPW_OP_COUNT] = {
    [SPW_OP_CONV] = {.carries_post = true, .macs = macs_conv},
    [SPW_OP_CONV_TRANSPOSE] = {.carries_post = true, .macs = macs_conv_transpose},
    [SPW_OP_GEMM] = {.carries_post = true, .macs = macs_gemm},
    [SPW_OP_MATMUL] = {.carries_post = true, .macs = macs_matmul},
    [SPW_OP_ADD] = {.carries_post = true, .as_post = SPW_POST_ADD, .macs = macs_per_output},
    [SPW_OP_MUL] = {.carries_post = true, .macs = macs_per_output},
    [SPW_OP_BATCH_NORM] = {.carries_post = true, .macs = macs_per_output},
    [SPW_OP_GDN] = {.carries_post = true, .macs = macs_gdn},
    [SPW_OP_AVG_POOL] = {.carries_post = true, .macs = macs_pool},
    [SPW_OP_MAX_POOL] = {.macs = macs_pool},
    [SPW_OP_GLOBAL_AVG_POOL] = {.carries_post = true, .macs = macs_global_pool},
    [SPW_OP_RELU] = {.as_post = SPW_POST_RELU},
    [SPW_OP_CLIP] = {.as_post = SPW_POST_CLIP},
    [SPW_OP_LEAKY_RELU] = {.as_post = SPW_POST_LEAKY_RELU},
    [SPW_OP_SIGMOID] = {.as_post = SPW_POST_SIGMOID},
    [SPW_OP_HARD_SWISH] = {.as_post = SPW_POST_HARD_SWISH},
};

bool spw__op_carries_post(spw_op op)
{
    return (unsigned)op < SPW_OP_COUNT && op_rows[op].carries_post;
}

bool spw__op_activation(const spw_node *n, spw_post_op *out)
{
    if ((unsigned)n->op >= SPW_OP_COUNT || !op_rows[n->op].as_post ||
        op_rows[n->op].as_post == SPW_POST_ADD)
        return false;
    memset(out, 0, sizeof(*out));
    out->kind = op_rows[n->op].as_post;
    if (out->kind == SPW_POST_CLIP) {
        out->a = n->p.clip.min;
        out->b = n->p.clip.max;
    } else if (out->kind == SPW_POST_LEAKY_RELU) {
        out->a = n->p.leaky.alpha;
    }
    return true;
}

int64_t spw__node_macs(const spw_graph *g, const spw_node *n)
{
    if (n->n_outputs < 1 || (unsigned)n->op >= SPW_OP_COUNT || !op_rows[n->op].macs)
        return 0;
    int64_t out = numel_of(g, n->outputs[0]);
    if (out < 0)
        return 0;
    const spw_value *x = n->n_inputs > 0 && n->inputs[0] >= 0 ? &g->values[n->inputs[0]] : NULL;
    const spw_value *w = n->n_inputs > 1 && n->inputs[1] >= 0 ? &g->values[n->inputs[1]] : NULL;
    return op_rows[n->op].macs(n, out, x, w);
}

int64_t spw__node_params(const spw_graph *g, const spw_node *n)
{
    int64_t total = 0;
    for (int k = 0; k < n->n_inputs; k++) {
        int v = n->inputs[k];
        if (v >= 0 && (g->values[v].flags & SPW_VALUE_CONST) &&
            (g->values[v].dtype == SPW_F32 || g->values[v].dtype == SPW_F16))
            total += spw__value_numel(&g->values[v]);
    }
    return total;
}

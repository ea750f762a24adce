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

int64_t spw__node_macs(const spw_graph *g, const spw_node *n)
{
    if (n->n_outputs < 1)
        return 0;
    int64_t out = numel_of(g, n->outputs[0]);
    if (out < 0)
        return 0;
    const spw_value *x = n->n_inputs > 0 && n->inputs[0] >= 0 ? &g->values[n->inputs[0]] : NULL;
    const spw_value *w = n->n_inputs > 1 && n->inputs[1] >= 0 ? &g->values[n->inputs[1]] : NULL;
    switch (n->op) {
    case SPW_OP_CONV:
        /* Each output element sums Cin/group * kH * kW products: W is [Cout, Cin/g, kH, kW]. */
        if (!w || w->ndim != 4)
            return 0;
        return out * w->dims[1] * w->dims[2] * w->dims[3];
    case SPW_OP_CONV_TRANSPOSE: {
        /* Every input element scatters into Cout/group * kH * kW outputs: W is [Cin, Cout/g, kH, kW]. */
        int64_t in = x ? spw__value_numel(x) : -1;
        if (!w || w->ndim != 4 || in < 0)
            return 0;
        return in * w->dims[1] * w->dims[2] * w->dims[3];
    }
    case SPW_OP_GEMM: {
        if (!x || x->ndim != 2)
            return 0;
        int64_t k = n->p.gemm.trans_a ? x->dims[0] : x->dims[1];
        return out * k;
    }
    case SPW_OP_MATMUL:
        if (!x || x->ndim < 1)
            return 0;
        return out * x->dims[x->ndim - 1];
    case SPW_OP_GDN:
        /* sum over C of gamma * x^2 per output element */
        if (!x || x->ndim < 2)
            return 0;
        return out * x->dims[1];
    case SPW_OP_AVG_POOL:
    case SPW_OP_MAX_POOL:
        return out * n->p.pool.kernel[0] * n->p.pool.kernel[1];
    case SPW_OP_GLOBAL_AVG_POOL:
        return x ? spw__value_numel(x) : 0;
    case SPW_OP_ADD:
    case SPW_OP_MUL:
    case SPW_OP_BATCH_NORM:
        return out;
    default:
        return 0;
    }
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

/* Inspection through the public API: a model's layers at one batch size
 * (spw_model_summarize) and a plan's steps with their profile times. */
#include <stdio.h>
#include <string.h>

#include "runtime/core/internal.h"
#include "runtime/graph/plan.h"

struct spw_summary {
    spw_graph *graph; /* a private copy: shapes bound, passes applied */
    int *order;       /* live nodes in execution order */
    int n_order;
    char (*fused)[256]; /* per entry of order */
};

static void post_str(const spw_graph *g, const spw_node *n, char *buf, size_t size)
{
    static const char *const names[] = {"",        "relu",       "clip", "leaky_relu",
                                        "sigmoid", "hard_swish", "add"};
    size_t used = 0;
    buf[0] = '\0';
    for (int k = 0; k < n->n_post && used < size; k++) {
        const spw_post_op *p = &n->post[k];
        int w;
        if (p->kind == SPW_POST_ADD)
            w = snprintf(buf + used, size - used, "+add(%s)", g->values[p->value].name);
        else if (p->kind == SPW_POST_CLIP)
            w = snprintf(buf + used, size - used, "+clip(%g,%g)", p->a, p->b);
        else
            w = snprintf(buf + used, size - used, "+%s", names[p->kind]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

int spw_model_summarize(const spw_model *model, int batch, unsigned flags, spw_summary **out)
{
    if (!model || !out || batch < 1 || (flags & ~SPW_SUMMARY_FUSED))
        return spw__error(SPW_EINVAL, "spw_model_summarize: bad arguments (batch %d)", batch);
    *out = NULL;
    spw_summary *s = spw__calloc(1, sizeof(*s));
    if (!s)
        return spw__error(SPW_ENOMEM, "out of memory");
    int rc = spw__graph_clone(model->graph, &s->graph);
    if (rc)
        goto fail;
    spw_graph *g = s->graph;
    if ((rc = spw__graph_infer_shapes(g, batch)))
        goto fail;
    if ((flags & SPW_SUMMARY_FUSED) &&
        ((rc = spw__pass_drop_identity(g)) || (rc = spw__pass_fold_batchnorm(g)) ||
         (rc = spw__pass_fuse(g))))
        goto fail;
    s->order = spw__malloc(sizeof(int) * (size_t)(g->n_nodes ? g->n_nodes : 1));
    s->fused = spw__calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof(*s->fused));
    if (!s->order || !s->fused) {
        rc = spw__error(SPW_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = spw__graph_link(g)) || (rc = spw__graph_topo_order(g, s->order, &s->n_order)))
        goto fail;
    for (int i = 0; i < s->n_order; i++)
        post_str(g, &g->nodes[s->order[i]], s->fused[i], sizeof(s->fused[i]));
    *out = s;
    return 0;
fail:
    spw_summary_free(s);
    return rc;
}

void spw_summary_free(spw_summary *s)
{
    if (!s)
        return;
    spw__graph_free(s->graph);
    spw__free(s->order);
    spw__free(s->fused);
    spw__free(s);
}

int64_t spw_summary_opset(const spw_summary *s)
{
    return s ? s->graph->opset : 0;
}

const char *spw_summary_producer(const spw_summary *s)
{
    return s ? s->graph->producer : NULL;
}

int spw_summary_num_inputs(const spw_summary *s)
{
    return s ? s->graph->n_inputs : 0;
}

int spw_summary_num_outputs(const spw_summary *s)
{
    return s ? s->graph->n_outputs : 0;
}

static void describe(const spw_value *v, spw_tensor *desc)
{
    memset(desc, 0, sizeof(*desc));
    desc->dtype = v->dtype;
    desc->layout = SPW_LAYOUT_NCHW;
    desc->ndim = v->ndim;
    for (int d = 0; d < v->ndim && d < SPW_MAX_DIMS; d++)
        desc->dims[d] = v->dims[d];
}

static int io_value(const spw_summary *s, bool input, int idx, spw_tensor *desc, const char **name)
{
    int n = input ? spw_summary_num_inputs(s) : spw_summary_num_outputs(s);
    if (!s || !desc || idx < 0 || idx >= n)
        return spw__error(SPW_EINVAL, "no %s %d", input ? "input" : "output", idx);
    const spw_value *v = &s->graph->values[input ? s->graph->inputs[idx] : s->graph->outputs[idx]];
    describe(v, desc);
    if (name)
        *name = v->name;
    return 0;
}

int spw_summary_input(const spw_summary *s, int idx, spw_tensor *desc, const char **name)
{
    return io_value(s, true, idx, desc, name);
}

int spw_summary_output(const spw_summary *s, int idx, spw_tensor *desc, const char **name)
{
    return io_value(s, false, idx, desc, name);
}

int spw_summary_num_layers(const spw_summary *s)
{
    return s ? s->n_order : 0;
}

int spw_summary_layer(const spw_summary *s, int idx, spw_layer_info *out)
{
    if (!s || !out || idx < 0 || idx >= s->n_order)
        return spw__error(SPW_EINVAL, "no layer %d", idx);
    const spw_graph *g = s->graph;
    const spw_node *n = &g->nodes[s->order[idx]];
    memset(out, 0, sizeof(*out));
    out->name = n->name;
    out->op = spw__op_name(n->op);
    out->domain = spw__op_domain(n->op);
    out->fused = s->fused[idx];
    describe(&g->values[n->outputs[0]], &out->output);
    out->n_inputs = n->n_inputs;
    out->params = spw__node_params(g, n);
    out->macs = spw__node_macs(g, n);
    return 0;
}

int spw_summary_layer_input(const spw_summary *s, int idx, int k, spw_tensor *desc,
                            const char **name, int *is_const)
{
    if (!s || !desc || idx < 0 || idx >= s->n_order)
        return spw__error(SPW_EINVAL, "no layer %d", idx);
    const spw_node *n = &s->graph->nodes[s->order[idx]];
    if (k < 0 || k >= n->n_inputs)
        return spw__error(SPW_EINVAL, "layer '%s' has no input %d", n->name, k);
    if (n->inputs[k] < 0)
        return SPW_ENOENT;
    const spw_value *v = &s->graph->values[n->inputs[k]];
    describe(v, desc);
    if (name)
        *name = v->name;
    if (is_const)
        *is_const = (v->flags & SPW_VALUE_CONST) != 0;
    return 0;
}

int spw_plan_num_steps(const spw_plan *plan)
{
    return plan ? plan->n_steps : 0;
}

int spw_plan_step(const spw_plan *plan, int idx, spw_step_info *out)
{
    if (!plan || !out || idx < 0 || idx >= plan->n_steps)
        return spw__error(SPW_EINVAL, "no step %d", idx);
    const spw_node *n = &plan->graph->nodes[plan->steps[idx]];
    out->name = n->name;
    out->op = spw__op_name(n->op);
    out->macs = spw__node_macs(plan->graph, n);
    out->ns = plan->step_ns ? plan->step_ns[idx] : 0;
    return 0;
}

void spw_plan_profile_reset(spw_plan *plan)
{
    if (plan && plan->step_ns)
        memset(plan->step_ns, 0, sizeof(uint64_t) * (size_t)plan->n_steps);
}

size_t spw_plan_arena_bytes(const spw_plan *plan)
{
    return plan ? plan->arena_size : 0;
}

int spw_model_unbind_batch(spw_model *model)
{
    if (!model)
        return spw__error(SPW_EINVAL, "spw_model_unbind_batch: no model");
    if (__atomic_load_n(&model->weights, __ATOMIC_ACQUIRE))
        return spw__error(SPW_EBUSY, "the model already has plans: unbind its batch first");
    spw_graph *g;
    int rc = spw__graph_clone(model->graph, &g);
    if (rc)
        return rc;
    for (int i = 0; i < g->n_inputs; i++) {
        spw_value *v = &g->values[g->inputs[i]];
        if (v->ndim >= 1 && v->dims[0] == 1)
            v->dims[0] = -1;
    }
    if ((rc = spw__graph_infer_shapes(g, -1))) {
        spw__graph_free(g);
        return rc;
    }
    spw__graph_free(model->graph);
    model->graph = g;
    return 0;
}

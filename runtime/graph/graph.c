/* Graph construction, linking, ordering and copying. */
#include <stdio.h>
#include <string.h>

#include "runtime/graph/graph.h"

int spw__graph_create(spw_graph **out)
{
    spw_graph *g = spw__calloc(1, sizeof(*g));
    if (!g)
        return spw__error(SPW_ENOMEM, "out of memory creating a graph");
    g->opset = 0;
    *out = g;
    return 0;
}

void spw__graph_free(spw_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_values; i++) {
        spw__free(g->values[i].name);
        if (!(g->values[i].flags & SPW_VALUE_SHARED))
            spw__free(g->values[i].data);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        spw__free(g->nodes[i].name);
        spw__free(g->nodes[i].inputs);
        spw__free(g->nodes[i].outputs);
    }
    spw__free(g->values);
    spw__free(g->nodes);
    spw__free(g->inputs);
    spw__free(g->outputs);
    spw__free(g->producer);
    spw__free(g->name);
    spw__free(g);
}

int spw__graph_add_value(spw_graph *g, const char *name)
{
    int rc = spw__grow((void **)&g->values, &g->cap_values, g->n_values + 1, sizeof(spw_value));
    if (rc)
        return rc;
    char *copy = spw__strdup(name ? name : "");
    if (!copy)
        return spw__error(SPW_ENOMEM, "out of memory naming value '%s'", name ? name : "");
    spw_value *v = &g->values[g->n_values];
    memset(v, 0, sizeof(*v));
    v->name = copy;
    v->ndim = -1;
    v->producer = -1;
    return g->n_values++;
}

int spw__graph_add_const(spw_graph *g, const char *name, spw_dtype dtype, int ndim,
                         const int64_t *dims, void *data)
{
    if (ndim < 0 || ndim > SPW_MAX_DIMS)
        return spw__error(SPW_EUNSUPPORTED, "constant '%s' has %d dims (max %d)", name, ndim,
                          SPW_MAX_DIMS);
    int idx = spw__graph_add_value(g, name);
    if (idx < 0)
        return idx;
    spw_value *v = &g->values[idx];
    v->dtype = dtype;
    v->ndim = ndim;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        v->dims[i] = dims[i];
        n *= dims[i];
    }
    v->flags |= SPW_VALUE_CONST;
    v->data = data;
    v->nbytes = (size_t)n * spw_dtype_size(dtype);
    return idx;
}

int spw__graph_find_value(const spw_graph *g, const char *name)
{
    for (int i = 0; i < g->n_values; i++)
        if (!strcmp(g->values[i].name, name))
            return i;
    return -1;
}

int spw__graph_add_node(spw_graph *g, spw_op op, const char *name, const int *inputs, int n_inputs,
                        const int *outputs, int n_outputs)
{
    int rc = spw__grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof(spw_node));
    if (rc)
        return rc;
    spw_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof(*n));
    n->op = op;
    char anon[64];
    if (!name || !*name) {
        snprintf(anon, sizeof(anon), "%s_%d", spw__op_name(op), g->n_nodes);
        name = anon;
    }
    n->name = spw__strdup(name);
    n->inputs = spw__malloc(sizeof(int) * (size_t)(n_inputs > 0 ? n_inputs : 1));
    n->outputs = spw__malloc(sizeof(int) * (size_t)(n_outputs > 0 ? n_outputs : 1));
    if (!n->name || !n->inputs || !n->outputs) {
        spw__free(n->name);
        spw__free(n->inputs);
        spw__free(n->outputs);
        return spw__error(SPW_ENOMEM, "out of memory adding node '%s'", name);
    }
    if (n_inputs)
        memcpy(n->inputs, inputs, sizeof(int) * (size_t)n_inputs);
    if (n_outputs)
        memcpy(n->outputs, outputs, sizeof(int) * (size_t)n_outputs);
    n->n_inputs = n_inputs;
    n->n_outputs = n_outputs;
    return g->n_nodes++;
}

int spw__graph_add_input(spw_graph *g, int value)
{
    int rc = spw__grow((void **)&g->inputs, &g->cap_inputs, g->n_inputs + 1, sizeof(int));
    if (rc)
        return rc;
    g->inputs[g->n_inputs++] = value;
    g->values[value].flags |= SPW_VALUE_INPUT;
    return 0;
}

int spw__graph_add_output(spw_graph *g, int value)
{
    int rc = spw__grow((void **)&g->outputs, &g->cap_outputs, g->n_outputs + 1, sizeof(int));
    if (rc)
        return rc;
    g->outputs[g->n_outputs++] = value;
    g->values[value].flags |= SPW_VALUE_OUTPUT;
    return 0;
}

int spw__graph_link(spw_graph *g)
{
    for (int i = 0; i < g->n_values; i++) {
        g->values[i].producer = -1;
        g->values[i].n_consumers = 0;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const spw_node *n = &g->nodes[i];
        if (n->dead)
            continue;
        for (int k = 0; k < n->n_outputs; k++) {
            int v = n->outputs[k];
            if (v < 0 || v >= g->n_values)
                return spw__error(SPW_EFORMAT, "node '%s' (%s): output %d is invalid", n->name,
                                  spw__op_name(n->op), k);
            spw_value *val = &g->values[v];
            if (val->producer >= 0 || (val->flags & (SPW_VALUE_CONST | SPW_VALUE_INPUT)))
                return spw__error(SPW_EFORMAT,
                                  "node '%s' (%s): output '%s' is already defined elsewhere",
                                  n->name, spw__op_name(n->op), val->name);
            val->producer = i;
        }
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const spw_node *n = &g->nodes[i];
        if (n->dead)
            continue;
        for (int k = 0; k < n->n_inputs; k++) {
            int v = n->inputs[k];
            if (v < 0)
                continue;
            if (v >= g->n_values)
                return spw__error(SPW_EFORMAT, "node '%s' (%s): input %d is invalid", n->name,
                                  spw__op_name(n->op), k);
            spw_value *val = &g->values[v];
            if (val->producer < 0 && !(val->flags & (SPW_VALUE_CONST | SPW_VALUE_INPUT)))
                return spw__error(SPW_EFORMAT,
                                  "node '%s' (%s): input '%s' is neither a graph input, an "
                                  "initializer nor produced by a node",
                                  n->name, spw__op_name(n->op), val->name);
            val->n_consumers++;
        }
        for (int k = 0; k < n->n_post; k++)
            if (n->post[k].kind == SPW_POST_ADD)
                g->values[n->post[k].value].n_consumers++;
    }
    for (int i = 0; i < g->n_outputs; i++) {
        spw_value *val = &g->values[g->outputs[i]];
        if (val->producer < 0 && !(val->flags & (SPW_VALUE_CONST | SPW_VALUE_INPUT)))
            return spw__error(SPW_EFORMAT, "graph output '%s' is never produced", val->name);
    }
    return 0;
}

/* Kahn's algorithm keeping the file's order among ready nodes, so plans and
 * inspect listings follow the order the model author wrote. */
int spw__graph_topo_order(const spw_graph *g, int *order, int *count)
{
    int n_live = 0, rc = 0;
    unsigned char *done = spw__calloc((size_t)(g->n_nodes > 0 ? g->n_nodes : 1), 1);
    unsigned char *ready = spw__calloc((size_t)(g->n_values > 0 ? g->n_values : 1), 1);
    if (!done || !ready) {
        rc = spw__error(SPW_ENOMEM, "out of memory ordering the graph");
        goto out;
    }
    for (int v = 0; v < g->n_values; v++)
        ready[v] = g->values[v].producer < 0;
    for (int i = 0; i < g->n_nodes; i++) {
        if (!g->nodes[i].dead)
            n_live++;
    }
    int placed = 0;
    while (placed < n_live) {
        bool progress = false;
        for (int i = 0; i < g->n_nodes; i++) {
            const spw_node *n = &g->nodes[i];
            if (n->dead || done[i])
                continue;
            bool ok = true;
            for (int k = 0; k < n->n_inputs && ok; k++)
                ok = n->inputs[k] < 0 || ready[n->inputs[k]];
            for (int k = 0; k < n->n_post && ok; k++)
                ok = n->post[k].kind != SPW_POST_ADD || ready[n->post[k].value];
            if (!ok)
                continue;
            done[i] = 1;
            order[placed++] = i;
            for (int k = 0; k < n->n_outputs; k++)
                ready[n->outputs[k]] = 1;
            progress = true;
        }
        if (!progress) {
            for (int i = 0; i < g->n_nodes; i++) {
                if (!g->nodes[i].dead && !done[i]) {
                    rc = spw__error(SPW_EFORMAT, "node '%s' (%s) is part of a cycle",
                                    g->nodes[i].name, spw__op_name(g->nodes[i].op));
                    goto out;
                }
            }
        }
    }
    *count = placed;
out:
    spw__free(done);
    spw__free(ready);
    return rc;
}

int64_t spw__value_numel(const spw_value *v)
{
    if (v->ndim < 0)
        return -1;
    int64_t n = 1;
    for (int i = 0; i < v->ndim; i++) {
        if (v->dims[i] < 0)
            return -1;
        n *= v->dims[i];
    }
    return n;
}

static int copy_graph(const spw_graph *g, bool share, spw_graph **out)
{
    spw_graph *c = NULL;
    int rc = spw__graph_create(&c);
    if (rc)
        return rc;
    c->opset = g->opset;
    if ((g->producer && !(c->producer = spw__strdup(g->producer))) ||
        (g->name && !(c->name = spw__strdup(g->name)))) {
        rc = spw__error(SPW_ENOMEM, "out of memory copying a graph");
        goto fail;
    }
    for (int i = 0; i < g->n_values; i++) {
        const spw_value *v = &g->values[i];
        int idx = spw__graph_add_value(c, v->name);
        if (idx < 0) {
            rc = idx;
            goto fail;
        }
        spw_value *d = &c->values[idx];
        char *name = d->name;
        *d = *v;
        d->name = name;
        d->data = NULL;
        if (v->data && share) {
            d->data = v->data;
            d->flags |= SPW_VALUE_SHARED;
        } else if (v->data) {
            d->flags &= ~(unsigned)SPW_VALUE_SHARED;
            d->data = spw__malloc(v->nbytes);
            if (!d->data) {
                rc = spw__error(SPW_ENOMEM, "out of memory copying constant '%s'", v->name);
                goto fail;
            }
            memcpy(d->data, v->data, v->nbytes);
        }
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const spw_node *n = &g->nodes[i];
        int idx = spw__graph_add_node(c, n->op, n->name, n->inputs, n->n_inputs, n->outputs,
                                      n->n_outputs);
        if (idx < 0) {
            rc = idx;
            goto fail;
        }
        spw_node *d = &c->nodes[idx];
        d->p = n->p;
        d->n_post = n->n_post;
        memcpy(d->post, n->post, sizeof(n->post));
        d->dead = n->dead;
    }
    for (int i = 0; i < g->n_inputs; i++)
        if ((rc = spw__graph_add_input(c, g->inputs[i])))
            goto fail;
    for (int i = 0; i < g->n_outputs; i++)
        if ((rc = spw__graph_add_output(c, g->outputs[i])))
            goto fail;
    *out = c;
    return 0;
fail:
    spw__graph_free(c);
    return rc;
}

int spw__graph_clone(const spw_graph *g, spw_graph **out)
{
    return copy_graph(g, false, out);
}

int spw__graph_share(const spw_graph *g, spw_graph **out)
{
    return copy_graph(g, true, out);
}

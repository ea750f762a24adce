/* Graph passes used by the planner: BatchNorm folding, activation and
 * residual-add fusion, Identity removal. Each pass keeps the graph's meaning;
 * the CPU reference runs the unfused graph in tests to prove it. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "runtime/graph/graph.h"

static bool is_const(const spw_graph *g, int v)
{
    return v >= 0 && (g->values[v].flags & SPW_VALUE_CONST) && g->values[v].dtype == SPW_F32;
}

/* Rewires every use of value `from` (node inputs, post addends, graph outputs
 * excepted) to value `to`. */
static void replace_uses(spw_graph *g, int from, int to)
{
    for (int i = 0; i < g->n_nodes; i++) {
        spw_node *n = &g->nodes[i];
        if (n->dead)
            continue;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] == from)
                n->inputs[k] = to;
        for (int k = 0; k < n->n_post; k++)
            if (n->post[k].kind == SPW_POST_ADD && n->post[k].value == from)
                n->post[k].value = to;
    }
}

/* The only live consumer of value v, or -1 when it has none or several, or
 * when v must stay visible (graph output). */
static int sole_consumer(const spw_graph *g, int v)
{
    if (g->values[v].flags & SPW_VALUE_OUTPUT)
        return -1;
    int found = -1, uses = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const spw_node *n = &g->nodes[i];
        if (n->dead)
            continue;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] == v) {
                found = i;
                uses++;
            }
        for (int k = 0; k < n->n_post; k++)
            if (n->post[k].kind == SPW_POST_ADD && n->post[k].value == v) {
                found = i;
                uses++;
            }
    }
    return uses == 1 ? found : -1;
}

/* Conv followed by inference BatchNormalization: scale each output channel's
 * filter and fold the shift into the bias. */
int spw__pass_fold_batchnorm(spw_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) {
        spw_node *bn = &g->nodes[i];
        if (bn->dead || bn->op != SPW_OP_BATCH_NORM || bn->n_inputs < 5)
            continue;
        int x = bn->inputs[0];
        int ci = g->values[x].producer;
        if (ci < 0)
            continue;
        spw_node *conv = &g->nodes[ci];
        if (conv->dead || conv->op != SPW_OP_CONV || conv->n_post || sole_consumer(g, x) != i)
            continue;
        int wv = conv->inputs[1];
        int bv = conv->n_inputs > 2 ? conv->inputs[2] : -1;
        bool ok = is_const(g, wv) && (bv < 0 || is_const(g, bv));
        for (int k = 1; k < 5; k++)
            ok = ok && is_const(g, bn->inputs[k]);
        if (!ok || g->values[wv].ndim != 4)
            continue;
        const spw_value *w = &g->values[wv];
        int64_t cout = w->dims[0];
        int64_t per = w->dims[1] * w->dims[2] * w->dims[3];
        for (int k = 1; k < 5; k++)
            if (spw__value_numel(&g->values[bn->inputs[k]]) != cout)
                goto next;
        {
            const float *scale = g->values[bn->inputs[1]].data;
            const float *shift = g->values[bn->inputs[2]].data;
            const float *mean = g->values[bn->inputs[3]].data;
            const float *var = g->values[bn->inputs[4]].data;
            const float *b_old = bv >= 0 ? g->values[bv].data : NULL;
            float *nw = spw__malloc(w->nbytes);
            float *nb = spw__malloc(sizeof(float) * (size_t)cout);
            int *nin = spw__malloc(sizeof(int) * 3);
            if (!nw || !nb || !nin) {
                spw__free(nw);
                spw__free(nb);
                spw__free(nin);
                return spw__error(SPW_ENOMEM, "out of memory folding '%s' into '%s'", bn->name,
                                  conv->name);
            }
            const float *w_old = w->data;
            for (int64_t o = 0; o < cout; o++) {
                double s = (double)scale[o] / sqrt((double)var[o] + bn->p.bn.epsilon);
                for (int64_t j = 0; j < per; j++)
                    nw[o * per + j] = (float)(w_old[o * per + j] * s);
                nb[o] = (float)(((b_old ? b_old[o] : 0.0) - mean[o]) * s + shift[o]);
            }
            char name[256];
            int64_t wdims[4] = {w->dims[0], w->dims[1], w->dims[2], w->dims[3]};
            snprintf(name, sizeof(name), "%s/bn_folded_weight", conv->name);
            int nwv = spw__graph_add_const(g, name, SPW_F32, 4, wdims, nw);
            if (nwv < 0) {
                spw__free(nw);
                spw__free(nb);
                spw__free(nin);
                return nwv;
            }
            snprintf(name, sizeof(name), "%s/bn_folded_bias", conv->name);
            int nbv = spw__graph_add_const(g, name, SPW_F32, 1, &cout, nb);
            if (nbv < 0) {
                spw__free(nb);
                spw__free(nin);
                return nbv;
            }
            /* add_* may have moved the arrays. */
            conv = &g->nodes[ci];
            bn = &g->nodes[i];
            nin[0] = conv->inputs[0];
            nin[1] = nwv;
            nin[2] = nbv;
            spw__free(conv->inputs);
            conv->inputs = nin;
            conv->n_inputs = 3;
            conv->outputs[0] = bn->outputs[0];
            bn->dead = true;
        }
    next:;
    }
    return spw__graph_link(g);
}

static bool same_shape(const spw_value *a, const spw_value *b)
{
    if (a->ndim != b->ndim || a->ndim < 0 || a->dtype != b->dtype)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i] || a->dims[i] < 0)
            return false;
    return true;
}

/* Tries to absorb consumer node c into the producer of its input `v`. */
static bool absorb(spw_graph *g, int pi, int ci, int v)
{
    spw_node *p = &g->nodes[pi];
    spw_node *c = &g->nodes[ci];
    /* c's own fused ops run after c, so they follow it onto p. */
    if (p->n_post + 1 + c->n_post > SPW_MAX_POST || !spw__op_carries_post(p->op) ||
        p->n_outputs != 1 || c->n_outputs != 1)
        return false;
    spw_post_op post = {0};
    if (c->op == SPW_OP_ADD) {
        if (c->n_inputs != 2)
            return false;
        int other = c->inputs[0] == v ? c->inputs[1] : c->inputs[0];
        if (other == v || other < 0)
            return false;
        /* No broadcasting: the addend must match the output element for element. */
        if (!same_shape(&g->values[other], &g->values[v]) ||
            !same_shape(&g->values[c->outputs[0]], &g->values[v]))
            return false;
        post.kind = SPW_POST_ADD;
        post.value = other;
    } else if (!spw__op_activation(c, &post)) {
        return false;
    }
    if (c->op != SPW_OP_ADD && c->inputs[0] != v)
        return false;
    if (!same_shape(&g->values[c->outputs[0]], &g->values[v]))
        return false;
    p->post[p->n_post++] = post;
    for (int k = 0; k < c->n_post; k++)
        p->post[p->n_post++] = c->post[k];
    p->outputs[0] = c->outputs[0];
    c->dead = true;
    return true;
}

int spw__pass_fuse(spw_graph *g)
{
    int rc = spw__graph_link(g);
    if (rc)
        return rc;
    bool changed = true;
    while (changed) {
        changed = false;
        for (int ci = 0; ci < g->n_nodes; ci++) {
            spw_node *c = &g->nodes[ci];
            if (c->dead)
                continue;
            int tries = c->op == SPW_OP_ADD ? 2 : 1;
            for (int k = 0; k < tries && k < c->n_inputs; k++) {
                int v = c->inputs[k];
                if (v < 0 || g->values[v].producer < 0 || sole_consumer(g, v) != ci)
                    continue;
                if (absorb(g, g->values[v].producer, ci, v)) {
                    changed = true;
                    break;
                }
            }
            if (changed) {
                if ((rc = spw__graph_link(g)))
                    return rc;
                break;
            }
        }
    }
    return 0;
}

int spw__pass_drop_identity(spw_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) {
        spw_node *n = &g->nodes[i];
        if (n->dead || n->op != SPW_OP_IDENTITY || n->n_inputs < 1 || n->inputs[0] < 0)
            continue;
        int in = n->inputs[0], out = n->outputs[0];
        /* A graph output or a graph input passed straight through keeps its copy. */
        if ((g->values[out].flags & SPW_VALUE_OUTPUT))
            continue;
        n->dead = true;
        replace_uses(g, out, in);
    }
    return spw__graph_link(g);
}

/* Public model API: load, validate, describe. */
#include <string.h>

#include "runtime/graph/plan.h"
#include "runtime/onnx/onnx_import.h"

int spw_model_load_buffer(const void *data, size_t size, spw_model **out)
{
    if (!data || !out)
        return spw__error(SPW_EINVAL, "model_load: NULL argument");
    spw_error_clear();
    spw_model *m = spw__calloc(1, sizeof(*m));
    if (!m)
        return spw__error(SPW_ENOMEM, "out of memory loading a model");
    int rc = spw__onnx_import(data, size, &m->graph);
    if (rc)
        goto fail_model;
    if ((rc = spw__graph_link(m->graph)))
        goto fail_graph;
    /* Check with the batch left free, so every plan batch is known consistent. */
    if ((rc = spw__graph_infer_shapes(m->graph, -1)))
        goto fail_graph;
    *out = m;
    return 0;
fail_graph:
    spw__graph_free(m->graph);
fail_model:
    spw__free(m);
    return rc;
}

int spw_model_load(const char *path, spw_model **out)
{
    if (!path || !out)
        return spw__error(SPW_EINVAL, "model_load: NULL argument");
    void *data;
    size_t size;
    int rc = spw__read_file(path, &data, &size);
    if (rc)
        return rc;
    rc = spw_model_load_buffer(data, size, out);
    spw__free(data);
    if (rc)
        return spw__error_context(rc, "%s", path);
    return 0;
}

void spw_model_free(spw_model *model)
{
    if (!model)
        return;
    if (model->weights)
        spw__weights_unref(model->weights); /* owns graph */
    else
        spw__graph_free(model->graph);
    spw__free(model);
}

int spw_model_num_inputs(const spw_model *model)
{
    return model ? model->graph->n_inputs : 0;
}

int spw_model_num_outputs(const spw_model *model)
{
    return model ? model->graph->n_outputs : 0;
}

static int io_desc(const spw_model *m, bool output, int idx, spw_tensor *desc, const char **name)
{
    if (!m || !desc)
        return spw__error(SPW_EINVAL, "model io: NULL argument");
    int n = output ? m->graph->n_outputs : m->graph->n_inputs;
    if (idx < 0 || idx >= n)
        return spw__error(SPW_EINVAL, "model io: index %d out of range (0..%d)", idx, n - 1);
    const spw_value *v = &m->graph->values[output ? m->graph->outputs[idx] : m->graph->inputs[idx]];
    memset(desc, 0, sizeof(*desc));
    desc->dtype = v->dtype;
    desc->layout = SPW_LAYOUT_NCHW;
    desc->ndim = v->ndim < 0 ? 0 : v->ndim;
    for (int i = 0; i < desc->ndim; i++)
        desc->dims[i] = v->dims[i];
    if (name)
        *name = v->name;
    return 0;
}

int spw_model_input(const spw_model *model, int idx, spw_tensor *desc, const char **name)
{
    return io_desc(model, false, idx, desc, name);
}

int spw_model_output(const spw_model *model, int idx, spw_tensor *desc, const char **name)
{
    return io_desc(model, true, idx, desc, name);
}

int spw_model_cut(const spw_model *model, const char *value, spw_model **out)
{
    if (!model || !value || !out)
        return spw__error(SPW_EINVAL, "model_cut: NULL argument");
    int v = spw__graph_find_value(model->graph, value);
    if (v < 0)
        return spw__error(SPW_ENOENT, "model_cut: no value named '%s'", value);
    if (model->graph->values[v].flags & SPW_VALUE_CONST)
        return spw__error(SPW_EINVAL, "model_cut: '%s' is a constant", value);
    spw_model *m = spw__calloc(1, sizeof(*m));
    if (!m)
        return spw__error(SPW_ENOMEM, "out of memory cutting a model");
    int rc = spw__graph_clone(model->graph, &m->graph);
    if (rc)
        goto fail_model;
    spw_graph *g = m->graph;
    unsigned char *need = spw__calloc((size_t)g->n_values, 1);
    if (!need) {
        rc = spw__error(SPW_ENOMEM, "out of memory cutting a model");
        goto fail_graph;
    }
    /* Walk back from the outputs; the cut value stops the walk. */
    for (int i = 0; i < g->n_outputs; i++)
        need[g->outputs[i]] = 1;
    for (bool grew = true; grew;) {
        grew = false;
        for (int i = g->n_nodes - 1; i >= 0; i--) {
            spw_node *n = &g->nodes[i];
            if (n->dead || !need[n->outputs[0]] || n->outputs[0] == v)
                continue;
            for (int k = 0; k < n->n_inputs; k++)
                if (n->inputs[k] >= 0 && !need[n->inputs[k]]) {
                    need[n->inputs[k]] = 1;
                    grew = true;
                }
        }
    }
    for (int i = 0; i < g->n_inputs; i++) {
        int in = g->inputs[i];
        g->values[in].flags &= ~(unsigned)SPW_VALUE_INPUT;
        if (need[in] && in != v) {
            rc = spw__error(SPW_EINVAL, "model_cut: outputs still need input '%s' besides '%s'",
                            g->values[in].name, value);
            spw__free(need);
            goto fail_graph;
        }
    }
    for (int i = 0; i < g->n_nodes; i++) {
        spw_node *n = &g->nodes[i];
        bool used = false;
        for (int k = 0; k < n->n_outputs; k++)
            used = used || (need[n->outputs[k]] && n->outputs[k] != v);
        if (!used)
            n->dead = true;
    }
    spw__free(need);
    g->n_inputs = 0;
    if ((rc = spw__graph_add_input(g, v)) || (rc = spw__graph_link(g)) ||
        (rc = spw__graph_infer_shapes(g, -1)))
        goto fail_graph;
    *out = m;
    return 0;
fail_graph:
    spw__graph_free(m->graph);
fail_model:
    spw__free(m);
    return rc;
}

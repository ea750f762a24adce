/* Plans: bind a batch, run the passes, order the steps, lay out the arena,
 * hand the result to a backend, and move data in and out per run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/backend.h"
#include "runtime/graph/plan.h"

typedef struct live_range {
    int value;
    int first, last; /* steps; -1 = before the first step, n_steps = after the last */
    size_t size;
    size_t offset;
} live_range;

static int by_size_desc(const void *a, const void *b)
{
    const live_range *x = a, *y = b;
    if (x->size != y->size)
        return x->size < y->size ? 1 : -1;
    return x->value - y->value; /* deterministic layout */
}

static size_t align_up(size_t v, size_t a)
{
    return (v + a - 1) & ~(a - 1);
}

/* Greedy by size: place each buffer, largest first, at the lowest offset that
 * does not collide with a buffer already placed whose lifetime overlaps. */
int spw__plan_assign_buffers(spw_plan *plan)
{
    spw_graph *g = plan->graph;
    int rc = 0;
    live_range *r = NULL;
    int *index = spw__malloc(sizeof(int) * (size_t)(g->n_values ? g->n_values : 1));
    plan->offsets = spw__malloc(sizeof(size_t) * (size_t)(g->n_values ? g->n_values : 1));
    if (!index || !plan->offsets) {
        rc = spw__error(SPW_ENOMEM, "out of memory planning buffers");
        goto out;
    }
    int n_ranges = 0;
    for (int v = 0; v < g->n_values; v++) {
        plan->offsets[v] = SPW_NO_OFFSET;
        index[v] = -1;
    }
    r = spw__calloc((size_t)(g->n_values ? g->n_values : 1), sizeof(*r));
    if (!r) {
        rc = spw__error(SPW_ENOMEM, "out of memory planning buffers");
        goto out;
    }
#define TOUCH(v, s)                                                                     \
    do {                                                                                \
        int v_ = (v);                                                                   \
        if (v_ >= 0 && !(g->values[v_].flags & SPW_VALUE_CONST)) {                      \
            if (index[v_] < 0) {                                                        \
                index[v_] = n_ranges;                                                   \
                r[n_ranges].value = v_;                                                 \
                r[n_ranges].first = (g->values[v_].flags & SPW_VALUE_INPUT) ? -1 : (s); \
                r[n_ranges].last = (s);                                                 \
                n_ranges++;                                                             \
            }                                                                           \
            live_range *lr_ = &r[index[v_]];                                            \
            if ((s) > lr_->last)                                                        \
                lr_->last = (s);                                                        \
            if ((s) < lr_->first)                                                       \
                lr_->first = (s);                                                       \
        }                                                                               \
    } while (0)
    for (int i = 0; i < g->n_inputs; i++)
        TOUCH(g->inputs[i], -1);
    for (int s = 0; s < plan->n_steps; s++) {
        const spw_node *n = &g->nodes[plan->steps[s]];
        for (int k = 0; k < n->n_inputs; k++)
            TOUCH(n->inputs[k], s);
        for (int k = 0; k < n->n_post; k++)
            if (n->post[k].kind == SPW_POST_ADD)
                TOUCH(n->post[k].value, s);
        for (int k = 0; k < n->n_outputs; k++)
            TOUCH(n->outputs[k], s);
    }
    for (int i = 0; i < g->n_outputs; i++)
        TOUCH(g->outputs[i], plan->n_steps);
#undef TOUCH
    for (int i = 0; i < n_ranges; i++) {
        const spw_value *val = &g->values[r[i].value];
        int64_t numel = spw__value_numel(val);
        size_t bytes;
        if (numel < 0 || !spw__mul_ok((size_t)numel, spw_dtype_size(val->dtype), &bytes)) {
            rc = spw__error(SPW_ESHAPE, "value '%s' has no known size", val->name);
            goto out;
        }
        r[i].size = align_up(bytes ? bytes : 1, SPW_ARENA_ALIGN);
    }
    qsort(r, (size_t)n_ranges, sizeof(*r), by_size_desc);
    size_t total = 0;
    for (int i = 0; i < n_ranges; i++) {
        size_t off = 0;
        /* Scan placed, time-overlapping buffers in increasing offset until a gap fits.
         * n is small (hundreds), so the quadratic scan is fine. */
        bool moved = true;
        while (moved) {
            moved = false;
            for (int j = 0; j < i; j++) {
                if (r[j].last < r[i].first || r[i].last < r[j].first)
                    continue;
                if (off < r[j].offset + r[j].size && r[j].offset < off + r[i].size) {
                    off = r[j].offset + r[j].size;
                    moved = true;
                }
            }
        }
        r[i].offset = off;
        plan->offsets[r[i].value] = off;
        if (off + r[i].size > total)
            total = off + r[i].size;
    }
    plan->arena_size = total ? total : SPW_ARENA_ALIGN;
out:
    spw__free(index);
    spw__free(r);
    return rc;
}

void spw__plan_view(const spw_plan *plan, void *arena_host, int v, spw_tensor *t)
{
    const spw_value *val = &plan->graph->values[v];
    memset(t, 0, sizeof(*t));
    t->dtype = val->dtype;
    t->layout = SPW_LAYOUT_NCHW;
    t->ndim = val->ndim;
    for (int i = 0; i < val->ndim; i++)
        t->dims[i] = val->dims[i];
    t->data = (val->flags & SPW_VALUE_CONST) ? val->data : (char *)arena_host + plan->offsets[v];
}

/* Calibration: the best of two timed runs of the whole plan on be (after
 * one warm-up run) over a scratch arena, or UINT64_MAX when be cannot
 * prepare or run it. Needs the buffers assigned. */
uint64_t (*spw__plan_calibration_hook)(const spw_backend *be, uint64_t ns);

static uint64_t time_plan_on(spw_plan *plan, spw_backend *be)
{
    uint64_t best = UINT64_MAX;
    void *state = NULL;
    if (be->ops->buffer_alloc(be, plan->arena_size, &plan->arena))
        return best;
    plan->backend = be;
    if (spw__weights_backend(plan->weights, be, &plan->weights_state))
        goto out;
    if (!be->ops->plan_prepare || !be->ops->plan_prepare(be, plan, &state)) {
        for (int i = 0; i < 3; i++) {
            uint64_t t0 = spw__now_ns();
            if (be->ops->run_plan(be, plan, state)) {
                best = UINT64_MAX;
                break;
            }
            uint64_t dt = spw__now_ns() - t0;
            if (i && dt < best)
                best = dt;
        }
        if (be->ops->plan_release)
            be->ops->plan_release(be, plan, state);
    }
out:
    be->ops->buffer_free(be, plan->arena);
    plan->arena = NULL;
    plan->backend = NULL;
    plan->weights_state = NULL;
    return best;
}

static int calibrate(spw_plan *plan, spw_backend **cand, int n_cand, spw_backend **out);

static int pick_backend(spw_plan *plan, const char *want, spw_backend **out)
{
    spw_graph *g = plan->graph;
    if (want && *want && strcmp(want, "auto")) {
        spw_backend *be = spw__backend_find(want);
        if (!be)
            return spw__error(SPW_ENODEV, "backend '%s' is not available", want);
        for (int s = 0; s < plan->n_steps; s++) {
            const spw_node *n = &g->nodes[plan->steps[s]];
            if (!be->ops->supports_op(be, g, n))
                return spw__error(SPW_EUNSUPPORTED,
                                  "node '%s' (%s) is not supported by backend '%s'", n->name,
                                  spw__op_name(n->op), be->ops->name);
        }
        *out = be;
        return 0;
    }
    /* Candidates run every step and are not manual-only. The reference is
     * the oracle, orders of magnitude slower than any other (measured in
     * docs/CPU_BACKENDS.md), so it is taken only when nothing else runs the
     * plan; among several others, one timed run each decides, registry order
     * breaking ties. */
    spw_backend *cand[16], *ref = NULL;
    int n_cand = 0;
    for (int b = 0; b < spw__backend_count(); b++) {
        spw_backend *be = spw__backend_get(b);
        if (be->manual_only)
            continue;
        bool all = true;
        for (int s = 0; s < plan->n_steps && all; s++)
            all = be->ops->supports_op(be, g, &g->nodes[plan->steps[s]]);
        if (!all)
            continue;
        if (be->ops == &spw__cpu_ref_ops)
            ref = be;
        else if (n_cand < (int)SPW_ARRAY_SIZE(cand))
            cand[n_cand++] = be;
    }
    if (n_cand == 0 && !ref)
        return spw__error(SPW_EUNSUPPORTED, "no backend supports every op of this model");
    spw_backend *pick = n_cand ? cand[0] : ref;
    if (n_cand > 1)
        return calibrate(plan, cand, n_cand, out);
    *out = pick;
    return 0;
}

/* Picks among candidates by timing each on the plan, once per (weights,
 * batch, threads, fusion): every later plan with the same key, in any
 * thread, takes the recorded choice. */
static int calibrate(spw_plan *plan, spw_backend **cand, int n_cand, spw_backend **out)
{
    spw_weights *w = plan->weights;
    struct spw_weights_pick key = {
        .batch = plan->batch,
        .threads = plan->threads,
        .fused = !(plan->flags & SPW_PLAN_NO_FUSION),
    };
    int rc = 0;
    pthread_mutex_lock(&w->pick_lock);
    for (int i = 0; i < w->n_picks; i++) {
        const struct spw_weights_pick *p = &w->picks[i];
        if (p->batch == key.batch && p->threads == key.threads && p->fused == key.fused) {
            SPW_LOGD("plan: calibration: %s, as measured before", p->be->ops->name);
            *out = p->be;
            goto out;
        }
    }
    spw_backend *pick = cand[0];
    {
        /* The winner stays in a local until every candidate has run: `out`
         * is &plan->backend, which time_plan_on() borrows and clears. */
        uint64_t best = UINT64_MAX;
        for (int i = 0; i < n_cand; i++) {
            uint64_t t = time_plan_on(plan, cand[i]);
            SPW_LOGD("plan: calibration: %s %.3f ms", cand[i]->ops->name,
                     t == UINT64_MAX ? -1.0 : t / 1e6);
            if (spw__plan_calibration_hook)
                t = spw__plan_calibration_hook(cand[i], t);
            if (t < best) {
                best = t;
                pick = cand[i];
            }
        }
    }
    key.be = pick;
    if ((rc = spw__grow((void **)&w->picks, &w->cap_picks, w->n_picks + 1, sizeof(key))))
        goto out;
    w->picks[w->n_picks++] = key;
    *out = pick;
out:
    pthread_mutex_unlock(&w->pick_lock);
    return rc;
}

int spw_plan_create(const spw_model *model, const spw_plan_options *opts, spw_plan **out)
{
    return spw__plan_create_sharing(model, opts, NULL, 0, out);
}

int spw__plan_create_sharing(const spw_model *model, const spw_plan_options *opts,
                             spw_plan *const *donors, int n_donors, spw_plan **out)
{
    if (!model || !out)
        return spw__error(SPW_EINVAL, "plan_create: NULL argument");
    spw_plan_options o = {0};
    if (opts)
        o = *opts;
    if (o.batch < 0 || o.batch > (1 << 20) || o.threads < 0)
        return spw__error(SPW_EINVAL, "plan_create: batch %d / threads %d out of range", o.batch,
                          o.threads);
    int batch = o.batch ? o.batch : 1;
    int rc;
    spw_plan *plan = spw__calloc(1, sizeof(*plan));
    if (!plan)
        return spw__error(SPW_ENOMEM, "out of memory creating a plan");
    plan->model = model;
    plan->flags = o.flags;
    plan->threads = o.threads;
    plan->batch = batch;
    bool fused = !(o.flags & SPW_PLAN_NO_FUSION);
    const spw_graph *src;
    if (!(plan->weights = spw__model_weights(model))) {
        rc = SPW_ENOMEM;
        goto fail_plan;
    }
    spw__weights_ref(plan->weights);
    if ((rc = spw__weights_graph(plan->weights, fused, &src)) ||
        (rc = spw__graph_share(src, &plan->graph)))
        goto fail_weights;
    spw_graph *g = plan->graph;
    for (int i = 0; i < g->n_inputs; i++) {
        const spw_value *v = &g->values[g->inputs[i]];
        if (o.batch > 1 && v->ndim > 0 && v->dims[0] >= 0 && v->dims[0] != o.batch) {
            rc = spw__error(SPW_ESHAPE, "input '%s' has a fixed batch of %lld, %d requested",
                            v->name, (long long)v->dims[0], o.batch);
            goto fail_graph;
        }
    }
    if ((rc = spw__graph_infer_shapes(g, batch)))
        goto fail_graph;
    /* The constant passes ran once on the shared graph; fusion compares
     * activation shapes, so it runs here with the batch bound. */
    if (fused && (rc = spw__pass_fuse(g)))
        goto fail_graph;
    if ((rc = spw__graph_link(g)))
        goto fail_graph;
    plan->steps = spw__malloc(sizeof(int) * (size_t)(g->n_nodes ? g->n_nodes : 1));
    if (!plan->steps) {
        rc = spw__error(SPW_ENOMEM, "out of memory ordering steps");
        goto fail_graph;
    }
    if ((rc = spw__graph_topo_order(g, plan->steps, &plan->n_steps)))
        goto fail_steps;
    /* Buffers first: calibrating a backend runs the plan. */
    if ((rc = spw__plan_assign_buffers(plan)))
        goto fail_offsets;
    if ((rc = pick_backend(plan, o.backend, &plan->backend)))
        goto fail_offsets;
    /* Staging holds the largest graph input or output in any dtype we convert
     * through (8 bytes per element covers i64), allocated once here. */
    size_t staging = 0;
    for (int pass = 0; pass < 2; pass++) {
        int cnt = pass ? g->n_outputs : g->n_inputs;
        const int *vs = pass ? g->outputs : g->inputs;
        for (int i = 0; i < cnt; i++) {
            size_t b = (size_t)spw__value_numel(&g->values[vs[i]]) * 8;
            if (b > staging)
                staging = b;
        }
    }
    plan->staging_size = staging;
    plan->staging = spw__aligned_alloc(SPW_ARENA_ALIGN, staging ? staging : 1);
    if (!plan->staging) {
        rc = spw__error(SPW_ENOMEM, "out of memory for %zu staging bytes", staging);
        goto fail_offsets;
    }
    spw__prefault(plan->staging, staging);
    if (o.flags & SPW_PLAN_PROFILE) {
        plan->step_ns = spw__calloc((size_t)(plan->n_steps ? plan->n_steps : 1), sizeof(uint64_t));
        if (!plan->step_ns) {
            rc = spw__error(SPW_ENOMEM, "out of memory for profile counters");
            goto fail_staging;
        }
    }
    spw_backend *be = plan->backend;
    if ((rc = spw__weights_backend(plan->weights, be, &plan->weights_state)))
        goto fail_profile;
    for (int i = 0; i < n_donors && !plan->arena; i++)
        if (donors[i] && donors[i]->backend == be && !donors[i]->arena_borrowed &&
            donors[i]->arena->size >= plan->arena_size) {
            plan->arena = donors[i]->arena;
            plan->arena_borrowed = true;
        }
    if (!plan->arena && (rc = be->ops->buffer_alloc(be, plan->arena_size, &plan->arena)))
        goto fail_profile;
    if (be->ops->plan_prepare && (rc = be->ops->plan_prepare(be, plan, &plan->backend_state)))
        goto fail_arena;
    SPW_LOGD("plan: %d steps on %s, arena %zu bytes", plan->n_steps, be->ops->name,
             plan->arena_size);
    *out = plan;
    return 0;

fail_arena:
    if (!plan->arena_borrowed)
        be->ops->buffer_free(be, plan->arena);
fail_profile:
    spw__free(plan->step_ns);
fail_staging:
    spw__aligned_free(plan->staging);
fail_offsets:
    spw__free(plan->offsets);
fail_steps:
    spw__free(plan->steps);
fail_graph:
    spw__graph_free(plan->graph);
fail_weights:
    spw__weights_unref(plan->weights);
fail_plan:
    spw__free(plan);
    return rc;
}

void spw_plan_free(spw_plan *plan)
{
    if (!plan)
        return;
    spw_backend *be = plan->backend;
    if (be->ops->plan_release)
        be->ops->plan_release(be, plan, plan->backend_state);
    if (!plan->arena_borrowed)
        be->ops->buffer_free(be, plan->arena);
    spw__free(plan->step_ns);
    spw__aligned_free(plan->staging);
    spw__free(plan->offsets);
    spw__free(plan->steps);
    spw__graph_free(plan->graph);
    spw__weights_unref(plan->weights);
    spw__free(plan);
}

const char *spw_plan_backend(const spw_plan *plan)
{
    return plan ? plan->backend->ops->name : NULL;
}

static void describe(const spw_value *v, spw_tensor *desc)
{
    memset(desc, 0, sizeof(*desc));
    desc->dtype = v->dtype;
    desc->layout = SPW_LAYOUT_NCHW;
    desc->ndim = v->ndim < 0 ? 0 : v->ndim;
    for (int i = 0; i < desc->ndim; i++)
        desc->dims[i] = v->dims[i];
}

int spw_plan_input(const spw_plan *plan, int idx, spw_tensor *desc)
{
    if (!plan || !desc || idx < 0 || idx >= plan->graph->n_inputs)
        return spw__error(SPW_EINVAL, "plan_input: bad index %d", idx);
    describe(&plan->graph->values[plan->graph->inputs[idx]], desc);
    return 0;
}

int spw_plan_output(const spw_plan *plan, int idx, spw_tensor *desc)
{
    if (!plan || !desc || idx < 0 || idx >= plan->graph->n_outputs)
        return spw__error(SPW_EINVAL, "plan_output: bad index %d", idx);
    describe(&plan->graph->values[plan->graph->outputs[idx]], desc);
    return 0;
}

static int upload(spw_backend *be, spw_buffer *buf, size_t off, const void *src, size_t n)
{
    if (be->ops->buffer_upload)
        return be->ops->buffer_upload(be, buf, off, src, n);
    memcpy((char *)buf->host + off, src, n);
    return 0;
}

static int download(spw_backend *be, spw_buffer *buf, size_t off, void *dst, size_t n)
{
    if (be->ops->buffer_download)
        return be->ops->buffer_download(be, buf, off, dst, n);
    memcpy(dst, (char *)buf->host + off, n);
    return 0;
}

static bool same_dims(const spw_tensor *a, const spw_value *v)
{
    if (a->ndim != v->ndim)
        return false;
    for (int i = 0; i < v->ndim; i++)
        if (a->dims[i] != v->dims[i])
            return false;
    return true;
}

int spw_plan_run(spw_plan *plan, const spw_tensor *inputs, int n_inputs, spw_tensor *outputs,
                 int n_outputs)
{
    if (!plan || (n_inputs && !inputs) || (n_outputs && !outputs))
        return spw__error(SPW_EINVAL, "plan_run: NULL argument");
    spw_graph *g = plan->graph;
    spw_backend *be = plan->backend;
    if (n_inputs != g->n_inputs || n_outputs != g->n_outputs)
        return spw__error(SPW_EINVAL,
                          "plan_run: model takes %d inputs and %d outputs, got %d and %d",
                          g->n_inputs, g->n_outputs, n_inputs, n_outputs);
    spw_layout native = be->ops->layout;
    int rc;
    plan->run_ns[0] = spw__now_ns();
    for (int i = 0; i < n_inputs; i++) {
        const spw_value *v = &g->values[g->inputs[i]];
        const spw_tensor *t = &inputs[i];
        if (!same_dims(t, v) || !t->data || !spw_dtype_size(t->dtype)) {
            char a[96], b[96];
            return spw__error(SPW_ESHAPE, "plan_run: input '%s' must be %s, got %s", v->name,
                              spw__dims_str(v->ndim, v->dims, a, sizeof(a)),
                              spw__dims_str(t->ndim, t->dims, b, sizeof(b)));
        }
        size_t nbytes = (size_t)spw__value_numel(v) * spw_dtype_size(v->dtype);
        bool relayout = v->ndim == 4 && t->layout != native;
        if (t->dtype == v->dtype && !relayout) {
            rc = upload(be, plan->arena, plan->offsets[g->inputs[i]], t->data, nbytes);
        } else {
            spw_tensor s = *t;
            s.dtype = v->dtype;
            s.layout = v->ndim == 4 ? native : t->layout;
            s.data = plan->staging;
            if ((rc = spw_tensor_convert(&s, t)))
                return rc;
            rc = upload(be, plan->arena, plan->offsets[g->inputs[i]], plan->staging, nbytes);
        }
        if (rc)
            return rc;
    }
    plan->run_ns[1] = plan->run_ns[2] = spw__now_ns();
    if ((rc = be->ops->run_plan(be, plan, plan->backend_state)))
        return rc;
    plan->run_ns[3] = spw__now_ns();
    for (int i = 0; i < n_outputs; i++) {
        const spw_value *v = &g->values[g->outputs[i]];
        spw_tensor *t = &outputs[i];
        if (!same_dims(t, v) || !t->data || !spw_dtype_size(t->dtype)) {
            char a[96], b[96];
            return spw__error(SPW_ESHAPE, "plan_run: output '%s' is %s, caller gave %s", v->name,
                              spw__dims_str(v->ndim, v->dims, a, sizeof(a)),
                              spw__dims_str(t->ndim, t->dims, b, sizeof(b)));
        }
        size_t nbytes = (size_t)spw__value_numel(v) * spw_dtype_size(v->dtype);
        bool relayout = v->ndim == 4 && t->layout != native;
        size_t off = (v->flags & SPW_VALUE_CONST) ? SPW_NO_OFFSET : plan->offsets[g->outputs[i]];
        if (off == SPW_NO_OFFSET) {
            /* An output that is a constant (degenerate but legal ONNX). */
            spw_tensor s = *t;
            s.dtype = v->dtype;
            s.layout = t->layout;
            s.data = v->data;
            if ((rc = spw_tensor_convert(t, &s)))
                return rc;
            continue;
        }
        if (t->dtype == v->dtype && !relayout) {
            if ((rc = download(be, plan->arena, off, t->data, nbytes)))
                return rc;
        } else {
            if ((rc = download(be, plan->arena, off, plan->staging, nbytes)))
                return rc;
            spw_tensor s = *t;
            s.dtype = v->dtype;
            s.layout = v->ndim == 4 ? native : t->layout;
            s.data = plan->staging;
            if ((rc = spw_tensor_convert(t, &s)))
                return rc;
        }
    }
    plan->run_ns[4] = spw__now_ns();
    return 0;
}

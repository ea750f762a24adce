/* The CPU reference backend: runs each step with the naive kernels of
 * ref_ops.c over a host arena. Slow by design; the oracle for the others. */
#include <string.h>

#include "drivers/backend.h"
#include "drivers/cpu/cpu_describe.h"
#include "drivers/cpu/ref_ops.h"

static bool ref_supports_op(const spw_backend *be, const spw_graph *g, const spw_node *n)
{
    (void)be;
    if ((unsigned)n->op >= SPW_OP_COUNT || !spw__ref_kernels[n->op] || n->n_outputs != 1)
        return false;
    /* Kernels compute in f32; only the symbol ops touch int32. */
    for (int k = 0; k < n->n_inputs; k++) {
        int v = n->inputs[k];
        if (v < 0)
            continue;
        spw_dtype t = g->values[v].dtype;
        bool int_ok =
            (n->op == SPW_OP_DEQUANTIZE && k == 0) || (n->op == SPW_OP_QUANTIZE && k >= 2);
        if (t != SPW_F32 && !(int_ok && t == SPW_I32))
            return false;
    }
    return true;
}

static spw_row_kind ref_op_row(spw_op op)
{
    return (unsigned)op < SPW_OP_COUNT && spw__ref_kernels[op] ? SPW_ROW_RUNS : SPW_ROW_MISSING;
}

static int ref_buffer_alloc(spw_backend *be, size_t size, spw_buffer **out)
{
    (void)be;
    spw_buffer *b = spw__calloc(1, sizeof(*b));
    if (!b)
        return spw__error(SPW_ENOMEM, "cpu-ref: out of memory");
    b->host = spw__aligned_alloc(SPW_ARENA_ALIGN, size);
    if (!b->host) {
        spw__free(b);
        return spw__error(SPW_ENOMEM, "cpu-ref: no memory for a %zu-byte arena", size);
    }
    /* First touch of a page costs microseconds; pay it at load, not per run. */
    spw__prefault(b->host, size);
    b->size = size;
    *out = b;
    return 0;
}

static void ref_buffer_free(spw_backend *be, spw_buffer *buf)
{
    (void)be;
    if (!buf)
        return;
    spw__aligned_free(buf->host);
    spw__free(buf);
}

/* Views of one step's operands; sized for the widest node (Concat). */
#define REF_MAX_VIEWS 64

static int ref_run_plan(spw_backend *be, spw_plan *plan, void *state)
{
    (void)be;
    (void)state;
    const spw_graph *g = plan->graph;
    void *arena = plan->arena->host;
    spw_tensor in[REF_MAX_VIEWS], out, addends[SPW_MAX_POST];
    for (int s = 0; s < plan->n_steps; s++) {
        const spw_node *n = &g->nodes[plan->steps[s]];
        uint64_t t0 = plan->step_ns ? spw__now_ns() : 0;
        int n_in = n->n_inputs < REF_MAX_VIEWS ? n->n_inputs : REF_MAX_VIEWS;
        for (int k = 0; k < n_in; k++) {
            if (n->inputs[k] < 0)
                memset(&in[k], 0, sizeof(in[k]));
            else
                spw__plan_view(plan, arena, n->inputs[k], &in[k]);
        }
        spw__plan_view(plan, arena, n->outputs[0], &out);
        spw__ref_kernels[n->op](n, in, n_in, &out);
        if (n->n_post) {
            for (int k = 0; k < n->n_post; k++)
                if (n->post[k].kind == SPW_POST_ADD)
                    spw__plan_view(plan, arena, n->post[k].value, &addends[k]);
            spw__ref_apply_post(n, &out, addends);
        }
        if (plan->step_ns)
            plan->step_ns[s] += spw__now_ns() - t0;
    }
    return 0;
}

static int ref_plan_prepare(spw_backend *be, spw_plan *plan, void **state)
{
    (void)be;
    *state = NULL;
    for (int s = 0; s < plan->n_steps; s++)
        if (plan->graph->nodes[plan->steps[s]].n_inputs > REF_MAX_VIEWS)
            return spw__error(SPW_EUNSUPPORTED, "node '%s' has more than %d inputs",
                              plan->graph->nodes[plan->steps[s]].name, REF_MAX_VIEWS);
    return 0;
}

/* One thread: the reference kernels are plain loops. */
static int ref_describe(spw_device_info **out, int *n)
{
    return spw__cpu_describe("cpu-ref", "reference kernels", 1, out, n);
}

const spw_backend_ops spw__cpu_ref_ops = {
    .name = "cpu-ref",
    .layout = SPW_LAYOUT_NCHW,
    .plan_batch = 1,
    .supports_op = ref_supports_op,
    .op_row = ref_op_row,
    .buffer_alloc = ref_buffer_alloc,
    .buffer_free = ref_buffer_free,
    .plan_prepare = ref_plan_prepare,
    .run_plan = ref_run_plan,
    .describe = ref_describe,
};

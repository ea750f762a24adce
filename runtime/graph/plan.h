/* Execution plans: a model's graph bound to a batch, transformed by the
 * passes, ordered, and laid out in one arena. Not installed. */
#ifndef SPW_GRAPH_PLAN_H
#define SPW_GRAPH_PLAN_H

#include "runtime/graph/graph.h"

struct spw_backend;
struct spw_buffer;

struct spw_model {
    spw_graph *graph; /* as imported and shape-checked with a free batch */
};

#define SPW_NO_OFFSET ((size_t)-1)

struct spw_plan {
    const spw_model *model;
    spw_graph *graph; /* private copy: batch bound, passes applied */
    int *steps;       /* node indices in execution order */
    int n_steps;
    size_t *offsets; /* per value: byte offset in the arena, or SPW_NO_OFFSET */
    size_t arena_size;
    struct spw_backend *backend;
    struct spw_buffer *arena;
    void *backend_state;
    void *staging; /* host scratch for I/O conversions, staging_size bytes */
    size_t staging_size;
    uint64_t *step_ns; /* per-step times when SPW_PLAN_PROFILE, else NULL */
    unsigned flags;
    int threads;
};

/* Arena alignment: enough for any SIMD load and a cache line. */
#define SPW_ARENA_ALIGN 64

/*
 * Assigns arena offsets to every non-constant value from the liveness of the
 * values over the step order (greedy by size, best fit in time-overlapping
 * gaps). Values alive at the same time never overlap; graph inputs and outputs
 * get their own ranges. Fills plan->offsets and plan->arena_size.
 */
int spw__plan_assign_buffers(spw_plan *plan);

/* Tests only: when set, automatic backend choice ranks candidates by
 * hook(backend, measured ns) instead of the measured time itself. */
extern uint64_t (*spw__plan_calibration_hook)(const struct spw_backend *be, uint64_t ns);

/* A view of value v inside a host-mapped arena (CPU backends). */
void spw__plan_view(const spw_plan *plan, void *arena_host, int v, spw_tensor *t);

#endif

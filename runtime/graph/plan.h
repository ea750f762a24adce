/* Execution plans: a model's graph bound to a batch, transformed by the
 * passes, ordered, and laid out in one arena. Not installed. */
#ifndef SPW_GRAPH_PLAN_H
#define SPW_GRAPH_PLAN_H

#include "runtime/graph/graph.h"

#include <pthread.h>

struct spw_backend;
struct spw_buffer;

#define SPW_WEIGHTS_SLOTS 4 /* backend states per weights: one per registered backend */

/*
 * A model's constants, built once and shared by every plan of the model at
 * any batch, in any thread: the graph as imported (owning its constants),
 * the same graph after the constant passes (BatchNorm folding; it borrows
 * the untouched constants and owns the folded ones), what each backend
 * prepared from them (packed or uploaded weights) and the backend each
 * calibration picked. Immutable once built except under `lock`; counted:
 * the model holds one reference and each plan another, so plans may outlive
 * their model.
 */
typedef struct spw_weights {
    int refs;                  /* atomic */
    pthread_mutex_t lock;      /* folded, slot */
    pthread_mutex_t pick_lock; /* picks; held while calibrating */
    spw_graph *graph;          /* as imported */
    spw_graph *folded;         /* constant passes applied; NULL until a fused plan asks */
    struct {
        struct spw_backend *be;
        void *state;
    } slot[SPW_WEIGHTS_SLOTS];
    struct spw_weights_pick {
        int batch, threads;
        bool fused;
        struct spw_backend *be;
    } * picks; /* automatic choices, so calibration runs once per key */
    int n_picks, cap_picks;
} spw_weights;

struct spw_model {
    spw_graph *graph; /* as imported and shape-checked with a free batch */
    /* Built by the first plan (models built by hand start without); owns
     * graph from then on. */
    spw_weights *weights;
};

/* The model's weights, created on first use (thread-safe); NULL on error. */
spw_weights *spw__model_weights(const spw_model *model);
spw_weights *spw__weights_ref(spw_weights *w);
void spw__weights_unref(spw_weights *w);
/* The graph plans start from: folded when fused, else as imported. */
int spw__weights_graph(spw_weights *w, bool fused, const spw_graph **out);
/* Backend be's state for these weights (its weights_create slot), made on
 * first use; *state is NULL for a backend without the slot. */
int spw__weights_backend(spw_weights *w, struct spw_backend *be, void **state);
/* Another handle on the same model (shared weights, freed separately). */
int spw__model_share(const spw_model *model, spw_model **out);

#define SPW_NO_OFFSET ((size_t)-1)

struct spw_plan {
    const spw_model *model; /* may be freed before the plan: use weights */
    spw_weights *weights;   /* a reference */
    spw_graph *graph;       /* shares the weights' constants: batch bound, fused */
    int *steps;             /* node indices in execution order */
    int n_steps;
    size_t *offsets; /* per value: byte offset in the arena, or SPW_NO_OFFSET */
    size_t arena_size;
    struct spw_backend *backend;
    struct spw_buffer *arena;
    bool arena_borrowed; /* arena is another plan's (spw__plan_create_sharing) */
    void *backend_state;
    void *weights_state; /* the backend's state for plan->weights, or NULL */
    void *staging;       /* host scratch for I/O conversions, staging_size bytes */
    size_t staging_size;
    uint64_t *step_ns; /* per-step times when SPW_PLAN_PROFILE, else NULL */
    /* The last spw_plan_run's stages in host time (spw__now_ns): [0] inputs
     * start going in, [1] inputs are in, [2] compute submitted (a backend
     * with a queue sets it when the queue takes the work), [3] compute
     * done, [4] outputs are out. device_ns: that compute as the device's
     * own timestamps measured it (0: no timestamps on this backend). */
    uint64_t run_ns[5];
    uint64_t device_ns;
    unsigned flags;
    int threads;
    int batch;
};

/* spw_plan_create, with the arena borrowed from the first of `donors` that
 * is on the same backend and whose arena is large enough (else its own).
 * For plans that never run at the same time (one server worker's plans of a
 * bundle, run one after another): activations live for one run, so such
 * plans may share one arena. Each donor must outlive the plans that borrow
 * from it. */
int spw__plan_create_sharing(const spw_model *model, const spw_plan_options *opts,
                             spw_plan *const *donors, int n_donors, spw_plan **out);

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

/* The device backend interface: one ops table per backend. Not installed.
 *
 * A backend answers supports_op() for every node before a plan is given to
 * it, owns the memory of the plan's arena (host memory for the CPU, device
 * memory elsewhere) and runs the whole plan in one call. Optional slots may be
 * NULL; the planner supplies the default.
 */
#ifndef SPW_DRIVERS_BACKEND_H
#define SPW_DRIVERS_BACKEND_H

#include "runtime/graph/plan.h"
#include "splitwire/device.h"

typedef struct spw_backend spw_backend;

typedef struct spw_buffer {
    spw_backend *backend;
    size_t size;
    void *host; /* CPU-visible mapping, or NULL when the memory is device-only */
    void *impl; /* backend's own handle */
} spw_buffer;

/* How a backend's op table answers for one op (docs/ADDING_AN_OP.md). Zero
 * is a row nobody wrote: test_op_rows fails on it, so a new op cannot be
 * forgotten in a table. */
typedef enum spw_row_kind {
    SPW_ROW_MISSING = 0,
    SPW_ROW_RUNS,     /* a kernel of the backend's own */
    SPW_ROW_FALLBACK, /* through another kernel (cpu-fast: cpu-ref's, on NCHW copies) */
    SPW_ROW_NONE,     /* not here: the planner places the node on another backend */
} spw_row_kind;

typedef struct spw_backend_ops {
    const char *name;
    /* Layout the backend keeps 4-D activations in; the planner converts at I/O. */
    spw_layout layout;
    /* The largest batch worth a plan of its own when the plan runs on one
     * thread (0: any). A server runs a larger batch as consecutive
     * sub-batches on a plan of this size, which keeps one small arena per
     * worker; chosen by measurement where batching gains no compute
     * (docs/CPU_BACKENDS.md). Plans on several threads take whole batches:
     * on small sub-batches their threads spend more time meeting than
     * computing. */
    int plan_batch;

    /* Probes the device. SPW_ENODEV means "not here": the backend is skipped
     * silently after one log line, never an error for the library. */
    int (*init)(spw_backend *be);
    /* Optional. Called once, at process exit (the registry's atexit hook).
     * Plans and buffers may still be alive then and freed later: a backend
     * whose device they need keeps it until the last one goes. */
    void (*fini)(spw_backend *be);

    /* Whether this backend runs node n (with its fused post ops) of graph g. */
    bool (*supports_op)(const spw_backend *be, const spw_graph *g, const spw_node *n);
    /* The op table's row for op: whether supports_op can ever say yes. */
    spw_row_kind (*op_row)(spw_op op);

    int (*buffer_alloc)(spw_backend *be, size_t size, spw_buffer **out);
    void (*buffer_free)(spw_backend *be, spw_buffer *buf);
    /* Optional when every buffer has a host mapping (the default memcpys). */
    int (*buffer_upload)(spw_backend *be, spw_buffer *buf, size_t offset, const void *src,
                         size_t size);
    int (*buffer_download)(spw_backend *be, spw_buffer *buf, size_t offset, void *dst, size_t size);

    /* Optional: state kept once per model's weights (packed or uploaded
     * constants) and shared by all the model's plans on this backend, at
     * every batch size and in every thread. Created by the model's first
     * plan here (plan->weights_state hands it to plan_prepare) and released
     * with the weights' last reference, possibly after fini. Plans are
     * prepared concurrently: the state guards itself. */
    int (*weights_create)(spw_backend *be, const spw_weights *w, void **state);
    void (*weights_release)(spw_backend *be, void *state);

    /* Optional: per-plan preparation (pipelines, command buffers, operators
     * on the arena). Called once after buffers are assigned. */
    int (*plan_prepare)(spw_backend *be, spw_plan *plan, void **state);
    void (*plan_release)(spw_backend *be, spw_plan *plan, void *state);

    /* Runs every step of the plan over plan->arena. No allocation. */
    int (*run_plan)(spw_backend *be, spw_plan *plan, void *state);

    /* Optional: describes the devices this backend could run on (name, type,
     * memory, features, its kernel choices), marking the one it uses, without
     * opening any and whether or not init succeeded. *out is allocated with
     * spw__malloc; *n may be 0. Backs spw_device_list_open. */
    int (*describe)(spw_device_info **out, int *n);
} spw_backend_ops;

struct spw_backend {
    const spw_backend_ops *ops;
    void *ctx; /* backend-private device state */
    int threads;
    /* Set by init: run only when asked for by name, never picked
     * automatically (a Vulkan implementation running on the CPU). */
    bool manual_only;
};

/* Registry: backends in preference order, initialised on first use. */
int spw__backend_count(void);
spw_backend *spw__backend_get(int idx);
spw_backend *spw__backend_find(const char *name);
/* The plan_batch a server uses on backend `name` for plans of `threads`
 * threads (0: the backend's default); NULL or "auto": the largest among the
 * automatic backends, since any of them may be picked. 0 when any batch is
 * worth its plan. */
int spw__backend_plan_batch(const char *name, int threads);

/* Backends compiled in (each file defines its ops table). */
extern const spw_backend_ops spw__cpu_ref_ops;
#ifdef SPW_HAVE_XNNPACK
extern const spw_backend_ops spw__cpu_fast_ops;
#endif
#ifdef SPW_HAVE_VULKAN
extern const spw_backend_ops spw__vulkan_ops;
/* The device peak of an initialised Vulkan backend's context (vk_peak.c). */
int spw__vk_peak(void *ctx, spw_device_peak *out);
/* A tuning run on an initialised Vulkan backend's context (vk_tune.c). */
int spw__vk_tune_run(void *ctx, const spw_model *model, int batch, int iters, spw_tune_report *out);
#endif

#endif

/* splitwire: loading models and running them on a backend. */
#ifndef SPLITWIRE_MODEL_H
#define SPLITWIRE_MODEL_H

#include "splitwire/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A loaded, validated and shape-checked graph. Immutable once loaded, so one
 * model may back several plans in several threads. Its weights are held once
 * and shared by all its plans, whatever their batch size; a plan keeps them
 * alive, so the model may be freed before its plans. */
typedef struct spw_model spw_model;

/* A model compiled for one backend and one batch size: fused, ordered, with
 * all buffers assigned. Not thread-safe: one run at a time per plan. */
typedef struct spw_plan spw_plan;

/* Loads an ONNX file (opset 13+, plus the ai.splitwire domain). On failure
 * spw_error_detail() names the offending node or field. */
SPW_API int spw_model_load(const char *path, spw_model **out);
SPW_API int spw_model_load_buffer(const void *data, size_t size, spw_model **out);
SPW_API void spw_model_free(spw_model *model);

SPW_API int spw_model_num_inputs(const spw_model *model);
SPW_API int spw_model_num_outputs(const spw_model *model);
/* Describes input/output idx: dtype and dims (-1 for the free batch dim);
 * *name, if given, points into the model. */
SPW_API int spw_model_input(const spw_model *model, int idx, spw_tensor *desc, const char **name);
SPW_API int spw_model_output(const spw_model *model, int idx, spw_tensor *desc, const char **name);

/*
 * Cuts a model at an inner value: the result's only input is `value` (with
 * its inferred shape, batch free) and its outputs are the model's outputs;
 * nodes the outputs do not need are dropped. A server uses it to run a
 * backbone's tail from the split point. SPW_ENOENT when `value` is unknown,
 * SPW_EINVAL when an output still depends on an original input.
 */
SPW_API int spw_model_cut(const spw_model *model, const char *value, spw_model **out);

/* Makes a leading input dimension fixed at 1 (as TFLite conversions fix it)
 * the free batch dimension and infers the shapes again, so plans may batch
 * the model. Before any plan of the model only (SPW_EBUSY after);
 * SPW_ESHAPE, with the model unchanged, when a layer depends on that size. */
SPW_API int spw_model_unbind_batch(spw_model *model);

typedef struct spw_plan_options {
    const char *backend; /* NULL or "auto": chosen by the library; else a backend name */
    int batch;           /* value for a free batch dimension; 0 means 1 */
    int threads;         /* 0: backend default */
    unsigned flags;      /* SPW_PLAN_* */
} spw_plan_options;

#define SPW_PLAN_NO_FUSION 0x1u /* keep every node as its own step (debugging) */
#define SPW_PLAN_PROFILE 0x2u   /* record per-step times */

SPW_API int spw_plan_create(const spw_model *model, const spw_plan_options *opts, spw_plan **out);
SPW_API void spw_plan_free(spw_plan *plan);
SPW_API const char *spw_plan_backend(const spw_plan *plan);
/* Shapes of the plan's inputs and outputs with the batch bound. */
SPW_API int spw_plan_input(const spw_plan *plan, int idx, spw_tensor *desc);
SPW_API int spw_plan_output(const spw_plan *plan, int idx, spw_tensor *desc);

/*
 * Runs the plan. inputs[i] must match spw_plan_input(i) in shape; dtype and
 * layout are converted when they differ. outputs[i].data must hold
 * spw_plan_output(i) in the dtype and layout the caller set in outputs[i].
 * Makes no allocation.
 */
SPW_API int spw_plan_run(spw_plan *plan, const spw_tensor *inputs, int n_inputs,
                         spw_tensor *outputs, int n_outputs);

/* Registered backends, in preference order. */
SPW_API int spw_backend_count(void);
SPW_API const char *spw_backend_name(int idx);
/* 1 when automatic selection may pick backend idx; 0 when it runs only by
 * name (e.g. a Vulkan device that is itself a CPU implementation). */
SPW_API int spw_backend_automatic(int idx);

/* Index of the registered backend a name selects ("cpu" picks the most
 * capable CPU backend), or SPW_ENOENT. */
SPW_API int spw_backend_find(const char *name);

/* ---- inspection ---------------------------------------------------------- */

/* A model's layers with their shapes bound to one batch size: what a plan at
 * that batch would compute. Owns everything it points to; independent of
 * the model once made. */
typedef struct spw_summary spw_summary;

#define SPW_SUMMARY_FUSED 0x1u /* as plans see it: BatchNorm folded, activations fused */

SPW_API int spw_model_summarize(const spw_model *model, int batch, unsigned flags,
                                spw_summary **out);
SPW_API void spw_summary_free(spw_summary *summary);
/* The ai.onnx opset the file imports, and its producer_name (NULL if none). */
SPW_API int64_t spw_summary_opset(const spw_summary *summary);
SPW_API const char *spw_summary_producer(const spw_summary *summary);
SPW_API int spw_summary_num_inputs(const spw_summary *summary);
SPW_API int spw_summary_num_outputs(const spw_summary *summary);
/* Graph input/output idx with the batch bound; *name points into the summary. */
SPW_API int spw_summary_input(const spw_summary *summary, int idx, spw_tensor *desc,
                              const char **name);
SPW_API int spw_summary_output(const spw_summary *summary, int idx, spw_tensor *desc,
                               const char **name);

/* One layer, in execution order. Strings point into the summary. */
typedef struct spw_layer_info {
    const char *name;
    const char *op;     /* ONNX op type, e.g. "Conv" */
    const char *domain; /* "" for ai.onnx, else e.g. "ai.splitwire" */
    const char *fused;  /* ops folded into it, e.g. "+relu+add(x)"; "" for none */
    spw_tensor output;  /* its first output (data NULL) */
    int n_inputs;
    int64_t params; /* constant elements it reads */
    int64_t macs;   /* multiply-accumulates at this batch */
} spw_layer_info;

SPW_API int spw_summary_num_layers(const spw_summary *summary);
SPW_API int spw_summary_layer(const spw_summary *summary, int idx, spw_layer_info *out);
/* Input k of layer idx: *name, shape and whether it is a constant. SPW_ENOENT
 * for an omitted optional input. */
SPW_API int spw_summary_layer_input(const spw_summary *summary, int idx, int k, spw_tensor *desc,
                                    const char **name, int *is_const);

/* ---- per-step profile ----------------------------------------------------- */

/* A plan's steps, in execution order (one per layer after fusion). */
typedef struct spw_step_info {
    const char *name; /* the layer's name; points into the plan */
    const char *op;
    int64_t macs;
    /* With SPW_PLAN_PROFILE: nanoseconds in this step summed over the runs
     * since the plan was made or last reset; 0 without it. */
    uint64_t ns;
} spw_step_info;

SPW_API int spw_plan_num_steps(const spw_plan *plan);
SPW_API int spw_plan_step(const spw_plan *plan, int idx, spw_step_info *out);
SPW_API void spw_plan_profile_reset(spw_plan *plan);
/* Bytes of the plan's activation arena. */
SPW_API size_t spw_plan_arena_bytes(const spw_plan *plan);
/* A backend's device and its arithmetic peak, measured by a calibration
 * kernel of independent fused multiply-adds (a few tenths of a second).
 * fp16_gflops is 0 on a device without fp16 arithmetic. */
typedef struct spw_device_peak {
    char device[256];
    double fp32_gflops, fp16_gflops;
} spw_device_peak;
/* SPW_EUNSUPPORTED for a backend that cannot measure it (the CPU ones),
 * SPW_ENOENT when no backend has that name. */
SPW_API int spw_backend_peak(const char *backend, spw_device_peak *out);

/* What a tuning run measured and stored. */
typedef struct spw_tune_report {
    char path[600];              /* the file written */
    int shapes;                  /* distinct conv shapes of the model */
    int candidates;              /* settings timed for each */
    int changed;                 /* shapes whose fastest setting is not the built-in one */
    double default_ms, tuned_ms; /* all conv layers: built-in settings vs the fastest */
} spw_tune_report;
/* Times every conv layer of model at batch under a few candidate kernel
 * settings (median of iters runs each) and stores the fastest per conv
 * shape in the backend's tuning file (Vulkan: next to the pipeline cache,
 * one file per device and driver version), which plans built afterwards, in
 * this process and later ones, follow. Not while other threads build plans
 * on that backend. SPW_EUNSUPPORTED for a backend without tuning. */
SPW_API int spw_backend_tune(const char *backend, const spw_model *model, int batch, int iters,
                             spw_tune_report *out);

#ifdef __cplusplus
}
#endif
#endif

/* cpu-fast: the optimised CPU backend. XNNPACK operators (NHWC, bias and
 * ReLU/ReLU6 fused as output bounds) for convolution, fully connected,
 * pooling and element-wise work; our own NHWC kernels for the rest (see
 * fast_kernels.c). Operators are created and set up once per plan on the
 * arena, which never moves, so a run is a walk over xnn_run_operator calls
 * on a pthreadpool and makes no allocation.
 *
 * Threads: spw_plan_options.threads, default every online core. */
#include <string.h>
#include <unistd.h>

#include "drivers/cpu/cpu_describe.h"
#include "drivers/cpu/fast_internal.h"

static int fast_init(spw_backend *be)
{
    enum xnn_status st = xnn_initialize(&spw__fast_xnn_allocator);
    if (st != xnn_status_success)
        return spw__error(SPW_ENODEV, "cpu-fast: XNNPACK cannot run here (status %d)", (int)st);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    be->threads = n > 0 ? (int)SPW_MIN(n, 256) : 1;
    return 0;
}

static void fast_fini(spw_backend *be)
{
    (void)be;
    xnn_deinitialize();
}

/* Everything cpu-ref runs: what XNNPACK and our kernels do not cover goes
 * through the reference kernel on NCHW copies (fast_prepare.c). */
static bool fast_supports_op(const spw_backend *be, const spw_graph *g, const spw_node *n)
{
    return spw__cpu_ref_ops.supports_op(be, g, n);
}

static int fast_buffer_alloc(spw_backend *be, size_t size, spw_buffer **out)
{
    (void)be;
    spw_buffer *b = spw__calloc(1, sizeof(*b));
    if (!b)
        return spw__error(SPW_ENOMEM, "cpu-fast: out of memory");
    /* XNNPACK reads up to XNN_EXTRA_BYTES past its inputs: pad the end. */
    b->host = spw__aligned_alloc(SPW_ARENA_ALIGN, size + FAST_PAD);
    if (!b->host) {
        spw__free(b);
        return spw__error(SPW_ENOMEM, "cpu-fast: no memory for a %zu-byte arena", size);
    }
    memset(b->host, 0, size + FAST_PAD); /* also faults every page in now */
    b->size = size;
    *out = b;
    return 0;
}

static void fast_buffer_free(spw_backend *be, spw_buffer *buf)
{
    (void)be;
    if (!buf)
        return;
    spw__aligned_free(buf->host);
    spw__free(buf);
}

static int fast_plan_prepare(spw_backend *be, spw_plan *plan, void **state)
{
    int rc;
    fast_plan *fp = spw__calloc(1, sizeof(*fp));
    if (!fp)
        return spw__error(SPW_ENOMEM, "cpu-fast: out of memory");
    fp->threads = plan->threads > 0 ? plan->threads : be->threads;
    fp->weights = plan->weights_state;
    /* One thread runs inline on the caller: no pool, no hand-off. */
    if (fp->threads > 1) {
        fp->pool = pthreadpool_create((size_t)fp->threads);
        if (!fp->pool) {
            rc = spw__error(SPW_ENOMEM, "cpu-fast: cannot start %d threads", fp->threads);
            goto fail_state;
        }
    }
    if ((rc = spw__fast_build(be, plan, fp)))
        goto fail_build;
    SPW_LOGD("cpu-fast: %d steps as %d actions on %d thread%s", plan->n_steps, fp->n_acts,
             fp->threads, fp->threads == 1 ? "" : "s");
    *state = fp;
    return 0;

fail_build:
    spw__fast_release(fp);
    if (fp->pool)
        pthreadpool_destroy(fp->pool);
fail_state:
    spw__free(fp);
    return rc;
}

static void fast_plan_release(spw_backend *be, spw_plan *plan, void *state)
{
    (void)be;
    (void)plan;
    fast_plan *fp = state;
    if (!fp)
        return;
    spw__fast_release(fp);
    if (fp->pool)
        pthreadpool_destroy(fp->pool);
    spw__free(fp);
}

static int fast_weights_create(spw_backend *be, const spw_weights *w, void **state)
{
    (void)be;
    (void)w;
    return spw__fast_weights_create((fast_weights **)state);
}

static void fast_weights_release(spw_backend *be, void *state)
{
    (void)be;
    spw__fast_weights_release(state);
}

static void park_task(void *ctx, size_t i)
{
    (void)ctx;
    (void)i;
}

/* Sends the pool's workers to sleep now. pthreadpool workers otherwise spin
 * for a million pause instructions after each operator (about 4 ms of a core
 * on this project's EPYC test machine): between runs that spinning takes the core from whatever runs next
 * (the next plan of a request, with a pool of its own, or the other end of
 * the link on the same machine). An empty task with the yield flag makes
 * them wait in the kernel instead; the next run wakes them with a futex. */
static void park_workers(const fast_plan *fp)
{
    if (fp->pool)
        pthreadpool_parallelize_1d(fp->pool, park_task, NULL, (size_t)fp->threads,
                                   PTHREADPOOL_FLAG_YIELD_WORKERS);
}

static int fast_run_plan(spw_backend *be, spw_plan *plan, void *state)
{
    (void)be;
    const fast_plan *fp = state;
    const int n = fp->n_acts;
    uint64_t *prof = plan->step_ns;
    for (int i = 0; i < n; i++) {
        const fast_action *a = &fp->acts[i];
        uint64_t t0 = prof ? spw__now_ns() : 0;
        if (a->xop) {
            enum xnn_status st = xnn_run_operator(a->xop, fp->pool);
            if (SPW_UNLIKELY(st != xnn_status_success)) {
                park_workers(fp);
                return spw__error(SPW_EBACKEND, "cpu-fast: node '%s' failed (XNNPACK status %d)",
                                  a->node->name, (int)st);
            }
        } else {
            a->fn(a);
        }
        if (prof)
            prof[a->step] += spw__now_ns() - t0;
    }
    park_workers(fp);
    return 0;
}

/* Plans default to every online core (fast_init). */
static int fast_describe(spw_device_info **out, int *n)
{
    return spw__cpu_describe("cpu-fast", "XNNPACK", 0, out, n);
}

const spw_backend_ops spw__cpu_fast_ops = {
    .name = "cpu-fast",
    .layout = SPW_LAYOUT_NHWC,
    .plan_batch = 1,
    .init = fast_init,
    .fini = fast_fini,
    .supports_op = fast_supports_op,
    .op_row = spw__fast_op_row,
    .buffer_alloc = fast_buffer_alloc,
    .buffer_free = fast_buffer_free,
    .weights_create = fast_weights_create,
    .weights_release = fast_weights_release,
    .plan_prepare = fast_plan_prepare,
    .plan_release = fast_plan_release,
    .run_plan = fast_run_plan,
    .describe = fast_describe,
};

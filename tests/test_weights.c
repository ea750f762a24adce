/* A model's weights are held once: plans of every batch size share its
 * constants (BatchNorm folded once), each backend's prepared weights (cpu-fast's
 * packed filters) and its calibration choice, in any thread, and give the
 * answer of a lone plan on the reference backend. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>

#include <cmocka.h>

#include "spw_test.h"

#include "drivers/backend.h"
#include "runtime/graph/plan.h"
#ifdef SPW_HAVE_VULKAN
#include "drivers/vulkan/vk_internal.h"
#endif

#define DECODER SPW_SOURCE_DIR "/models/default/decoder.onnx"
#define VECTOR_DIR SPW_TEST_DATA "/vectors/ops"

/* ------------------------------------------------ measuring allocator */

/* Every block requested while `on`, and whether it is still allocated.
 * Threads other than the test's own never allocate while it is on. */
#define METER_MAX 65536
static struct {
    bool on;
    int n;
    struct block {
        void *p;
        size_t size;
        bool live;
    } b[METER_MAX];
} meter;

static void note(void *p, size_t size)
{
    if (p && meter.on && meter.n < METER_MAX)
        meter.b[meter.n++] = (struct block){p, size, true};
}

static void unnote(void *p)
{
    for (int i = meter.n - 1; p && i >= 0; i--)
        if (meter.b[i].p == p && meter.b[i].live) {
            meter.b[i].live = false;
            return;
        }
}

static void *meter_malloc(size_t size, void *ctx)
{
    (void)ctx;
    void *p = malloc(size);
    note(p, size);
    return p;
}

static void *meter_realloc(void *ptr, size_t size, void *ctx)
{
    (void)ctx;
    unnote(ptr); /* before: realloc may hand the same address back */
    void *p = realloc(ptr, size);
    if (p)
        note(p, size);
    else if (ptr)
        note(ptr, 0); /* still allocated, not counted again */
    return p;
}

static void meter_free(void *ptr, void *ctx)
{
    (void)ctx;
    unnote(ptr);
    free(ptr);
}

static const spw_allocator metering = {meter_malloc, meter_realloc, meter_free, NULL};

static bool have(const char *backend)
{
    for (int b = 0; b < spw_backend_count(); b++)
        if (!strcmp(spw_backend_name(b), backend))
            return true;
    return false;
}

/* Sum of the constants' bytes, and the largest. */
static size_t weight_bytes(const spw_model *m, size_t *largest)
{
    size_t sum = 0;
    *largest = 0;
    for (int v = 0; v < m->graph->n_values; v++)
        if (m->graph->values[v].flags & SPW_VALUE_CONST) {
            sum += m->graph->values[v].nbytes;
            if (m->graph->values[v].nbytes > *largest)
                *largest = m->graph->values[v].nbytes;
        }
    return sum;
}

typedef struct usage {
    size_t allocated, live; /* bytes, beside the arena and staging */
    size_t largest_alloc, largest_live;
} usage;

/* What creating a batch-2 plan of path allocates and leaves allocated; with
 * `warm`, after a batch-1 plan of the same model (kept alive) exists. */
static usage plan_usage(const char *path, const char *backend, bool warm, size_t *weights,
                        size_t *largest_const)
{
    spw_model *m = NULL;
    assert_int_equal(spw_model_load(path, &m), 0);
    *weights = weight_bytes(m, largest_const);
    spw_plan *first = NULL, *second = NULL;
    spw_plan_options o = {.backend = backend, .batch = 1, .threads = 1};
    if (warm)
        assert_int_equal(spw_plan_create(m, &o, &first), 0);
    o.batch = 2;
    spw_set_allocator(&metering);
    meter.n = 0;
    meter.on = true;
    int rc = spw_plan_create(m, &o, &second);
    meter.on = false;
    assert_int_equal(rc, 0);
    assert_true(meter.n < METER_MAX);
    /* The arena and staging (each with at most a little alignment and
     * padding) are the plan's own; count everything else. */
    usage u = {0};
    for (int i = 0; i < meter.n; i++) {
        size_t z = meter.b[i].size;
        if ((z >= second->arena_size && z <= second->arena_size + 256) ||
            (z >= second->staging_size && z <= second->staging_size + 256))
            continue;
        u.allocated += z;
        u.largest_alloc = z > u.largest_alloc ? z : u.largest_alloc;
        if (meter.b[i].live) {
            u.live += z;
            u.largest_live = z > u.largest_live ? z : u.largest_live;
        }
    }
    spw_plan_free(second); /* the metering allocator's blocks go back to it */
    spw_plan_free(first);
    spw_model_free(m);
    spw_set_allocator(NULL);
    return u;
}

/* A second plan of a model, at another batch size, allocates no copy of a
 * weight: the default bundle's decoder (2 M parameters, 8 MB) planned at
 * batch 2 after a batch-1 plan allocates no block as large as its largest
 * constant. The reference allocates none, first plan or not, and under a
 * quarter of the constants' bytes in all, beside the arena and staging.
 * cpu-fast's first plan packs a copy (at least the constants' size, kept);
 * the second copies its operators from the first's (packed weights shared)
 * and allocates and keeps under a quarter of what the first did. */
static void test_second_plan_copies_no_weights(void **state)
{
    (void)state;
    const char *backends[] = {"cpu-ref", "cpu-fast"};
    int tried = 0;
    for (size_t i = 0; i < SPW_ARRAY_SIZE(backends); i++) {
        if (!have(backends[i]))
            continue;
        tried++;
        size_t weights, largest;
        usage cold = plan_usage(DECODER, backends[i], false, &weights, &largest);
        usage warm = plan_usage(DECODER, backends[i], true, &weights, &largest);
        print_message("  %s: weights %zu bytes (largest %zu); a batch-2 plan keeps %zu bytes "
                      "(largest block %zu) on a fresh model, %zu (largest %zu) after a batch-1 "
                      "plan; allocated %zu then %zu\n",
                      backends[i], weights, largest, cold.live, cold.largest_live, warm.live,
                      warm.largest_live, cold.allocated, warm.allocated);
        if (strcmp(backends[i], "cpu-ref")) {
            /* What stays is per plan: operators, indirection buffers
             * (batch-sized), Winograd scratch. */
            assert_true(cold.live >= weights);
            assert_true(warm.live < cold.live / 4);
            assert_true(warm.allocated < cold.allocated / 4);
        } else {
            assert_true(cold.allocated < weights / 4);
            assert_true(warm.allocated < weights / 4);
            assert_true(warm.live < weights / 4);
        }
        assert_true(warm.largest_alloc < largest);
        assert_true(warm.largest_live < largest);
    }
    assert_true(tried >= 1);
}

/* ------------------------------------------------ a model with BatchNorm */

static float *filled(size_t n, int mul, int mod, float scale, float bias)
{
    float *d = spw__malloc(n * sizeof(float));
    for (size_t i = 0; d && i < n; i++)
        d[i] = (float)((int)(i * (size_t)mul % (size_t)mod) - mod / 2) * scale + bias;
    return d;
}

#define C 16
#define HW 8

/* x (Nx16x8x8, batch free) -> Conv 3x3 -> BatchNorm -> Relu -> Conv 3x3 + x
 * -> y. 16 channels and 8x8 take cpu-fast's Winograd path; the BatchNorm is
 * folded into the first convolution and the Relu and residual add fused. */
static spw_model *make_model(void)
{
    spw_graph *g;
    if (spw__graph_create(&g))
        return NULL;
    spw_model *m = spw__calloc(1, sizeof(*m));
    const int64_t xd[4] = {-1, C, HW, HW}, wd[4] = {C, C, 3, 3}, cd[1] = {C};
    int x = spw__graph_add_value(g, "x"), c1 = spw__graph_add_value(g, "c1");
    int b1 = spw__graph_add_value(g, "b1"), r1 = spw__graph_add_value(g, "r1");
    int c2 = spw__graph_add_value(g, "c2"), y = spw__graph_add_value(g, "y");
    if (!m || x < 0 || c1 < 0 || b1 < 0 || r1 < 0 || c2 < 0 || y < 0)
        goto fail;
    g->values[x].dtype = SPW_F32;
    g->values[x].ndim = 4;
    memcpy(g->values[x].dims, xd, sizeof(xd));
    const struct {
        const char *name;
        int ndim;
        const int64_t *dims;
        size_t n;
        int mul, mod;
        float scale, bias;
    } k[] = {
        {"w1", 4, wd, C * C * 9, 5, 11, 0.02f, 0.0f},  {"bias1", 1, cd, C, 1, 5, 0.1f, 0.0f},
        {"gamma", 1, cd, C, 3, 7, 0.1f, 1.0f},         {"beta", 1, cd, C, 2, 5, 0.05f, 0.0f},
        {"mean", 1, cd, C, 3, 5, 0.02f, 0.0f},         {"var", 1, cd, C, 5, 7, 0.1f, 1.0f},
        {"w2", 4, wd, C * C * 9, 7, 13, 0.015f, 0.0f},
    };
    int kv[SPW_ARRAY_SIZE(k)];
    for (size_t i = 0; i < SPW_ARRAY_SIZE(k); i++) {
        float *d = filled(k[i].n, k[i].mul, k[i].mod, k[i].scale, k[i].bias);
        if (!d)
            goto fail;
        if ((kv[i] = spw__graph_add_const(g, k[i].name, SPW_F32, k[i].ndim, k[i].dims, d)) < 0) {
            spw__free(d);
            goto fail;
        }
    }
    int conv1_in[3] = {x, kv[0], kv[1]}, bn_in[5] = {c1, kv[2], kv[3], kv[4], kv[5]};
    int conv2_in[2] = {r1, kv[6]}, add_in[2] = {c2, x};
    int n1 = spw__graph_add_node(g, SPW_OP_CONV, "conv1", conv1_in, 3, &c1, 1);
    int nb = spw__graph_add_node(g, SPW_OP_BATCH_NORM, "bn", bn_in, 5, &b1, 1);
    int nr = spw__graph_add_node(g, SPW_OP_RELU, "relu", &b1, 1, &r1, 1);
    int n2 = spw__graph_add_node(g, SPW_OP_CONV, "conv2", conv2_in, 2, &c2, 1);
    int na = spw__graph_add_node(g, SPW_OP_ADD, "add", add_in, 2, &y, 1);
    if (n1 < 0 || nb < 0 || nr < 0 || n2 < 0 || na < 0)
        goto fail;
    const spw_conv_params cp = {
        .kernel = {3, 3}, .stride = {1, 1}, .dilation = {1, 1}, .pads = {1, 1, 1, 1}, .group = 1};
    g->nodes[n1].p.conv = cp;
    g->nodes[n2].p.conv = cp;
    g->nodes[nb].p.bn.epsilon = 1e-5f;
    if (spw__graph_add_input(g, x) || spw__graph_add_output(g, y) || spw__graph_link(g) ||
        spw__graph_infer_shapes(g, -1))
        goto fail;
    m->graph = g;
    return m;
fail:
    spw__free(m);
    spw__graph_free(g);
    return NULL;
}

#define MAX_N 4
#define SAMPLE (C * HW * HW)

static void input(float *x, int n)
{
    for (int i = 0; i < n * SAMPLE; i++)
        x[i] = (float)((i * 37) % 29 - 14) * 0.07f;
}

static int run(spw_plan *plan, int n, const float *x, float *y)
{
    spw_tensor in = {.dtype = SPW_F32, .ndim = 4, .dims = {n, C, HW, HW}, .data = (void *)x};
    spw_tensor out = {.dtype = SPW_F32, .ndim = 4, .dims = {n, C, HW, HW}, .data = y};
    return spw_plan_run(plan, &in, 1, &out, 1);
}

/* Each sample through a lone batch-1 plan on the reference, unfused, on a
 * model of its own: the single-plan path as it was. */
static void reference(const float *x, float *want)
{
    spw_model *m = make_model();
    assert_non_null(m);
    spw_plan_options o = {.backend = "cpu-ref", .flags = SPW_PLAN_NO_FUSION};
    spw_plan *p = NULL;
    assert_int_equal(spw_plan_create(m, &o, &p), 0);
    for (int s = 0; s < MAX_N; s++)
        assert_int_equal(run(p, 1, x + s * SAMPLE, want + s * SAMPLE), 0);
    spw_plan_free(p);
    spw_model_free(m);
}

static void check_close(const float *got, const float *want, int n, const char *what)
{
    for (int i = 0; i < n; i++)
        if (!(fabsf(got[i] - want[i]) <= 1e-4f * (1.0f + fabsf(want[i]))))
            fail_msg("%s: element %d is %g, the reference %g", what, i, got[i], want[i]);
}

/* Plans of batch 1, 2, 3 and 4 of one model, all alive at once (and still
 * alive after the model is freed), share one backend state (on Vulkan, one
 * weights buffer) and agree with the reference sample by sample, on every
 * backend. */
static void test_batches_match_reference(void **state)
{
    (void)state;
    static float x[MAX_N * SAMPLE], want[MAX_N * SAMPLE], got[MAX_N * SAMPLE];
    input(x, MAX_N);
    reference(x, want);
    for (int b = 0; b < spw_backend_count(); b++) {
        const char *name = spw_backend_name(b);
        spw_model *m = make_model();
        assert_non_null(m);
        spw_plan *plans[MAX_N];
        for (int n = 1; n <= MAX_N; n++) {
            spw_plan_options o = {.backend = name, .batch = n};
            int rc = spw_plan_create(m, &o, &plans[n - 1]);
            if (rc)
                fail_msg("%s batch %d: %s", name, n, spw_error_detail());
        }
#ifdef SPW_HAVE_VULKAN
        /* Vulkan: one weights buffer on the device for the four plans. */
        if (!strcmp(name, "vulkan"))
            assert_int_equal(spw__vk_weights_count(plans[0]->weights_state), 1);
#endif
        for (int n = 1; n < MAX_N; n++)
            assert_ptr_equal(plans[n]->weights_state, plans[0]->weights_state);
        spw_model_free(m); /* the plans hold the weights */
        for (int n = 1; n <= MAX_N; n++) {
            char what[64];
            snprintf(what, sizeof(what), "%s batch %d", name, n);
            memset(got, 0, sizeof(got));
            assert_int_equal(run(plans[n - 1], n, x, got), 0);
            check_close(got, want, n * SAMPLE, what);
            spw_plan_free(plans[n - 1]);
        }
        print_message("  %s: batches 1-%d match the reference\n", name, MAX_N);
    }
}

/* A server worker's plans, largest first, the rest borrowing its arena:
 * one arena for all, and each plan, run in turn (so the arena holds another
 * plan's activations from the run before), still matches the reference. */
static void test_shared_arena(void **state)
{
    (void)state;
    static float x[MAX_N * SAMPLE], want[MAX_N * SAMPLE], got[MAX_N * SAMPLE];
    input(x, MAX_N);
    reference(x, want);
    for (int b = 0; b < spw_backend_count(); b++) {
        const char *name = spw_backend_name(b);
        spw_model *m = make_model();
        assert_non_null(m);
        spw_plan *plans[MAX_N] = {0};
        for (int n = MAX_N; n >= 1; n--) {
            spw_plan_options o = {.backend = name, .batch = n};
            assert_int_equal(spw__plan_create_sharing(m, &o, &plans[MAX_N - 1], 1, &plans[n - 1]),
                             0);
            assert_ptr_equal(plans[n - 1]->arena, plans[MAX_N - 1]->arena);
            assert_int_equal(plans[n - 1]->arena_borrowed, n != MAX_N);
        }
        for (int round = 0; round < 2; round++)
            for (int n = 1; n <= MAX_N; n++) {
                char what[64];
                snprintf(what, sizeof(what), "%s batch %d, shared arena", name, n);
                memset(got, 0, sizeof(got));
                assert_int_equal(run(plans[n - 1], n, x, got), 0);
                check_close(got, want, n * SAMPLE, what);
            }
        for (int n = 1; n <= MAX_N; n++) /* borrowers first */
            spw_plan_free(plans[n - 1]);
        spw_model_free(m);
        print_message("  %s: batches 1-%d on one arena match the reference\n", name, MAX_N);
    }
}

/* ------------------------------------------------ calibration once */

static int calibrations;

static uint64_t count_calibration(const spw_backend *be, uint64_t ns)
{
    (void)be;
    calibrations++;
    return ns;
}

/* Automatic choice times the candidates once per (model, batch): a second
 * plan at the same batch takes the recorded winner, another batch measures. */
static void test_calibration_once(void **state)
{
    (void)state;
    spw_model *m = make_model();
    assert_non_null(m);
    spw__plan_calibration_hook = count_calibration;
    int counts[3];
    const char *picked[3];
    const int batch[3] = {2, 2, 3};
    for (int i = 0; i < 3; i++) {
        calibrations = 0;
        spw_plan_options o = {.batch = batch[i]};
        spw_plan *p = NULL;
        assert_int_equal(spw_plan_create(m, &o, &p), 0);
        counts[i] = calibrations;
        picked[i] = spw_plan_backend(p);
        spw_plan_free(p);
    }
    spw__plan_calibration_hook = NULL;
    spw_model_free(m);
    print_message("  candidates timed: %d, %d (same batch), %d (another)\n", counts[0], counts[1],
                  counts[2]);
    assert_int_equal(counts[1], 0);
    assert_string_equal(picked[0], picked[1]);
    /* With one candidate nothing is timed at all; with several, each is. */
    assert_int_equal(counts[2], counts[0]);
    assert_true(counts[0] == 0 || counts[0] >= 2);
}

/* ------------------------------------------------ every op, shared */

/* Runs plan on a fixed pattern; returns the first output (malloc'd). */
static float *run_pattern(spw_plan *plan, size_t *n_out)
{
    spw_tensor in[8], out;
    int n_in = plan->graph->n_inputs;
    assert_true(n_in <= 8 && plan->graph->n_outputs >= 1);
    for (int i = 0; i < n_in; i++) {
        assert_int_equal(spw_plan_input(plan, i, &in[i]), 0);
        size_t n = (size_t)spw_tensor_numel(&in[i]);
        in[i].data = calloc(n + 1, 8);
        assert_non_null(in[i].data);
        for (size_t k = 0; k < n; k++) {
            if (in[i].dtype == SPW_I32)
                ((int32_t *)in[i].data)[k] = (int32_t)(k % 13) - 6;
            else if (in[i].dtype == SPW_F32)
                ((float *)in[i].data)[k] = 0.5f - 0.25f * (float)((k * 7) % 11);
        }
    }
    /* Only the first output is compared; the others still need room. */
    spw_tensor outs[8];
    int n_o = plan->graph->n_outputs;
    assert_true(n_o <= 8);
    for (int i = 0; i < n_o; i++) {
        assert_int_equal(spw_plan_output(plan, i, &outs[i]), 0);
        outs[i].dtype = SPW_F32;
        outs[i].data = calloc((size_t)spw_tensor_numel(&outs[i]) + 1, 8);
        assert_non_null(outs[i].data);
    }
    assert_int_equal(spw_plan_run(plan, in, n_in, outs, n_o), 0);
    out = outs[0];
    for (int i = 1; i < n_o; i++)
        free(outs[i].data);
    for (int i = 0; i < n_in; i++)
        free(in[i].data);
    *n_out = (size_t)spw_tensor_numel(&out);
    return out.data;
}

/* Every op vector on cpu-fast: a plan that took its packed weights from an
 * earlier plan of the model (freed before it runs) computes bit for bit what
 * a plan of a model of its own does. AddressSanitizer sees any operator left
 * pointing at a block it no longer owns. */
static void test_every_op_shared_safely(void **state)
{
    (void)state;
    if (!have("cpu-fast")) {
        /* cpu-ref shares constants only; covered above. */
        print_message("  no cpu-fast here: nothing packed to share\n");
        return;
    }
    DIR *d = opendir(VECTOR_DIR);
    assert_non_null(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len <= 5 || strcmp(e->d_name + len - 5, ".onnx"))
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", VECTOR_DIR, e->d_name);
        spw_model *shared = NULL, *own = NULL;
        assert_int_equal(spw_model_load(path, &shared), 0);
        assert_int_equal(spw_model_load(path, &own), 0);
        spw_plan_options o1 = {.backend = "cpu-fast", .threads = 1};
        spw_plan_options o2 = {.backend = "cpu-fast", .threads = 2};
        spw_plan *first = NULL, *second = NULL, *alone = NULL;
        assert_int_equal(spw_plan_create(shared, &o1, &first), 0);
        assert_int_equal(spw_plan_create(shared, &o2, &second), 0);
        assert_int_equal(spw_plan_create(own, &o2, &alone), 0);
        spw_plan_free(first);
        spw_model_free(shared);
        size_t na, nb;
        float *a = run_pattern(second, &na), *b = run_pattern(alone, &nb);
        assert_int_equal(na, nb);
        if (memcmp(a, b, na * sizeof(float)))
            fail_msg("%s: a plan sharing packed weights differs from one alone", e->d_name);
        free(a);
        free(b);
        spw_plan_free(second);
        spw_plan_free(alone);
        spw_model_free(own);
        n++;
    }
    closedir(d);
    assert_true(n >= 25);
}

/* ------------------------------------------------ threads */

#define THREADS 4

typedef struct worker {
    const spw_model *m;
    const float *x, *want;
    int rc;
    char detail[256];
} worker;

/* A server worker's start: plans for batches 1..MAX_N of a shared model,
 * each run once against the reference. */
static void *worker_main(void *arg)
{
    worker *w = arg;
    static _Thread_local float got[MAX_N * SAMPLE];
    for (int n = 1; n <= MAX_N && !w->rc; n++) {
        spw_plan_options o = {.batch = n, .threads = 1};
        spw_plan *p = NULL;
        if ((w->rc = spw_plan_create(w->m, &o, &p)) || (w->rc = run(p, n, w->x, got))) {
            snprintf(w->detail, sizeof(w->detail), "batch %d: %s", n, spw_error_detail());
        } else {
            for (int i = 0; i < n * SAMPLE; i++)
                if (!(fabsf(got[i] - w->want[i]) <= 1e-4f * (1.0f + fabsf(w->want[i])))) {
                    w->rc = -1;
                    snprintf(w->detail, sizeof(w->detail), "batch %d: element %d is %g, not %g", n,
                             i, got[i], w->want[i]);
                    break;
                }
        }
        spw_plan_free(p);
    }
    return NULL;
}

/* Workers plan the same model at once: the weights, their backend state and
 * the calibration record are built once and shared without a race (run under
 * ThreadSanitizer with the threads label). */
static void test_concurrent_plans(void **state)
{
    (void)state;
    static float x[MAX_N * SAMPLE], want[MAX_N * SAMPLE];
    input(x, MAX_N);
    reference(x, want);
    spw_model *m = make_model();
    assert_non_null(m);
    pthread_t t[THREADS];
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){.m = m, .x = x, .want = want};
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        if (w[i].rc)
            fail_msg("worker %d: %s", i, w[i].detail);
    }
    spw_model_free(m);
}

int main(void)
{
    /* A CPU Vulkan device becomes a second automatic candidate (so the
     * calibration has a choice to make), in fp32 like the reference. */
    setenv("SPW_VULKAN_AS_DISCRETE", "1", 0);
    setenv("SPW_VULKAN_FP16", "0", 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_plan_copies_no_weights),
        cmocka_unit_test(test_batches_match_reference),
        cmocka_unit_test(test_shared_arena),
        cmocka_unit_test(test_calibration_once),
        cmocka_unit_test(test_every_op_shared_safely),
        cmocka_unit_test(test_concurrent_plans),
    };
    return spw_test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}

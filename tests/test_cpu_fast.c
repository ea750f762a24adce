/* cpu-fast: no allocation while a plan runs (its own, the planner's or
 * XNNPACK's, which is routed through the library allocator), the thread
 * count, and the automatic choice of backend. */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "spw_test.h"

#include "runtime/graph/plan.h"

#define ENCODER SPW_SOURCE_DIR "/models/sample/encoder.onnx"
#define VECTOR_DIR SPW_TEST_DATA "/vectors/ops"

/* ------------------------------------------------ counting allocator */

static struct {
    long mallocs, reallocs, frees, live;
    long budget; /* allocations left before they fail; negative: no limit */
} counts = {.budget = -1};

static bool out_of_budget(void)
{
    if (counts.budget < 0)
        return false;
    if (counts.budget == 0)
        return true;
    counts.budget--;
    return false;
}

static void *count_malloc(size_t size, void *ctx)
{
    (void)ctx;
    if (out_of_budget())
        return NULL;
    counts.mallocs++;
    counts.live++;
    return malloc(size);
}

static void *count_realloc(void *ptr, size_t size, void *ctx)
{
    (void)ctx;
    if (out_of_budget())
        return NULL;
    counts.reallocs++;
    if (!ptr)
        counts.live++;
    return realloc(ptr, size);
}

static void count_free(void *ptr, void *ctx)
{
    (void)ctx;
    if (ptr) {
        counts.frees++;
        counts.live--;
    }
    free(ptr);
}

static long events(void)
{
    return counts.mallocs + counts.reallocs + counts.frees;
}

static bool have_fast(void)
{
    for (int b = 0; b < spw_backend_count(); b++)
        if (!strcmp(spw_backend_name(b), "cpu-fast"))
            return true;
    return false;
}

/* ------------------------------------------------------------ helpers */

typedef struct io {
    spw_tensor in[8], out[8];
    int n_in, n_out;
} io;

/* Inputs filled with a fixed pattern, outputs allocated, both from the C
 * library (not counted). */
static void io_make(const spw_plan *plan, io *x)
{
    memset(x, 0, sizeof(*x));
    x->n_in = plan->graph->n_inputs;
    x->n_out = plan->graph->n_outputs;
    for (int i = 0; i < x->n_in; i++) {
        assert_int_equal(spw_plan_input(plan, i, &x->in[i]), 0);
        size_t n = (size_t)spw_tensor_numel(&x->in[i]);
        x->in[i].data = calloc(n + 1, 8);
        assert_non_null(x->in[i].data);
        for (size_t k = 0; k < n; k++) {
            if (x->in[i].dtype == SPW_I32)
                ((int32_t *)x->in[i].data)[k] = (int32_t)(k % 13) - 6;
            else if (x->in[i].dtype == SPW_F32)
                ((float *)x->in[i].data)[k] = 0.5f + 0.25f * (float)((k * 7) % 11);
        }
    }
    for (int i = 0; i < x->n_out; i++) {
        assert_int_equal(spw_plan_output(plan, i, &x->out[i]), 0);
        x->out[i].data = calloc((size_t)spw_tensor_numel(&x->out[i]) + 1, 8);
        assert_non_null(x->out[i].data);
    }
}

static void io_free(io *x)
{
    for (int i = 0; i < x->n_in; i++)
        free(x->in[i].data);
    for (int i = 0; i < x->n_out; i++)
        free(x->out[i].data);
}

/* Plans path on backend, then asserts spw_plan_run allocates nothing. */
static void check_no_alloc(const char *path, const char *backend, int threads, unsigned flags)
{
    spw_model *m = NULL;
    int rc = spw_model_load(path, &m);
    if (rc)
        fail_msg("%s: %s", path, spw_error_detail());
    spw_plan_options o = {.backend = backend, .threads = threads, .flags = flags};
    spw_plan *plan = NULL;
    if ((rc = spw_plan_create(m, &o, &plan)))
        fail_msg("%s on %s: %s: %s", path, backend, spw_err_name(rc), spw_error_detail());
    io x;
    io_make(plan, &x);
    long before = events();
    for (int r = 0; r < 5; r++)
        if ((rc = spw_plan_run(plan, x.in, x.n_in, x.out, x.n_out)))
            fail_msg("%s: run: %s", path, spw_error_detail());
    if (events() != before)
        fail_msg("%s on %s (threads %d, flags %u): %ld allocator calls during 5 runs", path,
                 backend, threads, flags, events() - before);
    io_free(&x);
    spw_plan_free(plan);
    spw_model_free(m);
}

/* ------------------------------------------------------------- tests */

static void test_registered(void **state)
{
    (void)state;
    if (!have_fast())
        spw_skip("no cpu-fast backend (built without XNNPACK)");
    /* Ahead of the reference in preference order. */
    int fast = -1, ref = -1;
    for (int b = 0; b < spw_backend_count(); b++) {
        if (!strcmp(spw_backend_name(b), "cpu-fast"))
            fast = b;
        if (!strcmp(spw_backend_name(b), "cpu-ref"))
            ref = b;
    }
    assert_true(fast >= 0 && ref > fast);
}

/* The sample encoder on every thread count, and every op vector, fused and
 * not: zero allocator calls across runs. */
static void test_no_alloc_on_run(void **state)
{
    (void)state;
    if (!have_fast())
        spw_skip("no cpu-fast backend (built without XNNPACK)");
    check_no_alloc(ENCODER, "cpu-fast", 1, 0);
    check_no_alloc(ENCODER, "cpu-fast", 2, 0);
    check_no_alloc(ENCODER, "cpu-fast", 0, SPW_PLAN_PROFILE);
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
        check_no_alloc(path, "cpu-fast", 2, 0);
        check_no_alloc(path, "cpu-fast", 1, SPW_PLAN_NO_FUSION);
        n++;
    }
    closedir(d);
    assert_true(n >= 25);
}

/* XNNPACK's operators and packed weights come from the library allocator
 * (more calls than the reference's plan) and go back to it (nothing live
 * after the plan is freed). */
static void test_xnnpack_uses_library_allocator(void **state)
{
    (void)state;
    if (!have_fast())
        spw_skip("no cpu-fast backend (built without XNNPACK)");
    long live_before = counts.live;
    spw_model *m = NULL;
    assert_int_equal(spw_model_load(ENCODER, &m), 0);
    long calls[2];
    const char *names[2] = {"cpu-ref", "cpu-fast"};
    /* The model's first plan also builds its shared graph: not counted. */
    spw_plan_options warm = {.backend = "cpu-ref"};
    spw_plan *first = NULL;
    assert_int_equal(spw_plan_create(m, &warm, &first), 0);
    spw_plan_free(first);
    for (int i = 0; i < 2; i++) {
        spw_plan_options o = {.backend = names[i]};
        spw_plan *plan = NULL;
        long m0 = counts.mallocs + counts.reallocs;
        assert_int_equal(spw_plan_create(m, &o, &plan), 0);
        calls[i] = counts.mallocs + counts.reallocs - m0;
        spw_plan_free(plan);
    }
    /* Nine convolutions: each at least an operator and its packed weights. */
    print_message("  plan allocations: cpu-ref %ld, cpu-fast %ld\n", calls[0], calls[1]);
    assert_true(calls[1] >= calls[0] + 18);
    /* What the plans left is the model's (its shared weights). */
    spw_model_free(m);
    assert_int_equal(counts.live, live_before);
}

/* One and two threads compute the same thing (XNNPACK splits the output,
 * not the sums), and the thread count shows in the plan. */
static void test_threads(void **state)
{
    (void)state;
    if (!have_fast())
        spw_skip("no cpu-fast backend (built without XNNPACK)");
    spw_model *m = NULL;
    assert_int_equal(spw_model_load(ENCODER, &m), 0);
    float *res[2] = {NULL, NULL};
    int64_t n = 0;
    for (int t = 1; t <= 2; t++) {
        spw_plan_options o = {.backend = "cpu-fast", .threads = t};
        spw_plan *plan = NULL;
        assert_int_equal(spw_plan_create(m, &o, &plan), 0);
        assert_int_equal(plan->threads, t);
        io x;
        io_make(plan, &x);
        assert_int_equal(spw_plan_run(plan, x.in, x.n_in, x.out, x.n_out), 0);
        n = spw_tensor_numel(&x.out[0]);
        res[t - 1] = malloc(sizeof(float) * (size_t)n);
        assert_non_null(res[t - 1]);
        memcpy(res[t - 1], x.out[0].data, sizeof(float) * (size_t)n);
        io_free(&x);
        spw_plan_free(plan);
    }
    for (int64_t i = 0; i < n; i++)
        if (!(fabsf(res[0][i] - res[1][i]) <= 1e-5f * fmaxf(1.0f, fabsf(res[0][i]))))
            fail_msg("element %lld: %g with 1 thread, %g with 2", (long long)i, res[0][i],
                     res[1][i]);
    free(res[0]);
    free(res[1]);
    spw_model_free(m);
}

static double process_cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Between runs the pool's workers sleep in the kernel instead of spinning:
 * a plan idle after its run costs the process (nearly) no CPU time, so it
 * does not take a core from the next plan or another process. Measured as
 * the share of an idle wall-clock window the process spent on the CPU. */
static void test_workers_sleep_between_runs(void **state)
{
    (void)state;
    if (!have_fast())
        spw_skip("no cpu-fast backend (built without XNNPACK)");
    spw_model *m = NULL;
    assert_int_equal(spw_model_load(ENCODER, &m), 0);
    spw_plan_options o = {.backend = "cpu-fast", .threads = 2};
    spw_plan *plan = NULL;
    assert_int_equal(spw_plan_create(m, &o, &plan), 0);
    io x;
    io_make(plan, &x);
    double worst = 0;
    for (int r = 0; r < 3; r++) {
        assert_int_equal(spw_plan_run(plan, x.in, x.n_in, x.out, x.n_out), 0);
        double c0 = process_cpu_ms();
        struct timespec w0, w1, idle = {.tv_nsec = 10 * 1000 * 1000};
        clock_gettime(CLOCK_MONOTONIC, &w0);
        nanosleep(&idle, NULL);
        clock_gettime(CLOCK_MONOTONIC, &w1);
        double wall =
            (double)(w1.tv_sec - w0.tv_sec) * 1e3 + (double)(w1.tv_nsec - w0.tv_nsec) / 1e6;
        double share = (process_cpu_ms() - c0) / wall;
        print_message("  idle %.1f ms after run %d: process on the CPU %.0f%% of it\n", wall, r,
                      100 * share);
        worst = fmax(worst, share);
    }
    /* Workers left spinning hold a core for about 4 ms after each run here
     * (a million pause instructions), 40% of the window. */
    assert_true(worst < 0.15);
    io_free(&x);
    spw_plan_free(plan);
    spw_model_free(m);
}

/* Automatic choice: cpu-fast, never the reference and never a manual-only
 * backend (a Vulkan implementation on the CPU); a name forces one. */
static void test_auto_picks_fast(void **state)
{
    (void)state;
    if (!have_fast())
        spw_skip("no cpu-fast backend (built without XNNPACK)");
    spw_model *m = NULL;
    assert_int_equal(spw_model_load(ENCODER, &m), 0);
    spw_plan *plan = NULL;
    assert_int_equal(spw_plan_create(m, NULL, &plan), 0);
    assert_string_equal(spw_plan_backend(plan), "cpu-fast");
    spw_plan_free(plan);
    spw_plan_options o = {.backend = "cpu-ref"};
    assert_int_equal(spw_plan_create(m, &o, &plan), 0);
    assert_string_equal(spw_plan_backend(plan), "cpu-ref");
    spw_plan_free(plan);
    o.backend = "cpu";
    assert_int_equal(spw_plan_create(m, &o, &plan), 0);
    assert_string_equal(spw_plan_backend(plan), "cpu-fast");
    spw_plan_free(plan);
    spw_model_free(m);
}

/* Plan creation on cpu-fast with the k-th allocation failing, for every k
 * until it succeeds: each attempt fails cleanly with SPW_ENOMEM (XNNPACK's
 * own allocation failures included) and leaves nothing allocated. */
static void test_plan_out_of_memory(void **state)
{
    (void)state;
    if (!have_fast())
        spw_skip("no cpu-fast backend (built without XNNPACK)");
    /* The model keeps what its first plans build (shared weights, packed
     * once), so blocks may stay between attempts but never grow past what a
     * successful plan leaves; all goes back with the model. */
    const long live = counts.live;
    spw_model *m = NULL;
    assert_int_equal(spw_model_load(ENCODER, &m), 0);
    int rc = SPW_ENOMEM;
    long k;
    for (k = 0; rc && k < 100000; k++) {
        spw_plan_options o = {.backend = "cpu-fast", .threads = 2};
        spw_plan *plan = NULL;
        counts.budget = k;
        rc = spw_plan_create(m, &o, &plan);
        counts.budget = -1;
        if (rc && rc != SPW_ENOMEM)
            fail_msg("budget %ld: %s (%s)", k, spw_err_name(rc), spw_error_detail());
        if (!rc) {
            io x;
            io_make(plan, &x);
            assert_int_equal(spw_plan_run(plan, x.in, x.n_in, x.out, x.n_out), 0);
            io_free(&x);
            spw_plan_free(plan);
        }
    }
    print_message("  plan creation succeeded from budget %ld on\n", k - 1);
    assert_int_equal(rc, 0);
    spw_model_free(m);
    if (counts.live != live)
        fail_msg("%ld blocks left allocated", counts.live - live);
}

/* ---------------------------------------- Winograd edges against cpu-ref */

static int act4(spw_graph *g, const char *name, const int64_t *dims)
{
    int v = spw__graph_add_value(g, name);
    assert_true(v >= 0);
    g->values[v].dtype = SPW_F32;
    g->values[v].ndim = 4;
    memcpy(g->values[v].dims, dims, 4 * sizeof(int64_t));
    return v;
}

static int weights(spw_graph *g, const char *name, int ndim, const int64_t *dims, uint32_t seed)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= dims[i];
    float *data = spw__malloc(sizeof(float) * (size_t)n);
    assert_non_null(data);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        data[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
    }
    int v = spw__graph_add_const(g, name, SPW_F32, ndim, dims, data);
    assert_true(v >= 0);
    return v;
}

/* y = clip(relu(conv3x3(x) + b) + conv1x1(x), 0, 1.5) with odd H and W and
 * channel counts that are not multiples of a vector: the 3x3 convolution goes
 * through Winograd F(2x2, 3x3) with partial edge tiles and the residual add
 * and both clamps fused into its output transform. */
static spw_model *winograd_model(int64_t C, int64_t M, int64_t H, int64_t W)
{
    spw_graph *g;
    assert_int_equal(spw__graph_create(&g), 0);
    int64_t xd[4] = {2, C, H, W}, yd[4] = {2, M, H, W};
    int64_t wd[4] = {M, C, 3, 3}, bd[1] = {M}, w1d[4] = {M, C, 1, 1};
    int x = act4(g, "x", xd), a = act4(g, "a", yd), r = act4(g, "r", yd);
    int s = act4(g, "s", yd), t = act4(g, "t", yd), y = act4(g, "y", yd);
    int w = weights(g, "w", 4, wd, 1), b = weights(g, "b", 1, bd, 2);
    int w1 = weights(g, "w1", 4, w1d, 3);
    g->values[x].flags |= SPW_VALUE_INPUT;
    assert_int_equal(spw__graph_add_input(g, x), 0);
    assert_int_equal(spw__graph_add_output(g, y), 0);
    int ins[3] = {x, w, b};
    int k = spw__graph_add_node(g, SPW_OP_CONV, "conv3x3", ins, 3, &a, 1);
    g->nodes[k].p.conv = (spw_conv_params){
        .kernel = {3, 3}, .stride = {1, 1}, .dilation = {1, 1}, .pads = {1, 1, 1, 1}, .group = 1};
    assert_true(spw__graph_add_node(g, SPW_OP_RELU, "relu", &a, 1, &r, 1) >= 0);
    int ins1[2] = {x, w1};
    k = spw__graph_add_node(g, SPW_OP_CONV, "conv1x1", ins1, 2, &s, 1);
    g->nodes[k].p.conv =
        (spw_conv_params){.kernel = {1, 1}, .stride = {1, 1}, .dilation = {1, 1}, .group = 1};
    int add_in[2] = {r, s};
    assert_true(spw__graph_add_node(g, SPW_OP_ADD, "add", add_in, 2, &t, 1) >= 0);
    k = spw__graph_add_node(g, SPW_OP_CLIP, "clip", &t, 1, &y, 1);
    g->nodes[k].p.clip.min = 0.0f;
    g->nodes[k].p.clip.max = 1.5f;
    assert_int_equal(spw__graph_link(g), 0);
    assert_int_equal(spw__graph_infer_shapes(g, -1), 0);
    spw_model *m = spw__calloc(1, sizeof(*m));
    assert_non_null(m);
    m->graph = g;
    return m;
}

static void run_one(spw_model *m, const char *backend, int threads, unsigned flags, float *out)
{
    spw_plan_options o = {.backend = backend, .threads = threads, .flags = flags};
    spw_plan *plan = NULL;
    int rc = spw_plan_create(m, &o, &plan);
    if (rc)
        fail_msg("%s: %s", backend, spw_error_detail());
    io x;
    io_make(plan, &x);
    for (int64_t i = 0, n = spw_tensor_numel(&x.in[0]); i < n; i++)
        ((float *)x.in[0].data)[i] = (float)((i * 37) % 23) / 11.0f - 1.0f;
    assert_int_equal(spw_plan_run(plan, x.in, 1, x.out, 1), 0);
    memcpy(out, x.out[0].data, sizeof(float) * (size_t)spw_tensor_numel(&x.out[0]));
    io_free(&x);
    spw_plan_free(plan);
}

static void test_winograd_edges(void **state)
{
    (void)state;
    if (!have_fast())
        spw_skip("no cpu-fast backend (built without XNNPACK)");
    static const int64_t shapes[][4] = {{17, 19, 13, 11}, {16, 48, 4, 5}, {33, 16, 9, 16}};
    for (size_t si = 0; si < sizeof(shapes) / sizeof(shapes[0]); si++) {
        const int64_t *sh = shapes[si];
        spw_model *m = winograd_model(sh[0], sh[1], sh[2], sh[3]);
        size_t n = (size_t)(2 * sh[1] * sh[2] * sh[3]);
        float *want = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n);
        assert_true(want && got);
        run_one(m, "cpu-ref", 1, 0, want);
        for (int threads = 1; threads <= 3; threads++)
            for (unsigned flags = 0; flags <= SPW_PLAN_NO_FUSION; flags += SPW_PLAN_NO_FUSION) {
                run_one(m, "cpu-fast", threads, flags, got);
                /* The bound cpu-ref meets against PyTorch; Winograd's
                 * transforms stay within it (worst seen 2.1e-6). */
                for (size_t i = 0; i < n; i++)
                    if (!(fabsf(got[i] - want[i]) <= 1e-5f * fmaxf(1.0f, fabsf(want[i]))))
                        fail_msg("C %lld M %lld H %lld W %lld, %d threads, flags %u: element "
                                 "%zu is %g, cpu-ref %g",
                                 (long long)sh[0], (long long)sh[1], (long long)sh[2],
                                 (long long)sh[3], threads, flags, i, got[i], want[i]);
            }
        free(want);
        free(got);
        spw_model_free(m);
    }
}

int main(void)
{
    /* Before any other call, so every allocation of the library is seen. */
    static const spw_allocator counting = {count_malloc, count_realloc, count_free, NULL};
    spw_set_allocator(&counting);
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registered),
        cmocka_unit_test(test_no_alloc_on_run),
        cmocka_unit_test(test_xnnpack_uses_library_allocator),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_workers_sleep_between_runs),
        cmocka_unit_test(test_auto_picks_fast),
        cmocka_unit_test(test_winograd_edges),
        cmocka_unit_test(test_plan_out_of_memory),
    };
    int failed = cmocka_run_group_tests_name("cpu_fast", tests, NULL, NULL);
    spw_set_allocator(NULL);
    return spw_test_exit(failed);
}

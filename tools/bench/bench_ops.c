/* splitwire bench ops: per-layer and whole-model times on every backend.
 *
 * Whole-model times come from a plain plan; per-layer times from a second plan
 * built with SPW_PLAN_PROFILE (on Vulkan that serialises the layers and reads
 * GPU timestamps), so profiling does not distort the whole-model numbers. */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "tools/cli/cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: splitwire bench ops [--model FILE.onnx] [--backend NAME] [--batch N]\n"
               "                           [--iters N] [--json]\n"
               "\n"
               "Times the model (whole run and each layer: median, p99, GFLOP/s) at batch 1\n"
               "and 8 on every registered backend, or on the one named.\n"
               "  --model FILE  default models/sample/encoder.onnx\n"
               "  --batch N     only this batch size\n"
               "  --iters N     timed runs per measurement (default 10), after one warm-up\n"
               "  --json        machine-readable output\n");
}

/* Median and p99 (nearest rank) of n samples in ns, in ms; sorts v. */
static void stats(double *v, int n, double *median_ms, double *p99_ms)
{
    spw_cli_stats st;
    spw_cli_stats_of(v, n, &st);
    *median_ms = st.median / 1e6;
    *p99_ms = st.p99 / 1e6;
}

typedef struct io {
    spw_tensor in[8], out[8];
    int n_in, n_out;
} io;

static int make_io(spw_plan *plan, const spw_model *m, io *b)
{
    memset(b, 0, sizeof(*b));
    b->n_in = spw_model_num_inputs(m);
    b->n_out = spw_model_num_outputs(m);
    if (b->n_in > 8 || b->n_out > 8)
        return SPW_EUNSUPPORTED;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < (pass ? b->n_out : b->n_in); i++) {
            spw_tensor *t = pass ? &b->out[i] : &b->in[i];
            int rc = pass ? spw_plan_output(plan, i, t) : spw_plan_input(plan, i, t);
            if (rc)
                return rc;
            size_t bytes = spw_tensor_nbytes(t);
            t->data = calloc(1, bytes ? bytes : 1);
            if (!t->data)
                return SPW_ENOMEM;
            if (!pass && t->dtype == SPW_F32)
                for (size_t k = 0; k < bytes / 4; k++)
                    ((float *)t->data)[k] = (float)((k * 2654435761u) % 1000) / 500.0f - 1.0f;
        }
    return 0;
}

static void free_io(io *b)
{
    for (int i = 0; i < b->n_in; i++)
        free(b->in[i].data);
    for (int i = 0; i < b->n_out; i++)
        free(b->out[i].data);
}

/* CPU time of the whole process (every thread: a CPU Vulkan driver's workers
 * too), in ns. On a machine shared with other jobs it moves less than wall
 * time, so before/after comparisons of CPU implementations use it. */
static uint64_t process_cpu_ns(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru))
        return 0;
    return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000u +
           ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
}

static int64_t plan_macs(const spw_plan *plan)
{
    int64_t macs = 0;
    for (int s = 0; s < spw_plan_num_steps(plan); s++) {
        spw_step_info st;
        if (!spw_plan_step(plan, s, &st))
            macs += st.macs;
    }
    return macs;
}

static double gflops(int64_t macs, double ms)
{
    return ms > 0 ? 2.0 * (double)macs / (ms * 1e6) : 0.0;
}

/* One backend at one batch: prints a block (text) or one JSON object. */
static int bench_one(const spw_model *m, const char *backend, int batch, int iters, bool json,
                     bool *first)
{
    spw_plan_options o = {.backend = backend, .batch = batch};
    spw_plan *plan = NULL, *prof = NULL;
    io b = {0}, pb = {0};
    double *t = NULL, *lt = NULL;
    int rc = spw_plan_create(m, &o, &plan);
    if (rc) {
        if (!json)
            printf("%-10s batch %-3d skipped: %s: %s\n", backend, batch, spw_strerror(rc),
                   spw_error_detail());
        return rc == SPW_EUNSUPPORTED || rc == SPW_ENODEV ? 0 : rc;
    }
    o.flags = SPW_PLAN_PROFILE;
    if ((rc = spw_plan_create(m, &o, &prof)) || (rc = make_io(plan, m, &b)) ||
        (rc = make_io(prof, m, &pb)))
        goto out;
    t = calloc((size_t)iters, sizeof(*t));
    const int n_steps = spw_plan_num_steps(prof);
    lt = calloc((size_t)iters * (size_t)(n_steps ? n_steps : 1), sizeof(*lt));
    if (!t || !lt) {
        rc = SPW_ENOMEM;
        goto out;
    }
    /* Warm-up: first-touch of pages, driver-side lazy work. */
    if ((rc = spw_plan_run(plan, b.in, b.n_in, b.out, b.n_out)))
        goto out;
    const uint64_t cpu0 = process_cpu_ns();
    for (int i = 0; i < iters; i++) {
        uint64_t t0 = spw_cli_now_ns();
        if ((rc = spw_plan_run(plan, b.in, b.n_in, b.out, b.n_out)))
            goto out;
        t[i] = (double)(spw_cli_now_ns() - t0);
    }
    const double cpu_ms = (double)(process_cpu_ns() - cpu0) / 1e6 / iters;
    for (int i = 0; i < iters; i++) {
        spw_plan_profile_reset(prof);
        if ((rc = spw_plan_run(prof, pb.in, pb.n_in, pb.out, pb.n_out)))
            goto out;
        for (int s = 0; s < n_steps; s++) {
            spw_step_info st;
            spw_plan_step(prof, s, &st);
            lt[(size_t)s * (size_t)iters + (size_t)i] = (double)st.ns;
        }
    }
    double med, p99;
    stats(t, iters, &med, &p99);
    int64_t macs = plan_macs(plan);
    if (json) {
        printf("%s{\"backend\":", *first ? "" : ",");
        spw_cli_json_str(stdout, backend);
        printf(",\"batch\":%d,\"iters\":%d,\"median_ms\":%.4f,\"p99_ms\":%.4f,\"gflops\":%.3f,"
               "\"gmacs\":%.4f,\"cpu_ms\":%.4f,\"layers\":[",
               batch, iters, med, p99, gflops(macs, med), (double)macs / 1e9, cpu_ms);
    } else {
        printf("%-10s batch %-3d whole model: median %.3f ms, p99 %.3f ms, %.2f GFLOP/s "
               "(%.3f GMAC), process CPU %.3f ms/run\n",
               backend, batch, med, p99, gflops(macs, med), (double)macs / 1e9, cpu_ms);
        printf("  %-28s %-18s %10s %10s %9s\n", "layer", "op", "median ms", "p99 ms", "GFLOP/s");
    }
    *first = false;
    for (int s = 0; s < n_steps; s++) {
        spw_step_info st;
        spw_plan_step(prof, s, &st);
        double lm, lp;
        stats(&lt[(size_t)s * (size_t)iters], iters, &lm, &lp);
        if (json) {
            printf("%s{\"name\":", s ? "," : "");
            spw_cli_json_str(stdout, st.name);
            printf(",\"op\":\"%s\",\"median_ms\":%.4f,\"p99_ms\":%.4f,\"gflops\":%.3f}", st.op, lm,
                   lp, gflops(st.macs, lm));
        } else {
            printf("  %-28.28s %-18s %10.3f %10.3f %9.2f\n", st.name, st.op, lm, lp,
                   gflops(st.macs, lm));
        }
    }
    if (json)
        printf("]}");
out:
    free(t);
    free(lt);
    free_io(&b);
    free_io(&pb);
    spw_plan_free(prof);
    spw_plan_free(plan);
    return rc;
}

int spw_cli_bench_ops(int argc, char **argv)
{
    const char *path = "models/sample/encoder.onnx", *backend = NULL;
    long batch = 0, iters = 10;
    bool json = false;
    const spw_cli_opt opts[] = {
        {.name = "model", .kind = SPW_CLI_STR, .dst = &path, .short_name = 'm'},
        {.name = "backend", .kind = SPW_CLI_STR, .dst = &backend, .short_name = 'B'},
        {.name = "batch",
         .kind = SPW_CLI_LONG,
         .dst = &batch,
         .min = 1,
         .max = 4096,
         .short_name = 'b'},
        {.name = "iters",
         .kind = SPW_CLI_LONG,
         .dst = &iters,
         .min = 1,
         .max = 100000,
         .short_name = 'i'},
        {.name = "json", .kind = SPW_CLI_FLAG, .dst = &json, .short_name = 'j'},
        SPW_CLI_OPT_END,
    };
    int prc = spw_cli_parse("splitwire bench ops", argc, argv, opts, NULL, usage, NULL);
    if (prc >= 0)
        return prc;
    spw_model *m;
    int rc = spw_model_load(path, &m);
    if (rc)
        return spw_cli_fail(rc, "cannot load %s", path);
    const int batches[2] = {batch ? (int)batch : 1, 8};
    const int n_batches = batch ? 1 : 2;
    bool first = true;
    if (json) {
        printf("{\"model\":");
        spw_cli_json_str(stdout, path);
        printf(",\"results\":[");
    }
    for (int bi = 0; bi < n_batches && !rc; bi++)
        for (int k = 0; k < spw_backend_count() && !rc; k++) {
            const char *name = spw_backend_name(k);
            if (backend && strcmp(backend, name) && spw_backend_find(backend) != k)
                continue;
            rc = bench_one(m, name, batches[bi], (int)iters, json, &first);
        }
    if (json)
        printf("]}\n");
    spw_model_free(m);
    if (rc)
        return spw_cli_fail(rc, "bench ops");
    if (backend && spw_backend_find(backend) < 0) {
        fprintf(stderr, "splitwire bench ops: backend '%s' is not available\n", backend);
        return 1;
    }
    return 0;
}

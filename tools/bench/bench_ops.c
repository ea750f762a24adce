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
               "                           [--iters N] [--json] [--tune]\n"
               "\n"
               "Times the model (whole run and each layer: median, p99, GFLOP/s) at batch 1\n"
               "and 8 on every registered backend, or on the one named. On a backend that\n"
               "can measure its device's peak (Vulkan), also the peak (a calibration kernel\n"
               "of fused multiply-adds) and each time's share of the fp32 peak.\n"
               "  --model FILE  default models/sample/encoder.onnx\n"
               "  --batch N     only this batch size\n"
               "  --iters N     timed runs per measurement (default 10), after one warm-up\n"
               "  --json        machine-readable output\n"
               "  --tune        first time each conv layer under candidate kernel settings on\n"
               "                the backend (default vulkan) and store the fastest per conv\n"
               "                shape next to its pipeline cache; later plans use them\n");
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

/* The backend's device peak, measured on first use; NULL where the backend
 * has none (the CPU ones). */
static const spw_device_peak *peak_of(const char *backend)
{
    static struct {
        char name[32];
        bool ok;
        spw_device_peak p;
    } known[8];
    static int n_known;
    for (int i = 0; i < n_known; i++)
        if (!strcmp(known[i].name, backend))
            return known[i].ok ? &known[i].p : NULL;
    if (n_known == (int)(sizeof(known) / sizeof(known[0])))
        return NULL;
    int i = n_known++;
    snprintf(known[i].name, sizeof(known[i].name), "%s", backend);
    known[i].ok = spw_backend_peak(backend, &known[i].p) == 0 && known[i].p.fp32_gflops > 0;
    spw_error_clear();
    return known[i].ok ? &known[i].p : NULL;
}

/* Share of the fp32 peak, in percent (0 without a peak). */
static double share(const spw_device_peak *pk, double gf)
{
    return pk ? 100.0 * gf / pk->fp32_gflops : 0.0;
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
    const spw_device_peak *pk = peak_of(backend);
    if (json) {
        printf("%s{\"backend\":", *first ? "" : ",");
        spw_cli_json_str(stdout, backend);
        printf(",\"batch\":%d,\"iters\":%d,\"median_ms\":%.4f,\"p99_ms\":%.4f,\"gflops\":%.3f,"
               "\"gmacs\":%.4f,\"cpu_ms\":%.4f",
               batch, iters, med, p99, gflops(macs, med), (double)macs / 1e9, cpu_ms);
        if (pk) {
            printf(",\"peak\":{\"device\":");
            spw_cli_json_str(stdout, pk->device);
            printf(",\"fp32_gflops\":%.3f,\"fp16_gflops\":%.3f},\"peak_pct\":%.3f", pk->fp32_gflops,
                   pk->fp16_gflops, share(pk, gflops(macs, med)));
        }
        printf(",\"layers\":[");
    } else {
        printf("%-10s batch %-3d whole model: median %.3f ms, p99 %.3f ms, %.2f GFLOP/s "
               "(%.3f GMAC), process CPU %.3f ms/run\n",
               backend, batch, med, p99, gflops(macs, med), (double)macs / 1e9, cpu_ms);
        if (pk)
            printf("  device %s: peak %.2f GFLOP/s fp32, %.2f fp16; whole model at %.1f%% of "
                   "the fp32 peak\n",
                   pk->device, pk->fp32_gflops, pk->fp16_gflops, share(pk, gflops(macs, med)));
        printf("  %-28s %-18s %10s %10s %9s%s\n", "layer", "op", "median ms", "p99 ms", "GFLOP/s",
               pk ? "   % peak" : "");
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
            printf(",\"op\":\"%s\",\"median_ms\":%.4f,\"p99_ms\":%.4f,\"gflops\":%.3f", st.op, lm,
                   lp, gflops(st.macs, lm));
            if (pk)
                printf(",\"peak_pct\":%.3f", share(pk, gflops(st.macs, lm)));
            printf("}");
        } else {
            printf("  %-28.28s %-18s %10.3f %10.3f %9.2f", st.name, st.op, lm, lp,
                   gflops(st.macs, lm));
            if (pk)
                printf(" %8.1f", share(pk, gflops(st.macs, lm)));
            printf("\n");
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
    bool json = false, tune = false;
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
        {.name = "tune", .kind = SPW_CLI_FLAG, .dst = &tune, .short_name = 't'},
        SPW_CLI_OPT_END,
    };
    int prc = spw_cli_parse("splitwire bench ops", argc, argv, opts, NULL, usage, NULL);
    if (prc >= 0)
        return prc;
    spw_model *m;
    int rc = spw_model_load(path, &m);
    if (rc)
        return spw_cli_fail(rc, "cannot load %s", path);
    if (tune) {
        spw_tune_report tr;
        const char *tb = backend ? backend : "vulkan";
        if ((rc = spw_backend_tune(tb, m, batch ? (int)batch : 1, (int)iters, &tr))) {
            spw_model_free(m);
            return spw_cli_fail(rc, "bench ops --tune on %s", tb);
        }
        /* On stderr, so --json output stays one document. */
        fprintf(stderr,
                "tuned %d conv shapes, %d candidates each: conv layers %.3f ms built-in, "
                "%.3f ms tuned (%d shapes changed); wrote %s\n",
                tr.shapes, tr.candidates, tr.default_ms, tr.tuned_ms, tr.changed, tr.path);
    }
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

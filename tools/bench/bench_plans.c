/* splitwire bench plans: what a server worker's start costs per batch size.
 *
 * A server builds, for each worker, plans of the bundle's decoder and tail at
 * batch 1, 2, 4 ... its plan batch (max-batch on Vulkan or with serve
 * --plan-batch; the CPU backends plan single images). The first plan of a model pays for its shared
 * weights (constant passes, packing, calibration); every later one, at any
 * batch and in any worker, reuses them. This times each (decoder + tail) pair
 * in that order, for `workers` workers, and reports the first pair against
 * the second. */
#include <stdlib.h>
#include <string.h>

#include "tools/cli/cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: splitwire bench plans [--bundle DIR] [--models DIR] [--backend NAME]\n"
               "                             [--threads N] [--max-batch N] [--workers N] [--json]\n"
               "\n"
               "Times plan creation for the bundle's server half as a server starts: a\n"
               "decoder and a tail plan at batch 1, 2, 4 ... max-batch, per worker.\n"
               "  --bundle DIR     default models/default\n"
               "  --models DIR     where the backbone is (default $SPW_MODEL_DIR or build/models)\n"
               "  --backend NAME   default auto\n"
               "  --threads N      backend threads (default: the backend's)\n"
               "  --max-batch N    default 8\n"
               "  --workers N      default 1\n"
               "  --json           machine-readable output\n");
}

#define MAX_PAIRS 512 /* 64 workers x 7 batch sizes fit */

int spw_cli_bench_plans(int argc, char **argv)
{
    const char *dir = "models/default", *models = NULL, *backend = NULL;
    long threads = 0, max_batch = 8, workers = 1;
    bool json = false;
    const spw_cli_opt opts[] = {
        {.name = "bundle", .kind = SPW_CLI_STR, .dst = &dir, .short_name = 'b'},
        {.name = "models", .kind = SPW_CLI_STR, .dst = &models, .short_name = 'm'},
        {.name = "backend", .kind = SPW_CLI_STR, .dst = &backend, .short_name = 'B'},
        {.name = "threads", .kind = SPW_CLI_LONG, .dst = &threads, .max = 64, .short_name = 't'},
        {.name = "max-batch",
         .kind = SPW_CLI_LONG,
         .dst = &max_batch,
         .min = 1,
         .max = 64,
         .short_name = 'x'},
        {.name = "workers",
         .kind = SPW_CLI_LONG,
         .dst = &workers,
         .min = 1,
         .max = 64,
         .short_name = 'w'},
        {.name = "json", .kind = SPW_CLI_FLAG, .dst = &json, .short_name = 'j'},
        SPW_CLI_OPT_END,
    };
    int prc = spw_cli_parse("splitwire bench plans", argc, argv, opts, NULL, usage, NULL);
    if (prc >= 0)
        return prc;
    spw_bundle *bundle = NULL;
    spw_model *dec = NULL, *tail = NULL;
    int rc = spw_bundle_open(dir, &bundle);
    if (rc)
        return spw_cli_fail(rc, "cannot open bundle %s", dir);
    spw_plan *plans[2 * MAX_PAIRS] = {0};
    double ms[MAX_PAIRS] = {0};
    int batch[MAX_PAIRS], n = 0, exit_code = 0;
    const char *used = NULL;
    spw_backend_count(); /* devices are probed once per process: not a plan's cost */
    for (long w = 0; w < workers; w++) {
        /* As a worker does: its own handles on the bundle's models. */
        if ((rc = spw_bundle_load_decoder(bundle, &dec)) ||
            (rc = spw_bundle_load_tail(bundle, models, &tail))) {
            exit_code = spw_cli_fail(rc, "cannot load the server half of %s", dir);
            goto out;
        }
        for (int b = 1;; b *= 2) {
            int size = b < max_batch ? b : (int)max_batch;
            spw_plan_options o = {.backend = backend, .batch = size, .threads = (int)threads};
            uint64_t t0 = spw_cli_now_ns();
            if ((rc = spw_plan_create(dec, &o, &plans[2 * n])) ||
                (rc = spw_plan_create(tail, &o, &plans[2 * n + 1]))) {
                exit_code = spw_cli_fail(rc, "plan at batch %d", size);
                goto out;
            }
            ms[n] = spw_cli_ms_since(t0);
            batch[n++] = size;
            used = spw_plan_backend(plans[0]);
            if (size == max_batch || n == MAX_PAIRS)
                break;
        }
        spw_model_free(dec);
        spw_model_free(tail);
        dec = tail = NULL;
    }
    double first = ms[0], second = n > 1 ? ms[1] : ms[0], rest = 0;
    for (int i = 1; i < n; i++)
        rest += ms[i];
    rest = n > 1 ? rest / (n - 1) : first;
    if (json) {
        printf("{\"bundle\":");
        spw_cli_json_str(stdout, dir);
        printf(",\"backend\":");
        spw_cli_json_str(stdout, used);
        printf(",\"workers\":%ld,\"max_batch\":%ld,\"plans\":[", workers, max_batch);
        for (int i = 0; i < n; i++) {
            printf("%s{\"worker\":%ld,\"batch\":%d,\"ms\":", i ? "," : "", i / (n / workers),
                   batch[i]);
            spw_cli_json_num(stdout, ms[i], 3);
            printf("}");
        }
        printf("],\"first_ms\":");
        spw_cli_json_num(stdout, first, 3);
        printf(",\"second_ms\":");
        spw_cli_json_num(stdout, second, 3);
        printf(",\"first_over_second\":");
        spw_cli_json_num(stdout, first / second, 2);
        printf(",\"first_over_rest_mean\":");
        spw_cli_json_num(stdout, first / rest, 2);
        printf("}\n");
    } else {
        printf("plans of %s (decoder + tail) on %s, %ld worker%s:\n", dir, used, workers,
               workers == 1 ? "" : "s");
        for (int i = 0; i < n; i++)
            printf("  worker %ld batch %-3d %9.3f ms\n", i / (n / workers), batch[i], ms[i]);
        printf("first %.3f ms, second %.3f ms: %.1fx; first / mean of the rest: %.1fx\n", first,
               second, first / second, first / rest);
    }
out:
    for (int i = 0; i < 2 * n + 2 && i < 2 * MAX_PAIRS; i++)
        spw_plan_free(plans[i]);
    spw_model_free(dec);
    spw_model_free(tail);
    spw_bundle_close(bundle);
    return exit_code;
}

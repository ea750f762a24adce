/* splitwire model inspect|run */
#include <stdlib.h>
#include <string.h>

#include "tools/cli/cli.h"

static void inspect_usage(FILE *f)
{
    fprintf(f, "usage: splitwire model inspect FILE.onnx [--batch N] [--fused] [--json]\n"
               "\n"
               "Lists every layer: op, output shape, parameters and multiply-accumulates.\n"
               "  --batch N   bind the free batch dimension to N (default 1)\n"
               "  --fused     show the graph after BatchNorm folding and fusion\n"
               "  --json      machine-readable output\n");
}

static int cmd_inspect(int argc, char **argv)
{
    long batch = 1;
    bool fused = false, json = false;
    const spw_cli_opt opts[] = {
        {.name = "batch",
         .kind = SPW_CLI_LONG,
         .dst = &batch,
         .min = 1,
         .max = 1 << 20,
         .short_name = 'b'},
        {.name = "fused", .kind = SPW_CLI_FLAG, .dst = &fused, .short_name = 'f'},
        {.name = "json", .kind = SPW_CLI_FLAG, .dst = &json, .short_name = 'j'},
        SPW_CLI_OPT_END,
    };
    int operand;
    int prc =
        spw_cli_parse("splitwire model inspect", argc, argv, opts, NULL, inspect_usage, &operand);
    if (prc >= 0)
        return prc;
    if (operand != argc - 1) {
        inspect_usage(stderr);
        return 2;
    }
    const char *path = argv[operand];
    spw_model *model;
    int rc = spw_model_load(path, &model);
    if (rc)
        return spw_cli_fail(rc, "cannot load %s", path);
    spw_summary *sum = NULL;
    if ((rc = spw_model_summarize(model, (int)batch, fused ? SPW_SUMMARY_FUSED : 0, &sum))) {
        spw_cli_fail(rc, "cannot inspect %s", path);
        spw_model_free(model);
        return 1;
    }
    int64_t total_macs = 0, total_params = 0;
    int n_layers = spw_summary_num_layers(sum);
    char shape[128];
    const char *name;
    spw_tensor d;
    if (json) {
        printf("{\"model\": ");
        spw_cli_json_str(stdout, path);
        printf(", \"opset\": %lld, \"batch\": %ld, \"fused\": %s, \"layers\": [",
               (long long)spw_summary_opset(sum), batch, fused ? "true" : "false");
    } else {
        const char *producer = spw_summary_producer(sum);
        printf("%s: opset %lld, producer %s, batch %ld%s\n", path,
               (long long)spw_summary_opset(sum), producer ? producer : "?", batch,
               fused ? ", fused" : "");
        for (int i = 0; i < spw_summary_num_inputs(sum); i++) {
            spw_summary_input(sum, i, &d, &name);
            printf("  input  %-24s %-4s %s\n", name, spw_dtype_name(d.dtype),
                   spw_tensor_shape_str(&d, shape, sizeof(shape)));
        }
        printf("\n  %-4s %-40s %-20s %-18s %10s %14s\n", "#", "name", "op", "output", "params",
               "MACs");
    }
    for (int i = 0; i < n_layers; i++) {
        spw_layer_info l;
        spw_summary_layer(sum, i, &l);
        total_macs += l.macs;
        total_params += l.params;
        spw_tensor_shape_str(&l.output, shape, sizeof(shape));
        if (json) {
            printf("%s\n  {\"index\": %d, \"name\": ", i ? "," : "", i);
            spw_cli_json_str(stdout, l.name);
            printf(", \"op\": \"%s\", \"domain\": \"%s\", \"inputs\": [", l.op, l.domain);
            for (int k = 0; k < l.n_inputs; k++) {
                int is_const;
                printf("%s", k ? ", " : "");
                if (spw_summary_layer_input(sum, i, k, &d, &name, &is_const)) {
                    printf("null");
                    continue;
                }
                printf("{\"name\": ");
                spw_cli_json_str(stdout, name);
                printf(", \"shape\": \"%s\", \"const\": %s}",
                       spw_tensor_shape_str(&d, shape, sizeof(shape)), is_const ? "true" : "false");
            }
            printf("], \"output\": \"%s\", \"dtype\": \"%s\", \"fused\": ",
                   spw_tensor_shape_str(&l.output, shape, sizeof(shape)),
                   spw_dtype_name(l.output.dtype));
            spw_cli_json_str(stdout, l.fused);
            printf(", \"params\": %lld, \"macs\": %lld}", (long long)l.params, (long long)l.macs);
        } else {
            char opcol[64];
            snprintf(opcol, sizeof(opcol), "%s%s", l.op, l.fused[0] ? "*" : "");
            printf("  %-4d %-40.40s %-20s %-18s %10lld %14lld%s%s\n", i, l.name, opcol, shape,
                   (long long)l.params, (long long)l.macs, l.fused[0] ? "  " : "", l.fused);
        }
    }
    if (json) {
        printf("\n], \"total_params\": %lld, \"total_macs\": %lld, \"outputs\": [",
               (long long)total_params, (long long)total_macs);
        for (int i = 0; i < spw_summary_num_outputs(sum); i++) {
            spw_summary_output(sum, i, &d, &name);
            printf("%s{\"name\": ", i ? ", " : "");
            spw_cli_json_str(stdout, name);
            printf(", \"shape\": \"%s\", \"dtype\": \"%s\"}",
                   spw_tensor_shape_str(&d, shape, sizeof(shape)), spw_dtype_name(d.dtype));
        }
        printf("]}\n");
    } else {
        printf("\n");
        for (int i = 0; i < spw_summary_num_outputs(sum); i++) {
            spw_summary_output(sum, i, &d, &name);
            printf("  output %-24s %-4s %s\n", name, spw_dtype_name(d.dtype),
                   spw_tensor_shape_str(&d, shape, sizeof(shape)));
        }
        printf("  total: %d layers, %lld parameters, %.3f GMAC\n", n_layers,
               (long long)total_params, (double)total_macs / 1e9);
    }
    spw_summary_free(sum);
    spw_model_free(model);
    return 0;
}

static void run_usage(FILE *f)
{
    fprintf(f,
            "usage: splitwire model run FILE.onnx --input X.npy [--input ...] --output Y.npy\n"
            "                           [--output ...] [--backend NAME] [--repeat N] [--profile]\n"
            "                           [--no-fusion] [--from VALUE] [--threads N] [--json]\n"
            "\n"
            "Runs the model on .npy inputs (in graph input order) and writes .npy outputs.\n"
            "  --backend NAME  cpu-ref, cpu (best CPU backend) or auto (default)\n"
            "  --repeat N      run N times and report timing (default 1)\n"
            "  --profile       print per-step times\n"
            "  --no-fusion     run every node as its own step\n"
            "  --from VALUE    run only what follows the inner value VALUE (its input)\n"
            "  --threads N     backend threads (default: the backend's, every core)\n"
            "  --json          print timings as JSON\n");
}

#define MAX_IO 16

typedef struct run_args {
    const char **in, **out;
    int n_in, n_out;
    const char *backend, *from;
} run_args;

/* --input and --output: up to MAX_IO of each, in order. */
static int run_io(int id, const char *arg, void *ctx)
{
    run_args *ra = ctx;
    int *n = id == 'i' ? &ra->n_in : &ra->n_out;
    if (*n == MAX_IO) {
        fprintf(stderr, "splitwire model run: at most %d %s\n", MAX_IO,
                id == 'i' ? "inputs" : "outputs");
        return 2;
    }
    (id == 'i' ? ra->in : ra->out)[(*n)++] = arg;
    return -1;
}

static int cmd_run(int argc, char **argv)
{
    const char *in_paths[MAX_IO], *out_paths[MAX_IO];
    run_args ra = {.in = in_paths, .out = out_paths};
    long repeat = 1, threads = 0;
    bool profile = false, json = false, no_fusion = false;
    const spw_cli_opt opts[] = {
        {.name = "input",
         .kind = SPW_CLI_FN,
         .fn = run_io,
         .id = 'i',
         .takes_value = true,
         .short_name = 'i'},
        {.name = "output",
         .kind = SPW_CLI_FN,
         .fn = run_io,
         .id = 'o',
         .takes_value = true,
         .short_name = 'o'},
        {.name = "backend", .kind = SPW_CLI_STR, .dst = &ra.backend, .short_name = 'b'},
        {.name = "repeat",
         .kind = SPW_CLI_LONG,
         .dst = &repeat,
         .min = 1,
         .max = 1000000,
         .short_name = 'r'},
        {.name = "profile", .kind = SPW_CLI_FLAG, .dst = &profile, .short_name = 'p'},
        {.name = "no-fusion", .kind = SPW_CLI_FLAG, .dst = &no_fusion, .short_name = 'n'},
        {.name = "from", .kind = SPW_CLI_STR, .dst = &ra.from, .short_name = 'f'},
        {.name = "threads", .kind = SPW_CLI_LONG, .dst = &threads, .min = 0, .max = 256},
        {.name = "json", .kind = SPW_CLI_FLAG, .dst = &json, .short_name = 'j'},
        SPW_CLI_OPT_END,
    };
    int operand;
    int prc = spw_cli_parse("splitwire model run", argc, argv, opts, &ra, run_usage, &operand);
    if (prc >= 0)
        return prc;
    const char *backend = ra.backend, *from = ra.from;
    int n_in = ra.n_in, n_out = ra.n_out;
    unsigned flags = (profile ? SPW_PLAN_PROFILE : 0) | (no_fusion ? SPW_PLAN_NO_FUSION : 0);
    if (operand != argc - 1 || n_in == 0) {
        run_usage(stderr);
        return 2;
    }
    const char *path = argv[operand];
    int ret = 1, rc;
    spw_model *model = NULL;
    spw_plan *plan = NULL;
    spw_tensor ins[MAX_IO] = {0}, outs[MAX_IO] = {0};
    double *times = NULL;
    if ((rc = spw_model_load(path, &model))) {
        spw_cli_fail(rc, "cannot load %s", path);
        goto out;
    }
    if (from) {
        spw_model *tail;
        if ((rc = spw_model_cut(model, from, &tail))) {
            spw_cli_fail(rc, "cannot cut %s at '%s'", path, from);
            goto out;
        }
        spw_model_free(model);
        model = tail;
    }
    if (n_in != spw_model_num_inputs(model)) {
        fprintf(stderr, "splitwire: %s takes %d inputs, %d given\n", path,
                spw_model_num_inputs(model), n_in);
        goto out;
    }
    if (n_out > spw_model_num_outputs(model)) {
        fprintf(stderr, "splitwire: %s has %d outputs, %d paths given\n", path,
                spw_model_num_outputs(model), n_out);
        goto out;
    }
    for (int i = 0; i < n_in; i++) {
        if ((rc = spw_npy_read(in_paths[i], &ins[i]))) {
            spw_cli_fail(rc, "cannot read %s", in_paths[i]);
            goto out;
        }
    }
    spw_plan_options po = {.backend = backend,
                           .batch = ins[0].ndim ? (int)ins[0].dims[0] : 1,
                           .flags = flags,
                           .threads = (int)threads};
    if ((rc = spw_plan_create(model, &po, &plan))) {
        spw_cli_fail(rc, "cannot plan %s", path);
        goto out;
    }
    int n_model_out = spw_model_num_outputs(model);
    for (int i = 0; i < n_model_out; i++) {
        spw_plan_output(plan, i, &outs[i]);
        outs[i].data = malloc(spw_tensor_nbytes(&outs[i]) ? spw_tensor_nbytes(&outs[i]) : 1);
        if (!outs[i].data) {
            fprintf(stderr, "splitwire: out of memory\n");
            goto out;
        }
    }
    times = calloc((size_t)repeat, sizeof(*times));
    if (!times)
        goto out;
    for (long r = 0; r < repeat; r++) {
        uint64_t t0 = spw_cli_now_ns();
        if ((rc = spw_plan_run(plan, ins, n_in, outs, n_model_out))) {
            spw_cli_fail(rc, "running %s", path);
            goto out;
        }
        times[r] = spw_cli_ms_since(t0);
    }
    for (int i = 0; i < n_out; i++) {
        if ((rc = spw_npy_write(out_paths[i], &outs[i]))) {
            spw_cli_fail(rc, "cannot write %s", out_paths[i]);
            goto out;
        }
    }
    spw_cli_stats ts;
    spw_cli_stats_of(times, (int)repeat, &ts);
    double med = ts.median, best = ts.min;
    if (json) {
        printf("{\"model\": ");
        spw_cli_json_str(stdout, path);
        printf(", \"backend\": \"%s\", \"batch\": %d, \"repeat\": %ld, \"median_ms\": %.4f, "
               "\"min_ms\": %.4f, \"p99_ms\": %.4f",
               spw_plan_backend(plan), po.batch, repeat, med, best, ts.p99);
        if (profile) {
            printf(", \"steps\": [");
            for (int s = 0; s < spw_plan_num_steps(plan); s++) {
                spw_step_info st;
                spw_plan_step(plan, s, &st);
                printf("%s{\"name\": ", s ? ", " : "");
                spw_cli_json_str(stdout, st.name);
                printf(", \"op\": \"%s\", \"mean_ms\": %.4f}", st.op,
                       (double)st.ns / 1e6 / (double)repeat);
            }
            printf("]");
        }
        printf("}\n");
    } else {
        char shape[96];
        for (int i = 0; i < n_model_out; i++) {
            const char *name = NULL;
            spw_tensor d;
            spw_model_output(model, i, &d, &name);
            printf("output %s: %s %s%s%s\n", name, spw_dtype_name(outs[i].dtype),
                   spw_tensor_shape_str(&outs[i], shape, sizeof(shape)), i < n_out ? " -> " : "",
                   i < n_out ? out_paths[i] : "");
        }
        printf("backend %s, %d steps, arena %.1f KiB: median %.3f ms, min %.3f ms over %ld run%s\n",
               spw_plan_backend(plan), spw_plan_num_steps(plan),
               (double)spw_plan_arena_bytes(plan) / 1024.0, med, best, repeat,
               repeat == 1 ? "" : "s");
        if (profile) {
            for (int s = 0; s < spw_plan_num_steps(plan); s++) {
                spw_step_info st;
                spw_plan_step(plan, s, &st);
                printf("  %-28.28s %-20s %9.3f ms\n", st.name, st.op,
                       (double)st.ns / 1e6 / (double)repeat);
            }
        }
    }
    ret = 0;
out:
    free(times);
    for (int i = 0; i < MAX_IO; i++) {
        spw_free(ins[i].data);
        free(outs[i].data);
    }
    spw_plan_free(plan);
    spw_model_free(model);
    return ret;
}

int spw_cli_model(int argc, char **argv)
{
    static const spw_cli_command cmds[] = {
        {"inspect", cmd_inspect, "list layers, shapes, parameters and MACs"},
        {"run", cmd_run, "run a model on .npy inputs"},
        {NULL, NULL, NULL},
    };
    return spw_cli_dispatch("splitwire model", cmds, argc, argv);
}

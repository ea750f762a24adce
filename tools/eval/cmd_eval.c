/* splitwire eval: rate and accuracy of model bundles and of standard image
 * codecs in front of the uncompressed backbone, on a labelled image set. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/cli/cli.h"
#include "tools/eval/eval.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define MAX_BUNDLES 16
#define MAX_QUALITIES 16
#define MAX_BATCH 64
#define BACKBONE_ID "mobilenet_v2_1.0_224"

/* Default settings of --sweep (and of --codec without --quality). */
static const int sweep_jpeg[] = {5, 10, 20, 30, 50, 70, 90, 95};
static const int sweep_webp[] = {5, 10, 20, 30, 50, 70, 90, 95};
static const int sweep_avif[] = {5, 10, 20, 30, 50, 70, 90};

/* One line of the results: a method at one setting. */
typedef struct row {
    char method[16];                   /* backbone | jpeg | webp | avif | bundle */
    char setting[SPW_BUNDLE_NAME_MAX]; /* original | quality | bundle name */
    spw_eval_codec codec;
    int quality;
    spw_eval_acc acc;
} row;

typedef struct eval_opts {
    const char *data, *classes, *models, *backbone, *backend, *csv;
    const char *bundles[MAX_BUNDLES];
    int n_bundles;
    bool codec_set[SPW_EVAL_NCODECS];
    int qualities[MAX_QUALITIES];
    int n_qualities;
    bool sweep, json, quiet, fidelity;
    long limit, batch, threads;
} eval_opts;

/* --fidelity: the uncompressed backbone's answer on each original file, the
 * yardstick every row is compared with. top1[i] < 0 where it has none. */
typedef struct reference {
    int files, outputs;
    float *logp; /* [files][outputs] log-probabilities */
    int *top1;
} reference;

static int reference_alloc(reference *r, int files, int outputs)
{
    r->files = files;
    r->outputs = outputs;
    r->logp = calloc((size_t)files * (size_t)outputs, sizeof(float));
    r->top1 = calloc((size_t)files, sizeof(int));
    if (!r->logp || !r->top1)
        return spw_error_set(SPW_ENOMEM, "out of memory for the reference of %d images", files);
    for (int i = 0; i < files; i++)
        r->top1[i] = -1;
    return 0;
}

static void reference_free(reference *r)
{
    free(r->logp);
    free(r->top1);
    memset(r, 0, sizeof(*r));
}

/* Compares one row's scores for file i with the reference, if there is one. */
static void reference_compare(const reference *ref, spw_eval_acc *a, int file, const float *scores,
                              int n, int label_offset)
{
    if (!ref || !ref->top1 || file < 0 || file >= ref->files)
        return;
    spw_eval_acc_fidelity(a, scores, n, label_offset,
                          ref->logp + (size_t)file * (size_t)ref->outputs, ref->outputs,
                          ref->top1[file]);
}

/* ---- progress on stderr ------------------------------------------------- */

typedef struct progress {
    bool on, tty;
    const char *what;
    int total;
    uint64_t t0, last;
} progress;

static void progress_start(progress *p, bool on, const char *what, int total)
{
    *p = (progress){.on = on, .tty = isatty(2), .what = what, .total = total};
    p->t0 = p->last = spw_cli_now_ns();
}

static void fmt_duration(double s, char *buf, size_t size)
{
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, size, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60)
        snprintf(buf, size, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, size, "%lds", t);
}

static void progress_tick(progress *p, int done)
{
    if (!p->on)
        return;
    uint64_t now = spw_cli_now_ns();
    /* Once a second on a terminal (rewriting the line), every 30 s in a log. */
    uint64_t every = p->tty ? 1000000000ull : 30000000000ull;
    if (now - p->last < every && done < p->total)
        return;
    p->last = now;
    double el = (double)(now - p->t0) / 1e9;
    double rate = el > 0 ? done / el : 0;
    char eta[32] = "?";
    if (rate > 0)
        fmt_duration((p->total - done) / rate, eta, sizeof(eta));
    fprintf(stderr, "%s%s: %d/%d images, %.1f img/s, ETA %s%s", p->tty ? "\r" : "", p->what, done,
            p->total, rate, eta, p->tty ? "   " : "\n");
    fflush(stderr);
}

/* Before a message: ends the progress line being rewritten on a terminal. */
static const char *progress_break(const progress *p)
{
    return p->on && p->tty ? "\n" : "";
}

static void progress_end(progress *p)
{
    if (!p->on)
        return;
    char el[32];
    fmt_duration((double)(spw_cli_now_ns() - p->t0) / 1e9, el, sizeof(el));
    fprintf(stderr, "%s%s: done in %s%s\n", p->tty ? "\r" : "", p->what, el,
            p->tty ? "                              " : "");
}

/* ---- the uncompressed backbone, batched ---------------------------------- */

typedef struct slot {
    row *row;    /* NULL: a reference-only run */
    bool is_ref; /* this run of the original file is the reference */
    int file;
    int truth;
    size_t bytes;
    double bpp;
} slot;

typedef struct backbone {
    spw_model *model;
    spw_plan *plan;
    int batch, classes, label_offset;
    spw_preprocess pp;
    size_t in_elems;
    float *input, *scores;
    spw_tensor in_desc, out_desc;
    int fill;
    slot slots[MAX_BATCH];
    const spw_eval_classes *cl;
    reference *ref; /* NULL without --fidelity */
} backbone;

static void backbone_close(backbone *b)
{
    spw_plan_free(b->plan);
    spw_model_free(b->model);
    free(b->input);
    free(b->scores);
    memset(b, 0, sizeof(*b));
}

static int backbone_open(const char *path, const eval_opts *o, const spw_eval_classes *cl,
                         backbone *b)
{
    memset(b, 0, sizeof(*b));
    b->cl = cl;
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(
            stderr,
            "splitwire eval: backbone %s not found; make it with tools/models/fetch_backbone.sh "
            "(or give --backbone FILE.onnx)\n",
            path);
        return 1;
    }
    int rc = spw_model_load(path, &b->model);
    if (rc)
        return spw_cli_fail(rc, "loading the backbone %s", path);
    spw_tensor in;
    if ((rc = spw_model_input(b->model, 0, &in, NULL)))
        goto fail_model;
    if (o->batch > 1 && in.ndim == 4 && in.dims[0] == 1) {
        /* The TFLite import fixes the batch at 1; its layers do not depend
         * on it (the server runs the same network's tail batched), so free
         * the leading dim of this private copy. */
        if ((rc = spw_model_unbind_batch(b->model)))
            goto fail_model;
    }
    if (in.ndim != 4 || in.dims[1] != 3 || in.dims[2] <= 0 || in.dims[3] <= 0) {
        char buf[64];
        fprintf(stderr, "splitwire eval: %s: input is %s, not [N, 3, H, W]\n", path,
                spw_tensor_shape_str(&in, buf, sizeof(buf)));
        spw_model_free(b->model);
        b->model = NULL;
        return 1;
    }
    /* Defaults: the MobileNet convention (q - 128) / 128, background at 0
     * when there are 1001 outputs. The sidecar, when present, overrides. */
    int h = (int)in.dims[2], w = (int)in.dims[3];
    b->pp = (spw_preprocess){h > w ? h : w,
                             w,
                             h,
                             {128 / 255.f, 128 / 255.f, 128 / 255.f},
                             {128 / 255.f, 128 / 255.f, 128 / 255.f}};
    b->label_offset = -1;
    if (!spw_eval_read_sidecar(path, &b->pp, &b->label_offset) && !o->quiet)
        fprintf(
            stderr,
            "splitwire eval: no input convention beside %s (FILE.json); using (q - 128) / 128\n",
            path);
    b->batch = (int)o->batch;
    spw_plan_options po = {.backend = o->backend, .batch = b->batch, .threads = (int)o->threads};
    if ((rc = spw_plan_create(b->model, &po, &b->plan)))
        goto fail_model;
    spw_plan_input(b->plan, 0, &b->in_desc);
    spw_plan_output(b->plan, 0, &b->out_desc);
    int64_t out_n = spw_tensor_numel(&b->out_desc);
    b->classes = (int)(out_n / b->batch);
    if (b->label_offset < 0)
        b->label_offset = b->classes == 1001 ? 1 : 0;
    b->in_elems = (size_t)3 * (size_t)h * (size_t)w;
    b->in_desc.dtype = SPW_F32;
    b->out_desc.dtype = SPW_F32;
    b->input = calloc((size_t)b->batch * b->in_elems, sizeof(float));
    b->scores = calloc((size_t)out_n, sizeof(float));
    if (!b->input || !b->scores) {
        rc = spw_error_set(SPW_ENOMEM, "out of memory for a batch of %d", b->batch);
        goto fail_plan;
    }
    b->in_desc.data = b->input;
    b->out_desc.data = b->scores;
    return 0;
fail_plan:
fail_model:
    backbone_close(b);
    return spw_cli_fail(rc, "preparing the backbone %s", path);
}

/* Runs the filled slots (a partial last batch runs on the same plan; the
 * stale slots' outputs are ignored) and scores them. */
static int backbone_flush(backbone *b)
{
    if (!b->fill)
        return 0;
    int rc = spw_plan_run(b->plan, &b->in_desc, 1, &b->out_desc, 1);
    if (rc)
        return rc;
    /* Slots score in queue order, and an image's reference run is queued
     * before its other rows, so the reference is there when they need it. */
    for (int i = 0; i < b->fill; i++) {
        slot *s = &b->slots[i];
        const float *sc = b->scores + (size_t)i * (size_t)b->classes;
        if (s->is_ref) {
            spw_eval_log_softmax(sc, b->classes,
                                 b->ref->logp + (size_t)s->file * (size_t)b->classes);
            b->ref->top1[s->file] = spw_eval_top1(sc, b->classes, b->label_offset, NULL, 0);
        }
        if (!s->row)
            continue;
        spw_eval_acc_add(&s->row->acc, b->cl, sc, b->classes, b->label_offset, s->truth, s->bytes,
                         s->bpp);
        reference_compare(b->ref, &s->row->acc, s->file, sc, b->classes, b->label_offset);
    }
    b->fill = 0;
    return 0;
}

/* Queues one decoded image for row r (NULL: the reference only); a full
 * batch runs at once. A failure to preprocess counts against the row; only a
 * failing run is fatal. */
static int backbone_add(backbone *b, const spw_image *img, row *r, bool is_ref, int file, int truth,
                        size_t bytes, double bpp)
{
    if (spw_image_to_tensor(img, &b->pp, b->input + (size_t)b->fill * b->in_elems)) {
        if (r)
            r->acc.failed++;
        return 0;
    }
    b->slots[b->fill++] = (slot){r, is_ref, file, truth, bytes, bpp};
    return b->fill == b->batch ? backbone_flush(b) : 0;
}

static double bpp_of(size_t bytes, const spw_image *img)
{
    return (double)bytes * 8.0 / ((double)img->width * img->height);
}

/* Reads and decodes one file; reports and counts it when unreadable. */
static bool load_image(const char *path, spw_image *img, size_t *file_bytes, const progress *p)
{
    void *data;
    size_t size;
    int rc = spw_cli_read_file(path, &data, &size);
    if (!rc) {
        rc = spw_image_decode(data, size, img);
        free(data);
    }
    if (rc) {
        fprintf(stderr, "%ssplitwire eval: skipping %s: %s: %s\n", progress_break(p), path,
                spw_strerror(rc), spw_error_detail());
        return false;
    }
    *file_bytes = size;
    return true;
}

/* Every image through every backbone row: decoded once, re-encoded per
 * codec setting in this thread, the backbone batched across rows. With ref,
 * the original file's run is also kept as the reference (a run of its own
 * when no row is the original). */
static int run_backbone(const eval_opts *o, const spw_eval_files *files, const spw_eval_classes *cl,
                        row *rows, int n_rows, reference *ref, int *skipped)
{
    char def[4096];
    const char *path = o->backbone;
    if (!path) {
        spw_backbone_path(o->models, BACKBONE_ID, def, sizeof(def));
        path = def;
    }
    backbone b;
    if (backbone_open(path, o, cl, &b))
        return 1;
    int rc = 0;
    if (ref) {
        if ((rc = reference_alloc(ref, files->n, b.classes))) {
            backbone_close(&b);
            return spw_cli_fail(rc, "--fidelity");
        }
        b.ref = ref;
    }
    bool has_none = false;
    for (int r = 0; r < n_rows; r++)
        has_none = has_none || rows[r].codec == SPW_EVAL_NONE;
    if (!o->quiet)
        fprintf(stderr, "splitwire eval: backbone %s on %s, batch %d, %d outputs; %d settings%s\n",
                path, spw_plan_backend(b.plan), b.batch, b.classes, n_rows,
                ref ? ", and the reference of --fidelity" : "");
    progress pr;
    progress_start(&pr, !o->quiet, "backbone", files->n);
    bool warned[SPW_EVAL_NCODECS] = {0};
    *skipped = 0;
    for (int i = 0; i < files->n && !rc; i++) {
        spw_image img;
        size_t file_bytes;
        if (!load_image(files->paths[i], &img, &file_bytes, &pr)) {
            (*skipped)++;
            continue;
        }
        int truth = spw_eval_truth(cl, files->paths[i]);
        if (ref && !has_none)
            rc = backbone_add(&b, &img, NULL, true, i, truth, 0, 0);
        for (int r = 0; r < n_rows && !rc; r++) {
            row *rw = &rows[r];
            if (rw->codec == SPW_EVAL_NONE) {
                rc = backbone_add(&b, &img, rw, ref != NULL, i, truth, file_bytes,
                                  bpp_of(file_bytes, &img));
                continue;
            }
            spw_image dec;
            size_t bytes;
            int st = spw_eval_roundtrip(rw->codec, rw->quality, &img, &dec, &bytes);
            if (st) {
                rw->acc.failed++;
                if (!warned[rw->codec]) {
                    fprintf(stderr, "%ssplitwire eval: %s q%d on %s: %s: %s\n", progress_break(&pr),
                            rw->method, rw->quality, files->paths[i], spw_strerror(st),
                            spw_error_detail());
                    warned[rw->codec] = true;
                }
                continue;
            }
            rc = backbone_add(&b, &dec, rw, false, i, truth, bytes, bpp_of(bytes, &img));
            spw_image_release(&dec);
        }
        spw_image_release(&img);
        progress_tick(&pr, i + 1);
    }
    if (!rc)
        rc = backbone_flush(&b);
    progress_end(&pr);
    backbone_close(&b);
    return rc ? spw_cli_fail(rc, "running the backbone") : 0;
}

/* ---- bundles, through the client in local mode -------------------------- */

static int run_bundle(const eval_opts *o, const char *dir, const spw_eval_files *files,
                      const spw_eval_classes *cl, const reference *ref, row *rw, int *skipped)
{
    spw_client_config cc = {.bundle_dir = dir,
                            .backend = o->backend,
                            .threads = (int)o->threads,
                            .topk = 1,
                            .local = 1,
                            .models_dir = o->models};
    spw_client *client;
    int rc = spw_client_open(&cc, &client);
    if (rc) {
        /* The library's detail names what is missing (manifest, backbone). */
        spw_cli_fail(rc, "opening the bundle %s", dir);
        return 1;
    }
    const spw_bundle_info *in = spw_client_bundle(client);
    snprintf(rw->method, sizeof(rw->method), "bundle");
    snprintf(rw->setting, sizeof(rw->setting), "%s", in->name);
    if (!o->quiet)
        fprintf(stderr, "splitwire eval: bundle %s (%s, rate point %d)\n", in->name, dir,
                in->rate_index);
    progress pr;
    char what[SPW_BUNDLE_NAME_MAX + 8];
    snprintf(what, sizeof(what), "%s", in->name);
    progress_start(&pr, !o->quiet, what, files->n);
    bool warned = false;
    *skipped = 0;
    for (int i = 0; i < files->n; i++) {
        spw_image img;
        size_t file_bytes;
        if (!load_image(files->paths[i], &img, &file_bytes, &pr)) {
            (*skipped)++;
            continue;
        }
        spw_result res;
        const float *scores;
        int n;
        rc = spw_client_classify(client, &img, &res);
        if (!rc)
            rc = spw_client_local_scores(client, &scores, &n);
        if (rc) {
            rw->acc.failed++;
            if (!warned)
                fprintf(stderr, "%ssplitwire eval: %s on %s: %s: %s\n", progress_break(&pr),
                        in->name, files->paths[i], spw_strerror(rc), spw_error_detail());
            warned = true;
        } else {
            spw_eval_acc_add(&rw->acc, cl, scores, n, in->label_offset,
                             spw_eval_truth(cl, files->paths[i]), res.bytes, res.bpp);
            reference_compare(ref, &rw->acc, i, scores, n, in->label_offset);
        }
        spw_image_release(&img);
        progress_tick(&pr, i + 1);
    }
    progress_end(&pr);
    spw_client_close(client);
    return 0;
}

/* ---- output --------------------------------------------------------------- */

static void print_num(FILE *f, double v, const char *fmt, const char *nan_text)
{
    if (isnan(v))
        fputs(nan_text, f);
    else
        fprintf(f, fmt, v);
}

static void write_csv(FILE *f, const row *rows, int n)
{
    fprintf(f, "method,setting,images,mean_bytes,bpp,top1_1000,top1_10,agree,kl\n");
    for (int i = 0; i < n; i++) {
        const spw_eval_acc *a = &rows[i].acc;
        /* Bundle names are [A-Za-z0-9._-]-like; quote anything else. */
        bool quote = strpbrk(rows[i].setting, ",\"\n") != NULL;
        fprintf(f, "%s,%s%s%s,%ld,", rows[i].method, quote ? "\"" : "", rows[i].setting,
                quote ? "\"" : "", a->images);
        print_num(f, spw_eval_mean_bytes(a), "%.1f", "nan");
        fputc(',', f);
        print_num(f, spw_eval_mean_bpp(a), "%.5f", "nan");
        fputc(',', f);
        print_num(f, spw_eval_top1_1000(a), "%.4f", "nan");
        fputc(',', f);
        print_num(f, spw_eval_top1_10(a), "%.4f", "nan");
        fputc(',', f);
        print_num(f, spw_eval_agreement(a), "%.4f", "nan");
        fputc(',', f);
        print_num(f, spw_eval_mean_kl(a), "%.5f", "nan");
        fputc('\n', f);
    }
}

static void write_json(FILE *f, const eval_opts *o, const row *rows, int n, int files, int skipped)
{
    fprintf(f, "{\"data\": ");
    spw_cli_json_str(f, o->data);
    fprintf(f, ", \"images\": %d, \"skipped\": %d, \"rows\": [", files - skipped, skipped);
    for (int i = 0; i < n; i++) {
        const spw_eval_acc *a = &rows[i].acc;
        fprintf(f, "%s\n  {\"method\": ", i ? "," : "");
        spw_cli_json_str(f, rows[i].method);
        fprintf(f, ", \"setting\": ");
        spw_cli_json_str(f, rows[i].setting);
        fprintf(f,
                ", \"images\": %ld, \"failed\": %ld, \"judged\": %ld, \"mean_bytes\": ", a->images,
                a->failed, a->judged);
        print_num(f, spw_eval_mean_bytes(a), "%.1f", "null");
        fprintf(f, ", \"bpp\": ");
        print_num(f, spw_eval_mean_bpp(a), "%.5f", "null");
        fprintf(f, ", \"top1_1000\": ");
        print_num(f, spw_eval_top1_1000(a), "%.4f", "null");
        fprintf(f, ", \"top1_10\": ");
        print_num(f, spw_eval_top1_10(a), "%.4f", "null");
        fprintf(f, ", \"agree\": ");
        print_num(f, spw_eval_agreement(a), "%.4f", "null");
        fprintf(f, ", \"kl\": ");
        print_num(f, spw_eval_mean_kl(a), "%.5f", "null");
        fprintf(f, "}");
    }
    fprintf(f, "\n]}\n");
}

static void write_table(FILE *f, const row *rows, int n, bool fidelity)
{
    fprintf(f, "%-8s %-24s %7s %7s %11s %9s %9s %9s", "method", "setting", "images", "failed",
            "mean_bytes", "bpp", "top1_1000", "top1_10");
    fprintf(f, fidelity ? " %9s %8s\n" : "\n", "agree", "kl");
    for (int i = 0; i < n; i++) {
        const spw_eval_acc *a = &rows[i].acc;
        fprintf(f, "%-8s %-24.24s %7ld %7ld ", rows[i].method, rows[i].setting, a->images,
                a->failed);
        print_num(f, spw_eval_mean_bytes(a), "%11.1f", "          -");
        print_num(f, spw_eval_mean_bpp(a), " %9.4f", "         -");
        print_num(f, spw_eval_top1_1000(a), " %9.4f", "         -");
        print_num(f, spw_eval_top1_10(a), " %9.4f", "         -");
        if (fidelity) {
            print_num(f, spw_eval_agreement(a), " %9.4f", "         -");
            print_num(f, spw_eval_mean_kl(a), " %8.5f", "        -");
        }
        fputc('\n', f);
    }
}

/* ---- options -------------------------------------------------------------- */

static void eval_usage(FILE *f)
{
    fprintf(
        f,
        "usage: splitwire eval --data DIR (--bundle DIR ... | --backbone FILE.onnx\n"
        "                      [--codec LIST --quality LIST | --sweep]) [options]\n"
        "\n"
        "Measures rate (bytes, bits per pixel) and top-1 accuracy over a labelled image\n"
        "set (class directories named by WordNet id, classes.tsv beside or above them).\n"
        "Bundles run through the client in local mode: the real encoder, rANS stream,\n"
        "decoder and backbone tail. Baselines run the uncompressed backbone on the\n"
        "original files (codec none; bytes = file size) or on images re-encoded in\n"
        "memory (bytes = encoded size).\n"
        "  --data DIR          image set, e.g. ../shared/data/imagenette2-224/val\n"
        "  --classes FILE      class table (default DIR/classes.tsv, else DIR/../classes.tsv)\n"
        "  --bundle DIR        a bundle to evaluate (repeatable)\n"
        "  --models DIR        where backbones are (default $SPW_MODEL_DIR or build/models)\n"
        "  --backbone FILE     backbone ONNX for the baselines (default\n"
        "                      MODELS/" BACKBONE_ID
        ".onnx, made by tools/models/fetch_backbone.sh)\n"
        "  --codec LIST        none,jpeg,webp,avif (comma-separated; default none)\n"
        "  --quality LIST      qualities 1..100 for the codecs (default: the sweep's)\n"
        "  --sweep             none plus every codec at its default qualities\n"
        "                      (jpeg and webp 5,10,20,30,50,70,90,95; avif 5,10,20,30,50,70,90)\n"
        "  --fidelity          also run the backbone on each original file and compare\n"
        "                      every row with it: agree = how often the top-1\n"
        "                      label is the backbone's, kl = mean KL(backbone || row)\n"
        "                      in nats over all outputs\n"
        "  --limit N           N images spread evenly over the set (default all)\n"
        "  --batch N           backbone batch size (default 8)\n"
        "  --backend NAME      backend (default auto)\n"
        "  --threads N         backend threads (default: the backend's)\n"
        "  --json              results as JSON on stdout instead of a table\n"
        "  --csv FILE          also write the results as CSV ('-' = stdout)\n"
        "  --quiet             no progress on stderr\n"
        "\n"
        "Columns: top1_1000 = argmax over the 1000 ImageNet classes (background excluded);\n"
        "top1_10 = argmax over the set's classes only; bpp = bytes * 8 / (width * height).\n");
}

enum {
    OPT_DATA = 256,
    OPT_CLASSES,
    OPT_BUNDLE,
    OPT_MODELS,
    OPT_BACKBONE,
    OPT_CODEC,
    OPT_QUALITY,
    OPT_SWEEP,
    OPT_LIMIT,
    OPT_BATCH,
    OPT_BACKEND,
    OPT_THREADS,
    OPT_JSON,
    OPT_CSV,
    OPT_QUIET,
    OPT_FIDELITY,
};

static bool parse_codecs(const char *arg, eval_opts *o)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", arg);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        spw_eval_codec c;
        if (spw_eval_codec_parse(t, &c)) {
            fprintf(stderr, "splitwire eval: unknown codec '%s' (none, jpeg, webp, avif)\n", t);
            return false;
        }
        o->codec_set[c] = true;
    }
    return true;
}

static bool parse_qualities(const char *arg, eval_opts *o)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", arg);
    o->n_qualities = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        long q;
        if (o->n_qualities == MAX_QUALITIES || !spw_cli_parse_int(t, 1, 100, &q)) {
            fprintf(stderr,
                    "splitwire eval: --quality takes up to %d integers in 1..100, not '%s'\n",
                    MAX_QUALITIES, t);
            return false;
        }
        o->qualities[o->n_qualities++] = (int)q;
    }
    if (!o->n_qualities) {
        fprintf(stderr, "splitwire eval: --quality needs at least one value\n");
        return false;
    }
    return true;
}

/* The options with a value that needs more than a check: -1 to carry on,
 * else the exit code. */
static int eval_opt(int id, const char *arg, void *ctx)
{
    eval_opts *o = ctx;
    switch (id) {
    case OPT_BUNDLE:
        if (o->n_bundles == MAX_BUNDLES) {
            fprintf(stderr, "splitwire eval: at most %d bundles\n", MAX_BUNDLES);
            return 2;
        }
        o->bundles[o->n_bundles++] = arg;
        return -1;
    case OPT_CODEC:
        return parse_codecs(arg, o) ? -1 : 2;
    default:
        return parse_qualities(arg, o) ? -1 : 2;
    }
}

/* -1: carry on; otherwise the exit code. */
static int parse_opts(int argc, char **argv, eval_opts *o)
{
    const spw_cli_opt opts[] = {
        SPW_CLI_OPT_STR("data", &o->data),
        SPW_CLI_OPT_STR("classes", &o->classes),
        SPW_CLI_OPT_FN("bundle", eval_opt, OPT_BUNDLE, true),
        SPW_CLI_OPT_STR("models", &o->models),
        SPW_CLI_OPT_STR("backbone", &o->backbone),
        SPW_CLI_OPT_FN("codec", eval_opt, OPT_CODEC, true),
        SPW_CLI_OPT_FN("quality", eval_opt, OPT_QUALITY, true),
        SPW_CLI_OPT_FLAG("sweep", &o->sweep),
        SPW_CLI_OPT_LONG("limit", &o->limit, 1, 100000000),
        SPW_CLI_OPT_LONG("batch", &o->batch, 1, MAX_BATCH),
        SPW_CLI_OPT_STR("backend", &o->backend),
        SPW_CLI_OPT_LONG("threads", &o->threads, 0, 256),
        SPW_CLI_OPT_FLAG("json", &o->json),
        SPW_CLI_OPT_STR("csv", &o->csv),
        SPW_CLI_OPT_FLAG("quiet", &o->quiet),
        SPW_CLI_OPT_FLAG("fidelity", &o->fidelity),
        SPW_CLI_OPT_END,
    };
    int first;
    int rc = spw_cli_parse("splitwire eval", argc, argv, opts, o, eval_usage, &first);
    if (rc >= 0)
        return rc;
    if (first != argc) {
        fprintf(stderr, "splitwire eval: unexpected argument '%s'\n", argv[first]);
        return 2;
    }
    if (!o->data) {
        fprintf(stderr, "splitwire eval: --data DIR is required "
                        "(e.g. ../shared/data/imagenette2-224/val)\n");
        return 2;
    }
    bool any_codec = false;
    for (int i = 0; i < SPW_EVAL_NCODECS; i++)
        any_codec = any_codec || o->codec_set[i];
    if (!o->n_bundles && !o->backbone && !any_codec && !o->sweep) {
        fprintf(stderr, "splitwire eval: nothing to evaluate: give --bundle, --backbone, "
                        "--codec or --sweep\n");
        return 2;
    }
    if (o->n_qualities && !any_codec && !o->sweep) {
        fprintf(stderr, "splitwire eval: --quality needs --codec or --sweep\n");
        return 2;
    }
    return -1;
}

/* The backbone rows: none first, then each codec at its qualities. */
static int make_rows(eval_opts *o, row *rows, int cap)
{
    bool want[SPW_EVAL_NCODECS];
    bool any = false;
    for (int i = 0; i < SPW_EVAL_NCODECS; i++) {
        want[i] = o->sweep || o->codec_set[i];
        any = any || want[i];
    }
    if (!any && !o->backbone)
        return 0;
    if (!any)
        want[SPW_EVAL_NONE] = true; /* --backbone alone: the original files */
    int n = 0;
    for (int c = 0; c < SPW_EVAL_NCODECS; c++) {
        if (!want[c])
            continue;
        if (!spw_eval_codec_available((spw_eval_codec)c)) {
            fprintf(stderr,
                    "splitwire eval: this build has no %s codec (its -dev package "
                    "was missing at build time); left out\n",
                    spw_eval_codec_name((spw_eval_codec)c));
            continue;
        }
        const int *q = o->qualities;
        int nq = o->n_qualities;
        if (c == SPW_EVAL_NONE) {
            nq = 1;
        } else if (!nq) {
            q = c == SPW_EVAL_JPEG ? sweep_jpeg : c == SPW_EVAL_WEBP ? sweep_webp : sweep_avif;
            nq = c == SPW_EVAL_JPEG   ? (int)ARRAY_LEN(sweep_jpeg)
                 : c == SPW_EVAL_WEBP ? (int)ARRAY_LEN(sweep_webp)
                                      : (int)ARRAY_LEN(sweep_avif);
        }
        for (int j = 0; j < nq && n < cap; j++) {
            row *r = &rows[n++];
            memset(r, 0, sizeof(*r));
            r->codec = (spw_eval_codec)c;
            if (c == SPW_EVAL_NONE) {
                snprintf(r->method, sizeof(r->method), "backbone");
                snprintf(r->setting, sizeof(r->setting), "original");
            } else {
                r->quality = q[j];
                snprintf(r->method, sizeof(r->method), "%s", spw_eval_codec_name(r->codec));
                snprintf(r->setting, sizeof(r->setting), "%d", q[j]);
            }
        }
    }
    return n;
}

/* The class table: --classes, else classes.tsv in or above the data
 * directory (Imagenette keeps it next to train/ and val/). */
static bool find_classes(const eval_opts *o, spw_eval_classes *cl)
{
    char path[4096];
    int rc = o->classes ? spw_eval_classes_load(o->classes, cl)
                        : spw_eval_classes_find(o->data, cl, path, sizeof(path));
    if (rc == SPW_ENOENT && !o->classes) {
        fprintf(stderr,
                "splitwire eval: no classes.tsv in or above %s: accuracy is not "
                "measured (--classes FILE)\n",
                o->data);
        memset(cl, 0, sizeof(*cl));
        return true;
    }
    if (rc) {
        spw_cli_fail(rc, "reading the class table");
        return false;
    }
    return true;
}

int spw_cli_eval(int argc, char **argv)
{
    eval_opts o = {.batch = 8};
    int rc = parse_opts(argc, argv, &o);
    if (rc >= 0)
        return rc;
    spw_eval_files files;
    if ((rc = spw_eval_files_collect(o.data, &files)))
        return spw_cli_fail(rc, "data directory %s", o.data);
    if (!files.n) {
        fprintf(stderr, "splitwire eval: no .jpg/.jpeg/.png images below %s\n", o.data);
        spw_eval_files_free(&files);
        return 1;
    }
    spw_eval_files_limit(&files, (int)o.limit);
    spw_eval_classes cl;
    reference ref = {0};
    row *rows = NULL;
    int exit_code = 1;
    if (!find_classes(&o, &cl))
        goto out;
    int cap = SPW_EVAL_NCODECS * MAX_QUALITIES + MAX_BUNDLES;
    if (!(rows = calloc((size_t)cap, sizeof(*rows)))) {
        fprintf(stderr, "splitwire eval: out of memory\n");
        goto out;
    }
    int n_rows = make_rows(&o, rows, cap - MAX_BUNDLES), skipped = 0;
    uint64_t t0 = spw_cli_now_ns();
    if ((n_rows || o.fidelity) &&
        run_backbone(&o, &files, &cl, rows, n_rows, o.fidelity ? &ref : NULL, &skipped))
        goto out;
    for (int i = 0; i < o.n_bundles; i++) {
        row *r = &rows[n_rows];
        memset(r, 0, sizeof(*r));
        if (run_bundle(&o, o.bundles[i], &files, &cl, o.fidelity ? &ref : NULL, r, &skipped))
            goto out;
        n_rows++;
    }
    if (!o.quiet) {
        char el[32];
        fmt_duration((double)(spw_cli_now_ns() - t0) / 1e9, el, sizeof(el));
        fprintf(stderr, "splitwire eval: %d images from %s (%d unreadable, skipped) in %s\n",
                files.n - skipped, o.data, skipped, el);
    }
    if (o.json)
        write_json(stdout, &o, rows, n_rows, files.n, skipped);
    else
        write_table(stdout, rows, n_rows, o.fidelity);
    if (o.csv) {
        FILE *f = strcmp(o.csv, "-") ? fopen(o.csv, "w") : stdout;
        if (!f) {
            fprintf(stderr, "splitwire eval: cannot write %s\n", o.csv);
            goto out;
        }
        write_csv(f, rows, n_rows);
        if (f != stdout && fclose(f) != 0) {
            fprintf(stderr, "splitwire eval: writing %s failed\n", o.csv);
            goto out;
        }
    }
    /* Nothing evaluated at all is a failure; single failed images are not. */
    exit_code = 1;
    for (int i = 0; i < n_rows; i++)
        if (rows[i].acc.images)
            exit_code = 0;
    if (exit_code)
        fprintf(stderr, "splitwire eval: no image could be evaluated\n");
out:
    reference_free(&ref);
    free(rows);
    spw_eval_files_free(&files);
    return exit_code;
}

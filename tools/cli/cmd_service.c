/* splitwire serve | classify | demo: the client and server runtimes. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tools/cli/cli.h"
#include "tools/eval/eval.h"

/* ---- shared data: labels and ground truth ------------------------------- */

static const char *shared_dir(void)
{
    const char *env = getenv("SPLITWIRE_SHARED");
    return env && *env ? env : "../shared";
}

typedef struct labels {
    char **names; /* ImageNet label text by class index (0..999) */
    int n;
    spw_eval_classes classes; /* class directory (WordNet id) -> ImageNet index */
} labels;

/* Label names from the shared ImageNet list; the class table (the truth of
 * each file, by its class directory) from `classes` when given, else from a
 * classes.tsv in or above the first input, else Imagenette's. Fails only
 * when an explicit table cannot be read. */
static int labels_load(labels *l, const char *classes, const char *first_input)
{
    memset(l, 0, sizeof(*l));
    char path[1024], line[512];
    snprintf(path, sizeof(path), "%s/models/pretrained/imagenet_labels.txt", shared_dir());
    FILE *f = fopen(path, "r");
    if (f) {
        l->names = calloc(1001, sizeof(char *));
        int row = 0;
        while (l->names && fgets(line, sizeof(line), f) && row < 1001) {
            line[strcspn(line, "\r\n")] = 0;
            if (row > 0) /* line 0 is "background" */
                l->names[l->n++] = strdup(line);
            row++;
        }
        fclose(f);
    }
    if (classes) {
        int rc = spw_eval_classes_load(classes, &l->classes);
        return rc ? spw_cli_fail(rc, "reading the class table") : 0;
    }
    char found[4096];
    if (first_input && !spw_eval_classes_find(first_input, &l->classes, found, sizeof(found)))
        return 0;
    /* Without a class table there is simply no truth to compare with. */
    snprintf(path, sizeof(path), "%s/data/imagenette2-224/classes.tsv", shared_dir());
    if (spw_eval_classes_load(path, &l->classes))
        l->classes.n = 0;
    return 0;
}

static void labels_free(labels *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
}

/* Says once why inference runs on the CPU when no GPU backend can take it. */
static void backend_notice(const char *requested)
{
    if (requested && strcmp(requested, "auto"))
        return;
    for (int i = 0; i < spw_backend_count(); i++) {
        if (strcmp(spw_backend_name(i), "vulkan"))
            continue;
        if (!spw_backend_automatic(i))
            fprintf(stderr, "splitwire: notice: the Vulkan device is a CPU implementation; "
                            "running on the CPU backend (--backend vulkan forces it)\n");
        return;
    }
    fprintf(stderr, "splitwire: notice: no Vulkan device; running on the CPU "
                    "(SPW_LOG=info says why)\n");
}

/* ---- file lists --------------------------------------------------------- */

/* Adds path, or every image below it when it is a directory, in sorted order.
 * A path that is not a directory is kept as given: unreadable files are
 * reported (and skipped) when they are read. */
static void list_collect(spw_eval_files *fl, const char *path)
{
    struct stat st;
    spw_eval_files below;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode) || spw_eval_files_collect(path, &below)) {
        spw_eval_files_add(fl, path);
        return;
    }
    for (int i = 0; i < below.n; i++)
        spw_eval_files_add(fl, below.paths[i]);
    spw_eval_files_free(&below);
}

/* ---- transport options -------------------------------------------------- */

typedef struct net_opts {
    const char *transport; /* udp | dpdk */
    const char *addr;      /* listen (server) or server address (client) */
    const char *bind;      /* client: its own address */
    const char *eal;
    const char *dpdk_port;
    long mtu;
    spw_cli_keys keys;
} net_opts;

static int net_config(net_opts *o, bool server, spw_net_config *c)
{
    memset(c, 0, sizeof(*c));
    if (!o->transport || !strcmp(o->transport, "udp"))
        c->transport = SPW_NET_UDP;
    else if (!strcmp(o->transport, "dpdk"))
        c->transport = SPW_NET_DPDK;
    else {
        fprintf(stderr, "splitwire: --transport must be udp or dpdk, not '%s'\n", o->transport);
        return 2;
    }
    if (c->transport == SPW_NET_DPDK && !o->eal) {
        fprintf(stderr, "splitwire: --transport dpdk needs --eal \"EAL arguments\"\n");
        return 2;
    }
    const char *def = server ? "127.0.0.1:7878" : "127.0.0.1:7878";
    if (server)
        c->local = o->addr ? o->addr : def;
    else {
        c->peer = o->addr ? o->addr : def;
        /* UDP: any interface, an ephemeral port, so a server on another host
         * is reachable; DPDK has no kernel to pick an address: a fixed one. */
        c->local = o->bind ? o->bind : c->transport == SPW_NET_UDP ? "0.0.0.0:0" : "127.0.0.1:7879";
    }
    c->eal_args = o->eal;
    c->dpdk_port = o->dpdk_port;
    c->mtu = (uint32_t)o->mtu;
    return spw_cli_net_keys(&o->keys, server, server ? "splitwire serve" : "splitwire classify", c);
}

/* ---- classify core ------------------------------------------------------ */

typedef struct run_opts {
    bool json, quiet;
    int inflight;
    int topk;
    const int *reference; /* per file: the uncompressed backbone's top-1, -1 unknown; or NULL */
    const char *classes;  /* --classes FILE, or NULL to look beside the inputs */
    const char *first_input;
    const spw_client *client; /* names the rate point of each result when it has several */
} run_opts;

typedef struct run_totals {
    int images, ok, failed, skipped, judged, correct;
    int ref_judged, ref_correct, ref_compared, ref_same; /* against the uncompressed backbone */
    double bytes, bpp, pre, enc, ent, net, srv;
    double *totals; /* per-image total ms, for percentiles */
} run_totals;

static const char *label_name(const labels *l, const spw_bundle_info *in, int label, char *buf,
                              size_t size)
{
    if (in->num_classes - in->label_offset == 1000 && label >= 0 && label < l->n)
        return l->names[label];
    if (label < 0)
        return "background";
    snprintf(buf, size, "class %d", label);
    return buf;
}

static void print_result(const run_opts *o, const labels *l, const spw_bundle_info *in,
                         const char *path, const spw_result *r, int truth, int ref, run_totals *t)
{
    char buf[64];
    if (r->status) {
        t->failed++;
        if (o->json) {
            printf("{\"file\": ");
            spw_cli_json_str(stdout, path);
            printf(", \"error\": ");
            spw_cli_json_str(stdout, spw_strerror(r->status));
            printf("}\n");
        } else {
            fprintf(stderr, "splitwire: %s: %s\n", path, spw_strerror(r->status));
        }
        return;
    }
    t->ok++;
    t->bytes += (double)r->bytes;
    t->bpp += r->bpp;
    t->pre += r->ms_preprocess;
    t->enc += r->ms_encode;
    t->ent += r->ms_entropy;
    t->net += r->ms_network;
    t->srv += r->ms_server;
    t->totals[t->ok - 1] = r->ms_total;
    int top = r->k ? r->top[0].label : -1;
    /* Imagenette truth is an ImageNet-1k index: only comparable for such a backbone. */
    bool judged = truth >= 0 && in->num_classes - in->label_offset == 1000;
    bool right = judged && top == truth;
    t->judged += judged;
    t->correct += right;
    bool compared = ref >= 0;
    t->ref_compared += compared;
    t->ref_same += compared && ref == top;
    t->ref_judged += compared && judged;
    t->ref_correct += compared && judged && ref == truth;
    const char *name = label_name(l, in, top, buf, sizeof(buf));
    if (o->json) {
        printf("{\"file\": ");
        spw_cli_json_str(stdout, path);
        printf(", \"label\": %d, \"name\": ", top);
        spw_cli_json_str(stdout, name);
        printf(", \"confidence\": ");
        spw_cli_json_num(stdout, r->k ? r->top[0].prob : 0.0f, 4);
        printf(", \"bytes\": %zu, \"bpp\": ", r->bytes);
        spw_cli_json_num(stdout, r->bpp, 4);
        if (o->client && spw_client_rate_points(o->client) > 1) {
            printf(", \"rate_point\": ");
            spw_cli_json_str(stdout, spw_client_bundle_at(o->client, r->rate_point)->name);
        }
        const char *stage[] = {"preprocess", "encode", "entropy", "network", "server", "total"};
        const double ms[] = {r->ms_preprocess, r->ms_encode, r->ms_entropy,
                             r->ms_network,    r->ms_server, r->ms_total};
        for (int i = 0; i < 6; i++) {
            printf("%s\"%s\": ", i ? ", " : ", \"ms\": {", stage[i]);
            spw_cli_json_num(stdout, ms[i], 3);
        }
        printf("}");
        if (judged)
            printf(", \"truth\": %d, \"correct\": %s", truth, right ? "true" : "false");
        if (compared)
            printf(", \"backbone_label\": %d, \"same_as_backbone\": %s", ref,
                   ref == top ? "true" : "false");
        printf("}\n");
    } else if (!o->quiet) {
        const char *base = strrchr(path, '/');
        char refcol[48] = "";
        if (compared)
            snprintf(refcol, sizeof(refcol), "  %-6s %s", ref == top ? "same" : "other",
                     judged ? (ref == truth ? "ok" : "WRONG") : "");
        printf("%-28.28s %-26.26s %5.1f%% %6zu B %6.3f bpp | %6.2f %7.2f %6.2f %6.2f %7.2f = %7.2f "
               "ms%s%s\n",
               base ? base + 1 : path, name, r->k ? r->top[0].prob * 100.0 : 0.0, r->bytes, r->bpp,
               r->ms_preprocess, r->ms_encode, r->ms_entropy, r->ms_network, r->ms_server,
               r->ms_total, judged ? (right ? (compared ? "  ok   " : "  ok") : "  WRONG") : "",
               refcol);
        if (o->client && spw_client_rate_points(o->client) > 1)
            printf("%-28s rate point %s\n", "",
                   spw_client_bundle_at(o->client, r->rate_point)->name);
    }
}

static void print_summary(const run_opts *o, const run_totals *t, const char *transport)
{
    double p50 = 0, p99 = 0;
    if (t->ok) {
        spw_cli_stats st;
        spw_cli_stats_of(t->totals, t->ok, &st);
        p50 = spw_cli_percentile(t->totals, t->ok, 50);
        p99 = st.p99;
    }
    double n = t->ok ? t->ok : 1;
    if (o->json) {
        printf("{\"summary\": {\"transport\": \"%s\", \"images\": %d, \"ok\": %d, \"failed\": %d, "
               "\"skipped\": %d, \"mean_bytes\": %.1f, \"mean_bpp\": %.4f, \"total_ms_p50\": %.3f, "
               "\"total_ms_p99\": %.3f, \"mean_ms\": {\"preprocess\": %.3f, \"encode\": %.3f, "
               "\"entropy\": %.3f, \"network\": %.3f, \"server\": %.3f}",
               transport, t->images, t->ok, t->failed, t->skipped, t->bytes / n, t->bpp / n, p50,
               p99, t->pre / n, t->enc / n, t->ent / n, t->net / n, t->srv / n);
        if (t->judged)
            printf(", \"judged\": %d, \"correct\": %d, \"top1\": %.4f", t->judged, t->correct,
                   (double)t->correct / t->judged);
        if (t->ref_compared)
            printf(", \"backbone\": {\"compared\": %d, \"same_label\": %d, \"judged\": %d, "
                   "\"correct\": %d}",
                   t->ref_compared, t->ref_same, t->ref_judged, t->ref_correct);
        printf("}}\n");
        return;
    }
    printf("\n%d images over %s: %d classified, %d failed, %d skipped\n", t->images, transport,
           t->ok, t->failed, t->skipped);
    if (t->ok)
        printf("mean %.0f bytes (%.4f bpp); mean ms: preprocess %.2f, encode %.2f, entropy %.2f, "
               "network %.2f, server %.2f; total p50 %.2f ms, p99 %.2f ms\n",
               t->bytes / n, t->bpp / n, t->pre / n, t->enc / n, t->ent / n, t->net / n, t->srv / n,
               p50, p99);
    if (t->judged)
        printf("top-1: %d of %d correct (%.1f%%)\n", t->correct, t->judged,
               100.0 * t->correct / t->judged);
    if (t->ref_judged)
        printf("the uncompressed backbone on the same images: %d of %d correct (%.1f%%)\n",
               t->ref_correct, t->ref_judged, 100.0 * t->ref_correct / t->ref_judged);
    if (t->ref_compared)
        printf("same top-1 as the uncompressed backbone: %d of %d (%.1f%%)\n", t->ref_same,
               t->ref_compared, 100.0 * t->ref_same / t->ref_compared);
}

static volatile sig_atomic_t classify_interrupted;

static void on_classify_signal(int sig)
{
    classify_interrupted = sig;
}

/* Classifies every file, keeping up to o->inflight requests on the wire so
 * image N+1 is encoded while N travels. Unreadable images are skipped.
 * SIGINT/SIGTERM stop it early: the results already in are printed with the
 * summary, and the exit code is 128 + the signal. */
static int run_images(spw_client *client, const spw_eval_files *fl, const run_opts *o,
                      const char *transport)
{
    labels l;
    if (labels_load(&l, o->classes, o->first_input)) {
        labels_free(&l);
        return 1;
    }
    const spw_bundle_info *in = spw_client_bundle(client);
    run_totals t = {0};
    t.totals = calloc((size_t)(fl->n ? fl->n : 1), sizeof(double));
    uint64_t *ids = calloc((size_t)(fl->n ? fl->n : 1), sizeof(uint64_t));
    int rc = 0, next = 0, outstanding = 0;
    bool progress = !o->json && fl->n > 20 && isatty(2);
    if (!o->json && !o->quiet)
        printf("%-28s %-26s %6s %8s %10s | %6s %7s %6s %6s %7s   %7s%s\n", "image", "label", "conf",
               "bytes", "bpp", "prep", "encode", "rans", "net", "server", "total",
               o->reference ? "  truth  backbone" : "");
    classify_interrupted = 0;
    struct sigaction sa = {.sa_handler = on_classify_signal}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    while ((next < fl->n || outstanding > 0) && !classify_interrupted) {
        while (next < fl->n && outstanding < o->inflight) {
            const char *path = fl->paths[next];
            spw_image img;
            t.images++;
            int st = spw_image_load(path, &img);
            if (st) {
                t.skipped++;
                fprintf(stderr, "splitwire: skipping %s: %s: %s\n", path, spw_strerror(st),
                        spw_error_detail());
                next++;
                continue;
            }
            st = spw_client_submit(client, &img, &ids[next]);
            spw_image_release(&img);
            if (st == SPW_EBUSY)
                break;
            if (st) {
                spw_result r = {.status = st};
                print_result(o, &l, in, path, &r, -1, -1, &t);
                next++;
                continue;
            }
            next++;
            outstanding++;
        }
        spw_result res[16];
        /* A bounded wait, so a signal is noticed within 100 ms. */
        int n = spw_client_poll(client, res, 16, 100);
        if (n < 0) {
            rc = spw_cli_fail(n, "waiting for results");
            break;
        }
        for (int i = 0; i < n; i++) {
            int idx = -1;
            for (int j = 0; j < next && idx < 0; j++)
                if (ids[j] == res[i].request_id)
                    idx = j;
            const char *path = idx >= 0 ? fl->paths[idx] : "?";
            print_result(o, &l, in, path, &res[i], spw_eval_truth(&l.classes, path),
                         o->reference && idx >= 0 ? o->reference[idx] : -1, &t);
            outstanding--;
        }
        if (progress)
            fprintf(stderr, "\r%d/%d", t.ok + t.failed + t.skipped, fl->n);
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (progress)
        fprintf(stderr, "\n");
    if (classify_interrupted)
        fprintf(stderr, "splitwire: interrupted: %d of %d images done, %d abandoned\n",
                t.ok + t.failed + t.skipped, fl->n, outstanding);
    print_summary(o, &t, transport);
    fflush(stdout);
    if (t.failed && !rc)
        rc = 1;
    if (!t.ok && t.images && !rc) {
        fprintf(stderr, "splitwire: no image could be classified\n");
        rc = 1;
    }
    if (classify_interrupted)
        rc = 128 + classify_interrupted;
    free(ids);
    free(t.totals);
    labels_free(&l);
    return rc;
}

/* ---- serve -------------------------------------------------------------- */

/* One server per DPDK queue pair (one in every other case). */
#define MAX_LANES 16
static spw_server *volatile serving[MAX_LANES];

static void on_stop(int sig)
{
    (void)sig;
    for (int i = 0; i < MAX_LANES; i++)
        spw_server_stop(serving[i]);
}

static void on_stats(int sig)
{
    (void)sig;
    for (int i = 0; i < MAX_LANES; i++)
        spw_server_request_stats(serving[i]);
}

static void *lane_main(void *arg)
{
    return (void *)(intptr_t)spw_server_run(arg);
}

static void serve_usage(FILE *f)
{
    fprintf(f,
            "usage: splitwire serve --bundle DIR [--bundle DIR ...] [options]\n"
            "\n"
            "Serves classification requests: entropy decode, decoder + backbone tail, top-k.\n"
            "  --bundle DIR        model bundle (repeat for several rate points)\n"
            "  --models DIR        where backbones are (default $SPW_MODEL_DIR or build/models)\n"
            "  --transport T       udp (default) or dpdk\n"
            "  --listen IP:PORT    address to serve on (default 127.0.0.1:7878)\n"
            "  --eal \"ARGS\"        DPDK EAL arguments (with --transport dpdk)\n"
            "  --dpdk-port NAME    DPDK device (default: the first port)\n"
            "  --mtu N             path MTU (default 1500)\n"
            "  --backend NAME      inference backend (default auto)\n"
            "  --threads N         backend threads per plan (default: the cores split over\n"
            "                      the workers)\n"
            "  --max-batch N       requests per batch (default 8; at most what the transport\n"
            "                      keeps for retransmission, 256)\n"
            "  --plan-batch N      largest plan per worker: bigger batches run as sub-batches\n"
            "                      of N, same scores, less memory (default: 1 on cpu-ref,\n"
            "                      and on cpu-fast with one thread per plan; else max-batch)\n"
            "  --max-wait-us N     a partial batch runs after this long (default 2000)\n"
            "  --idle-dispatch     while no batch runs, a request runs at once instead of\n"
            "                      waiting --max-wait-us for others\n"
            "  --workers N         inference threads (default 1; 2 with --backend vulkan:\n"
            "                      a batch in flight while the next one uploads)\n"
            "  --reuseport N       UDP: share the port with N server processes (each\n"
            "                      started with the same N); clients' sessions (or, with\n"
            "                      --insecure, requests) are spread over them\n"
            "  --backbone FILE     whole backbone (ONNX) for image requests (codec offload);\n"
            "                      default MODELS/mobilenet_v2_1.0_224.onnx when present\n"
            "  --link SPEC         emulate a link on transmit: a preset (nbiot ltem 3g 4g wifi\n"
            "                      5g wired) or RATE,DELAY[,JITTER[,LOSS]], e.g. 1mbit,20ms\n"
            "  --queues N          DPDK: serve N RX/TX queue pairs of the port, each with\n"
            "                      its own serving thread and --workers (RSS, or memif's\n"
            "                      pairs, spread the flows)\n");
    spw_cli_keys_usage(f, true);
    fprintf(f,
            "SIGINT/SIGTERM stop after finishing accepted requests; SIGUSR1 prints statistics.\n");
}

enum {
    OPT_BUNDLE = 256,
    OPT_MODELS,
    OPT_TRANSPORT,
    OPT_ADDR,
    OPT_EAL,
    OPT_PORT,
    OPT_MTU,
    OPT_BACKEND,
    OPT_THREADS,
    OPT_BATCH,
    OPT_WAIT,
    OPT_WORKERS,
    OPT_LOCAL,
    OPT_JSON,
    OPT_TOP,
    OPT_INFLIGHT,
    OPT_TILED,
    OPT_COUNT,
    OPT_TIMEOUT,
    OPT_QUIET,
    OPT_REFERENCE,
    OPT_NO_REFERENCE,
    OPT_BIND,
    OPT_CLASSES,
    OPT_REUSEPORT,
    OPT_BACKBONE,
    OPT_LINK,
    OPT_FAILOVER,
    OPT_QUEUES,
    OPT_KEY,
    OPT_SERVER_PUB,
    OPT_CLIENT_KEY,
    OPT_INSECURE,
    OPT_RATE_BUNDLE,
};

static int serve_with(spw_server_config *sc, int ready_fd)
{
    spw_server *srv, *lanes[MAX_LANES] = {0};
    int n_lanes = sc->net.queues > 1 ? (int)sc->net.queues : 1;
    int rc = 0;
    /* Queue pairs after the first: servers of their own, each with its
     * serving thread and workers, sharing nothing with the others. */
    /* Every lane's workers run at once: unless told, they split the cores
     * (each lane alone would claim them all and wake threads that have no
     * core to run on). */
    int lane_threads = sc->threads;
    if (lane_threads <= 0 && n_lanes > 1) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        long share = cores / ((long)n_lanes * (sc->workers > 0 ? sc->workers : 1));
        lane_threads = share > 1 ? (int)share : 1;
    }
    for (int q = 0; q < n_lanes && !rc; q++) {
        spw_server_config lc = *sc;
        lc.net.queue = (uint32_t)q;
        lc.threads = lane_threads;
        rc = spw_server_open(&lc, &lanes[q]);
    }
    srv = lanes[0];
    if (ready_fd >= 0) {
        int32_t msg = rc;
        if (write(ready_fd, &msg, sizeof(msg)) != sizeof(msg))
            rc = rc ? rc : SPW_EIO;
        close(ready_fd);
    }
    if (rc) {
        for (int q = 0; q < n_lanes; q++)
            spw_server_close(lanes[q]);
        return spw_cli_fail(rc, "cannot start the server");
    }
    for (int q = 0; q < n_lanes; q++)
        serving[q] = lanes[q];
    struct sigaction sa = {0};
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_stats;
    sigaction(SIGUSR1, &sa, NULL);
    spw_net_addr a;
    if (ready_fd < 0 && spw_server_local_addr(srv, &a) == 0)
        fprintf(stderr, "splitwire: serving on %u.%u.%u.%u:%u\n", a.ip >> 24, (a.ip >> 16) & 255,
                (a.ip >> 8) & 255, a.ip & 255, a.port);
    pthread_t threads[MAX_LANES];
    int started = 1;
    for (int q = 1; q < n_lanes; q++, started++)
        if (pthread_create(&threads[q], NULL, lane_main, lanes[q])) {
            fprintf(stderr, "splitwire serve: cannot start queue pair %d\n", q);
            on_stop(0);
            break;
        }
    rc = spw_server_run(srv);
    for (int q = 1; q < started; q++) {
        void *lrc;
        pthread_join(threads[q], &lrc);
        rc = rc ? rc : (int)(intptr_t)lrc;
    }
    if (started < n_lanes)
        rc = rc ? rc : SPW_EINTERNAL;
    for (int q = 0; q < n_lanes; q++) {
        if (n_lanes > 1)
            fprintf(stderr, "queue pair %d:\n", q);
        spw_server_print_stats(lanes[q], stderr);
        serving[q] = NULL;
    }
    for (int q = 0; q < n_lanes; q++)
        spw_server_close(lanes[q]);
    return rc ? 1 : 0;
}

typedef struct serve_args {
    const char **bundles;
    spw_server_config *sc;
} serve_args;

/* --bundle, up to 16 of them. */
static int serve_bundle(int id, const char *arg, void *ctx)
{
    serve_args *a = ctx;
    if (a->sc->n_bundles == 16) {
        fprintf(stderr, "splitwire serve: at most 16 bundles\n");
        return 2;
    }
    a->bundles[a->sc->n_bundles++] = arg;
    return -1;
}

int spw_cli_serve(int argc, char **argv)
{
    const char *bundles[16];
    spw_server_config sc = {0};
    net_opts no = {0};
    long reuseport = 0, queues = 0;
    bool idle_dispatch = false;
    const char *link = NULL;
    serve_args sa = {bundles, &sc};
    const spw_cli_opt opts[] = {
        SPW_CLI_OPT_FN("bundle", serve_bundle, OPT_BUNDLE, true),
        SPW_CLI_OPT_STR("models", &sc.models_dir),
        SPW_CLI_OPT_STR("transport", &no.transport),
        SPW_CLI_OPT_STR("listen", &no.addr),
        SPW_CLI_OPT_STR("eal", &no.eal),
        SPW_CLI_OPT_STR("dpdk-port", &no.dpdk_port),
        SPW_CLI_OPT_LONG("mtu", &no.mtu, 576, 9000),
        SPW_CLI_OPT_STR("backend", &sc.backend),
        SPW_CLI_OPT_INT("threads", &sc.threads, 0, 256),
        SPW_CLI_OPT_INT("max-batch", &sc.max_batch, 1, 65536),
        SPW_CLI_OPT_INT("plan-batch", &sc.plan_batch, 0, 65536),
        SPW_CLI_OPT_INT("max-wait-us", &sc.max_wait_us, 1, 10000000),
        SPW_CLI_OPT_FLAG("idle-dispatch", &idle_dispatch),
        SPW_CLI_OPT_INT("workers", &sc.workers, 1, 256),
        SPW_CLI_OPT_LONG("reuseport", &reuseport, 1, 256),
        SPW_CLI_OPT_STR("backbone", &sc.backbone),
        SPW_CLI_OPT_STR("link", &link),
        SPW_CLI_OPT_LONG("queues", &queues, 1, MAX_LANES),
        SPW_CLI_OPT_STR("key", &no.keys.key),
        SPW_CLI_OPT_FLAG("insecure", &no.keys.insecure),
        SPW_CLI_OPT_END,
    };
    int operand;
    int prc = spw_cli_parse("splitwire serve", argc, argv, opts, &sa, serve_usage, &operand);
    if (prc >= 0)
        return prc;
    if ((!sc.n_bundles && !sc.backbone) || operand != argc) {
        serve_usage(stderr);
        return 2;
    }
    sc.bundle_dirs = bundles;
    sc.idle_dispatch = idle_dispatch;
    int rc = net_config(&no, true, &sc.net);
    if (rc)
        return rc;
    sc.net.reuseport = (uint32_t)reuseport;
    if (link && spw_net_link_parse(link, &sc.net)) {
        fprintf(stderr, "splitwire serve: --link: %s\n", spw_error_detail());
        return 2;
    }
    char bb[1024];
    if (!sc.backbone) {
        const char *md = sc.models_dir ? sc.models_dir : getenv("SPW_MODEL_DIR");
        struct stat st;
        snprintf(bb, sizeof(bb), "%s/mobilenet_v2_1.0_224.onnx", md && *md ? md : "build/models");
        if (stat(bb, &st) == 0)
            sc.backbone = bb;
    }
    if (sc.backbone) {
        int off;
        spw_eval_read_sidecar(sc.backbone, &sc.backbone_pp, &off);
        sc.image_decode = spw_eval_decode;
    }
    if (queues > 1 && sc.net.transport != SPW_NET_DPDK) {
        fprintf(stderr, "splitwire serve: --queues is for --transport dpdk (over UDP, run\n"
                        "processes with --reuseport)\n");
        return 2;
    }
    sc.net.queues = (uint32_t)queues;
    backend_notice(sc.backend);
    return serve_with(&sc, -1);
}

/* ---- classify ----------------------------------------------------------- */

static void classify_usage(FILE *f)
{
    fprintf(f, "usage: splitwire classify --bundle DIR FILE|DIR ... [options]\n"
               "\n"
               "Encodes each image on this machine and classifies it on a server (or, with\n"
               "--local, runs both halves in this process). Directories are searched for\n"
               ".jpg/.jpeg/.png files; unreadable images are skipped.\n"
               "  --bundle DIR        model bundle\n"
               "  --local             no network: run the server half here\n"
               "  --models DIR        --local: where backbones are\n"
               "  --transport T       udp (default) or dpdk\n"
               "  --server IP:PORT[,IP:PORT...]\n"
               "                      server address (default 127.0.0.1:7878); with several,\n"
               "                      the next is used when one drains or goes silent\n"
               "  --bind IP:PORT      this client's address (default: 0.0.0.0:0 over UDP,\n"
               "                      127.0.0.1:7879 over DPDK)\n"
               "  --eal \"ARGS\"        DPDK EAL arguments (with --transport dpdk)\n"
               "  --mtu N             path MTU (default 1500)\n"
               "  --backend NAME      encoder backend (default auto)\n"
               "  --threads N         backend threads\n"
               "  --tiled             send tiled streams (a lost packet loses one tile)\n"
               "  --link SPEC         emulate a link on this side's transmit (give the server\n"
               "                      the same with serve --link): a preset (nbiot ltem 3g 4g\n"
               "                      wifi 5g wired) or RATE,DELAY[,JITTER[,LOSS]]\n"
               "  --top K             scores per image (default 5)\n"
               "  --inflight N        requests on the wire at once (default 4)\n"
               "  --timeout-ms N      per request (default 2000)\n"
               "  --queues N          DPDK: send over N queue pairs in turn (a server with\n"
               "                      --queues N over net_memif answers on each)\n"
               "  --failover-probes N probes without any reply before a request is sent\n"
               "                      again on a new flow (default 3; 0: only when a\n"
               "                      draining server refuses it)\n"
               "  --rate-bundle DIR   another rate point the client may send with (repeat, up\n"
               "                      to 7; the server must serve every one)\n"
               "  --slo-ms N          per image, the most accurate rate point whose latency,\n"
               "                      predicted from this client's own requests, meets N ms\n"
               "                      (else the fastest); without it, --bundle\n"
               "  --json              one JSON object per image, then a summary\n"
               "  --quiet             summary only\n"
               "  --classes FILE      class table (index, wnid, name, imagenet1k_idx) that says\n"
               "                      each file's truth by its class directory (default:\n"
               "                      classes.tsv in or up to two levels above the first input)\n"
               "  --reference         also run the uncompressed backbone (MODELS/<backbone>.onnx)\n"
               "                      on the same images and compare top-1 (not timed)\n");
    spw_cli_keys_usage(f, false);
}

typedef struct client_opts {
    spw_client_config cc;
    char *server_list; /* --server, cut at the commas; servers point into it */
    long queues;       /* --queues: DPDK queue pairs */
    const char *servers[16];
    net_opts no;
    run_opts ro;
    bool reference;
    const char *link; /* --link: emulated link on this side's transmit */
    const char *rate_bundles[SPW_RATE_POINTS_MAX - 1]; /* --rate-bundle */
    long slo_ms;                                       /* --slo-ms */
} client_opts;

/* The client options that need more than a check: -1 to carry on, else an
 * exit code. */
static int client_opt(int c, const char *arg, void *ctx)
{
    client_opts *co = ctx;
    long v;
    switch (c) {
    case OPT_LOCAL:
        co->cc.local = 1;
        return -1;
    case OPT_TILED:
        co->cc.format = SPW_CODEC_TILED;
        return -1;
    case OPT_RATE_BUNDLE:
        if (co->cc.n_rate_bundles == SPW_RATE_POINTS_MAX - 1) {
            fprintf(stderr, "splitwire: --rate-bundle at most %d times\n", SPW_RATE_POINTS_MAX - 1);
            return 2;
        }
        co->rate_bundles[co->cc.n_rate_bundles++] = arg;
        co->cc.rate_bundles = co->rate_bundles;
        return -1;
    case OPT_ADDR:
        free(co->server_list);
        co->server_list = strdup(arg);
        co->cc.n_servers = 0;
        for (char *save, *tok = co->server_list ? strtok_r(co->server_list, ",", &save) : NULL; tok;
             tok = strtok_r(NULL, ",", &save)) {
            if (co->cc.n_servers == 16) {
                fprintf(stderr, "splitwire: --server takes at most 16 addresses\n");
                return 2;
            }
            co->servers[co->cc.n_servers++] = tok;
        }
        if (!co->cc.n_servers) {
            fprintf(stderr, "splitwire: --server needs an address\n");
            return 2;
        }
        co->no.addr = co->servers[0];
        co->cc.servers = co->servers;
        return -1;
    default: /* OPT_FAILOVER */
        if (!spw_cli_parse_int(arg, 0, 1000, &v)) {
            fprintf(stderr, "splitwire: --failover-probes needs an integer in 0..1000\n");
            return 2;
        }
        co->cc.failover_probes = v ? (int)v : -1;
        return -1;
    }
}

/* ---- the uncompressed backbone beside the split result ------------------- */

/* Top-1 of the whole backbone (the bundle's, from the models directory) on
 * every file, run in this process before the first request so the split
 * path's timings stay clean. NULL, with a note, when the backbone is not there. */
static int *reference_labels(const spw_bundle_info *in, const char *models,
                             const spw_eval_files *fl, bool quiet)
{
    char path[4096];
    spw_backbone_path(models, in->backbone, path, sizeof(path));
    struct stat st;
    if (stat(path, &st) != 0) {
        if (!quiet)
            fprintf(stderr, "splitwire: no %s; the uncompressed backbone is not compared\n", path);
        return NULL;
    }
    int *top1 = calloc((size_t)(fl->n ? fl->n : 1), sizeof(int));
    if (!top1)
        return NULL;
    spw_preprocess pp = {in->resize,
                         in->input_width,
                         in->input_height,
                         {in->mean[0], in->mean[1], in->mean[2]},
                         {in->std[0], in->std[1], in->std[2]}};
    int rc = spw_eval_reference_top1(path, &pp, in->label_offset, NULL, fl, top1);
    if (rc) {
        spw_cli_fail(rc, "running the uncompressed backbone %s (not compared)", path);
        free(top1);
        return NULL;
    }
    return top1;
}

static int classify_with(client_opts *co, int argc, char **argv);

int spw_cli_classify(int argc, char **argv)
{
    client_opts co = {.ro = {.inflight = 4}};
    int rc = classify_with(&co, argc, argv);
    free(co.server_list);
    return rc;
}

static int classify_with(client_opts *co, int argc, char **argv)
{
    const spw_cli_opt opts[] = {
        SPW_CLI_OPT_STR("bundle", &co->cc.bundle_dir),
        SPW_CLI_OPT_STR("models", &co->cc.models_dir),
        SPW_CLI_OPT_FN("local", client_opt, OPT_LOCAL, false),
        SPW_CLI_OPT_STR("transport", &co->no.transport),
        SPW_CLI_OPT_FN("server", client_opt, OPT_ADDR, true),
        SPW_CLI_OPT_STR("eal", &co->no.eal),
        SPW_CLI_OPT_STR("bind", &co->no.bind),
        SPW_CLI_OPT_STR("classes", &co->ro.classes),
        SPW_CLI_OPT_LONG("mtu", &co->no.mtu, 576, 9000),
        SPW_CLI_OPT_STR("backend", &co->cc.backend),
        SPW_CLI_OPT_INT("threads", &co->cc.threads, 0, 256),
        SPW_CLI_OPT_FN("tiled", client_opt, OPT_TILED, false),
        SPW_CLI_OPT_INT("top", &co->cc.topk, 1, SPW_TOPK_MAX),
        SPW_CLI_OPT_INT("inflight", &co->ro.inflight, 1, 256),
        SPW_CLI_OPT_INT("timeout-ms", &co->cc.timeout_ms, 1, 600000),
        SPW_CLI_OPT_FLAG("json", &co->ro.json),
        SPW_CLI_OPT_FLAG("quiet", &co->ro.quiet),
        SPW_CLI_OPT_FLAG("reference", &co->reference),
        SPW_CLI_OPT_STR("link", &co->link),
        SPW_CLI_OPT_FN("failover-probes", client_opt, OPT_FAILOVER, true),
        SPW_CLI_OPT_LONG("queues", &co->queues, 1, 4),
        SPW_CLI_OPT_STR("server-pub", &co->no.keys.server_pub),
        SPW_CLI_OPT_STR("client-key", &co->no.keys.key),
        SPW_CLI_OPT_FLAG("insecure", &co->no.keys.insecure),
        SPW_CLI_OPT_FN("rate-bundle", client_opt, OPT_RATE_BUNDLE, true),
        SPW_CLI_OPT_LONG("slo-ms", &co->slo_ms, 1, 600000),
        SPW_CLI_OPT_END,
    };
    int operand;
    int prc = spw_cli_parse("splitwire classify", argc, argv, opts, co, classify_usage, &operand);
    if (prc >= 0)
        return prc;
    if (!co->cc.bundle_dir || operand >= argc) {
        classify_usage(stderr);
        return 2;
    }
    if (!co->cc.local) {
        int rc = net_config(&co->no, false, &co->cc.net);
        if (rc)
            return rc;
        if (co->link && spw_net_link_parse(co->link, &co->cc.net)) {
            fprintf(stderr, "splitwire classify: --link: %s\n", spw_error_detail());
            return 2;
        }
        co->cc.net.queues = (uint32_t)co->queues;
    }
    co->cc.slo_ms = (double)co->slo_ms;
    /* Each result line reaches a file or pipe as soon as it is printed. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    spw_eval_files fl = {0};
    for (int i = operand; i < argc; i++)
        list_collect(&fl, argv[i]);
    co->ro.first_input = argv[operand];
    backend_notice(co->cc.backend);
    spw_client *client;
    int rc = spw_client_open(&co->cc, &client);
    if (rc) {
        spw_eval_files_free(&fl);
        return spw_cli_fail(rc, "cannot start the client");
    }
    if (!co->cc.local &&
        (rc = spw_client_ping(client, co->cc.timeout_ms ? co->cc.timeout_ms : 2000, NULL))) {
        spw_client_close(client);
        spw_eval_files_free(&fl);
        return spw_cli_fail(rc, "server %s unreachable", co->cc.net.peer);
    }
    int *ref = NULL;
    co->ro.client = client;
    if (co->reference)
        co->ro.reference = ref =
            reference_labels(spw_client_bundle(client), co->cc.models_dir, &fl, co->ro.json);
    rc = run_images(client, &fl, &co->ro,
                    co->cc.local ? "local" : spw_net_transport_name(co->cc.net.transport));
    free(ref);
    spw_client_close(client);
    spw_eval_files_free(&fl);
    return rc;
}

/* ---- demo --------------------------------------------------------------- */

static void demo_usage(FILE *f)
{
    fprintf(f, "usage: splitwire demo [--transport auto|dpdk|udp] [--count N] [--bundle DIR]\n"
               "                      [--models DIR] [--json]\n"
               "\n"
               "Starts a server and a client (DPDK net_memif between two processes with\n"
               "--no-huge, or kernel UDP on loopback where DPDK cannot start) and classifies\n"
               "Imagenette val images from $SPLITWIRE_SHARED (default ../shared).\n"
               "  --transport T   auto (default: DPDK, else UDP), dpdk (no fallback), udp\n"
               "  --count N       images, one per class in turn (default 10)\n"
               "  --bundle DIR    default: models/default, else the untrained test bundle\n"
               "  --models DIR    where backbones are\n"
               "  --no-reference  do not run the uncompressed backbone on the same images\n"
               "                  for comparison (it runs before the client, not timed)\n");
}

/* Forks a server child; returns its pid after it reported a successful
 * start, or -1 (its error already printed by the child). */
static pid_t spawn_server(spw_server_config *sc)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(fds[0]);
        /* The server's own log goes to stderr; its stdout stays quiet. */
        _exit(serve_with(sc, fds[1]));
    }
    close(fds[1]);
    int32_t st = -1;
    ssize_t n = read(fds[0], &st, sizeof(st));
    close(fds[0]);
    if (n != sizeof(st) || st != 0) {
        int status;
        waitpid(pid, &status, 0);
        return -1;
    }
    return pid;
}

static void stop_server(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    int status;
    waitpid(pid, &status, 0);
}

int spw_cli_demo(int argc, char **argv)
{
    const char *transport = "auto", *bundle = NULL, *models = NULL;
    long count = 10;
    bool no_reference = false, tiled = false;
    run_opts ro = {.inflight = 4};
    const spw_cli_opt opts[] = {
        SPW_CLI_OPT_STR("transport", &transport),
        SPW_CLI_OPT_LONG("count", &count, 1, 100000),
        SPW_CLI_OPT_STR("bundle", &bundle),
        SPW_CLI_OPT_STR("models", &models),
        SPW_CLI_OPT_FLAG("json", &ro.json),
        SPW_CLI_OPT_FLAG("tiled", &tiled),
        SPW_CLI_OPT_FLAG("no-reference", &no_reference),
        SPW_CLI_OPT_END,
    };
    int operand;
    int prc = spw_cli_parse("splitwire demo", argc, argv, opts, NULL, demo_usage, &operand);
    if (prc >= 0)
        return prc;
    bool reference = !no_reference;
    spw_codec_format format = tiled ? SPW_CODEC_TILED : SPW_CODEC_PLAIN;
    if (operand != argc ||
        (strcmp(transport, "auto") && strcmp(transport, "dpdk") && strcmp(transport, "udp"))) {
        demo_usage(stderr);
        return 2;
    }
    struct stat st;
    int rc = 0;
    bool untrained = false;
    if (!bundle) {
        if (stat("models/default/manifest.json", &st) == 0) {
            bundle = "models/default";
        } else {
            bundle = "tests/vectors/bundle/tiny";
            models = models ? models : "tests/vectors/bundle/models";
            untrained = true;
        }
    }
    /* A handful of val images, spread evenly over the sorted list so every
     * class shows up. */
    char val[1024];
    snprintf(val, sizeof(val), "%s/data/imagenette2-224/val", shared_dir());
    spw_eval_files fl;
    if (spw_eval_files_collect(val, &fl) || fl.n == 0) {
        fprintf(stderr, "splitwire demo: no images at %s (set SPLITWIRE_SHARED)\n", val);
        return 1;
    }
    spw_eval_files_limit(&fl, (int)count);
    backend_notice(NULL);
    if (untrained && !ro.json)
        printf("note: no trained bundle at models/default; using the untrained test bundle %s,\n"
               "      so the pipeline runs end to end but its labels are not meaningful.\n\n",
               bundle);

    const char *bundles[1] = {bundle};
    /* Both processes share this machine, and DPDK keeps a core busy polling:
     * one inference thread each. */
    spw_server_config sc = {.bundle_dirs = bundles,
                            .n_bundles = 1,
                            .models_dir = models,
                            .max_batch = 4,
                            .max_wait_us = 500,
                            .threads = 1};
    spw_client_config cc = {
        .bundle_dir = bundle, .models_dir = models, .format = format, .threads = 1};
    /* Both halves are ours: a key pair made for this run, never written. */
    uint8_t key_priv[32], key_pub[32];
    if ((rc = spw_net_keypair(key_priv, key_pub))) {
        spw_eval_files_free(&fl);
        return spw_cli_fail(rc, "making a key pair");
    }
    const char *used = NULL;
    pid_t server = -1;
    spw_client *client = NULL;
    char sock[128], s_eal[1024], c_eal[1024];
    const char *pmd = spw_cli_dpdk_pmd_dir();
    if (strcmp(transport, "udp")) {
        if (!spw_net_transport_available(SPW_NET_DPDK) || !pmd) {
            fprintf(stderr, "splitwire demo: DPDK %s; using kernel UDP\n",
                    pmd ? "is not built in" : "PMD plugins not found");
        } else {
            int pid = (int)getpid();
            snprintf(sock, sizeof(sock), "/tmp/spw-demo-%d.sock", pid);
            const char *fmt = "--no-huge -m 512 --no-pci --no-telemetry --file-prefix spwdemo%c%d "
                              "-d %s/librte_mempool_ring.so -d %s/librte_net_memif.so "
                              "--vdev=net_memif0,role=%s,socket=%s,socket-abstract=no";
            snprintf(s_eal, sizeof(s_eal), fmt, 's', pid, pmd, pmd, "server", sock);
            snprintf(c_eal, sizeof(c_eal), fmt, 'c', pid, pmd, pmd, "client", sock);
            sc.net = (spw_net_config){.transport = SPW_NET_DPDK,
                                      .local = "127.0.98.2:7878",
                                      .eal_args = s_eal,
                                      .link_wait_ms = 3000,
                                      .private_key = key_priv};
            cc.net = (spw_net_config){.transport = SPW_NET_DPDK,
                                      .local = "127.0.98.1:7879",
                                      .peer = "127.0.98.2:7878",
                                      .eal_args = c_eal,
                                      .link_wait_ms = 3000,
                                      .server_public_key = key_pub};
            server = spawn_server(&sc);
            if (server > 0 && (rc = spw_client_open(&cc, &client)) == 0) {
                used = "DPDK net_memif";
            } else {
                if (server > 0)
                    spw_cli_fail(rc, "DPDK client");
                stop_server(server);
                server = -1;
                if (!strcmp(transport, "dpdk")) {
                    unlink(sock);
                    return 1;
                }
                fprintf(stderr, "splitwire demo: DPDK could not start; using kernel UDP\n");
            }
        }
    }
    if (!used) {
        /* Port 0 would leave the client guessing; pick one from the pid. */
        char addr[32];
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", 20000 + (int)getpid() % 20000);
        sc.net = (spw_net_config){.transport = SPW_NET_UDP, .local = addr, .private_key = key_priv};
        cc.net = (spw_net_config){.transport = SPW_NET_UDP,
                                  .local = "127.0.0.1:0",
                                  .peer = addr,
                                  .server_public_key = key_pub};
        server = spawn_server(&sc);
        if (server < 0) {
            fprintf(stderr, "splitwire demo: the server did not start\n");
            spw_eval_files_free(&fl);
            return 1;
        }
        if ((rc = spw_client_open(&cc, &client))) {
            stop_server(server);
            spw_eval_files_free(&fl);
            return spw_cli_fail(rc, "cannot start the client");
        }
        used = "kernel UDP";
    }
    int *ref = NULL;
    if ((rc = spw_client_ping(client, 3000, NULL))) {
        rc = spw_cli_fail(rc, "server unreachable");
    } else {
        if (reference && !untrained)
            ro.reference = ref = reference_labels(spw_client_bundle(client), models, &fl, ro.json);
        rc = run_images(client, &fl, &ro, used);
    }
    free(ref);
    spw_client_close(client);
    stop_server(server);
    if (server > 0 && !strcmp(used, "DPDK net_memif"))
        unlink(sock);
    spw_eval_files_free(&fl);
    return rc;
}

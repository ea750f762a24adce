/* splitwire bench e2e: end-to-end latency of split inference against codec
 * offload (the client sends a JPEG/WebP/AVIF or the original file, the
 * server decodes it and runs the whole backbone) and local execution, on the
 * same images, over an emulated link applied to both directions. The server
 * is a second process (forked), the transport the real one. */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tools/cli/cli.h"
#include "tools/eval/eval.h"

#define MAX_OF(a, b) ((a) > (b) ? (a) : (b))

#define MAX_BUNDLES 16
#define MAX_LINKS 16
#define MAX_METHODS (MAX_BUNDLES + 6)

enum { M_BUNDLE, M_CODEC, M_ORIGINAL, M_LOCAL, M_ADAPT };

typedef struct method {
    int kind;
    const char *bundle;   /* M_BUNDLE */
    spw_eval_codec codec; /* M_CODEC */
    int quality;
    char name[160];
} method;

typedef struct e2e_opts {
    const char *data, *models, *backbone, *backend, *csv;
    const char *bundles[MAX_BUNDLES];
    int n_bundles;
    const char *links[MAX_LINKS];
    int n_links;
    bool want[4];       /* methods asked with --method (none: all) */
    bool want_codec[4]; /* ... and which codecs */
    bool any_method;
    long count, quality, timeout_ms, threads;
    bool json, quiet;
    bool adapt;        /* --adapt: one more method, a rate point per request */
    long slo_ms;       /* its latency objective */
    const char *trace; /* --adapt-trace FILE: one line per adaptive request */
} e2e_opts;

/* One request's times (ms) and what it cost on the wire. */
typedef struct sample {
    double pre, enc, ent, net, srv, total;
    double bytes, frames, wire_bytes;
    int top1, status;
} sample;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: splitwire bench e2e [options]\n"
            "\n"
            "End-to-end latency per image, one request at a time, of every method on the same\n"
            "images: split inference with each bundle, codec offload (the client encodes the\n"
            "image, the server decodes it and runs the whole backbone), the original file\n"
            "offloaded, and the whole backbone run locally. A server process is started per\n"
            "link; both sides shape their transmit with the same emulated link.\n"
            "  --data DIR       images (default $SPLITWIRE_SHARED/data/imagenette2-224/val)\n"
            "  --count N        images, spread over the classes (default 50)\n"
            "  --bundle DIR     a bundle (repeat; default models/default)\n"
            "  --method M       bundle, jpeg, webp, avif, original, local or adapt\n"
            "                   (repeat; default: all but adapt)\n"
            "  --quality Q      codec quality 1..100 (default per codec: the lowest within\n"
            "                   1 top-1 point of the backbone in docs/eval-full.csv)\n"
            "  --link SPEC      emulated link, repeat (default 4g): a preset (nbiot ltem 3g\n"
            "                   4g wifi 5g wired) or RATE,DELAY[,JITTER[,LOSS]], e.g. 1mbit,20ms;\n"
            "                   rate steps after it: ';RATE@TIME' from the server's start,\n"
            "                   e.g. '20mbit,20ms;1mbit@10s;20mbit@20s'; 'none' for no emulation\n"
            "  --backbone FILE  the whole backbone (default MODELS/mobilenet_v2_1.0_224.onnx)\n"
            "  --models DIR     where backbones are (default $SPW_MODEL_DIR or build/models)\n"
            "  --backend NAME   inference backend on both sides (default auto)\n"
            "  --threads N      backend threads per side\n"
            "  --timeout-ms N   per request (default 60000)\n"
            "  --json           one JSON object per row on stdout\n"
            "  --csv FILE       the rows as CSV\n"
            "  --quiet          no progress line\n"
            "  --adapt          one more method: one client holding every bundle given\n"
            "                   (at most 8) picks per request the one with the best top-1\n"
            "                   in its manifest whose latency, predicted from the path and\n"
            "                   compute its own requests measured, meets --slo-ms N (else\n"
            "                   the fastest); step the link within a run with ';RATE@TIME'\n"
            "  --adapt-trace F  CSV, one line per adaptive request\n"
            "Stages (ms, p50 and p99): pre = read and decode the file, resize and normalise;\n"
            "enc = encoder network (bundle), image codec (offload) or the whole backbone\n"
            "(local); ent = rANS coding; net = round trip minus server time (serialisation,\n"
            "link delay, stacks); srv = server from arrival to reply (entropy decode, decoder\n"
            "and tail, or image decode and backbone, with batching wait). frames and wire\n"
            "bytes per request count both directions, ACKs and resends included.\n");
}

/* ---- defaults ------------------------------------------------------------ */

static const char *shared_dir(void)
{
    const char *s = getenv("SPLITWIRE_SHARED");
    return s && *s ? s : "../shared";
}

static const char *models_dir(const e2e_opts *o)
{
    if (o->models)
        return o->models;
    const char *e = getenv("SPW_MODEL_DIR");
    return e && *e ? e : "build/models";
}

/* The lowest quality of each codec whose top-1 is within one point of the
 * backbone's in docs/eval-full.csv; the values measured there when the file
 * is absent. */
static void default_qualities(int q[SPW_EVAL_NCODECS])
{
    q[SPW_EVAL_JPEG] = 70;
    q[SPW_EVAL_WEBP] = 80;
    q[SPW_EVAL_AVIF] = 80;
    FILE *f = fopen("docs/eval-full.csv", "r");
    if (!f)
        return;
    char line[512];
    double base = NAN, top1[SPW_EVAL_NCODECS][101];
    for (int c = 0; c < SPW_EVAL_NCODECS; c++)
        for (int k = 0; k <= 100; k++)
            top1[c][k] = NAN;
    while (fgets(line, sizeof(line), f)) {
        char meth[32], setting[64];
        double images, bytes, bpp, t1;
        if (sscanf(line, "%31[^,],%63[^,],%lf,%lf,%lf,%lf", meth, setting, &images, &bytes, &bpp,
                   &t1) != 6)
            continue;
        spw_eval_codec c;
        if (!strcmp(meth, "backbone"))
            base = t1;
        else if (!spw_eval_codec_parse(meth, &c)) {
            int qq = atoi(setting);
            if (qq >= 1 && qq <= 100)
                top1[c][qq] = t1;
        }
    }
    fclose(f);
    if (isnan(base))
        return;
    for (int c = SPW_EVAL_JPEG; c < SPW_EVAL_NCODECS; c++)
        for (int k = 1; k <= 100; k++)
            if (!isnan(top1[c][k]) && top1[c][k] >= base - 0.01) {
                q[c] = k;
                break;
            }
}

/* ---- the two endpoints ---------------------------------------------------- */

/* Every server and client this bench starts is configured here, and only
 * here: transport, addresses, link and anything a deployment adds (keys). */
static int e2e_endpoints(const e2e_opts *o, const char *link, uint64_t epoch, spw_server_config *sc,
                         spw_net_config *cnet, const char *server_addr)
{
    spw_net_config shaped = {0};
    if (link && strcmp(link, "none") && spw_net_link_parse(link, &shaped))
        return spw_cli_fail(SPW_EINVAL, "--link");
    /* Protocol 2 as deployed: one server key pair for the whole run (the
     * forked server inherits it), a fresh session per client transport. */
    static uint8_t server_priv[32], server_pub[32];
    static bool have_keys;
    if (!have_keys) {
        int rc = spw_net_keypair(server_priv, server_pub);
        if (rc)
            return spw_cli_fail(rc, "bench e2e: server key");
        have_keys = true;
    }
    spw_net_config base = {.transport = SPW_NET_UDP,
                           .request_timeout_ms = (uint32_t)o->timeout_ms,
                           .shape_rate_bps = shaped.shape_rate_bps,
                           .shape_delay_us = shaped.shape_delay_us,
                           .shape_jitter_us = shaped.shape_jitter_us,
                           .shape_loss = shaped.shape_loss,
                           .shape_nsteps = shaped.shape_nsteps,
                           /* Both processes step the link at the same moments. */
                           .shape_epoch_ns = epoch};
    memcpy(base.shape_step_ms, shaped.shape_step_ms, sizeof(base.shape_step_ms));
    memcpy(base.shape_step_bps, shaped.shape_step_bps, sizeof(base.shape_step_bps));
    uint64_t slowest = shaped.shape_rate_bps;
    for (uint32_t i = 0; i < shaped.shape_nsteps; i++)
        if (shaped.shape_step_bps[i] && (!slowest || shaped.shape_step_bps[i] < slowest))
            slowest = shaped.shape_step_bps[i];
    /* The protocol times probes from the send call, and Karn's rule takes no
     * RTT sample from a probed request: on a path slower than the default
     * 20 ms RTO every request would be probed and the RTO never learnt. A
     * deployment that knows its link sets the RTO floor from it, as here:
     * 1.5 x (both delays with jitter + 16 KiB at the slowest rate) + 10 ms. */
    double ser_us = slowest ? 16384.0 * 8 / (double)slowest * 1e6 : 0;
    double floor_us =
        1.5 * (2.0 * (shaped.shape_delay_us + shaped.shape_jitter_us) + ser_us) + 10000;
    base.rto_us = (uint32_t)MAX_OF(floor_us, 20000);
    base.min_rto_us = (uint32_t)MAX_OF(floor_us, 5000);
    /* A partial message is dropped after reasm_timeout_ms (500 ms by
     * default): on a slow link a whole image takes longer than that to
     * arrive. Three RTO floors, and as long for kept answers. */
    base.reasm_timeout_ms = (uint32_t)MAX_OF(3 * floor_us / 1000, 500);
    base.retain_ms = (uint32_t)MAX_OF(3 * floor_us / 1000, 1000);
    if (sc) {
        *sc = (spw_server_config){.bundle_dirs = o->bundles,
                                  .n_bundles = o->n_bundles,
                                  .models_dir = o->models,
                                  .backend = o->backend,
                                  .threads = (int)o->threads,
                                  .max_batch = 1,
                                  .max_wait_us = 1,
                                  .backbone = o->backbone,
                                  .image_decode = spw_eval_decode,
                                  .net = base};
        sc->net.local = "127.0.0.1:0";
        sc->net.seed = 2;
        sc->net.private_key = server_priv;
        int off;
        spw_eval_read_sidecar(o->backbone, &sc->backbone_pp, &off);
    }
    if (cnet) {
        *cnet = base;
        cnet->local = "127.0.0.1:0";
        cnet->peer = server_addr;
        cnet->seed = 1;
        cnet->server_public_key = server_pub;
    }
    return 0;
}

static spw_server *volatile child_server;

static void child_stop(int sig)
{
    (void)sig;
    if (child_server)
        spw_server_stop(child_server);
}

/* Forks the server; its bound address comes back through a pipe. -1 when
 * it did not start (its error printed by the child). */
static pid_t start_server(const spw_server_config *sc, char *addr, size_t size)
{
    int fds[2];
    if (pipe(fds))
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        /* The server goes when the bench does, however it ends. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        spw_server *srv;
        int32_t msg[2] = {spw_server_open(sc, &srv), 0};
        spw_net_addr a = {0};
        if (!msg[0] && !(msg[0] = spw_server_local_addr(srv, &a)))
            msg[1] = a.port;
        if (msg[0])
            spw_cli_fail(msg[0], "bench e2e: server");
        struct sigaction sa = {0};
        sa.sa_handler = child_stop;
        sigaction(SIGTERM, &sa, NULL);
        child_server = msg[0] ? NULL : srv;
        ssize_t w = write(fds[1], msg, sizeof(msg));
        close(fds[1]);
        if (msg[0] || w != sizeof(msg))
            _exit(1);
        spw_server_run(srv);
        child_server = NULL;
        spw_server_close(srv);
        _exit(0);
    }
    close(fds[1]);
    int32_t msg[2] = {-1, 0};
    ssize_t n = read(fds[0], msg, sizeof(msg));
    close(fds[0]);
    if (n != sizeof(msg) || msg[0]) {
        waitpid(pid, NULL, 0);
        return -1;
    }
    snprintf(addr, size, "127.0.0.1:%d", msg[1]);
    return pid;
}

static void stop_server(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
}

/* ---- statistics ------------------------------------------------------------ */

typedef struct row {
    const char *link;
    const method *m;
    int n, ok, lost;
    double bytes, frames, wire; /* means over answered requests */
    double p50[6], p99[6];      /* pre enc ent net srv total */
    double top1, agree;
    int misses; /* adaptive rows: requests over the objective; else -1 */
} row;

static const char *const stage_names[6] = {"pre", "enc", "ent", "net", "srv", "total"};

static void summarise(row *r, const sample *s, int n, const spw_eval_classes *cl,
                      const spw_eval_files *fl, const int *ref)
{
    double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
    r->n = n;
    r->ok = 0;
    r->misses = -1;
    double bytes = 0, frames = 0, wire = 0;
    long judged = 0, right = 0, compared = 0, agreed = 0;
    for (int i = 0; i < n; i++) {
        if (s[i].status)
            continue;
        r->ok++;
        bytes += s[i].bytes;
        frames += s[i].frames;
        wire += s[i].wire_bytes;
        int truth = cl ? spw_eval_truth(cl, fl->paths[i]) : -1;
        if (truth >= 0) {
            judged++;
            right += s[i].top1 == truth;
        }
        if (ref && ref[i] >= 0) {
            compared++;
            agreed += s[i].top1 == ref[i];
        }
    }
    r->lost = n - r->ok;
    r->bytes = r->ok ? bytes / r->ok : NAN;
    r->frames = r->ok ? frames / r->ok : NAN;
    r->wire = r->ok ? wire / r->ok : NAN;
    r->top1 = judged ? (double)right / (double)judged : NAN;
    r->agree = compared ? (double)agreed / (double)compared : NAN;
    for (int k = 0; k < 6; k++) {
        int m = 0;
        for (int i = 0; v && i < n; i++)
            if (!s[i].status) {
                const double *f = &s[i].pre;
                v[m++] = f[k];
            }
        spw_cli_stats st;
        if (v)
            spw_cli_stats_of(v, m, &st);
        r->p50[k] = v ? spw_cli_percentile(v, m, 50) : NAN;
        r->p99[k] = v ? st.p99 : NAN;
    }
    free(v);
}

/* ---- progress -------------------------------------------------------------- */

static void progress(const e2e_opts *o, const char *link, const method *m, int done, int total)
{
    if (o->quiet || done < 1)
        return;
    bool tty = isatty(2);
    if (!tty && done && done < total)
        return;
    fprintf(stderr, "%slink %-16s %-28s %d/%d%s", tty ? "\r" : "", link, m->name, done, total,
            tty ? "   " : "\n");
    if (tty && done == total)
        fputc('\n', stderr);
    fflush(stderr);
}

/* ---- methods --------------------------------------------------------------- */

static void debug_stats(const char *what, spw_net *net, spw_client *client)
{
    if (!getenv("SPW_E2E_DEBUG"))
        return;
    spw_net_stats ns;
    if (client)
        spw_client_net_stats(client, &ns);
    else
        spw_net_stats_get(net, &ns);
    fprintf(stderr,
            "%s: tx %llu rx %llu retx %llu probes %llu nacks_rx %llu acks_rx %llu acks_tx %llu "
            "dup %llu srtt %u rto %u\n",
            what, (unsigned long long)ns.tx_packets, (unsigned long long)ns.rx_packets,
            (unsigned long long)ns.retransmits, (unsigned long long)ns.probes,
            (unsigned long long)ns.nacks_received, (unsigned long long)ns.acks_received,
            (unsigned long long)ns.acks_sent, (unsigned long long)ns.rx_duplicate, ns.srtt_us,
            ns.rto_us);
}

static void net_delta(const spw_net_stats *a, const spw_net_stats *b, sample *s)
{
    s->frames = (double)((b->tx_packets - a->tx_packets) + (b->rx_packets - a->rx_packets));
    s->wire_bytes = (double)((b->tx_bytes - a->tx_bytes) + (b->rx_bytes - a->rx_bytes));
}

/* One bundle request's sample from the client's result: load is the time
 * spent reading the file, counted in preprocessing and the total; a and b
 * are the client's transport counters before and after it. */
static void take_result(sample *s, const spw_result *r, double load, const spw_net_stats *a,
                        const spw_net_stats *b)
{
    s->pre = load + r->ms_preprocess;
    s->enc = r->ms_encode;
    s->ent = r->ms_entropy;
    s->net = r->ms_network;
    s->srv = r->ms_server;
    s->total = load + r->ms_total;
    s->bytes = (double)r->bytes;
    s->top1 = r->k > 0 ? r->top[0].label : -1;
    net_delta(a, b, s);
}

/* Split inference through the client runtime. */
static int run_bundle(const e2e_opts *o, const method *m, const spw_net_config *cnet,
                      const char *link, const spw_eval_files *fl, sample *out)
{
    spw_client_config cc = {.bundle_dir = m->bundle,
                            .backend = o->backend,
                            .threads = (int)o->threads,
                            .topk = 1,
                            .timeout_ms = (int)o->timeout_ms,
                            .max_inflight = 1,
                            .net = *cnet};
    spw_client *client;
    int rc = spw_client_open(&cc, &client);
    if (rc)
        return spw_cli_fail(rc, "bench e2e: client for %s", m->bundle);
    for (int i = -1; i < fl->n; i++) {
        /* Image -1 is the first file again, untimed: plans and the RTT warm up. */
        sample *s = i >= 0 ? &out[i] : &(sample){0};
        memset(s, 0, sizeof(*s));
        s->top1 = -1;
        uint64_t t0 = spw_cli_now_ns();
        spw_image img;
        if ((s->status = spw_image_load(fl->paths[i < 0 ? 0 : i], &img)))
            continue;
        double load = spw_cli_ms_since(t0);
        spw_net_stats a, b;
        spw_client_net_stats(client, &a);
        spw_result r;
        s->status = spw_client_classify(client, &img, &r);
        spw_client_net_stats(client, &b);
        spw_image_release(&img);
        if (!s->status)
            take_result(s, &r, load, &a, &b);
        progress(o, link, m, i + 1, fl->n);
    }
    debug_stats(m->name, NULL, client);
    spw_client_close(client);
    return 0;
}

/* Waits for the answer to request id; fills status, server and network
 * times and the top-1. */
static void await_answer(spw_net *net, uint64_t id, uint64_t t_sent, long timeout_ms, sample *s)
{
    uint64_t deadline = t_sent + (uint64_t)timeout_ms * 1000000ull;
    s->status = SPW_ETIMEDOUT;
    while (spw_cli_now_ns() < deadline) {
        if (spw_net_poll(net, 10000) < 0)
            break;
        spw_net_msg *msgs[8];
        int n = spw_net_recv(net, msgs, 8);
        bool done = false;
        for (int k = 0; k < n; k++) {
            spw_net_msg *m = msgs[k];
            if (m->request_id == id && !done &&
                (m->type == SPW_NET_RESULT || m->type == SPW_NET_ERROR || m->status)) {
                double rtt = spw_cli_ms_since(t_sent);
                unsigned char buf[512];
                size_t len = spw_net_msg_copy(net, m, buf, sizeof(buf));
                spw_result r = {0};
                uint32_t server_us = 0;
                if (m->status)
                    s->status = m->status;
                else if (m->type == SPW_NET_RESULT)
                    s->status = spw_result_unpack(buf, len, &r, &server_us);
                else {
                    int32_t st = SPW_EPROTO;
                    if (len >= 4)
                        memcpy(&st, buf, 4);
                    s->status = st < 0 ? st : SPW_EPROTO;
                    if (len > 4)
                        spw_error_set(s->status, "server: %.*s", (int)(len - 4), buf + 4);
                }
                s->srv = server_us / 1000.0;
                s->net = rtt > s->srv ? rtt - s->srv : 0;
                s->top1 = !s->status && r.k > 0 ? r.top[0].label : -1;
                done = true;
            }
            spw_net_msg_free(net, m);
        }
        if (done)
            return;
    }
}

/* Codec offload (and the original file): the image itself crosses the link
 * as an image request. */
static int run_offload(const e2e_opts *o, const method *m, spw_net *net, const char *link,
                       const spw_eval_files *fl, sample *out, uint64_t *next_id)
{
    bool warned = false;
    for (int i = -1; i < fl->n; i++) {
        sample *s = i >= 0 ? &out[i] : &(sample){0};
        memset(s, 0, sizeof(*s));
        s->top1 = -1;
        uint64_t t0 = spw_cli_now_ns();
        size_t len = 0;
        void *fdata = NULL;
        if (spw_cli_read_file(fl->paths[i < 0 ? 0 : i], &fdata, &len)) {
            s->status = SPW_EIO;
            continue;
        }
        unsigned char *data = fdata;
        if (m->kind == M_CODEC) {
            spw_image img;
            s->status = spw_eval_decode(data, len, &img);
            free(data);
            data = NULL;
            s->pre = spw_cli_ms_since(t0);
            uint64_t t1 = spw_cli_now_ns();
            if (!s->status) {
                s->status = spw_eval_encode(m->codec, m->quality, &img, &data, &len);
                spw_image_release(&img);
            }
            s->enc = spw_cli_ms_since(t1);
        } else {
            s->pre = spw_cli_ms_since(t0);
        }
        if (!s->status) {
            spw_net_stats a, b;
            spw_net_stats_get(net, &a);
            uint64_t id = (*next_id)++, t_sent = spw_cli_now_ns();
            s->status = spw_image_request_send(net, id, data, len, (uint32_t)o->timeout_ms);
            if (!s->status)
                await_answer(net, id, t_sent, o->timeout_ms, s);
            spw_net_stats_get(net, &b);
            net_delta(&a, &b, s);
            s->bytes = (double)len;
        }
        free(data);
        s->total = spw_cli_ms_since(t0);
        if (s->status && !warned) {
            fprintf(stderr, "\nsplitwire bench e2e: %s on %s: %s: %s\n", m->name,
                    fl->paths[i < 0 ? 0 : i], spw_strerror(s->status), spw_error_detail());
            warned = true;
        }
        progress(o, link, m, i + 1, fl->n);
    }
    debug_stats(m->name, net, NULL);
    return 0;
}

/* The whole backbone in this process, no network. */
typedef struct local_bb {
    spw_model *model;
    spw_plan *plan;
    spw_preprocess pp;
    int w, h, classes, offset;
    float *in, *out;
} local_bb;

static void local_close(local_bb *l)
{
    free(l->in);
    free(l->out);
    spw_plan_free(l->plan);
    spw_model_free(l->model);
}

static int local_open(const e2e_opts *o, local_bb *l)
{
    memset(l, 0, sizeof(*l));
    int rc = spw_model_load(o->backbone, &l->model);
    spw_tensor in, od;
    if (rc || (rc = spw_model_input(l->model, 0, &in, NULL)))
        goto fail;
    if (in.ndim != 4 || in.dims[1] != 3 || in.dims[2] <= 0 || in.dims[3] <= 0) {
        rc = spw_error_set(SPW_ESHAPE, "%s: input is not [1, 3, H, W]", o->backbone);
        goto fail;
    }
    l->h = (int)in.dims[2];
    l->w = (int)in.dims[3];
    /* The same convention as the server's image requests. */
    float q = 128 / 255.f;
    l->pp = (spw_preprocess){l->w > l->h ? l->w : l->h, l->w, l->h, {q, q, q}, {q, q, q}};
    int off = -1;
    spw_eval_read_sidecar(o->backbone, &l->pp, &off);
    spw_plan_options po = {.backend = o->backend, .batch = 1, .threads = (int)o->threads};
    if ((rc = spw_plan_create(l->model, &po, &l->plan)) || (rc = spw_plan_output(l->plan, 0, &od)))
        goto fail;
    l->classes = (int)spw_tensor_numel(&od);
    l->offset = l->classes == 1001 ? 1 : 0;
    l->in = malloc(sizeof(float) * 3 * (size_t)l->w * (size_t)l->h);
    l->out = malloc(sizeof(float) * (size_t)l->classes);
    if (!l->in || !l->out) {
        rc = spw_error_set(SPW_ENOMEM, "out of memory");
        goto fail;
    }
    return 0;
fail:
    local_close(l);
    return rc;
}

static int local_one(local_bb *l, const char *path, sample *s)
{
    uint64_t t0 = spw_cli_now_ns();
    spw_image img;
    int rc = spw_image_load(path, &img);
    if (!rc)
        rc = spw_image_to_tensor(&img, &l->pp, l->in);
    spw_image_release(&img);
    s->pre = spw_cli_ms_since(t0);
    uint64_t t1 = spw_cli_now_ns();
    if (!rc) {
        spw_tensor ti = {SPW_F32, SPW_LAYOUT_NCHW, 4, {1, 3, l->h, l->w}, l->in};
        spw_tensor to = {SPW_F32, SPW_LAYOUT_NCHW, 2, {1, l->classes}, l->out};
        rc = spw_plan_run(l->plan, &ti, 1, &to, 1);
    }
    s->enc = spw_cli_ms_since(t1);
    s->total = spw_cli_ms_since(t0);
    s->status = rc;
    s->top1 = -1;
    if (!rc) {
        spw_result r = {0};
        spw_topk(l->out, l->classes, l->offset, 1, &r);
        s->top1 = r.top[0].label;
    }
    return rc;
}

/* ---- rate adaptation --------------------------------------------------------- */

/* A link given as RATE,DELAY is written RATE/DELAY in CSV: one field. */
static void csv_link(const char *link, char *out, size_t size)
{
    snprintf(out, size, "%s", link);
    for (char *p = out; *p; p++)
        if (*p == ',')
            *p = '/';
}

/* Requests and objective misses per step of the link (0: before the first
 * step), all and those that started after the step's first second, when
 * the rate estimate has had time to follow it. */
typedef struct step_tally {
    int n, miss, settled_n, settled_miss;
} step_tally;

typedef struct adapt_state {
    uint64_t t0; /* first adaptive request, for the trace */
    long seq;
    FILE *trace;
    step_tally steps[SPW_NET_LINK_STEPS + 1]; /* of the last run_adapt */
} adapt_state;

/* The step of the link in effect at t (ns, monotonic), and how long (ms). */
static int link_step(const spw_net_config *c, uint64_t t, double *since_ms)
{
    double at = t > c->shape_epoch_ns ? (double)(t - c->shape_epoch_ns) / 1e6 : 0;
    int k = 0;
    while (k < (int)c->shape_nsteps && at >= (double)c->shape_step_ms[k])
        k++;
    *since_ms = at - (k ? (double)c->shape_step_ms[k - 1] : 0);
    return k;
}

static void print_steps(const spw_net_config *c, const step_tally *st, long slo_ms)
{
    for (uint32_t k = 0; k <= c->shape_nsteps; k++) {
        uint64_t bps = k ? c->shape_step_bps[k - 1] : c->shape_rate_bps;
        printf("%-16s step %u (%.3g Mbit/s from %.1f s): %d requests, %d over %ld ms; after "
               "its first second %d of %d\n",
               "", k, (double)bps / 1e6, k ? (double)c->shape_step_ms[k - 1] / 1e3 : 0.0, st[k].n,
               st[k].miss, slo_ms, st[k].settled_miss, st[k].settled_n);
    }
}

/* One client holding every bundle as a rate point (spw_client_config
 * rate_bundles, slo_ms): per request it picks the point from the path and
 * compute it learnt from its own answers (docs/SERVICE.md). */
static int run_adapt(const e2e_opts *o, const method *m, const spw_net_config *cnet,
                     const char *link, const spw_eval_files *fl, sample *out, adapt_state *as,
                     int *misses)
{
    int nb = o->n_bundles, rc;
    spw_client *cl = NULL;
    step_tally *steps = as->steps;
    memset(as->steps, 0, sizeof(as->steps));
    *misses = 0;
    spw_client_config cc = {.bundle_dir = o->bundles[0],
                            .backend = o->backend,
                            .threads = (int)o->threads,
                            .topk = 1,
                            .timeout_ms = (int)o->timeout_ms,
                            .max_inflight = 1,
                            .net = *cnet,
                            .rate_bundles = o->bundles + 1,
                            .n_rate_bundles = nb - 1,
                            .slo_ms = (double)o->slo_ms};
    if ((rc = spw_client_open(&cc, &cl)))
        return spw_cli_fail(rc, "bench e2e: adaptive client for %d bundles", nb);
    /* Untimed requests, round robin over the points so the machine's load
     * touches each alike, give each its size and compute time and the path
     * its first samples (the client keeps the fastest of a point's first
     * three answers: load only ever adds). */
    spw_image warm;
    if (!spw_image_load(fl->paths[0], &warm)) {
        for (int k = 0; k < 3; k++)
            for (int b = 0; b < nb; b++) {
                spw_result r;
                spw_client_set_rate_point(cl, b);
                spw_client_classify(cl, &warm, &r);
            }
        spw_image_release(&warm);
    }
    spw_client_set_rate_point(cl, -1);
    for (int i = 0; i < fl->n; i++) {
        sample *s = &out[i];
        memset(s, 0, sizeof(*s));
        s->top1 = -1;
        spw_path_estimate path;
        spw_rate_point pts[SPW_RATE_POINTS_MAX];
        int np = spw_client_adapt_state(cl, &path, pts, SPW_RATE_POINTS_MAX);
        int want = spw_adapt_choose(pts, np, &path, (double)o->slo_ms);
        double predicted = want >= 0 ? spw_adapt_predict(&pts[want], &path) : NAN;
        uint64_t t0 = spw_cli_now_ns();
        spw_image img;
        if ((s->status = spw_image_load(fl->paths[i], &img)))
            continue;
        double t_load = spw_cli_ms_since(t0);
        spw_net_stats a, z;
        spw_client_net_stats(cl, &a);
        spw_result r = {0};
        s->status = spw_client_classify(cl, &img, &r);
        spw_client_net_stats(cl, &z);
        spw_image_release(&img);
        if (!s->status)
            take_result(s, &r, t_load, &a, &z);
        bool miss = s->status || s->total > (double)o->slo_ms;
        *misses += miss;
        double since_ms;
        int k = link_step(cnet, t0, &since_ms);
        steps[k].n++;
        steps[k].miss += miss;
        if (since_ms >= 1000) {
            steps[k].settled_n++;
            steps[k].settled_miss += miss;
        }
        if (!as->t0)
            as->t0 = t0;
        if (as->trace) {
            char lk[128];
            csv_link(link, lk, sizeof(lk));
            const spw_bundle_info *bi = spw_client_bundle_at(cl, s->status ? want : r.rate_point);
            fprintf(as->trace, "%ld,%.1f,%s,%s,%.3f,%.3f,%.0f,%.3f,%d,%d,%.1f\n", as->seq,
                    (double)(t0 - as->t0) / 1e6, lk, bi ? bi->name : "-", predicted, s->total,
                    path.rate_bps, path.base_ms, miss, k, since_ms);
        }
        as->seq++;
        progress(o, link, m, i + 1, fl->n);
    }
    spw_client_close(cl);
    return 0;
}

/* ---- output ---------------------------------------------------------------- */

static void print_table_head(void)
{
    printf("%-16s %-28s %8s %6s %8s %8s %8s %8s %8s %8s %9s %9s %6s %6s %4s\n", "link", "method",
           "bytes", "frames", "wire_B", "pre", "enc", "ent", "net", "srv", "total50", "total99",
           "top1", "agree", "lost");
}

static void print_row_table(const row *r)
{
    printf("%-16s %-28s %8.0f %6.1f %8.0f %8.2f %8.2f %8.2f %8.2f %8.2f %9.2f %9.2f %6.3f %6.3f "
           "%4d\n",
           r->link, r->m->name, r->bytes, r->frames, r->wire, r->p50[0], r->p50[1], r->p50[2],
           r->p50[3], r->p50[4], r->p50[5], r->p99[5], r->top1, r->agree, r->lost);
    if (r->misses >= 0)
        printf("%-16s %-28s %d of %d requests over the objective\n", "", "", r->misses, r->n);
}

static void csv_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, ",%.4f", v);
    else
        fputs(",", f);
}

static void print_row_csv(FILE *f, const row *r, double rate_bps, double delay_ms)
{
    char link[128];
    csv_link(r->link, link, sizeof(link));
    fprintf(f, "%s,%s,%s,%d,%d,%d", link, r->m->name,
            r->m->kind == M_ADAPT    ? "adapt"
            : r->m->kind == M_BUNDLE ? "bundle"
            : r->m->kind == M_CODEC  ? "codec"
            : r->m->kind == M_LOCAL  ? "local"
                                     : "original",
            r->n, r->ok, r->lost);
    csv_num(f, rate_bps);
    csv_num(f, delay_ms);
    csv_num(f, r->bytes);
    csv_num(f, r->frames);
    csv_num(f, r->wire);
    for (int k = 0; k < 6; k++) {
        csv_num(f, r->p50[k]);
        csv_num(f, r->p99[k]);
    }
    csv_num(f, r->top1);
    csv_num(f, r->agree);
    if (r->misses >= 0)
        fprintf(f, ",%d", r->misses);
    else
        fputc(',', f);
    fputc('\n', f);
}

static void print_csv_head(FILE *f)
{
    fprintf(f, "link,method,kind,images,answered,lost,rate_bps,delay_ms,bytes,frames,wire_bytes");
    for (int k = 0; k < 6; k++)
        fprintf(f, ",%s_p50,%s_p99", stage_names[k], stage_names[k]);
    fprintf(f, ",top1,agree,slo_misses\n");
}

static void print_row_json(const row *r, double rate_bps, double delay_ms)
{
    printf("{\"benchmark\": \"e2e\", \"link\": ");
    spw_cli_json_str(stdout, r->link);
    printf(", \"method\": ");
    spw_cli_json_str(stdout, r->m->name);
    printf(", \"images\": %d, \"answered\": %d, \"lost\": %d, \"rate_bps\": ", r->n, r->ok,
           r->lost);
    spw_cli_json_num(stdout, rate_bps, 0);
    printf(", \"delay_ms\": ");
    spw_cli_json_num(stdout, delay_ms, 3);
    printf(", \"bytes\": ");
    spw_cli_json_num(stdout, r->bytes, 1);
    printf(", \"frames\": ");
    spw_cli_json_num(stdout, r->frames, 2);
    printf(", \"wire_bytes\": ");
    spw_cli_json_num(stdout, r->wire, 1);
    for (int k = 0; k < 6; k++) {
        printf(", \"%s_p50\": ", stage_names[k]);
        spw_cli_json_num(stdout, r->p50[k], 3);
        printf(", \"%s_p99\": ", stage_names[k]);
        spw_cli_json_num(stdout, r->p99[k], 3);
    }
    printf(", \"top1\": ");
    spw_cli_json_num(stdout, r->top1, 4);
    printf(", \"agree\": ");
    spw_cli_json_num(stdout, r->agree, 4);
    if (r->misses >= 0)
        printf(", \"slo_misses\": %d", r->misses);
    printf("}\n");
}

/* ---- main ------------------------------------------------------------------ */

enum {
    OPT_DATA = 256,
    OPT_COUNT,
    OPT_BUNDLE,
    OPT_METHOD,
    OPT_QUALITY,
    OPT_LINK,
    OPT_BACKBONE,
    OPT_MODELS,
    OPT_BACKEND,
    OPT_THREADS,
    OPT_TIMEOUT,
    OPT_JSON,
    OPT_CSV,
    OPT_QUIET,
    OPT_ADAPT,
    OPT_SLO,
    OPT_TRACE,
};

/* The options that need more than a check: -1 to carry on, else the exit code. */
static int e2e_opt(int id, const char *arg, void *ctx)
{
    e2e_opts *o = ctx;
    switch (id) {
    case OPT_BUNDLE:
        if (o->n_bundles == MAX_BUNDLES) {
            fprintf(stderr, "splitwire bench e2e: at most %d bundles\n", MAX_BUNDLES);
            return 2;
        }
        o->bundles[o->n_bundles++] = arg;
        return -1;
    case OPT_LINK: {
        spw_net_config t = {0};
        if (o->n_links == MAX_LINKS) {
            fprintf(stderr, "splitwire bench e2e: at most %d links\n", MAX_LINKS);
            return 2;
        }
        if (strcmp(arg, "none") && spw_net_link_parse(arg, &t)) {
            fprintf(stderr, "splitwire bench e2e: --link: %s\n", spw_error_detail());
            return 2;
        }
        o->links[o->n_links++] = arg;
        return -1;
    }
    default: { /* OPT_METHOD */
        spw_eval_codec cd;
        o->any_method = true;
        if (!strcmp(arg, "bundle"))
            o->want[M_BUNDLE] = true;
        else if (!strcmp(arg, "original"))
            o->want[M_ORIGINAL] = true;
        else if (!strcmp(arg, "local"))
            o->want[M_LOCAL] = true;
        else if (!strcmp(arg, "adapt"))
            o->adapt = true;
        else if (!spw_eval_codec_parse(arg, &cd) && cd != SPW_EVAL_NONE)
            o->want[M_CODEC] = o->want_codec[cd] = true;
        else {
            fprintf(stderr,
                    "splitwire bench e2e: --method is bundle, jpeg, webp, avif, original, "
                    "local or adapt, not '%s'\n",
                    arg);
            return 2;
        }
        return -1;
    }
    }
}

static int parse_opts(int argc, char **argv, e2e_opts *o)
{
    const spw_cli_opt opts[] = {
        SPW_CLI_OPT_STR("data", &o->data),
        SPW_CLI_OPT_LONG("count", &o->count, 1, 100000000),
        SPW_CLI_OPT_FN("bundle", e2e_opt, OPT_BUNDLE, true),
        SPW_CLI_OPT_FN("method", e2e_opt, OPT_METHOD, true),
        SPW_CLI_OPT_LONG("quality", &o->quality, 1, 100),
        SPW_CLI_OPT_FN("link", e2e_opt, OPT_LINK, true),
        SPW_CLI_OPT_STR("backbone", &o->backbone),
        SPW_CLI_OPT_STR("models", &o->models),
        SPW_CLI_OPT_STR("backend", &o->backend),
        SPW_CLI_OPT_LONG("threads", &o->threads, 0, 256),
        SPW_CLI_OPT_LONG("timeout-ms", &o->timeout_ms, 1, 100000000),
        SPW_CLI_OPT_FLAG("json", &o->json),
        SPW_CLI_OPT_STR("csv", &o->csv),
        SPW_CLI_OPT_FLAG("quiet", &o->quiet),
        SPW_CLI_OPT_FLAG("adapt", &o->adapt),
        SPW_CLI_OPT_LONG("slo-ms", &o->slo_ms, 1, 600000),
        SPW_CLI_OPT_STR("adapt-trace", &o->trace),
        SPW_CLI_OPT_END,
    };
    int rc = spw_cli_parse("splitwire bench e2e", argc, argv, opts, o, usage, NULL);
    if (rc >= 0)
        return rc;
    if (o->adapt && !o->slo_ms) {
        fprintf(stderr, "splitwire bench e2e: --adapt needs --slo-ms N\n");
        return 2;
    }
    return -1;
}

static int build_methods(const e2e_opts *o, method *ms)
{
    int n = 0, q[SPW_EVAL_NCODECS];
    default_qualities(q);
    bool all = !o->any_method;
    if (all || o->want[M_BUNDLE])
        for (int b = 0; b < o->n_bundles; b++) {
            spw_bundle *bd;
            const char *name = o->bundles[b];
            if (!spw_bundle_open(o->bundles[b], &bd)) {
                snprintf(ms[n].name, sizeof(ms[n].name), "bundle:%s",
                         spw_bundle_get_info(bd)->name);
                spw_bundle_close(bd);
            } else {
                snprintf(ms[n].name, sizeof(ms[n].name), "bundle:%s", name);
            }
            ms[n].kind = M_BUNDLE;
            ms[n++].bundle = o->bundles[b];
        }
    for (int c = SPW_EVAL_JPEG; c < SPW_EVAL_NCODECS; c++) {
        if (!(all ? spw_eval_codec_available((spw_eval_codec)c) : o->want_codec[c]))
            continue;
        ms[n].kind = M_CODEC;
        ms[n].codec = (spw_eval_codec)c;
        ms[n].quality = o->quality ? (int)o->quality : q[c];
        snprintf(ms[n].name, sizeof(ms[n].name), "%s-q%d", spw_eval_codec_name(ms[n].codec),
                 ms[n].quality);
        n++;
    }
    if (all || o->want[M_ORIGINAL]) {
        ms[n].kind = M_ORIGINAL;
        snprintf(ms[n++].name, sizeof(ms[0].name), "original");
    }
    if (all || o->want[M_LOCAL]) {
        ms[n].kind = M_LOCAL;
        snprintf(ms[n++].name, sizeof(ms[0].name), "local");
    }
    if (o->adapt) {
        ms[n].kind = M_ADAPT;
        snprintf(ms[n++].name, sizeof(ms[0].name), "adapt-slo%ld", o->slo_ms);
    }
    return n;
}

int spw_cli_bench_e2e(int argc, char **argv)
{
    e2e_opts o = {.count = 50, .timeout_ms = 60000};
    int rc = parse_opts(argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (!o.n_bundles)
        o.bundles[o.n_bundles++] = "models/default";
    if (!o.n_links)
        o.links[o.n_links++] = "4g";
    char bb[1024], val[1024];
    if (!o.backbone) {
        snprintf(bb, sizeof(bb), "%s/mobilenet_v2_1.0_224.onnx", models_dir(&o));
        o.backbone = bb;
    }
    struct stat st;
    if (stat(o.backbone, &st)) {
        fprintf(stderr,
                "splitwire bench e2e: no backbone at %s (bash tools/models/fetch_backbone.sh, "
                "or --backbone FILE)\n",
                o.backbone);
        return 1;
    }
    bool emulated = false;
    for (int l = 0; l < o.n_links; l++)
        emulated |= strcmp(o.links[l], "none") != 0;
    if (emulated && !spw_net_emulation_available()) {
        fprintf(stderr, "splitwire bench e2e: link emulation is not built in "
                        "(configure with -DSPW_NET_EMULATION=ON), or use --link none\n");
        return 1;
    }
    if (!o.data) {
        snprintf(val, sizeof(val), "%s/data/imagenette2-224/val", shared_dir());
        o.data = val;
    }
    spw_eval_files fl;
    if (spw_eval_files_collect(o.data, &fl) || fl.n == 0) {
        fprintf(stderr, "splitwire bench e2e: no images at %s (--data DIR, or SPLITWIRE_SHARED)\n",
                o.data);
        return 1;
    }
    spw_eval_files_limit(&fl, (int)o.count);
    spw_eval_classes *cl = calloc(1, sizeof(*cl));
    char found[1024];
    if (cl && spw_eval_classes_find(o.data, cl, found, sizeof(found))) {
        free(cl);
        cl = NULL; /* no truth: top-1 is not judged */
    }
    method ms[MAX_METHODS];
    int n_methods = build_methods(&o, ms);
    bool need_server = false;
    for (int k = 0; k < n_methods; k++)
        need_server |= ms[k].kind != M_LOCAL;
    sample *smp = calloc((size_t)fl.n, sizeof(sample));
    row *rows = calloc((size_t)(n_methods * o.n_links), sizeof(row));
    int *ref = malloc(sizeof(int) * (size_t)fl.n);
    FILE *csv = NULL;
    adapt_state as = {0};
    int n_rows = 0;
    rc = 0;
    if (!smp || !rows || !ref) {
        rc = spw_cli_fail(SPW_ENOMEM, "bench e2e");
        goto out;
    }
    if (o.csv && !(csv = fopen(o.csv, "w"))) {
        rc = spw_cli_fail(SPW_EIO, "cannot write %s", o.csv);
        goto out;
    }
    if (o.trace) {
        if (!(as.trace = fopen(o.trace, "w"))) {
            rc = spw_cli_fail(SPW_EIO, "cannot write %s", o.trace);
            goto out;
        }
        fprintf(as.trace, "seq,t_ms,link,bundle,predicted_ms,total_ms,rate_bps_est,base_ms_est,"
                          "slo_miss,link_step,step_ms\n");
    }
    /* The reference for agreement: the whole backbone on the stored files,
     * run here first (untimed; it also warms the caches). */
    local_bb lb;
    if ((rc = local_open(&o, &lb))) {
        rc = spw_cli_fail(rc, "bench e2e: backbone %s", o.backbone);
        goto out;
    }
    for (int i = 0; i < fl.n; i++) {
        sample s;
        ref[i] = local_one(&lb, fl.paths[i], &s) ? -1 : s.top1;
    }
    if (!o.quiet)
        fprintf(stderr,
                "splitwire bench e2e: %d images from %s, %d methods, %d links; backbone %s\n", fl.n,
                o.data, n_methods, o.n_links, o.backbone);
    if (csv)
        print_csv_head(csv);
    if (!o.json)
        print_table_head();
    for (int k = 0; k < n_methods && !rc; k++) {
        if (ms[k].kind != M_LOCAL)
            continue;
        for (int i = 0; i < fl.n; i++) {
            local_one(&lb, fl.paths[i], &smp[i]);
            progress(&o, "-", &ms[k], i + 1, fl.n);
        }
        row *r = &rows[n_rows++];
        r->link = "-";
        r->m = &ms[k];
        summarise(r, smp, fl.n, cl, &fl, ref);
        if (csv)
            print_row_csv(csv, r, NAN, NAN);
        if (o.json)
            print_row_json(r, NAN, NAN);
        else
            print_row_table(r);
    }
    local_close(&lb);
    uint64_t next_id = ((uint64_t)spw_cli_now_ns() << 16) | 1;
    for (int l = 0; l < o.n_links && !rc && need_server; l++) {
        spw_server_config sc;
        spw_net_config cnet;
        char addr[64];
        uint64_t epoch = spw_cli_now_ns(); /* the link's steps count from here */
        if ((rc = e2e_endpoints(&o, o.links[l], epoch, &sc, NULL, NULL)))
            break;
        pid_t pid = start_server(&sc, addr, sizeof(addr));
        if (pid < 0) {
            rc = 1;
            break;
        }
        if ((rc = e2e_endpoints(&o, o.links[l], epoch, NULL, &cnet, addr))) {
            stop_server(pid);
            break;
        }
        double rate = cnet.shape_rate_bps ? (double)cnet.shape_rate_bps : NAN;
        double delay = (double)cnet.shape_delay_us / 1000.0;
        spw_net *net = NULL;
        for (int k = 0; k < n_methods && !rc; k++) {
            const method *m = &ms[k];
            if (m->kind == M_LOCAL)
                continue;
            int misses = -1;
            if (m->kind == M_ADAPT) {
                rc = run_adapt(&o, m, &cnet, o.links[l], &fl, smp, &as, &misses);
            } else if (m->kind == M_BUNDLE) {
                rc = run_bundle(&o, m, &cnet, o.links[l], &fl, smp);
            } else {
                if (!net && (rc = spw_net_open(&cnet, &net))) {
                    rc = spw_cli_fail(rc, "bench e2e: client transport");
                    break;
                }
                rc = run_offload(&o, m, net, o.links[l], &fl, smp, &next_id);
            }
            if (rc)
                break;
            row *r = &rows[n_rows++];
            r->link = o.links[l];
            r->m = m;
            summarise(r, smp, fl.n, cl, &fl, ref);
            r->misses = misses;
            if (csv)
                print_row_csv(csv, r, rate, delay);
            if (o.json)
                print_row_json(r, rate, delay);
            else
                print_row_table(r);
            if (m->kind == M_ADAPT && !o.json && cnet.shape_nsteps)
                print_steps(&cnet, as.steps, o.slo_ms);
            fflush(stdout);
        }
        spw_net_close(net);
        stop_server(pid);
    }
    /* Exit 1 when any request went unanswered. */
    for (int r = 0; r < n_rows && !rc; r++)
        if (rows[r].lost) {
            fprintf(stderr, "splitwire bench e2e: %d of %d requests of %s on %s unanswered\n",
                    rows[r].lost, rows[r].n, rows[r].m->name, rows[r].link);
            rc = 1;
        }
out:
    if (as.trace)
        fclose(as.trace);
    if (csv)
        fclose(csv);
    free(ref);
    free(rows);
    free(smp);
    free(cl);
    spw_eval_files_free(&fl);
    return rc;
}

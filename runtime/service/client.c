/* The client runtime: image -> encoder -> symbols -> rANS straight into the
 * transport's buffers -> server, and results back. */
#include <string.h>

#include "runtime/graph/plan.h"
#include "runtime/service/service_internal.h"

typedef struct pending {
    bool used;
    uint64_t id;      /* the caller's request id */
    uint64_t wire_id; /* the id on the wire: a new one for each retry */
    uint64_t t_submit, t_sent;
    spw_result r;
    /* Remote mode: the coded request, kept to send again when the server
     * refuses it as overloaded (after retry_at, with back-off). */
    unsigned char *stream;
    size_t stream_len;
    int retries;
    uint64_t retry_at; /* 0: not waiting to retry */
    int path;          /* the transport its current attempt went out on */
    uint64_t epoch;    /* the client's epoch when it was sent */
    int point;         /* the rate point it was coded with */
} pending;

/* One bundle the client can code a request with: bundle_dir, or one of the
 * rate_bundles. Each keeps its encoder plan and tables loaded, so switching
 * costs nothing per request. */
typedef struct point {
    spw_bundle *bundle;
    const spw_bundle_info *info;
    spw_codec_tables *tables;
    spw_codec *codec;
    spw_model *enc_model; /* NULL when enc is borrowed */
    spw_plan *enc;        /* an earlier point's, when both share the encoder */
    spw_preprocess pp;
    spw_half *half;      /* local mode */
    size_t guess, bound; /* transmit capacity asked first, and the worst case */
    spw_rate_point est;  /* what the policy predicts from (compute at load 1) */
    int answers;         /* answered requests it coded */
    int64_t macs;        /* encoder + decoder multiply-adds (0: unknown) */
} point;

/* Transports (flows) a client may have open at once: the current one, and
 * older ones still waiting for answers from servers it has moved away from. */
#define MAX_PATHS 4
#define MAX_SERVERS 16

struct spw_client {
    spw_client_config cfg;
    point pts[SPW_RATE_POINTS_MAX];
    int n_pts;
    int forced; /* spw_client_set_rate_point: a point, or -1 to choose */
    spw_path_estimate path;
    /* The machine's load scales every point's compute alike: one factor,
     * learnt from whichever point ran, keeps unmeasured ones comparable. */
    double load;
    const spw_bundle_info *info; /* point 0's */
    float *input;
    int32_t *symbols;
    spw_net *net; /* remote mode: the current flow, paths[cur] */
    spw_net *paths[MAX_PATHS];
    int users[MAX_PATHS]; /* pending requests whose attempt is on each path */
    int cur;
    uint64_t epoch;   /* moves on at each failover */
    bool fresh_flows; /* a failover may open a new socket (kernel UDP, port 0) */
    spw_net_addr servers[MAX_SERVERS];
    int n_servers, server; /* the list, and the one in use */
    int n_lanes, lane;     /* DPDK queue pairs: requests go round-robin over paths */
    spw_codec_seg *segs;   /* remote mode: transmit buffers as the coder sees them */
    int max_segs;
    size_t max_bound; /* the largest worst-case stream of any point */
    bool local;
    unsigned char *stream; /* local mode: the coded latent */
    size_t stream_cap;
    pending *pend;
    int n_pending;
    spw_result *done; /* finished, not yet collected */
    int n_done;
    uint64_t next_id;
    uint64_t rng;   /* jitter of the retry back-off */
    int last_point; /* of the last local request */
};

static double ms(uint64_t a, uint64_t b)
{
    return (double)(b - a) / 1e6;
}

/* The server list, the failover settings and whether a failover may open a
 * new socket. The transports' peer is the first server. */
static int servers_init(spw_client *c)
{
    spw_net_config *nc = &c->cfg.net;
    if (c->cfg.n_servers > MAX_SERVERS || c->cfg.n_servers < 0 ||
        (c->cfg.n_servers && !c->cfg.servers))
        return spw__error(SPW_EINVAL, "client: %d servers given (at most %d)", c->cfg.n_servers,
                          MAX_SERVERS);
    for (int i = 0; i < c->cfg.n_servers; i++) {
        int rc = spw_net_addr_parse(c->cfg.servers[i], &c->servers[i]);
        if (rc)
            return rc;
    }
    c->n_servers = c->cfg.n_servers;
    if (c->n_servers)
        nc->peer = c->cfg.servers[0];
    if (c->cfg.failover_probes == 0)
        c->cfg.failover_probes = 3;
    if (c->cfg.failover_probes > 0 && !nc->max_retries)
        nc->max_retries = (uint32_t)c->cfg.failover_probes;
    spw_net_addr local = {0};
    c->fresh_flows = nc->transport == SPW_NET_UDP &&
                     (!nc->local || (!spw_net_addr_parse(nc->local, &local) && !local.port));
    return 0;
}

/* Moves this client on to a new flow after a server refused a request as
 * draining or stopped answering: the next server of the list, and over UDP
 * with an ephemeral port a new socket, whose new source port makes a
 * balancer hashing 5-tuples choose a server again. Requests still out on
 * the old flow finish there. (A protocol with sessions starts a new one here.) */
static void rotate(spw_client *c)
{
    c->epoch++;
    if (c->n_servers > 1)
        c->server = (c->server + 1) % c->n_servers;
    if (!c->fresh_flows)
        return;
    int slot = -1;
    for (int i = 0; i < MAX_PATHS; i++) {
        if (i == c->cur)
            continue;
        if (c->paths[i] && !c->users[i]) {
            spw_net_close(c->paths[i]); /* nothing more to come on it */
            c->paths[i] = NULL;
        }
        if (!c->paths[i] && slot < 0)
            slot = i;
    }
    if (slot < 0)
        return; /* every older flow still waits for answers: stay on this one */
    int rc = spw_net_open(&c->cfg.net, &c->paths[slot]);
    if (rc) {
        SPW_LOGW("client: no new flow for failover (%s); staying on this one", spw_strerror(rc));
        return;
    }
    c->cur = slot;
    c->net = c->paths[slot];
}

/* The path a request goes out on: the current flow, or the next queue pair. */
static int next_path(spw_client *c)
{
    return c->n_lanes > 1 ? c->lane++ % c->n_lanes : c->cur;
}

/* Where requests go now: zero (the transport's configured peer) unless a
 * server list names more than one. */
static spw_net_addr destination(const spw_client *c)
{
    spw_net_addr none = {0};
    return c->n_servers > 1 ? c->servers[c->server] : none;
}

static int64_t model_macs(const spw_model *m)
{
    spw_summary *s = NULL;
    if (!m || spw_model_summarize(m, 1, SPW_SUMMARY_FUSED, &s))
        return 0;
    int64_t sum = 0;
    spw_layer_info li;
    for (int i = 0; i < spw_summary_num_layers(s); i++)
        if (!spw_summary_layer(s, i, &li))
            sum += li.macs;
    spw_summary_free(s);
    return sum;
}

/* The work a point's networks do, so that points with the same networks
 * share one compute estimate (0 when it cannot be told: no sharing). */
static int64_t point_macs(const point *pt)
{
    spw_model *dec = NULL;
    if (spw_bundle_load_decoder(pt->bundle, &dec))
        return 0;
    int64_t e = model_macs(pt->enc_model), d = model_macs(dec);
    spw_model_free(dec);
    return e > 0 && d > 0 ? e + d : 0;
}

/* Loads one rate point: bundle, tables, coder, encoder plan (and in local
 * mode the server half). */
/* An earlier point whose encoder and input this one shares (manifest
 * "shared_encoder", same hash and latent, same preprocessing), or NULL. */
static const point *same_encoder(const spw_client *c, const point *pt)
{
    const spw_bundle_info *a = pt->info;
    for (const point *q = c->pts; q < pt; q++) {
        const spw_bundle_info *b = q->info;
        if (spw_bundle_same_encoder(a, b) && !memcmp(&q->pp, &pt->pp, sizeof(pt->pp)))
            return q;
    }
    return NULL;
}

static int point_open(spw_client *c, point *pt, const char *dir)
{
    int rc;
    if ((rc = spw_bundle_open(dir, &pt->bundle)))
        return rc;
    const spw_bundle_info *in = pt->info = spw_bundle_get_info(pt->bundle);
    pt->pp = (spw_preprocess){in->resize,
                              in->input_width,
                              in->input_height,
                              {in->mean[0], in->mean[1], in->mean[2]},
                              {in->std[0], in->std[1], in->std[2]}};
    if ((rc = spw_bundle_load_tables(pt->bundle, &pt->tables)))
        return rc;
    spw_codec_config cc = {c->cfg.format, 1, 0};
    if ((rc = spw_codec_create(pt->tables, &cc, &pt->codec)))
        return rc;
    /* Bundles that share an encoder (e.g. decoders for two backbones) run
     * one plan: the tables above checked this one's file against the hash. */
    const point *owner = same_encoder(c, pt);
    if (owner) {
        pt->enc = owner->enc;
    } else {
        if ((rc = spw_bundle_load_encoder(pt->bundle, &pt->enc_model)))
            return rc;
        spw_plan_options po = {.backend = c->cfg.backend, .batch = 1, .threads = c->cfg.threads};
        if ((rc = spw_plan_create(pt->enc_model, &po, &pt->enc)))
            return rc;
    }
    if (c->local && (rc = spw__half_open(pt->bundle, pt->tables, c->cfg.models_dir, c->cfg.backend,
                                         c->cfg.threads, 1, 0, NULL, 0, &pt->half)))
        return rc;
    /* Ask the transport for about twice the expected stream (from the
     * tables' entropy), not the worst case: a latent of a few KB would
     * otherwise tie up hundreds of packet buffers per request. A stream
     * that does not fit is coded again into the worst-case size. The same
     * entropy is the policy's first guess of the point's bytes. */
    double bits = 0;
    for (int ch = 0; ch < in->latent_c; ch++)
        bits += spw_codec_tables_entropy(pt->tables, ch);
    bits *= (double)in->latent_h * in->latent_w;
    pt->bound = spw_codec_bound(pt->codec, in->latent_c, in->latent_h, in->latent_w);
    pt->guess = ((size_t)(bits / 8 * 2) + 1024 + 3) & ~(size_t)3;
    if (pt->guess > pt->bound)
        pt->guess = pt->bound;
    pt->est.bytes = bits / 8;
    pt->macs = c->cfg.n_rate_bundles > 0 ? point_macs(pt) : 0;
    return 0;
}

static void point_close(point *pt)
{
    spw__half_close(pt->half);
    if (pt->enc_model) /* else the plan is an earlier point's (closed after this one) */
        spw_plan_free(pt->enc);
    spw_model_free(pt->enc_model);
    spw_codec_free(pt->codec);
    spw_codec_tables_free(pt->tables);
    spw_bundle_close(pt->bundle);
}

/* Accuracy as the policy ranks points: the manifests' top-1 where every
 * point has one, else the family's order (rate_index 0 is the highest rate,
 * the most accurate). */
static void rank_points(spw_client *c)
{
    bool all = true;
    for (int i = 0; i < c->n_pts; i++)
        all = all && c->pts[i].info->top1 >= 0;
    for (int i = 0; i < c->n_pts; i++)
        c->pts[i].est.accuracy =
            all ? c->pts[i].info->top1 : -(double)c->pts[i].info->rate_index - i * 1e-3;
}

int spw_client_open(const spw_client_config *config, spw_client **out)
{
    if (!config || !config->bundle_dir || !out)
        return spw__error(SPW_EINVAL, "client_open: NULL argument");
    if (config->n_rate_bundles < 0 || config->n_rate_bundles >= SPW_RATE_POINTS_MAX ||
        (config->n_rate_bundles && !config->rate_bundles))
        return spw__error(SPW_EINVAL, "client: %d rate bundles given (at most %d)",
                          config->n_rate_bundles, SPW_RATE_POINTS_MAX - 1);
    if (!(config->slo_ms >= 0) || config->slo_ms > 1e9)
        return spw__error(SPW_EINVAL, "client: latency objective %g ms", config->slo_ms);
    spw_client *c = spw__calloc(1, sizeof(*c));
    if (!c)
        return spw__error(SPW_ENOMEM, "out of memory");
    int rc;
    c->cfg = *config;
    if (c->cfg.topk <= 0)
        c->cfg.topk = 5;
    if (c->cfg.topk > SPW_TOPK_MAX)
        c->cfg.topk = SPW_TOPK_MAX;
    if (c->cfg.timeout_ms <= 0)
        c->cfg.timeout_ms = 2000;
    if (c->cfg.max_inflight <= 0)
        c->cfg.max_inflight = 16;
    c->next_id = ((uint64_t)spw__now_ns() << 20) | 1; /* distinct across client restarts */
    c->rng = c->next_id ^ 0x9e3779b97f4a7c15ull;
    c->local = config->local != 0;
    c->forced = -1;
    c->load = 1;
    size_t max_in = 0, max_lat = 0;
    for (int i = 0; i <= config->n_rate_bundles; i++) {
        point *pt = &c->pts[i];
        c->n_pts = i + 1;
        if ((rc = point_open(c, pt, i ? config->rate_bundles[i - 1] : config->bundle_dir)))
            goto fail;
        const spw_bundle_info *in = pt->info;
        for (int j = 0; j < i; j++)
            if (c->pts[j].info->id == in->id) {
                rc = spw__error(SPW_EINVAL, "client: bundle %s given twice", in->name);
                goto fail;
            }
        size_t n_in = 3 * (size_t)in->input_width * (size_t)in->input_height;
        size_t n_lat = (size_t)in->latent_c * (size_t)in->latent_h * (size_t)in->latent_w;
        max_in = n_in > max_in ? n_in : max_in;
        max_lat = n_lat > max_lat ? n_lat : max_lat;
        c->max_bound = pt->bound > c->max_bound ? pt->bound : c->max_bound;
    }
    c->info = c->pts[0].info;
    rank_points(c);
    c->input = spw__malloc(sizeof(float) * max_in);
    c->symbols = spw__malloc(sizeof(int32_t) * max_lat);
    c->pend = spw__calloc((size_t)c->cfg.max_inflight, sizeof(*c->pend));
    c->done = spw__calloc((size_t)c->cfg.max_inflight, sizeof(*c->done));
    if (!c->input || !c->symbols || !c->pend || !c->done) {
        rc = spw__error(SPW_ENOMEM, "out of memory");
        goto fail;
    }
    if (c->local) {
        c->stream_cap = c->max_bound;
        if (!(c->stream = spw__malloc(c->stream_cap))) {
            rc = spw__error(SPW_ENOMEM, "out of memory");
            goto fail;
        }
    } else {
        if ((rc = servers_init(c)))
            goto fail;
        /* DPDK with several queue pairs: one endpoint per pair. */
        spw_net_config nc = c->cfg.net;
        c->n_lanes = nc.transport == SPW_NET_DPDK && nc.queues > 1 ? (int)nc.queues : 1;
        if (c->n_lanes > MAX_PATHS) {
            rc = spw__error(SPW_EINVAL, "client: at most %d DPDK queue pairs", MAX_PATHS);
            goto fail;
        }
        for (int q = 0; q < c->n_lanes; q++) {
            nc.queue = (uint32_t)q;
            if ((rc = spw_net_open(&nc, &c->paths[q])))
                goto fail;
        }
        c->net = c->paths[0];
        size_t frag = spw_net_frag_payload(c->net);
        c->max_segs = (int)(c->max_bound / (frag ? frag : 1)) + 2;
        if (!(c->segs = spw__calloc((size_t)c->max_segs, sizeof(*c->segs)))) {
            rc = spw__error(SPW_ENOMEM, "out of memory");
            goto fail;
        }
    }
    *out = c;
    return 0;
fail:
    spw_client_close(c);
    return rc;
}

void spw_client_close(spw_client *c)
{
    if (!c)
        return;
    for (int i = 0; i < MAX_PATHS; i++)
        spw_net_close(c->paths[i]);
    for (int i = c->n_pts - 1; i >= 0; i--)
        point_close(&c->pts[i]);
    spw__free(c->stream);
    spw__free(c->segs);
    spw__free(c->input);
    spw__free(c->symbols);
    for (int i = 0; c->pend && i < c->cfg.max_inflight; i++)
        spw__free(c->pend[i].stream);
    spw__free(c->pend);
    spw__free(c->done);
    spw__free(c);
}

const spw_bundle_info *spw_client_bundle(const spw_client *c)
{
    return c ? c->info : NULL;
}

int spw_client_local_scores(const spw_client *c, const float **scores, int *n)
{
    if (!c || !scores || !n)
        return spw__error(SPW_EINVAL, "spw_client_local_scores: no client or output");
    if (!c->local)
        return spw__error(SPW_EINVAL, "local scores: not a local-mode client");
    /* Local requests run one at a time in slot 0 of their point's half. */
    const spw_half *h = c->pts[c->last_point].half;
    *scores = h->logits;
    *n = h->classes;
    return 0;
}

int spw_client_net_stats(const spw_client *c, spw_net_stats *out)
{
    if (!c || !out)
        return spw__error(SPW_EINVAL, "spw_client_net_stats: no client or output");
    memset(out, 0, sizeof(*out));
    if (c->net)
        spw_net_stats_get(c->net, out);
    return 0;
}

int spw_client_pending(const spw_client *c)
{
    return c ? c->n_pending + c->n_done : 0;
}

/* An answer teaches the policy: the path from its bytes and network time,
 * the point's size and compute time, and the machine's load. */
static void learn(spw_client *c, const pending *p)
{
    const spw_result *r = &p->r;
    spw_rate_point *e = &c->pts[p->point].est;
    if (r->status)
        return;
    if (!c->local)
        spw_path_estimate_add(&c->path, (double)r->bytes, r->ms_network);
    /* Sizes drift with the image, compute with the machine's load. */
    e->bytes = 0.7 * e->bytes + 0.3 * (double)r->bytes;
    /* A point's compute is its fastest of its first three answers (a first
     * run pays for cold caches; load only ever adds), scaled since by the
     * load every answer updates. */
    double cost = r->ms_preprocess + r->ms_encode + r->ms_entropy + r->ms_server;
    point *pt = &c->pts[p->point];
    if (pt->answers < 3 && (!pt->answers || cost / c->load < e->compute_ms))
        e->compute_ms = cost / c->load;
    else if (e->compute_ms > 0)
        c->load = 0.7 * c->load + 0.3 * cost / e->compute_ms;
    pt->answers++;
}

static void finish(spw_client *c, pending *p, uint64_t now)
{
    p->r.ms_total = ms(p->t_submit, now);
    learn(c, p);
    c->done[c->n_done++] = p->r;
    p->used = false;
    c->n_pending--;
    if (c->net)
        c->users[p->path]--;
}

/* Image -> preprocessed tensor -> symbols; fills the client-side timings. */
static int encode_image(spw_client *c, const point *pt, const spw_image *img, spw_result *r)
{
    const spw_bundle_info *in = pt->info;
    uint64_t t0 = spw__now_ns();
    int rc = spw_image_to_tensor(img, &pt->pp, c->input);
    if (rc)
        return rc;
    uint64_t t1 = spw__now_ns();
    spw_tensor ti = {
        SPW_F32, SPW_LAYOUT_NCHW, 4, {1, 3, in->input_height, in->input_width}, c->input};
    spw_tensor ts = {
        SPW_I32, SPW_LAYOUT_NCHW, 4, {1, in->latent_c, in->latent_h, in->latent_w}, c->symbols};
    if ((rc = spw_plan_run(pt->enc, &ti, 1, &ts, 1)))
        return rc;
    r->ms_preprocess = ms(t0, t1);
    r->ms_encode = ms(t1, spw__now_ns());
    return 0;
}

/* The predictions now: each point's compute at the current load, points
 * with the same networks at the least any of them measured, and the rest
 * unmeasured at the mean of the measured ones (the same family costs
 * about the same), so none looks free before it ran. */
static int predictions(const spw_client *c, spw_rate_point *out)
{
    double sum = 0;
    int n = 0;
    int64_t macs[SPW_RATE_POINTS_MAX];
    for (int i = 0; i < c->n_pts; i++) {
        out[i] = c->pts[i].est;
        macs[i] = c->pts[i].macs;
        if (c->pts[i].answers) {
            sum += c->pts[i].est.compute_ms;
            n++;
        } else {
            out[i].compute_ms = 0;
        }
    }
    spw__adapt_share_compute(out, macs, c->n_pts);
    for (int i = 0; i < c->n_pts; i++) {
        if (out[i].compute_ms <= 0)
            out[i].compute_ms = n ? sum / n : 0;
        out[i].compute_ms *= c->load;
    }
    return c->n_pts;
}

static int choose_point(const spw_client *c)
{
    if (c->forced >= 0)
        return c->forced;
    if (c->n_pts == 1 || c->cfg.slo_ms <= 0)
        return 0;
    spw_rate_point now[SPW_RATE_POINTS_MAX];
    predictions(c, now);
    int k = spw_adapt_choose(now, c->n_pts, &c->path, c->cfg.slo_ms);
    return k < 0 ? 0 : k;
}

int spw_client_rate_points(const spw_client *c)
{
    return c ? c->n_pts : 0;
}

const spw_bundle_info *spw_client_bundle_at(const spw_client *c, int i)
{
    return c && i >= 0 && i < c->n_pts ? c->pts[i].info : NULL;
}

int spw_client_set_rate_point(spw_client *c, int i)
{
    if (!c || i < -1 || i >= c->n_pts)
        return spw__error(SPW_EINVAL, "rate point %d of %d", i, c ? c->n_pts : 0);
    c->forced = i;
    return 0;
}

int spw_client_adapt_state(const spw_client *c, spw_path_estimate *path, spw_rate_point *points,
                           int max)
{
    if (!c)
        return 0;
    if (path)
        *path = c->path;
    spw_rate_point now[SPW_RATE_POINTS_MAX];
    int n = predictions(c, now);
    n = n < max ? n : max;
    if (points && n > 0)
        memcpy(points, now, sizeof(*points) * (size_t)n);
    return n > 0 ? n : 0;
}

int spw_client_submit(spw_client *c, const spw_image *img, uint64_t *request_id)
{
    if (!c || !img)
        return spw__error(SPW_EINVAL, "client_submit: NULL argument");
    if (c->n_pending + c->n_done >= c->cfg.max_inflight)
        return spw__error(SPW_EBUSY, "%d requests outstanding; poll first", c->cfg.max_inflight);
    pending *p = NULL;
    for (int i = 0; i < c->cfg.max_inflight && !p; i++)
        if (!c->pend[i].used)
            p = &c->pend[i];
    unsigned char *keep = p->stream; /* the slot's stream buffer is reused */
    memset(p, 0, sizeof(*p));
    p->stream = keep;
    p->t_submit = spw__now_ns();
    p->id = c->next_id++;
    p->wire_id = p->id;
    p->r.request_id = p->id;
    p->point = p->r.rate_point = choose_point(c);
    const point *pt = &c->pts[p->point];
    int rc = encode_image(c, pt, img, &p->r);
    if (rc)
        return rc;
    const spw_bundle_info *in = pt->info;
    uint64_t t2 = spw__now_ns();
    if (c->local) {
        /* Local mode: the same stream through the server half in process. */
        size_t len;
        c->last_point = p->point;
        if ((rc = spw_codec_encode_buf(pt->codec, c->symbols, in->latent_c, in->latent_h,
                                       in->latent_w, c->stream, c->stream_cap, &len)))
            return rc;
        uint64_t t3 = spw__now_ns();
        spw_codec_seg seg = {c->stream, len};
        unsigned flags = c->cfg.format == SPW_CODEC_TILED ? SPW_REQ_TILED : 0;
        if (!(rc = spw__half_decode(pt->half, 0, &seg, 1, flags)))
            rc = spw__half_run(pt->half, 1, c->cfg.topk, &p->r);
        p->r.status = rc;
        p->r.bytes = len;
        p->r.bpp = (double)len * 8.0 / ((double)in->input_width * in->input_height);
        p->r.ms_entropy = ms(t2, t3);
        uint64_t t4 = spw__now_ns();
        p->r.ms_server = ms(t3, t4);
        p->used = true;
        c->n_pending++;
        finish(c, p, t4);
    } else {
        int path = next_path(c);
        spw_net *net = c->paths[path];
        spw_net_msg *msg = NULL;
        spw_codec_span span;
        rc = SPW_ENOSPC;
        for (size_t cap = pt->guess; rc == SPW_ENOSPC; cap = pt->bound) {
            if ((rc = spw_net_tx_alloc(net, cap, &msg)))
                return rc;
            if (msg->nsegs > c->max_segs) {
                spw_net_msg_free(net, msg);
                return spw__error(SPW_EINTERNAL, "transport gave %d segments for %zu bytes",
                                  msg->nsegs, cap);
            }
            for (int i = 0; i < msg->nsegs; i++)
                c->segs[i] = (spw_codec_seg){msg->segs[i].data, msg->segs[i].size};
            rc = spw_codec_encode(pt->codec, c->symbols, in->latent_c, in->latent_h, in->latent_w,
                                  c->segs, msg->nsegs, &span);
            if (rc) {
                spw_net_msg_free(net, msg);
                if (rc != SPW_ENOSPC || cap == pt->bound)
                    return rc;
            }
        }
        msg->type = SPW_NET_REQUEST;
        msg->model_id = in->id;
        msg->rate_point = (uint8_t)in->rate_index;
        msg->flags = c->cfg.format == SPW_CODEC_TILED ? SPW_REQ_TILED : 0;
        msg->c = (uint16_t)in->latent_c;
        msg->h = (uint16_t)in->latent_h;
        msg->w = (uint16_t)in->latent_w;
        /* A copy of the coded request, to send it again if the server is
         * overloaded; the transmit buffers go to the transport. */
        if (!p->stream && !(p->stream = spw__malloc(c->max_bound ? c->max_bound : 4)))
            return spw__error(SPW_ENOMEM, "out of memory");
        size_t off = span.offset, left = span.bytes;
        p->stream_len = 0;
        for (int i = span.first; left; i++, off = 0) {
            size_t take = msg->segs[i].size - off < left ? msg->segs[i].size - off : left;
            memcpy(p->stream + p->stream_len, (uint8_t *)msg->segs[i].data + off, take);
            p->stream_len += take;
            left -= take;
        }
        msg->request_id = p->wire_id;
        msg->peer = destination(c);
        /* The transport keeps the request (and probes) until this deadline,
         * the same as the one the caller gave, not a retry count of its own. */
        msg->timeout_ms = (uint32_t)c->cfg.timeout_ms;
        uint64_t t3 = spw__now_ns();
        if ((rc = spw_net_send(net, msg, span.first, span.offset, span.bytes)))
            return rc;
        p->r.bytes = span.bytes;
        p->r.bpp = (double)span.bytes * 8.0 / ((double)in->input_width * in->input_height);
        p->r.ms_entropy = ms(t2, t3);
        p->t_sent = t3;
        p->used = true;
        p->path = path;
        p->epoch = c->epoch;
        c->users[path]++;
        c->n_pending++;
    }
    if (request_id)
        *request_id = p->id;
    return 0;
}

static pending *find(spw_client *c, uint64_t wire_id)
{
    for (int i = 0; i < c->cfg.max_inflight; i++)
        if (c->pend[i].used && c->pend[i].wire_id == wire_id && !c->pend[i].retry_at)
            return &c->pend[i];
    return NULL;
}

/* The server refused p as overloaded: try again after a back-off with full
 * jitter (10 ms x 2^tries at most, random below), within p's deadline; the
 * retry gets a new wire id, since the server remembers the refused one. */
static bool schedule_retry(spw_client *c, pending *p, uint64_t now)
{
    uint64_t cap = 10000000ull << (p->retries < 6 ? p->retries : 6);
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    uint64_t at = now + 1000000ull + c->rng % cap;
    if (!p->stream_len || at >= p->t_submit + (uint64_t)c->cfg.timeout_ms * 1000000ull)
        return false;
    p->retries++;
    p->retry_at = at;
    return true;
}

static void send_retry(spw_client *c, pending *p, uint64_t now)
{
    const spw_bundle_info *in = c->pts[p->point].info;
    spw_net_msg hdr = {
        .type = SPW_NET_REQUEST,
        .model_id = in->id,
        .rate_point = (uint8_t)in->rate_index,
        .flags = c->cfg.format == SPW_CODEC_TILED ? SPW_REQ_TILED : 0,
        .c = (uint16_t)in->latent_c,
        .h = (uint16_t)in->latent_h,
        .w = (uint16_t)in->latent_w,
        .request_id = c->next_id++,
        .peer = destination(c),
    };
    uint64_t deadline = p->t_submit + (uint64_t)c->cfg.timeout_ms * 1000000ull;
    hdr.timeout_ms = (uint32_t)((deadline - now) / 1000000ull + 1);
    spw_net_seg seg = {p->stream, p->stream_len};
    p->retry_at = 0;
    p->wire_id = hdr.request_id;
    c->users[p->path]--;
    p->path = next_path(c);
    p->epoch = c->epoch;
    c->users[p->path]++;
    p->t_sent = now;
    int rc = spw_net_sendv(c->paths[p->path], &hdr, &seg, 1);
    if (rc == SPW_EAGAIN) {
        p->retry_at = now + 1000000ull; /* no transmit buffers yet: shortly */
        return;
    }
    if (rc) {
        p->r.status = rc;
        finish(c, p, now);
    }
}

/* p must go to another server: the one it went to refused it as draining,
 * or went silent. The first request to notice moves the client on to a new
 * flow; the others that were on the old one follow it. */
static bool fail_over(spw_client *c, pending *p, uint64_t now)
{
    if (p->epoch == c->epoch)
        rotate(c);
    return schedule_retry(c, p, now);
}

/* p's server went silent: the other requests out on the same flow went to
 * the same server, so they move now instead of each waiting out its probes. */
static void flow_silent(spw_client *c, pending *p, uint64_t now)
{
    uint64_t epoch = p->epoch;
    int path = p->path;
    for (int i = 0; i < c->cfg.max_inflight; i++) {
        pending *q = &c->pend[i];
        if (q != p && q->used && !q->retry_at && q->path == path && q->epoch == epoch)
            schedule_retry(c, q, now);
    }
}

/* Takes every ready message off one transport and completes requests. */
static void drain_path(spw_client *c, spw_net *net)
{
    spw_net_msg *msgs[16];
    int n;
    while ((n = spw_net_recv(net, msgs, 16)) > 0) {
        uint64_t now = spw__now_ns();
        for (int i = 0; i < n; i++) {
            spw_net_msg *m = msgs[i];
            pending *p = find(c, m->request_id);
            if (p && m->type == SPW_NET_ERROR && !m->status && m->bytes >= 4) {
                int32_t st;
                spw_net_msg_copy(net, m, &st, 4);
                if (st == SPW_EBUSY)
                    SPW_LOGD("client: request %llu refused as busy (try %d)",
                             (unsigned long long)p->id, p->retries + 1);
                if ((st == SPW_EBUSY && schedule_retry(c, p, now)) ||
                    (st == SPW_ECANCELED && fail_over(c, p, now))) {
                    spw_net_msg_free(net, m);
                    continue;
                }
            }
            /* Given up by the transport before the deadline: probes went
             * unanswered, so the server is gone. */
            if (p && m->status == SPW_ETIMEDOUT && c->cfg.failover_probes > 0 &&
                now < p->t_submit + (uint64_t)c->cfg.timeout_ms * 1000000ull) {
                flow_silent(c, p, now);
                /* No time left for another try: it fails at its deadline,
                 * not before (expire). */
                if (!fail_over(c, p, now))
                    p->retry_at =
                        p->t_submit + (uint64_t)c->cfg.timeout_ms * 1000000ull + 1000000ull;
                spw_net_msg_free(net, m);
                continue;
            }
            if (p && (m->type == SPW_NET_RESULT || m->type == SPW_NET_ERROR || m->status)) {
                unsigned char buf[512];
                size_t len = spw_net_msg_copy(net, m, buf, sizeof(buf));
                uint32_t server_us = 0;
                if (m->status) {
                    p->r.status = m->status;
                } else if (m->type == SPW_NET_RESULT) {
                    p->r.status = spw__result_unpack(buf, len, &p->r, &server_us);
                    if (p->r.k > c->cfg.topk) /* the server sends its full top list */
                        p->r.k = c->cfg.topk;
                } else {
                    int32_t st = SPW_EPROTO;
                    if (len >= 4)
                        memcpy(&st, buf, 4);
                    p->r.status = st < 0 && st >= -1000 ? st : SPW_EPROTO;
                    if (len > 4)
                        spw__error(p->r.status, "server: %.*s", (int)(len - 4), buf + 4);
                }
                p->r.ms_server = server_us / 1000.0;
                double rtt = ms(p->t_sent, now);
                p->r.ms_network = rtt > p->r.ms_server ? rtt - p->r.ms_server : 0;
                finish(c, p, now);
            }
            spw_net_msg_free(net, m);
        }
    }
}

/* Every open flow: older ones still bring answers from servers left behind. */
static void drain(spw_client *c)
{
    for (int i = 0; i < MAX_PATHS; i++)
        if (c->paths[i]) {
            if (i != c->cur)
                spw_net_poll(c->paths[i], 0);
            drain_path(c, c->paths[i]);
        }
}

/* Deadlines, and retries of requests the server refused as overloaded. */
static void expire(spw_client *c, uint64_t now)
{
    uint64_t limit = (uint64_t)c->cfg.timeout_ms * 1000000ull;
    for (int i = 0; i < c->cfg.max_inflight; i++) {
        pending *p = &c->pend[i];
        if (!p->used)
            continue;
        if (now - p->t_submit > limit) {
            p->r.status = SPW_ETIMEDOUT;
            finish(c, p, now);
        } else if (p->retry_at && now >= p->retry_at) {
            send_retry(c, p, now);
        }
    }
}

int spw_client_poll(spw_client *c, spw_result *results, int max, int timeout_ms)
{
    if (!c || (max > 0 && !results))
        return spw__error(SPW_EINVAL, "client_poll: NULL argument");
    uint64_t start = spw__now_ns();
    while (c->net && c->n_done == 0 && c->n_pending > 0) {
        int64_t left_us = -1;
        if (timeout_ms >= 0) {
            int64_t el = (int64_t)((spw__now_ns() - start) / 1000);
            left_us = (int64_t)timeout_ms * 1000 - el;
            if (left_us < 0)
                left_us = 0;
        }
        /* Wake at least every 10 ms to enforce per-request deadlines. */
        int64_t wait = left_us < 0 || left_us > 10000 ? 10000 : left_us;
        if (c->n_lanes > 1 && wait > 100)
            wait = 100; /* the other pairs are polled in drain() */
        int rc = spw_net_poll(c->net, wait);
        if (rc < 0)
            return rc;
        drain(c);
        expire(c, spw__now_ns());
        if (left_us == 0)
            break;
    }
    int n = c->n_done < max ? c->n_done : max;
    memcpy(results, c->done, sizeof(*results) * (size_t)n);
    memmove(c->done, c->done + n, sizeof(*c->done) * (size_t)(c->n_done - n));
    c->n_done -= n;
    return n;
}

int spw_client_classify(spw_client *c, const spw_image *img, spw_result *out)
{
    uint64_t id;
    int rc = spw_client_submit(c, img, &id);
    if (rc)
        return rc;
    for (;;) {
        /* Results of other requests stay queued for spw_client_poll. */
        for (int i = 0; i < c->n_done; i++) {
            if (c->done[i].request_id == id) {
                *out = c->done[i];
                memmove(c->done + i, c->done + i + 1,
                        sizeof(*c->done) * (size_t)(c->n_done - i - 1));
                c->n_done--;
                return out->status;
            }
        }
        if (!c->net)
            return spw__error(SPW_EINTERNAL, "local request %llu vanished", (unsigned long long)id);
        if ((rc = spw_net_poll(c->net, c->n_lanes > 1 ? 100 : 10000)) < 0)
            return rc;
        drain(c);
        expire(c, spw__now_ns());
    }
}

/* One PING to the server in use, and its PONG. */
static int ping_once(spw_client *c, int timeout_ms, double *rtt_ms)
{
    uint64_t token = spw__now_ns(), t0 = token;
    spw_net_addr dst = destination(c);
    int rc = spw_net_ping(c->net, dst.port ? &dst : NULL, token);
    if (rc)
        return rc;
    uint64_t deadline = t0 + (uint64_t)timeout_ms * 1000000ull;
    while (spw__now_ns() < deadline) {
        if ((rc = spw_net_poll(c->net, 5000)) < 0)
            return rc;
        spw_net_msg *msgs[16];
        int n = spw_net_recv(c->net, msgs, 16);
        bool got = false;
        for (int i = 0; i < n; i++) {
            spw_net_msg *m = msgs[i];
            got = got || (m->type == SPW_NET_PONG && m->request_id == token);
            spw_net_msg_free(c->net, m);
        }
        if (got) {
            if (rtt_ms)
                *rtt_ms = ms(t0, spw__now_ns());
            return 0;
        }
    }
    return spw__error(SPW_ETIMEDOUT, "no answer to a ping within %d ms", timeout_ms);
}

int spw_client_ping(spw_client *c, int timeout_ms, double *rtt_ms)
{
    if (!c)
        return spw__error(SPW_EINVAL, "client_ping: NULL argument");
    if (!c->net) {
        if (rtt_ms)
            *rtt_ms = 0;
        return 0;
    }
    /* Only between requests: the loop below would swallow their results. */
    if (c->n_pending)
        return spw__error(SPW_EBUSY, "ping: %d requests outstanding", c->n_pending);
    /* With a server list, the first that answers becomes the one in use. */
    int rc = 0;
    for (int a = 0; a < (c->n_servers > 1 ? c->n_servers : 1); a++) {
        if (a)
            rotate(c);
        if (!(rc = ping_once(c, timeout_ms, rtt_ms)))
            return 0;
    }
    return rc;
}

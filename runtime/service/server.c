/* The server runtime: receive coded latents, batch them per bundle, decode
 * and run decoder + tail on worker threads, reply with top-k. Image requests
 * (codec offload) queue after the bundles and run the whole backbone. The
 * network is driven by the thread in spw_server_run; workers never touch it. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/graph/plan.h"
#include "runtime/service/fair.h"
#include "runtime/service/service_internal.h"

#define WINDOW 4096 /* samples kept per latency statistic */

/* spw_server_stop is called from signal handlers. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "atomic_int must be lock-free");

typedef struct item {
    spw_net_msg *msg; /* request, payload still in the transport's buffers */
    uint64_t t_arrival;
    int peer; /* its sender's slot in the fair queue, released once answered */
    spw_result r;
    uint32_t server_us;
} item;

typedef struct batch {
    int bundle;
    int n;
    uint64_t t_first;
    uint64_t t_start, t_decoded, t_done; /* set by the worker */
    int worker;                          /* the one that ran it */
    bool staged;                         /* stages holds a decoder + tail run */
    spw_half_stages stages;
    item *items;
    spw_codec_seg *segs; /* decode scratch: the most fragments a message can have */
    /* Per-item scratch, max_batch long: made at open, so that neither a
     * batch's size nor its handling has a fixed bound or allocates. */
    int *slot_of;
    spw_result *out;
    spw_fair_item *taken;
    double *total_ms;
    struct batch *next; /* queue link */
} batch;

typedef struct window {
    double v[WINDOW];
    unsigned n;
} window;

/* Recent batches' stages, for telling whether one worker's transfers ran
 * while another's batch computed. Batches that overlap finish close
 * together, so a short history finds them. */
#define STAGE_LOG 64
typedef struct stage_rec {
    int worker;
    spw_half_stages t;
    bool up_hit, down_hit; /* overlapped another worker's compute */
} stage_rec;

struct spw_server {
    spw_server_config cfg;
    int n_bundles;
    spw_bundle **bundles;
    spw_codec_tables **tables;
    spw_net *net;
    int max_segs; /* fragments of the largest message the transport takes */
    int n_workers;
    pthread_t *threads;
    spw_half **halves; /* n_workers x n_bundles */
    batch *pool;       /* one batch per worker: batches are formed when a worker is free */
    int n_pool;
    batch *free_list;
    /* Requests admitted and not yet answered, per peer; batches are formed
     * from it round robin over peers (fair.h). Queues: one per bundle, then
     * one for image requests with a backbone. */
    spw_fair fair;
    int n_queues;
    /* The backbone for image requests: the model from open, a plan and its
     * buffers per worker made on that worker's first image request, so that
     * a server of bundles pays nothing for it (docs/CPU_BACKENDS.md). Only
     * the worker touches its slot. */
    spw_model *bb_model;
    struct bb_slot {
        spw_plan *plan; /* batch 1 */
        float *in, *out;
        int classes;
    } * bb;
    pthread_mutex_t bb_lock; /* one worker at a time makes its plan */
    spw_preprocess bb_pp;
    int bb_w, bb_h;
    /* Worker hand-off: jobs in, finished batches out. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    batch *jobs, *jobs_tail, *finished;
    int outstanding;
    bool quit_workers;
    /* Set by spw_server_stop / spw_server_request_stats from a signal
     * handler or another thread: lock-free atomics are safe for both. */
    atomic_int stop, want_stats;
    /* Statistics: written by the serving thread, read by any thread through
     * spw_server_get_stats, so every access holds stats_lock. */
    pthread_mutex_t stats_lock;
    spw_server_stats st; /* counters and the transport snapshot */
    window w_queue, w_decode, w_infer, w_total;
    window w_up, w_compute, w_down, w_device;
    stage_rec stage_log[STAGE_LOG];
    unsigned n_stage_log;
};

static void bump(spw_server *s, uint64_t *counter, uint64_t n)
{
    pthread_mutex_lock(&s->stats_lock);
    *counter += n;
    pthread_mutex_unlock(&s->stats_lock);
}

static void win_add(window *w, double v)
{
    w->v[w->n++ % WINDOW] = v;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts w in place (a copy the caller owns) and reads two percentiles. */
static void win_pct(window *w, double *p50, double *p99)
{
    unsigned n = w->n < WINDOW ? w->n : WINDOW;
    if (!n) {
        *p50 = *p99 = 0;
        return;
    }
    double *tmp = w->v;
    qsort(tmp, n, sizeof(double), cmp_double);
    /* Nearest rank, one formula for both: p99 can never read below p50. */
    *p50 = tmp[(n + 1) / 2 - 1];
    *p99 = tmp[(99 * (size_t)n + 99) / 100 - 1];
}

static bool overlap(const uint64_t *a, const uint64_t *b)
{
    return a[0] < b[1] && b[0] < a[1];
}

/* Adds a batch's stages to the profile (stats_lock held): their times, and
 * which uploads and downloads overlapped another worker's compute, in
 * either order of completion. */
static void stage_add(spw_server *s, const batch *b)
{
    stage_rec x = {b->worker, b->stages, false, false};
    unsigned n = s->n_stage_log < STAGE_LOG ? s->n_stage_log : STAGE_LOG;
    for (unsigned i = 0; i < n; i++) {
        stage_rec *r = &s->stage_log[i];
        if (r->worker == x.worker)
            continue;
        x.up_hit = x.up_hit || overlap(x.t.up, r->t.compute);
        x.down_hit = x.down_hit || overlap(x.t.down, r->t.compute);
        if (!r->up_hit && overlap(r->t.up, x.t.compute)) {
            r->up_hit = true;
            s->st.upload_overlaps++;
        }
        if (!r->down_hit && overlap(r->t.down, x.t.compute)) {
            r->down_hit = true;
            s->st.download_overlaps++;
        }
    }
    s->st.upload_overlaps += x.up_hit;
    s->st.download_overlaps += x.down_hit;
    s->st.staged++;
    s->stage_log[s->n_stage_log++ % STAGE_LOG] = x;
    win_add(&s->w_up, (double)(x.t.up[1] - x.t.up[0]) / 1e6);
    win_add(&s->w_compute, (double)(x.t.compute[1] - x.t.compute[0]) / 1e6);
    win_add(&s->w_down, (double)(x.t.down[1] - x.t.down[0]) / 1e6);
    if (x.t.device_ns)
        win_add(&s->w_device, (double)x.t.device_ns / 1e6);
}

/* Worker: entropy-decode every request of a batch in place, run the bundle's
 * half on those that decoded, and mark the rest with their error. */
static void run_batch(spw_server *s, spw_half *h, batch *b)
{
    b->t_start = spw__now_ns();
    int *slot_of = b->slot_of, ok = 0;
    for (int i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        spw_net_msg *m = it->msg;
        /* b->segs holds as many fragments as the transport lets a message
         * have (sized from its max_msg_bytes at open). */
        if (m->nsegs > s->max_segs) {
            it->r.status = SPW_EPROTO;
            slot_of[i] = -1;
            continue;
        }
        for (int k = 0; k < m->nsegs; k++)
            b->segs[k] = (spw_codec_seg){m->segs[k].data, m->segs[k].size};
        it->r.status = spw__half_decode(h, ok, b->segs, m->nsegs, m->flags);
        slot_of[i] = it->r.status ? -1 : ok++;
    }
    b->t_decoded = spw__now_ns();
    spw_result *out = b->out;
    int rc = ok ? spw__half_run(h, ok, SPW_TOPK_MAX, out) : 0;
    b->staged = ok && !rc;
    if (b->staged)
        b->stages = h->last;
    for (int i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (slot_of[i] < 0)
            continue;
        if (rc)
            it->r.status = rc;
        else {
            it->r.k = out[slot_of[i]].k;
            memcpy(it->r.top, out[slot_of[i]].top, sizeof(it->r.top));
        }
    }
    b->t_done = spw__now_ns();
}

static int open_backbone_plan(spw_server *s, int worker);

/* Worker: decode each image request's payload, preprocess it as the
 * backbone expects and run the whole backbone on it (batch 1). */
static void run_image_batch(spw_server *s, int worker, batch *b)
{
    b->t_start = spw__now_ns();
    uint64_t t_dec = 0, t_inf = 0;
    struct bb_slot *bb = &s->bb[worker];
    int made = 0;
    if (!bb->plan) {
        /* In turn: a plan made after another of the model copies its
         * prepared operators instead of preparing its own. */
        pthread_mutex_lock(&s->bb_lock);
        made = open_backbone_plan(s, worker);
        pthread_mutex_unlock(&s->bb_lock);
    }
    for (int i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (made) {
            it->r.status = made;
            continue;
        }
        spw_net_msg *m = it->msg;
        uint64_t t0 = spw__now_ns();
        /* The decoders want one contiguous buffer. */
        unsigned char *data = spw__malloc(m->bytes ? m->bytes : 1);
        if (!data) {
            it->r.status = SPW_ENOMEM;
            continue;
        }
        size_t off = 0;
        for (int k = 0; k < m->nsegs && off < m->bytes; k++) {
            size_t take = SPW_MIN(m->segs[k].size, m->bytes - off);
            memcpy(data + off, m->segs[k].data, take);
            off += take;
        }
        spw_image img = {0};
        uint32_t len = off >= SPW_IMAGE_REQ_HEADER
                           ? (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
                                 (uint32_t)data[3] << 24
                           : 0;
        int rc;
        if (off < SPW_IMAGE_REQ_HEADER || len > off - SPW_IMAGE_REQ_HEADER)
            rc = spw__error(SPW_EPROTO, "image request: length field beyond the payload");
        else if (s->cfg.image_decode)
            rc = s->cfg.image_decode(data + SPW_IMAGE_REQ_HEADER, len, &img);
        else
            rc = spw_image_decode(data + SPW_IMAGE_REQ_HEADER, len, &img);
        spw__free(data);
        if (!rc)
            rc = spw_image_to_tensor(&img, &s->bb_pp, bb->in);
        spw_image_release(&img);
        uint64_t t1 = spw__now_ns();
        t_dec += t1 - t0;
        if (!rc) {
            spw_tensor ti = {SPW_F32, SPW_LAYOUT_NCHW, 4, {1, 3, s->bb_h, s->bb_w}, bb->in};
            spw_tensor to = {SPW_F32, SPW_LAYOUT_NCHW, 2, {1, bb->classes}, bb->out};
            rc = spw_plan_run(bb->plan, &ti, 1, &to, 1);
        }
        if (!rc)
            spw__topk(bb->out, bb->classes, bb->classes == 1001 ? 1 : 0, SPW_TOPK_MAX, &it->r);
        it->r.status = rc;
        t_inf += spw__now_ns() - t1;
    }
    b->t_decoded = b->t_start + t_dec;
    b->t_done = b->t_decoded + t_inf;
}

/* The backbone for image requests: the model, its input shape and the
 * preprocessing; plans come later, per worker (open_backbone_plan). */
static int open_backbone(spw_server *s)
{
    const spw_server_config *c = &s->cfg;
    int rc = spw_model_load(c->backbone, &s->bb_model);
    if (rc)
        return rc;
    spw_tensor in;
    if ((rc = spw_model_input(s->bb_model, 0, &in, NULL)))
        return rc;
    if (in.ndim != 4 || in.dims[1] != 3 || in.dims[2] <= 0 || in.dims[3] <= 0)
        return spw__error(SPW_ESHAPE, "backbone %s: input is not [1, 3, H, W]", c->backbone);
    s->bb_h = (int)in.dims[2];
    s->bb_w = (int)in.dims[3];
    s->bb_pp = c->backbone_pp;
    s->bb_pp.crop_w = s->bb_w;
    s->bb_pp.crop_h = s->bb_h;
    if (s->bb_pp.resize <= 0)
        s->bb_pp.resize = SPW_MAX(s->bb_w, s->bb_h);
    if (!s->bb_pp.std[0] && !s->bb_pp.std[1] && !s->bb_pp.std[2])
        for (int k = 0; k < 3; k++)
            s->bb_pp.mean[k] = s->bb_pp.std[k] = 128 / 255.f;
    s->bb = spw__calloc((size_t)s->n_workers, sizeof(*s->bb));
    if (!s->bb)
        return spw__error(SPW_ENOMEM, "out of memory");
    return 0;
}

static void close_backbone_plan(struct bb_slot *bb)
{
    spw_plan_free(bb->plan);
    spw__free(bb->in);
    spw__free(bb->out);
    *bb = (struct bb_slot){0};
}

/* On a worker's first image request: its batch-1 backbone plan (the
 * model's weights are shared, so this is the plan's own state and arena)
 * and buffers. The worker runs one batch at a time, so the plan may borrow
 * the arena of the worker's halves when it fits in it. On failure the
 * slot stays empty and the next image request tries again. */
static int open_backbone_plan(spw_server *s, int worker)
{
    struct bb_slot *bb = &s->bb[worker];
    spw_half **mine = s->halves + (size_t)worker * (size_t)s->n_bundles;
    spw_plan **donors = spw__calloc(2 * (size_t)s->n_bundles + 1, sizeof(*donors));
    if (!donors)
        return spw__error(SPW_ENOMEM, "out of memory");
    int n_donors = 0;
    for (int b = 0; b < s->n_bundles; b++) {
        donors[n_donors++] = mine[b]->dec[mine[b]->n_plans - 1];
        donors[n_donors++] = mine[b]->tail[mine[b]->n_plans - 1];
    }
    spw_plan_options po = {.backend = s->cfg.backend, .batch = 1, .threads = s->cfg.threads};
    int rc = spw__plan_create_sharing(s->bb_model, &po, donors, n_donors, &bb->plan);
    spw__free(donors);
    spw_tensor od;
    if (!rc && !(rc = spw_plan_output(bb->plan, 0, &od))) {
        bb->classes = (int)spw_tensor_numel(&od);
        bb->in = spw__malloc(sizeof(float) * 3 * (size_t)s->bb_w * (size_t)s->bb_h);
        bb->out = spw__malloc(sizeof(float) * (size_t)(bb->classes > 0 ? bb->classes : 1));
        if (!bb->in || !bb->out)
            rc = spw__error(SPW_ENOMEM, "out of memory");
        else if (bb->classes <= 0)
            rc = spw__error(SPW_ESHAPE, "backbone %s: empty output", s->cfg.backbone);
    }
    if (rc)
        close_backbone_plan(bb);
    return rc;
}

int spw__server_backbone_plans(spw_server *s)
{
    int n = 0;
    /* A worker makes its plan before it hands the batch back under s->lock:
     * once the image requests sent are answered, this reads them all. */
    pthread_mutex_lock(&s->lock);
    for (int w = 0; s->bb && w < s->n_workers; w++)
        n += s->bb[w].plan != NULL;
    pthread_mutex_unlock(&s->lock);
    return n;
}

typedef struct worker_arg {
    spw_server *s;
    int index;
} worker_arg;

static void *worker_main(void *arg)
{
    worker_arg *wa = arg;
    spw_server *s = wa->s;
    int wa_index = wa->index;
    spw_half **halves = s->halves + (size_t)wa->index * (size_t)s->n_bundles;
    spw__free(wa);
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->jobs && !s->quit_workers)
            pthread_cond_wait(&s->cond, &s->lock);
        if (!s->jobs)
            break;
        batch *b = s->jobs;
        s->jobs = b->next;
        if (!s->jobs)
            s->jobs_tail = NULL;
        pthread_mutex_unlock(&s->lock);
        b->worker = wa_index;
        b->staged = false;
        if (b->bundle == s->n_bundles)
            run_image_batch(s, wa_index, b);
        else
            run_batch(s, halves[b->bundle], b);
        pthread_mutex_lock(&s->lock);
        b->next = s->finished;
        s->finished = b;
        /* The serving thread replies: end its wait in the transport now. */
        spw_net_wake(s->net);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int spw_server_open(const spw_server_config *config, spw_server **out)
{
    if (!config || !out || config->n_bundles < 0 || (config->n_bundles && !config->bundle_dirs) ||
        (!config->n_bundles && !config->backbone))
        return spw__error(SPW_EINVAL, "server_open: no bundle (nor backbone) given");
    if (config->max_batch < 0 || config->plan_batch < 0)
        return spw__error(SPW_EINVAL, "max_batch %d, plan_batch %d: negative", config->max_batch,
                          config->plan_batch);
    /* A batch's answers are sent together and kept for retransmission until
     * ACKed: more than the transport keeps would evict the batch's own. */
    spw_net_config net = config->net;
    int rc = spw__net_config_defaults(&net);
    if (rc)
        return rc;
    if (config->max_batch > (int)net.max_outstanding)
        return spw__error(SPW_EINVAL,
                          "max_batch %d is more than the transport keeps for retransmission "
                          "(max_outstanding %u)",
                          config->max_batch, net.max_outstanding);
    spw_server *s = spw__calloc(1, sizeof(*s));
    if (!s)
        return spw__error(SPW_ENOMEM, "out of memory");
    s->cfg = *config;
    if (s->cfg.max_batch == 0)
        s->cfg.max_batch = 8;
    if (s->cfg.max_wait_us <= 0)
        s->cfg.max_wait_us = 2000;
    /* On a GPU, two workers keep two batches in flight: one uploads or
     * downloads while the other's computes. */
    bool gpu = s->cfg.backend && !strcmp(s->cfg.backend, "vulkan");
    s->n_workers = s->cfg.workers > 0 ? s->cfg.workers : gpu ? 2 : 1;
    /* Workers run at once: by default they split the cores instead of each
     * plan claiming all of them (oversubscribed, every operator's barrier
     * waits for a thread that lost its core). One thread per plan also
     * lets a CPU backend keep single-image plans (spw__backend_plan_batch). */
    if (s->cfg.threads <= 0 && s->n_workers > 1 && !gpu) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        s->cfg.threads = cores > s->n_workers ? (int)(cores / s->n_workers) : 1;
    }
    s->n_bundles = config->n_bundles;
    s->n_queues = s->n_bundles + (config->backbone ? 1 : 0);
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->stats_lock, NULL);
    pthread_mutex_init(&s->bb_lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->bundles = spw__calloc((size_t)s->n_bundles, sizeof(*s->bundles));
    s->tables = spw__calloc((size_t)s->n_bundles, sizeof(*s->tables));
    s->halves = spw__calloc((size_t)s->n_bundles * (size_t)s->n_workers, sizeof(*s->halves));
    s->threads = spw__calloc((size_t)s->n_workers, sizeof(*s->threads));
    s->n_pool = s->n_workers;
    s->pool = spw__calloc((size_t)s->n_pool, sizeof(*s->pool));
    if (!s->bundles || !s->tables || !s->halves || !s->threads || !s->pool) {
        rc = spw__error(SPW_ENOMEM, "out of memory");
        goto fail;
    }
    /* Admission: as many requests as two batches per worker and one more
     * per queue hold (docs/SERVICE.md, "Fairness"). */
    int64_t admit = (int64_t)(2 * (int64_t)s->n_workers + s->n_queues) * s->cfg.max_batch;
    if (admit > INT32_MAX) {
        rc = spw__error(SPW_EINVAL, "%d workers x max_batch %d: too many requests to admit",
                        s->n_workers, s->cfg.max_batch);
        goto fail;
    }
    if ((rc = spw__fair_init(&s->fair, (int)admit, s->n_queues)))
        goto fail;
    for (int i = 0; i < s->n_pool; i++) {
        batch *b = &s->pool[i];
        size_t mb = (size_t)s->cfg.max_batch;
        b->items = spw__calloc(mb, sizeof(item));
        b->slot_of = spw__calloc(mb, sizeof(int));
        b->out = spw__calloc(mb, sizeof(spw_result));
        b->taken = spw__calloc(mb, sizeof(spw_fair_item));
        b->total_ms = spw__calloc(mb, sizeof(double));
        if (!b->items || !b->slot_of || !b->out || !b->taken || !b->total_ms) {
            rc = spw__error(SPW_ENOMEM, "out of memory");
            goto fail;
        }
        s->pool[i].next = s->free_list;
        s->free_list = &s->pool[i];
    }
    /* The backbone's model; its plans are made per worker when needed. */
    if (config->backbone && (rc = open_backbone(s)))
        goto fail;
    for (int b = 0; b < s->n_bundles; b++) {
        if ((rc = spw_bundle_open(config->bundle_dirs[b], &s->bundles[b])) ||
            (rc = spw_bundle_load_tables(s->bundles[b], &s->tables[b])))
            goto fail;
        for (int j = 0; j < b; j++)
            if (spw_bundle_get_info(s->bundles[j])->id == spw_bundle_get_info(s->bundles[b])->id) {
                rc = spw__error(SPW_EINVAL, "bundles %s and %s have the same id",
                                config->bundle_dirs[j], config->bundle_dirs[b]);
                goto fail;
            }
        for (int w = 0; w < s->n_workers; w++) {
            /* A worker runs one batch at a time: its plans of every bundle
             * borrow one arena, the first bundle's, when it is large enough
             * (and so may its backbone plan, later). */
            spw_half **mine = s->halves + (size_t)w * (size_t)s->n_bundles;
            spw_plan *donors[3];
            int n_donors = 0;
            if (b > 0) {
                donors[n_donors++] = mine[0]->dec[mine[0]->n_plans - 1];
                donors[n_donors++] = mine[0]->tail[mine[0]->n_plans - 1];
            }
            if ((rc = spw__half_open(s->bundles[b], s->tables[b], config->models_dir,
                                     config->backend, s->cfg.threads, s->cfg.max_batch,
                                     config->plan_batch, donors, n_donors, &mine[b])))
                goto fail;
        }
    }
    if ((rc = spw_net_open(&config->net, &s->net)))
        goto fail;
    size_t frag = spw_net_frag_payload(s->net);
    s->max_segs = (int)((spw_net_max_msg_bytes(s->net) + frag - 1) / frag);
    for (int i = 0; i < s->n_pool; i++) {
        s->pool[i].segs = spw__calloc((size_t)s->max_segs, sizeof(spw_codec_seg));
        if (!s->pool[i].segs) {
            rc = spw__error(SPW_ENOMEM, "decode scratch of %d segments", s->max_segs);
            goto fail;
        }
    }
    for (int w = 0; w < s->n_workers; w++) {
        worker_arg *wa = spw__malloc(sizeof(*wa));
        if (wa) {
            wa->s = s;
            wa->index = w;
        }
        if (!wa || pthread_create(&s->threads[w], NULL, worker_main, wa)) {
            spw__free(wa);
            rc = spw__error(SPW_ENOMEM, "cannot start worker %d", w);
            goto fail;
        }
    }
    *out = s;
    return 0;
fail:
    spw_server_close(s);
    return rc;
}

void spw_server_close(spw_server *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->quit_workers = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    for (int w = 0; s->threads && w < s->n_workers; w++)
        if (s->threads[w])
            pthread_join(s->threads[w], NULL);
    /* Requests still held in batches go back to the transport. */
    for (int i = 0; s->pool && i < s->n_pool; i++) {
        if (s->net)
            for (int k = 0; k < s->pool[i].n; k++)
                spw_net_msg_free(s->net, s->pool[i].items[k].msg);
        spw__free(s->pool[i].items);
        spw__free(s->pool[i].segs);
        spw__free(s->pool[i].slot_of);
        spw__free(s->pool[i].out);
        spw__free(s->pool[i].taken);
        spw__free(s->pool[i].total_ms);
    }
    /* ... and so do those still queued. */
    for (int i = 0; s->net && i < s->fair.cap; i++)
        if (s->fair.items[i].queue >= 0)
            spw_net_msg_free(s->net, s->fair.items[i].msg);
    spw__fair_fini(&s->fair);
    spw_net_close(s->net);
    /* Borrowers before lenders: the backbone's plans, later bundles'
     * halves, then the first's. */
    for (int w = 0; s->bb && w < s->n_workers; w++)
        close_backbone_plan(&s->bb[w]);
    for (int i = s->n_bundles * s->n_workers - 1; s->halves && i >= 0; i--)
        spw__half_close(s->halves[i]);
    spw__free(s->bb);
    spw_model_free(s->bb_model);
    for (int b = 0; s->bundles && b < s->n_bundles; b++) {
        spw_codec_tables_free(s->tables[b]);
        spw_bundle_close(s->bundles[b]);
    }
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->stats_lock);
    pthread_mutex_destroy(&s->bb_lock);
    pthread_cond_destroy(&s->cond);
    spw__free(s->pool);
    spw__free(s->threads);
    spw__free(s->halves);
    spw__free(s->tables);
    spw__free(s->bundles);
    spw__free(s);
}

static void reply_error(spw_server *s, const spw_net_msg *req, int status, const char *text)
{
    spw_net_msg *m;
    size_t tl = strlen(text);
    size_t len = (4 + tl + 3) & ~(size_t)3; /* payloads are whole 4-byte words */
    if (spw_net_tx_alloc(s->net, len, &m))
        return; /* no buffers: the client times out, as with a lost packet */
    if (m->nsegs < 1 || m->segs[0].size < len) {
        spw_net_msg_free(s->net, m);
        return;
    }
    int32_t st = status;
    memset(m->segs[0].data, 0, len);
    memcpy(m->segs[0].data, &st, 4);
    memcpy((char *)m->segs[0].data + 4, text, tl);
    m->type = SPW_NET_ERROR;
    m->model_id = req->model_id;
    m->request_id = req->request_id;
    m->peer = req->peer;
    m->session = req->session;
    spw_net_send(s->net, m, 0, 0, len);
    bump(s, &s->st.errors, 1);
}

static void reply(spw_server *s, const item *it)
{
    const spw_net_msg *req = it->msg;
    if (it->r.status) {
        reply_error(s, req, it->r.status, spw_strerror(it->r.status));
        return;
    }
    spw_net_msg *m;
    size_t len = SPW_RESULT_BYTES(it->r.k);
    if (spw_net_tx_alloc(s->net, len, &m))
        return;
    if (m->nsegs < 1 || m->segs[0].size < len ||
        spw__result_pack(&it->r, it->server_us, m->segs[0].data, m->segs[0].size) != len) {
        spw_net_msg_free(s->net, m);
        return;
    }
    m->type = SPW_NET_RESULT;
    m->model_id = req->model_id;
    m->request_id = req->request_id;
    m->peer = req->peer;
    m->session = req->session;
    if (spw_net_send(s->net, m, 0, 0, len) == 0)
        bump(s, &s->st.results, 1);
}

/* Forms a batch of queue q's requests, round robin over their peers, and
 * hands it to the workers. */
static void dispatch(spw_server *s, int q)
{
    batch *b = s->free_list;
    s->free_list = b->next;
    spw_fair_item *taken = b->taken;
    b->bundle = q;
    b->n = spw__fair_take(&s->fair, q, s->cfg.max_batch, taken);
    if (!b->n) { /* pick said it was due: not reached */
        b->next = s->free_list;
        s->free_list = b;
        return;
    }
    b->t_first = taken[0].t_arrival;
    for (int i = 0; i < b->n; i++)
        b->items[i] =
            (item){.msg = taken[i].msg, .t_arrival = taken[i].t_arrival, .peer = taken[i].peer};
    b->next = NULL;
    pthread_mutex_lock(&s->lock);
    if (s->jobs_tail)
        s->jobs_tail->next = b;
    else
        s->jobs = b;
    s->jobs_tail = b;
    s->outstanding++;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_lock(&s->stats_lock);
    s->st.batches++;
    s->st.batched_items += (uint64_t)b->n;
    pthread_mutex_unlock(&s->stats_lock);
}

/* Who a request counts against: its protocol 2 session, else (protocol 1)
 * its source address and port. */
static uint64_t peer_key(const spw_net_msg *m)
{
    if (m->session)
        return 1ull << 63 | m->session;
    return (uint64_t)m->peer.ip << 16 | m->peer.port;
}

static void on_request(spw_server *s, spw_net_msg *m, uint64_t now)
{
    bump(s, &s->st.requests, 1);
    int b = -1;
    if (m->flags & SPW_REQ_IMAGE) {
        if (!s->bb_model) {
            bump(s, &s->st.dropped, 1);
            reply_error(s, m, SPW_EUNSUPPORTED,
                        "image request: this server has no backbone (serve --backbone)");
            spw_net_msg_free(s->net, m);
            return;
        }
        b = s->n_bundles;
        goto queue;
    }
    for (int i = 0; i < s->n_bundles && b < 0; i++)
        if (spw_bundle_get_info(s->bundles[i])->id == m->model_id)
            b = i;
    if (b < 0) {
        bump(s, &s->st.dropped, 1);
        reply_error(s, m, SPW_EMISMATCH, "unknown model id: client and server bundles differ");
        spw_net_msg_free(s->net, m);
        return;
    }
    const spw_bundle_info *in = spw_bundle_get_info(s->bundles[b]);
    if (m->c != in->latent_c || m->h != in->latent_h || m->w != in->latent_w) {
        bump(s, &s->st.dropped, 1);
        reply_error(s, m, SPW_EMISMATCH, "latent shape differs from the server's bundle");
        spw_net_msg_free(s->net, m);
        return;
    }
queue:
    if (spw__fair_push(&s->fair, peer_key(m), b, m, now)) {
        /* The sender holds its share: shed its load rather than queue
         * without bound; the others keep theirs. */
        bump(s, &s->st.dropped, 1);
        bump(s, &s->st.busy, 1);
        reply_error(s, m, SPW_EBUSY, "server overloaded");
        spw_net_msg_free(s->net, m);
    }
}

/* Forms batches while a worker is free and a queue is due (full, or its
 * oldest request waited max_wait_ns); returns when the next one is due. */
static uint64_t feed(spw_server *s, uint64_t now, uint64_t max_wait_ns)
{
    uint64_t wake = UINT64_MAX;
    int q;
    /* With idle_dispatch an idle server waits for no one: a lone request
     * would only lose max_wait, and those arriving meanwhile batch anyway. */
    while (s->free_list &&
           (q = spw__fair_pick(&s->fair, s->cfg.max_batch, now,
                               s->cfg.idle_dispatch && !s->outstanding ? 0 : max_wait_ns, &wake)) >=
               0)
        dispatch(s, q);
    return s->free_list ? wake : UINT64_MAX; /* no worker free: the tick of run */
}

static void complete(spw_server *s)
{
    pthread_mutex_lock(&s->lock);
    batch *done = s->finished;
    s->finished = NULL;
    pthread_mutex_unlock(&s->lock);
    while (done) {
        batch *b = done;
        done = b->next;
        uint64_t now = spw__now_ns();
        double *total_ms = b->total_ms;
        for (int i = 0; i < b->n; i++) {
            item *it = &b->items[i];
            it->server_us = (uint32_t)((now - it->t_arrival) / 1000);
            reply(s, it);
            total_ms[i] = (double)(spw__now_ns() - it->t_arrival) / 1e6;
            spw_net_msg_free(s->net, it->msg);
            spw__fair_release(&s->fair, it->peer);
        }
        pthread_mutex_lock(&s->stats_lock);
        win_add(&s->w_decode, (double)(b->t_decoded - b->t_start) / 1e6 / (b->n ? b->n : 1));
        win_add(&s->w_infer, (double)(b->t_done - b->t_decoded) / 1e6);
        if (b->staged)
            stage_add(s, b);
        for (int i = 0; i < b->n; i++) {
            win_add(&s->w_queue, (double)(b->t_start - b->items[i].t_arrival) / 1e6);
            win_add(&s->w_total, total_ms[i]);
        }
        pthread_mutex_unlock(&s->stats_lock);
        b->n = 0;
        b->next = s->free_list;
        s->free_list = b;
        s->outstanding--;
    }
}

/* Transport counters are the serving thread's; others see this copy. */
static void snapshot_net(spw_server *s)
{
    spw_net_stats net;
    spw_net_stats_get(s->net, &net);
    pthread_mutex_lock(&s->stats_lock);
    s->st.net = net;
    pthread_mutex_unlock(&s->stats_lock);
}

/* Graceful stop: finish the requests accepted so far, refuse new ones with
 * ERROR SPW_ECANCELED (the client sends them elsewhere at once), and stay
 * until every answer is ACKed or has expired, so none leaves with the
 * process. Bounded: the computation by DRAIN_WORK_NS, the answers by the
 * transport's retention. */
#define DRAIN_WORK_NS 5000000000ull
#define DRAIN_ANSWERS_NS 2000000000ull

static void refuse(spw_server *s, const spw_net_msg *m)
{
    bump(s, &s->st.requests, 1);
    bump(s, &s->st.refused, 1);
    reply_error(s, m, SPW_ECANCELED, "server draining: send it elsewhere");
}

static void drain(spw_server *s)
{
    /* Health checks (PING) now fail, so balancers stop sending new flows. */
    spw_net_set_ready(s->net, false);
    uint64_t start = spw__now_ns();
    uint64_t work_end = start + DRAIN_WORK_NS, end = work_end + DRAIN_ANSWERS_NS;
    spw_net_msg *msgs[32];
    for (;;) {
        uint64_t now = spw__now_ns();
        /* Everything accepted runs now, without waiting to fill batches. */
        feed(s, now, 0);
        if (now >= end || (now >= work_end && (s->outstanding || s->fair.queued)))
            break;
        if (!s->outstanding && !s->fair.queued && !spw_net_kept(s->net))
            break;
        spw_net_poll(s->net, s->outstanding ? 100 : 1000);
        int n;
        while ((n = spw_net_recv(s->net, msgs, 32)) > 0)
            for (int i = 0; i < n; i++) {
                if (msgs[i]->type == SPW_NET_REQUEST && msgs[i]->status == 0)
                    refuse(s, msgs[i]);
                spw_net_msg_free(s->net, msgs[i]);
            }
        complete(s);
    }
    if (s->outstanding || spw_net_kept(s->net))
        SPW_LOGW("server: stopped draining after %.1f s with %d batches running and %zu "
                 "answers unacknowledged",
                 (double)(spw__now_ns() - start) / 1e9, s->outstanding, spw_net_kept(s->net));
}

int spw_server_run(spw_server *s)
{
    if (!s)
        return spw__error(SPW_EINVAL, "server_run: NULL server");
    spw_net_msg *msgs[32];
    uint64_t max_wait_ns = (uint64_t)s->cfg.max_wait_us * 1000;
    while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {
        uint64_t now = spw__now_ns();
        /* Sleep in the transport until a packet, the oldest partial batch's
         * deadline, or a worker's finished batch (it wakes the transport). */
        int64_t wait = 20000;
        uint64_t due = feed(s, now, max_wait_ns);
        if (due != UINT64_MAX)
            wait = due <= now ? 0 : SPW_MIN(wait, (int64_t)((due - now) / 1000));
        int rc = spw_net_poll(s->net, wait);
        if (rc < 0 && rc != SPW_EAGAIN)
            SPW_LOGW("server: transport: %s", spw_strerror(rc));
        int n;
        while ((n = spw_net_recv(s->net, msgs, 32)) > 0) {
            now = spw__now_ns();
            /* Once stopped, nothing more is accepted, even from this burst. */
            bool stopping = atomic_load_explicit(&s->stop, memory_order_relaxed);
            for (int i = 0; i < n; i++) {
                if (msgs[i]->type != SPW_NET_REQUEST || msgs[i]->status != 0) {
                    spw_net_msg_free(s->net, msgs[i]);
                } else if (stopping) {
                    refuse(s, msgs[i]);
                    spw_net_msg_free(s->net, msgs[i]);
                } else {
                    on_request(s, msgs[i], now);
                }
            }
        }
        complete(s);
        snapshot_net(s);
        /* A batch forms when a worker is free and its queue is full or its
         * oldest request waited max_wait: while every worker is busy, later
         * requests wait with it instead of queueing behind it as batches of
         * one, and the next batch takes them round robin over peers. */
        feed(s, spw__now_ns(), max_wait_ns);
        if (atomic_exchange_explicit(&s->want_stats, 0, memory_order_relaxed))
            spw_server_print_stats(s, stderr);
    }
    drain(s);
    snapshot_net(s);
    return 0;
}

void spw_server_stop(spw_server *s)
{
    if (s)
        atomic_store_explicit(&s->stop, 1, memory_order_relaxed);
}

void spw_server_request_stats(spw_server *s)
{
    if (s)
        atomic_store_explicit(&s->want_stats, 1, memory_order_relaxed);
}

void spw_server_get_stats(spw_server *s, spw_server_stats *out)
{
    if (!s || !out)
        return;
    /* Copy under the lock, sort outside it: the serving thread waits only
     * for the copy. */
    window *w = spw__malloc(8 * sizeof(window));
    pthread_mutex_lock(&s->stats_lock);
    *out = s->st;
    if (w) {
        w[0] = s->w_queue;
        w[1] = s->w_decode;
        w[2] = s->w_infer;
        w[3] = s->w_total;
        w[4] = s->w_up;
        w[5] = s->w_compute;
        w[6] = s->w_down;
        w[7] = s->w_device;
    }
    pthread_mutex_unlock(&s->stats_lock);
    if (!w)
        return; /* counters only */
    win_pct(&w[0], &out->queue_p50, &out->queue_p99);
    win_pct(&w[1], &out->decode_p50, &out->decode_p99);
    win_pct(&w[2], &out->infer_p50, &out->infer_p99);
    win_pct(&w[3], &out->total_p50, &out->total_p99);
    win_pct(&w[4], &out->upload_p50, &out->upload_p99);
    win_pct(&w[5], &out->compute_p50, &out->compute_p99);
    win_pct(&w[6], &out->download_p50, &out->download_p99);
    double unused;
    win_pct(&w[7], &out->device_p50, &unused);
    spw__free(w);
}

void spw_server_print_stats(spw_server *s, FILE *f)
{
    spw_server_stats st;
    spw_server_get_stats(s, &st);
    fprintf(f,
            "splitwire server: %llu requests, %llu results, %llu errors, %llu dropped, "
            "%llu refused draining; "
            "%llu batches (mean %.2f)\n"
            "  ms p50/p99: queue %.3f/%.3f  decode %.3f/%.3f  infer(batch) %.3f/%.3f  "
            "total %.3f/%.3f\n"
            "  net: rx %llu pkts, tx %llu pkts, retransmits %llu, invalid %llu, copied rx %llu "
            "tx %llu bytes\n",
            (unsigned long long)st.requests, (unsigned long long)st.results,
            (unsigned long long)st.errors, (unsigned long long)st.dropped,
            (unsigned long long)st.refused, (unsigned long long)st.batches,
            st.batches ? (double)st.batched_items / (double)st.batches : 0.0, st.queue_p50,
            st.queue_p99, st.decode_p50, st.decode_p99, st.infer_p50, st.infer_p99, st.total_p50,
            st.total_p99, (unsigned long long)st.net.rx_packets,
            (unsigned long long)st.net.tx_packets, (unsigned long long)st.net.retransmits,
            (unsigned long long)st.net.rx_invalid, (unsigned long long)st.net.rx_copy_bytes,
            (unsigned long long)st.net.tx_copy_bytes);
    /* Per-stage profile of decoder + tail: with several workers, a transfer
     * that ran during another worker's compute kept the device busy. */
    fprintf(f,
            "  stages ms p50/p99: upload %.3f/%.3f  compute %.3f/%.3f  download %.3f/%.3f  "
            "device %.3f; overlapping another worker's compute: uploads %llu/%llu, "
            "downloads %llu/%llu\n",
            st.upload_p50, st.upload_p99, st.compute_p50, st.compute_p99, st.download_p50,
            st.download_p99, st.device_p50, (unsigned long long)st.upload_overlaps,
            (unsigned long long)st.staged, (unsigned long long)st.download_overlaps,
            (unsigned long long)st.staged);
    /* Protocol 2: what was refused, and why. */
    fprintf(f,
            "  auth: handshakes %llu, forged %llu, replayed %llu, no session %llu, cookies %llu\n",
            (unsigned long long)st.net.handshakes, (unsigned long long)st.net.rx_auth_fail,
            (unsigned long long)st.net.rx_replay, (unsigned long long)st.net.rx_no_session,
            (unsigned long long)st.net.cookies_sent);
    fprintf(f, "  admission: %llu refused busy (a peer over its share)\n",
            (unsigned long long)st.busy);
}

int spw_server_local_addr(const spw_server *s, spw_net_addr *out)
{
    if (!s || !out)
        return spw__error(SPW_EINVAL, "server_local_addr: NULL argument");
    return spw_net_local_addr(s->net, out);
}

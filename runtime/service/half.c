/* The server half of a bundle: symbols -> features -> class scores. Used by
 * the server's workers and by the client's local mode. */
#include <math.h>
#include <string.h>

#include "drivers/backend.h"
#include "runtime/graph/plan.h"
#include "runtime/service/service_internal.h"

void spw__topk(const float *s, int n, int label_offset, int k, spw_result *r)
{
    /* A backbone that ends in Softmax already gives probabilities. */
    double sum = 0, mx = -INFINITY;
    bool probs = true;
    for (int i = 0; i < n; i++) {
        probs = probs && s[i] >= 0 && s[i] <= 1;
        sum += s[i];
        mx = s[i] > mx ? s[i] : mx;
    }
    probs = probs && fabs(sum - 1.0) < 1e-3;
    double z = 0;
    if (!probs)
        for (int i = 0; i < n; i++)
            z += exp(s[i] - mx);
    if (k > n)
        k = n;
    if (k > SPW_TOPK_MAX)
        k = SPW_TOPK_MAX;
    r->k = k;
    /* k is tiny: repeated selection beats sorting n scores. */
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int i = 0; i < n; i++) {
            bool taken = false;
            for (int t = 0; t < j && !taken; t++)
                taken = r->top[t].label == i - label_offset;
            if (!taken && (best < 0 || s[i] > s[best]))
                best = i;
        }
        r->top[j].label = best - label_offset;
        r->top[j].prob = probs ? s[best] : (float)(exp(s[best] - mx) / z);
    }
}

size_t spw__result_pack(const spw_result *r, uint32_t server_us, void *buf, size_t cap)
{
    size_t need = SPW_RESULT_BYTES(r->k);
    if (cap < need)
        return 0;
    uint32_t hdr[4] = {SPW_RESULT_VERSION, (uint32_t)r->k, server_us, 0};
    memcpy(buf, hdr, sizeof(hdr));
    unsigned char *p = (unsigned char *)buf + SPW_RESULT_HEADER;
    for (int i = 0; i < r->k; i++) {
        int32_t label = r->top[i].label;
        memcpy(p, &label, 4);
        memcpy(p + 4, &r->top[i].prob, 4);
        p += 8;
    }
    return need;
}

int spw__result_unpack(const void *buf, size_t len, spw_result *r, uint32_t *server_us)
{
    uint32_t hdr[4];
    if (len < SPW_RESULT_HEADER)
        return spw__error(SPW_EPROTO, "result: %zu bytes is too short", len);
    memcpy(hdr, buf, sizeof(hdr));
    if (hdr[0] != SPW_RESULT_VERSION)
        return spw__error(SPW_EPROTO, "result: version %u", hdr[0]);
    if (hdr[1] > SPW_TOPK_MAX || len < SPW_RESULT_BYTES(hdr[1]))
        return spw__error(SPW_EPROTO, "result: %u scores in %zu bytes", hdr[1], len);
    r->k = (int)hdr[1];
    *server_us = hdr[2];
    const unsigned char *p = (const unsigned char *)buf + SPW_RESULT_HEADER;
    for (int i = 0; i < r->k; i++) {
        int32_t label;
        memcpy(&label, p, 4);
        memcpy(&r->top[i].prob, p + 4, 4);
        r->top[i].label = label;
        p += 8;
    }
    return 0;
}

int spw__half_open(const spw_bundle *bundle, const spw_codec_tables *tables, const char *models_dir,
                   const char *backend, int threads, int max_batch, int plan_batch,
                   spw_plan *const *donors, int n_donors, spw_half **out)
{
    if (max_batch < 1 || plan_batch < 0 || n_donors < 0 || n_donors > 6)
        return spw__error(SPW_EINVAL, "server half: max_batch %d, plan_batch %d", max_batch,
                          plan_batch);
    const spw_bundle_info *in = spw_bundle_get_info(bundle);
    spw_half *h = spw__calloc(1, sizeof(*h));
    if (!h)
        return spw__error(SPW_ENOMEM, "out of memory");
    spw_model *dec = NULL, *tail = NULL;
    int rc;
    h->info = in;
    h->max_batch = max_batch;
    if (!plan_batch)
        plan_batch = spw__backend_plan_batch(backend, threads);
    h->plan_batch = plan_batch && plan_batch < max_batch ? plan_batch : max_batch;
    h->latent_elems = (size_t)in->latent_c * (size_t)in->latent_h * (size_t)in->latent_w;
    h->feat_elems = (size_t)in->split_c * (size_t)in->split_h * (size_t)in->split_w;
    h->classes = in->num_classes;
    spw_codec_config plain = {SPW_CODEC_PLAIN, 1, 0}, tiled = {SPW_CODEC_TILED, 1, 0};
    if ((rc = spw_codec_create(tables, &plain, &h->plain)) ||
        (rc = spw_codec_create(tables, &tiled, &h->tiled)))
        goto fail;
    if ((rc = spw_bundle_load_decoder(bundle, &dec)) ||
        (rc = spw_bundle_load_tail(bundle, models_dir, &tail)))
        goto fail;
    /* Powers of two below plan_batch, then plan_batch itself: 31 at most. */
    int n = 0;
    for (int b = 1; b < h->plan_batch; b *= 2)
        h->sizes[n++] = b;
    h->sizes[n++] = h->plan_batch;
    /* The plans of one half run one after another, never at once, so they
     * borrow an activations arena that holds theirs: first the caller's
     * (the worker's other plans), then the largest decoder or tail plan's,
     * made first (weights are shared anyway). */
    spw_plan *lend[8];
    for (int i = 0; i < n_donors; i++)
        lend[i] = donors[i];
    for (int i = n - 1; i >= 0; i--) {
        spw_plan_options o = {.backend = backend, .batch = h->sizes[i], .threads = threads};
        lend[n_donors] = h->dec[n - 1];
        lend[n_donors + 1] = h->tail[n - 1];
        if ((rc = spw__plan_create_sharing(dec, &o, lend, n_donors + 2, &h->dec[i])))
            goto fail;
        lend[n_donors] = h->dec[n - 1];
        if ((rc = spw__plan_create_sharing(tail, &o, lend, n_donors + 2, &h->tail[i])))
            goto fail;
    }
    h->n_plans = n;
    /* Whole sub-batches: the last one of a batch may run on a plan larger
     * than the slots it has left. */
    size_t rows = (size_t)((max_batch + h->plan_batch - 1) / h->plan_batch * h->plan_batch);
    h->symbols = spw__calloc(rows * h->latent_elems, sizeof(int32_t));
    h->features = spw__calloc((size_t)h->plan_batch * h->feat_elems, sizeof(float));
    h->logits = spw__calloc(rows * (size_t)h->classes, sizeof(float));
    if (!h->symbols || !h->features || !h->logits) {
        rc = spw__error(SPW_ENOMEM, "out of memory for a batch of %d", max_batch);
        goto fail;
    }
    spw_model_free(dec);
    spw_model_free(tail);
    *out = h;
    return 0;
fail:
    spw_model_free(dec);
    spw_model_free(tail);
    spw__half_close(h);
    return rc;
}

void spw__half_close(spw_half *h)
{
    if (!h)
        return;
    /* Borrowers before the plans whose arenas they use: the smaller sizes,
     * and at the largest the tail (which may borrow the decoder's). */
    for (int i = 0; i < (int)SPW_ARRAY_SIZE(h->dec); i++) {
        spw_plan_free(h->tail[i]);
        spw_plan_free(h->dec[i]);
    }
    spw_codec_free(h->plain);
    spw_codec_free(h->tiled);
    spw__free(h->symbols);
    spw__free(h->features);
    spw__free(h->logits);
    spw__free(h);
}

int spw__half_decode(spw_half *h, int slot, const spw_codec_seg *segs, int nsegs, unsigned flags)
{
    const spw_bundle_info *in = h->info;
    spw_codec_report rep = {0};
    int rc = spw_codec_decode((flags & SPW_REQ_TILED) ? h->tiled : h->plain, segs, nsegs,
                              in->latent_c, in->latent_h, in->latent_w,
                              h->symbols + (size_t)slot * h->latent_elems, &rep);
    if (rc)
        return rc;
    if (rep.decoded < rep.tiles)
        SPW_LOGI("request decoded %d of %d tiles; the rest hold the medians", rep.decoded,
                 rep.tiles);
    return 0;
}

/* Runs slots [off, off + n) (n <= plan_batch) on the smallest plan that
 * holds them; their scores land in logits at the same slots. */
static int run_plans(spw_half *h, int off, int n)
{
    int p = 0;
    while (p < h->n_plans - 1 && h->sizes[p] < n)
        p++;
    int b = h->sizes[p];
    const spw_bundle_info *in = h->info;
    /* Slots past n hold stale symbols (or the next sub-batch's): harmless,
     * their outputs are ignored; the buffers hold whole sub-batches. */
    spw_tensor sym = {SPW_I32,
                      SPW_LAYOUT_NCHW,
                      4,
                      {b, in->latent_c, in->latent_h, in->latent_w},
                      h->symbols + (size_t)off * h->latent_elems};
    /* Take the exact output shapes from the plans ([N, classes] or
     * [N, 1, 1, classes] are both fine); the sizes were checked at load. */
    spw_tensor feat, logits;
    spw_plan_output(h->dec[p], 0, &feat);
    spw_plan_output(h->tail[p], 0, &logits);
    feat.dtype = logits.dtype = SPW_F32;
    feat.data = h->features;
    logits.data = h->logits + (size_t)off * (size_t)h->classes;
    int rc = spw_plan_run(h->dec[p], &sym, 1, &feat, 1);
    if (rc)
        return rc;
    if ((rc = spw_plan_run(h->tail[p], &feat, 1, &logits, 1)))
        return rc;
    const spw_plan *d = h->dec[p], *t = h->tail[p];
    uint64_t dev = d->device_ns && t->device_ns ? d->device_ns + t->device_ns : 0;
    if (off == 0) {
        h->last = (spw_half_stages){
            .up = {d->run_ns[0], d->run_ns[1]},
            .compute = {d->run_ns[2], t->run_ns[3]},
            .down = {t->run_ns[3], t->run_ns[4]},
            .device_ns = dev,
        };
    } else {
        /* Sub-batches: compute from the first's start to the last's end,
         * scores out of the last one. */
        h->last.compute[1] = t->run_ns[3];
        h->last.down[0] = t->run_ns[3];
        h->last.down[1] = t->run_ns[4];
        h->last.device_ns = h->last.device_ns && dev ? h->last.device_ns + dev : 0;
    }
    return 0;
}

int spw__half_run(spw_half *h, int n, int k, spw_result *out)
{
    if (n < 1 || n > h->max_batch)
        return spw__error(SPW_EINVAL, "server half: batch of %d (1..%d)", n, h->max_batch);
    for (int off = 0; off < n; off += h->plan_batch) {
        int rc = run_plans(h, off, SPW_MIN(h->plan_batch, n - off));
        if (rc)
            return rc;
    }
    for (int i = 0; i < n; i++)
        spw__topk(h->logits + (size_t)i * (size_t)h->classes, h->classes, h->info->label_offset, k,
                  &out[i]);
    return 0;
}

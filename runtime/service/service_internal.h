/* Shared pieces of the client and server runtimes. Not installed. */
#ifndef SPW_SERVICE_INTERNAL_H
#define SPW_SERVICE_INTERNAL_H

#include "runtime/core/internal.h"
#include "splitwire/service.h"

/* Request flags on the wire (spw_net_msg.flags). */
#define SPW_REQ_TILED 0x1u
/* The payload is an encoded image (JPEG, PNG, or what the server's
 * image_decode reads) for the server's whole backbone: u32 image bytes
 * (little-endian), the image, zeros to a whole 4-byte word. model_id and
 * the latent shape are not used. */
#define SPW_REQ_IMAGE 0x2u
#define SPW_IMAGE_REQ_HEADER 4

/* RESULT payload, little-endian, 4-byte fields:
 *   u32 version (1) | u32 k | u32 server_us | u32 reserved
 *   k x { i32 label, f32 prob }
 * ERROR payload: i32 status | UTF-8 text (not terminated). */
#define SPW_RESULT_VERSION 1
#define SPW_RESULT_HEADER 16
#define SPW_RESULT_BYTES(k) (SPW_RESULT_HEADER + 8 * (size_t)(k))

/* A transport configuration as spw_net_open takes it: zeros replaced by
 * the defaults, limits checked (netpath/net.c). The server derives its own
 * limits from it. */
int spw__net_config_defaults(spw_net_config *c);

size_t spw__result_pack(const spw_result *r, uint32_t server_us, void *buf, size_t cap);
int spw__result_unpack(const void *buf, size_t len, spw_result *r, uint32_t *server_us);

/* One batch's stages in host time (spw__now_ns), for the server's
 * per-stage profile: symbols into the decoder's arena, compute (decoder
 * submitted to tail done; the features' hop from one plan to the next is
 * inside), scores out of the tail's arena. */
typedef struct spw_half_stages {
    uint64_t up[2], compute[2], down[2];
    uint64_t device_ns; /* decoder + tail by the device's timestamps, 0 unknown */
} spw_half_stages;

#define SPW_HALF_PLANS 32 /* plan sizes 1, 2, 4 ... 2^30, then the largest */

/*
 * The server half of one bundle: entropy decode into batch slots, then the
 * decoder and the backbone tail on a batch, then top-k. Plans exist for
 * batch sizes 1, 2, 4, ... up to plan_batch (<= max_batch); a batch larger
 * than plan_batch runs as consecutive sub-batches of plan_batch on the same
 * plans and arena, and the rest on the smallest plan that holds it. Each
 * image's scores do not depend on the batch it ran in. Not thread-safe:
 * one per worker.
 */
typedef struct spw_half {
    const spw_bundle_info *info;
    spw_codec *plain, *tiled;
    int n_plans;
    int sizes[SPW_HALF_PLANS];
    spw_plan *dec[SPW_HALF_PLANS], *tail[SPW_HALF_PLANS];
    int max_batch, plan_batch;
    size_t latent_elems, feat_elems;
    int classes;
    int32_t *symbols;     /* max_batch (rounded up to whole plan_batches) x latent */
    float *features;      /* plan_batch x split features */
    float *logits;        /* as many rows as symbols x classes */
    spw_half_stages last; /* of the last spw__half_run */
} spw_half;

/* plan_batch: the largest plan (0: the backend's preference for plans of
 * `threads` threads, see spw__backend_plan_batch); at most max_batch. donors: plans that never run
 * at the same time as this half's (the same worker's), whose arenas its
 * plans may borrow (spw__plan_create_sharing); they must outlive the half. */
int spw__half_open(const spw_bundle *bundle, const spw_codec_tables *tables, const char *models_dir,
                   const char *backend, int threads, int max_batch, int plan_batch,
                   spw_plan *const *donors, int n_donors, spw_half **out);
void spw__half_close(spw_half *h);
/* Entropy-decodes one request's stream (segments in order) into slot. */
int spw__half_decode(spw_half *h, int slot, const spw_codec_seg *segs, int nsegs, unsigned flags);
/* Runs slots [0, n) and writes top-k (k <= SPW_TOPK_MAX) into out[0..n). */
int spw__half_run(spw_half *h, int n, int k, spw_result *out);

/* Softmax (unless the values already are probabilities) and top-k. */
/* Rate points whose networks do the same work (equal MACs, > 0) cost the
 * same: each takes the least compute_ms measured among them (0: not yet
 * measured), since what separates their measurements is the machine's
 * load, not the points. */
void spw__adapt_share_compute(spw_rate_point *pts, const int64_t *macs, int n);

void spw__topk(const float *scores, int n, int label_offset, int k, spw_result *r);

/* How many of a server's workers have made their backbone plan for image
 * requests (made on each worker's first one). */
int spw__server_backbone_plans(spw_server *s);

#endif

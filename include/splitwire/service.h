/* splitwire: the client and server runtimes. */
#ifndef SPLITWIRE_SERVICE_H
#define SPLITWIRE_SERVICE_H

#include <stdio.h>

#include "splitwire/bundle.h"
#include "splitwire/codec.h"
#include "splitwire/image.h"
#include "splitwire/net.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SPW_TOPK_MAX 10

typedef struct spw_class_score {
    int label;  /* class index (backbone output index - label_offset); -1 = background */
    float prob; /* softmax probability */
} spw_class_score;

/* Per-image outcome and where the time went (milliseconds). */
typedef struct spw_result {
    uint64_t request_id;
    int status; /* 0, or SPW_E*: the server's error, SPW_ETIMEDOUT, ... */
    int k;
    spw_class_score top[SPW_TOPK_MAX];
    size_t bytes;         /* coded latent bytes sent */
    double bpp;           /* bytes * 8 / (input width * height) */
    double ms_preprocess; /* decode the image, resize, crop, normalise */
    double ms_encode;     /* encoder network */
    double ms_entropy;    /* rANS coding into transmit buffers */
    double ms_network;    /* round trip minus server time */
    double ms_server;     /* server: entropy decode + decoder + tail (and batching wait) */
    double ms_total;      /* submit to result */
    int rate_point;       /* the bundle it went out with: 0 = bundle_dir, i = rate_bundles[i - 1] */
} spw_result;

/* ---- client ------------------------------------------------------------- */

typedef struct spw_client spw_client;

typedef struct spw_client_config {
    const char *bundle_dir;
    const char *backend;     /* encoder backend: NULL/"auto", "cpu", "cpu-ref", "vulkan" */
    int threads;             /* 0: backend default */
    spw_codec_format format; /* stream format sent to the server */
    int topk;                /* results wanted, 1 .. SPW_TOPK_MAX (0 = 5) */
    int timeout_ms;          /* per request (0 = 2000) */
    int max_inflight;        /* submitted but unanswered requests (0 = 16) */
    /* Remote mode: the transport to the server. */
    spw_net_config net;
    /* Remote mode, failover: servers ("ip:port") tried in turn, replacing
     * net.peer when n_servers > 0. A request the server refused as draining
     * (SPW_ECANCELED), or one that went failover_probes probes without any
     * reply, is sent again on a new flow: to the next server, and over kernel
     * UDP with an ephemeral local port also from a new socket (a new source
     * port), so a balancer hashing 5-tuples picks a server again. The
     * strings of net and servers must outlive the client: a failover opens
     * the new socket with them. */
    const char *const *servers;
    int n_servers;
    int failover_probes; /* 0 = 3; < 0: never on silence, only when refused */
    /* Local mode: run the server half in this process, no network. */
    int local;
    const char *models_dir; /* local mode: where the backbone is (see spw_bundle_load_tail) */
    /* Rate adaptation: more bundles the client may send a request with,
     * usually lower rate points of bundle_dir's family, all served by the
     * same server (each is kept loaded). With slo_ms > 0 each request goes
     * out with the most accurate point (manifest top1; else the lower
     * rate_index) whose predicted latency meets slo_ms, or the fastest
     * predicted when none does (spw_adapt_choose). The prediction comes
     * from this client's own answers only: a path estimate fitted to bytes
     * and network times, and each point's compute time. slo_ms 0: every
     * request uses bundle_dir unless spw_client_set_rate_point says else. */
    const char *const *rate_bundles;
    int n_rate_bundles; /* 0 .. SPW_RATE_POINTS_MAX - 1 */
    double slo_ms;
} spw_client_config;

#define SPW_RATE_POINTS_MAX 8

SPW_API int spw_client_open(const spw_client_config *config, spw_client **out);
SPW_API void spw_client_close(spw_client *client);
SPW_API const spw_bundle_info *spw_client_bundle(const spw_client *client);

/* Classifies one image and waits for the answer. */
SPW_API int spw_client_classify(spw_client *client, const spw_image *image, spw_result *out);

/* Encodes and sends one image without waiting; while it is on the wire the
 * caller can submit the next, so encoding overlaps transmission. SPW_EBUSY
 * when max_inflight requests are outstanding (poll first). */
SPW_API int spw_client_submit(spw_client *client, const spw_image *image, uint64_t *request_id);

/* Collects up to max finished requests, waiting up to timeout_ms (0: no
 * wait, < 0: until one finishes). Returns the count. A request that timed out
 * comes back with status SPW_ETIMEDOUT. */
SPW_API int spw_client_poll(spw_client *client, spw_result *results, int max, int timeout_ms);

/* Requests submitted and not yet returned by spw_client_poll. */
SPW_API int spw_client_pending(const spw_client *client);

/* Round trip to the server with a PING; SPW_ETIMEDOUT when nobody answers. */
SPW_API int spw_client_ping(spw_client *client, int timeout_ms, double *rtt_ms);

/* ---- rate adaptation ------------------------------------------------------ */

/* One rate point (a bundle) as the adaptation policy sees it. */
typedef struct spw_rate_point {
    double bytes;      /* request bytes it sends (coded latent) */
    double compute_ms; /* client preprocess + encode + entropy, and server time */
    double accuracy;   /* top-1 or any score where higher is better */
} spw_rate_point;

/* The path, from the client's own traffic: network time = base_ms +
 * bytes * 8 / rate_bps, fitted over recent requests (newest weigh most), so
 * no probing traffic is needed. Zero-initialise before the first sample. */
typedef struct spw_path_estimate {
    double rate_bps; /* 0 until requests of two different sizes were seen */
    double base_ms;  /* round trip of an empty request: delays, reply, stacks */
    int samples;
    double sw, sx, sy, sxx, sxy; /* decayed sums of the fit */
} spw_path_estimate;

/* Adds one answered request: its bytes and network time (round trip minus
 * server time, spw_result.ms_network). */
SPW_API void spw_path_estimate_add(spw_path_estimate *e, double bytes, double network_ms);

/* Predicted total latency of rate point p on the path (ms). */
SPW_API double spw_adapt_predict(const spw_rate_point *p, const spw_path_estimate *e);

/* The rate point with the best accuracy whose predicted latency meets
 * slo_ms, or the fastest predicted when none does; -1 when n < 1. */
SPW_API int spw_adapt_choose(const spw_rate_point *points, int n, const spw_path_estimate *e,
                             double slo_ms);

/* The client's rate points: 1 + n_rate_bundles, and each one's bundle
 * (NULL past the end). */
SPW_API int spw_client_rate_points(const spw_client *client);
SPW_API const spw_bundle_info *spw_client_bundle_at(const spw_client *client, int point);

/* Sends the following requests with one rate point (0 .. points - 1), or
 * lets the policy choose again (-1; with slo_ms 0 that is point 0). */
SPW_API int spw_client_set_rate_point(spw_client *client, int point);

/* What the adaptation sees now: the path estimate and, per rate point, its
 * predicted bytes, compute time (0 until measured) and accuracy. Returns
 * the number of points written (at most max). */
SPW_API int spw_client_adapt_state(const spw_client *client, spw_path_estimate *path,
                                   spw_rate_point *points, int max);

/* ---- server ------------------------------------------------------------- */

typedef struct spw_server spw_server;

typedef struct spw_server_config {
    const char *const *bundle_dirs; /* one or more bundles (e.g. rate points) */
    int n_bundles;
    const char *models_dir; /* where backbones are (NULL: $SPW_MODEL_DIR or build/models) */
    const char *backend;
    int threads; /* per plan; 0: the cores split over the workers (each plan all of them with one worker) */
    /* Requests per batch (0 = 8), up to the transport's max_outstanding: a
     * batch's answers are kept together for retransmission. */
    int max_batch;
    int max_wait_us; /* a partial batch runs after this long (0 = 2000) */
    int workers;     /* inference threads (0 = 1; 2 with backend "vulkan") */
    spw_net_config net;
    /* Image requests (codec offload): the client sends an encoded image, the
     * server decodes it and runs this whole backbone (ONNX) on it. NULL:
     * such requests are refused. */
    const char *backbone;
    /* Its input convention: resize (0: the input's longer side), mean and
     * std (all 0: the MobileNet (q - 128) / 128); the crop is the model's
     * input size. The label offset is 1 for 1001 outputs, else 0. */
    spw_preprocess backbone_pp;
    /* Decodes an image request's payload; NULL: spw_image_decode. */
    int (*image_decode)(const void *data, size_t size, spw_image *out);
    /* 1: while no batch runs, a waiting request runs at once (in a partial
     * batch) instead of waiting max_wait_us for others; later arrivals
     * still batch while it runs. 0: partial batches wait max_wait_us. */
    int idle_dispatch;
    /* The largest plan a worker builds: a larger batch runs as consecutive
     * sub-batches of this size on one set of plans and one arena (same
     * scores, less memory). 0: the backend's preference (1 on cpu-ref and
     * on cpu-fast with one thread per plan, else max_batch;
     * docs/CPU_BACKENDS.md). */
    int plan_batch;
} spw_server_config;

typedef struct spw_server_stats {
    uint64_t requests, results, errors, dropped; /* dropped: malformed, unknown model, or busy */
    uint64_t refused; /* arrived while draining: answered SPW_ECANCELED, not computed */
    uint64_t batches, batched_items;
    /* Of the dropped: refused as overloaded (ERROR SPW_EBUSY) because the
     * sender held its share of the admitted requests (docs/SERVICE.md). */
    uint64_t busy;
    /* Percentiles over the recent window (milliseconds). */
    double queue_p50, queue_p99;   /* arrival to batch start */
    double decode_p50, decode_p99; /* entropy decode */
    double infer_p50, infer_p99;   /* decoder + tail per batch */
    double total_p50, total_p99;   /* arrival to reply */
    /* Per-stage profile of decoder + tail batches (host clock): symbols
     * uploaded, compute (decoder submitted to tail done), scores
     * downloaded; device_p50 is the compute by the device's own timestamps
     * (0 where the backend has none). */
    double upload_p50, upload_p99, compute_p50, compute_p99, download_p50, download_p99;
    double device_p50;
    /* Batches profiled, and how many of their uploads and of their
     * downloads ran while another worker's batch was computing. */
    uint64_t staged, upload_overlaps, download_overlaps;
    spw_net_stats net;
} spw_server_stats;

SPW_API int spw_server_open(const spw_server_config *config, spw_server **out);
/* Serves until spw_server_stop() (async-signal-safe) is called, then drains:
 * requests accepted before are answered, later ones are refused with ERROR
 * SPW_ECANCELED (clients send them to another server), and it returns once
 * every answer is ACKed or expired. */
SPW_API int spw_server_run(spw_server *server);
SPW_API void spw_server_stop(spw_server *server);
SPW_API void spw_server_get_stats(spw_server *server, spw_server_stats *out);
/* Asks the serving loop to print its statistics to stderr (async-signal-safe:
 * meant for a SIGUSR1 handler). */
SPW_API void spw_server_request_stats(spw_server *server);
SPW_API void spw_server_print_stats(spw_server *server, FILE *f);
SPW_API int spw_server_local_addr(const spw_server *server, spw_net_addr *out);
SPW_API void spw_server_close(spw_server *server);

/* ---- for clients and tools that go further ------------------------------- */

/* The transport counters of a remote client (zeros in local mode): frames
 * and bytes on the wire per request are differences of two readings. */
SPW_API int spw_client_net_stats(const spw_client *client, spw_net_stats *out);
/* Local mode: every output of the backbone (logits, before softmax) for the
 * most recent request, valid until the next submit; SPW_EINVAL for a remote
 * client. For evaluations that need more than the top-k. */
SPW_API int spw_client_local_scores(const spw_client *client, const float **scores, int *n);
/* Softmax (unless the scores already are probabilities) and the k best of
 * n scores into r->top and r->k; labels are score indices - label_offset. */
SPW_API int spw_topk(const float *scores, int n, int label_offset, int k, spw_result *r);
/* Sends an image request: the encoded file itself (JPEG or PNG, or what the
 * server's image_decode reads), which the server decodes, preprocesses and
 * runs through its whole backbone (codec offload). The answer is a
 * SPW_NET_RESULT (spw_result_unpack) or SPW_NET_ERROR for request_id. */
SPW_API int spw_image_request_send(spw_net *net, uint64_t request_id, const void *data, size_t len,
                                   uint32_t timeout_ms);
/* Decodes the payload of a SPW_NET_RESULT message (for clients that drive
 * spw_net themselves): the top-k and the server's time in microseconds. */
SPW_API int spw_result_unpack(const void *buf, size_t len, spw_result *r, uint32_t *server_us);

#ifdef __cplusplus
}
#endif
#endif

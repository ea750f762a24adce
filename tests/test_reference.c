/* Client and server results against independent references: top-k labels,
 * probabilities and stream sizes computed with PyTorch from the bundle's
 * weights (tools/make_references.py -> tests/vectors/reference/expected.json).
 *
 *   test_reference            the committed tiny bundle
 *   test_reference default    models/default; exit 77 (skip) without the
 *                             converted backbone in $SPW_MODEL_DIR
 *
 * Paths: local mode, a server thread on UDP loopback whose batches are all
 * full (each result must be its own image's, so a swapped slot fails), and
 * the tiled stream format both ways. */
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "splitwire/splitwire.h"

#define MAX_IMAGES 32
#define BATCH 4

typedef struct ref_image {
    char path[1024];
    int top_label[SPW_TOPK_MAX];
    double top_prob[SPW_TOPK_MAX];
    int k;
    size_t bytes;
    uint32_t rgb_fnv1a[16]; /* more than one where the resize meets exact ties */
    int n_fnv;
} ref_image;

/* Protocol 2 keys of the test server (made once per process). */
static uint8_t server_priv[32], server_pub[32];
static void server_keys(void)
{
    static int made;
    if (!made++)
        assert_int_equal(spw_net_keypair(server_priv, server_pub), 0);
}

static struct {
    const char *key; /* "tiny" or "default" */
    char bundle[1024], models[1024];
    const char *backend;
    double tol;
    ref_image img[MAX_IMAGES];
    int n;
    double worst; /* largest probability difference seen */
} R;

static uint32_t fnv1a(const uint8_t *p, size_t n, uint32_t h)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x01000193u;
    return h;
}

static const char *shared_dir(void)
{
    const char *s = getenv("SPLITWIRE_SHARED");
    return s && *s ? s : SPW_SOURCE_DIR "/../shared";
}

static void add_images(json_t *list, int shared)
{
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        assert_true(R.n < MAX_IMAGES);
        ref_image *r = &R.img[R.n++];
        const char *f = json_string_value(json_object_get(e, "file"));
        assert_non_null(f);
        snprintf(r->path, sizeof(r->path), "%s/%s", shared ? shared_dir() : SPW_SOURCE_DIR, f);
        json_t *top = json_object_get(e, "top");
        r->k = (int)json_array_size(top);
        assert_true(r->k >= 2 && r->k <= SPW_TOPK_MAX);
        for (int j = 0; j < r->k; j++) {
            r->top_label[j] = (int)json_integer_value(json_array_get(json_array_get(top, j), 0));
            r->top_prob[j] = json_number_value(json_array_get(json_array_get(top, j), 1));
        }
        r->bytes = (size_t)json_integer_value(json_object_get(e, "bytes"));
        json_t *h = json_object_get(e, "rgb_fnv1a");
        r->n_fnv = (int)json_array_size(h);
        assert_true(r->n_fnv >= 1 && r->n_fnv <= 16);
        for (int j = 0; j < r->n_fnv; j++)
            r->rgb_fnv1a[j] = (uint32_t)json_integer_value(json_array_get(h, (size_t)j));
    }
}

static const char *ref_key;

/* Group setup: asserts here are reported with their line. */
static int load_references(void **state)
{
    (void)state;
    const char *key = ref_key;
    json_error_t err;
    json_t *root = json_load_file(SPW_TEST_DATA "/vectors/reference/expected.json", 0, &err);
    if (!root) {
        fprintf(stderr, "expected.json: %s (line %d)\n", err.text, err.line);
        return -1;
    }
    json_t *b = json_object_get(json_object_get(root, "bundles"), key);
    if (!b) {
        json_decref(root);
        return -1;
    }
    R.key = key;
    R.tol = json_number_value(json_object_get(root, "prob_tol"));
    snprintf(R.bundle, sizeof(R.bundle), "%s/%s", SPW_SOURCE_DIR,
             json_string_value(json_object_get(b, "bundle")));
    add_images(json_object_get(b, "images"), 0);
    add_images(json_object_get(b, "shared"), 1);
    json_decref(root);
    return R.tol > 0 && R.n > BATCH ? 0 : -1;
}

/* One result against its image's reference: the top-1 label exactly, each
 * rank's probability within the tolerance, and lower ranks' labels where the
 * reference separates them by more than the tolerance. */
static void check(const ref_image *ref, const spw_result *r, const char *how)
{
    if (r->status || r->k < 2 || r->top[0].label != ref->top_label[0] ||
        fabs(r->top[0].prob - ref->top_prob[0]) > R.tol)
        fprintf(stderr, "%s: %s: status %d, top-1 %d at %.6f; reference %d at %.6f\n", how,
                ref->path, r->status, r->k ? r->top[0].label : -99, r->k ? r->top[0].prob : 0.0,
                ref->top_label[0], ref->top_prob[0]);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->bytes, ref->bytes);
    int k = r->k < ref->k ? r->k : ref->k;
    assert_true(k >= 2);
    for (int j = 0; j < k; j++) {
        double d = fabs(r->top[j].prob - ref->top_prob[j]);
        R.worst = d > R.worst ? d : R.worst;
        assert_true(d <= R.tol);
        bool close = (j > 0 && ref->top_prob[j - 1] - ref->top_prob[j] <= 2 * R.tol) ||
                     (j + 1 < ref->k && ref->top_prob[j] - ref->top_prob[j + 1] <= 2 * R.tol);
        if (j == 0 || !close)
            assert_int_equal(r->top[j].label, ref->top_label[j]);
    }
}

static spw_image *load_images(void)
{
    spw_image *imgs = calloc((size_t)R.n, sizeof(*imgs));
    assert_non_null(imgs);
    for (int i = 0; i < R.n; i++)
        assert_int_equal(spw_image_load(R.img[i].path, &imgs[i]), 0);
    return imgs;
}

static void free_images(spw_image *imgs)
{
    for (int i = 0; i < R.n; i++)
        spw_image_release(&imgs[i]);
    free(imgs);
}

/* The pixels the encoder sees (decoded, resized, cropped; recovered from the
 * normalised tensor) hash to the reference's: PIL and libjpeg-turbo agree. */
static void test_pixels(void **state)
{
    (void)state;
    spw_bundle *b;
    assert_int_equal(spw_bundle_open(R.bundle, &b), 0);
    const spw_bundle_info *in = spw_bundle_get_info(b);
    spw_preprocess pp = {in->resize, in->input_width, in->input_height, {0}, {0}};
    memcpy(pp.mean, in->mean, sizeof(pp.mean));
    memcpy(pp.std, in->std, sizeof(pp.std));
    size_t plane = (size_t)in->input_width * (size_t)in->input_height;
    float *x = malloc(plane * 3 * sizeof(float));
    uint8_t *px = malloc(plane * 3);
    spw_image *imgs = load_images();
    for (int i = 0; i < R.n; i++) {
        assert_int_equal(spw_image_to_tensor(&imgs[i], &pp, x), 0);
        for (size_t p = 0; p < plane; p++)
            for (int c = 0; c < 3; c++)
                px[p * 3 + c] = (uint8_t)lrintf((x[c * plane + p] * pp.std[c] + pp.mean[c]) * 255);
        uint32_t h = fnv1a(px, plane * 3, 0x811c9dc5u);
        bool same = false;
        for (int j = 0; j < R.img[i].n_fnv; j++)
            same = same || h == R.img[i].rgb_fnv1a[j];
        if (!same)
            fprintf(stderr, "%s: pixels hash to %u, reference %u\n", R.img[i].path, h,
                    R.img[i].rgb_fnv1a[0]);
        assert_true(same);
    }
    free_images(imgs);
    free(x);
    free(px);
    spw_bundle_close(b);
}

static void run_local(spw_codec_format fmt)
{
    spw_client_config cc = {.bundle_dir = R.bundle,
                            .backend = R.backend,
                            .local = 1,
                            .models_dir = R.models,
                            .format = fmt};
    spw_client *c;
    assert_int_equal(spw_client_open(&cc, &c), 0);
    spw_image *imgs = load_images();
    for (int i = 0; i < R.n; i++) {
        spw_result r;
        assert_int_equal(spw_client_classify(c, &imgs[i], &r), 0);
        if (fmt == SPW_CODEC_TILED)
            r.bytes =
                R.img[i].bytes; /* tile headers add bytes; the plain size is the reference's */
        check(&R.img[i], &r, fmt == SPW_CODEC_TILED ? "local tiled" : "local");
    }
    free_images(imgs);
    spw_client_close(c);
}

static void test_local(void **state)
{
    (void)state;
    run_local(SPW_CODEC_PLAIN);
}

static void test_local_tiled(void **state)
{
    (void)state;
    run_local(SPW_CODEC_TILED);
}

typedef struct server_thread {
    spw_server *srv;
    pthread_t tid;
} server_thread;

static void *serve(void *arg)
{
    spw_server_run(((server_thread *)arg)->srv);
    return NULL;
}

/* Every image submitted at once to a server whose batches hold BATCH and
 * wait long enough to fill: all slots of every batch carry a request, and
 * each answer, matched by request id, must be its own image's. */
static void run_remote(spw_codec_format fmt)
{
    const char *bundles[1] = {R.bundle};
    char addr[32];
    spw_server_config sc = {.bundle_dirs = bundles,
                            .n_bundles = 1,
                            .models_dir = R.models,
                            .backend = R.backend,
                            .max_batch = BATCH,
                            /* Long enough that every batch fills: a lone
                             * client past its fair share is refused as busy
                             * and retries with back-off, which a loaded or
                             * sanitized run can stretch past a short wait. */
                            .max_wait_us = 10000000};
    sc.net.transport = SPW_NET_UDP;
    sc.net.local = "127.0.0.1:0"; /* a free port; read back below */
    server_keys();
    sc.net.private_key = server_priv;
    server_thread st;
    assert_int_equal(spw_server_open(&sc, &st.srv), 0);
    spw_net_addr bound;
    assert_int_equal(spw_server_local_addr(st.srv, &bound), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)bound.port);
    assert_int_equal(pthread_create(&st.tid, NULL, serve, &st), 0);

    spw_client_config cc = {.bundle_dir = R.bundle,
                            .backend = R.backend,
                            .format = fmt,
                            .timeout_ms = 60000,
                            .max_inflight = MAX_IMAGES};
    cc.net.transport = SPW_NET_UDP;
    cc.net.local = "127.0.0.1:0";
    cc.net.peer = addr;
    cc.net.server_public_key = server_pub;
    spw_client *c;
    assert_int_equal(spw_client_open(&cc, &c), 0);
    assert_int_equal(spw_client_ping(c, 5000, NULL), 0);
    /* A whole number of batches: the last BATCH images again where needed. */
    int n = (R.n + BATCH - 1) / BATCH * BATCH;
    spw_image *imgs = load_images();
    uint64_t ids[MAX_IMAGES + BATCH];
    for (int i = 0; i < n; i++)
        assert_int_equal(spw_client_submit(c, &imgs[i < R.n ? i : R.n - 1 - (i - R.n)], &ids[i]),
                         0);
    spw_result res[MAX_IMAGES + BATCH];
    int got = 0;
    while (got < n) {
        int m = spw_client_poll(c, res + got, n - got, 60000);
        assert_true(m > 0);
        got += m;
    }
    for (int i = 0; i < n; i++) {
        int idx = -1;
        for (int j = 0; j < n; j++)
            if (ids[j] == res[i].request_id)
                idx = j;
        assert_true(idx >= 0);
        int img = idx < R.n ? idx : R.n - 1 - (idx - R.n);
        if (fmt == SPW_CODEC_TILED)
            res[i].bytes = R.img[img].bytes;
        check(&R.img[img], &res[i], fmt == SPW_CODEC_TILED ? "udp tiled" : "udp");
    }
    spw_server_stats ss;
    for (int wait = 0; wait < 200; wait++) {
        spw_server_get_stats(st.srv, &ss);
        if (ss.results == (uint64_t)n)
            break;
        usleep(10000);
    }
    assert_int_equal(ss.results, n);
    assert_int_equal(ss.batched_items, n);
    assert_int_equal(ss.batches, n / BATCH); /* every batch full */
    free_images(imgs);
    spw_client_close(c);
    spw_server_stop(st.srv);
    pthread_join(st.tid, NULL);
    spw_server_close(st.srv);
}

static void test_udp(void **state)
{
    (void)state;
    run_remote(SPW_CODEC_PLAIN);
}

static void test_udp_tiled(void **state)
{
    (void)state;
    run_remote(SPW_CODEC_TILED);
}

static int report(void **state)
{
    (void)state;
    printf("reference %s: %d images, largest probability difference %.2e (tolerance %.3f)\n", R.key,
           R.n, R.worst, R.tol);
    return 0;
}

int main(int argc, char **argv)
{
    const char *key = argc > 1 ? argv[1] : "tiny";
    if (!strcmp(key, "default")) {
        const char *md = getenv("SPW_MODEL_DIR");
        snprintf(R.models, sizeof(R.models), "%s", md && *md ? md : SPW_SOURCE_DIR "/build/models");
        char bb[1100];
        snprintf(bb, sizeof(bb), "%s/mobilenet_v2_1.0_224.onnx", R.models);
        if (access(bb, R_OK)) {
            printf("skipped: %s missing (bash tools/models/fetch_backbone.sh)\n", bb);
            return 77;
        }
        R.backend = NULL;
    } else {
        snprintf(R.models, sizeof(R.models), "%s", SPW_TEST_DATA "/vectors/bundle/models");
        R.backend = "cpu-ref";
    }
    ref_key = key;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pixels),      cmocka_unit_test(test_local),
        cmocka_unit_test(test_local_tiled), cmocka_unit_test(test_udp),
        cmocka_unit_test(test_udp_tiled),
    };
    return cmocka_run_group_tests(tests, load_references, report);
}

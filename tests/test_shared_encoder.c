/* One encoder, two backbones: models/mb-mnv2-s28-l32 (MobileNetV2) and
 * models/mb-mnv1-s28-l32 (MobileNetV1 0.75) declare the same client encoder
 * (manifest "shared_encoder"). One server holding both answers each request
 * with the decoder and tail of the bundle its model id names: every answer
 * must equal a local cpu-ref run of that bundle alone (the client encodes
 * with cpu-ref too, so the symbols are the same; the server's cpu backend
 * moves probabilities by far less than TOL, the two backbones' answers
 * differ by far more). A client with both bundles as rate points encodes
 * with one encoder for either.
 *
 * Skips (77) without the converted backbones in $SPW_MODEL_DIR (default
 * build/models; tools/models/fetch_backbone.sh makes them). */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "splitwire/splitwire.h"

#define V2 SPW_SOURCE_DIR "/models/mb-mnv2-s28-l32"
#define V1 SPW_SOURCE_DIR "/models/mb-mnv1-s28-l32"
#define MAX_IMAGES 4
#define TOL 1e-4

static char models[1024];
static const char *paths[MAX_IMAGES];
static int n_images;
static spw_image images[MAX_IMAGES];
/* The local cpu-ref answers, per bundle (0 = V2, 1 = V1) and image. */
static spw_result ref[2][MAX_IMAGES];

static void same_answer(const spw_result *r, const spw_result *want, const char *what, int i)
{
    if (r->status || r->k != want->k || r->top[0].label != want->top[0].label)
        fail_msg("%s, image %d: status %d, top-1 %d, the local run says %d", what, i, r->status,
                 r->top[0].label, want->top[0].label);
    for (int j = 0; j < r->k; j++) {
        if (fabs(r->top[j].prob - want->top[j].prob) > TOL)
            fail_msg("%s, image %d, rank %d: probability %.7f, the local run says %.7f", what, i, j,
                     r->top[j].prob, want->top[j].prob);
        /* lower ranks: the label where the local run separates them */
        if (j + 1 < r->k && want->top[j].prob - want->top[j + 1].prob > TOL &&
            (j == 0 || want->top[j - 1].prob - want->top[j].prob > TOL))
            assert_int_equal(r->top[j].label, want->top[j].label);
    }
    assert_true(r->bytes == want->bytes);
}

/* Local mode, cpu-ref, one bundle: the reference answers. */
static void test_local_references(void **state)
{
    (void)state;
    const char *dirs[2] = {V2, V1};
    for (int b = 0; b < 2; b++) {
        spw_client_config cc = {
            .bundle_dir = dirs[b], .backend = "cpu-ref", .local = 1, .models_dir = models};
        spw_client *c;
        assert_int_equal(spw_client_open(&cc, &c), 0);
        for (int i = 0; i < n_images; i++)
            assert_int_equal(spw_client_classify(c, &images[i], &ref[b][i]), 0);
        spw_client_close(c);
    }
    /* One encoder: the same stream for both; two tails: different answers. */
    int differ = 0;
    for (int i = 0; i < n_images; i++) {
        assert_true(ref[0][i].bytes == ref[1][i].bytes);
        differ += ref[0][i].top[0].label != ref[1][i].top[0].label ||
                  fabs(ref[0][i].top[0].prob - ref[1][i].top[0].prob) > 1e-3;
    }
    assert_true(differ > 0);
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

/* One server with both bundles; one client with both as rate points, each
 * request's point chosen explicitly, the points interleaved. */
static void test_server_selects_by_model_id(void **state)
{
    (void)state;
    const char *bundles[2] = {V2, V1};
    uint8_t priv[32], pub[32];
    assert_int_equal(spw_net_keypair(priv, pub), 0);
    spw_server_config sc = {.bundle_dirs = bundles,
                            .n_bundles = 2,
                            .models_dir = models,
                            .backend = "cpu",
                            .max_batch = 2,
                            .max_wait_us = 1000};
    sc.net.transport = SPW_NET_UDP;
    sc.net.local = "127.0.0.1:0";
    sc.net.private_key = priv;
    server_thread st;
    assert_int_equal(spw_server_open(&sc, &st.srv), 0);
    spw_net_addr bound;
    assert_int_equal(spw_server_local_addr(st.srv, &bound), 0);
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)bound.port);
    assert_int_equal(pthread_create(&st.tid, NULL, serve, &st), 0);

    const char *rate[1] = {V1};
    spw_client_config cc = {.bundle_dir = V2,
                            .backend = "cpu-ref",
                            .timeout_ms = 60000,
                            .rate_bundles = rate,
                            .n_rate_bundles = 1};
    cc.net.transport = SPW_NET_UDP;
    cc.net.local = "127.0.0.1:0";
    cc.net.peer = addr;
    cc.net.server_public_key = pub;
    spw_client *c;
    assert_int_equal(spw_client_open(&cc, &c), 0);
    assert_int_equal(spw_client_rate_points(c), 2);
    assert_int_not_equal(spw_client_bundle_at(c, 0)->id, spw_client_bundle_at(c, 1)->id);
    for (int i = 0; i < n_images; i++)
        for (int p = 0; p < 2; p++) {
            int b = (i + p) % 2; /* alternate which backbone goes first */
            assert_int_equal(spw_client_set_rate_point(c, b), 0);
            spw_result r;
            assert_int_equal(spw_client_classify(c, &images[i], &r), 0);
            assert_int_equal(r.rate_point, b);
            same_answer(&r, &ref[b][i],
                        b ? "server, MobileNetV1 bundle" : "server, MobileNetV2 bundle", i);
        }
    spw_server_stats ss;
    for (int wait = 0; wait < 200; wait++) {
        spw_server_get_stats(st.srv, &ss);
        if (ss.results == (uint64_t)(2 * n_images))
            break;
        usleep(10000);
    }
    assert_int_equal(ss.results, 2 * n_images);
    assert_int_equal(ss.errors, 0);
    spw_client_close(c);
    spw_server_stop(st.srv);
    pthread_join(st.tid, NULL);
    spw_server_close(st.srv);
}

/* A copy of the MobileNetV1 bundle whose encoder.onnx is not the declared
 * one (the owner's file with one byte appended): the client refuses it
 * before it encodes anything. */
static void test_client_refuses_other_encoder(void **state)
{
    (void)state;
    char dir[] = "/tmp/spw_shared_XXXXXX", path[600];
    assert_non_null(mkdtemp(dir));
    const char *links[] = {"manifest.json", "decoder.onnx"};
    for (int i = 0; i < 2; i++) {
        char from[600];
        snprintf(from, sizeof(from), "%s/%s", V1, links[i]);
        snprintf(path, sizeof(path), "%s/%s", dir, links[i]);
        assert_int_equal(symlink(from, path), 0);
    }
    char cmd[1400];
    snprintf(cmd, sizeof(cmd), "cp '%s/encoder.onnx' '%s/' && printf x >> '%s/encoder.onnx'", V2,
             dir, dir);
    assert_int_equal(system(cmd), 0);
    spw_client_config cc = {
        .bundle_dir = dir, .backend = "cpu-ref", .local = 1, .models_dir = models};
    spw_client *c = NULL;
    assert_int_equal(spw_client_open(&cc, &c), SPW_EMISMATCH);
    assert_null(c);
    assert_non_null(strstr(spw_error_detail(), "share with 'mb-mnv2-s28-l32'"));
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const char *md = getenv("SPW_MODEL_DIR");
    snprintf(models, sizeof(models), "%s", md && *md ? md : SPW_SOURCE_DIR "/build/models");
    const char *need[] = {"mobilenet_v2_1.0_224", "mobilenet_v1_0.75_192_at224"};
    for (int i = 0; i < 2; i++) {
        char p[1100];
        snprintf(p, sizeof(p), "%s/%s.onnx", models, need[i]);
        if (access(p, R_OK)) {
            printf("skipped: %s missing (bash tools/models/fetch_backbone.sh)\n", p);
            return 77;
        }
    }
    /* Committed synthetic images, and two photos where the shared data is
     * (cpu-ref is slow: few images). */
    static const char *own[] = {SPW_TEST_DATA "/vectors/reference/default/shapes.png",
                                SPW_TEST_DATA "/vectors/reference/default/noise.png"};
    static char photos[2][1200];
    const char *sh = getenv("SPLITWIRE_SHARED");
    const char *names[2] = {"n01440764/n01440764_8052.jpg", "n03028079/n03028079_16111.jpg"};
    for (int i = 0; i < 2; i++)
        paths[n_images++] = own[i];
    for (int i = 0; i < 2; i++) {
        snprintf(photos[i], sizeof(photos[i]), "%s/data/imagenette2-224/val/%s",
                 sh && *sh ? sh : SPW_SOURCE_DIR "/../shared", names[i]);
        if (!access(photos[i], R_OK))
            paths[n_images++] = photos[i];
    }
    for (int i = 0; i < n_images; i++)
        if (spw_image_load(paths[i], &images[i])) {
            fprintf(stderr, "%s: %s\n", paths[i], spw_error_detail());
            return 1;
        }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_references),
        cmocka_unit_test(test_server_selects_by_model_id),
        cmocka_unit_test(test_client_refuses_other_encoder),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    for (int i = 0; i < n_images; i++)
        spw_image_release(&images[i]);
    return rc;
}

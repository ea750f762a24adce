/* Image requests (codec offload) against a server thread over UDP loopback:
 * the server decodes the image with the configured decoder, preprocesses it
 * and runs the whole backbone, and its top-1 is the one the backbone gives
 * when run here on the same pixels, also after latent requests (the backbone
 * plans are made on a worker's first image request); a malformed request,
 * or a backbone plan that cannot be made, gets an ERROR and the server goes
 * on serving; a server without a backbone refuses them. */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/core/internal.h"
#include "runtime/service/service_internal.h"
#include "splitwire/splitwire.h"

#define BUNDLE SPW_TEST_DATA "/vectors/bundle/tiny"
#define BACKBONE SPW_TEST_DATA "/vectors/bundle/models/tinynet.onnx"
#define MODELS SPW_TEST_DATA "/vectors/bundle/models"

/* A trivial image format for the test's decoder: "RAW8", u16 w, u16 h, RGB. */
static int raw_decode(const void *data, size_t size, spw_image *out)
{
    const uint8_t *p = data;
    if (size < 8 || memcmp(p, "RAW8", 4))
        return spw__error(SPW_EFORMAT, "not RAW8");
    int w = p[4] | p[5] << 8, h = p[6] | p[7] << 8;
    if (!w || !h || size != 8 + (size_t)w * (size_t)h * 3)
        return spw__error(SPW_ETRUNC, "RAW8 size");
    out->width = w;
    out->height = h;
    out->rgb = spw__malloc((size_t)w * (size_t)h * 3);
    if (!out->rgb)
        return SPW_ENOMEM;
    memcpy(out->rgb, p + 8, (size_t)w * (size_t)h * 3);
    return 0;
}

static size_t make_raw(uint8_t *buf, int seed, int w, int h)
{
    memcpy(buf, "RAW8", 4);
    buf[4] = (uint8_t)w;
    buf[5] = (uint8_t)(w >> 8);
    buf[6] = (uint8_t)h;
    buf[7] = (uint8_t)(h >> 8);
    for (int i = 0; i < w * h * 3; i++)
        buf[8 + i] = (uint8_t)((i * (seed * 2 + 5) + seed * 17) % 253);
    return 8 + (size_t)w * (size_t)h * 3;
}

typedef struct server_thread {
    spw_server *srv;
    pthread_t tid;
    char addr[32];
} server_thread;

/* Protocol 2, as deployed: one server key pair for the whole test. */
static uint8_t server_priv[32], server_pub[32];

static void *serve(void *arg)
{
    spw_server_run(((server_thread *)arg)->srv);
    return NULL;
}

static void start_server_workers(server_thread *st, bool backbone, int workers)
{
    const char *bundles[1] = {BUNDLE};
    spw_server_config sc = {.bundle_dirs = bundles,
                            .n_bundles = 1,
                            .models_dir = MODELS,
                            .backend = "cpu-ref",
                            .max_batch = 2,
                            .max_wait_us = 500,
                            .backbone = backbone ? BACKBONE : NULL,
                            .image_decode = raw_decode,
                            .workers = workers};
    sc.net.transport = SPW_NET_UDP;
    sc.net.local = "127.0.0.1:0";
    sc.net.private_key = server_priv;
    assert_int_equal(spw_server_open(&sc, &st->srv), 0);
    spw_net_addr a;
    assert_int_equal(spw_server_local_addr(st->srv, &a), 0);
    snprintf(st->addr, sizeof(st->addr), "127.0.0.1:%u", a.port);
    assert_int_equal(pthread_create(&st->tid, NULL, serve, st), 0);
}

static void start_server(server_thread *st, bool backbone)
{
    start_server_workers(st, backbone, 1);
}

static void stop_server(server_thread *st)
{
    spw_server_stop(st->srv);
    pthread_join(st->tid, NULL);
    spw_server_close(st->srv);
}

/* Sends one image request (header word given) and waits for its answer. */
static int ask(spw_net *net, uint64_t id, uint32_t len_field, const uint8_t *img, size_t len,
               spw_result *r)
{
    uint8_t head[4] = {(uint8_t)len_field, (uint8_t)(len_field >> 8), (uint8_t)(len_field >> 16),
                       (uint8_t)(len_field >> 24)};
    static const uint8_t zeros[4] = {0};
    spw_net_seg segs[3] = {{head, 4}, {(void *)img, len}, {(void *)zeros, (4 - len % 4) % 4}};
    spw_net_msg hdr = {
        .type = SPW_NET_REQUEST, .flags = SPW_REQ_IMAGE, .request_id = id, .timeout_ms = 5000};
    assert_int_equal(spw_net_sendv(net, &hdr, segs, 3), 0);
    uint64_t deadline = spw__now_ns() + 5000000000ull;
    while (spw__now_ns() < deadline) {
        assert_true(spw_net_poll(net, 10000) >= 0);
        spw_net_msg *m;
        while (spw_net_recv(net, &m, 1) == 1) {
            int rc = 1;
            if (m->request_id == id) {
                uint8_t buf[512];
                size_t n = spw_net_msg_copy(net, m, buf, sizeof(buf));
                uint32_t us;
                if (m->status)
                    rc = m->status;
                else if (m->type == SPW_NET_RESULT)
                    rc = spw__result_unpack(buf, n, r, &us);
                else if (m->type == SPW_NET_ERROR && n >= 4) {
                    int32_t st;
                    memcpy(&st, buf, 4);
                    rc = st;
                }
            }
            spw_net_msg_free(net, m);
            if (rc != 1)
                return rc;
        }
    }
    return SPW_ETIMEDOUT;
}

/* The backbone's top-1 on the same pixels, run here: resize to the
 * input's longer side, centre crop, (q - 128) / 128, argmax. */
static int local_top1(const uint8_t *raw, size_t len)
{
    spw_image img;
    assert_int_equal(raw_decode(raw, len, &img), 0);
    spw_model *m;
    assert_int_equal(spw_model_load(BACKBONE, &m), 0);
    spw_plan_options po = {.backend = "cpu-ref", .batch = 1};
    spw_plan *p;
    assert_int_equal(spw_plan_create(m, &po, &p), 0);
    spw_tensor in, out;
    spw_plan_input(p, 0, &in);
    spw_plan_output(p, 0, &out);
    int h = (int)in.dims[2], w = (int)in.dims[3], n = (int)spw_tensor_numel(&out);
    float q = 128 / 255.f;
    spw_preprocess pp = {w > h ? w : h, w, h, {q, q, q}, {q, q, q}};
    float *x = malloc(sizeof(float) * 3 * (size_t)w * (size_t)h), *y = malloc(sizeof(float) * n);
    assert_int_equal(spw_image_to_tensor(&img, &pp, x), 0);
    in.data = x;
    in.dtype = SPW_F32;
    out.data = y;
    out.dtype = SPW_F32;
    assert_int_equal(spw_plan_run(p, &in, 1, &out, 1), 0);
    int best = 0;
    for (int i = 1; i < n; i++)
        if (y[i] > y[best])
            best = i;
    free(x);
    free(y);
    spw_image_release(&img);
    spw_plan_free(p);
    spw_model_free(m);
    return best - (n == 1001 ? 1 : 0);
}

static spw_net *open_client(const char *addr)
{
    spw_net_config c = {.transport = SPW_NET_UDP,
                        .local = "127.0.0.1:0",
                        .peer = addr,
                        .server_public_key = server_pub};
    spw_net *n;
    assert_int_equal(spw_net_open(&c, &n), 0);
    return n;
}

static void test_image_request_runs_backbone(void **state)
{
    (void)state;
    server_thread st;
    start_server(&st, true);
    spw_net *net = open_client(st.addr);
    static uint8_t raw[8 + 48 * 40 * 3];
    for (int seed = 1; seed <= 3; seed++) {
        size_t len = make_raw(raw, seed, 48, 40);
        spw_result r = {0};
        assert_int_equal(ask(net, (uint64_t)seed, (uint32_t)len, raw, len, &r), 0);
        assert_true(r.k >= 1);
        assert_int_equal(r.top[0].label, local_top1(raw, len));
        assert_true(r.top[0].prob > 0 && r.top[0].prob <= 1);
    }
    /* Bad input: a length beyond the payload, and an image the decoder
     * refuses; each answered with an error, and the server goes on. */
    size_t len = make_raw(raw, 4, 48, 40);
    spw_result r;
    assert_int_equal(ask(net, 10, (uint32_t)len + 100, raw, len, &r), SPW_EPROTO);
    raw[0] = 'X';
    assert_int_equal(ask(net, 11, (uint32_t)len, raw, len, &r), SPW_EFORMAT);
    len = make_raw(raw, 4, 48, 40);
    assert_int_equal(ask(net, 12, (uint32_t)len, raw, len, &r), 0);
    assert_int_equal(r.top[0].label, local_top1(raw, len));
    spw_net_close(net);
    stop_server(&st);
}

/* Workers make their backbone plan on their first image request: latent
 * requests served before make none, and the image request that follows is
 * answered as the backbone run here answers it. */
static void test_image_after_latents(void **state)
{
    (void)state;
    server_thread st;
    start_server_workers(&st, true, 2);
    spw_client_config cc = {.bundle_dir = BUNDLE, .backend = "cpu-ref", .timeout_ms = 5000};
    cc.net.transport = SPW_NET_UDP;
    cc.net.local = "127.0.0.1:0";
    cc.net.peer = st.addr;
    cc.net.server_public_key = server_pub;
    spw_client *c;
    assert_int_equal(spw_client_open(&cc, &c), 0);
    static uint8_t rgb[32 * 32 * 3];
    for (int seed = 1; seed <= 4; seed++) {
        for (size_t i = 0; i < sizeof(rgb); i++)
            rgb[i] = (uint8_t)((i * (size_t)(seed * 2 + 7) + (size_t)seed * 31) % 251);
        spw_image img = {32, 32, rgb};
        spw_result r = {0};
        assert_int_equal(spw_client_classify(c, &img, &r), 0);
        assert_int_equal(r.status, 0);
        assert_true(r.k >= 1);
    }
    spw_client_close(c);
    assert_int_equal(spw__server_backbone_plans(st.srv), 0);
    spw_net *net = open_client(st.addr);
    static uint8_t raw[8 + 48 * 40 * 3];
    for (int seed = 5; seed <= 6; seed++) {
        size_t len = make_raw(raw, seed, 48, 40);
        spw_result r = {0};
        assert_int_equal(ask(net, (uint64_t)seed, (uint32_t)len, raw, len, &r), 0);
        assert_true(r.k >= 1);
        assert_int_equal(r.top[0].label, local_top1(raw, len));
    }
    int made = spw__server_backbone_plans(st.srv);
    assert_true(made >= 1 && made <= 2);
    spw_net_close(net);
    stop_server(&st);
}

/* An allocator that fails the workers' allocations while fail_workers is
 * set: those of every thread but the test's and the serving one. */
static atomic_int fail_workers;
static pthread_t test_tid, serve_tid;

static bool failing(void)
{
    pthread_t me = pthread_self();
    return atomic_load(&fail_workers) && !pthread_equal(me, test_tid) &&
           !pthread_equal(me, serve_tid);
}

static void *f_malloc(size_t n, void *ctx)
{
    (void)ctx;
    return failing() ? NULL : malloc(n);
}

static void *f_realloc(void *p, size_t n, void *ctx)
{
    (void)ctx;
    return failing() ? NULL : realloc(p, n);
}

static void f_free(void *p, void *ctx)
{
    (void)ctx;
    free(p);
}

/* A backbone plan that cannot be made is an error answered to the image
 * request that wanted it; the server goes on, and makes it on the next. */
static void test_backbone_plan_error(void **state)
{
    (void)state;
    spw_allocator a = {f_malloc, f_realloc, f_free, NULL};
    spw_set_allocator(&a);
    server_thread st;
    start_server(&st, true);
    test_tid = pthread_self();
    serve_tid = st.tid;
    spw_net *net = open_client(st.addr);
    static uint8_t raw[8 + 48 * 40 * 3];
    size_t len = make_raw(raw, 7, 48, 40);
    spw_result r = {0};
    atomic_store(&fail_workers, 1);
    assert_int_equal(ask(net, 1, (uint32_t)len, raw, len, &r), SPW_ENOMEM);
    atomic_store(&fail_workers, 0);
    assert_int_equal(spw__server_backbone_plans(st.srv), 0);
    assert_int_equal(ask(net, 2, (uint32_t)len, raw, len, &r), 0);
    assert_int_equal(r.top[0].label, local_top1(raw, len));
    assert_int_equal(spw__server_backbone_plans(st.srv), 1);
    spw_net_close(net);
    stop_server(&st);
    spw_set_allocator(NULL);
}

static void test_no_backbone_refuses(void **state)
{
    (void)state;
    server_thread st;
    start_server(&st, false);
    spw_net *net = open_client(st.addr);
    static uint8_t raw[8 + 8 * 8 * 3];
    size_t len = make_raw(raw, 1, 8, 8);
    spw_result r;
    assert_int_equal(ask(net, 1, (uint32_t)len, raw, len, &r), SPW_EUNSUPPORTED);
    spw_net_close(net);
    stop_server(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_image_request_runs_backbone),
        cmocka_unit_test(test_image_after_latents),
        cmocka_unit_test(test_backbone_plan_error),
        cmocka_unit_test(test_no_backbone_refuses),
    };
    if (spw_net_keypair(server_priv, server_pub))
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}

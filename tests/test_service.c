/* Client and server runtimes on the committed tiny bundle: local mode, a
 * server thread over kernel UDP on loopback, pipelined requests, and the
 * errors a user meets (server unreachable, mismatched bundles, garbage on
 * the server's port). */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime/core/internal.h"
#include "splitwire/splitwire.h"

#define BUNDLE SPW_TEST_DATA "/vectors/bundle/tiny"
#define MODELS SPW_TEST_DATA "/vectors/bundle/models"

/* Protocol 2 keys of the test server (made once per process). */
static uint8_t server_priv[32], server_pub[32];
static void server_keys(void)
{
    static int made;
    if (!made++)
        assert_int_equal(spw_net_keypair(server_priv, server_pub), 0);
}

static spw_image make_image(int seed, int w, int h)
{
    spw_image img = {w, h, malloc((size_t)w * (size_t)h * 3)};
    for (int i = 0; i < w * h * 3; i++)
        img.rgb[i] = (uint8_t)((i * (seed * 2 + 7) + seed * 31) % 251);
    return img;
}

static void check_result(const spw_result *r)
{
    assert_int_equal(r->status, 0);
    assert_int_equal(r->k, 5);
    assert_true(r->bytes >= 8 && r->bytes % 4 == 0);
    float sum = 0;
    for (int i = 0; i < r->k; i++) {
        assert_true(r->top[i].label >= -1 && r->top[i].label < 10);
        assert_true(r->top[i].prob >= 0 && r->top[i].prob <= 1);
        if (i)
            assert_true(r->top[i].prob <= r->top[i - 1].prob);
        sum += r->top[i].prob;
    }
    assert_true(sum <= 1.0001f);
}

static spw_client_config local_config(void)
{
    spw_client_config c = {
        .bundle_dir = BUNDLE, .backend = "cpu-ref", .local = 1, .models_dir = MODELS};
    return c;
}

static void test_local(void **state)
{
    (void)state;
    spw_client_config cc = local_config();
    spw_client *c;
    assert_int_equal(spw_client_open(&cc, &c), 0);
    spw_image img = make_image(1, 40, 36); /* resized to 36 short side, cropped to 32 */
    spw_result r;
    assert_int_equal(spw_client_classify(c, &img, &r), 0);
    check_result(&r);
    assert_true(r.bpp > 0);
    /* Same image, same answer. */
    spw_result again;
    assert_int_equal(spw_client_classify(c, &img, &again), 0);
    assert_int_equal(again.top[0].label, r.top[0].label);
    assert_float_equal(again.top[0].prob, r.top[0].prob, 0);
    free(img.rgb);
    spw_client_close(c);
}

typedef struct server_thread {
    spw_server *srv;
    pthread_t tid;
    int port;
} server_thread;

static void *serve(void *arg)
{
    spw_server_run(((server_thread *)arg)->srv);
    return NULL;
}

/* retain_ms: how long the server's transport keeps answers (0: default). */
static int start_server_with(server_thread *st, const char *const *bundles, int n_bundles,
                             uint32_t retain_ms)
{
    /* Port 0: the kernel picks a free one, so tests run side by side
     * (ctest -j, other checkouts) never meet on a port. */
    const char *addr = "127.0.0.1:0";
    spw_server_config sc = {.bundle_dirs = bundles,
                            .n_bundles = n_bundles,
                            .models_dir = MODELS,
                            .backend = "cpu-ref",
                            .max_batch = 4,
                            .max_wait_us = 1000};
    sc.net.transport = SPW_NET_UDP;
    sc.net.local = addr;
    sc.net.retain_ms = retain_ms;
    server_keys();
    sc.net.private_key = server_priv;
    int rc = spw_server_open(&sc, &st->srv);
    if (rc)
        return rc;
    spw_net_addr bound;
    if ((rc = spw_server_local_addr(st->srv, &bound))) {
        spw_server_close(st->srv);
        return rc;
    }
    st->port = bound.port;
    pthread_create(&st->tid, NULL, serve, st);
    return 0;
}

static int start_server_kept(server_thread *st, const char *bundle, uint32_t retain_ms)
{
    const char *bundles[1] = {bundle};
    return start_server_with(st, bundles, 1, retain_ms);
}

static int start_server(server_thread *st, const char *bundle)
{
    return start_server_kept(st, bundle, 0);
}

static void stop_server(server_thread *st)
{
    spw_server_stop(st->srv);
    pthread_join(st->tid, NULL);
    spw_server_close(st->srv);
}

static spw_client_config remote_config(int port, char *addr)
{
    snprintf(addr, 32, "127.0.0.1:%d", port);
    spw_client_config c = {.bundle_dir = BUNDLE, .backend = "cpu-ref", .timeout_ms = 3000};
    c.net.transport = SPW_NET_UDP;
    c.net.local = "127.0.0.1:0";
    c.net.peer = addr;
    server_keys();
    c.net.server_public_key = server_pub;
    return c;
}

static void test_udp_matches_local(void **state)
{
    (void)state;
    server_thread st;
    assert_int_equal(start_server(&st, BUNDLE), 0);
    char addr[32];
    spw_client_config rc_cfg = remote_config(st.port, addr), lc_cfg = local_config();
    spw_client *remote, *local;
    assert_int_equal(spw_client_open(&rc_cfg, &remote), 0);
    assert_int_equal(spw_client_open(&lc_cfg, &local), 0);
    double rtt;
    assert_int_equal(spw_client_ping(remote, 2000, &rtt), 0);
    assert_true(rtt > 0);

    /* Pipelined: submit six, collect six, each equal to the local answer. */
    enum { N = 6 };
    spw_image imgs[N];
    uint64_t ids[N];
    for (int i = 0; i < N; i++) {
        imgs[i] = make_image(i + 3, 32, 32);
        assert_int_equal(spw_client_submit(remote, &imgs[i], &ids[i]), 0);
    }
    assert_int_equal(spw_client_pending(remote), N);
    int got = 0;
    spw_result res[N];
    while (got < N) {
        int n = spw_client_poll(remote, res + got, N - got, 5000);
        assert_true(n > 0);
        got += n;
    }
    for (int i = 0; i < N; i++) {
        int idx = -1;
        for (int j = 0; j < N; j++)
            if (ids[j] == res[i].request_id)
                idx = j;
        assert_true(idx >= 0);
        check_result(&res[i]);
        spw_result lr;
        assert_int_equal(spw_client_classify(local, &imgs[idx], &lr), 0);
        assert_int_equal(lr.bytes, res[i].bytes);
        for (int k = 0; k < 5; k++) {
            assert_int_equal(lr.top[k].label, res[i].top[k].label);
            assert_float_equal(lr.top[k].prob, res[i].top[k].prob, 1e-6);
        }
    }
    for (int i = 0; i < N; i++)
        free(imgs[i].rgb);
    /* The server counts a result after handing it to the transport, so the
     * client may see the last one first: give the count a moment. */
    spw_server_stats ss;
    for (int wait = 0; wait < 200; wait++) {
        spw_server_get_stats(st.srv, &ss);
        if (ss.results == N)
            break;
        usleep(10000);
    }
    assert_int_equal(ss.requests, N);
    assert_int_equal(ss.results, N);
    assert_true(ss.batches >= 1 && ss.batches <= N);

    /* Garbage on the server's port: dropped, and the server keeps serving. */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)st.port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    unsigned char junk[700];
    for (int i = 0; i < 50; i++) {
        for (size_t k = 0; k < sizeof(junk); k++)
            junk[k] = (unsigned char)(rand() & 0xff);
        sendto(fd, junk, (size_t)(1 + rand() % (int)sizeof(junk)), 0, (struct sockaddr *)&sa,
               sizeof(sa));
    }
    close(fd);
    spw_image img = make_image(99, 32, 32);
    spw_result r;
    assert_int_equal(spw_client_classify(remote, &img, &r), 0);
    check_result(&r);
    free(img.rgb);

    spw_client_close(local);
    spw_client_close(remote);
    stop_server(&st);
}

static void test_unreachable(void **state)
{
    (void)state;
    char addr[32];
    /* Nobody listens on this port. */
    spw_client_config cfg = remote_config(9, addr);
    cfg.timeout_ms = 300;
    spw_client *c;
    assert_int_equal(spw_client_open(&cfg, &c), 0);
    assert_int_equal(spw_client_ping(c, 200, NULL), SPW_ETIMEDOUT);
    spw_image img = make_image(5, 32, 32);
    spw_result r;
    assert_int_equal(spw_client_classify(c, &img, &r), SPW_ETIMEDOUT);
    assert_int_equal(r.status, SPW_ETIMEDOUT);
    free(img.rgb);
    spw_client_close(c);
}

/* --timeout-ms is honoured: with nobody answering, a request fails no
 * earlier than its timeout (the transport once gave up after ~1.26 s,
 * whatever was set). A lower bound only: a loaded machine can be late. */
static void test_timeout_is_honoured(void **state)
{
    (void)state;
    char addr[32];
    spw_client_config cfg = remote_config(9, addr);
    cfg.timeout_ms = 1800;
    spw_client *c;
    assert_int_equal(spw_client_open(&cfg, &c), 0);
    spw_image img = make_image(5, 32, 32);
    spw_result r;
    uint64_t t0 = spw__now_ns();
    assert_int_equal(spw_client_classify(c, &img, &r), SPW_ETIMEDOUT);
    assert_true(spw__now_ns() - t0 >= 1800ull * 1000000ull);
    free(img.rgb);
    spw_client_close(c);
}

/* A burst larger than the server admits: the server refuses the excess as
 * overloaded, and the client sends those again after a back-off, so every
 * request completes, with the same answer as the others of its image. */
static void test_overload_is_retried(void **state)
{
    (void)state;
    server_thread st;
    assert_int_equal(start_server(&st, BUNDLE), 0);
    char addr[32];
    spw_client_config cfg = remote_config(st.port, addr);
    cfg.max_inflight = 40;
    cfg.timeout_ms = 30000;
    spw_client *c;
    assert_int_equal(spw_client_open(&cfg, &c), 0);
    spw_image img = make_image(3, 32, 32);
    for (int i = 0; i < 40; i++)
        assert_int_equal(spw_client_submit(c, &img, NULL), 0);
    int got = 0, label = -1;
    while (got < 40) {
        spw_result r[8];
        int n = spw_client_poll(c, r, 8, 1000);
        assert_true(n >= 0);
        for (int i = 0; i < n; i++) {
            assert_int_equal(r[i].status, 0);
            if (label < 0)
                label = r[i].top[0].label;
            assert_int_equal(r[i].top[0].label, label);
        }
        got += n;
    }
    spw_server_stats ss;
    spw_server_get_stats(st.srv, &ss);
    print_message("%llu refused as overloaded, all retried\n", (unsigned long long)ss.dropped);
    free(img.rgb);
    spw_client_close(c);
    stop_server(&st);
}

/* A client whose bundle differs from the server's gets a clear error. */
/* Collects n results from c, in any order. */
static void collect(spw_client *c, spw_result *res, int n)
{
    int got = 0;
    while (got < n) {
        int k = spw_client_poll(c, res + got, n - got, 5000);
        assert_true(k > 0);
        got += k;
    }
}

/* A stopped server drains: the answers it sent stay until ACKed (the client
 * here reads nothing until after the stop, so no ACK can have come), a new
 * request is refused as draining (and, with nowhere else to go, comes back
 * SPW_ECANCELED at its deadline), and the server returns only once every
 * answer is ACKed. */
static void test_drain(void **state)
{
    (void)state;
    server_thread st;
    /* Answers kept longer than the drain may last: only ACKs end it. */
    assert_int_equal(start_server_kept(&st, BUNDLE, 60000), 0);
    char addr[32];
    spw_client_config cfg = remote_config(st.port, addr);
    spw_client *early, *late;
    assert_int_equal(spw_client_open(&cfg, &early), 0);
    cfg.timeout_ms = 300;
    cfg.failover_probes = -1;
    assert_int_equal(spw_client_open(&cfg, &late), 0);
    enum { N = 3 };
    spw_image img = make_image(5, 32, 32);
    /* One request each first, so both sessions are up: the client drives
     * its transport only inside its own calls, and requests made before
     * the handshake is done wait for it. */
    spw_result r;
    assert_int_equal(spw_client_classify(early, &img, &r), 0);
    check_result(&r);
    assert_int_equal(spw_client_classify(late, &img, &r), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(spw_client_submit(early, &img, NULL), 0);
    spw_server_stats ss;
    for (int wait = 0; wait < 1000; wait++) {
        spw_server_get_stats(st.srv, &ss);
        if (ss.results == N + 2)
            break;
        usleep(10000);
    }
    assert_int_equal(ss.results, N + 2);
    spw_server_stop(st.srv);

    /* Refused while draining: the server is still there (its answers to
     * `early` are unacknowledged). */
    assert_int_equal(spw_client_classify(late, &img, &r), SPW_ECANCELED);

    spw_result res[N];
    collect(early, res, N);
    for (int i = 0; i < N; i++)
        check_result(&res[i]);
    pthread_join(st.tid, NULL);
    spw_server_get_stats(st.srv, &ss);
    assert_int_equal(ss.results, N + 2);
    assert_true(ss.refused >= 1);
    assert_int_equal(ss.requests, N + 2 + ss.refused);
    assert_true(ss.net.acks_received >= N); /* each answer ACKed before it returned */
    spw_server_close(st.srv);
    spw_client_close(early);
    spw_client_close(late);
    free(img.rgb);
}

/* Failover: the first of two servers drains; requests sent to it after go
 * to the second, and everything completes once. */
static void test_failover_to_next_server(void **state)
{
    (void)state;
    server_thread a, b;
    assert_int_equal(start_server(&a, BUNDLE), 0);
    assert_int_equal(start_server(&b, BUNDLE), 0);
    char addr_a[32], addr_b[32];
    snprintf(addr_a, sizeof(addr_a), "127.0.0.1:%d", a.port);
    snprintf(addr_b, sizeof(addr_b), "127.0.0.1:%d", b.port);
    const char *servers[2] = {addr_a, addr_b};
    spw_client_config cfg = remote_config(a.port, addr_a);
    cfg.servers = servers;
    cfg.n_servers = 2;
    spw_client *c;
    assert_int_equal(spw_client_open(&cfg, &c), 0);
    spw_image img = make_image(9, 32, 32);
    spw_result r;
    assert_int_equal(spw_client_classify(c, &img, &r), 0);
    check_result(&r);
    /* A stops and exits (nothing of it is unacknowledged). */
    spw_server_stop(a.srv);
    pthread_join(a.tid, NULL);
    enum { N = 4 };
    for (int i = 0; i < N; i++)
        assert_int_equal(spw_client_submit(c, &img, NULL), 0);
    spw_result res[N];
    collect(c, res, N);
    for (int i = 0; i < N; i++) {
        check_result(&res[i]);
        assert_int_equal(res[i].top[0].label, r.top[0].label);
    }
    assert_int_equal(spw_client_pending(c), 0);
    spw_server_stats sa, sb;
    spw_server_get_stats(a.srv, &sa);
    spw_server_stop(b.srv);
    pthread_join(b.tid, NULL);
    spw_server_get_stats(b.srv, &sb);
    spw_server_close(b.srv);
    assert_int_equal(sa.results, 1);
    assert_int_equal(sb.results, N);
    spw_server_close(a.srv);
    spw_client_close(c);
    free(img.rgb);
}

static void test_mismatched_bundle(void **state)
{
    (void)state;
    char dir[] = "/tmp/spw_service_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "cp %s/encoder.onnx %s/decoder.onnx %s/ && "
             "sed 's/\"tiny-test\"/\"tiny-other\"/' %s/manifest.json > %s/manifest.json",
             BUNDLE, BUNDLE, dir, BUNDLE, dir);
    assert_int_equal(system(cmd), 0);
    server_thread st;
    assert_int_equal(start_server(&st, dir), 0);
    char addr[32];
    spw_client_config cfg = remote_config(st.port, addr);
    spw_client *c;
    assert_int_equal(spw_client_open(&cfg, &c), 0);
    spw_image img = make_image(8, 32, 32);
    spw_result r;
    assert_int_equal(spw_client_classify(c, &img, &r), SPW_EMISMATCH);
    free(img.rgb);
    spw_client_close(c);
    stop_server(&st);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* A copy of the tiny bundle under another name (another wire id) as a
 * lower rate point of the same family: rate_point index 1. */
static void make_low_point(char *dir)
{
    assert_non_null(mkdtemp(dir));
    char cmd[768];
    snprintf(cmd, sizeof(cmd),
             "cp %s/encoder.onnx %s/decoder.onnx %s/ && "
             "sed -e 's/\"tiny-test\"/\"tiny-low\"/' -e 's/\"index\": 0/\"index\": 1/' "
             "%s/manifest.json > %s/manifest.json",
             BUNDLE, BUNDLE, dir, BUNDLE, dir);
    assert_int_equal(system(cmd), 0);
}

static void remove_dir(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* A client with two rate points against a server that serves both: each
 * answer says which point coded it and equals the answer of a client of
 * that bundle alone; the policy follows spw_client_set_rate_point and the
 * objective; the estimates come from the answers. */
static void test_rate_points(void **state)
{
    (void)state;
    char low[] = "/tmp/spw_service_XXXXXX";
    make_low_point(low);
    const char *both[2] = {BUNDLE, low};
    server_thread st;
    assert_int_equal(start_server_with(&st, both, 2, 0), 0);
    char addr[32];
    /* bundle_dir is the low point: the policy must find the better one. */
    const char *alt[1] = {BUNDLE};
    spw_client_config cfg = remote_config(st.port, addr);
    cfg.bundle_dir = low;
    cfg.rate_bundles = alt;
    cfg.n_rate_bundles = 1;
    spw_client *c, *plain;
    assert_int_equal(spw_client_open(&cfg, &c), 0);
    spw_client_config pcfg = remote_config(st.port, addr);
    assert_int_equal(spw_client_open(&pcfg, &plain), 0);
    assert_int_equal(spw_client_rate_points(c), 2);
    assert_string_equal(spw_client_bundle_at(c, 0)->name, "tiny-low");
    assert_string_equal(spw_client_bundle_at(c, 1)->name, "tiny-test");
    assert_null(spw_client_bundle_at(c, 2));
    assert_string_equal(spw_client_bundle(c)->name, "tiny-low");

    spw_image img = make_image(5, 48, 40);
    spw_result r, ref;
    assert_int_equal(spw_client_classify(plain, &img, &ref), 0);
    /* No objective: bundle_dir. */
    assert_int_equal(spw_client_classify(c, &img, &r), 0);
    assert_int_equal(r.rate_point, 0);
    /* Forced. */
    assert_int_equal(spw_client_set_rate_point(c, 1), 0);
    assert_int_equal(spw_client_classify(c, &img, &r), 0);
    assert_int_equal(r.rate_point, 1);
    assert_int_equal(r.top[0].label, ref.top[0].label);
    assert_float_equal(r.top[0].prob, ref.top[0].prob, 1e-6);
    assert_int_equal(spw_client_set_rate_point(c, 2), SPW_EINVAL);
    assert_int_equal(spw_client_set_rate_point(c, -2), SPW_EINVAL);
    assert_int_equal(spw_client_set_rate_point(c, -1), 0);

    /* Every point answered: the state has both computes and the path. */
    spw_path_estimate path;
    spw_rate_point pts[4];
    assert_int_equal(spw_client_adapt_state(c, &path, pts, 4), 2);
    assert_int_equal(path.samples, 2);
    assert_true(pts[0].compute_ms > 0 && pts[1].compute_ms > 0);
    assert_true(pts[1].accuracy > pts[0].accuracy); /* rate_index 0 ranks first */
    assert_true(fabs(pts[1].bytes - (double)r.bytes) < (double)r.bytes);
    spw_client_close(c);

    /* An objective every point meets: the most accurate, the higher rate. */
    cfg.slo_ms = 1e6;
    assert_int_equal(spw_client_open(&cfg, &c), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(spw_client_classify(c, &img, &r), 0);
        assert_int_equal(r.rate_point, 1);
        assert_int_equal(r.top[0].label, ref.top[0].label);
    }
    spw_client_close(c);

    /* The same bundle twice, too many, a bad objective. */
    const char *dup[1] = {low};
    cfg.rate_bundles = dup;
    assert_int_equal(spw_client_open(&cfg, &c), SPW_EINVAL);
    cfg.rate_bundles = alt;
    cfg.n_rate_bundles = SPW_RATE_POINTS_MAX;
    assert_int_equal(spw_client_open(&cfg, &c), SPW_EINVAL);
    cfg.n_rate_bundles = 1;
    cfg.slo_ms = -1;
    assert_int_equal(spw_client_open(&cfg, &c), SPW_EINVAL);

    free(img.rgb);
    spw_client_close(plain);
    stop_server(&st);
    remove_dir(low);
}

/* Local mode runs each point's own server half. */
static void test_rate_points_local(void **state)
{
    (void)state;
    char low[] = "/tmp/spw_service_XXXXXX";
    make_low_point(low);
    const char *alt[1] = {low};
    spw_client_config cfg = local_config();
    cfg.rate_bundles = alt;
    cfg.n_rate_bundles = 1;
    spw_client *c, *plain;
    assert_int_equal(spw_client_open(&cfg, &c), 0);
    spw_client_config pcfg = local_config();
    assert_int_equal(spw_client_open(&pcfg, &plain), 0);
    spw_image img = make_image(9, 36, 50);
    spw_result r, ref;
    assert_int_equal(spw_client_classify(plain, &img, &ref), 0);
    for (int k = 1; k >= 0; k--) {
        assert_int_equal(spw_client_set_rate_point(c, k), 0);
        assert_int_equal(spw_client_classify(c, &img, &r), 0);
        assert_int_equal(r.rate_point, k);
        assert_int_equal(r.bytes, ref.bytes);
        assert_int_equal(r.top[0].label, ref.top[0].label);
        assert_float_equal(r.top[0].prob, ref.top[0].prob, 1e-6);
    }
    spw_path_estimate path;
    assert_int_equal(spw_client_adapt_state(c, &path, NULL, 0), 0);
    assert_int_equal(path.samples, 0); /* no network in local mode */
    free(img.rgb);
    spw_client_close(plain);
    spw_client_close(c);
    remove_dir(low);
}

static void test_bad_config(void **state)
{
    (void)state;
    spw_client *c;
    spw_client_config cfg = local_config();
    cfg.bundle_dir = "/nonexistent";
    assert_int_equal(spw_client_open(&cfg, &c), SPW_ENOENT);
    cfg = local_config();
    cfg.models_dir = "/nonexistent";
    assert_int_equal(spw_client_open(&cfg, &c), SPW_ENOENT);
    spw_server *s;
    const char *b[1] = {BUNDLE};
    /* A batch's answers are kept together: max_batch is bounded by what the
     * transport keeps (max_outstanding, 256 by default). */
    spw_server_config sc = {
        .bundle_dirs = b, .n_bundles = 1, .models_dir = MODELS, .max_batch = 257};
    assert_int_equal(spw_server_open(&sc, &s), SPW_EINVAL);
    assert_non_null(strstr(spw_error_detail(), "max_batch 257"));
    assert_non_null(strstr(spw_error_detail(), "max_outstanding 256"));
    sc.max_batch = 300;
    sc.net.max_outstanding = 200;
    assert_int_equal(spw_server_open(&sc, &s), SPW_EINVAL);
    assert_non_null(strstr(spw_error_detail(), "max_outstanding 200"));
    sc.max_batch = -1;
    sc.net.max_outstanding = 0;
    assert_int_equal(spw_server_open(&sc, &s), SPW_EINVAL);
    sc.max_batch = 8;
    sc.plan_batch = -2;
    assert_int_equal(spw_server_open(&sc, &s), SPW_EINVAL);
}

/* One batch above the old fixed limit of 64: the server sizes its per-batch
 * state from max_batch and runs all of them in one batch (sub-batches on
 * cpu-ref's single-image plans), each answer equal to the local one. */
static void test_batch_above_64(void **state)
{
    (void)state;
    enum { N = 100 };
    const char *b[1] = {BUNDLE};
    spw_server_config sc = {.bundle_dirs = b,
                            .n_bundles = 1,
                            .models_dir = MODELS,
                            .backend = "cpu-ref",
                            .max_batch = N,
                            .max_wait_us = 10000000};
    sc.net.transport = SPW_NET_UDP;
    sc.net.local = "127.0.0.1:0";
    server_keys();
    sc.net.private_key = server_priv;
    server_thread st;
    assert_int_equal(spw_server_open(&sc, &st.srv), 0);
    spw_net_addr bound;
    assert_int_equal(spw_server_local_addr(st.srv, &bound), 0);
    st.port = bound.port;
    pthread_create(&st.tid, NULL, serve, &st);
    char addr[32];
    spw_client_config rc_cfg = remote_config(st.port, addr), lc_cfg = local_config();
    rc_cfg.timeout_ms = 60000;
    rc_cfg.max_inflight = N;
    spw_client *remote, *local;
    assert_int_equal(spw_client_open(&rc_cfg, &remote), 0);
    assert_int_equal(spw_client_open(&lc_cfg, &local), 0);
    static spw_image imgs[N];
    static uint64_t ids[N];
    static spw_result res[N];
    for (int i = 0; i < N; i++) {
        imgs[i] = make_image(i, 32, 32);
        assert_int_equal(spw_client_submit(remote, &imgs[i], &ids[i]), 0);
    }
    collect(remote, res, N);
    for (int i = 0; i < N; i++) {
        int idx = -1;
        for (int j = 0; j < N; j++)
            if (ids[j] == res[i].request_id)
                idx = j;
        assert_true(idx >= 0);
        check_result(&res[i]);
        spw_result lr;
        assert_int_equal(spw_client_classify(local, &imgs[idx], &lr), 0);
        for (int k = 0; k < 5; k++) {
            assert_int_equal(lr.top[k].label, res[i].top[k].label);
            assert_float_equal(lr.top[k].prob, res[i].top[k].prob, 1e-6);
        }
    }
    spw_server_stats ss;
    spw_server_get_stats(st.srv, &ss);
    /* The batch waited for all N (max_wait_us is ten seconds). */
    assert_int_equal(ss.batches, 1);
    assert_int_equal(ss.batched_items, N);
    for (int i = 0; i < N; i++)
        free(imgs[i].rgb);
    spw_client_close(remote);
    spw_client_close(local);
    stop_server(&st);
}

/* One request of `bytes` of garbage for the bundle's model, sent raw over
 * protocol 1; returns the answer's status (0 for a RESULT, else the status
 * an ERROR carries). */
static int raw_request(spw_net *n, uint64_t id, size_t bytes, const spw_bundle_info *in)
{
    spw_net_msg *m;
    assert_int_equal(spw_net_tx_alloc(n, bytes, &m), 0);
    for (int s = 0; s < m->nsegs; s++)
        for (size_t k = 0; k < m->segs[s].size; k++)
            ((uint8_t *)m->segs[s].data)[k] = (uint8_t)(k * 31u + (size_t)s * 7u + id);
    m->type = SPW_NET_REQUEST;
    m->request_id = id;
    m->model_id = (uint16_t)in->id;
    m->c = (uint16_t)in->latent_c;
    m->h = (uint16_t)in->latent_h;
    m->w = (uint16_t)in->latent_w;
    m->timeout_ms = 60000; /* generous: sanitizer builds on a loaded machine */
    assert_int_equal(spw_net_send(n, m, 0, 0, bytes), 0);
    for (;;) {
        assert_true(spw_net_poll(n, -1) >= 0);
        spw_net_msg *got;
        if (spw_net_recv(n, &got, 1) != 1)
            continue;
        int type = got->type, local = got->status, status = 0;
        uint64_t rid = got->request_id;
        if (type == SPW_NET_ERROR && !local)
            assert_int_equal(spw_net_msg_copy(n, got, &status, 4), 4);
        spw_net_msg_free(n, got);
        assert_int_equal(local, 0); /* not given up locally */
        if (rid == id && (type == SPW_NET_RESULT || type == SPW_NET_ERROR))
            return type == SPW_NET_RESULT ? 0 : status;
    }
}

/* The server's per-request scratch follows the transport's max_msg_bytes:
 * a request of far more fragments than a small fixed array would hold (512
 * once) is decoded or refused cleanly, and the server goes on serving; a
 * limit the transport cannot carry is refused at open with its reason. */
static void test_large_messages(void **state)
{
    (void)state;
    const char *bundles[1] = {BUNDLE};
    spw_server_config sc = {.bundle_dirs = bundles,
                            .n_bundles = 1,
                            .models_dir = MODELS,
                            .backend = "cpu-ref",
                            .max_batch = 2,
                            .max_wait_us = 1000};
    sc.net.transport = SPW_NET_UDP;
    sc.net.local = "127.0.0.1:0";
    sc.net.insecure = 1;
    sc.net.max_msg_bytes = 64u << 20; /* more fragments than the header can count */
    spw_server *bad;
    assert_int_equal(spw_server_open(&sc, &bad), SPW_EINVAL);
    assert_non_null(strstr(spw_error_detail(), "max_msg_bytes"));

    sc.net.max_msg_bytes = 1u << 20;
    server_thread st;
    assert_int_equal(spw_server_open(&sc, &st.srv), 0);
    pthread_create(&st.tid, NULL, serve, &st);
    spw_net_addr sa;
    assert_int_equal(spw_server_local_addr(st.srv, &sa), 0);
    char peer[32];
    snprintf(peer, sizeof(peer), "127.0.0.1:%u", sa.port);
    spw_net_config cc = {.transport = SPW_NET_UDP,
                         .local = "127.0.0.1:0",
                         .peer = peer,
                         .insecure = 1,
                         .max_msg_bytes = 1u << 20};
    spw_net *n;
    assert_int_equal(spw_net_open(&cc, &n), 0);
    spw_bundle *b;
    assert_int_equal(spw_bundle_open(BUNDLE, &b), 0);
    const spw_bundle_info *in = spw_bundle_get_info(b);
    size_t frags = 700, bytes = frags * spw_net_frag_payload(n);
    assert_true(bytes <= spw_net_max_msg_bytes(n));
    /* Both reach the entropy decoder, which finds the same kind of fault in
     * either (a request refused for its fragment count alone would answer
     * SPW_EPROTO before decoding). */
    int big = raw_request(n, 1, bytes, in);
    int small = raw_request(n, 2, 4 * spw_net_frag_payload(n), in);
    print_message("statuses: %d fragments %s, 4 fragments %s\n", (int)frags, spw_err_name(big),
                  spw_err_name(small));
    assert_int_equal(big, small);
    spw_server_stats ss;
    spw_server_get_stats(st.srv, &ss);
    assert_int_equal(ss.requests, 2);
    spw_bundle_close(b);
    spw_net_close(n);
    stop_server(&st);
}

/* A partial batch waits max_wait_us for company; with idle_dispatch a
 * request that finds no batch running goes at once. The wait here is 10 s
 * against the client's 1 s deadline: the outcome (answered or timed out)
 * shows which rule ran, without timing anything. */
static void test_idle_dispatch(void **state)
{
    (void)state;
    for (int idle = 0; idle <= 1; idle++) {
        const char *bundles[1] = {BUNDLE};
        spw_server_config sc = {.bundle_dirs = bundles,
                                .n_bundles = 1,
                                .models_dir = MODELS,
                                .backend = "cpu-ref",
                                .max_batch = 4,
                                .max_wait_us = 10000000,
                                .idle_dispatch = idle};
        sc.net.transport = SPW_NET_UDP;
        sc.net.local = "127.0.0.1:0";
        server_keys();
        sc.net.private_key = server_priv;
        server_thread st;
        assert_int_equal(spw_server_open(&sc, &st.srv), 0);
        spw_net_addr bound;
        assert_int_equal(spw_server_local_addr(st.srv, &bound), 0);
        st.port = bound.port;
        pthread_create(&st.tid, NULL, serve, &st);
        char addr[32];
        spw_client_config cc = remote_config(st.port, addr);
        cc.timeout_ms = 1000;
        spw_client *c;
        assert_int_equal(spw_client_open(&cc, &c), 0);
        spw_image img = make_image(5, 32, 32);
        spw_result r;
        int rc = spw_client_classify(c, &img, &r);
        spw_server_stats ss;
        spw_server_get_stats(st.srv, &ss);
        print_message("  idle_dispatch %d: %s, %llu batches\n", idle, spw_err_name(rc),
                      (unsigned long long)ss.batches);
        if (idle) {
            assert_int_equal(rc, 0);
            assert_int_equal(ss.batches, 1);
            assert_int_equal(ss.batched_items, 1);
        } else {
            assert_int_equal(rc, SPW_ETIMEDOUT);
            assert_int_equal(ss.batches, 0);
        }
        free(img.rgb);
        spw_client_close(c);
        stop_server(&st);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local),
        cmocka_unit_test(test_idle_dispatch),
        cmocka_unit_test(test_udp_matches_local),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test(test_timeout_is_honoured),
        cmocka_unit_test(test_overload_is_retried),
        cmocka_unit_test(test_drain),
        cmocka_unit_test(test_failover_to_next_server),
        cmocka_unit_test(test_mismatched_bundle),
        cmocka_unit_test(test_rate_points),
        cmocka_unit_test(test_rate_points_local),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_batch_above_64),
        cmocka_unit_test(test_large_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

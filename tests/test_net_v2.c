/* Protocol 2 on the wire, over the memory transport on an injected clock:
 * the handshake, sealed frames both ways, forged and replayed datagrams
 * dropped and counted, nothing sent to a peer without a session beyond
 * handshake replies no larger than what it sent, resends sealed anew, a
 * restarted server handshaken with again, cookies under load, and a spoofed
 * HELLO that cannot take a client's session away. A tap sees every frame
 * as it goes to the transport. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "netpath/proto.h"
#include "netpath/session.h"
#include "netpath/transport.h"
#include "splitwire/net.h"

#define MAX_FRAMES 512

typedef struct wire_frame {
    uint8_t b[1500];
    size_t len;
    spw_net_addr dst;
} wire_frame;

typedef struct tap {
    wire_frame f[MAX_FRAMES];
    int n;
    uint64_t bytes;
} tap;

static tap cli_tap, srv_tap;
static uint64_t fake_ns;
static uint8_t srv_priv[32], srv_pub[32];

static const char *SRV_ADDR = "10.8.0.2:9000", *CLI_ADDR = "10.8.0.1:9001";
/* spw_net_config.cipher of the endpoints open_pair makes (tests that set
 * them put them back to AUTO). */
static int cli_cipher, srv_cipher;

static uint64_t fake_clock(void *ctx)
{
    (void)ctx;
    return fake_ns;
}

static void tap_fn(void *ctx, const uint8_t *f, size_t len, const spw_net_addr *dst)
{
    tap *t = ctx;
    t->bytes += len;
    if (t->n < MAX_FRAMES && len <= sizeof(t->f[0].b)) {
        memcpy(t->f[t->n].b, f, len);
        t->f[t->n].len = len;
        t->f[t->n].dst = *dst;
        t->n++;
    }
}

static spw_net_addr addr(const char *s)
{
    spw_net_addr a;
    assert_int_equal(spw_net_addr_parse(s, &a), 0);
    return a;
}

static spw_net *open_server(spw_net *pair, uint32_t handshake_rate)
{
    spw_net_config sc = {.transport = SPW_NET_MEMORY,
                         .local = SRV_ADDR,
                         .private_key = srv_priv,
                         .memory_pair = pair,
                         .handshake_rate = handshake_rate,
                         .cipher = srv_cipher,
                         .rto_us = 3000,
                         .nack_delay_us = 300};
    spw_net *srv;
    assert_int_equal(spw_net_open(&sc, &srv), 0);
    spw__net_set_clock(srv, fake_clock, NULL);
    memset(&srv_tap, 0, sizeof(srv_tap));
    spw__net_set_tap(srv, tap_fn, &srv_tap);
    return srv;
}

/* A server, then a client joined to it (which says HELLO at open: before its
 * tap, so the tap sees what comes after). */
static void open_pair(spw_net **cli, spw_net **srv, uint32_t handshake_rate)
{
    assert_int_equal(spw_net_keypair(srv_priv, srv_pub), 0);
    fake_ns = 1000000000ull;
    *srv = open_server(NULL, handshake_rate);
    spw_net_config cc = {.transport = SPW_NET_MEMORY,
                         .local = CLI_ADDR,
                         .peer = SRV_ADDR,
                         .server_public_key = srv_pub,
                         .memory_pair = *srv,
                         .cipher = cli_cipher,
                         .rto_us = 3000,
                         .nack_delay_us = 300};
    assert_int_equal(spw_net_open(&cc, cli), 0);
    spw__net_set_clock(*cli, fake_clock, NULL);
    memset(&cli_tap, 0, sizeof(cli_tap));
    spw__net_set_tap(*cli, tap_fn, &cli_tap);
}

/* The server's application: every request answered with 64 bytes that
 * start with its id, for the session it came on. Returns requests seen. */
static int serve(spw_net *srv)
{
    int seen = 0;
    spw_net_msg *q[16];
    int got;
    while ((got = spw_net_recv(srv, q, 16)) > 0) {
        for (int i = 0; i < got; i++) {
            if (q[i]->type == SPW_NET_REQUEST) {
                seen++;
                assert_int_not_equal(q[i]->session, 0);
                spw_net_msg *r;
                assert_int_equal(spw_net_tx_alloc(srv, 64, &r), 0);
                memset(r->segs[0].data, 0, 64);
                memcpy(r->segs[0].data, &q[i]->request_id, 8);
                r->type = SPW_NET_RESULT;
                r->request_id = q[i]->request_id;
                r->peer = q[i]->peer;
                r->session = q[i]->session;
                assert_int_equal(spw_net_send(srv, r, 0, 0, 64), 0);
            }
            spw_net_msg_free(srv, q[i]);
        }
    }
    return seen;
}

/* Runs both endpoints for ms of fake time in 100 us steps; the server
 * answers. Returns the requests the server saw. */
static int run_for(spw_net *cli, spw_net *srv, uint64_t ms)
{
    int seen = 0;
    for (uint64_t t = 0; t < ms * 10; t++) {
        fake_ns += 100000;
        if (cli)
            assert_true(spw_net_poll(cli, 0) >= 0);
        if (srv) {
            assert_true(spw_net_poll(srv, 0) >= 0);
            seen += serve(srv);
        }
    }
    return seen;
}

static uint8_t pattern(uint64_t id, size_t i)
{
    return (uint8_t)(id * 131 + i * 7 + (i >> 8));
}

static void send_req(spw_net *cli, uint64_t id, size_t bytes)
{
    spw_net_msg *m;
    assert_int_equal(spw_net_tx_alloc(cli, bytes, &m), 0);
    size_t k = 0;
    for (int s = 0; s < m->nsegs; s++)
        for (size_t i = 0; i < m->segs[s].size; i++)
            ((uint8_t *)m->segs[s].data)[i] = pattern(id, k++);
    m->type = SPW_NET_REQUEST;
    m->request_id = id;
    assert_int_equal(spw_net_send(cli, m, 0, 0, bytes), 0);
}

/* The answer to request id, if it came: 1 result, -1 error, 0 none yet. */
static int take_answer(spw_net *cli, uint64_t id)
{
    spw_net_msg *m;
    int found = 0;
    while (spw_net_recv(cli, &m, 1) == 1) {
        if (m->request_id == id) {
            if (m->type == SPW_NET_RESULT && m->bytes == 64) {
                uint64_t echoed;
                memcpy(&echoed, m->segs[0].data, 8);
                found = echoed == id ? 1 : -1;
            } else {
                found = -1;
            }
        }
        spw_net_msg_free(cli, m);
    }
    return found;
}

static void round_trip(spw_net *cli, spw_net *srv, uint64_t id, size_t bytes)
{
    send_req(cli, id, bytes);
    run_for(cli, srv, 20);
    assert_int_equal(take_answer(cli, id), 1);
}

static spw_net_stats stats(const spw_net *n)
{
    spw_net_stats s;
    spw_net_stats_get(n, &s);
    return s;
}

/* A captured frame of the given type from a tap, or NULL. */
static const wire_frame *find_frame(const tap *t, uint8_t type)
{
    for (int i = 0; i < t->n; i++)
        if (t->f[i].b[3] == type)
            return &t->f[i];
    return NULL;
}

static void test_handshake_and_sealed_exchange(void **state)
{
    (void)state;
    spw_net *cli, *srv;
    open_pair(&cli, &srv, 0);
    run_for(cli, srv, 10);
    assert_int_equal(stats(cli).handshakes, 1);
    assert_int_equal(stats(srv).handshakes, 1);
    round_trip(cli, srv, 7, 3000);
    /* Every data frame sealed: version 2, flag set, a tag, and none of the
     * request's bytes in the clear. */
    int data = 0;
    for (int i = 0; i < cli_tap.n; i++) {
        const wire_frame *f = &cli_tap.f[i];
        assert_int_equal(f->b[2], 2);
        if (f->b[3] > SPW_PROTO_TYPE_MAX)
            continue;
        data++;
        assert_int_equal(f->b[5], SPW_PROTO_SEALED);
        uint8_t plain[32];
        for (int k = 0; k < 32; k++)
            plain[k] = pattern(7, (size_t)k);
        assert_null(memmem(f->b + SPW_PROTO_HDR_LEN, f->len - SPW_PROTO_HDR_LEN, plain, 32));
    }
    assert_true(data >= 3);
    for (int i = 0; i < srv_tap.n; i++)
        assert_true(srv_tap.f[i].b[3] > SPW_PROTO_TYPE_MAX || srv_tap.f[i].b[5] == 1);
    spw_net_stats s = stats(srv);
    assert_int_equal(s.rx_auth_fail + s.rx_replay + s.rx_no_session, 0);
    /* An answer names its session: another one is refused, not sent. */
    spw_net_msg *r;
    assert_int_equal(spw_net_tx_alloc(srv, 64, &r), 0);
    r->type = SPW_NET_RESULT;
    r->request_id = 7;
    r->peer = addr(CLI_ADDR);
    r->session = 0x12345678;
    assert_int_equal(spw_net_send(srv, r, 0, 0, 64), SPW_ENOENT);
    spw_net_close(cli);
    spw_net_close(srv);
}

static void test_replay_and_forgery_dropped(void **state)
{
    (void)state;
    spw_net *cli, *srv;
    open_pair(&cli, &srv, 0);
    run_for(cli, srv, 10);
    round_trip(cli, srv, 11, 800);
    const wire_frame *req = find_frame(&cli_tap, SPW_NET_REQUEST);
    assert_non_null(req);
    wire_frame cap = *req;
    spw_net_addr from = addr(CLI_ADDR);
    int sent_before = srv_tap.n;
    /* The same frame again: a replay, dropped before any work. */
    for (int i = 0; i < 50; i++)
        assert_int_equal(spw__net_inject(srv, cap.b, cap.len, &from), 0);
    assert_int_equal(run_for(NULL, srv, 5), 0);
    assert_int_equal(stats(srv).rx_replay, 50);
    /* Forged: another request id under a counter never used. */
    wire_frame forged = cap;
    forged.b[8] ^= 0x55;
    spw__st64(forged.b + SPW_PROTO_NONCE_OFF + 4, 1ull << 40);
    assert_int_equal(spw__net_inject(srv, forged.b, forged.len, &from), 0);
    /* A flipped payload bit under a fresh counter. */
    forged = cap;
    forged.b[SPW_PROTO_HDR_LEN] ^= 1;
    spw__st64(forged.b + SPW_PROTO_NONCE_OFF + 4, 1ull << 41);
    assert_int_equal(spw__net_inject(srv, forged.b, forged.len, &from), 0);
    assert_int_equal(run_for(NULL, srv, 5), 0);
    assert_int_equal(stats(srv).rx_auth_fail, 2);
    assert_int_equal(srv_tap.n, sent_before); /* nothing answered */
    /* The window did not move for them: the client's next request counts. */
    round_trip(cli, srv, 12, 800);
    spw_net_close(cli);
    spw_net_close(srv);
}

/* Sums what the server sent to `to` in the frames after index `from`. */
static uint64_t bytes_to(const tap *t, int from, const spw_net_addr *to, int *frames)
{
    uint64_t b = 0;
    *frames = 0;
    for (int i = from; i < t->n; i++)
        if (t->f[i].dst.ip == to->ip && t->f[i].dst.port == to->port) {
            b += t->f[i].len;
            (*frames)++;
        }
    return b;
}

static void test_no_session_is_not_answered(void **state)
{
    (void)state;
    spw_net *cli, *srv;
    open_pair(&cli, &srv, 0);
    run_for(cli, srv, 10);
    round_trip(cli, srv, 21, 2000);
    const wire_frame *req = find_frame(&cli_tap, SPW_NET_REQUEST);
    assert_non_null(req);
    spw_net_addr stranger = addr("10.8.0.99:5555");
    int mark = srv_tap.n;
    uint64_t in = 0;
    /* Another address sending the client's sealed frames: no session there. */
    for (int i = 0; i < cli_tap.n; i++) {
        assert_int_equal(spw__net_inject(srv, cli_tap.f[i].b, cli_tap.f[i].len, &stranger), 0);
        in += cli_tap.f[i].len;
    }
    /* A protocol 1 request, and a protocol 2 one that is not sealed. */
    uint8_t f[SPW_PROTO_HDR_LEN + 64] = {0};
    spw_proto_hdr h = {.version = 1,
                       .type = SPW_NET_REQUEST,
                       .request_id = 5,
                       .frag_count = 1,
                       .payload_len = 64,
                       .msg_len = 64};
    spw__proto_write(f, &h);
    assert_int_equal(spw__net_inject(srv, f, sizeof(f), &stranger), 0);
    in += sizeof(f);
    h.version = 2;
    spw__proto_write(f, &h);
    f[5] = 0;
    assert_int_equal(spw__net_inject(srv, f, sizeof(f), &stranger), 0);
    in += sizeof(f);
    /* A HELLO of random bytes. */
    uint8_t hello[SPW_PROTO_HDR_LEN + SPW_HELLO_LEN];
    for (size_t i = 0; i < sizeof(hello); i++)
        hello[i] = (uint8_t)(i * 37 + 11);
    spw_proto_hdr hh = {.version = 2,
                        .type = SPW_PROTO_HELLO,
                        .frag_count = 1,
                        .payload_len = SPW_HELLO_LEN,
                        .msg_len = SPW_HELLO_LEN};
    spw__proto_write(hello, &hh);
    assert_int_equal(spw__net_inject(srv, hello, sizeof(hello), &stranger), 0);
    in += sizeof(hello);
    assert_int_equal(run_for(NULL, srv, 20), 0); /* nothing delivered */
    int frames;
    uint64_t out = bytes_to(&srv_tap, mark, &stranger, &frames);
    /* Only STALE notices (headers) went there: never more than came. */
    assert_true(out <= in);
    for (int i = mark; i < srv_tap.n; i++)
        if (srv_tap.f[i].dst.ip == stranger.ip)
            assert_int_equal(srv_tap.f[i].b[3], SPW_PROTO_STALE);
    spw_net_stats s = stats(srv);
    assert_true(s.rx_no_session >= 1);
    assert_int_equal(s.rx_invalid, 2);
    assert_int_equal(s.rx_auth_fail, 1); /* the random HELLO */
    spw_net_close(cli);
    spw_net_close(srv);
}

static void test_resend_sealed_anew(void **state)
{
    (void)state;
    spw_net *cli, *srv;
    open_pair(&cli, &srv, 0);
    run_for(cli, srv, 10);
    int mark = cli_tap.n;
    send_req(cli, 31, 600);
    /* The server is silent for a while: the client probes. */
    run_for(cli, NULL, 30);
    assert_true(stats(cli).probes >= 1);
    const wire_frame *a = NULL, *b = NULL;
    for (int i = mark; i < cli_tap.n; i++) {
        if (cli_tap.f[i].b[3] != SPW_NET_REQUEST)
            continue;
        if (!a)
            a = &cli_tap.f[i];
        else if (!b)
            b = &cli_tap.f[i];
    }
    assert_non_null(a);
    assert_non_null(b);
    /* Same fragment, new counter, so a different ciphertext and tag. */
    assert_int_equal(a->len, b->len);
    assert_memory_equal(a->b, b->b, SPW_PROTO_NONCE_OFF);
    assert_memory_not_equal(a->b + SPW_PROTO_NONCE_OFF, b->b + SPW_PROTO_NONCE_OFF, 12);
    assert_memory_not_equal(a->b + SPW_PROTO_HDR_LEN, b->b + SPW_PROTO_HDR_LEN,
                            a->len - SPW_PROTO_HDR_LEN);
    /* Both authenticate; the request is served once. */
    assert_int_equal(run_for(cli, srv, 20), 1);
    assert_int_equal(take_answer(cli, 31), 1);
    spw_net_stats s = stats(srv);
    assert_int_equal(s.rx_auth_fail + s.rx_replay, 0);
    assert_true(s.rx_duplicate >= 1);
    spw_net_close(cli);
    spw_net_close(srv);
}

static void test_server_restart_handshakes_again(void **state)
{
    (void)state;
    spw_net *cli, *srv;
    open_pair(&cli, &srv, 0);
    run_for(cli, srv, 10);
    round_trip(cli, srv, 41, 1500);
    spw_net_close(srv);
    /* The same key, no memory of the session. */
    srv = open_server(cli, 0);
    send_req(cli, 42, 1500);
    run_for(cli, srv, 50);
    assert_int_equal(take_answer(cli, 42), 1);
    assert_int_equal(stats(cli).handshakes, 2);
    assert_true(stats(srv).stale_sent >= 1);
    spw_net_close(cli);
    spw_net_close(srv);
}

/* A HELLO made here, as another client would. */
static size_t make_hello(spw_hs_initiator *st, uint8_t *frame, const uint8_t *cookie)
{
    spw_keypair me;
    assert_int_equal(spw__keypair_generate(&me), 0);
    uint32_t len = SPW_HELLO_LEN + (cookie ? SPW_COOKIE_LEN : 0);
    assert_int_equal(spw__hs_hello(st, &me, srv_pub, 1000, SPW_AEAD_ALL, frame + SPW_PROTO_HDR_LEN),
                     0);
    if (cookie)
        memcpy(frame + SPW_PROTO_HDR_LEN + SPW_HELLO_LEN, cookie, SPW_COOKIE_LEN);
    spw_proto_hdr h = {.version = 2,
                       .type = SPW_PROTO_HELLO,
                       .frag_count = 1,
                       .payload_len = (uint16_t)len,
                       .msg_len = len};
    spw__proto_write(frame, &h);
    return SPW_PROTO_HDR_LEN + len;
}

static void test_cookie_under_load(void **state)
{
    (void)state;
    spw_net *cli, *srv;
    open_pair(&cli, &srv, 1); /* one handshake a second before cookies */
    run_for(cli, srv, 10);
    assert_int_equal(stats(cli).handshakes, 1);
    spw_net_addr other = addr("10.8.0.50:7000");
    uint8_t frame[SPW_PROTO_HDR_LEN + SPW_HELLO_LEN + SPW_COOKIE_LEN];
    spw_hs_initiator st;
    size_t len = make_hello(&st, frame, NULL);
    int mark = srv_tap.n;
    assert_int_equal(spw__net_inject(srv, frame, len, &other), 0);
    run_for(NULL, srv, 1);
    assert_int_equal(srv_tap.n, mark + 1);
    const wire_frame *c = &srv_tap.f[mark];
    assert_int_equal(c->b[3], SPW_PROTO_COOKIE);
    assert_true(c->len < len);
    assert_int_equal(stats(srv).cookies_sent, 1);
    /* The cookie echoed: served, with a WELCOME that authenticates. */
    uint8_t cookie[SPW_COOKIE_LEN];
    memcpy(cookie, c->b + SPW_PROTO_HDR_LEN, SPW_COOKIE_LEN);
    len = make_hello(&st, frame, cookie);
    assert_int_equal(spw__net_inject(srv, frame, len, &other), 0);
    run_for(NULL, srv, 1);
    assert_int_equal(srv_tap.n, mark + 2);
    const wire_frame *w = &srv_tap.f[mark + 1];
    assert_int_equal(w->b[3], SPW_PROTO_WELCOME);
    assert_true(w->len < len);
    spw_session_keys keys;
    assert_int_equal(spw__hs_read_welcome(&st, w->b + SPW_PROTO_HDR_LEN, &keys), 0);
    /* A cookie for another address is no good. */
    len = make_hello(&st, frame, cookie);
    spw_net_addr third = addr("10.8.0.51:7000");
    assert_int_equal(spw__net_inject(srv, frame, len, &third), 0);
    run_for(NULL, srv, 1);
    assert_int_equal(srv_tap.f[srv_tap.n - 1].b[3], SPW_PROTO_COOKIE);
    spw_net_close(cli);
    spw_net_close(srv);
}

static void test_spoofed_hello_keeps_session(void **state)
{
    (void)state;
    spw_net *cli, *srv;
    open_pair(&cli, &srv, 0);
    run_for(cli, srv, 10);
    round_trip(cli, srv, 51, 900);
    /* Someone else's HELLO with the client's address: a new session is
     * made but not confirmed, and the client's stays. */
    uint8_t frame[SPW_PROTO_HDR_LEN + SPW_HELLO_LEN];
    spw_hs_initiator st;
    size_t len = make_hello(&st, frame, NULL);
    spw_net_addr from = addr(CLI_ADDR);
    assert_int_equal(spw__net_inject(srv, frame, len, &from), 0);
    round_trip(cli, srv, 52, 900);
    assert_int_equal(stats(cli).handshakes, 1);
    spw_net_close(cli);
    spw_net_close(srv);
}

/* One client, two servers with the same key (a deployment failing over):
 * a session with each, requests to either answered. Kernel UDP on
 * loopback, timers on the injected clock. */
static void test_client_sessions_per_server(void **state)
{
    (void)state;
    assert_int_equal(spw_net_keypair(srv_priv, srv_pub), 0);
    fake_ns = 1000000000ull;
    spw_net *srv[2];
    spw_net_addr sa[2];
    for (int i = 0; i < 2; i++) {
        spw_net_config sc = {.transport = SPW_NET_UDP,
                             .local = "127.0.0.1:0",
                             .private_key = srv_priv,
                             .rto_us = 3000};
        assert_int_equal(spw_net_open(&sc, &srv[i]), 0);
        spw__net_set_clock(srv[i], fake_clock, NULL);
        assert_int_equal(spw_net_local_addr(srv[i], &sa[i]), 0);
        sa[i].ip = 0x7f000001u;
    }
    spw_net_config cc = {.transport = SPW_NET_UDP,
                         .local = "127.0.0.1:0",
                         .server_public_key = srv_pub,
                         .rto_us = 3000};
    spw_net *cli;
    assert_int_equal(spw_net_open(&cc, &cli), 0);
    spw__net_set_clock(cli, fake_clock, NULL);
    for (int i = 0; i < 2; i++) {
        spw_net_msg *m;
        assert_int_equal(spw_net_tx_alloc(cli, 2000, &m), 0);
        m->type = SPW_NET_REQUEST;
        m->request_id = 100 + (uint64_t)i;
        m->peer = sa[i];
        assert_int_equal(spw_net_send(cli, m, 0, 0, 2000), 0);
    }
    int answered = 0, seen[2] = {0};
    for (int step = 0; step < 20000 && answered < 2; step++) {
        fake_ns += 100000;
        for (int i = 0; i < 2; i++) {
            assert_true(spw_net_poll(srv[i], 0) >= 0);
            seen[i] += serve(srv[i]);
        }
        assert_true(spw_net_poll(cli, 0) >= 0);
        spw_net_msg *m;
        while (spw_net_recv(cli, &m, 1) == 1) {
            answered += m->type == SPW_NET_RESULT && m->peer.port == sa[m->request_id - 100].port;
            spw_net_msg_free(cli, m);
        }
    }
    assert_int_equal(answered, 2);
    assert_int_equal(seen[0], 1);
    assert_int_equal(seen[1], 1);
    assert_int_equal(stats(cli).handshakes, 2);
    spw_net_close(cli);
    for (int i = 0; i < 2; i++)
        spw_net_close(srv[i]);
}

static void test_open_needs_keys(void **state)
{
    (void)state;
    spw_net_config c = {.transport = SPW_NET_MEMORY, .local = "10.8.0.9:1"};
    spw_net *n;
    assert_int_equal(spw_net_open(&c, &n), SPW_EINVAL);
    uint8_t k[32] = {1};
    c.insecure = 1;
    c.private_key = k;
    assert_int_equal(spw_net_open(&c, &n), SPW_EINVAL);
}

/* A request ACKed in its session, the server's application slow: the
 * client's keep-alive is a sealed 74-byte frame with the probe flag, the
 * server opens it and ACKs in the session, and no request fragment goes
 * twice. */
static void keepalive_is_sealed_and_acked(void **state)
{
    (void)state;
    spw_net *cli, *srv;
    open_pair(&cli, &srv, 0);
    round_trip(cli, srv, 1, 256);
    spw_net_stats c0 = stats(cli);
    int first = cli_tap.n;
    send_req(cli, 2, 3000);
    for (int t = 0; t < 15000; t++) { /* 1.5 s; the application answers nothing */
        fake_ns += 100000;
        assert_true(spw_net_poll(cli, 0) >= 0);
        assert_true(spw_net_poll(srv, 0) >= 0);
    }
    spw_net_stats c1 = stats(cli), s1 = stats(srv);
    assert_int_equal(c1.keepalives_sent, 1);
    assert_int_equal(s1.keepalives_received, 1);
    assert_int_equal(c1.acks_received, c0.acks_received + 2);
    assert_int_equal(c1.retransmits, c0.retransmits);
    assert_int_equal(s1.rx_auth_fail + s1.rx_replay + s1.rx_invalid, 0);
    int data = 0, alive = 0;
    for (int i = first; i < cli_tap.n; i++) {
        const wire_frame *f = &cli_tap.f[i];
        if (f->b[3] != SPW_NET_REQUEST)
            continue;
        if (f->b[5] == (SPW_PROTO_SEALED | SPW_PROTO_PROBE)) {
            assert_int_equal(f->len, SPW_PROTO_HDR_LEN + SPW_PROTO_PROBE_LEN);
            alive++;
        } else {
            data++;
        }
    }
    assert_int_equal(alive, 1);
    assert_int_equal(data, (3000 + spw_net_frag_payload(cli) - 1) / spw_net_frag_payload(cli));
    assert_int_equal(serve(srv), 1);
    run_for(cli, srv, 5);
    assert_int_equal(take_answer(cli, 2), 1);
    spw_net_close(cli);
    spw_net_close(srv);
}

/* Whether this CPU runs AES-256-GCM (AES-NI and CLMUL), by libsodium. */
static bool have_aes(void)
{
    return (spw__aead_available() & SPW_AEAD_AES256GCM) != 0;
}

/* The frame AEAD both sides agree on: AES-256-GCM when both have it, else
 * ChaCha20-Poly1305 (one side forced to it, by configuration or by the
 * environment, stands for a peer without AES-NI); either way requests are
 * answered, and a frame whose tag was altered is dropped and counted. */
static void test_cipher_negotiated_end_to_end(void **state)
{
    (void)state;
    static const struct {
        int cli, srv;
        const char *env;
        int aes; /* 1: AES-256-GCM where the CPU has it; 0: ChaCha20 */
        bool needs_aes;
    } cases[] = {
        {SPW_NET_CIPHER_AUTO, SPW_NET_CIPHER_AUTO, NULL, 1, false},
        {SPW_NET_CIPHER_CHACHA20, SPW_NET_CIPHER_AUTO, NULL, 0, false},
        {SPW_NET_CIPHER_AUTO, SPW_NET_CIPHER_CHACHA20, NULL, 0, false},
        {SPW_NET_CIPHER_AUTO, SPW_NET_CIPHER_AUTO, "chacha20-poly1305", 0, false},
        {SPW_NET_CIPHER_AUTO, SPW_NET_CIPHER_AUTO, "auto", 1, false},
        {SPW_NET_CIPHER_AES256GCM, SPW_NET_CIPHER_AUTO, NULL, 1, true},
        {SPW_NET_CIPHER_AUTO, SPW_NET_CIPHER_AES256GCM, NULL, 1, true},
        {SPW_NET_CIPHER_AUTO, SPW_NET_CIPHER_AUTO, "aes-256-gcm", 1, true},
    };
    int ran_aes = 0;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        if (cases[c].needs_aes && !have_aes())
            continue;
        cli_cipher = cases[c].cli;
        srv_cipher = cases[c].srv;
        if (cases[c].env)
            assert_int_equal(setenv("SPW_NET_CIPHER", cases[c].env, 1), 0);
        spw_net *cli, *srv;
        open_pair(&cli, &srv, 0);
        unsetenv("SPW_NET_CIPHER");
        run_for(cli, srv, 10);
        uint64_t want = cases[c].aes && have_aes() ? 1 : 0;
        ran_aes += (int)want;
        assert_int_equal(stats(cli).handshakes, 1);
        assert_int_equal(stats(srv).handshakes, 1);
        assert_int_equal(stats(cli).handshakes_aes256gcm, want);
        assert_int_equal(stats(srv).handshakes_aes256gcm, want);
        round_trip(cli, srv, 31, 3000);
        /* A request frame with one tag bit flipped, under a fresh counter:
         * dropped and counted, the session goes on. */
        const wire_frame *req = find_frame(&cli_tap, SPW_NET_REQUEST);
        assert_non_null(req);
        wire_frame bad = *req;
        bad.b[SPW_PROTO_TAG_OFF + 3] ^= 0x20;
        spw__st64(bad.b + SPW_PROTO_NONCE_OFF + 4, 1ull << 40);
        spw_net_addr from = addr(CLI_ADDR);
        assert_int_equal(spw__net_inject(srv, bad.b, bad.len, &from), 0);
        assert_int_equal(run_for(NULL, srv, 2), 0);
        assert_int_equal(stats(srv).rx_auth_fail, 1);
        /* And an answer with a flipped payload bit, at the client. */
        const wire_frame *res = find_frame(&srv_tap, SPW_NET_RESULT);
        assert_non_null(res);
        bad = *res;
        bad.b[SPW_PROTO_HDR_LEN + 5] ^= 1;
        spw__st64(bad.b + SPW_PROTO_NONCE_OFF + 4, 1ull << 40);
        spw_net_addr sfrom = addr(SRV_ADDR);
        assert_int_equal(spw__net_inject(cli, bad.b, bad.len, &sfrom), 0);
        run_for(cli, NULL, 2);
        assert_int_equal(stats(cli).rx_auth_fail, 1);
        round_trip(cli, srv, 32, 5000);
        spw_net_close(cli);
        spw_net_close(srv);
    }
    cli_cipher = srv_cipher = SPW_NET_CIPHER_AUTO;
    if (!have_aes())
        skip(); /* ChaCha20-Poly1305 alone was checked: no AES-NI here */
    assert_true(ran_aes >= 4);
}

/* Without an AEAD in common there is no session: the server counts the
 * HELLO as failed and sends nothing back; a bad cipher setting fails at
 * open. */
static void test_cipher_mismatch_and_bad_settings(void **state)
{
    (void)state;
    spw_net *n;
    assert_int_equal(spw_net_keypair(srv_priv, srv_pub), 0);
    spw_net_config c = {
        .transport = SPW_NET_MEMORY, .local = "10.8.0.9:1", .private_key = srv_priv};
    c.cipher = 7;
    assert_int_equal(spw_net_open(&c, &n), SPW_EINVAL);
    assert_non_null(strstr(spw_error_detail(), "cipher 7"));
    c.cipher = SPW_NET_CIPHER_AUTO;
    assert_int_equal(setenv("SPW_NET_CIPHER", "rot13", 1), 0);
    assert_int_equal(spw_net_open(&c, &n), SPW_EINVAL);
    assert_non_null(strstr(spw_error_detail(), "SPW_NET_CIPHER=rot13"));
    unsetenv("SPW_NET_CIPHER");
    c.cipher = SPW_NET_CIPHER_AES256GCM;
    if (!have_aes()) {
        assert_int_equal(spw_net_open(&c, &n), SPW_EUNSUPPORTED);
        skip(); /* a client that insists on AES-256-GCM cannot be made here */
    }
    cli_cipher = SPW_NET_CIPHER_AES256GCM;
    srv_cipher = SPW_NET_CIPHER_CHACHA20;
    spw_net *cli, *srv;
    open_pair(&cli, &srv, 0);
    cli_cipher = srv_cipher = SPW_NET_CIPHER_AUTO;
    send_req(cli, 41, 1000);
    run_for(cli, srv, 10);
    assert_int_equal(stats(cli).handshakes, 0);
    assert_int_equal(stats(srv).handshakes, 0);
    assert_true(stats(srv).rx_auth_fail >= 1);
    assert_null(find_frame(&srv_tap, SPW_PROTO_WELCOME));
    assert_int_equal(srv_tap.n, 0);
    spw_net_close(cli);
    spw_net_close(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_needs_keys),
        cmocka_unit_test(test_handshake_and_sealed_exchange),
        cmocka_unit_test(test_replay_and_forgery_dropped),
        cmocka_unit_test(test_no_session_is_not_answered),
        cmocka_unit_test(test_resend_sealed_anew),
        cmocka_unit_test(test_server_restart_handshakes_again),
        cmocka_unit_test(test_cookie_under_load),
        cmocka_unit_test(test_spoofed_hello_keeps_session),
        cmocka_unit_test(test_client_sessions_per_server),
        cmocka_unit_test(keepalive_is_sealed_and_acked),
        cmocka_unit_test(test_cipher_negotiated_end_to_end),
        cmocka_unit_test(test_cipher_mismatch_and_bad_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

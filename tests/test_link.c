/* Link emulation: the link parser (presets and RATE,DELAY[,JITTER[,LOSS]]),
 * the shaper's timing on an injected clock against the arithmetic of the
 * configured rate and delay (every frame's bytes with their headers), jitter
 * bounds and order, and a round trip over UDP loopback with both ends shaped,
 * measured as a ratio to the expected time (no absolute speed asserted). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "netpath/proto.h"
#include "tests/spw_test.h"
#include "netpath/transport.h"
#include "splitwire/net.h"

/* ---- parser ------------------------------------------------------------- */

static void test_parse_presets(void **state)
{
    (void)state;
    spw_net_config c = {0};
    assert_int_equal(spw_net_link_parse("ltem", &c), 0);
    assert_int_equal(c.shape_rate_bps, 1000000);
    assert_int_equal(c.shape_delay_us, 20000);
    assert_int_equal(c.shape_jitter_us, 5000);
    assert_true(c.shape_loss == 0);
    assert_int_equal(spw_net_link_parse("nbiot", &c), 0);
    assert_int_equal(c.shape_rate_bps, 100000);
    assert_int_equal(spw_net_link_parse("wired", &c), 0);
    assert_int_equal(c.shape_rate_bps, 1000000000);
    assert_int_equal(c.shape_jitter_us, 0);
    static const char *const all[] = {"nbiot", "ltem", "3g", "4g", "wifi", "5g", "wired"};
    uint64_t last = 0;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        assert_int_equal(spw_net_link_parse(all[i], &c), 0);
        assert_true(c.shape_rate_bps > last); /* listed slowest first */
        last = c.shape_rate_bps;
    }
}

static void test_parse_custom(void **state)
{
    (void)state;
    spw_net_config c = {.shape_loss = 0.5, .mtu = 1400};
    assert_int_equal(spw_net_link_parse("1mbit,20ms", &c), 0);
    assert_int_equal(c.shape_rate_bps, 1000000);
    assert_int_equal(c.shape_delay_us, 20000);
    assert_int_equal(c.shape_jitter_us, 0);
    assert_true(c.shape_loss == 0);
    assert_int_equal(c.mtu, 1400); /* other fields untouched */
    assert_int_equal(spw_net_link_parse("500kbit,1.5ms,200us,1%", &c), 0);
    assert_int_equal(c.shape_rate_bps, 500000);
    assert_int_equal(c.shape_delay_us, 1500);
    assert_int_equal(c.shape_jitter_us, 200);
    assert_true(c.shape_loss > 0.00999 && c.shape_loss < 0.01001);
    assert_int_equal(spw_net_link_parse("2000000,20,1s,0.25", &c), 0); /* bare: bit/s, ms */
    assert_int_equal(c.shape_rate_bps, 2000000);
    assert_int_equal(c.shape_delay_us, 20000);
    assert_int_equal(c.shape_jitter_us, 1000000);
    assert_true(c.shape_loss == 0.25);
    assert_int_equal(spw_net_link_parse("1.5gbit,0", &c), 0);
    assert_int_equal(c.shape_rate_bps, 1500000000);
    assert_int_equal(c.shape_delay_us, 0);
    assert_int_equal(spw_net_link_parse("inf,10ms", &c), 0);
    assert_int_equal(c.shape_rate_bps, 0); /* unlimited */
}

static void test_parse_steps(void **state)
{
    (void)state;
    spw_net_config c = {.shape_epoch_ns = 42};
    assert_int_equal(spw_net_link_parse("20mbit,20ms;1mbit@10s;inf@20000;20mbit@25.5s", &c), 0);
    assert_int_equal(c.shape_rate_bps, 20000000);
    assert_int_equal(c.shape_delay_us, 20000);
    assert_int_equal(c.shape_nsteps, 3);
    assert_int_equal(c.shape_step_ms[0], 10000);
    assert_int_equal(c.shape_step_bps[0], 1000000);
    assert_int_equal(c.shape_step_ms[1], 20000);
    assert_int_equal(c.shape_step_bps[1], 0);
    assert_int_equal(c.shape_step_ms[2], 25500);
    assert_int_equal(c.shape_epoch_ns, 42); /* the caller's */
    assert_int_equal(spw_net_link_parse("4g;100kbit@1s", &c), 0);
    assert_int_equal(c.shape_rate_bps, 10000000);
    assert_int_equal(c.shape_nsteps, 1);
    assert_int_equal(spw_net_link_parse("ltem", &c), 0);
    assert_int_equal(c.shape_nsteps, 0); /* no steps: none left over */
    static const char *const bad[] = {"4g;",
                                      "4g;1mbit",
                                      "4g;1mbit@",
                                      "4g;@1s",
                                      "4g;1mbit@2s;2mbit@1s",
                                      "4g;x@1s",
                                      "bogus;1mbit@1s",
                                      "4g;1@1;1@2;1@3;1@4;1@5;1@6;1@7;1@8;1@9"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        spw_net_config d = {.shape_rate_bps = 7};
        assert_int_equal(spw_net_link_parse(bad[i], &d), SPW_EINVAL);
        assert_int_equal(d.shape_rate_bps, 7);
        assert_int_equal(d.shape_nsteps, 0);
    }
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "fast",
        "1mbit",
        "1mbit,",
        ",20ms",
        "1xbit,20ms",
        "-1mbit,20ms",
        "1mbit,abc",
        "1mbit,-2ms",
        "1mbit,20ms,x",
        "1mbit,20ms,1ms,150%",
        "1mbit,20ms,1ms,2",
        "1mbit,20ms,1ms,1%,9",
        "nan,20ms",
        "1mbit,1e9s",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        spw_net_config c = {.shape_rate_bps = 7, .shape_delay_us = 7};
        assert_int_equal(spw_net_link_parse(bad[i], &c), SPW_EINVAL);
        assert_true(strlen(spw_error_detail()) > 0);
        /* A bad spec changes nothing. */
        assert_int_equal(c.shape_rate_bps, 7);
        assert_int_equal(c.shape_delay_us, 7);
    }
    assert_int_equal(spw_net_link_parse(NULL, &(spw_net_config){0}), SPW_EINVAL);
}

/* ---- shaper on an injected clock ----------------------------------------- */

static uint64_t fake_ns;

static uint64_t fake_clock(void *ctx)
{
    (void)ctx;
    return fake_ns;
}

static void open_pair(spw_net_config *cc, spw_net_config *sc, spw_net **cli, spw_net **srv)
{
    cc->transport = sc->transport = SPW_NET_MEMORY;
    sc->local = "10.9.0.2:9000";
    cc->local = "10.9.0.1:9001";
    cc->peer = "10.9.0.2:9000";
    /* No probes or resends while the clock is driven by hand. */
    cc->rto_us = sc->rto_us = 900000;
    cc->min_rto_us = sc->min_rto_us = 900000;
    cc->request_timeout_ms = sc->request_timeout_ms = 60000;
    /* Protocol 1: the shaper's timing is what is measured, with no
     * handshake frames before the first message. */
    cc->insecure = sc->insecure = 1;
    assert_int_equal(spw_net_open(sc, srv), 0);
    cc->memory_pair = *srv;
    assert_int_equal(spw_net_open(cc, cli), 0);
    fake_ns = 1000000000ull;
    spw__net_set_clock(*srv, fake_clock, NULL);
    spw__net_set_clock(*cli, fake_clock, NULL);
}

static void send_req(spw_net *n, uint64_t id, size_t bytes)
{
    spw_net_msg *m;
    assert_int_equal(spw_net_tx_alloc(n, bytes, &m), 0);
    for (int s = 0; s < m->nsegs; s++)
        memset(m->segs[s].data, (int)id, m->segs[s].size);
    m->type = SPW_NET_REQUEST;
    m->request_id = id;
    assert_int_equal(spw_net_send(n, m, 0, 0, bytes), 0);
}

/* Steps the clock in 10 us until srv has a message (up to limit_ms);
 * returns its request id and stores the arrival time. */
static uint64_t wait_msg(spw_net *cli, spw_net *srv, uint64_t limit_ms, uint64_t *at)
{
    for (uint64_t t = 0; t < limit_ms * 100; t++) {
        spw_net_msg *q;
        assert_true(spw_net_poll(cli, 0) >= 0);
        assert_true(spw_net_poll(srv, 0) >= 0);
        if (spw_net_recv(srv, &q, 1) == 1) {
            uint64_t id = q->request_id;
            *at = fake_ns;
            spw_net_msg_free(srv, q);
            return id;
        }
        fake_ns += 10000;
    }
    fail_msg("nothing arrived in %llu ms", (unsigned long long)limit_ms);
    return 0;
}

static void test_shaper_rate_and_delay(void **state)
{
    (void)state;
    if (!spw_net_emulation_available())
        spw_skip("link emulation is not built in (SPW_NET_EMULATION=OFF)");
    spw_net_config cc = {0}, sc = {0};
    assert_int_equal(spw_net_link_parse("1mbit,20ms", &cc), 0);
    spw_net *cli, *srv;
    open_pair(&cc, &sc, &cli, &srv);
    const size_t bytes = 24000;
    uint64_t t0 = fake_ns, at;
    send_req(cli, 1, bytes);
    assert_int_equal(wait_msg(cli, srv, 2000, &at), 1);
    spw_net_stats st;
    spw_net_stats_get(cli, &st);
    /* Independent arithmetic: every frame sent so far was a fragment of the
     * request; each pays its bytes plus IPv4/UDP/Ethernet headers, less the
     * one-MTU burst the bucket starts with, then the one-way delay. */
    double wire = (double)st.tx_bytes + (double)st.tx_packets * SPW_NET_L2L4_LEN;
    assert_true(st.tx_packets >= bytes / 1500);
    double expect_ns = (wire - 1500) * 8 / 1e6 * 1e9 + 20e6;
    double ratio = (double)(at - t0) / expect_ns;
    assert_true(ratio > 0.99 && ratio < 1.01);
    spw_net_close(cli);
    spw_net_close(srv);
}

/* Wire bytes the client has sent so far, headers included. */
static double wire_sent(spw_net *n)
{
    spw_net_stats st;
    spw_net_stats_get(n, &st);
    return (double)st.tx_bytes + (double)st.tx_packets * SPW_NET_L2L4_LEN;
}

static void test_shaper_rate_steps(void **state)
{
    (void)state;
    if (!spw_net_emulation_available())
        spw_skip("link emulation is not built in (SPW_NET_EMULATION=OFF)");
    spw_net_config cc = {0}, sc = {0};
    assert_int_equal(spw_net_link_parse("1mbit,0;200kbit@150ms", &cc), 0);
    cc.shape_epoch_ns = 1000000000ull; /* where open_pair starts the injected clock */
    spw_net *cli, *srv;
    open_pair(&cc, &sc, &cli, &srv);
    uint64_t t0 = fake_ns, at;
    /* Before the step: 1 Mbit/s. */
    send_req(cli, 1, 12000);
    assert_int_equal(wait_msg(cli, srv, 2000, &at), 1);
    double w1 = wire_sent(cli);
    double r1 = (double)(at - t0) / ((w1 - 1500) * 8 / 1e6 * 1e9);
    assert_true(r1 > 0.99 && r1 < 1.01);
    /* After it: 200 kbit/s (a full bucket of one MTU again). */
    fake_ns = t0 + 200000000ull;
    uint64_t t1 = fake_ns;
    send_req(cli, 2, 12000);
    assert_int_equal(wait_msg(cli, srv, 2000, &at), 2);
    double r2 = (double)(at - t1) / ((wire_sent(cli) - w1 - 1500) * 8 / 2e5 * 1e9);
    assert_true(r2 > 0.99 && r2 < 1.01);
    spw_net_close(cli);
    spw_net_close(srv);
}

static void test_shaper_jitter_bounds_and_order(void **state)
{
    (void)state;
    if (!spw_net_emulation_available())
        spw_skip("link emulation is not built in (SPW_NET_EMULATION=OFF)");
    spw_net_config cc = {0}, sc = {0};
    assert_int_equal(spw_net_link_parse("inf,10ms,4ms", &cc), 0);
    spw_net *cli, *srv;
    open_pair(&cc, &sc, &cli, &srv);
    /* Requests far apart: each delay lies in 10 +- 4 ms, and they spread. */
    double lo = 1e18, hi = 0;
    for (uint64_t id = 1; id <= 40; id++) {
        uint64_t t0 = fake_ns, at;
        send_req(cli, id, 64);
        assert_int_equal(wait_msg(cli, srv, 100, &at), id);
        double d = (double)(at - t0);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
        fake_ns += 30000000; /* the ACK lands; the link is idle again */
        assert_true(spw_net_poll(cli, 0) >= 0);
        assert_true(spw_net_poll(srv, 0) >= 0);
    }
    assert_true(lo >= 6e6 - 10000 && hi <= 14e6 + 10000);
    assert_true(hi - lo > 4e6); /* jitter is really applied */
    /* Requests back to back: jitter never reorders them. */
    for (uint64_t id = 100; id < 120; id++)
        send_req(cli, id, 64);
    for (uint64_t id = 100; id < 120; id++) {
        uint64_t at;
        assert_int_equal(wait_msg(cli, srv, 100, &at), id);
    }
    spw_net_close(cli);
    spw_net_close(srv);
}

/* ---- both directions over UDP loopback ------------------------------------ */

static void test_udp_round_trip_ratio(void **state)
{
    (void)state;
    if (!spw_net_emulation_available())
        spw_skip("link emulation is not built in (SPW_NET_EMULATION=OFF)");
    const char *link = "2mbit,20ms";
    /* A long first RTO: no probe joins the request on the link. */
    spw_net_config sc = {
        .transport = SPW_NET_UDP, .local = "127.0.0.1:0", .rto_us = 500000, .insecure = 1};
    assert_int_equal(spw_net_link_parse(link, &sc), 0);
    spw_net *srv, *cli;
    assert_int_equal(spw_net_open(&sc, &srv), 0);
    spw_net_addr a;
    assert_int_equal(spw_net_local_addr(srv, &a), 0);
    char peer[32];
    snprintf(peer, sizeof(peer), "127.0.0.1:%u", a.port);
    spw_net_config cc = {.transport = SPW_NET_UDP,
                         .local = "127.0.0.1:0",
                         .peer = peer,
                         .rto_us = 500000,
                         .insecure = 1};
    assert_int_equal(spw_net_link_parse(link, &cc), 0);
    assert_int_equal(spw_net_open(&cc, &cli), 0);
    const size_t req = 16000, res = 4000;
    uint64_t t0 = spw__now_ns(), t1 = 0, deadline = t0 + 5000000000ull;
    send_req(cli, 7, req);
    bool answered = false, got = false;
    while (!got && spw__now_ns() < deadline) {
        spw_net_msg *m;
        assert_true(spw_net_poll(srv, 200) >= 0);
        if (!answered && spw_net_recv(srv, &m, 1) == 1) {
            assert_int_equal(m->type, SPW_NET_REQUEST);
            spw_net_addr to = m->peer;
            spw_net_msg_free(srv, m);
            spw_net_msg *r;
            assert_int_equal(spw_net_tx_alloc(srv, res, &r), 0);
            for (int s = 0; s < r->nsegs; s++)
                memset(r->segs[s].data, 3, r->segs[s].size);
            r->type = SPW_NET_RESULT;
            r->request_id = 7;
            r->peer = to;
            assert_int_equal(spw_net_send(srv, r, 0, 0, res), 0);
            answered = true;
        }
        assert_true(spw_net_poll(cli, 200) >= 0);
        if (spw_net_recv(cli, &m, 1) == 1) {
            got = m->type == SPW_NET_RESULT && m->request_id == 7;
            spw_net_msg_free(cli, m);
            t1 = spw__now_ns();
        }
    }
    assert_true(got);
    /* Expected: each direction's payload and headers at the rate (less the
     * one-MTU burst), plus one delay each way. */
    size_t frag = spw_net_frag_payload(cli);
    double per = SPW_PROTO_HDR_LEN + SPW_NET_L2L4_LEN; /* header bytes per frame */
    double wire_req = req + (double)((req + frag - 1) / frag) * per;
    double wire_res = res + (double)((res + frag - 1) / frag) * per;
    double expect_ns = ((wire_req - 1500) + (wire_res - 1500)) * 8 / 2e6 * 1e9 + 2 * 20e6;
    double ratio = (double)(t1 - t0) / expect_ns;
    print_message("round trip %.1f ms, expected %.1f ms (ratio %.2f)\n", (double)(t1 - t0) / 1e6,
                  expect_ns / 1e6, ratio);
    /* Never faster than the link allows; slower only by scheduling on a
     * loaded machine. */
    assert_true(ratio > 0.9 && ratio < 3.0);
    spw_net_close(cli);
    spw_net_close(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_presets),
        cmocka_unit_test(test_parse_custom),
        cmocka_unit_test(test_parse_steps),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_shaper_rate_and_delay),
        cmocka_unit_test(test_shaper_rate_steps),
        cmocka_unit_test(test_shaper_jitter_bounds_and_order),
        cmocka_unit_test(test_udp_round_trip_ratio),
    };
    return spw_test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}

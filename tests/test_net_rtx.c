/* Retransmission that saves the uplink, on an injected clock (no sleeping,
 * no timing assertions): the peer ACKs a whole request at once, so a slow
 * server costs no resends; the RTO follows the measured RTT (RFC 6298); a
 * request lives exactly until its deadline; a NACK never costs the peer more
 * bytes than it sent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "netpath/proto.h"
#include "netpath/transport.h"
#include "splitwire/net.h"

static uint64_t fake_ns;

static uint64_t fake_clock(void *ctx)
{
    (void)ctx;
    return fake_ns;
}

/* Advances the clock by `ms` in 100 us steps, running both endpoints. */
static void run_for(spw_net *a, spw_net *b, uint64_t ms)
{
    for (uint64_t t = 0; t < ms * 10; t++) {
        fake_ns += 100000;
        assert_true(spw_net_poll(a, 0) >= 0);
        if (b)
            assert_true(spw_net_poll(b, 0) >= 0);
    }
}

static spw_net_config base(void)
{
    spw_net_config c = {.transport = SPW_NET_MEMORY, .seed = 5, .insecure = 1};
    return c;
}

static void open_pair(spw_net_config *cc, spw_net_config *sc, spw_net **cli, spw_net **srv)
{
    sc->local = "10.9.0.2:9000";
    cc->local = "10.9.0.1:9001";
    cc->peer = "10.9.0.2:9000";
    assert_int_equal(spw_net_open(sc, srv), 0);
    cc->memory_pair = *srv;
    assert_int_equal(spw_net_open(cc, cli), 0);
    fake_ns = 1000000000ull;
    spw__net_set_clock(*srv, fake_clock, NULL);
    spw__net_set_clock(*cli, fake_clock, NULL);
}

static void send_req(spw_net *n, uint64_t id, size_t bytes, uint32_t timeout_ms)
{
    spw_net_msg *m;
    assert_int_equal(spw_net_tx_alloc(n, bytes, &m), 0);
    for (int s = 0; s < m->nsegs; s++)
        memset(m->segs[s].data, (int)id, m->segs[s].size);
    m->type = SPW_NET_REQUEST;
    m->request_id = id;
    m->timeout_ms = timeout_ms;
    assert_int_equal(spw_net_send(n, m, 0, 0, bytes), 0);
}

/* Takes the request off the server, returns its peer (to answer later). */
static spw_net_addr take_request(spw_net *srv, uint64_t id)
{
    spw_net_msg *q;
    assert_int_equal(spw_net_recv(srv, &q, 1), 1);
    assert_int_equal(q->type, SPW_NET_REQUEST);
    assert_int_equal(q->request_id, id);
    spw_net_addr peer = q->peer;
    spw_net_msg_free(srv, q);
    return peer;
}

static void answer(spw_net *srv, const spw_net_addr *peer, uint64_t id)
{
    spw_net_msg *r;
    assert_int_equal(spw_net_tx_alloc(srv, 64, &r), 0);
    memset(r->segs[0].data, 0x5a, 64);
    r->type = SPW_NET_RESULT;
    r->request_id = id;
    r->peer = *peer;
    assert_int_equal(spw_net_send(srv, r, 0, 0, 64), 0);
}

static int take_result(spw_net *cli, uint64_t id, int *status)
{
    spw_net_msg *r;
    int got = spw_net_recv(cli, &r, 1);
    if (got == 1) {
        assert_int_equal(r->request_id, id);
        *status = r->type == SPW_NET_RESULT ? 0 : r->status;
        spw_net_msg_free(cli, r);
    }
    return got;
}

/* A server that takes 700 ms: the ACK arrives at once and nothing is resent
 * meanwhile; the request's frames on the wire are exactly its fragments. */
static void slow_server_costs_no_resends(void **state)
{
    (void)state;
    spw_net_config cc = base(), sc = base();
    spw_net *cli, *srv;
    open_pair(&cc, &sc, &cli, &srv);
    size_t frag = spw_net_frag_payload(cli), bytes = 5 * frag;
    send_req(cli, 1, bytes, 5000);
    run_for(cli, srv, 1);
    spw_net_addr peer = take_request(srv, 1);
    run_for(cli, srv, 700);
    answer(srv, &peer, 1);
    run_for(cli, srv, 1);
    int st = -1;
    assert_int_equal(take_result(cli, 1, &st), 1);
    assert_int_equal(st, 0);
    spw_net_stats cs, ss;
    spw_net_stats_get(cli, &cs);
    spw_net_stats_get(srv, &ss);
    assert_int_equal(cs.retransmits, 0);
    assert_int_equal(cs.probes, 0);
    assert_int_equal(cs.acks_received, 1);
    assert_int_equal(ss.acks_received, 1); /* the client ACKed the answer */
    assert_int_equal(cs.tx_packets - cs.acks_sent, 5);
    assert_int_equal(ss.retransmits, 0);
    spw_net_close(cli);
    spw_net_close(srv);
}

/* 10 ms each way (the shaper on the injected clock): after a few requests
 * SRTT is the 20 ms round trip and the RTO just above it, not the 20 ms
 * initial guess doubled nor a fixed constant. */
static void rto_follows_measured_rtt(void **state)
{
    (void)state;
    spw_net_config cc = base(), sc = base();
    cc.shape_delay_us = sc.shape_delay_us = 10000;
    cc.rto_us = 200000; /* a poor first guess, corrected by measurement */
    spw_net *cli, *srv;
    open_pair(&cc, &sc, &cli, &srv);
    for (uint64_t id = 1; id <= 8; id++) {
        send_req(cli, id, 2000, 5000);
        run_for(cli, srv, 15);
        spw_net_addr peer = take_request(srv, id);
        answer(srv, &peer, id);
        run_for(cli, srv, 15);
        int st = -1;
        assert_int_equal(take_result(cli, id, &st), 1);
        assert_int_equal(st, 0);
    }
    spw_net_stats cs;
    spw_net_stats_get(cli, &cs);
    assert_int_equal(cs.probes, 0);
    assert_in_range(cs.srtt_us, 19000, 22000);
    assert_in_range(cs.rto_us, cs.srtt_us, 30000);
    spw_net_close(cli);
    spw_net_close(srv);
}

/* 40 ms each way against a first guess of 20 ms: the first requests are
 * probed (Karn's rule: no sample), each probe doubles the RTO (RFC 6298
 * 5.5) until a request goes unprobed, gives a sample, and the RTO settles
 * on the 80 ms round trip; the later requests cost no probe. */
static void rto_learns_a_path_slower_than_its_guess(void **state)
{
    (void)state;
    spw_net_config cc = base(), sc = base();
    cc.shape_delay_us = sc.shape_delay_us = 40000;
    spw_net *cli, *srv;
    open_pair(&cc, &sc, &cli, &srv);
    uint64_t probes_before_last = 0;
    for (uint64_t id = 1; id <= 10; id++) {
        if (id == 6) {
            spw_net_stats cs;
            spw_net_stats_get(cli, &cs);
            probes_before_last = cs.probes;
        }
        send_req(cli, id, 2000, 5000);
        run_for(cli, srv, 50);
        spw_net_addr peer = take_request(srv, id);
        answer(srv, &peer, id);
        run_for(cli, srv, 200);
        int st = -1;
        assert_int_equal(take_result(cli, id, &st), 1);
        assert_int_equal(st, 0);
    }
    spw_net_stats cs;
    spw_net_stats_get(cli, &cs);
    assert_true(probes_before_last > 0); /* the guess was too short at first */
    assert_int_equal(cs.probes, probes_before_last);
    assert_in_range(cs.srtt_us, 78000, 90000);
    assert_in_range(cs.rto_us, cs.srtt_us, 200000);
    spw_net_close(cli);
    spw_net_close(srv);
}

/* A message that takes longer than the reassembly timeout to arrive, but
 * keeps arriving (5 fragments at 64 kbit/s: about 0.8 s against 0.5 s), is
 * kept and delivered, not dropped half-way. */
static void slow_link_message_is_reassembled(void **state)
{
    (void)state;
    spw_net_config cc = base(), sc = base();
    cc.shape_rate_bps = 64000;
    cc.rto_us = cc.min_rto_us = 900000; /* no probes: the reassembly alone */
    spw_net *cli, *srv;
    open_pair(&cc, &sc, &cli, &srv);
    size_t frag = spw_net_frag_payload(cli);
    send_req(cli, 1, 5 * frag, 10000);
    run_for(cli, srv, 1200);
    take_request(srv, 1);
    spw_net_stats ss;
    spw_net_stats_get(srv, &ss);
    assert_int_equal(ss.reasm_timeouts, 0);
    assert_int_equal(ss.rx_msgs, 1);
    spw_net_close(cli);
    spw_net_close(srv);
}

/* Nobody answers: the request fails at its own deadline (10 s here), not
 * earlier, and the probes until then back off to one a second. */
static void deadline_is_the_request_timeout(void **state)
{
    (void)state;
    spw_net_config cc = base();
    cc.local = "10.9.0.1:9001";
    cc.peer = "10.9.0.2:9000";
    spw_net *cli;
    assert_int_equal(spw_net_open(&cc, &cli), 0); /* unpaired: a black hole */
    fake_ns = 1000000000ull;
    spw__net_set_clock(cli, fake_clock, NULL);
    send_req(cli, 7, 3000, 10000);
    /* The same through spw_net_sendv (what a client's retry uses). */
    static uint8_t body[256];
    spw_net_seg seg = {body, sizeof(body)};
    spw_net_msg hdr = {.type = SPW_NET_REQUEST, .request_id = 8, .timeout_ms = 10000};
    assert_int_equal(spw_net_sendv(cli, &hdr, &seg, 1), 0);
    int st = 0;
    run_for(cli, NULL, 9990);
    spw_net_msg *r;
    assert_int_equal(spw_net_recv(cli, &r, 1), 0);
    run_for(cli, NULL, 20);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(spw_net_recv(cli, &r, 1), 1);
        assert_true(r->request_id == 7 || r->request_id == 8);
        st = r->status;
        spw_net_msg_free(cli, r);
        assert_int_equal(st, SPW_ETIMEDOUT);
    }
    spw_net_stats cs;
    spw_net_stats_get(cli, &cs);
    /* 20, 40, ... 640 ms, then every second: about 15 probes each, one frame each. */
    assert_in_range(cs.probes, 20, 40);
    assert_int_equal(cs.request_timeouts, 2);
    spw_net_close(cli);
}

/* One spoofed 98-byte first fragment of a 4096-fragment message: the NACKs
 * it provokes stay within the 98 bytes it cost the sender. */
static void nack_never_amplifies(void **state)
{
    (void)state;
    spw_net_config sc = base();
    sc.local = "10.9.0.2:9000";
    sc.max_msg_bytes = 4096u * 1400u; /* the most fragments a message can have */
    spw_net *srv;
    assert_int_equal(spw_net_open(&sc, &srv), 0);
    fake_ns = 1000000000ull;
    spw__net_set_clock(srv, fake_clock, NULL);
    uint8_t f[128];
    memset(f, 0, sizeof(f));
    spw_proto_hdr h = {.type = SPW_NET_REQUEST,
                       .request_id = 99,
                       .frag_index = 0,
                       .frag_count = 4096,
                       .payload_len = 28,
                       .msg_len = 4096u * (uint32_t)spw_net_frag_payload(srv)};
    spw__proto_write(f, &h);
    spw_net_addr victim = {.ip = 0x0a090063, .port = 53};
    assert_int_equal(spw__net_inject(srv, f, SPW_PROTO_HDR_LEN + 28, &victim), 0);
    run_for(srv, NULL, 600);
    spw_net_stats ss;
    spw_net_stats_get(srv, &ss);
    print_message("nacks sent %llu held %llu, %llu bytes out\n", (unsigned long long)ss.nacks_sent,
                  (unsigned long long)ss.nacks_held, (unsigned long long)ss.tx_bytes);
    assert_true(ss.tx_bytes <= SPW_PROTO_HDR_LEN + 28);
    assert_true(ss.nacks_held > 0);
    assert_int_equal(ss.reasm_timeouts, 1);
    spw_net_close(srv);
}

/* The client lost the answer and all of the server's own resends of it: its
 * next probe (a repeat of the request) is answered from the kept answer, not
 * with an ACK that would leave it waiting for nothing. */
static void repeat_is_answered_from_kept_answer(void **state)
{
    (void)state;
    spw_net_config sc = base();
    sc.local = "10.9.0.2:9000";
    spw_net *srv;
    assert_int_equal(spw_net_open(&sc, &srv), 0); /* unpaired: its answers are lost */
    fake_ns = 1000000000ull;
    spw__net_set_clock(srv, fake_clock, NULL);
    uint8_t f[SPW_PROTO_HDR_LEN + 64];
    memset(f, 0, sizeof(f));
    spw_proto_hdr h = {.type = SPW_NET_REQUEST,
                       .request_id = 42,
                       .frag_index = 0,
                       .frag_count = 1,
                       .payload_len = 64,
                       .msg_len = 64};
    spw__proto_write(f, &h);
    spw_net_addr client = {.ip = 0x0a090001, .port = 9001};
    assert_int_equal(spw__net_inject(srv, f, sizeof(f), &client), 0);
    spw_net_addr peer = take_request(srv, 42);
    answer(srv, &peer, 42);
    run_for(srv, NULL, 500); /* every resend of the answer is lost too */
    spw_net_stats before, after;
    spw_net_stats_get(srv, &before);
    assert_int_equal(before.retransmits, 4);
    assert_int_equal(spw__net_inject(srv, f, sizeof(f), &client), 0);
    run_for(srv, NULL, 1);
    spw_net_stats_get(srv, &after);
    assert_int_equal(after.retransmits, before.retransmits + 1);
    assert_int_equal(after.acks_sent, before.acks_sent);
    spw_net_close(srv);
}

/* Request frames the client sends, by kind, as its tap sees them. */
typedef struct req_frames {
    int data;  /* frames carrying request payload (fragments, probes) */
    int alive; /* keep-alive probes */
    size_t alive_bytes;
} req_frames;

static void count_requests(void *ctx, const uint8_t *f, size_t len, const spw_net_addr *dst)
{
    (void)dst;
    req_frames *r = ctx;
    if (f[3] != SPW_NET_REQUEST)
        return;
    if (f[5] & SPW_PROTO_PROBE) {
        r->alive++;
        r->alive_bytes = len;
    } else {
        r->data++;
    }
}

/* A server that takes 1.8 s, then 3 s, on a request ACKed at once: no
 * fragment goes twice; the server is asked whether it still holds the
 * request by keep-alives as long as its ACK (no payload), once a second
 * at first, then every 2x the 1.8 s measured, so the 3 s one gets none. */
static void acked_request_is_kept_alive_without_payload(void **state)
{
    (void)state;
    spw_net_config cc = base(), sc = base();
    cc.max_retries = 3; /* as a client with failover sets it */
    spw_net *cli, *srv;
    open_pair(&cc, &sc, &cli, &srv);
    req_frames rf = {0};
    spw__net_set_tap(cli, count_requests, &rf);
    size_t frag = spw_net_frag_payload(cli), bytes = 5 * frag;
    send_req(cli, 1, bytes, 20000);
    run_for(cli, srv, 1);
    spw_net_addr peer = take_request(srv, 1);
    run_for(cli, srv, 1799);
    answer(srv, &peer, 1);
    run_for(cli, srv, 1);
    int st = -1;
    assert_int_equal(take_result(cli, 1, &st), 1);
    assert_int_equal(st, 0);
    spw_net_stats cs, ss;
    spw_net_stats_get(cli, &cs);
    spw_net_stats_get(srv, &ss);
    assert_int_equal(rf.data, 5);
    assert_int_equal(rf.alive, 1); /* at 1 s */
    assert_int_equal(rf.alive_bytes, SPW_PROTO_HDR_LEN + 4);
    assert_int_equal(cs.keepalives_sent, 1);
    assert_int_equal(ss.keepalives_received, 1);
    assert_int_equal(cs.probes, 0);
    assert_int_equal(cs.retransmits, 0);
    assert_int_equal(cs.acks_received, 2); /* the request's, then the keep-alive's */
    assert_in_range(cs.keepalive_us, 3580000, 3620000);

    send_req(cli, 2, bytes, 20000);
    run_for(cli, srv, 1);
    peer = take_request(srv, 2);
    run_for(cli, srv, 2999);
    answer(srv, &peer, 2);
    run_for(cli, srv, 1);
    assert_int_equal(take_result(cli, 2, &st), 1);
    assert_int_equal(st, 0);
    spw_net_stats_get(cli, &cs);
    assert_int_equal(rf.data, 10);
    assert_int_equal(rf.alive, 1);
    assert_int_equal(cs.retransmits, 0);
    spw_net_close(cli);
    spw_net_close(srv);
}

/* The server ACKs the request, then goes silent: the keep-alive at 1 s goes
 * unanswered, so the next probes are the largest fragment (which a server
 * that lost the request would NACK); after max_retries probes without a
 * reply the request is given up, at (max_retries + 1) x 1 s, long before
 * its 60 s deadline. */
static void silent_after_ack_is_given_up_after_max_retries(void **state)
{
    (void)state;
    spw_net_config cc = base(), sc = base();
    cc.max_retries = 3;
    spw_net *cli, *srv;
    open_pair(&cc, &sc, &cli, &srv);
    req_frames rf = {0};
    spw__net_set_tap(cli, count_requests, &rf);
    size_t frag = spw_net_frag_payload(cli);
    send_req(cli, 1, 3 * frag, 60000);
    run_for(cli, srv, 1);
    take_request(srv, 1);
    spw_net_stats cs;
    spw_net_stats_get(cli, &cs);
    assert_int_equal(cs.acks_received, 1);
    run_for(cli, NULL, 3990); /* the server no longer runs */
    int st = 0;
    assert_int_equal(take_result(cli, 1, &st), 0);
    run_for(cli, NULL, 20);
    assert_int_equal(take_result(cli, 1, &st), 1);
    assert_int_equal(st, SPW_ETIMEDOUT);
    spw_net_stats_get(cli, &cs);
    assert_int_equal(cs.keepalives_sent, 1);
    assert_int_equal(cs.probes, 2);
    assert_int_equal(cs.request_timeouts, 1);
    assert_int_equal(rf.alive, 1);
    assert_int_equal(rf.data, 3 + 2);
    spw_net_close(cli);
    spw_net_close(srv);
}

/* The server's NACK of fragments 0..2 of request id, as if from srv. */
static void inject_nack(spw_net *cli, uint64_t id)
{
    uint8_t f[SPW_PROTO_HDR_LEN + SPW_PROTO_NACK_FIXED + 4];
    memset(f, 0, sizeof(f));
    uint8_t *p = f + SPW_PROTO_HDR_LEN;
    p[0] = SPW_NET_REQUEST;
    spw__st16(p + 2, 0);
    spw__st16(p + 4, 3);
    p[SPW_PROTO_NACK_FIXED] = 0x07;
    spw_proto_hdr h = {.type = SPW_NET_NACK,
                       .request_id = id,
                       .frag_count = 1,
                       .payload_len = SPW_PROTO_NACK_FIXED + 4,
                       .msg_len = SPW_PROTO_NACK_FIXED + 4};
    spw__proto_write(f, &h);
    spw_net_addr srv;
    assert_int_equal(spw_net_addr_parse("10.9.0.2:9000", &srv), 0);
    assert_int_equal(spw__net_inject(cli, f, sizeof(f), &srv), 0);
}

/* A NACK the server sent before it had the whole request (the client was
 * descheduled between its fragments) and that is read after the ACK is
 * stale: nothing is resent. The same NACK before the ACK is obeyed. */
static void nack_after_ack_is_stale(void **state)
{
    (void)state;
    spw_net_config cc = base(), sc = base();
    spw_net *cli, *srv;
    open_pair(&cc, &sc, &cli, &srv);
    size_t frag = spw_net_frag_payload(cli);
    send_req(cli, 1, 3 * frag, 5000);
    run_for(cli, srv, 1);
    take_request(srv, 1);
    run_for(cli, NULL, 3); /* past the NACK delay since the fragments went */
    inject_nack(cli, 1);
    spw_net_stats cs;
    spw_net_stats_get(cli, &cs);
    assert_int_equal(cs.acks_received, 1);
    assert_int_equal(cs.nacks_received, 1);
    assert_int_equal(cs.retransmits, 0);
    send_req(cli, 2, 3 * frag, 5000); /* the server does not run: no ACK */
    run_for(cli, NULL, 3);
    inject_nack(cli, 2);
    spw_net_stats_get(cli, &cs);
    assert_int_equal(cs.nacks_received, 2);
    assert_int_equal(cs.retransmits, 3);
    spw_net_close(cli);
    spw_net_close(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(slow_server_costs_no_resends),
        cmocka_unit_test(rto_follows_measured_rtt),
        cmocka_unit_test(rto_learns_a_path_slower_than_its_guess),
        cmocka_unit_test(slow_link_message_is_reassembled),
        cmocka_unit_test(deadline_is_the_request_timeout),
        cmocka_unit_test(nack_never_amplifies),
        cmocka_unit_test(repeat_is_answered_from_kept_answer),
        cmocka_unit_test(acked_request_is_kept_alive_without_payload),
        cmocka_unit_test(silent_after_ack_is_given_up_after_max_retries),
        cmocka_unit_test(nack_after_ack_is_stale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

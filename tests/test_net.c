/* Netpath: wire header validation, the message layer over the in-process
 * transport (fragmentation, reassembly, NACK, timeouts, faults, bounded
 * state, shaping) and kernel UDP over loopback, where a relay drops chosen
 * fragments so that NACK-driven resends are required, not just possible. */
#include <arpa/inet.h>
#include <errno.h>
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "netpath/net_internal.h"
#include "netpath/proto.h"
#include "netpath/transport.h"
#include "splitwire/codec.h"
#include "splitwire/net.h"

#define REQ_BYTES 6144u
#define RES_BYTES 64u

/* ---- helpers ----------------------------------------------------------- */

static uint8_t pattern_byte(uint64_t id, size_t i)
{
    return (uint8_t)((id * 131u + i * 7u + (i >> 8)) ^ 0x5a);
}

/* The answer a correct server gives: a digest of exactly what it received. */
static void make_result(const spw_net_msg *req, uint8_t out[RES_BYTES])
{
    uint32_t crc = 0;
    for (int i = 0; i < req->nsegs; i++)
        crc = spw_crc32c(crc, req->segs[i].data, req->segs[i].size);
    memset(out, 0, RES_BYTES);
    spw__st32(out, crc);
    spw__st32(out + 4, (uint32_t)req->bytes);
    spw__st64(out + 8, req->request_id);
    for (unsigned i = 16; i < RES_BYTES; i++)
        out[i] = (uint8_t)(crc >> (i % 4 * 8));
}

static void expected_result(uint64_t id, size_t bytes, uint8_t out[RES_BYTES])
{
    uint8_t *buf = malloc(bytes ? bytes : 1);
    assert_non_null(buf);
    for (size_t i = 0; i < bytes; i++)
        buf[i] = pattern_byte(id, i);
    spw_net_seg seg = {buf, bytes};
    spw_net_msg m = {.request_id = id, .bytes = bytes, .nsegs = 1, .segs = &seg};
    make_result(&m, out);
    free(buf);
}

/* Writes a request of `bytes` straight into transport buffers and sends it. */
static int send_request(spw_net *n, uint64_t id, size_t bytes)
{
    spw_net_msg *m;
    int rc = spw_net_tx_alloc(n, bytes, &m);
    if (rc)
        return rc;
    size_t k = 0;
    for (int s = 0; s < m->nsegs; s++)
        for (size_t i = 0; i < m->segs[s].size; i++, k++)
            ((uint8_t *)m->segs[s].data)[i] = pattern_byte(id, k);
    m->type = SPW_NET_REQUEST;
    m->request_id = id;
    m->model_id = 7;
    m->rate_point = 3;
    m->c = 48;
    m->h = 28;
    m->w = 28;
    return spw_net_send(n, m, 0, 0, bytes);
}

/* Serves every ready request; returns how many were answered. */
static int serve(spw_net *srv)
{
    spw_net_msg *msgs[16];
    int got = spw_net_recv(srv, msgs, 16), answered = 0;
    assert_true(got >= 0);
    for (int i = 0; i < got; i++) {
        spw_net_msg *q = msgs[i];
        assert_int_equal(q->type, SPW_NET_REQUEST);
        assert_int_equal(q->model_id, 7);
        assert_int_equal(q->c, 48);
        spw_net_msg *r;
        if (spw_net_tx_alloc(srv, RES_BYTES, &r) == 0) {
            make_result(q, r->segs[0].data);
            r->type = SPW_NET_RESULT;
            r->request_id = q->request_id;
            r->peer = q->peer;
            assert_int_equal(spw_net_send(srv, r, 0, 0, RES_BYTES), 0);
            answered++;
        }
        spw_net_msg_free(srv, q);
    }
    return answered;
}

typedef struct outcome {
    int ok, timed_out, wrong;
} outcome;

/* Checks every ready answer at the client. */
static void collect(spw_net *cli, size_t bytes, uint8_t *done, int nreq, outcome *o)
{
    spw_net_msg *msgs[16];
    int got = spw_net_recv(cli, msgs, 16);
    assert_true(got >= 0);
    for (int i = 0; i < got; i++) {
        spw_net_msg *r = msgs[i];
        uint64_t id = r->request_id;
        assert_true(id >= 1 && id <= (uint64_t)nreq);
        assert_false(done[id]); /* each request ends exactly once */
        done[id] = 1;
        if (r->type == SPW_NET_ERROR) {
            assert_int_equal(r->status, SPW_ETIMEDOUT);
            o->timed_out++;
        } else {
            uint8_t want[RES_BYTES], got_b[RES_BYTES];
            assert_int_equal(r->type, SPW_NET_RESULT);
            assert_int_equal(r->bytes, RES_BYTES);
            expected_result(id, bytes, want);
            assert_int_equal(spw_net_msg_copy(cli, r, got_b, sizeof(got_b)), RES_BYTES);
            if (memcmp(want, got_b, RES_BYTES))
                o->wrong++;
            else
                o->ok++;
        }
        spw_net_msg_free(cli, r);
    }
}

/* nreq requests of `bytes`, at most `window` outstanding, both endpoints
 * driven from this thread. Returns when every request has ended. */
static outcome exchange(spw_net *cli, spw_net *srv, int nreq, size_t bytes, int window,
                        uint64_t limit_ms)
{
    outcome o = {0};
    uint8_t *done = calloc((size_t)nreq + 1, 1);
    assert_non_null(done);
    int sent = 0;
    uint64_t t0 = spw__now_ns();
    while (o.ok + o.timed_out + o.wrong < nreq) {
        while (sent < nreq && sent - (o.ok + o.timed_out + o.wrong) < window) {
            int rc = send_request(cli, (uint64_t)sent + 1, bytes);
            if (rc == SPW_EAGAIN)
                break;
            assert_int_equal(rc, 0);
            sent++;
        }
        assert_true(spw_net_poll(cli, 100) >= 0);
        assert_true(spw_net_poll(srv, 100) >= 0);
        serve(srv);
        collect(cli, bytes, done, nreq, &o);
        /* Bounded: retries and timeouts must end every request in time. */
        assert_true(spw__now_ns() - t0 < limit_ms * 1000000ull);
    }
    free(done);
    return o;
}

static spw_net_config fast_config(spw_net_transport t)
{
    spw_net_config c = {0};
    c.transport = t;
    c.insecure = 1; /* the message layer's own behaviour, on protocol 1 */
    c.nack_delay_us = 300;
    c.rto_us = 3000;
    c.max_retries = 6;
    c.reasm_timeout_ms = 200;
    c.retain_ms = 500;
    return c;
}

static void open_memory_pair(spw_net_config *cc, spw_net_config *sc, spw_net **cli, spw_net **srv)
{
    sc->transport = cc->transport = SPW_NET_MEMORY;
    sc->local = "127.0.0.2:9000";
    cc->local = "127.0.0.1:9001";
    cc->peer = "127.0.0.2:9000";
    assert_int_equal(spw_net_open(sc, srv), 0);
    cc->memory_pair = *srv;
    assert_int_equal(spw_net_open(cc, cli), 0);
}

/* ---- wire header ------------------------------------------------------- */

static size_t build_frame(uint8_t *f, uint16_t idx, uint16_t count, uint16_t plen, uint32_t msg_len)
{
    spw_proto_hdr h = {.type = SPW_NET_REQUEST,
                       .request_id = 0x1122334455667788ull,
                       .model_id = 3,
                       .c = 48,
                       .h = 28,
                       .w = 28,
                       .rate_point = 2,
                       .frag_index = idx,
                       .frag_count = count,
                       .payload_len = plen,
                       .msg_len = msg_len};
    for (unsigned i = 0; i < plen; i++)
        f[SPW_PROTO_HDR_LEN + i] = (uint8_t)(i * 13 + idx);
    spw__proto_write(f, &h);
    return SPW_PROTO_HDR_LEN + plen;
}

static void test_proto_roundtrip(void **state)
{
    (void)state;
    uint8_t f[256];
    size_t len = build_frame(f, 1, 3, 64, 192);
    spw_proto_hdr h;
    assert_int_equal(spw__proto_parse(f, len, 1 << 20, &h), 0);
    assert_int_equal(h.type, SPW_NET_REQUEST);
    assert_true(h.request_id == 0x1122334455667788ull);
    assert_int_equal(h.frag_index, 1);
    assert_int_equal(h.frag_count, 3);
    assert_int_equal(h.payload_len, 64);
    assert_int_equal(h.msg_len, 192);
    assert_int_equal(h.c, 48);
    assert_int_equal(h.rate_point, 2);
    assert_int_equal(f[0], 'S');
    assert_int_equal(f[2], SPW_PROTO_VERSION);
    /* Message larger than allowed, and every truncation, are refused. */
    assert_int_equal(spw__proto_parse(f, len, 128, &h), SPW_EFORMAT);
    for (size_t l = 0; l < len; l++)
        assert_true(spw__proto_parse(f, l, 1 << 20, &h) < 0);
    /* Trailing bytes are not silently accepted either. */
    f[len] = 0;
    assert_int_equal(spw__proto_parse(f, len + 1, 1 << 20, &h), SPW_EFORMAT);
}

static void test_proto_every_bit_flip_rejected(void **state)
{
    (void)state;
    uint8_t f[256];
    size_t len = build_frame(f, 0, 2, 96, 200);
    spw_proto_hdr h;
    for (size_t i = 0; i < len; i++) {
        for (int b = 0; b < 8; b++) {
            f[i] ^= (uint8_t)(1u << b);
            assert_true(spw__proto_parse(f, len, 1 << 20, &h) < 0);
            f[i] ^= (uint8_t)(1u << b);
        }
    }
    assert_int_equal(spw__proto_parse(f, len, 1 << 20, &h), 0);
}

static void test_proto_field_rules(void **state)
{
    (void)state;
    uint8_t f[256];
    spw_proto_hdr h;
    /* Index beyond count, zero count, unaligned payload: valid CRC, bad fields. */
    size_t len = build_frame(f, 3, 3, 64, 192);
    assert_int_equal(spw__proto_parse(f, len, 1 << 20, &h), SPW_EFORMAT);
    len = build_frame(f, 0, 0, 64, 192);
    assert_int_equal(spw__proto_parse(f, len, 1 << 20, &h), SPW_EFORMAT);
    len = build_frame(f, 0, 2, 62, 192);
    assert_int_equal(spw__proto_parse(f, len, 1 << 20, &h), SPW_EFORMAT);
    len = build_frame(f, 0, 2, 64, 32); /* fragment longer than the message */
    assert_int_equal(spw__proto_parse(f, len, 1 << 20, &h), SPW_EFORMAT);
    /* Reserved auth bytes must be zero (the CRC is resealed to isolate the rule). */
    len = build_frame(f, 0, 2, 64, 128);
    f[60] = 1;
    spw__st32(f + 16, 0);
    uint32_t crc = spw_crc32c(0, f, len);
    spw__st32(f + 16, crc);
    assert_int_equal(spw__proto_parse(f, len, 1 << 20, &h), SPW_EFORMAT);
}

/* A keep-alive probe: a REQUEST of one 4-byte fragment with protocol flag
 * bit 1, in either version; the flag on anything else is refused. */
static size_t build_probe(uint8_t *f, uint8_t version, uint8_t type, uint16_t count, uint16_t plen)
{
    spw_proto_hdr h = {.version = version,
                       .type = type,
                       .pflags = SPW_PROTO_PROBE,
                       .request_id = 7,
                       .frag_count = count,
                       .payload_len = plen,
                       .msg_len = (uint32_t)plen * count};
    memset(f + SPW_PROTO_HDR_LEN, 0, plen);
    spw__proto_write(f, &h);
    return SPW_PROTO_HDR_LEN + plen;
}

static void test_proto_probe_rules(void **state)
{
    (void)state;
    uint8_t f[256];
    spw_proto_hdr h;
    for (uint8_t v = SPW_PROTO_VERSION; v <= SPW_PROTO_VERSION2; v++) {
        size_t len = build_probe(f, v, SPW_NET_REQUEST, 1, 4);
        assert_int_equal(f[5], v == SPW_PROTO_VERSION2 ? 3 : 2);
        assert_int_equal(spw__proto_parse(f, len, 1 << 20, &h), 0);
        assert_int_equal(h.pflags & SPW_PROTO_PROBE, SPW_PROTO_PROBE);
        assert_int_equal(h.payload_len, 4);
        len = build_probe(f, v, SPW_NET_RESULT, 1, 4);
        assert_int_equal(spw__proto_parse(f, len, 1 << 20, &h), SPW_EFORMAT);
        len = build_probe(f, v, SPW_NET_PING, 1, 4);
        assert_int_equal(spw__proto_parse(f, len, 1 << 20, &h), SPW_EFORMAT);
        len = build_probe(f, v, SPW_NET_REQUEST, 1, 8); /* carries payload */
        assert_int_equal(spw__proto_parse(f, len, 1 << 20, &h), SPW_EFORMAT);
        len = build_probe(f, v, SPW_NET_REQUEST, 1, 0);
        assert_int_equal(spw__proto_parse(f, len, 1 << 20, &h), SPW_EFORMAT);
        len = build_probe(f, v, SPW_NET_REQUEST, 2, 4); /* a fragment of a message */
        assert_int_equal(spw__proto_parse(f, len, 1 << 20, &h), SPW_EFORMAT);
    }
    /* Version 2: the flag without `sealed` is not a handshake frame either. */
    size_t len = build_probe(f, SPW_PROTO_VERSION2, SPW_NET_REQUEST, 1, 4);
    f[5] = SPW_PROTO_PROBE;
    assert_int_equal(spw__proto_parse(f, len, 1 << 20, &h), SPW_EFORMAT);
    /* Other flag bits stay refused, with the probe bit or without. */
    for (uint8_t v = SPW_PROTO_VERSION; v <= SPW_PROTO_VERSION2; v++) {
        len = build_probe(f, v, SPW_NET_REQUEST, 1, 4);
        for (int bit = 2; bit < 8; bit++) {
            f[5] ^= (uint8_t)(1u << bit);
            assert_true(spw__proto_parse(f, len, 1 << 20, &h) < 0);
            f[5] ^= (uint8_t)(1u << bit);
        }
    }
}

/* A server that holds a request whole answers its keep-alive with one ACK
 * of no more bytes; one that does not hold it, or a probe with reserved
 * bytes set, gets nothing back. */
static void test_probe_answered_by_ack(void **state)
{
    (void)state;
    spw_net_config sc = {0};
    sc.transport = SPW_NET_MEMORY;
    sc.insecure = 1;
    sc.local = "127.0.0.2:9000";
    spw_net *srv;
    assert_int_equal(spw_net_open(&sc, &srv), 0);
    spw_net_addr cli = {.ip = 0x7f000001, .port = 9001};
    uint8_t f[256];
    size_t len = build_probe(f, SPW_PROTO_VERSION, SPW_NET_REQUEST, 1, 4);
    assert_int_equal(spw__net_inject(srv, f, len, &cli), 0); /* request 7 not held */
    spw_net_stats ss;
    spw_net_stats_get(srv, &ss);
    assert_int_equal(ss.keepalives_received, 1);
    assert_int_equal(ss.tx_packets, 0);
    assert_int_equal(ss.rx_msgs, 0);
    /* Request 7 whole, then its probe. */
    size_t rl = build_frame(f, 0, 1, 64, 64);
    spw__st64(f + 8, 7);
    spw__st32(f + 16, 0);
    spw__st32(f + 16, spw_crc32c(0, f, rl));
    assert_int_equal(spw__net_inject(srv, f, rl, &cli), 0);
    spw_net_msg *m;
    assert_int_equal(spw_net_recv(srv, &m, 1), 1);
    spw_net_msg_free(srv, m);
    spw_net_stats_get(srv, &ss);
    assert_int_equal(ss.acks_sent, 1);
    len = build_probe(f, SPW_PROTO_VERSION, SPW_NET_REQUEST, 1, 4);
    assert_int_equal(spw__net_inject(srv, f, len, &cli), 0);
    spw_net_stats_get(srv, &ss);
    assert_int_equal(ss.acks_sent, 2);
    assert_int_equal(ss.tx_bytes, 2 * len); /* each ACK as long as the probe */
    assert_int_equal(ss.rx_msgs, 1);        /* not taken for a new request */
    f[SPW_PROTO_HDR_LEN] = 1;
    spw__st32(f + 16, 0);
    spw__st32(f + 16, spw_crc32c(0, f, len));
    assert_int_equal(spw__net_inject(srv, f, len, &cli), 0);
    spw_net_stats_get(srv, &ss);
    assert_int_equal(ss.acks_sent, 2);
    assert_int_equal(ss.rx_invalid, 1);
    spw_net_close(srv);
}

/* ---- message layer over the in-process transport ----------------------- */

static void test_memory_request_result_zero_copy(void **state)
{
    (void)state;
    spw_net_config cc = fast_config(SPW_NET_MEMORY), sc = fast_config(SPW_NET_MEMORY);
    spw_net *cli, *srv;
    open_memory_pair(&cc, &sc, &cli, &srv);
    size_t fp = spw_net_frag_payload(cli);
    assert_int_equal(fp % 4, 0);
    assert_int_equal(fp, (1500 - 28 - SPW_PROTO_HDR_LEN) & ~3u);

    outcome o = exchange(cli, srv, 20, REQ_BYTES, 4, 5000);
    assert_int_equal(o.ok, 20);
    spw_net_stats cs, ss;
    spw_net_stats_get(cli, &cs);
    spw_net_stats_get(srv, &ss);
    /* 6 KiB in fragments of fp bytes, an ACK per result (and resends, if
     * this thread stalled beyond the retransmission timeout on a loaded
     * machine). */
    assert_int_equal(cs.tx_packets,
                     20 * ((REQ_BYTES + fp - 1) / fp) + cs.retransmits + cs.acks_sent);
    /* Every request and every result is ACKed (again for a duplicate). */
    assert_true(cs.acks_sent >= 20 && ss.acks_sent >= 20);
    assert_int_equal(ss.rx_msgs, 20);
    /* Payloads were written into and read from transport buffers in place;
     * the only copy is the client's explicit spw_net_msg_copy of results. */
    assert_int_equal(cs.tx_copy_bytes, 0);
    assert_int_equal(ss.tx_copy_bytes, 0);
    assert_int_equal(ss.rx_copy_bytes, 0);
    assert_int_equal(cs.rx_copy_bytes, 20 * RES_BYTES);
    /* The transport's own copy into its peer (what a wire or a PMD does)
     * is counted apart, on the sending side. */
    assert_true(cs.driver_tx_copy_bytes >= 20 * REQ_BYTES);
    assert_true(ss.driver_tx_copy_bytes >= 20 * RES_BYTES);
    assert_int_equal(cs.driver_rx_copy_bytes + ss.driver_rx_copy_bytes, 0);
    spw_net_close(cli);
    spw_net_close(srv);
}

/* The codec fills segments from the back: a span starting inside a segment. */
static void test_memory_back_filled_span(void **state)
{
    (void)state;
    spw_net_config cc = fast_config(SPW_NET_MEMORY), sc = fast_config(SPW_NET_MEMORY);
    spw_net *cli, *srv;
    open_memory_pair(&cc, &sc, &cli, &srv);
    size_t fp = spw_net_frag_payload(cli);
    spw_net_msg *m;
    assert_int_equal(spw_net_tx_alloc(cli, 3 * fp, &m), 0);
    assert_int_equal(m->nsegs, 3);
    size_t offset = fp - 100, bytes = 100 + fp;
    uint8_t *expect = malloc(bytes);
    size_t k = 0;
    for (int s = 1; s < 3; s++) {
        size_t from = s == 1 ? offset : 0;
        for (size_t i = from; i < m->segs[s].size; i++, k++) {
            expect[k] = (uint8_t)(k * 31 + 1);
            ((uint8_t *)m->segs[s].data)[i] = expect[k];
        }
    }
    for (size_t i = 0; i < offset; i++)
        ((uint8_t *)m->segs[1].data)[i] = 0xee; /* must not travel */
    assert_int_equal(k, bytes);
    m->type = SPW_NET_REQUEST;
    m->request_id = 99;
    assert_int_equal(spw_net_send(cli, m, 1, offset, bytes), 0);
    spw_net_msg *r = NULL;
    assert_int_equal(spw_net_poll(srv, 0), 1);
    assert_int_equal(spw_net_recv(srv, &r, 1), 1);
    assert_int_equal(r->bytes, bytes);
    assert_int_equal(r->nsegs, 2);
    assert_int_equal(r->segs[0].size, 100);
    size_t at = 0;
    for (int s = 0; s < r->nsegs; s++) {
        assert_memory_equal(r->segs[s].data, expect + at, r->segs[s].size);
        /* Payloads stay 4-byte aligned in the receive buffers. */
        assert_int_equal((uintptr_t)r->segs[s].data % 4, 0);
        at += r->segs[s].size;
    }
    spw_net_msg_free(srv, r);
    free(expect);
    /* Bad spans are refused and the message is consumed. */
    assert_int_equal(spw_net_tx_alloc(cli, 64, &m), 0);
    m->type = SPW_NET_REQUEST;
    assert_int_equal(spw_net_send(cli, m, 0, 2, 8), SPW_EINVAL);
    assert_int_equal(spw_net_tx_alloc(cli, 64, &m), 0);
    m->type = SPW_NET_REQUEST;
    assert_int_equal(spw_net_send(cli, m, 0, 0, 128), SPW_ENOSPC);
    spw_net_close(cli);
    spw_net_close(srv);
}

static void test_memory_sendv_counts_copies(void **state)
{
    (void)state;
    spw_net_config cc = fast_config(SPW_NET_MEMORY), sc = fast_config(SPW_NET_MEMORY);
    spw_net *cli, *srv;
    open_memory_pair(&cc, &sc, &cli, &srv);
    uint8_t a[1000], b[3000];
    for (size_t i = 0; i < sizeof(a); i++)
        a[i] = pattern_byte(5, i);
    for (size_t i = 0; i < sizeof(b); i++)
        b[i] = pattern_byte(5, i + sizeof(a));
    spw_net_seg segs[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
    spw_net_msg hdr = {.type = SPW_NET_REQUEST, .request_id = 5, .model_id = 7, .c = 48};
    assert_int_equal(spw_net_sendv(cli, &hdr, segs, 2), 0);
    assert_int_equal(spw_net_poll(srv, 0), 1);
    assert_int_equal(serve(srv), 1);
    assert_int_equal(spw_net_poll(cli, 0), 1);
    spw_net_msg *r;
    assert_int_equal(spw_net_recv(cli, &r, 1), 1);
    uint8_t want[RES_BYTES];
    expected_result(5, sizeof(a) + sizeof(b), want);
    assert_memory_equal(r->segs[0].data, want, RES_BYTES);
    spw_net_msg_free(cli, r);
    spw_net_stats cs;
    spw_net_stats_get(cli, &cs);
    assert_int_equal(cs.tx_copy_bytes, sizeof(a) + sizeof(b));
    spw_net_close(cli);
    spw_net_close(srv);
}

static void run_faults(const char *what, double loss, double dup, double reorder, double trunc,
                       double corrupt, int nreq, bool expect_all_ok)
{
    spw_net_config cc = fast_config(SPW_NET_MEMORY), sc = fast_config(SPW_NET_MEMORY);
    cc.fault_loss = sc.fault_loss = loss;
    cc.fault_dup = sc.fault_dup = dup;
    cc.fault_reorder = sc.fault_reorder = reorder;
    cc.fault_truncate = sc.fault_truncate = trunc;
    cc.fault_corrupt = sc.fault_corrupt = corrupt;
    cc.seed = 11;
    sc.seed = 23;
    spw_net *cli, *srv;
    open_memory_pair(&cc, &sc, &cli, &srv);
    outcome o = exchange(cli, srv, nreq, REQ_BYTES, 8, 10000);
    spw_net_stats cs, ss;
    spw_net_stats_get(cli, &cs);
    spw_net_stats_get(srv, &ss);
    print_message("  %-22s ok %d, timed out %d | faults %llu+%llu, retransmits %llu+%llu, "
                  "nacks %llu+%llu, invalid %llu+%llu, dup %llu+%llu\n",
                  what, o.ok, o.timed_out, (unsigned long long)cs.fault_events,
                  (unsigned long long)ss.fault_events, (unsigned long long)cs.retransmits,
                  (unsigned long long)ss.retransmits, (unsigned long long)cs.nacks_sent,
                  (unsigned long long)ss.nacks_sent, (unsigned long long)cs.rx_invalid,
                  (unsigned long long)ss.rx_invalid, (unsigned long long)cs.rx_duplicate,
                  (unsigned long long)ss.rx_duplicate);
    assert_int_equal(o.wrong, 0);
    assert_int_equal(o.ok + o.timed_out, nreq);
    if (expect_all_ok)
        assert_int_equal(o.ok, nreq);
    else
        assert_true(o.ok > 0);
    assert_true(cs.fault_events + ss.fault_events > 0);
    spw_net_close(cli);
    spw_net_close(srv);
}

static void test_memory_faults(void **state)
{
    (void)state;
    run_faults("loss 1%", 0.01, 0, 0, 0, 0, 100, true);
    run_faults("loss 10%", 0.10, 0, 0, 0, 0, 100, true);
    run_faults("reorder 30%", 0, 0, 0.30, 0, 0, 100, true);
    run_faults("duplicate 30%", 0, 0.30, 0, 0, 0, 100, true);
    run_faults("truncate 5%", 0, 0, 0, 0.05, 0, 100, true);
    run_faults("corrupt 5%", 0, 0, 0, 0, 0.05, 100, true);
    /* Everything at once, harshly: some requests may time out, none may be wrong. */
    run_faults("all, heavy", 0.2, 0.2, 0.2, 0.1, 0.1, 60, false);
}

static void test_memory_request_timeout(void **state)
{
    (void)state;
    spw_net_config cc = fast_config(SPW_NET_MEMORY);
    cc.rto_us = 1000;
    cc.max_retries = 2;
    cc.local = "127.0.0.1:1";
    cc.peer = "127.0.0.2:2";
    spw_net *cli;
    assert_int_equal(spw_net_open(&cc, &cli), 0); /* unpaired: a black hole */
    assert_int_equal(send_request(cli, 1, 100), 0);
    uint64_t t0 = spw__now_ns();
    int rc = spw_net_poll(cli, 2000000);
    uint64_t dt = spw__now_ns() - t0;
    assert_int_equal(rc, 1);
    spw_net_msg *r;
    assert_int_equal(spw_net_recv(cli, &r, 1), 1);
    assert_int_equal(r->type, SPW_NET_ERROR);
    assert_int_equal(r->status, SPW_ETIMEDOUT);
    assert_int_equal(r->request_id, 1);
    spw_net_msg_free(cli, r);
    /* 1 + 2 + 4 ms of back-off, far below the 2 s limit. */
    assert_true(dt >= 6000000ull && dt < 500000000ull);
    spw_net_stats s;
    spw_net_stats_get(cli, &s);
    assert_int_equal(s.request_timeouts, 1);
    assert_int_equal(s.retransmits, 2);
    spw_net_close(cli);
}

static void test_memory_partial_nack_and_expiry(void **state)
{
    (void)state;
    spw_net_config sc = fast_config(SPW_NET_MEMORY);
    sc.reasm_timeout_ms = 30;
    sc.nack_delay_us = 2000;
    sc.local = "127.0.0.2:9000";
    spw_net *srv;
    assert_int_equal(spw_net_open(&sc, &srv), 0);
    uint8_t f[256];
    spw_net_addr from = {.ip = 0x0a000001, .port = 5};
    size_t len = build_frame(f, 0, 3, 64, 192);
    assert_int_equal(spw__net_inject(srv, f, len, &from), 0);
    assert_int_equal(spw__net_inject(srv, f, len, &from), 0); /* duplicate */
    assert_int_equal(spw_net_poll(srv, 60000), 0);
    spw_net_stats s;
    spw_net_stats_get(srv, &s);
    assert_int_equal(s.rx_duplicate, 1);
    /* NACKs are spaced at least one NACK delay apart and stop when the
     * partial message expires: at most reasm_timeout / nack_delay. */
    assert_true(s.nacks_sent >= 1);
    assert_true(s.nacks_sent <= 30000 / 2000);
    assert_int_equal(s.reasm_timeouts, 1);
    /* Completing it in any order, with a duplicate, delivers it once. */
    size_t l2 = build_frame(f, 2, 3, 64, 192);
    assert_int_equal(spw__net_inject(srv, f, l2, &from), 0);
    len = build_frame(f, 0, 3, 64, 192);
    assert_int_equal(spw__net_inject(srv, f, len, &from), 0);
    assert_int_equal(spw__net_inject(srv, f, len, &from), 0);
    len = build_frame(f, 1, 3, 64, 192);
    assert_int_equal(spw__net_inject(srv, f, len, &from), 0);
    assert_int_equal(spw__net_inject(srv, f, len, &from), 0); /* after completion */
    spw_net_msg *m[2];
    assert_int_equal(spw_net_recv(srv, m, 2), 1);
    assert_int_equal(m[0]->nsegs, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(((uint8_t *)m[0]->segs[i].data)[1], 13 + i);
    spw_net_msg_free(srv, m[0]);
    /* Fragments that cannot add up (lengths beyond the message) are refused. */
    spw_proto_hdr h = {.type = SPW_NET_REQUEST,
                       .request_id = 77,
                       .frag_index = 0,
                       .frag_count = 2,
                       .payload_len = 64,
                       .msg_len = 68};
    spw__proto_write(f, &h);
    assert_int_equal(spw__net_inject(srv, f, SPW_PROTO_HDR_LEN + 64, &from), 0);
    h.frag_index = 1;
    spw__proto_write(f, &h);
    assert_int_equal(spw__net_inject(srv, f, SPW_PROTO_HDR_LEN + 64, &from), 0);
    assert_int_equal(spw_net_recv(srv, m, 2), 0);
    spw_net_close(srv);
}

/* A NACK that is never answered: the receiver keeps asking, but no more than
 * once per NACK delay (PROTOCOL.md), until the partial message expires, so a
 * partial message costs at most reasm_timeout / nack_delay NACKs whatever
 * the timing. The NACK delay is long against the timer scan (1 ms), so
 * asking on every scan would overshoot the bound tenfold. */
static void test_memory_unanswered_nack_bounded(void **state)
{
    (void)state;
    spw_net_config cc = fast_config(SPW_NET_MEMORY), sc = fast_config(SPW_NET_MEMORY);
    sc.nack_delay_us = 10000;
    sc.reasm_timeout_ms = 200;
    spw_net *cli, *srv;
    open_memory_pair(&cc, &sc, &cli, &srv);
    /* Fragments 0, 1, 3 and 4 of 5 "from the client", which has no such
     * request and so never answers the NACKs. */
    spw_net_addr from;
    assert_int_equal(spw_net_local_addr(cli, &from), 0);
    uint8_t f[256];
    for (uint16_t i = 0; i < 5; i++) {
        if (i == 2)
            continue;
        size_t len = build_frame(f, i, 5, 64, 5 * 64);
        assert_int_equal(spw__net_inject(srv, f, len, &from), 0);
    }
    spw_net_stats s;
    uint64_t t0 = spw__now_ns();
    do {
        assert_true(spw_net_poll(srv, 1000) >= 0);
        spw_net_stats_get(srv, &s);
        assert_true(spw__now_ns() - t0 < 10000000000ull);
    } while (s.reasm_timeouts == 0);
    assert_int_equal(s.reasm_timeouts, 1);
    assert_int_equal(s.rx_msgs, 0);
    print_message("  nacks sent %llu (bound %u)\n", (unsigned long long)s.nacks_sent,
                  sc.reasm_timeout_ms * 1000u / sc.nack_delay_us);
    assert_true(s.nacks_sent >= 1);
    assert_true(s.nacks_sent <= sc.reasm_timeout_ms * 1000u / sc.nack_delay_us);
    /* They were sent, not just counted: the client got every one. */
    spw_net_stats cs;
    for (int i = 0; i < 100; i++)
        assert_true(spw_net_poll(cli, 0) >= 0);
    spw_net_stats_get(cli, &cs);
    assert_int_equal(cs.nacks_received, s.nacks_sent);
    assert_int_equal(cs.retransmits, 0);
    spw_net_close(cli);
    spw_net_close(srv);
}

/* A flood of partial messages from one sender and from many cannot exhaust
 * the server: state stays bounded and a real client still gets through. */
static void test_memory_flood_bounded(void **state)
{
    (void)state;
    spw_net_config cc = fast_config(SPW_NET_MEMORY), sc = fast_config(SPW_NET_MEMORY);
    sc.max_inflight = 64;
    sc.max_inflight_per_peer = 8;
    spw_net *cli, *srv;
    open_memory_pair(&cc, &sc, &cli, &srv);
    uint8_t f[256];
    for (uint32_t i = 0; i < 20000; i++) {
        spw_net_addr from = {.ip = 0x0b000000u + (i < 10000 ? 1 : i % 500), .port = 7};
        spw_proto_hdr h = {.type = SPW_NET_REQUEST,
                           .request_id = i,
                           .frag_count = 100,
                           .payload_len = 64,
                           .msg_len = 100 * 64};
        spw__proto_write(f, &h);
        assert_int_equal(spw__net_inject(srv, f, SPW_PROTO_HDR_LEN + 64, &from), 0);
    }
    spw_net_stats s;
    spw_net_stats_get(srv, &s);
    assert_true(s.evictions >= 20000 - 64);
    outcome o = exchange(cli, srv, 5, REQ_BYTES, 2, 5000);
    assert_int_equal(o.ok, 5);
    spw_net_close(cli);
    spw_net_close(srv);
}

static void test_memory_shaper(void **state)
{
    (void)state;
    spw_net_config cc = fast_config(SPW_NET_MEMORY), sc = fast_config(SPW_NET_MEMORY);
    /* 8 Mbit/s and 3 ms one way: a 6 KiB request takes >= 6.3 ms to leave. */
    cc.shape_rate_bps = 8000000;
    cc.shape_delay_us = 3000;
    cc.rto_us = 200000;
    spw_net *cli, *srv;
    open_memory_pair(&cc, &sc, &cli, &srv);
    uint64_t t0 = spw__now_ns();
    outcome o = exchange(cli, srv, 3, REQ_BYTES, 1, 5000);
    uint64_t dt = spw__now_ns() - t0;
    assert_int_equal(o.ok, 3);
    /* Each: ~(6144 + headers) * 8 / 8e6 s minus one MTU of burst, plus 3 ms. */
    assert_true(dt >= 3 * 7000000ull);
    spw_net_stats cs;
    spw_net_stats_get(cli, &cs);
    assert_int_equal(cs.shaper_drops, 0);
    spw_net_close(cli);
    spw_net_close(srv);
}

/* The record of completed messages: the last DONE_RING keys are found, older
 * ones and keys never added are not, through wrap-around and a slot purged
 * (zeroed) while linked, against a plain list of what was added. */
static void test_done_ring(void **state)
{
    (void)state;
    spw_net_config c = {.transport = SPW_NET_MEMORY, .local = "10.7.0.1:1", .insecure = 1};
    spw_net *n;
    assert_int_equal(spw_net_open(&c, &n), 0);
    enum { TOTAL = 3 * DONE_RING + 17 };
    static net_key added[TOTAL];
    spw_net_addr a = {.ip = 0x0a070002u, .port = 7};
    for (uint32_t i = 0; i < TOTAL; i++) {
        a.port = (uint16_t)(7 + i % 3);
        added[i] = make_key(&a, (uint8_t)(1 + i % 2), 1000u + i / 3);
        spw__net_done_add(n, &added[i]);
        if (i == DONE_RING + 5)
            memset(&n->done[(i - 2) % DONE_RING], 0, sizeof(net_key)); /* as a purge does */
    }
    for (uint32_t i = 0; i < TOTAL; i++)
        assert_int_equal(spw__net_done_has(n, &added[i]), i >= TOTAL - DONE_RING);
    net_key never = make_key(&a, 3, 1000u);
    assert_false(spw__net_done_has(n, &never));
    spw_net_close(n);
}

static void test_config_errors(void **state)
{
    (void)state;
    spw_net *n;
    spw_net_config c = {.transport = SPW_NET_UDP, .local = "127.0.0.1:99999", .insecure = 1};
    assert_int_equal(spw_net_open(&c, &n), SPW_EINVAL);
    c.local = "localhost:80";
    assert_int_equal(spw_net_open(&c, &n), SPW_EINVAL);
    c.local = "127.0.0.1:0";
    c.mtu = 100;
    assert_int_equal(spw_net_open(&c, &n), SPW_EINVAL);
    c.mtu = 0;
    c.fault_loss = 2;
    assert_int_equal(spw_net_open(&c, &n), SPW_EINVAL);
    c.fault_loss = 0;
    c.transport = (spw_net_transport)42;
    assert_int_equal(spw_net_open(&c, &n), SPW_EUNSUPPORTED);
    spw_net_addr a;
    assert_int_equal(spw_net_addr_parse("192.168.1.2:8080", &a), 0);
    assert_int_equal(a.ip, 0xc0a80102u);
    assert_int_equal(a.port, 8080);
    assert_int_equal(spw_net_addr_parse("1.2.3.4:", &a), SPW_EINVAL);
    assert_int_equal(spw_net_addr_parse("1.2.3.4", &a), SPW_EINVAL);
}

/* ---- kernel UDP on loopback -------------------------------------------- */

/* Pings srv from cli and polls both up to `rounds` times: whether the PONG
 * (carrying the token) came back. */
static bool ping_answered(spw_net *cli, spw_net *srv, uint64_t token, int rounds)
{
    assert_int_equal(spw_net_ping(cli, NULL, token), 0);
    spw_net_msg *m = NULL;
    for (int i = 0; i < rounds && !m; i++) {
        spw_net_poll(srv, 1000);
        spw_net_poll(cli, 1000);
        if (spw_net_recv(cli, &m, 1) != 1)
            m = NULL;
    }
    if (!m)
        return false;
    assert_int_equal(m->type, SPW_NET_PONG);
    assert_true(spw__ld64(m->segs[0].data) == token);
    spw_net_msg_free(cli, m);
    return true;
}

static void open_udp_pair(spw_net_config *cc, spw_net_config *sc, spw_net **cli, spw_net **srv)
{
    sc->transport = cc->transport = SPW_NET_UDP;
    sc->local = "127.0.0.1:0";
    assert_int_equal(spw_net_open(sc, srv), 0);
    spw_net_addr a;
    assert_int_equal(spw_net_local_addr(*srv, &a), 0);
    assert_true(a.port != 0);
    char peer[32];
    snprintf(peer, sizeof(peer), "127.0.0.1:%u", a.port);
    cc->local = "127.0.0.1:0";
    cc->peer = peer;
    assert_int_equal(spw_net_open(cc, cli), 0);
}

static void test_udp_loopback(void **state)
{
    (void)state;
    spw_net_config cc = fast_config(SPW_NET_UDP), sc = fast_config(SPW_NET_UDP);
    spw_net *cli, *srv;
    open_udp_pair(&cc, &sc, &cli, &srv);
    outcome o = exchange(cli, srv, 50, REQ_BYTES, 4, 5000);
    assert_int_equal(o.ok, 50);
    spw_net_stats cs, ss;
    spw_net_stats_get(cli, &cs);
    spw_net_stats_get(srv, &ss);
    /* The socket API copies each payload once per direction (resends, if
     * any, once more each; the 4-byte payload of every ACK too). */
    size_t fp = spw_net_frag_payload(cli);
    assert_int_equal(cs.tx_packets,
                     50 * ((REQ_BYTES + fp - 1) / fp) + cs.retransmits + cs.acks_sent);
    if (cs.retransmits == 0) {
        assert_int_equal(cs.tx_copy_bytes, 50 * REQ_BYTES + 4 * cs.acks_sent);
        assert_int_equal(ss.rx_copy_bytes, 50 * REQ_BYTES + 4 * ss.acks_received);
    } else {
        assert_true(cs.tx_copy_bytes > 50 * REQ_BYTES);
    }
    /* Ping is answered by the library itself. */
    assert_true(ping_answered(cli, srv, 0xabcdef, 100));
    /* A server that is leaving stops answering health checks, and answers
     * them again once ready. */
    spw_net_set_ready(srv, false);
    assert_false(ping_answered(cli, srv, 0x1234, 20));
    spw_net_stats_get(srv, &ss);
    assert_int_equal(ss.pings_unanswered, 1);
    spw_net_set_ready(srv, true);
    assert_true(ping_answered(cli, srv, 0x5678, 100));
    spw_net_close(cli);
    spw_net_close(srv);
}

static void *wake_later(void *arg)
{
    struct timespec d = {.tv_nsec = 50 * 1000 * 1000};
    nanosleep(&d, NULL);
    spw_net_wake(arg);
    return NULL;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* spw_net_wake ends a poll's wait from another thread (a server worker with
 * a finished batch), and a wake that comes before the poll is not lost: the
 * next poll returns at once, even one without a time limit. Over UDP, whose
 * polls sleep in the kernel, and the memory transport, whose polls spin. */
static void test_wake(void **state)
{
    (void)state;
    assert_int_equal(spw_net_wake(NULL), SPW_EINVAL);
    for (int t = 0; t < 2; t++) {
        spw_net_config cc = fast_config(t ? SPW_NET_MEMORY : SPW_NET_UDP),
                       sc = fast_config(t ? SPW_NET_MEMORY : SPW_NET_UDP);
        spw_net *cli, *srv;
        if (t)
            open_memory_pair(&cc, &sc, &cli, &srv);
        else
            open_udp_pair(&cc, &sc, &cli, &srv);
        /* Before the poll: taken by it (no limit: a lost wake hangs here). */
        assert_int_equal(spw_net_wake(srv), 0);
        assert_int_equal(spw_net_poll(srv, -1), 0);
        /* Taken once: the next poll waits out its time. */
        assert_int_equal(spw_net_poll(srv, 1000), 0);
        /* During the poll, from another thread: the poll returns long before
         * its 60 s limit. */
        pthread_t th;
        double t0 = mono_s();
        assert_int_equal(pthread_create(&th, NULL, wake_later, srv), 0);
        assert_int_equal(spw_net_poll(srv, 60 * 1000 * 1000), 0);
        double took = mono_s() - t0;
        pthread_join(th, NULL);
        print_message("  %s: poll woken after %.3f s of its 60 s\n", t ? "memory" : "udp", took);
        assert_true(took < 30.0);
        /* Messages still flow afterwards. */
        outcome o = exchange(cli, srv, 4, REQ_BYTES, 2, 5000);
        assert_int_equal(o.ok, 4);
        spw_net_close(cli);
        spw_net_close(srv);
    }
}

/* A UDP relay between client and server that drops chosen copies of
 * request fragments: a loss that is exactly known, not drawn. */
typedef struct relay {
    int fd;
    uint16_t cli_port, srv_port;
    uint64_t drop_id;   /* request whose fragment ... */
    uint16_t drop_frag; /* ... of this index is dropped ... */
    unsigned drop_left; /* ... this many more times */
    unsigned dropped;
} relay;

static void relay_send(const relay *r, const uint8_t *buf, size_t len, uint16_t port)
{
    struct sockaddr_in to = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_true(sendto(r->fd, buf, len, 0, (struct sockaddr *)&to, sizeof(to)) == (ssize_t)len);
}

static void relay_pump(relay *r)
{
    uint8_t buf[2048];
    for (;;) {
        struct sockaddr_in from;
        socklen_t fl = sizeof(from);
        ssize_t len =
            recvfrom(r->fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
        if (len < 0) {
            assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
            return;
        }
        uint16_t port = ntohs(from.sin_port);
        if (port == r->srv_port) {
            relay_send(r, buf, (size_t)len, r->cli_port);
            continue;
        }
        assert_int_equal(port, r->cli_port);
        spw_proto_hdr h;
        assert_int_equal(spw__proto_parse(buf, (size_t)len, 1u << 20, &h), 0);
        if (h.type == SPW_NET_REQUEST && h.request_id == r->drop_id &&
            h.frag_index == r->drop_frag && r->drop_left) {
            r->drop_left--;
            r->dropped++;
            continue;
        }
        relay_send(r, buf, (size_t)len, r->srv_port);
    }
}

/* A lost fragment is recovered by NACK and resend alone: the request
 * timeout is far beyond the test, so without the resend nothing arrives. */
static void test_udp_nack_resends_lost_fragment(void **state)
{
    (void)state;
    static const struct {
        uint16_t frag;
        unsigned drops;
    } plan[] = {{2, 1}, {4, 1}, {1, 2}}; /* middle, last, and the resend lost too */
    spw_net_config cc = fast_config(SPW_NET_UDP), sc = fast_config(SPW_NET_UDP);
    cc.nack_delay_us = sc.nack_delay_us = 5000;
    cc.rto_us = sc.rto_us = 60000000;
    cc.reasm_timeout_ms = sc.reasm_timeout_ms = 5000;
    relay r = {.fd = socket(AF_INET, SOCK_DGRAM, 0)};
    assert_true(r.fd >= 0);
    struct sockaddr_in ra = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t rl = sizeof(ra);
    assert_int_equal(bind(r.fd, (struct sockaddr *)&ra, sizeof(ra)), 0);
    assert_int_equal(getsockname(r.fd, (struct sockaddr *)&ra, &rl), 0);
    char peer[32];
    snprintf(peer, sizeof(peer), "127.0.0.1:%u", ntohs(ra.sin_port));
    sc.local = cc.local = "127.0.0.1:0";
    cc.peer = peer;
    spw_net *cli, *srv;
    assert_int_equal(spw_net_open(&sc, &srv), 0);
    assert_int_equal(spw_net_open(&cc, &cli), 0);
    spw_net_addr a;
    assert_int_equal(spw_net_local_addr(srv, &a), 0);
    r.srv_port = a.port;
    assert_int_equal(spw_net_local_addr(cli, &a), 0);
    r.cli_port = a.port;
    size_t fp = spw_net_frag_payload(cli);
    assert_int_equal((REQ_BYTES + fp - 1) / fp, 5);

    uint64_t t0 = spw__now_ns();
    unsigned want_dropped = 0;
    for (size_t k = 0; k < SPW_ARRAY_SIZE(plan); k++) {
        uint64_t id = k + 1;
        r.drop_id = id;
        r.drop_frag = plan[k].frag;
        r.drop_left = plan[k].drops;
        want_dropped += plan[k].drops;
        assert_int_equal(send_request(cli, id, REQ_BYTES), 0);
        uint8_t done[SPW_ARRAY_SIZE(plan) + 1] = {0};
        outcome o = {0};
        uint64_t start = spw__now_ns();
        while (o.ok + o.timed_out + o.wrong == 0 && spw__now_ns() - start < 3000000000ull) {
            assert_true(spw_net_poll(cli, 200) >= 0);
            relay_pump(&r);
            assert_true(spw_net_poll(srv, 200) >= 0);
            serve(srv);
            relay_pump(&r);
            collect(cli, REQ_BYTES, done, (int)SPW_ARRAY_SIZE(plan), &o);
        }
        if (o.ok != 1)
            fail_msg("request %llu (fragment %u lost %u times) was not answered",
                     (unsigned long long)id, plan[k].frag, plan[k].drops);
        assert_int_equal(r.drop_left, 0);
    }
    uint64_t elapsed = spw__now_ns() - t0;
    spw_net_stats cs, ss;
    spw_net_stats_get(cli, &cs);
    spw_net_stats_get(srv, &ss);
    print_message("  dropped %u, retransmits %llu, nacks %llu sent %llu received, %.1f ms\n",
                  r.dropped, (unsigned long long)cs.retransmits, (unsigned long long)ss.nacks_sent,
                  (unsigned long long)cs.nacks_received, (double)elapsed / 1e6);
    assert_int_equal(r.dropped, want_dropped);
    assert_int_equal(ss.rx_msgs, SPW_ARRAY_SIZE(plan));
    assert_int_equal(cs.request_timeouts, 0);
    /* Every lost copy was resent, on a NACK (the only resend path here),
     * and each NACK names one missing fragment, resent at most once. */
    assert_true(cs.retransmits >= want_dropped);
    assert_true(cs.retransmits <= cs.nacks_received);
    assert_true(cs.nacks_received <= ss.nacks_sent);
    /* At most one NACK per NACK delay while a request was incomplete. */
    assert_true(ss.nacks_sent <= SPW_ARRAY_SIZE(plan) + elapsed / (sc.nack_delay_us * 1000ull));
    spw_net_close(cli);
    spw_net_close(srv);
    close(r.fd);
}

static void test_udp_loopback_faults(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        double loss, dup, reorder, trunc, corrupt;
    } cases[] = {
        {"udp loss 1%", 0.01, 0, 0, 0, 0},
        {"udp loss 10%", 0.10, 0, 0, 0, 0},
        {"udp mixed", 0.05, 0.05, 0.1, 0.02, 0.02},
    };
    for (size_t i = 0; i < SPW_ARRAY_SIZE(cases); i++) {
        spw_net_config cc = fast_config(SPW_NET_UDP), sc = fast_config(SPW_NET_UDP);
        cc.fault_loss = sc.fault_loss = cases[i].loss;
        cc.fault_dup = sc.fault_dup = cases[i].dup;
        cc.fault_reorder = sc.fault_reorder = cases[i].reorder;
        cc.fault_truncate = sc.fault_truncate = cases[i].trunc;
        cc.fault_corrupt = sc.fault_corrupt = cases[i].corrupt;
        cc.seed = 3 + i;
        sc.seed = 1000 + i;
        spw_net *cli, *srv;
        open_udp_pair(&cc, &sc, &cli, &srv);
        outcome o = exchange(cli, srv, 60, REQ_BYTES, 4, 10000);
        print_message("  %-14s ok %d timed out %d\n", cases[i].what, o.ok, o.timed_out);
        assert_int_equal(o.wrong, 0);
        assert_int_equal(o.ok, 60);
        spw_net_close(cli);
        spw_net_close(srv);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proto_roundtrip),
        cmocka_unit_test(test_proto_every_bit_flip_rejected),
        cmocka_unit_test(test_proto_field_rules),
        cmocka_unit_test(test_proto_probe_rules),
        cmocka_unit_test(test_probe_answered_by_ack),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_done_ring),
        cmocka_unit_test(test_memory_request_result_zero_copy),
        cmocka_unit_test(test_memory_back_filled_span),
        cmocka_unit_test(test_memory_sendv_counts_copies),
        cmocka_unit_test(test_memory_faults),
        cmocka_unit_test(test_memory_request_timeout),
        cmocka_unit_test(test_memory_partial_nack_and_expiry),
        cmocka_unit_test(test_memory_unanswered_nack_bounded),
        cmocka_unit_test(test_memory_flood_bounded),
        cmocka_unit_test(test_memory_shaper),
        cmocka_unit_test(test_udp_loopback),
        cmocka_unit_test(test_wake),
        cmocka_unit_test(test_udp_nack_resends_lost_fragment),
        cmocka_unit_test(test_udp_loopback_faults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

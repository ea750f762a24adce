/* The message layer of the netpath (docs/PROTOCOL.md) over any transport of
 * netpath/transport.h: configuration, open and close, the poll loop that runs
 * receive, timers and the shaper, and the rest of the public API. The parts
 * live beside it; netpath/net_internal.h lists them. */
#include <arpa/inet.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netpath/net_internal.h"

/* A busy-polled transport with nothing arriving for this long yields the
 * core once (and again after as long): cheap when the core is ours alone. */
#define POLL_YIELD_NS 2000u

int spw_net_addr_parse(const char *s, spw_net_addr *out)
{
    if (!s || !out)
        return spw__error(SPW_EINVAL, "address is NULL");
    char ip[32];
    const char *colon = strrchr(s, ':');
    size_t iplen = colon ? (size_t)(colon - s) : 0;
    if (!colon || iplen == 0 || iplen >= sizeof(ip))
        return spw__error(SPW_EINVAL, "address '%s': expected a.b.c.d:port", s);
    memcpy(ip, s, iplen);
    ip[iplen] = 0;
    struct in_addr a;
    char *end;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (inet_pton(AF_INET, ip, &a) != 1 || !colon[1] || *end || port > 65535)
        return spw__error(SPW_EINVAL, "address '%s': expected a.b.c.d:port", s);
    memset(out, 0, sizeof(*out));
    out->ip = ntohl(a.s_addr);
    out->port = (uint16_t)port;
    return 0;
}

static const spw_net_transport_ops *find_ops(spw_net_transport t)
{
    switch (t) {
    case SPW_NET_UDP:
        return &spw__net_udp_ops;
    case SPW_NET_MEMORY:
        return &spw__net_memory_ops;
    case SPW_NET_DPDK:
#ifdef SPW_HAVE_DPDK
        return &spw__net_dpdk_ops;
#else
        return NULL;
#endif
    }
    return NULL;
}

int spw_net_transport_available(spw_net_transport t)
{
    return find_ops(t) != NULL;
}

const char *spw_net_transport_name(spw_net_transport t)
{
    switch (t) {
    case SPW_NET_UDP:
        return "udp";
    case SPW_NET_DPDK:
        return "dpdk";
    case SPW_NET_MEMORY:
        return "memory";
    }
    return "unknown";
}

void *spw__net_transport_ctx(spw_net *n)
{
    return n && n->ops == &spw__net_memory_ops ? n->tctx : NULL;
}

#define DEF(field, value)       \
    do {                        \
        if (!c->field)          \
            c->field = (value); \
    } while (0)

int spw__net_config_defaults(spw_net_config *c)
{
    DEF(mtu, 1500);
    DEF(max_msg_bytes, 262144);
    DEF(max_inflight, 256);
    DEF(max_inflight_per_peer, 32);
    DEF(max_outstanding, 256);
    DEF(nack_delay_us, 2000);
    DEF(reasm_timeout_ms, 500);
    DEF(rto_us, 20000);
    DEF(min_rto_us, 5000);
    DEF(request_timeout_ms, 2000);
    DEF(retain_ms, 1000);
    DEF(link_wait_ms, 2000);
    if (c->mtu < 576 || c->mtu > 9000)
        return spw__error(SPW_EINVAL, "mtu %u outside 576..9000", c->mtu);
    if (c->reuseport > 256)
        return spw__error(SPW_EINVAL, "reuseport group of %u (at most 256)", c->reuseport);
    if (c->max_msg_bytes > 64u << 20 || c->max_inflight > 65536 || c->max_outstanding > 65536 ||
        c->max_sessions > 65536)
        return spw__error(SPW_EINVAL, "message layer limits too large");
    const double probs[] = {c->shape_loss,    c->fault_loss,     c->fault_dup,
                            c->fault_reorder, c->fault_truncate, c->fault_corrupt};
    for (size_t i = 0; i < SPW_ARRAY_SIZE(probs); i++)
        if (!(probs[i] >= 0 && probs[i] <= 1))
            return spw__error(SPW_EINVAL, "probability %g outside [0, 1]", probs[i]);
    return 0;
}

int spw_net_open(const spw_net_config *config, spw_net **out)
{
    if (!config || !out)
        return spw__error(SPW_EINVAL, "spw_net_open: NULL argument");
    *out = NULL;
    const spw_net_transport_ops *ops = find_ops(config->transport);
    if (!ops)
        return spw__error(SPW_EUNSUPPORTED, "transport '%s' not compiled in",
                          spw_net_transport_name(config->transport));
    spw_net *n = spw__calloc(1, sizeof(*n));
    if (!n)
        return spw__error(SPW_ENOMEM, "spw_net");
    n->cfg = *config;
    spw_net_config *c = &n->cfg;
    int rc = spw__net_config_defaults(c);
    if (rc)
        goto fail_config;
    if (c->peer) {
        if ((rc = spw_net_addr_parse(c->peer, &n->peer)))
            goto fail_config;
        n->have_peer = true;
    }
    /* The frame is what follows IPv4 and UDP; payloads are whole 32-bit words. */
    n->frame_room = c->mtu - SPW_NET_IP_UDP_LEN;
    n->frag_payload = (n->frame_room - SPW_PROTO_HDR_LEN) & ~3u;
    uint32_t max_frags = (c->max_msg_bytes + n->frag_payload - 1) / n->frag_payload;
    if (max_frags > SPW_PROTO_MAX_FRAGS) {
        rc = spw__error(SPW_EINVAL, "max_msg_bytes %u needs %u fragments (limit %u)",
                        c->max_msg_bytes, max_frags, SPW_PROTO_MAX_FRAGS);
        goto fail_config;
    }
    n->rto_ns = (uint64_t)c->rto_us * 1000u;
    uint32_t scan_us = SPW_MIN(c->nack_delay_us, SPW_MIN(c->rto_us, c->min_rto_us)) / 4;
    n->scan_ns = (uint64_t)SPW_MAX(50u, SPW_MIN(scan_us, 1000u)) * 1000u;

    if ((rc = spw__net_tbl_init(&n->in, c->max_inflight)))
        goto fail_in;
    if ((rc = spw__net_tbl_init(&n->out, c->max_outstanding)))
        goto fail_out;
    n->ready_cap = c->max_inflight + c->max_outstanding + 64;
    n->ready = spw__malloc(sizeof(spw_net_msg *) * n->ready_cap);
    if (!n->ready) {
        rc = spw__error(SPW_ENOMEM, "ready queue");
        goto fail_ready;
    }
    /* Kept single-fragment messages (answers, small requests) are what a
     * server holds most of, up to max_outstanding at once: their fragment
     * arrays are made now, so no new peak of them allocates later. */
    if ((rc = spw__net_pool_reserve(&n->pool, SPW_NET_KEPT_BYTES(1), c->max_outstanding)))
        goto fail_reserve;
    if ((rc = spw__net_emulation_open(n)))
        goto fail_shq;
    if ((rc = spw__sec_open(n)))
        goto fail_sec;
    /* Buffers: a few messages of the largest size in flight both ways, plus
     * the receive bursts, the shaper and kept results. */
    uint32_t nbufs = c->mbufs;
    if (!nbufs) {
        uint64_t want =
            (uint64_t)max_frags * 8 + 4 * RX_BURST + 1024 + (n->shaping ? SHAPER_QUEUE : 0);
        nbufs = (uint32_t)SPW_MIN(want, 65535u);
    }
    if ((rc = ops->open(c, n->frame_room, nbufs, &n->stats, &n->tctx)))
        goto fail_transport;
    n->ops = ops;
    /* Only the strings the transport needed at open were borrowed (keys
     * were copied). */
    c->local = c->peer = c->eal_args = c->dpdk_port = c->peer_mac = NULL;
    c->memory_pair = NULL;
    c->private_key = c->server_public_key = NULL;
    /* A client starts its handshake at once: the first request then finds
     * the session up, or nearly. */
    if (n->have_peer)
        spw__sec_ready(n, &n->peer, 0);
    *out = n;
    return 0;

fail_transport:
    spw__sec_close(n);
fail_sec:
    spw__net_emulation_close(n);
fail_shq:
fail_reserve:
    spw__net_pool_fini(&n->pool);
    spw__free(n->ready);
fail_ready:
    spw__free(n->out.ents);
    spw__free(n->out.buckets);
fail_out:
    spw__free(n->in.ents);
    spw__free(n->in.buckets);
fail_in:
fail_config:
    spw__free(n);
    return rc;
}

void spw_net_close(spw_net *n)
{
    if (!n)
        return;
    while (n->ready_head != n->ready_tail)
        spw_net_msg_free(n, n->ready[n->ready_head++ % n->ready_cap]);
    spw__free(n->ready);
    spw__net_tbl_drain(n, &n->in);
    spw__net_tbl_drain(n, &n->out);
    spw__net_emulation_close(n);
    spw__net_pool_fini(&n->pool);
    n->ops->close(n->tctx);
    spw__sec_close(n);
    spw__free(n);
}

size_t spw_net_frag_payload(const spw_net *n)
{
    return n ? n->frag_payload : 0;
}

size_t spw_net_max_msg_bytes(const spw_net *n)
{
    return n ? n->cfg.max_msg_bytes : 0;
}

int spw_net_poll(spw_net *n, int64_t timeout_us)
{
    if (!n)
        return spw__error(SPW_EINVAL, "spw_net_poll: NULL net");
    uint64_t start = net_now(n);
    uint64_t deadline = timeout_us < 0 ? UINT64_MAX : start + (uint64_t)timeout_us * 1000u;
    uint64_t busy_ns = start, seen = n->stats.rx_packets;
    for (;;) {
        uint64_t now = net_now(n);
        spw__net_rx_round(n, now);
        if (n->shaping)
            spw__net_shaper_release(n, now);
        if (now >= n->next_scan_ns) {
            if (n->in.used)
                spw__net_rx_timers(n, now);
            if (n->out.used)
                spw__net_tx_timers(n, now);
            if (n->secure)
                spw__sec_timers(n, now);
            n->next_scan_ns = now + n->scan_ns;
        }
        uint32_t ready = n->ready_tail - n->ready_head;
        if (ready)
            return (int)SPW_MIN(ready, (uint32_t)INT32_MAX);
        if (now >= deadline)
            return 0;
        if (atomic_exchange_explicit(&n->woken, 0, memory_order_acquire))
            return 0;
        uint64_t until = deadline;
        if (n->in.used || n->out.used)
            until = SPW_MIN(until, n->next_scan_ns);
        if (n->secure)
            until = SPW_MIN(until, SPW_MAX(spw__sec_next_ns(n), n->next_scan_ns));
        if (n->shaping && n->shq_head != n->shq_tail)
            until = SPW_MIN(until, n->shq[n->shq_head % SHAPER_QUEUE].due_ns);
        if (n->held.frame)
            until = SPW_MIN(until, n->held_ns + 1000000u);
        if (until <= now)
            continue;
        if (n->ops->wait) {
            n->ops->wait(n->tctx, (int64_t)SPW_MIN((until - now + 999u) / 1000u, 1000000u));
        } else if (n->stats.rx_packets != seen) {
            seen = n->stats.rx_packets;
            busy_ns = now;
        } else if (now - busy_ns >= POLL_YIELD_NS) {
            /* Busy polling, but a core shared with other work (the peer
             * process, often) gets it back soon after the wire went quiet:
             * a fixed 256 empty rounds here cost round trips of 30-45 us
             * whenever client and server shared a core. */
            sched_yield();
            busy_ns = net_now(n);
        }
    }
}

int spw_net_wake(spw_net *n)
{
    if (!n)
        return spw__error(SPW_EINVAL, "spw_net_wake: NULL net");
    /* The flag first: a poll that has not reached its wait yet sees it, and
     * one already waiting is ended by the transport's kick. */
    atomic_store_explicit(&n->woken, 1, memory_order_release);
    if (n->ops->kick)
        n->ops->kick(n->tctx);
    return 0;
}

int spw_net_recv(spw_net *n, spw_net_msg **msgs, int max)
{
    if (!n || !msgs || max < 0)
        return spw__error(SPW_EINVAL, "spw_net_recv: bad argument");
    if (n->ready_head == n->ready_tail) {
        int rc = spw_net_poll(n, 0);
        if (rc < 0)
            return rc;
    }
    int got = 0;
    while (got < max && n->ready_head != n->ready_tail)
        msgs[got++] = n->ready[n->ready_head++ % n->ready_cap];
    return got;
}

size_t spw_net_msg_copy(spw_net *n, const spw_net_msg *m, void *dst, size_t cap)
{
    if (!m || !dst)
        return 0;
    size_t done = 0;
    for (int i = 0; i < m->nsegs && done < cap; i++) {
        size_t take = SPW_MIN(m->segs[i].size, cap - done);
        memcpy((uint8_t *)dst + done, m->segs[i].data, take);
        done += take;
    }
    if (n)
        n->stats.rx_copy_bytes += done;
    return done;
}

void spw_net_stats_get(const spw_net *n, spw_net_stats *out)
{
    if (!out)
        return;
    if (!n) {
        memset(out, 0, sizeof(*out));
        return;
    }
    *out = n->stats;
    out->srtt_us = (uint32_t)SPW_MIN(n->srtt_ns / 1000u, UINT32_MAX);
    out->rttvar_us = (uint32_t)SPW_MIN(n->rttvar_ns / 1000u, UINT32_MAX);
    out->rto_us = (uint32_t)SPW_MIN(n->rto_ns / 1000u, UINT32_MAX);
    out->keepalive_us = (uint32_t)(spw__net_keepalive_ns(n) / 1000u);
}

void spw_net_set_ready(spw_net *n, bool ready)
{
    if (n)
        n->not_ready = !ready;
}

size_t spw_net_kept(const spw_net *n)
{
    return n ? n->out.used : 0;
}

void spw__net_set_clock(spw_net *n, uint64_t (*fn)(void *ctx), void *ctx)
{
    n->clock = fn;
    n->clock_ctx = ctx;
    n->next_scan_ns = 0;
    n->shape_last_ns = net_now(n); /* the shaper's schedule moves to the new clock */
    spw__sec_rebase(n, net_now(n));
}

void spw__net_set_tap(spw_net *n, spw_net_tap_fn fn, void *ctx)
{
    n->tap = fn;
    n->tap_ctx = ctx;
}

int spw_net_local_addr(const spw_net *n, spw_net_addr *out)
{
    if (!n || !out)
        return spw__error(SPW_EINVAL, "spw_net_local_addr: NULL argument");
    return n->ops->local_addr(n->tctx, out);
}

int spw__net_inject(spw_net *n, const void *frame, size_t len, const spw_net_addr *from)
{
    spw_netbuf b;
    if (len > n->frame_room)
        return SPW_ERANGE;
    if (n->ops->buf_alloc(n->tctx, &b))
        return SPW_EAGAIN;
    memcpy(b.frame, frame, len);
    b.len = (uint32_t)len;
    b.from = *from;
    uint64_t now = net_now(n);
    if (n->faults)
        spw__net_fault_frame(n, &b, now);
    else
        spw__net_on_frame(n, &b, now);
    return 0;
}

/* Send: framing in place, the shaper hook, retransmission of what the peer
 * reports missing (NACK) or never answered (timeout), and kept answers. */
#include <string.h>

#include "netpath/net_internal.h"

static void count_tx(spw_net *n, spw_netbuf *const *bufs, int count)
{
    for (int i = 0; i < count; i++) {
        n->stats.tx_packets++;
        n->stats.tx_bytes += bufs[i]->len;
    }
}

void spw__net_wire_tx(spw_net *n, const spw_net_addr *dst, spw_netbuf *const *bufs, int count)
{
    int sent = n->ops->tx_burst(n->tctx, dst, bufs, count);
    for (int i = 0; n->tap && i < sent; i++)
        n->tap(n->tap_ctx, bufs[i]->frame, bufs[i]->len, dst);
    count_tx(n, bufs, sent);
    n->stats.tx_drops += (uint64_t)(count - sent);
}

void spw__net_xmit(spw_net *n, const spw_net_addr *dst, spw_netbuf *const *bufs, int count,
                   uint64_t *arrive)
{
    if (n->secure)
        spw__sec_xmit(n, dst, bufs, count, arrive);
    else
        spw__net_xmit_raw(n, dst, bufs, count, arrive);
}

void spw__net_xmit_raw(spw_net *n, const spw_net_addr *dst, spw_netbuf *const *bufs, int count,
                       uint64_t *arrive)
{
    if (n->shaping) {
        spw__net_shape(n, dst, bufs, count, arrive, net_now(n));
        return;
    }
    spw__net_wire_tx(n, dst, bufs, count);
    /* Stamped after the send call: a sender descheduled inside it must not
     * take the NACKs sent meanwhile for losses of what it sent after them. */
    uint64_t now = net_now(n);
    for (int i = 0; arrive && i < count; i++)
        arrive[i] = now;
}

/* Control frames are single buffers built in place. */
int spw__net_ctrl_send(spw_net *n, const spw_net_addr *dst, const spw_proto_hdr *h,
                       const void *payload, uint32_t len)
{
    spw_netbuf b;
    if (len + SPW_PROTO_HDR_LEN > n->frame_room || n->ops->buf_alloc(n->tctx, &b))
        return SPW_EAGAIN;
    if (len)
        memcpy(b.frame + SPW_PROTO_HDR_LEN, payload, len);
    spw_proto_hdr hh = *h;
    hh.version = spw__net_version(n);
    hh.payload_len = (uint16_t)len;
    hh.msg_len = len;
    hh.frag_index = 0;
    hh.frag_count = 1;
    spw__proto_write(b.frame, &hh);
    b.len = SPW_PROTO_HDR_LEN + len;
    spw_netbuf *bp = &b;
    spw__net_xmit(n, dst, &bp, 1, NULL);
    n->ops->buf_free(n->tctx, &b);
    return 0;
}

void spw__net_on_nack(spw_net *n, const spw_netbuf *b, const spw_proto_hdr *h)
{
    const uint8_t *p = b->frame + SPW_PROTO_HDR_LEN;
    n->stats.nacks_received++;
    if (h->payload_len < SPW_PROTO_NACK_FIXED)
        goto invalid;
    uint32_t first = spw__ld16(p + 2), nbits = spw__ld16(p + 4);
    if ((size_t)(nbits + 7u) / 8u > (size_t)h->payload_len - SPW_PROTO_NACK_FIXED)
        goto invalid;
    net_key k = make_key(&b->from, p[0], h->request_id);
    net_ent *o = spw__net_tbl_find(&n->out, &k);
    if (!o)
        return; /* already answered or expired */
    if (o->acked)
        return; /* sent before the peer had it all: stale */
    uint64_t now = net_now(n), settle = (uint64_t)n->cfg.nack_delay_us * 1000u;
    for (uint32_t i = 0; i < nbits && first + i < o->count; i++) {
        uint32_t f = first + i;
        /* A fragment that cannot have arrived yet (still queued on a slow
         * link, or just resent) is not lost: resending it would only add to
         * the queue. */
        if (!(p[SPW_PROTO_NACK_FIXED + i / 8] & (1u << (i % 8))) || o->arrive[f] + settle > now)
            continue;
        spw_netbuf *bp = &o->frags[f];
        spw__net_xmit(n, &o->peer, &bp, 1, &o->arrive[f]);
        n->stats.retransmits++;
    }
    /* The peer is alive and working on it: restart the request's clock. */
    o->last_ns = now;
    o->tries = 0;
    return;
invalid:
    n->stats.rx_invalid++;
}

/* Answers a repeated request (or a probe) from the answer kept for it: at
 * most once per NACK delay, and no more bytes than the frame that asked
 * (`budget`), so a spoofed repeat cannot be amplified; the asker NACKs
 * whatever did not fit. False when no answer is kept. */
bool spw__net_resend_answer(spw_net *n, const spw_net_addr *from, uint64_t id, uint64_t now,
                            uint32_t budget)
{
    static const uint8_t types[2] = {SPW_NET_RESULT, SPW_NET_ERROR};
    for (int t = 0; t < 2; t++) {
        net_key k = make_key(from, types[t], id);
        net_ent *o = spw__net_tbl_find(&n->out, &k);
        if (!o)
            continue;
        if (o->timer_ns && since(now, o->timer_ns) < (uint64_t)n->cfg.nack_delay_us * 1000u)
            return true;
        o->timer_ns = now;
        for (int f = 0; f < o->count && o->frags[f].len <= budget; f++) {
            budget -= o->frags[f].len;
            spw_netbuf *bp = &o->frags[f];
            spw__net_xmit(n, &o->peer, &bp, 1, &o->arrive[f]);
            n->stats.retransmits++;
        }
        return true;
    }
    return false;
}

/* RFC 6298 with Karn's rule: only requests ACKed without any resend give a
 * sample; RTO = SRTT + max(1 ms, 4 RTTVAR), within [min_rto, 1 s]. */
static void rtt_sample(spw_net *n, uint64_t rtt)
{
    if (!n->rtt_valid) {
        n->srtt_ns = rtt;
        n->rttvar_ns = rtt / 2;
        n->rtt_valid = true;
    } else {
        uint64_t err = rtt > n->srtt_ns ? rtt - n->srtt_ns : n->srtt_ns - rtt;
        n->rttvar_ns = (3 * n->rttvar_ns + err) / 4;
        n->srtt_ns = (7 * n->srtt_ns + rtt) / 8;
    }
    uint64_t rto = n->srtt_ns + SPW_MAX(1000000u, 4 * n->rttvar_ns);
    n->rto_ns = SPW_MIN(SPW_MAX(rto, (uint64_t)n->cfg.min_rto_us * 1000u), 1000000000ull);
}

void spw__net_send_ack(spw_net *n, const spw_net_addr *dst, uint8_t type, uint64_t id)
{
    uint8_t p[4] = {type, 0, 0, 0};
    spw_proto_hdr h = {.type = SPW_NET_ACK, .request_id = id};
    if (!spw__net_ctrl_send(n, dst, &h, p, sizeof(p)))
        n->stats.acks_sent++;
}

void spw__net_on_ack(spw_net *n, const spw_netbuf *b, const spw_proto_hdr *h, uint64_t now)
{
    n->stats.acks_received++;
    if (h->payload_len < 4) {
        n->stats.rx_invalid++;
        return;
    }
    uint8_t type = b->frame[SPW_PROTO_HDR_LEN];
    if (type != SPW_NET_REQUEST && type != SPW_NET_RESULT && type != SPW_NET_ERROR) {
        n->stats.rx_invalid++;
        return;
    }
    net_key k = make_key(&b->from, type, h->request_id);
    net_ent *o = spw__net_tbl_find(&n->out, &k);
    if (!o)
        return; /* done with already, or not ours */
    if (o->acked) {
        /* The peer still has it (an ACK of a probe): alive, so the probes
         * without an answer that max_retries counts start again. */
        o->tries = 0;
        o->last_ns = now;
        return;
    }
    if (!o->tries)
        rtt_sample(n, since(now, o->first_ns));
    if (type != SPW_NET_REQUEST) {
        spw__net_ent_release(n, &n->out, o); /* the answer arrived */
        return;
    }
    o->acked = true;
    o->tries = 0;
    o->last_ns = now;
}

/* Keep-alive probes of an ACKed request come every 2x the smoothed time a
 * request waits for its answer, within [1 s, 4 s]: a server that computes
 * for seconds is asked rarely, and one that went silent is given up after
 * max_retries + 1 intervals, 4 (max_retries + 1) s at most. */
#define KEEPALIVE_MIN_NS 1000000000ull
#define KEEPALIVE_MAX_NS 4000000000ull

uint64_t spw__net_keepalive_ns(const spw_net *n)
{
    return SPW_MIN(SPW_MAX(2 * n->answer_ns, KEEPALIVE_MIN_NS), KEEPALIVE_MAX_NS);
}

void spw__net_request_answered(spw_net *n, net_ent *o, uint64_t now)
{
    if (o->acked) {
        /* Gain 1/8 as for SRTT; from the first send, so a sample also
         * covers the upload, and the interval errs long, not short. */
        uint64_t t = since(now, o->first_ns);
        n->answer_ns = n->answer_ns ? (7 * n->answer_ns + t) / 8 : t;
    }
    spw__net_ent_release(n, &n->out, o);
}

/* A keep-alive probe of ACKed request o: no request payload, as long as the
 * ACK it asks for (so it is never amplified, proven peer or not). */
static void send_keepalive(spw_net *n, const net_ent *o)
{
    static const uint8_t zero[SPW_PROTO_PROBE_LEN];
    spw_proto_hdr h = {.type = SPW_NET_REQUEST, .pflags = SPW_PROTO_PROBE, .request_id = o->key.id};
    if (!spw__net_ctrl_send(n, &o->peer, &h, zero, sizeof(zero)))
        n->stats.keepalives_sent++;
}

/* Resends every fragment of a kept message. */
static void resend_all(spw_net *n, net_ent *o)
{
    spw_netbuf *bp[RX_BURST];
    for (int f = 0; f < o->count; f += RX_BURST) {
        int cnt = SPW_MIN(RX_BURST, o->count - f);
        for (int j = 0; j < cnt; j++)
            bp[j] = &o->frags[f + j];
        spw__net_xmit(n, &o->peer, bp, cnt, &o->arrive[f]);
        n->stats.retransmits += (uint64_t)cnt;
    }
}

/* Answers sent at most this often without an ACK before they are left to
 * the asker's probes and NACKs (and expire after retain_ms). */
#define ANSWER_RESENDS 4u

/* Timers of kept messages:
 * - a request is given up at its deadline (or after max_retries probes
 *   without any answer); until the peer ACKs it, its largest fragment is
 *   resent as a probe after each RTO (with back-off), which makes the peer
 *   NACK what it lacks or ACK again; once ACKed, a keep-alive probe without
 *   payload every keepalive interval notices a peer that died or lost it (a
 *   server still working costs no request bytes: its answer comes back
 *   reliably, below). A keep-alive left unanswered is followed by the
 *   largest fragment again, which makes a peer that lost the request NACK
 *   it back whole, and buys a kept answer;
 * - an answer is resent whole until the asker ACKs it (the downlink, not
 *   the asker's uplink, pays for a lost answer), and expires after retain_ms. */
void spw__net_tx_timers(spw_net *n, uint64_t now)
{
    const spw_net_config *c = &n->cfg;
    uint64_t retain_ns = (uint64_t)c->retain_ms * 1000000u;
    for (int32_t i = n->out.oldest, next; i >= 0; i = next) {
        net_ent *o = &n->out.ents[i];
        next = o->anext;
        if (o->key.type != SPW_NET_REQUEST) {
            if (since(now, o->first_ns) >= retain_ns) {
                spw__net_ent_release(n, &n->out, o);
                continue;
            }
            uint64_t wait = SPW_MIN(n->rto_ns << o->tries, 1000000000ull);
            if (o->tries < ANSWER_RESENDS && since(now, o->last_ns) >= wait) {
                o->tries++;
                o->last_ns = now;
                resend_all(n, o);
            }
            continue;
        }
        if (now >= o->deadline_ns || (c->max_retries && o->tries > c->max_retries)) {
            spw__net_local_event(n, o, SPW_ETIMEDOUT);
            spw__net_ent_release(n, &n->out, o);
            n->stats.request_timeouts++;
            continue;
        }
        if (o->held)
            continue; /* not sent yet: the handshake's own timer runs */
        /* No back-off once ACKed: the peer is known, and the interval sets
         * how soon a dead one is noticed. */
        uint64_t wait = o->acked ? spw__net_keepalive_ns(n)
                                 : SPW_MIN(n->rto_ns << SPW_MIN(o->tries, 10u), 1000000000ull);
        if (since(now, o->last_ns) < wait)
            continue;
        if (c->max_retries && o->tries == c->max_retries) {
            o->tries++; /* the last probe had its time: give up at the next scan */
            continue;
        }
        /* RFC 6298 5.5: a timeout doubles the RTO for later requests too.
         * Karn's rule takes no sample from a probed request, so on a path
         * slower than the first guess only this lets one request go
         * unprobed and measure it. Once per RTO, not once per request. */
        if (!o->acked && since(now, n->backoff_ns) >= n->rto_ns) {
            n->rto_ns = SPW_MIN(2 * n->rto_ns, 1000000000ull);
            n->backoff_ns = now;
        }
        bool keepalive = o->acked && !o->tries;
        o->tries++;
        o->last_ns = now;
        if (keepalive) {
            send_keepalive(n, o);
            continue;
        }
        spw_netbuf *bp = &o->frags[o->probe];
        spw__net_xmit(n, &o->peer, &bp, 1, &o->arrive[o->probe]);
        n->stats.probes++;
        n->stats.retransmits++;
    }
}

int spw_net_tx_alloc(spw_net *n, size_t capacity, spw_net_msg **out)
{
    if (!n || !out)
        return spw__error(SPW_EINVAL, "spw_net_tx_alloc: NULL argument");
    *out = NULL;
    if (capacity > n->cfg.max_msg_bytes)
        return spw__error(SPW_ERANGE, "message of %zu bytes exceeds max_msg_bytes %u", capacity,
                          n->cfg.max_msg_bytes);
    capacity = (capacity + 3u) & ~(size_t)3u;
    int nfrag = capacity ? (int)((capacity + n->frag_payload - 1) / n->frag_payload) : 1;
    net_msg *m = spw__net_msg_new(n, nfrag);
    if (!m)
        return spw__error(SPW_ENOMEM, "message of %d fragments", nfrag);
    size_t left = capacity;
    for (int i = 0; i < nfrag; i++) {
        if (n->ops->buf_alloc(n->tctx, &m->bufs[i])) {
            spw_net_msg_free(n, &m->pub);
            return SPW_EAGAIN;
        }
        size_t sz = SPW_MIN(left, (size_t)n->frag_payload);
        m->pub.segs[i].data = m->bufs[i].frame + SPW_PROTO_HDR_LEN;
        m->pub.segs[i].size = sz;
        left -= sz;
    }
    m->pub.bytes = capacity;
    *out = &m->pub;
    return 0;
}

/* Frames the used part of the segments in place and sends them. */
int spw_net_send(spw_net *n, spw_net_msg *pub, int first, size_t offset, size_t bytes)
{
    if (!n || !pub)
        return spw__error(SPW_EINVAL, "spw_net_send: NULL argument");
    net_msg *m = (net_msg *)pub;
    int rc = 0;
    spw_net_addr dst = pub->peer;
    if (!dst.ip && !dst.port) {
        if (!n->have_peer) {
            rc = spw__error(SPW_EINVAL, "spw_net_send: no destination and no configured peer");
            goto out;
        }
        dst = n->peer;
    }
    uint8_t type = pub->type;
    if (type != SPW_NET_REQUEST && type != SPW_NET_RESULT && type != SPW_NET_ERROR &&
        type != SPW_NET_PONG) {
        rc = spw__error(SPW_EINVAL, "spw_net_send: message type %u cannot be sent", type);
        goto out;
    }
    if (first < 0 || first >= m->nbufs || (offset | bytes) & 3u || offset > pub->segs[first].size) {
        rc = spw__error(SPW_EINVAL, "spw_net_send: bad span (segment %d, offset %zu)", first,
                        offset);
        goto out;
    }
    /* Which segments the span touches, and the bytes in each. */
    size_t left = bytes;
    int last = first;
    for (int i = first; i < m->nbufs; i++) {
        size_t off = i == first ? offset : 0;
        size_t take = SPW_MIN(left, pub->segs[i].size - off);
        /* Segments are bounded by the fragment payload; a caller that grew
         * one past it would overrun the buffer. */
        if (pub->segs[i].size > n->frag_payload ||
            (uint8_t *)pub->segs[i].data != m->bufs[i].frame + SPW_PROTO_HDR_LEN) {
            rc = spw__error(SPW_EINVAL, "spw_net_send: segment %d was modified", i);
            goto out;
        }
        left -= take;
        last = i;
        if (!left)
            break;
    }
    if (left) {
        rc = spw__error(SPW_ENOSPC, "spw_net_send: %zu bytes beyond the segments", left);
        goto out;
    }
    int count = last - first + 1;
    /* Protocol 2: an answer goes only to the session its request came on;
     * a request waits for the session when there is none yet. */
    bool go = spw__sec_ready(n, &dst, pub->session);
    if (!go && n->secure && type != SPW_NET_REQUEST) {
        rc = spw__error(SPW_ENOENT, "spw_net_send: no session with the peer");
        n->stats.tx_no_session++;
        goto out;
    }
    spw_proto_hdr h = {
        .version = spw__net_version(n),
        .type = type,
        .rate_point = pub->rate_point,
        .app_flags = pub->flags,
        .model_id = pub->model_id,
        .c = pub->c,
        .h = pub->h,
        .w = pub->w,
        .frag_count = (uint16_t)count,
        .msg_len = (uint32_t)bytes,
        .request_id = pub->request_id,
    };
    spw_netbuf *bp[SPW_PROTO_MAX_FRAGS];
    left = bytes;
    for (int i = first; i <= last; i++) {
        size_t off = i == first ? offset : 0;
        size_t take = SPW_MIN(left, pub->segs[i].size - off);
        spw_netbuf *b = &m->bufs[i];
        b->frame += off; /* the header goes right in front of the payload */
        h.frag_index = (uint16_t)(i - first);
        h.payload_len = (uint16_t)take;
        spw__proto_write(b->frame, &h);
        b->len = (uint32_t)(SPW_PROTO_HDR_LEN + take);
        bp[i - first] = b;
        left -= take;
    }
    n->stats.tx_msgs++;
    if (type == SPW_NET_PONG) {
        spw__net_xmit(n, &dst, bp, count, NULL);
        goto out;
    }
    /* Keep requests (until answered) and answers (for NACKs and repeats). */
    net_key k = make_key(&dst, type, pub->request_id);
    net_ent *o = spw__net_tbl_find(&n->out, &k);
    if (o)
        spw__net_ent_release(n, &n->out, o);
    if (n->out.used >= n->out.cap) {
        net_ent *old = &n->out.ents[n->out.oldest];
        if (old->key.type == SPW_NET_REQUEST)
            spw__net_local_event(n, old, SPW_EBUSY);
        spw__net_ent_release(n, &n->out, old);
        n->stats.evictions++;
    }
    o = spw__net_tbl_insert(&n->out, &k);
    o->frags = spw__net_pool_get(&n->pool, SPW_NET_KEPT_BYTES(count));
    if (!o->frags) {
        spw__net_tbl_unlink(&n->out, o);
        if (go)
            spw__net_xmit(n, &dst, bp, count, NULL);
        goto out; /* sent once; it just cannot be retransmitted */
    }
    o->arrive = (uint64_t *)(o->frags + count);
    if (go)
        spw__net_xmit(n, &dst, bp, count, o->arrive);
    else
        memset(o->arrive, 0, sizeof(uint64_t) * (size_t)count);
    o->held = !go;
    memcpy(o->frags, &m->bufs[first], sizeof(spw_netbuf) * (size_t)count);
    memset(&m->bufs[first], 0, sizeof(spw_netbuf) * (size_t)count);
    o->count = (uint16_t)count;
    o->peer = dst;
    o->hdr = h;
    o->first_ns = o->last_ns = net_now(n);
    o->timer_ns = 0;
    uint32_t timeout_ms = pub->timeout_ms ? pub->timeout_ms : n->cfg.request_timeout_ms;
    o->deadline_ns = o->first_ns + (uint64_t)timeout_ms * 1000000u;
    /* The probe is the largest fragment: it buys the most reply bytes from a
     * peer that answers no more than it received. */
    for (int f = 1; f < count; f++)
        if (o->frags[f].len > o->frags[o->probe].len)
            o->probe = (uint16_t)f;
out:
    spw_net_msg_free(n, pub);
    return rc;
}

int spw_net_sendv(spw_net *n, const spw_net_msg *hdr, const spw_net_seg *segs, int nsegs)
{
    if (!n || !hdr || (nsegs && !segs) || nsegs < 0)
        return spw__error(SPW_EINVAL, "spw_net_sendv: bad argument");
    size_t total = 0;
    for (int i = 0; i < nsegs; i++)
        if (!spw__add_ok(total, segs[i].size, &total))
            return spw__error(SPW_ERANGE, "spw_net_sendv: size overflow");
    if (total & 3u)
        return spw__error(SPW_EINVAL, "spw_net_sendv: %zu bytes is not a multiple of 4", total);
    spw_net_msg *m;
    int rc = spw_net_tx_alloc(n, total, &m);
    if (rc)
        return rc;
    int d = 0;
    size_t doff = 0;
    for (int i = 0; i < nsegs; i++) {
        const uint8_t *src = segs[i].data;
        size_t left = segs[i].size;
        while (left) {
            size_t take = SPW_MIN(left, m->segs[d].size - doff);
            memcpy((uint8_t *)m->segs[d].data + doff, src, take);
            src += take;
            left -= take;
            doff += take;
            if (doff == m->segs[d].size) {
                d++;
                doff = 0;
            }
        }
    }
    n->stats.tx_copy_bytes += total;
    /* Every header field of hdr (a field added later too), with the
     * payload that now lies in m's own buffers. */
    spw_net_seg *segs_m = m->segs;
    int nsegs_m = m->nsegs;
    size_t bytes_m = m->bytes;
    *m = *hdr;
    m->segs = segs_m;
    m->nsegs = nsegs_m;
    m->bytes = bytes_m;
    m->status = 0;
    return spw_net_send(n, m, 0, 0, total);
}

int spw_net_ping(spw_net *n, const spw_net_addr *dst, uint64_t token)
{
    if (!n)
        return spw__error(SPW_EINVAL, "spw_net_ping: NULL net");
    spw_net_addr d = dst ? *dst : n->peer;
    if (!dst && !n->have_peer)
        return spw__error(SPW_EINVAL, "spw_net_ping: no destination");
    if (spw__sec_hold_ping(n, &d, token))
        return 0; /* sent once the session is up */
    uint8_t p[8];
    spw__st64(p, token);
    spw_proto_hdr h = {.type = SPW_NET_PING, .request_id = token};
    return spw__net_ctrl_send(n, &d, &h, p, sizeof(p));
}

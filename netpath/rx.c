/* Receive: one validation per frame, then dispatch; reassembly of
 * fragmented messages with NACKs for the missing ones; delivery in place. */
#include <string.h>

#include "netpath/net_internal.h"

/* NACK for the fragments e lacks. A NACK never costs the peer more than it
 * sent: the NACK bytes for a message stay within the frame bytes received
 * for it (so a spoofed fragment cannot be amplified), and at most NACK_MAX
 * are sent; past that the sender's own retransmission timer acts. */
static void send_nack(spw_net *n, net_ent *e)
{
    uint8_t p[SPW_PROTO_NACK_FIXED + SPW_PROTO_MAX_FRAGS / 8];
    uint32_t first = 0;
    while (first < e->count && e->frags[first].frame)
        first++;
    uint32_t nbits = e->count - first;
    uint32_t room = (n->frag_payload - SPW_PROTO_NACK_FIXED) * 8u;
    uint32_t budget = e->wire_in > e->wire_nack ? e->wire_in - e->wire_nack : 0;
    if (e->nacks >= NACK_MAX || budget < SPW_PROTO_HDR_LEN + SPW_PROTO_NACK_FIXED + 4u) {
        n->stats.nacks_held++;
        return;
    }
    room = SPW_MIN(room, (budget - SPW_PROTO_HDR_LEN - SPW_PROTO_NACK_FIXED) / 4u * 32u);
    nbits = SPW_MIN(nbits, room);
    uint32_t bm_bytes = ((nbits + 31u) / 32u) * 4u;
    memset(p, 0, SPW_PROTO_NACK_FIXED + bm_bytes);
    p[0] = e->key.type;
    spw__st16(p + 2, (uint16_t)first);
    spw__st16(p + 4, (uint16_t)nbits);
    for (uint32_t i = 0; i < nbits; i++)
        if (!e->frags[first + i].frame)
            p[SPW_PROTO_NACK_FIXED + i / 8] |= (uint8_t)(1u << (i % 8));
    spw_proto_hdr h = {.type = SPW_NET_NACK, .request_id = e->key.id};
    if (!spw__net_ctrl_send(n, &e->peer, &h, p, SPW_PROTO_NACK_FIXED + bm_bytes)) {
        n->stats.nacks_sent++;
        e->nacks++;
        e->wire_nack += SPW_PROTO_HDR_LEN + SPW_PROTO_NACK_FIXED + bm_bytes;
    }
}

static void deliver(spw_net *n, net_msg *m, const spw_proto_hdr *h, const spw_net_addr *from,
                    uint32_t bytes, uint64_t now)
{
    spw_net_msg *p = &m->pub;
    p->type = h->type;
    p->rate_point = h->rate_point;
    p->flags = h->app_flags;
    p->model_id = h->model_id;
    p->c = h->c;
    p->h = h->h;
    p->w = h->w;
    p->request_id = h->request_id;
    p->peer = *from;
    p->session = h->sid;
    p->status = 0;
    p->bytes = bytes;
    for (int i = 0; i < m->nbufs; i++) {
        p->segs[i].data = m->bufs[i].frame + SPW_PROTO_HDR_LEN;
        p->segs[i].size = m->bufs[i].len - SPW_PROTO_HDR_LEN;
    }
    if (h->type == SPW_NET_RESULT || h->type == SPW_NET_ERROR) {
        /* The answer acknowledges the request: stop retransmitting it. */
        net_key rk = make_key(from, SPW_NET_REQUEST, h->request_id);
        net_ent *o = spw__net_tbl_find(&n->out, &rk);
        if (o)
            spw__net_request_answered(n, o, now);
    }
    spw__net_ready_push(n, p);
}

/* Makes room for one more partial message from `from`: the oldest of that
 * sender beyond its share, else the oldest overall, is dropped. */
static void inbox_make_room(spw_net *n, const spw_net_addr *from)
{
    net_tbl *t = &n->in;
    uint32_t mine = 0;
    int32_t my_oldest = -1;
    for (int32_t i = t->oldest; i >= 0; i = t->ents[i].anext) {
        const net_ent *e = &t->ents[i];
        if (e->key.ip == from->ip && e->key.port == from->port) {
            if (my_oldest < 0)
                my_oldest = i;
            mine++;
        }
    }
    int32_t victim = -1;
    if (mine >= n->cfg.max_inflight_per_peer)
        victim = my_oldest;
    else if (t->used >= t->cap)
        victim = t->oldest;
    if (victim >= 0) {
        spw__net_ent_release(n, t, &t->ents[victim]);
        n->stats.evictions++;
    }
}

static void on_data(spw_net *n, spw_netbuf *b, const spw_proto_hdr *h, uint64_t now)
{
    uint32_t plen = h->payload_len;
    if (h->type == SPW_NET_RESULT || h->type == SPW_NET_ERROR) {
        /* Only answers to requests still outstanding are of interest. */
        net_key rk = make_key(&b->from, SPW_NET_REQUEST, h->request_id);
        if (!spw__net_tbl_find(&n->out, &rk)) {
            /* A resent answer we already have (its ACK was lost): ACK it
             * again, no bigger than what came, so the sender stops. */
            net_key ak = make_key(&b->from, h->type, h->request_id);
            if (spw__net_done_has(n, &ak))
                spw__net_send_ack(n, &b->from, h->type, h->request_id);
            goto duplicate;
        }
    }
    net_key k = make_key(&b->from, h->type, h->request_id);
    net_ent *e = spw__net_tbl_find(&n->in, &k);
    if (!e) {
        if (h->type != SPW_NET_PONG && spw__net_done_has(n, &k)) {
            /* A request we have whole (a probe, or a repeat): its answer if
             * kept, else an ACK again (the first may have been lost). */
            if (h->type == SPW_NET_REQUEST &&
                !spw__net_resend_answer(n, &b->from, h->request_id, now, b->len))
                spw__net_send_ack(n, &b->from, SPW_NET_REQUEST, h->request_id);
            else if (h->type == SPW_NET_RESULT || h->type == SPW_NET_ERROR)
                spw__net_send_ack(n, &b->from, h->type, h->request_id);
            goto duplicate;
        }
        if (h->frag_count == 1) {
            if (plen != h->msg_len)
                goto invalid;
            net_msg *m = spw__net_msg_new(n, 1);
            if (!m)
                goto drop;
            m->bufs[0] = *b;
            if (h->type != SPW_NET_PONG) {
                spw__net_done_add(n, &k);
                spw__net_send_ack(n, &b->from, h->type, h->request_id);
            }
            deliver(n, m, h, &b->from, plen, now);
            return;
        }
        inbox_make_room(n, &b->from);
        e = spw__net_tbl_insert(&n->in, &k);
        if (!e)
            goto drop;
        e->frags = spw__net_pool_get(&n->pool, sizeof(spw_netbuf) * h->frag_count);
        if (e->frags)
            memset(e->frags, 0, sizeof(spw_netbuf) * h->frag_count);
        if (!e->frags) {
            spw__net_tbl_unlink(&n->in, e);
            goto drop;
        }
        e->peer = b->from;
        e->hdr = *h;
        e->count = h->frag_count;
        e->first_ns = now;
        e->timer_ns = now;
    } else if (h->frag_count != e->count || h->msg_len != e->hdr.msg_len ||
               h->model_id != e->hdr.model_id || h->c != e->hdr.c || h->h != e->hdr.h ||
               h->w != e->hdr.w || h->rate_point != e->hdr.rate_point ||
               h->app_flags != e->hdr.app_flags) {
        goto invalid;
    }
    if (e->frags[h->frag_index].frame)
        goto duplicate;
    if (e->bytes + plen > e->hdr.msg_len) {
        /* The fragments cannot add up: the sender is broken; forget it all. */
        spw__net_ent_release(n, &n->in, e);
        goto invalid;
    }
    e->frags[h->frag_index] = *b;
    e->have++;
    e->bytes += plen;
    e->wire_in += b->len;
    if (e->last_ns)
        e->gap_ns = SPW_MAX(e->gap_ns, since(now, e->last_ns));
    e->last_ns = now;
    if (e->have < e->count)
        return;
    if (e->bytes != e->hdr.msg_len) {
        spw__net_ent_release(n, &n->in, e);
        n->stats.rx_invalid++;
        return;
    }
    net_msg *m = spw__net_msg_new(n, e->count);
    if (!m) {
        spw__net_ent_release(n, &n->in, e);
        return;
    }
    memcpy(m->bufs, e->frags, sizeof(spw_netbuf) * e->count);
    spw__net_pool_put(&n->pool, e->frags);
    e->frags = NULL;
    spw_proto_hdr first = e->hdr;
    spw_net_addr from = e->peer;
    uint32_t bytes = e->bytes;
    spw__net_tbl_unlink(&n->in, e);
    spw__net_done_add(n, &k);
    spw__net_send_ack(n, &from, first.type, first.request_id);
    deliver(n, m, &first, &from, bytes, now);
    return;

duplicate:
    n->stats.rx_duplicate++;
    n->ops->buf_free(n->tctx, b);
    return;
invalid:
    n->stats.rx_invalid++;
drop:
    n->ops->buf_free(n->tctx, b);
}

/* A keep-alive probe of a request: ACKed again while the request is held
 * whole (being computed), which costs no more bytes than the probe. A kept
 * answer that does not fit in the probe's bytes, or a request not held, gets
 * nothing: the asker's next probe is then a whole fragment, which buys the
 * answer, or the NACKs that recover a request this endpoint lost. */
static void on_probe(spw_net *n, const spw_netbuf *b, const spw_proto_hdr *h, uint64_t now)
{
    if (spw__ld32(b->frame + SPW_PROTO_HDR_LEN)) {
        n->stats.rx_invalid++; /* reserved bytes */
        return;
    }
    n->stats.keepalives_received++;
    net_key k = make_key(&b->from, SPW_NET_REQUEST, h->request_id);
    if (!spw__net_done_has(n, &k))
        return;
    uint32_t budget = b->len; /* nothing larger than the probe goes back */
    if (!spw__net_resend_answer(n, &b->from, h->request_id, now, budget))
        spw__net_send_ack(n, &b->from, SPW_NET_REQUEST, h->request_id);
}

/* One frame from the transport (or the fault injector): parse once, dispatch. */
void spw__net_on_frame(spw_net *n, spw_netbuf *b, uint64_t now)
{
    spw_proto_hdr h;
    n->stats.rx_packets++;
    n->stats.rx_bytes += b->len;
    if (spw__proto_parse(b->frame, b->len, n->cfg.max_msg_bytes, &h) ||
        h.version != spw__net_version(n)) {
        n->stats.rx_invalid++;
        n->ops->buf_free(n->tctx, b);
        return;
    }
    /* Protocol 2: nothing below sees a frame that did not authenticate. */
    if (n->secure && spw__sec_rx(n, b, &h, now)) {
        n->ops->buf_free(n->tctx, b);
        return;
    }
    switch (h.type) {
    case SPW_NET_NACK:
        spw__net_on_nack(n, b, &h);
        n->ops->buf_free(n->tctx, b);
        return;
    case SPW_NET_ACK:
        spw__net_on_ack(n, b, &h, now);
        n->ops->buf_free(n->tctx, b);
        return;
    case SPW_NET_PING: {
        if (n->not_ready) {
            /* Draining: a health check must see this endpoint as gone. */
            n->stats.pings_unanswered++;
            n->ops->buf_free(n->tctx, b);
            return;
        }
        /* Echo in place: same buffer, type rewritten, CRC resealed. */
        h.type = SPW_NET_PONG;
        spw__proto_write(b->frame, &h);
        spw_netbuf *bp = b;
        spw__net_xmit(n, &b->from, &bp, 1, NULL);
        n->ops->buf_free(n->tctx, b);
        return;
    }
    default:
        if (h.pflags & SPW_PROTO_PROBE) {
            on_probe(n, b, &h, now);
            n->ops->buf_free(n->tctx, b);
            return;
        }
        /* A message our fragments could not hold was not cut for this path. */
        if (h.frag_count > 1 && (uint64_t)h.frag_count * n->frag_payload < h.msg_len) {
            n->stats.rx_invalid++;
            n->ops->buf_free(n->tctx, b);
            return;
        }
        on_data(n, b, &h, now);
    }
}

/* Whether b looks like a NACK: only an ordering hint, on_frame validates. */
static bool looks_like_nack(const spw_netbuf *b)
{
    return b->len >= SPW_PROTO_HDR_LEN && b->frame[3] == SPW_NET_NACK;
}

void spw__net_rx_round(spw_net *n, uint64_t now)
{
    spw_netbuf bufs[RX_BURST];
    for (int round = 0; round < 8; round++) {
        int got = n->ops->rx_burst(n->tctx, bufs, RX_BURST);
        /* NACKs after the rest of the burst: one that waited in the queue
         * behind the ACK of the same request (the sender was descheduled
         * between its fragments) is then seen to be stale, not obeyed. */
        for (int pass = 0; pass < 2; pass++) {
            for (int i = 0; i < got; i++) {
                if (looks_like_nack(&bufs[i]) != (pass == 1))
                    continue;
                if (n->faults)
                    spw__net_fault_frame(n, &bufs[i], now);
                else
                    spw__net_on_frame(n, &bufs[i], now);
            }
        }
        if (got < RX_BURST)
            break;
    }
    spw__net_fault_flush(n, now, false);
}

void spw__net_rx_timers(spw_net *n, uint64_t now)
{
    const spw_net_config *c = &n->cfg;
    uint64_t nack_ns = (uint64_t)c->nack_delay_us * 1000u;
    uint64_t reasm_ns = (uint64_t)c->reasm_timeout_ms * 1000000u;
    for (int32_t i = n->in.oldest, next; i >= 0; i = next) {
        net_ent *e = &n->in.ents[i];
        next = e->anext;
        /* Given up after reasm_timeout_ms without a new fragment (a slow
         * link that still delivers keeps its message), or 16 times that in
         * all, so a trickle cannot hold a slot for ever. */
        if (since(now, e->last_ns) >= reasm_ns || since(now, e->first_ns) >= 16 * reasm_ns) {
            spw__net_ent_release(n, &n->in, e);
            n->stats.reasm_timeouts++;
        } else {
            /* Silence means loss only when it is well beyond the spacing
             * of the fragments so far (a slow link spaces them widely). */
            uint64_t quiet = SPW_MAX(nack_ns, 4 * e->gap_ns);
            if (since(now, e->last_ns) < quiet || since(now, e->timer_ns) < quiet)
                continue;
            e->timer_ns = now;
            send_nack(n, e);
        }
    }
}

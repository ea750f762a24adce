/* The message layer of the netpath: fragmentation, reassembly, NACK and
 * timeout driven retransmission, bounded state, link emulation and fault
 * injection, over any transport of netpath/transport.h. */
#include <arpa/inet.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netpath/proto.h"
#include "netpath/transport.h"

#define RX_BURST 32
#define DONE_RING 1024u
#define SHAPER_QUEUE 4096u

/* ---- tables ------------------------------------------------------------ */

/* A message is named by its sender (or destination), its type and its id. */
typedef struct net_key {
    uint64_t id;
    uint32_t ip;
    uint16_t port;
    uint8_t type;
    uint8_t pad;
} net_key;

/* One partial incoming message (inbox) or one kept outgoing one (outbox). */
typedef struct net_ent {
    net_key key;
    int32_t hnext;        /* hash chain; free list when unused */
    int32_t aprev, anext; /* age list, oldest first */
    spw_net_addr peer;
    spw_proto_hdr hdr; /* fields of the first fragment (inbox) or the message */
    uint16_t count, have;
    uint32_t bytes;
    uint32_t tries;
    uint64_t first_ns, last_ns, timer_ns;
    uint64_t gap_ns; /* inbox: largest gap seen between two fragments */
    spw_netbuf *frags; /* count entries; frame == NULL: missing (inbox) */
    uint64_t *arrive;  /* outbox: when each fragment's last copy reaches the peer */
} net_ent;

typedef struct net_tbl {
    net_ent *ents;
    int32_t *buckets;
    uint32_t cap, used, nbuckets;
    int32_t free_head, oldest, newest;
} net_tbl;

typedef struct net_msg {
    spw_net_msg pub;
    int nbufs;
    spw_netbuf *bufs;
} net_msg;

typedef struct shaped {
    spw_netbuf buf;
    spw_net_addr dst;
    uint64_t due_ns;
} shaped;

struct spw_net {
    const spw_net_transport_ops *ops;
    void *tctx;
    spw_net_config cfg;
    spw_net_addr peer;
    bool have_peer;
    uint32_t frame_room, frag_payload;
    spw_net_stats stats;

    net_tbl in, out;
    net_key done[DONE_RING];
    uint32_t done_pos;

    spw_net_msg **ready;
    uint32_t ready_cap, ready_head, ready_tail; /* free-running */

    bool shaping;
    shaped *shq;
    uint32_t shq_head, shq_tail;
    double tokens;
    uint64_t shape_last_ns;

    bool faults;
    spw_netbuf held; /* reorder: frame held back until the next one */
    uint64_t held_ns;
    uint64_t rng;

    uint64_t next_scan_ns, scan_ns;
};

/* Time since t; 0 when t was stamped after `now` was read. */
static inline uint64_t since(uint64_t now, uint64_t t)
{
    return now > t ? now - t : 0;
}

static uint64_t rng_next(spw_net *n)
{
    /* xorshift64*: cheap, and good enough to pick packets. */
    n->rng ^= n->rng >> 12;
    n->rng ^= n->rng << 25;
    n->rng ^= n->rng >> 27;
    return n->rng * 0x2545f4914f6cdd1dull;
}

static bool chance(spw_net *n, double p)
{
    return p > 0 && (double)(rng_next(n) >> 11) * (1.0 / 9007199254740992.0) < p;
}

static uint32_t key_hash(const net_key *k)
{
    uint64_t h = k->id * 0x9e3779b97f4a7c15ull;
    h ^= ((uint64_t)k->ip << 24 | (uint64_t)k->port << 8 | k->type) * 0xc2b2ae3d27d4eb4full;
    return (uint32_t)(h >> 32);
}

static bool key_eq(const net_key *a, const net_key *b)
{
    return a->id == b->id && a->ip == b->ip && a->port == b->port && a->type == b->type;
}

static net_key make_key(const spw_net_addr *a, uint8_t type, uint64_t id)
{
    net_key k = {.id = id, .ip = a->ip, .port = a->port, .type = type, .pad = 0};
    return k;
}

static int tbl_init(net_tbl *t, uint32_t cap)
{
    memset(t, 0, sizeof(*t));
    t->nbuckets = 16;
    while (t->nbuckets < cap * 2)
        t->nbuckets <<= 1;
    t->ents = spw__calloc(cap, sizeof(net_ent));
    t->buckets = spw__malloc(sizeof(int32_t) * t->nbuckets);
    if (!t->ents || !t->buckets) {
        spw__free(t->ents);
        spw__free(t->buckets);
        return spw__error(SPW_ENOMEM, "netpath table of %u entries", cap);
    }
    for (uint32_t i = 0; i < t->nbuckets; i++)
        t->buckets[i] = -1;
    for (uint32_t i = 0; i < cap; i++)
        t->ents[i].hnext = i + 1 < cap ? (int32_t)(i + 1) : -1;
    t->cap = cap;
    t->free_head = 0;
    t->oldest = t->newest = -1;
    return 0;
}

static net_ent *tbl_find(net_tbl *t, const net_key *k)
{
    for (int32_t i = t->buckets[key_hash(k) & (t->nbuckets - 1)]; i >= 0; i = t->ents[i].hnext)
        if (key_eq(&t->ents[i].key, k))
            return &t->ents[i];
    return NULL;
}

/* Caller makes room first: returns NULL only when the table is full. */
static net_ent *tbl_insert(net_tbl *t, const net_key *k)
{
    if (t->free_head < 0)
        return NULL;
    int32_t i = t->free_head;
    net_ent *e = &t->ents[i];
    t->free_head = e->hnext;
    memset(e, 0, sizeof(*e));
    e->key = *k;
    uint32_t b = key_hash(k) & (t->nbuckets - 1);
    e->hnext = t->buckets[b];
    t->buckets[b] = i;
    e->aprev = t->newest;
    e->anext = -1;
    if (t->newest >= 0)
        t->ents[t->newest].anext = i;
    else
        t->oldest = i;
    t->newest = i;
    t->used++;
    return e;
}

static void tbl_unlink(net_tbl *t, net_ent *e)
{
    int32_t i = (int32_t)(e - t->ents);
    int32_t *p = &t->buckets[key_hash(&e->key) & (t->nbuckets - 1)];
    while (*p != i)
        p = &t->ents[*p].hnext;
    *p = e->hnext;
    if (e->aprev >= 0)
        t->ents[e->aprev].anext = e->anext;
    else
        t->oldest = e->anext;
    if (e->anext >= 0)
        t->ents[e->anext].aprev = e->aprev;
    else
        t->newest = e->aprev;
    e->hnext = t->free_head;
    t->free_head = i;
    t->used--;
}

/* ---- buffers and messages ---------------------------------------------- */

static void bufs_free(spw_net *n, spw_netbuf *b, int count)
{
    for (int i = 0; i < count; i++)
        if (b[i].frame)
            n->ops->buf_free(n->tctx, &b[i]);
}

static void ent_release(spw_net *n, net_tbl *t, net_ent *e)
{
    if (e->frags) {
        bufs_free(n, e->frags, e->count);
        spw__free(e->frags);
        e->frags = NULL;
    }
    tbl_unlink(t, e);
}

static net_msg *msg_new(int nbufs)
{
    size_t sz = sizeof(net_msg) + (size_t)nbufs * (sizeof(spw_netbuf) + sizeof(spw_net_seg));
    net_msg *m = spw__malloc(sz);
    if (!m)
        return NULL;
    memset(m, 0, sizeof(*m));
    m->nbufs = nbufs;
    m->bufs = (spw_netbuf *)(m + 1);
    m->pub.segs = (spw_net_seg *)(m->bufs + nbufs);
    m->pub.nsegs = nbufs;
    memset(m->bufs, 0, sizeof(spw_netbuf) * (size_t)nbufs);
    return m;
}

void spw_net_msg_free(spw_net *n, spw_net_msg *pub)
{
    if (!n || !pub)
        return;
    net_msg *m = (net_msg *)pub;
    bufs_free(n, m->bufs, m->nbufs);
    spw__free(m);
}

static void ready_push(spw_net *n, spw_net_msg *m)
{
    if (n->ready_tail - n->ready_head >= n->ready_cap) {
        /* Nobody is draining: drop rather than grow. */
        n->stats.evictions++;
        spw_net_msg_free(n, m);
        return;
    }
    n->ready[n->ready_tail++ % n->ready_cap] = m;
    n->stats.rx_msgs++;
}

static void local_event(spw_net *n, const net_ent *o, int status)
{
    net_msg *m = msg_new(0);
    if (!m)
        return;
    m->pub.type = SPW_NET_ERROR;
    m->pub.request_id = o->key.id;
    m->pub.model_id = o->hdr.model_id;
    m->pub.peer = o->peer;
    m->pub.status = status;
    ready_push(n, &m->pub);
}

/* ---- transmit: shaper and transport ------------------------------------ */

static void count_tx(spw_net *n, spw_netbuf *const *bufs, int count)
{
    for (int i = 0; i < count; i++) {
        n->stats.tx_packets++;
        n->stats.tx_bytes += bufs[i]->len;
    }
}

static void wire_tx(spw_net *n, const spw_net_addr *dst, spw_netbuf *const *bufs, int count)
{
    int sent = n->ops->tx_burst(n->tctx, dst, bufs, count);
    count_tx(n, bufs, sent);
    n->stats.tx_drops += (uint64_t)(count - sent);
}

/* Sends frames (keeping the caller's references). Through the shaper when
 * link emulation is on: each frame leaves when the token bucket allows and
 * arrives one delay later; until then the shaper holds a reference. */
static void xmit(spw_net *n, const spw_net_addr *dst, spw_netbuf *const *bufs, int count,
                 uint64_t *arrive)
{
    uint64_t now = spw__now_ns();
    if (!n->shaping) {
        wire_tx(n, dst, bufs, count);
        for (int i = 0; arrive && i < count; i++)
            arrive[i] = now;
        return;
    }
    const spw_net_config *c = &n->cfg;
    for (int i = 0; i < count; i++) {
        if (arrive)
            arrive[i] = now;
        if (chance(n, c->shape_loss) || n->shq_tail - n->shq_head >= SHAPER_QUEUE) {
            n->stats.shaper_drops++;
            continue;
        }
        uint64_t t = SPW_MAX(now, n->shape_last_ns);
        uint64_t dep = t;
        /* Wire bytes: the frame plus IPv4/UDP and Ethernet headers. */
        double need = (double)(bufs[i]->len + SPW_NET_L2L4_LEN);
        if (c->shape_rate_bps) {
            double rate = (double)c->shape_rate_bps / 8e9; /* bytes per ns */
            double burst = c->shape_burst_bytes ? c->shape_burst_bytes : n->cfg.mtu;
            n->tokens = SPW_MIN(burst, n->tokens + (double)(t - n->shape_last_ns) * rate);
            if (n->tokens >= need) {
                n->tokens -= need;
            } else {
                dep = t + (uint64_t)((need - n->tokens) / rate);
                n->tokens = 0;
            }
        }
        n->shape_last_ns = dep;
        shaped *s = &n->shq[n->shq_tail++ % SHAPER_QUEUE];
        s->buf = *bufs[i];
        n->ops->buf_ref(n->tctx, &s->buf);
        s->dst = *dst;
        s->due_ns = dep + (uint64_t)c->shape_delay_us * 1000u;
        if (arrive)
            arrive[i] = s->due_ns;
    }
}

static void shaper_release(spw_net *n, uint64_t now)
{
    while (n->shq_head != n->shq_tail) {
        shaped *s = &n->shq[n->shq_head % SHAPER_QUEUE];
        if (s->due_ns > now)
            break;
        spw_netbuf *b = &s->buf;
        wire_tx(n, &s->dst, &b, 1);
        n->ops->buf_free(n->tctx, b);
        n->shq_head++;
    }
}

/* ---- receive ----------------------------------------------------------- */

static bool done_has(const spw_net *n, const net_key *k)
{
    for (uint32_t i = 0; i < DONE_RING; i++)
        if (key_eq(&n->done[i], k))
            return true;
    return false;
}

static void done_add(spw_net *n, const net_key *k)
{
    n->done[n->done_pos++ % DONE_RING] = *k;
}

/* Control frames are single buffers built in place. */
static int ctrl_send(spw_net *n, const spw_net_addr *dst, const spw_proto_hdr *h,
                     const void *payload, uint32_t len)
{
    spw_netbuf b;
    if (len + SPW_PROTO_HDR_LEN > n->frame_room || n->ops->buf_alloc(n->tctx, &b))
        return SPW_EAGAIN;
    memcpy(b.frame + SPW_PROTO_HDR_LEN, payload, len);
    spw_proto_hdr hh = *h;
    hh.payload_len = (uint16_t)len;
    hh.msg_len = len;
    hh.frag_index = 0;
    hh.frag_count = 1;
    spw__proto_write(b.frame, &hh);
    b.len = SPW_PROTO_HDR_LEN + len;
    spw_netbuf *bp = &b;
    xmit(n, dst, &bp, 1, NULL);
    n->ops->buf_free(n->tctx, &b);
    return 0;
}

static void send_nack(spw_net *n, net_ent *e)
{
    uint8_t p[SPW_PROTO_NACK_FIXED + SPW_PROTO_MAX_FRAGS / 8];
    uint32_t first = 0;
    while (first < e->count && e->frags[first].frame)
        first++;
    uint32_t nbits = e->count - first;
    uint32_t room = (n->frag_payload - SPW_PROTO_NACK_FIXED) * 8u;
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
    if (!ctrl_send(n, &e->peer, &h, p, SPW_PROTO_NACK_FIXED + bm_bytes))
        n->stats.nacks_sent++;
}

static void on_nack(spw_net *n, const spw_netbuf *b, const spw_proto_hdr *h)
{
    const uint8_t *p = b->frame + SPW_PROTO_HDR_LEN;
    n->stats.nacks_received++;
    if (h->payload_len < SPW_PROTO_NACK_FIXED)
        goto invalid;
    uint32_t first = spw__ld16(p + 2), nbits = spw__ld16(p + 4);
    if ((size_t)(nbits + 7u) / 8u > (size_t)h->payload_len - SPW_PROTO_NACK_FIXED)
        goto invalid;
    net_key k = make_key(&b->from, p[0], h->request_id);
    net_ent *o = tbl_find(&n->out, &k);
    if (!o)
        return; /* already answered or expired */
    uint64_t now = spw__now_ns(), settle = (uint64_t)n->cfg.nack_delay_us * 1000u;
    for (uint32_t i = 0; i < nbits && first + i < o->count; i++) {
        uint32_t f = first + i;
        /* A fragment that cannot have arrived yet (still queued on a slow
         * link, or just resent) is not lost: resending it would only add to
         * the queue. */
        if (!(p[SPW_PROTO_NACK_FIXED + i / 8] & (1u << (i % 8))) || o->arrive[f] + settle > now)
            continue;
        spw_netbuf *bp = &o->frags[f];
        xmit(n, &o->peer, &bp, 1, &o->arrive[f]);
        n->stats.retransmits++;
    }
    /* The peer is alive and working on it: restart the request's clock. */
    o->last_ns = now;
    return;
invalid:
    n->stats.rx_invalid++;
}

static void resend_all(spw_net *n, net_ent *o)
{
    spw_netbuf *bp[RX_BURST];
    for (int f = 0; f < o->count; f += RX_BURST) {
        int cnt = SPW_MIN(RX_BURST, o->count - f);
        for (int j = 0; j < cnt; j++)
            bp[j] = &o->frags[f + j];
        xmit(n, &o->peer, bp, cnt, &o->arrive[f]);
        n->stats.retransmits += (uint64_t)cnt;
    }
}

/* Answers a repeated request from the result kept for it. */
static void resend_answer(spw_net *n, const spw_net_addr *from, uint64_t id, uint64_t now)
{
    static const uint8_t types[2] = {SPW_NET_RESULT, SPW_NET_ERROR};
    for (int t = 0; t < 2; t++) {
        net_key k = make_key(from, types[t], id);
        net_ent *o = tbl_find(&n->out, &k);
        if (!o)
            continue;
        /* At most once per NACK delay, so duplicates cannot amplify. */
        if (o->timer_ns && since(now, o->timer_ns) < (uint64_t)n->cfg.nack_delay_us * 1000u)
            return;
        o->timer_ns = now;
        resend_all(n, o);
        return;
    }
}

static void deliver(spw_net *n, net_msg *m, const spw_proto_hdr *h, const spw_net_addr *from,
                    uint32_t bytes)
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
    p->status = 0;
    p->bytes = bytes;
    for (int i = 0; i < m->nbufs; i++) {
        p->segs[i].data = m->bufs[i].frame + SPW_PROTO_HDR_LEN;
        p->segs[i].size = m->bufs[i].len - SPW_PROTO_HDR_LEN;
    }
    if (h->type == SPW_NET_RESULT || h->type == SPW_NET_ERROR) {
        /* The answer acknowledges the request: stop retransmitting it. */
        net_key rk = make_key(from, SPW_NET_REQUEST, h->request_id);
        net_ent *o = tbl_find(&n->out, &rk);
        if (o)
            ent_release(n, &n->out, o);
    }
    ready_push(n, p);
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
        ent_release(n, t, &t->ents[victim]);
        n->stats.evictions++;
    }
}

static void on_data(spw_net *n, spw_netbuf *b, const spw_proto_hdr *h, uint64_t now)
{
    uint32_t plen = h->payload_len;
    if (h->type == SPW_NET_RESULT || h->type == SPW_NET_ERROR) {
        /* Only answers to requests still outstanding are of interest. */
        net_key rk = make_key(&b->from, SPW_NET_REQUEST, h->request_id);
        if (!tbl_find(&n->out, &rk))
            goto duplicate;
    }
    net_key k = make_key(&b->from, h->type, h->request_id);
    net_ent *e = tbl_find(&n->in, &k);
    if (!e) {
        if (h->type != SPW_NET_PONG && done_has(n, &k)) {
            if (h->type == SPW_NET_REQUEST)
                resend_answer(n, &b->from, h->request_id, now);
            goto duplicate;
        }
        if (h->frag_count == 1) {
            if (plen != h->msg_len)
                goto invalid;
            net_msg *m = msg_new(1);
            if (!m)
                goto drop;
            m->bufs[0] = *b;
            if (h->type != SPW_NET_PONG)
                done_add(n, &k);
            deliver(n, m, h, &b->from, plen);
            return;
        }
        inbox_make_room(n, &b->from);
        e = tbl_insert(&n->in, &k);
        if (!e)
            goto drop;
        e->frags = spw__calloc(h->frag_count, sizeof(spw_netbuf));
        if (!e->frags) {
            tbl_unlink(&n->in, e);
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
        ent_release(n, &n->in, e);
        goto invalid;
    }
    e->frags[h->frag_index] = *b;
    e->have++;
    e->bytes += plen;
    if (e->last_ns)
        e->gap_ns = SPW_MAX(e->gap_ns, since(now, e->last_ns));
    e->last_ns = now;
    if (e->have < e->count)
        return;
    if (e->bytes != e->hdr.msg_len) {
        ent_release(n, &n->in, e);
        n->stats.rx_invalid++;
        return;
    }
    net_msg *m = msg_new(e->count);
    if (!m) {
        ent_release(n, &n->in, e);
        return;
    }
    memcpy(m->bufs, e->frags, sizeof(spw_netbuf) * e->count);
    spw__free(e->frags);
    e->frags = NULL;
    spw_proto_hdr first = e->hdr;
    spw_net_addr from = e->peer;
    uint32_t bytes = e->bytes;
    tbl_unlink(&n->in, e);
    done_add(n, &k);
    deliver(n, m, &first, &from, bytes);
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

/* One frame from the transport (or the fault injector): parse once, dispatch. */
static void on_frame(spw_net *n, spw_netbuf *b, uint64_t now)
{
    spw_proto_hdr h;
    n->stats.rx_packets++;
    n->stats.rx_bytes += b->len;
    if (spw__proto_parse(b->frame, b->len, n->cfg.max_msg_bytes, &h)) {
        n->stats.rx_invalid++;
        n->ops->buf_free(n->tctx, b);
        return;
    }
    switch (h.type) {
    case SPW_NET_NACK:
        on_nack(n, b, &h);
        n->ops->buf_free(n->tctx, b);
        return;
    case SPW_NET_PING: {
        /* Echo in place: same buffer, type rewritten, CRC resealed. */
        h.type = SPW_NET_PONG;
        spw__proto_write(b->frame, &h);
        spw_netbuf *bp = b;
        xmit(n, &b->from, &bp, 1, NULL);
        n->ops->buf_free(n->tctx, b);
        return;
    }
    default:
        /* A message our fragments could not hold was not cut for this path. */
        if (h.frag_count > 1 &&
            (uint64_t)h.frag_count * n->frag_payload < h.msg_len) {
            n->stats.rx_invalid++;
            n->ops->buf_free(n->tctx, b);
            return;
        }
        on_data(n, b, &h, now);
    }
}

static void fault_frame(spw_net *n, spw_netbuf *b, uint64_t now)
{
    const spw_net_config *c = &n->cfg;
    if (chance(n, c->fault_loss)) {
        n->stats.fault_events++;
        n->ops->buf_free(n->tctx, b);
        return;
    }
    if (b->len && chance(n, c->fault_truncate)) {
        n->stats.fault_events++;
        b->len = (uint32_t)(rng_next(n) % b->len);
    }
    if (b->len && chance(n, c->fault_corrupt)) {
        n->stats.fault_events++;
        b->frame[rng_next(n) % b->len] ^= (uint8_t)(1u << (rng_next(n) % 8));
    }
    if (!n->held.frame && chance(n, c->fault_reorder)) {
        n->stats.fault_events++;
        n->held = *b;
        n->held_ns = now;
        return;
    }
    if (chance(n, c->fault_dup)) {
        n->stats.fault_events++;
        spw_netbuf d = *b;
        n->ops->buf_ref(n->tctx, &d);
        on_frame(n, &d, now);
    }
    on_frame(n, b, now);
    if (n->held.frame) {
        spw_netbuf h = n->held;
        n->held.frame = NULL;
        on_frame(n, &h, now);
    }
}

static void rx_round(spw_net *n, uint64_t now)
{
    spw_netbuf bufs[RX_BURST];
    for (int round = 0; round < 8; round++) {
        int got = n->ops->rx_burst(n->tctx, bufs, RX_BURST);
        for (int i = 0; i < got; i++) {
            if (n->faults)
                fault_frame(n, &bufs[i], now);
            else
                on_frame(n, &bufs[i], now);
        }
        if (got < RX_BURST)
            break;
    }
    /* A held-back frame is not kept for long when nothing follows it. */
    if (n->held.frame && since(now, n->held_ns) > 1000000u) {
        spw_netbuf h = n->held;
        n->held.frame = NULL;
        on_frame(n, &h, now);
    }
}

/* ---- timers ------------------------------------------------------------ */

static void timers(spw_net *n, uint64_t now)
{
    const spw_net_config *c = &n->cfg;
    uint64_t nack_ns = (uint64_t)c->nack_delay_us * 1000u;
    uint64_t reasm_ns = (uint64_t)c->reasm_timeout_ms * 1000000u;
    for (int32_t i = n->in.oldest, next; i >= 0; i = next) {
        net_ent *e = &n->in.ents[i];
        next = e->anext;
        if (since(now, e->first_ns) >= reasm_ns) {
            ent_release(n, &n->in, e);
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
    uint64_t retain_ns = (uint64_t)c->retain_ms * 1000000u;
    for (int32_t i = n->out.oldest, next; i >= 0; i = next) {
        net_ent *o = &n->out.ents[i];
        next = o->anext;
        if (o->key.type != SPW_NET_REQUEST) {
            if (since(now, o->first_ns) >= retain_ns)
                ent_release(n, &n->out, o);
            continue;
        }
        uint64_t rto = (uint64_t)c->rto_us * 1000u << SPW_MIN(o->tries, 6u);
        if (since(now, o->last_ns) < rto)
            continue;
        if (o->tries >= c->max_retries) {
            local_event(n, o, SPW_ETIMEDOUT);
            ent_release(n, &n->out, o);
            n->stats.request_timeouts++;
            continue;
        }
        /* Nothing came back at all: send the whole request again. */
        o->tries++;
        o->last_ns = now;
        resend_all(n, o);
    }
}

/* ---- public API -------------------------------------------------------- */

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

#define DEF(field, value) \
    do {                  \
        if (!c->field)    \
            c->field = (value); \
    } while (0)

static int config_defaults(spw_net_config *c)
{
    DEF(mtu, 1500);
    DEF(max_msg_bytes, 262144);
    DEF(max_inflight, 256);
    DEF(max_inflight_per_peer, 32);
    DEF(max_outstanding, 256);
    DEF(nack_delay_us, 2000);
    DEF(reasm_timeout_ms, 500);
    DEF(rto_us, 20000);
    DEF(max_retries, 5);
    DEF(retain_ms, 1000);
    DEF(link_wait_ms, 2000);
    if (c->mtu < 576 || c->mtu > 9000)
        return spw__error(SPW_EINVAL, "mtu %u outside 576..9000", c->mtu);
    if (c->max_msg_bytes > 64u << 20 || c->max_inflight > 65536 || c->max_outstanding > 65536)
        return spw__error(SPW_EINVAL, "message layer limits too large");
    const double probs[] = {c->shape_loss,     c->fault_loss,     c->fault_dup,
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
    int rc = config_defaults(c);
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
    n->rng = c->seed ? c->seed : 0x5eed5eed5eedull;
    n->shaping = c->shape_rate_bps || c->shape_delay_us || c->shape_loss > 0;
    n->faults = c->fault_loss > 0 || c->fault_dup > 0 || c->fault_reorder > 0 ||
                c->fault_truncate > 0 || c->fault_corrupt > 0;
    uint32_t scan_us = SPW_MIN(c->nack_delay_us, c->rto_us) / 4;
    n->scan_ns = (uint64_t)SPW_MAX(50u, SPW_MIN(scan_us, 1000u)) * 1000u;

    if ((rc = tbl_init(&n->in, c->max_inflight)))
        goto fail_in;
    if ((rc = tbl_init(&n->out, c->max_outstanding)))
        goto fail_out;
    n->ready_cap = c->max_inflight + c->max_outstanding + 64;
    n->ready = spw__malloc(sizeof(spw_net_msg *) * n->ready_cap);
    if (!n->ready) {
        rc = spw__error(SPW_ENOMEM, "ready queue");
        goto fail_ready;
    }
    if (n->shaping) {
        n->shq = spw__malloc(sizeof(shaped) * SHAPER_QUEUE);
        if (!n->shq) {
            rc = spw__error(SPW_ENOMEM, "shaper queue");
            goto fail_shq;
        }
        n->shape_last_ns = spw__now_ns();
        n->tokens = c->shape_burst_bytes ? c->shape_burst_bytes : c->mtu;
    }
    /* Buffers: a few messages of the largest size in flight both ways, plus
     * the receive bursts, the shaper and kept results. */
    uint32_t nbufs = c->mbufs;
    if (!nbufs) {
        uint64_t want = (uint64_t)max_frags * 8 + 4 * RX_BURST + 1024 +
                        (n->shaping ? SHAPER_QUEUE : 0);
        nbufs = (uint32_t)SPW_MIN(want, 65535u);
    }
    if ((rc = ops->open(c, n->frame_room, nbufs, &n->stats, &n->tctx)))
        goto fail_transport;
    n->ops = ops;
    /* Only the strings the transport needed at open were borrowed. */
    c->local = c->peer = c->eal_args = c->dpdk_port = c->peer_mac = NULL;
    c->memory_pair = NULL;
    *out = n;
    return 0;

fail_transport:
    spw__free(n->shq);
fail_shq:
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

static void tbl_drain(spw_net *n, net_tbl *t)
{
    while (t->oldest >= 0)
        ent_release(n, t, &t->ents[t->oldest]);
    spw__free(t->ents);
    spw__free(t->buckets);
}

void spw_net_close(spw_net *n)
{
    if (!n)
        return;
    while (n->ready_head != n->ready_tail)
        spw_net_msg_free(n, n->ready[n->ready_head++ % n->ready_cap]);
    spw__free(n->ready);
    tbl_drain(n, &n->in);
    tbl_drain(n, &n->out);
    if (n->held.frame)
        n->ops->buf_free(n->tctx, &n->held);
    while (n->shq && n->shq_head != n->shq_tail)
        n->ops->buf_free(n->tctx, &n->shq[n->shq_head++ % SHAPER_QUEUE].buf);
    spw__free(n->shq);
    n->ops->close(n->tctx);
    spw__free(n);
}

size_t spw_net_frag_payload(const spw_net *n)
{
    return n ? n->frag_payload : 0;
}

int spw_net_tx_alloc(spw_net *n, size_t capacity, spw_net_msg **out)
{
    if (!n || !out)
        return spw__error(SPW_EINVAL, "spw_net_tx_alloc: NULL argument");
    *out = NULL;
    if (capacity > n->cfg.max_msg_bytes)
        return spw__error(SPW_ERANGE, "message of %zu bytes exceeds max_msg_bytes %u",
                          capacity, n->cfg.max_msg_bytes);
    capacity = (capacity + 3u) & ~(size_t)3u;
    int nfrag = capacity ? (int)((capacity + n->frag_payload - 1) / n->frag_payload) : 1;
    net_msg *m = msg_new(nfrag);
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
    if (first < 0 || first >= m->nbufs || (offset | bytes) & 3u ||
        offset > pub->segs[first].size) {
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
    spw_proto_hdr h = {
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
        xmit(n, &dst, bp, count, NULL);
        goto out;
    }
    /* Keep requests (until answered) and answers (for NACKs and repeats). */
    net_key k = make_key(&dst, type, pub->request_id);
    net_ent *o = tbl_find(&n->out, &k);
    if (o)
        ent_release(n, &n->out, o);
    if (n->out.used >= n->out.cap) {
        net_ent *old = &n->out.ents[n->out.oldest];
        if (old->key.type == SPW_NET_REQUEST)
            local_event(n, old, SPW_EBUSY);
        ent_release(n, &n->out, old);
        n->stats.evictions++;
    }
    o = tbl_insert(&n->out, &k);
    o->frags = spw__malloc((sizeof(spw_netbuf) + sizeof(uint64_t)) * (size_t)count);
    if (!o->frags) {
        tbl_unlink(&n->out, o);
        xmit(n, &dst, bp, count, NULL);
        goto out; /* sent once; it just cannot be retransmitted */
    }
    o->arrive = (uint64_t *)(o->frags + count);
    xmit(n, &dst, bp, count, o->arrive);
    memcpy(o->frags, &m->bufs[first], sizeof(spw_netbuf) * (size_t)count);
    memset(&m->bufs[first], 0, sizeof(spw_netbuf) * (size_t)count);
    o->count = (uint16_t)count;
    o->peer = dst;
    o->hdr = h;
    o->first_ns = o->last_ns = spw__now_ns();
    o->timer_ns = 0;
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
    spw_net_msg *keep = m;
    keep->type = hdr->type;
    keep->rate_point = hdr->rate_point;
    keep->flags = hdr->flags;
    keep->model_id = hdr->model_id;
    keep->c = hdr->c;
    keep->h = hdr->h;
    keep->w = hdr->w;
    keep->request_id = hdr->request_id;
    keep->peer = hdr->peer;
    return spw_net_send(n, keep, 0, 0, total);
}

int spw_net_ping(spw_net *n, const spw_net_addr *dst, uint64_t token)
{
    if (!n)
        return spw__error(SPW_EINVAL, "spw_net_ping: NULL net");
    spw_net_addr d = dst ? *dst : n->peer;
    if (!dst && !n->have_peer)
        return spw__error(SPW_EINVAL, "spw_net_ping: no destination");
    uint8_t p[8];
    spw__st64(p, token);
    spw_proto_hdr h = {.type = SPW_NET_PING, .request_id = token};
    return ctrl_send(n, &d, &h, p, sizeof(p));
}

int spw_net_poll(spw_net *n, int64_t timeout_us)
{
    if (!n)
        return spw__error(SPW_EINVAL, "spw_net_poll: NULL net");
    uint64_t start = spw__now_ns();
    uint64_t deadline = timeout_us < 0 ? UINT64_MAX : start + (uint64_t)timeout_us * 1000u;
    for (unsigned spins = 0;; spins++) {
        uint64_t now = spw__now_ns();
        rx_round(n, now);
        if (n->shaping)
            shaper_release(n, now);
        if (now >= n->next_scan_ns) {
            if (n->in.used || n->out.used)
                timers(n, now);
            n->next_scan_ns = now + n->scan_ns;
        }
        uint32_t ready = n->ready_tail - n->ready_head;
        if (ready)
            return (int)SPW_MIN(ready, (uint32_t)INT32_MAX);
        if (now >= deadline)
            return 0;
        uint64_t until = deadline;
        if (n->in.used || n->out.used)
            until = SPW_MIN(until, n->next_scan_ns);
        if (n->shaping && n->shq_head != n->shq_tail)
            until = SPW_MIN(until, n->shq[n->shq_head % SHAPER_QUEUE].due_ns);
        if (n->held.frame)
            until = SPW_MIN(until, n->held_ns + 1000000u);
        if (until <= now)
            continue;
        if (n->ops->wait) {
            n->ops->wait(n->tctx, (int64_t)SPW_MIN((until - now + 999u) / 1000u, 1000000u));
        } else if ((spins & 255u) == 255u) {
            /* Busy polling, but let other work run on a shared core. */
            sched_yield();
        }
    }
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
    uint64_t now = spw__now_ns();
    if (n->faults)
        fault_frame(n, &b, now);
    else
        on_frame(n, &b, now);
    return 0;
}

/* Protocol version 2 on the wire (docs/PROTOCOL.md): the client's handshake
 * state machine, the server's bounded session table with cookies and STALE
 * notices, sealing of every frame sent and authentication of every frame
 * received. The cryptography itself is netpath/session.c. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "netpath/net_internal.h"
#include "netpath/session.h"

enum { HS_NONE, HS_WAIT, HS_UP };

#define PENDING_PINGS 8u
/* Servers a client holds sessions with at once (the idlest is forgotten). */
#define CLIENT_PEERS 16
/* STALE notices sent a second at most (each no larger than what it answers). */
#define STALE_RATE 1000u

/* One server-side session. A HELLO makes one unconfirmed; the first frame
 * that authenticates under it confirms it (the client received WELCOME at
 * its address), and only then does it replace an older session of that
 * address: a spoofed HELLO cannot end a client's session. */
typedef struct net_sess {
    spw_session_keys k;
    spw_net_addr addr;
    uint8_t e_pub[SPW_KEY_LEN]; /* the HELLO's ephemeral: a repeat gets the same WELCOME */
    uint8_t welcome[SPW_WELCOME_LEN];
    uint64_t ts; /* the HELLO's timestamp */
    uint64_t last_ns;
    int32_t hnext; /* address hash chain */
    bool used, confirmed;
} net_sess;

/* A client's session with one server address (every server of a
 * deployment has the same key; a client may move between them). */
typedef struct net_peer {
    spw_net_addr addr;
    bool used;
    int hs_state;
    spw_hs_initiator hs;
    uint8_t hello[SPW_HELLO_LEN + SPW_COOKIE_LEN];
    uint32_t hello_len;
    uint64_t hs_sent_ns, hs_id, last_ns;
    uint32_t hs_tries;
    spw_session_keys cs;
    uint64_t pings[PENDING_PINGS];
    uint32_t npings;
} net_peer;

typedef struct net_sec {
    spw_keypair self;
    bool initiator;
    uint32_t aeads; /* SPW_AEAD_* offered (client) or accepted (server) */
    /* client */
    uint8_t server_pub[SPW_KEY_LEN];
    uint64_t hs_ts; /* the last HELLO's timestamp: they only grow */
    net_peer peers[CLIENT_PEERS];
    /* server */
    net_sess *sess;
    int32_t *buckets;
    uint32_t cap, nbuckets, used;
    spw_cookie_jar jar;
    uint64_t hs_second, stale_second;
    uint32_t hs_count, stale_count;
} net_sec;

static bool same_addr(const spw_net_addr *a, const spw_net_addr *b)
{
    return a->ip == b->ip && a->port == b->port;
}

/* The AEADs an endpoint offers or accepts: cipher from the configuration,
 * else SPW_NET_CIPHER from the environment, else all this CPU runs well. */
static int aead_set(const spw_net_config *c, uint32_t *out)
{
    uint32_t have = spw__aead_available(), want = have;
    const char *env = getenv("SPW_NET_CIPHER");
    if (c->cipher == SPW_NET_CIPHER_CHACHA20 || c->cipher == SPW_NET_CIPHER_AES256GCM)
        want = (uint32_t)c->cipher;
    else if (c->cipher != SPW_NET_CIPHER_AUTO)
        return spw__error(SPW_EINVAL, "cipher %d: expected SPW_NET_CIPHER_*", c->cipher);
    else if (env && *env && strcmp(env, "auto")) {
        if (!strcmp(env, spw__aead_name(SPW_AEAD_CHACHA20)))
            want = SPW_AEAD_CHACHA20;
        else if (!strcmp(env, spw__aead_name(SPW_AEAD_AES256GCM)))
            want = SPW_AEAD_AES256GCM;
        else
            return spw__error(SPW_EINVAL,
                              "SPW_NET_CIPHER=%s: expected chacha20-poly1305, aes-256-gcm or auto",
                              env);
    }
    if (want & ~have)
        return spw__error(SPW_EUNSUPPORTED,
                          "AES-256-GCM needs a CPU with AES-NI and CLMUL, which this one lacks "
                          "(use chacha20-poly1305 or auto)");
    *out = want;
    return 0;
}

static uint32_t addr_bucket(const net_sec *s, const spw_net_addr *a)
{
    uint64_t h = ((uint64_t)a->ip << 16 | a->port) * 0x9e3779b97f4a7c15ull;
    return (uint32_t)(h >> 40) & (s->nbuckets - 1);
}

int spw__sec_open(spw_net *n)
{
    const spw_net_config *c = &n->cfg;
    if (c->insecure) {
        if (c->private_key || c->server_public_key)
            return spw__error(SPW_EINVAL, "insecure (protocol 1) given together with keys");
        return 0;
    }
    if (!c->private_key && !c->server_public_key)
        return spw__error(SPW_EINVAL, "protocol 2 needs keys: a server's private key, or the "
                                      "server's public key for a client (or insecure for "
                                      "protocol 1)");
    uint32_t cap = c->max_sessions ? c->max_sessions : 1024;
    if (cap > 65536)
        return spw__error(SPW_EINVAL, "max_sessions %u (at most 65536)", cap);
    int rc = spw__crypto_init();
    if (rc)
        return rc;
    net_sec *s = spw__calloc(1, sizeof(*s));
    if (!s)
        return spw__error(SPW_ENOMEM, "session state");
    rc = c->private_key ? spw__keypair_from_private(c->private_key, &s->self)
                        : spw__keypair_generate(&s->self);
    if (rc || (rc = aead_set(c, &s->aeads)))
        goto fail;
    if (c->server_public_key) {
        s->initiator = true;
        memcpy(s->server_pub, c->server_public_key, SPW_KEY_LEN);
    } else {
        s->cap = cap;
        s->nbuckets = 16;
        while (s->nbuckets < 2 * cap)
            s->nbuckets <<= 1;
        s->sess = spw__calloc(cap, sizeof(net_sess));
        s->buckets = spw__malloc(sizeof(int32_t) * s->nbuckets);
        if (!s->sess || !s->buckets) {
            rc = spw__error(SPW_ENOMEM, "session table of %u", cap);
            goto fail;
        }
        for (uint32_t i = 0; i < s->nbuckets; i++)
            s->buckets[i] = -1;
        spw__cookie_jar_init(&s->jar, net_now(n) / 1000000000u);
    }
    n->sec = s;
    n->secure = true;
    return 0;
fail:
    spw__free(s->sess);
    spw__free(s->buckets);
    sodium_memzero(s, sizeof(*s));
    spw__free(s);
    return rc;
}

void spw__sec_close(spw_net *n)
{
    net_sec *s = n->sec;
    if (!s)
        return;
    if (s->sess)
        sodium_memzero(s->sess, sizeof(net_sess) * s->cap);
    spw__free(s->sess);
    spw__free(s->buckets);
    sodium_memzero(s, sizeof(*s));
    spw__free(s);
    n->sec = NULL;
}

/* ---- server: the session table ------------------------------------------- */

/* A session id: byte 0 routes (the HELLO's request id's low byte, which a
 * SO_REUSEPORT group spreads by), bytes 1-2 the slot, byte 3 random, never 0. */
static net_sess *sess_by_id(net_sec *s, uint32_t sid)
{
    uint32_t slot = (sid >> 8) & 0xffffu;
    if (slot >= s->cap)
        return NULL;
    net_sess *e = &s->sess[slot];
    return e->used && e->k.id == sid ? e : NULL;
}

/* The session of an address: its confirmed one. */
static net_sess *sess_by_addr(net_sec *s, const spw_net_addr *a)
{
    for (int32_t i = s->buckets[addr_bucket(s, a)]; i >= 0; i = s->sess[i].hnext)
        if (s->sess[i].confirmed && same_addr(&s->sess[i].addr, a))
            return &s->sess[i];
    return NULL;
}

static void sess_unlink(net_sec *s, net_sess *e)
{
    int32_t i = (int32_t)(e - s->sess);
    int32_t *p = &s->buckets[addr_bucket(s, &e->addr)];
    while (*p != i)
        p = &s->sess[*p].hnext;
    *p = e->hnext;
    sodium_memzero(e, sizeof(*e));
    s->used--;
}

/* Forgets every message of an address (a session there ended): partial
 * requests, kept answers and the record of completed ones, so that nothing
 * of one session is ever sealed for, or answered from, another. */
static void purge_addr(spw_net *n, const spw_net_addr *a)
{
    net_tbl *tbls[2] = {&n->in, &n->out};
    for (int t = 0; t < 2; t++)
        for (int32_t i = tbls[t]->oldest, next; i >= 0; i = next) {
            net_ent *e = &tbls[t]->ents[i];
            next = e->anext;
            if (e->key.ip == a->ip && e->key.port == a->port)
                spw__net_ent_release(n, tbls[t], e);
        }
    for (uint32_t i = 0; i < DONE_RING; i++)
        if (n->done[i].ip == a->ip && n->done[i].port == a->port)
            memset(&n->done[i], 0, sizeof(n->done[i]));
}

static void sess_remove(spw_net *n, net_sess *e)
{
    if (e->confirmed)
        purge_addr(n, &e->addr);
    sess_unlink(n->sec, e);
}

/* A slot for a new session from addr: that address's unconfirmed one, a
 * free one, else the idlest unconfirmed one, else the idlest of all. */
static net_sess *sess_slot(spw_net *n, const spw_net_addr *addr)
{
    net_sec *s = n->sec;
    for (int32_t i = s->buckets[addr_bucket(s, addr)]; i >= 0; i = s->sess[i].hnext)
        if (same_addr(&s->sess[i].addr, addr) && !s->sess[i].confirmed)
            return &s->sess[i];
    net_sess *idle_pending = NULL, *idle = NULL;
    for (uint32_t i = 0; i < s->cap; i++) {
        net_sess *x = &s->sess[i];
        if (!x->used)
            return x;
        if (!x->confirmed && (!idle_pending || x->last_ns < idle_pending->last_ns))
            idle_pending = x;
        if (!idle || x->last_ns < idle->last_ns)
            idle = x;
    }
    return idle_pending ? idle_pending : idle;
}

static void send_plain(spw_net *n, const spw_net_addr *dst, uint8_t type, uint64_t id,
                       const void *payload, uint32_t len)
{
    spw_netbuf b;
    if (n->ops->buf_alloc(n->tctx, &b))
        return;
    if (len)
        memcpy(b.frame + SPW_PROTO_HDR_LEN, payload, len);
    spw_proto_hdr h = {.version = SPW_PROTO_VERSION2,
                       .type = type,
                       .request_id = id,
                       .frag_count = 1,
                       .payload_len = (uint16_t)len,
                       .msg_len = len};
    spw__proto_write(b.frame, &h);
    b.len = SPW_PROTO_HDR_LEN + len;
    spw_netbuf *bp = &b;
    spw__net_xmit_raw(n, dst, &bp, 1, NULL);
    n->ops->buf_free(n->tctx, &b);
}

/* A sealed frame for a session we do not have: tell the sender once in a
 * while (a header only, no larger than the frame), so that a client whose
 * server restarted handshakes again instead of waiting for its deadline. */
static void send_stale(spw_net *n, const spw_net_addr *to, uint32_t sid, uint64_t now)
{
    net_sec *s = n->sec;
    uint64_t second = now / 1000000000u;
    if (second != s->stale_second) {
        s->stale_second = second;
        s->stale_count = 0;
    }
    if (s->stale_count >= STALE_RATE)
        return;
    s->stale_count++;
    send_plain(n, to, SPW_PROTO_STALE, sid, NULL, 0);
    n->stats.stale_sent++;
}

static void on_hello(spw_net *n, const spw_netbuf *b, const spw_proto_hdr *h, uint64_t now)
{
    net_sec *s = n->sec;
    const uint8_t *p = b->frame + SPW_PROTO_HDR_LEN;
    if (h->payload_len != SPW_HELLO_LEN && h->payload_len != SPW_HELLO_LEN + SPW_COOKIE_LEN) {
        n->stats.rx_invalid++;
        return;
    }
    /* A repeat of a HELLO already served (its WELCOME was lost): the same
     * WELCOME again, no crypto, smaller than the HELLO. */
    for (int32_t i = s->buckets[addr_bucket(s, &b->from)]; i >= 0; i = s->sess[i].hnext) {
        const net_sess *x = &s->sess[i];
        if (same_addr(&x->addr, &b->from) && !memcmp(x->e_pub, p, SPW_KEY_LEN)) {
            send_plain(n, &b->from, SPW_PROTO_WELCOME, 0, x->welcome, SPW_WELCOME_LEN);
            return;
        }
    }
    /* Under load only senders that receive at their address get the work
     * of a handshake: they echo a cookie first. */
    uint64_t second = now / 1000000000u;
    spw__cookie_jar_tick(&s->jar, second);
    if (second != s->hs_second) {
        s->hs_second = second;
        s->hs_count = 0;
    }
    uint32_t rate = n->cfg.handshake_rate ? n->cfg.handshake_rate : 1000;
    if (s->hs_count >= rate &&
        (h->payload_len != SPW_HELLO_LEN + SPW_COOKIE_LEN ||
         !spw__cookie_check(&s->jar, b->from.ip, b->from.port, p + SPW_HELLO_LEN))) {
        uint8_t cookie[SPW_COOKIE_LEN];
        spw__cookie_make(&s->jar, b->from.ip, b->from.port, cookie);
        send_plain(n, &b->from, SPW_PROTO_COOKIE, 0, cookie, sizeof(cookie));
        n->stats.cookies_sent++;
        return;
    }
    s->hs_count++;
    net_sess *e = sess_slot(n, &b->from);
    uint32_t slot = (uint32_t)(e - s->sess), sid;
    do {
        uint8_t r;
        randombytes_buf(&r, 1);
        sid = (uint32_t)(h->request_id & 0xffu) | slot << 8 | (uint32_t)r << 24;
    } while (!(sid >> 24) || (e->used && sid == e->k.id));
    uint8_t welcome[SPW_WELCOME_LEN];
    spw_session_keys keys;
    uint64_t ts;
    int rc = spw__hs_respond(&s->self, p, sid, s->aeads, welcome, &keys, &ts);
    if (rc) {
        /* An offer without an AEAD we accept authenticated, but it is a
         * configuration mismatch worth a line in the log. */
        if (rc == SPW_EUNSUPPORTED)
            SPW_LOGW("%s", spw_error_detail());
        n->stats.rx_auth_fail++;
        return;
    }
    /* A replayed HELLO: not newer than the last of that client key. */
    for (uint32_t i = 0; i < s->cap; i++) {
        const net_sess *x = &s->sess[i];
        if (x->used && !memcmp(x->k.peer_static, keys.peer_static, SPW_KEY_LEN) && ts <= x->ts) {
            sodium_memzero(&keys, sizeof(keys));
            n->stats.rx_replay++;
            return;
        }
    }
    if (e->used)
        sess_remove(n, e);
    e->k = keys;
    e->addr = b->from;
    memcpy(e->e_pub, p, SPW_KEY_LEN);
    memcpy(e->welcome, welcome, SPW_WELCOME_LEN);
    e->ts = ts;
    e->last_ns = now;
    e->used = true;
    e->confirmed = false;
    uint32_t bk = addr_bucket(s, &b->from);
    e->hnext = s->buckets[bk];
    s->buckets[bk] = (int32_t)slot;
    s->used++;
    n->stats.handshakes++;
    n->stats.handshakes_aes256gcm += keys.aead == SPW_AEAD_AES256GCM;
    sodium_memzero(&keys, sizeof(keys));
    send_plain(n, &b->from, SPW_PROTO_WELCOME, 0, welcome, SPW_WELCOME_LEN);
}

/* ---- client: the handshake ------------------------------------------------ */

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The session state for server address a; with create, a new one (the
 * idlest forgotten when all are taken). */
static net_peer *peer_find(net_sec *s, const spw_net_addr *a, bool create, uint64_t now)
{
    net_peer *idle = NULL;
    for (int i = 0; i < CLIENT_PEERS; i++) {
        net_peer *p = &s->peers[i];
        if (p->used && same_addr(&p->addr, a)) {
            p->last_ns = now;
            return p;
        }
        if (!idle || !p->used || (idle->used && p->last_ns < idle->last_ns))
            idle = p;
    }
    if (!create)
        return NULL;
    sodium_memzero(idle, sizeof(*idle));
    idle->used = true;
    idle->addr = *a;
    idle->last_ns = now;
    return idle;
}

static void hello_send(spw_net *n, net_peer *p, uint64_t now)
{
    p->hs_sent_ns = now;
    send_plain(n, &p->addr, SPW_PROTO_HELLO, p->hs_id, p->hello, p->hello_len);
}

/* A new HELLO (fresh ephemeral key, newer timestamp). */
static void hs_start(spw_net *n, net_peer *p, uint64_t now)
{
    net_sec *s = n->sec;
    uint64_t ts = wall_ns();
    s->hs_ts = ts > s->hs_ts ? ts : s->hs_ts + 1;
    if (spw__hs_hello(&p->hs, &s->self, s->server_pub, s->hs_ts, s->aeads, p->hello)) {
        p->hs_state = HS_NONE;
        return;
    }
    p->hello_len = SPW_HELLO_LEN;
    /* A random id: a SO_REUSEPORT group picks the process by it. */
    randombytes_buf(&p->hs_id, sizeof(p->hs_id));
    p->hs_state = HS_WAIT;
    p->hs_tries = 0;
    hello_send(n, p, now);
}

/* Everything that waited for this server's session goes out now, sealed. */
static void hs_flush(spw_net *n, net_peer *p, uint64_t now)
{
    for (int32_t i = n->out.oldest; i >= 0; i = n->out.ents[i].anext) {
        net_ent *o = &n->out.ents[i];
        if (o->key.type != SPW_NET_REQUEST || !same_addr(&o->peer, &p->addr))
            continue;
        if (o->held) {
            /* First transmission: its ACK gives an RTT sample. */
            o->held = false;
            o->tries = 0;
            o->first_ns = now;
        } else {
            /* Sent under a session the server lost: all of it again. */
            o->acked = false;
            o->tries = o->tries ? o->tries : 1;
            n->stats.retransmits += o->count;
        }
        o->last_ns = now;
        spw_netbuf *bp[RX_BURST];
        for (int f = 0; f < o->count; f += RX_BURST) {
            int cnt = SPW_MIN(RX_BURST, o->count - f);
            for (int j = 0; j < cnt; j++)
                bp[j] = &o->frags[f + j];
            spw__net_xmit(n, &o->peer, bp, cnt, &o->arrive[f]);
        }
    }
    uint32_t np = p->npings;
    uint64_t pings[PENDING_PINGS];
    memcpy(pings, p->pings, sizeof(pings));
    spw_net_addr to = p->addr;
    p->npings = 0;
    for (uint32_t i = 0; i < np; i++)
        spw_net_ping(n, &to, pings[i]);
}

static void on_welcome(spw_net *n, const spw_netbuf *b, const spw_proto_hdr *h, uint64_t now)
{
    net_peer *p = peer_find(n->sec, &b->from, false, now);
    if (!p || p->hs_state != HS_WAIT)
        return;
    if (h->payload_len != SPW_WELCOME_LEN) {
        n->stats.rx_invalid++;
        return;
    }
    /* Reading spends the initiator state: work on a copy so that a forged
     * WELCOME does not stop the real one from being read. */
    spw_hs_initiator st = p->hs;
    spw_session_keys keys;
    if (spw__hs_read_welcome(&st, b->frame + SPW_PROTO_HDR_LEN, &keys)) {
        n->stats.rx_auth_fail++;
        return;
    }
    sodium_memzero(&p->hs, sizeof(p->hs));
    sodium_memzero(&p->cs, sizeof(p->cs));
    p->cs = keys;
    sodium_memzero(&keys, sizeof(keys));
    p->hs_state = HS_UP;
    n->stats.handshakes++;
    n->stats.handshakes_aes256gcm += p->cs.aead == SPW_AEAD_AES256GCM;
    hs_flush(n, p, now);
}

static void on_cookie(spw_net *n, const spw_netbuf *b, const spw_proto_hdr *h, uint64_t now)
{
    net_peer *p = peer_find(n->sec, &b->from, false, now);
    /* One cookie per HELLO: spoofed COOKIEs cannot make the client send
     * HELLOs faster than its timer does. */
    if (!p || p->hs_state != HS_WAIT || h->payload_len != SPW_COOKIE_LEN ||
        p->hello_len != SPW_HELLO_LEN)
        return;
    memcpy(p->hello + SPW_HELLO_LEN, b->frame + SPW_PROTO_HDR_LEN, SPW_COOKIE_LEN);
    p->hello_len = SPW_HELLO_LEN + SPW_COOKIE_LEN;
    hello_send(n, p, now);
}

static void on_stale(spw_net *n, const spw_netbuf *b, const spw_proto_hdr *h, uint64_t now)
{
    net_peer *p = peer_find(n->sec, &b->from, false, now);
    /* Only for the session in use: the id is seen on the path only, so an
     * off-path sender cannot make the client drop its session. */
    if (!p || p->hs_state != HS_UP || h->request_id != p->cs.id)
        return;
    sodium_memzero(&p->cs, sizeof(p->cs));
    hs_start(n, p, now);
}

/* ---- both sides ------------------------------------------------------------ */

bool spw__sec_ready(spw_net *n, const spw_net_addr *dst, uint32_t session)
{
    net_sec *s = n->sec;
    if (!s)
        return true;
    if (s->initiator) {
        uint64_t now = net_now(n);
        net_peer *p = peer_find(s, dst, true, now);
        if (p->hs_state == HS_NONE)
            hs_start(n, p, now);
        return p->hs_state == HS_UP;
    }
    net_sess *e = sess_by_addr(s, dst);
    return e && (!session || e->k.id == session);
}

bool spw__sec_hold_ping(spw_net *n, const spw_net_addr *dst, uint64_t token)
{
    net_sec *s = n->sec;
    if (!s || !s->initiator || spw__sec_ready(n, dst, 0))
        return false;
    net_peer *p = peer_find(s, dst, false, net_now(n));
    if (p && p->npings < PENDING_PINGS)
        p->pings[p->npings++] = token;
    return true;
}

void spw__sec_xmit(spw_net *n, const spw_net_addr *dst, spw_netbuf *const *bufs, int count,
                   uint64_t *arrive)
{
    net_sec *s = n->sec;
    spw_session_keys *k = NULL;
    if (s->initiator) {
        uint64_t now = net_now(n);
        net_peer *p = peer_find(s, dst, true, now);
        if (p->hs_state == HS_UP)
            k = &p->cs;
        else if (p->hs_state == HS_NONE)
            hs_start(n, p, now);
    } else {
        net_sess *e = sess_by_addr(s, dst);
        k = e ? &e->k : NULL;
    }
    if (!k) {
        n->stats.tx_no_session += (uint64_t)count;
        return;
    }
    /* Sealing costs about as much per fragment as the peer's opening: where
     * handing a frame to the transport is cheap (no system call), each goes
     * out as soon as it is sealed, so the peer opens one while the next is
     * sealed. Kernel UDP keeps its bursts (one sendmmsg). */
    int burst = n->ops == &spw__net_udp_ops ? RX_BURST : 1;
    spw_netbuf fresh[RX_BURST], *fp[RX_BURST];
    for (int done = 0; done < count;) {
        int cnt = SPW_MIN(burst, count - done), got = 0;
        for (; got < cnt; got++) {
            const spw_netbuf *src = bufs[done + got];
            spw_netbuf *d = &fresh[got];
            if (n->ops->buf_alloc(n->tctx, d))
                break;
            uint8_t *f = d->frame;
            uint32_t plen = src->len - SPW_PROTO_HDR_LEN;
            memcpy(f, src->frame, SPW_PROTO_AD_LEN);
            uint64_t ctr;
            /* The nonce goes into the header before sealing: it is part of
             * the associated data. */
            if (k->tx.next == UINT64_MAX) {
                n->ops->buf_free(n->tctx, d);
                break;
            }
            spw__st32(f + SPW_PROTO_NONCE_OFF, k->id);
            spw__st64(f + SPW_PROTO_NONCE_OFF + 4, k->tx.next);
            spw__frame_seal(&k->tx, k->id, f, SPW_PROTO_AD_LEN, src->frame + SPW_PROTO_HDR_LEN,
                            f + SPW_PROTO_HDR_LEN, plen, f + SPW_PROTO_TAG_OFF, &ctr);
            d->len = src->len;
            fp[got] = d;
        }
        if (got)
            spw__net_xmit_raw(n, dst, fp, got, arrive ? arrive + done : NULL);
        for (int i = 0; i < got; i++)
            n->ops->buf_free(n->tctx, &fresh[i]);
        if (got < cnt) {
            n->stats.tx_drops += (uint64_t)(count - done - got);
            return;
        }
        done += cnt;
    }
}

int spw__sec_rx(spw_net *n, spw_netbuf *b, spw_proto_hdr *h, uint64_t now)
{
    net_sec *s = n->sec;
    if (!(h->pflags & SPW_PROTO_SEALED)) {
        switch (h->type) {
        case SPW_PROTO_HELLO:
            if (!s->initiator)
                on_hello(n, b, h, now);
            break;
        case SPW_PROTO_WELCOME:
            if (s->initiator)
                on_welcome(n, b, h, now);
            break;
        case SPW_PROTO_COOKIE:
            if (s->initiator)
                on_cookie(n, b, h, now);
            break;
        case SPW_PROTO_STALE:
            if (s->initiator)
                on_stale(n, b, h, now);
            break;
        }
        return 1;
    }
    spw_session_keys *k;
    net_sess *e = NULL;
    if (s->initiator) {
        net_peer *p = peer_find(s, &b->from, false, now);
        if (!p || p->hs_state != HS_UP || h->sid != p->cs.id) {
            n->stats.rx_no_session++;
            return SPW_EAUTH;
        }
        k = &p->cs;
    } else {
        e = sess_by_id(s, h->sid);
        if (!e || !same_addr(&e->addr, &b->from)) {
            n->stats.rx_no_session++;
            send_stale(n, &b->from, h->sid, now);
            return SPW_EAUTH;
        }
        k = &e->k;
    }
    int rc = spw__frame_open(k->aead, k->rx_key, &k->replay, h->sid, h->counter, b->frame,
                             SPW_PROTO_AD_LEN, b->frame + SPW_PROTO_HDR_LEN, h->payload_len,
                             b->frame + SPW_PROTO_TAG_OFF);
    if (rc) {
        if (rc == SPW_EREPLAY)
            n->stats.rx_replay++;
        else
            n->stats.rx_auth_fail++;
        return rc;
    }
    if (e) {
        e->last_ns = now;
        if (!e->confirmed) {
            /* The client holds the keys of WELCOME: this session is now the
             * address's, and the one before it ends. */
            net_sess *old = sess_by_addr(s, &e->addr);
            if (old)
                sess_remove(n, old);
            e->confirmed = true;
        }
    }
    return 0;
}

static void hs_give_up(spw_net *n, net_peer *p)
{
    for (int32_t i = n->out.oldest, next; i >= 0; i = next) {
        net_ent *o = &n->out.ents[i];
        next = o->anext;
        if (o->key.type != SPW_NET_REQUEST || !o->held || !same_addr(&o->peer, &p->addr))
            continue;
        spw__net_local_event(n, o, SPW_ETIMEDOUT);
        spw__net_ent_release(n, &n->out, o);
        n->stats.request_timeouts++;
    }
    p->hs_state = HS_NONE;
}

static uint64_t hello_due(const spw_net *n, const net_peer *p)
{
    uint64_t wait = SPW_MIN(n->rto_ns << SPW_MIN(p->hs_tries, 10u), 1000000000ull);
    return p->hs_sent_ns + wait;
}

uint64_t spw__sec_next_ns(const spw_net *n)
{
    const net_sec *s = n->sec;
    uint64_t next = UINT64_MAX;
    for (int i = 0; s && s->initiator && i < CLIENT_PEERS; i++)
        if (s->peers[i].used && s->peers[i].hs_state == HS_WAIT)
            next = SPW_MIN(next, hello_due(n, &s->peers[i]));
    return next;
}

void spw__sec_timers(spw_net *n, uint64_t now)
{
    net_sec *s = n->sec;
    for (int i = 0; s && s->initiator && i < CLIENT_PEERS; i++) {
        net_peer *p = &s->peers[i];
        if (!p->used || p->hs_state != HS_WAIT || now < hello_due(n, p))
            continue;
        /* The same HELLO again: the server answers a repeat with the WELCOME
         * it already made, so a WELCOME slower than our timer still counts.
         * Without the cookie: it may have expired, and the answer to this
         * one brings a fresh one if the server still wants it. */
        p->hs_tries++;
        if (n->cfg.max_retries && p->hs_tries > n->cfg.max_retries) {
            /* As a request whose probes all went unanswered: the requests
             * waiting for this handshake fail now (a client may then try
             * another server), and the next send starts a new HELLO. */
            hs_give_up(n, p);
            continue;
        }
        p->hello_len = SPW_HELLO_LEN;
        hello_send(n, p, now);
    }
}

void spw__sec_rebase(spw_net *n, uint64_t now)
{
    for (int i = 0; n->sec && i < CLIENT_PEERS; i++)
        n->sec->peers[i].hs_sent_ns = now;
}

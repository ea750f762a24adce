/* The message layer's shared state and the functions its parts call in one
 * another. Not installed.
 *
 *   table.c     keyed tables of partial (inbox) and kept (outbox) messages,
 *               and the ring of completed message keys
 *   msgpool.c   message objects and fragment arrays from size-class pools
 *               (no allocation per message once warm), the ready queue
 *   rx.c        receive: validation dispatch, reassembly, NACK, delivery
 *   tx.c        send: framing, retransmission on NACK and timeout
 *   secure.c    protocol 2: sessions (handshake, session table, cookies),
 *               sealing of every frame sent and opening of every one received
 *   emulate.c   link emulation (shaper) and fault injection, SPW_NET_EMULATION
 *   net.c       configuration, open/close, poll and the rest of the API
 */
#ifndef SPW_NETPATH_NET_INTERNAL_H
#define SPW_NETPATH_NET_INTERNAL_H

#include <stdatomic.h>

#include "netpath/proto.h"
#include "netpath/transport.h"

#define RX_BURST 32
#define DONE_RING 1024u
#define DONE_BUCKETS 2048u
#define SHAPER_QUEUE 4096u
#define NETPOOL_CLASSES 14 /* blocks of 64 B .. 512 KiB */

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
    uint64_t gap_ns;      /* inbox: largest gap seen between two fragments */
    uint64_t deadline_ns; /* outbox request: given up then */
    uint32_t wire_in;     /* inbox: frame bytes received for it (the NACK budget) */
    uint32_t wire_nack;   /* inbox: NACK bytes sent for it */
    uint16_t nacks;       /* inbox: NACKs sent for it */
    uint16_t probe;       /* outbox request: its largest fragment, resent as a probe */
    bool acked;           /* outbox request: the peer has it whole */
    bool held;            /* outbox request: not sent yet, waiting for a session */
    spw_netbuf *frags;    /* count entries; frame == NULL: missing (inbox) */
    uint64_t *arrive;     /* outbox: when each fragment's last copy reaches the peer */
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

/* Size-class pool: blocks are recycled through per-class free lists and only
 * returned to the allocator at close, so the data path stops allocating once
 * the largest working set has been seen (itself bounded by the limits). */
typedef struct net_pool {
    void *free[NETPOOL_CLASSES];
    void *all; /* every block ever made, for close */
    uint64_t blocks;
} net_pool;

struct spw_net {
    const spw_net_transport_ops *ops;
    void *tctx;
    spw_net_config cfg;
    spw_net_addr peer;
    bool have_peer;
    bool not_ready; /* spw_net_set_ready(false): PINGs go unanswered */
    uint32_t frame_room, frag_payload;
    spw_net_stats stats;

    net_tbl in, out;
    net_key done[DONE_RING];
    uint32_t done_pos;
    /* Hash chains over the ring (slot + 1; 0 ends a chain): a lookup per
     * new message must not scan the whole ring. */
    uint16_t done_head[DONE_BUCKETS], done_next[DONE_RING], done_bkt[DONE_RING];
    net_pool pool;

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

    /* spw_net_wake: set from any thread, taken by spw_net_poll. */
    atomic_int woken;

    /* RTT estimate (RFC 6298) from ACKs of requests sent once. */
    bool rtt_valid;
    uint64_t srtt_ns, rttvar_ns, rto_ns;
    uint64_t backoff_ns; /* when rto_ns was last doubled (RFC 6298 5.5) */
    /* Smoothed time from sending a request to its answer (0: none yet),
     * which spaces the keep-alive probes of ACKed requests. */
    uint64_t answer_ns;

    /* Protocol 2 (secure.c); NULL when insecure (protocol 1). */
    bool secure;
    struct net_sec *sec;

    spw_net_tap_fn tap; /* tests: sees every frame sent */
    void *tap_ctx;

    /* Time source: spw__now_ns, or a test's (spw__net_set_clock). */
    uint64_t (*clock)(void *ctx);
    void *clock_ctx;
};

static inline uint64_t net_now(const spw_net *n)
{
    return n->clock ? n->clock(n->clock_ctx) : spw__now_ns();
}

/* NACKs per partial message at most; beyond, the sender's own timer acts. */
#define NACK_MAX 8u

/* Time since t; 0 when t was stamped after `now` was read. */
static inline uint64_t since(uint64_t now, uint64_t t)
{
    return now > t ? now - t : 0;
}

static inline bool key_eq(const net_key *a, const net_key *b)
{
    return a->id == b->id && a->ip == b->ip && a->port == b->port && a->type == b->type;
}

static inline net_key make_key(const spw_net_addr *a, uint8_t type, uint64_t id)
{
    net_key k = {.id = id, .ip = a->ip, .port = a->port, .type = type, .pad = 0};
    return k;
}

/* Bytes of a kept outgoing message's fragment array: its buffers and when
 * each one reaches the peer. */
#define SPW_NET_KEPT_BYTES(count) ((sizeof(spw_netbuf) + sizeof(uint64_t)) * (size_t)(count))

/* table.c */
/* Fills a configuration's zeros with the defaults and checks its limits
 * (also declared for the server, which derives its limits from it). */
int spw__net_config_defaults(spw_net_config *c);

int spw__net_tbl_init(net_tbl *t, uint32_t cap);
net_ent *spw__net_tbl_find(net_tbl *t, const net_key *k);
/* Caller makes room first: returns NULL only when the table is full. */
net_ent *spw__net_tbl_insert(net_tbl *t, const net_key *k);
void spw__net_tbl_unlink(net_tbl *t, net_ent *e);
/* Releases every entry and the table's memory. */
void spw__net_tbl_drain(spw_net *n, net_tbl *t);
bool spw__net_done_has(const spw_net *n, const net_key *k);
void spw__net_done_add(spw_net *n, const net_key *k);

/* msgpool.c */
void *spw__net_pool_get(net_pool *p, size_t bytes);
/* Puts count blocks for `bytes` on their free list now (at open). */
int spw__net_pool_reserve(net_pool *p, size_t bytes, uint32_t count);
void spw__net_pool_put(net_pool *p, void *block);
void spw__net_pool_fini(net_pool *p);
net_msg *spw__net_msg_new(spw_net *n, int nbufs);
void spw__net_bufs_free(spw_net *n, spw_netbuf *b, int count);
/* Frees an entry's fragments and unlinks it from its table. */
void spw__net_ent_release(spw_net *n, net_tbl *t, net_ent *e);
void spw__net_ready_push(spw_net *n, spw_net_msg *m);
/* A local ERROR for a kept request (given up or evicted). */
void spw__net_local_event(spw_net *n, const net_ent *o, int status);

/* tx.c */
/* Sends frames (keeping the caller's references), through the shaper when
 * link emulation is on; arrive[i] gets when frame i reaches the peer. */
void spw__net_xmit(spw_net *n, const spw_net_addr *dst, spw_netbuf *const *bufs, int count,
                   uint64_t *arrive);
/* The same without sealing (protocol 1, and protocol 2's handshake frames). */
void spw__net_xmit_raw(spw_net *n, const spw_net_addr *dst, spw_netbuf *const *bufs, int count,
                       uint64_t *arrive);
/* Header version for frames this endpoint writes. */
static inline uint8_t spw__net_version(const spw_net *n)
{
    return n->secure ? SPW_PROTO_VERSION2 : SPW_PROTO_VERSION;
}
void spw__net_wire_tx(spw_net *n, const spw_net_addr *dst, spw_netbuf *const *bufs, int count);
/* One single-buffer control frame (NACK, PING). */
int spw__net_ctrl_send(spw_net *n, const spw_net_addr *dst, const spw_proto_hdr *h,
                       const void *payload, uint32_t len);
void spw__net_on_nack(spw_net *n, const spw_netbuf *b, const spw_proto_hdr *h);
bool spw__net_resend_answer(spw_net *n, const spw_net_addr *from, uint64_t id, uint64_t now,
                            uint32_t budget);
void spw__net_tx_timers(spw_net *n, uint64_t now);
/* The peer has our message (type, id) whole: a request waits for its
 * answer, an answer is released; an RTT sample when it was sent once. */
void spw__net_on_ack(spw_net *n, const spw_netbuf *b, const spw_proto_hdr *h, uint64_t now);
/* ACK for message (type, id) to dst. */
void spw__net_send_ack(spw_net *n, const spw_net_addr *dst, uint8_t type, uint64_t id);
/* The answer to request o came: a sample of the server's time, and o is
 * released. */
void spw__net_request_answered(spw_net *n, net_ent *o, uint64_t now);
/* Interval between keep-alive probes of an ACKed request. */
uint64_t spw__net_keepalive_ns(const spw_net *n);

/* rx.c */
void spw__net_on_frame(spw_net *n, spw_netbuf *b, uint64_t now);
void spw__net_rx_round(spw_net *n, uint64_t now);
void spw__net_rx_timers(spw_net *n, uint64_t now);

/* secure.c (protocol 2). Frames handed to spw__net_xmit stay plaintext:
 * every transmission seals a copy into a fresh buffer with a fresh counter,
 * so a buffer given to the transport is never written again. */
int spw__sec_open(spw_net *n);
void spw__sec_close(spw_net *n);
void spw__sec_xmit(spw_net *n, const spw_net_addr *dst, spw_netbuf *const *bufs, int count,
                   uint64_t *arrive);
/* Whether frames for dst would be sealed and sent now; a client without a
 * session starts its handshake. session: as spw_net_msg.session. */
bool spw__sec_ready(spw_net *n, const spw_net_addr *dst, uint32_t session);
/* A version 2 frame: handshake frames are handled here (returns 1: consumed,
 * the caller frees b); sealed ones are authenticated and opened in place
 * (0: go on with the plaintext; < 0: dropped and counted, the caller frees). */
int spw__sec_rx(spw_net *n, spw_netbuf *b, spw_proto_hdr *h, uint64_t now);
void spw__sec_timers(spw_net *n, uint64_t now);
/* The clock changed (tests): timers restart from now. */
void spw__sec_rebase(spw_net *n, uint64_t now);
/* When the handshake next needs attention (UINT64_MAX: nothing to do). */
uint64_t spw__sec_next_ns(const spw_net *n);
/* A client's ping before its session exists is sent once it does. True when
 * the token was kept for later. */
bool spw__sec_hold_ping(spw_net *n, const spw_net_addr *dst, uint64_t token);

/* emulate.c: all no-ops (and configurations asking for them refused) when
 * built without SPW_NET_EMULATION. */
int spw__net_emulation_open(spw_net *n);
void spw__net_emulation_close(spw_net *n);
/* Queues frames on the emulated link; arrive as for spw__net_xmit. */
void spw__net_shape(spw_net *n, const spw_net_addr *dst, spw_netbuf *const *bufs, int count,
                    uint64_t *arrive, uint64_t now);
void spw__net_shaper_release(spw_net *n, uint64_t now);
/* Passes one received frame through the fault injector to on_frame. */
void spw__net_fault_frame(spw_net *n, spw_netbuf *b, uint64_t now);
/* Releases a frame held back for reordering once it has waited long enough. */
void spw__net_fault_flush(spw_net *n, uint64_t now, bool force);

#endif

/* The transport interface of the netpath: one ops table per transport. Not installed.
 *
 * A transport moves frames: a frame is one UDP payload, i.e. a splitwire
 * header followed by one fragment. It owns the buffers frames live in (mbufs
 * on DPDK, blocks of a heap pool elsewhere), builds whatever lies below the
 * UDP payload (Ethernet/IPv4/UDP on DPDK) and never looks inside the frame.
 * The message layer (netpath/net.c) does everything else.
 *
 * Buffers are reference counted: buf_alloc and rx_burst hand out one
 * reference, buf_ref adds one, buf_free drops one. tx_burst does not consume
 * the caller's reference, so a sender may keep a frame for retransmission;
 * it sets `sent`, and a frame sent before is never written again (a NIC may
 * still be reading it): DPDK puts the lower headers of a resend in a fresh
 * mbuf chained to the kept one.
 */
#ifndef SPW_NETPATH_TRANSPORT_H
#define SPW_NETPATH_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/core/internal.h"
#include "splitwire/net.h"

/* Bytes below the splitwire header on the wire: Ethernet, IPv4, UDP. */
#define SPW_NET_L2L4_LEN 42u
#define SPW_NET_IP_UDP_LEN 28u

typedef struct spw_netbuf {
    uint8_t *frame;    /* splitwire header; may be moved forward within the room */
    uint32_t len;      /* frame bytes */
    uint32_t sent;     /* handed to the wire before (or queued for it): a
                        * transport must not write into it again */
    void *handle;      /* the transport's buffer */
    spw_net_addr from; /* rx: source */
} spw_netbuf;

typedef struct spw_net_transport_ops {
    const char *name;
    /* frame_room: the largest frame; stats: counters the transport may bump
     * (copies, drops). *ctx receives the transport's state. */
    int (*open)(const spw_net_config *cfg, uint32_t frame_room, uint32_t nbufs,
                spw_net_stats *stats, void **ctx);
    void (*close)(void *ctx);
    /* One buffer with frame_room bytes at b->frame and the lower headers'
     * room in front of it. SPW_EAGAIN when the pool is empty. */
    int (*buf_alloc)(void *ctx, spw_netbuf *b);
    void (*buf_ref)(void *ctx, spw_netbuf *b);
    void (*buf_free)(void *ctx, spw_netbuf *b);
    /* Sends frames to dst; returns how many left (a prefix of bufs). */
    int (*tx_burst)(void *ctx, const spw_net_addr *dst, spw_netbuf *const *bufs, int count);
    /* Up to max received frames with a valid lower stack; returns the count. */
    int (*rx_burst)(void *ctx, spw_netbuf *bufs, int max);
    /* Optional: blocks until a frame may be readable or timeout_us passed. */
    void (*wait)(void *ctx, int64_t timeout_us);
    /* Optional, with wait, from any thread: ends a wait in progress (or the
     * next one) early. */
    void (*kick)(void *ctx);
    int (*local_addr)(void *ctx, spw_net_addr *out);
} spw_net_transport_ops;

extern const spw_net_transport_ops spw__net_udp_ops;
extern const spw_net_transport_ops spw__net_memory_ops;
#ifdef SPW_HAVE_DPDK
extern const spw_net_transport_ops spw__net_dpdk_ops;
#endif

/* The memory transport joins with the transport state of another endpoint. */
void *spw__net_transport_ctx(spw_net *net);

/* A heap pool of fixed-size reference-counted blocks (UDP and memory
 * transports). The frame starts at a fixed offset so that the payload behind
 * the splitwire header is 16-byte aligned, as it is in a DPDK mbuf. */
typedef struct spw_net_bufpool {
    uint8_t *mem;
    uint32_t *free_list;
    uint32_t nblk, nfree;
    uint32_t blk_size; /* bytes per block, header included */
} spw_net_bufpool;

int spw__net_bufpool_init(spw_net_bufpool *bp, uint32_t nblk, uint32_t frame_room);
void spw__net_bufpool_fini(spw_net_bufpool *bp);
int spw__net_bufpool_get(spw_net_bufpool *bp, spw_netbuf *b);
void spw__net_bufpool_ref(spw_netbuf *b);
void spw__net_bufpool_put(spw_net_bufpool *bp, spw_netbuf *b);
/* Start of the frame in a block handed out by the pool. */
uint8_t *spw__net_bufpool_frame0(const spw_netbuf *b);

/* Test and fuzz hook: processes one frame as if the transport had received
 * it from `from` (the bytes are copied into a transport buffer). */
int spw__net_inject(spw_net *net, const void *frame, size_t len, const spw_net_addr *from);

/* Test hook: fn sees every frame as it goes to the transport (after
 * sealing and shaping), so a test can check what went on the wire. */
typedef void (*spw_net_tap_fn)(void *ctx, const uint8_t *frame, size_t len,
                               const spw_net_addr *dst);
void spw__net_set_tap(spw_net *net, spw_net_tap_fn fn, void *ctx);

/* Test hook: the endpoint reads time from fn(ctx) instead of the monotonic
 * clock (NULL restores it), so timer behaviour is tested without sleeping. */
void spw__net_set_clock(spw_net *net, uint64_t (*fn)(void *ctx), void *ctx);

#endif

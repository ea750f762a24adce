/* splitwire: the netpath, moving requests and results between client and server. */
#ifndef SPLITWIRE_NET_H
#define SPLITWIRE_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "splitwire/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Overview
 *
 * A spw_net is one endpoint: a transport (kernel UDP, DPDK, or an in-process
 * pair for tests) plus the message layer of docs/PROTOCOL.md on top of it:
 * fragmentation to the path MTU, reassembly with timeouts, selective
 * retransmission on NACK or timeout, duplicate suppression and bounded state.
 * With protocol 2 (the default; see private_key and server_public_key in
 * spw_net_config) a client makes a session with its server by a Noise IK
 * handshake, and every datagram both ways is sealed with the session's
 * keys; forged, replayed and sessionless datagrams are dropped and counted.
 *
 * Sending without copies. spw_net_tx_alloc() hands out a message whose
 * segments are the payload rooms of transport buffers (mbuf data rooms on
 * DPDK): one segment per fragment, each a multiple of 4 bytes. The producer
 * (e.g. spw_codec_encode, whose spw_codec_seg has the same layout as
 * spw_net_seg) writes into them in place; spw_net_send() then writes the
 * protocol headers in front of each used segment and transmits.
 *
 * Receiving without copies. A completed message lists its payload as
 * segments pointing into the received buffers, in order; they stay valid until
 * spw_net_msg_free().
 *
 * Threads: one spw_net is used by one thread at a time. DPDK initialises its
 * EAL once per process, so a process has at most one DPDK spw_net per queue
 * pair of one port (spw_net_config.queues).
 */

typedef struct spw_net spw_net;

typedef enum spw_net_transport {
    SPW_NET_UDP = 0,    /* kernel UDP sockets (sendmmsg/recvmmsg) */
    SPW_NET_DPDK = 1,   /* one DPDK port, one RX/TX queue pair of it (see queues) */
    SPW_NET_MEMORY = 2, /* in-process pair for tests: see memory_pair */
} spw_net_transport;

typedef enum spw_net_msg_type {
    SPW_NET_REQUEST = 1, /* client -> server: an encoded latent */
    SPW_NET_RESULT = 2,  /* server -> client: the answer to a request */
    SPW_NET_ERROR = 3,   /* server -> client: the request failed (payload: text) */
    SPW_NET_NACK = 4,    /* internal: missing fragments; never delivered */
    SPW_NET_PING = 5,    /* answered with PONG by the library, never delivered */
    SPW_NET_PONG = 6,
    SPW_NET_ACK = 7, /* internal: a request arrived whole; never delivered */
} spw_net_msg_type;

/* An IPv4 endpoint. ip and port in host byte order; mac is only used by DPDK. */
typedef struct spw_net_addr {
    uint32_t ip;
    uint16_t port;
    uint8_t mac[6];
} spw_net_addr;

/* Parses "a.b.c.d:port". */
SPW_API int spw_net_addr_parse(const char *s, spw_net_addr *out);

/* Payload memory, same layout as spw_codec_seg. */
typedef struct spw_net_seg {
    void *data;
    size_t size;
} spw_net_seg;

#define SPW_NET_LINK_STEPS 8

/* spw_net_config.cipher */
#define SPW_NET_CIPHER_AUTO 0
#define SPW_NET_CIPHER_CHACHA20 1
#define SPW_NET_CIPHER_AES256GCM 2

typedef struct spw_net_config {
    spw_net_transport transport;
    const char *local; /* "ip:port" to bind (UDP port 0 = any) */
    const char *peer;  /* "ip:port" default destination; NULL for a pure server */
    uint32_t mtu;      /* path MTU (IPv4 packet bytes), 0 = 1500; 576 .. 9000 */

    /* DPDK: EAL arguments as one string, e.g. "--no-huge -m 512
     * --file-prefix c --vdev=net_memif0,role=client,socket=/tmp/s.sock
     * -d /usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0/librte_net_memif.so". */
    const char *eal_args;
    const char *dpdk_port; /* device name; NULL = the first port */
    const char *peer_mac;  /* "aa:bb:cc:dd:ee:ff"; NULL = learned from traffic */
    uint32_t mbufs;        /* mempool size; 0 = derived from the limits below */
    uint32_t link_wait_ms; /* open waits this long for link up (0 = 2000) */
    /* DPDK: RX/TX queue pairs of the port (0 = 1, at most 16) and the pair
     * this endpoint polls. Endpoints of one process, one per pair, share the
     * EAL and the port: the first opened configures every pair (with RSS
     * over addresses and ports where the device has it; net_memif pairs
     * queue i with its peer's queue i) and starts the port. Each pair has
     * its own mempools, so endpoints on different pairs share no lock and
     * may run on different threads. */
    uint32_t queues, queue;

    /* Memory transport: the endpoint created first passes NULL; the second
     * passes the first, and the two are joined. */
    spw_net *memory_pair;

    /* UDP: share the local port with this many server processes
     * (SO_REUSEPORT; 0 = not shared). A socket filter (at most 256) spreads
     * protocol 2 sessions over the group by their id (the process that
     * took the HELLO keeps the session), protocol 1 requests by the low byte
     * of their request id, so every fragment, ACK and NACK of one request
     * reaches the same process; a group that shrank falls back to the
     * kernel's flow hash. */
    uint32_t reuseport;

    /* Message layer; 0 selects the default in brackets. */
    uint32_t max_msg_bytes;         /* largest message accepted [262144] */
    uint32_t max_inflight;          /* partial messages held in total [256] */
    uint32_t max_inflight_per_peer; /* ... and per sender [32] */
    uint32_t max_outstanding;       /* sent messages kept for retransmission [256] */
    uint32_t nack_delay_us;         /* silence on a partial message before NACK [2000] */
    uint32_t reasm_timeout_ms;      /* partial message dropped after this long without a new
                                       fragment (or 16x this in all) [500] */
    uint32_t rto_us;                /* retransmission timeout before an RTT is measured [20000] */
    uint32_t min_rto_us;            /* floor of the measured RTO [5000] */
    uint32_t request_timeout_ms;    /* deadline of a request without its own [2000] */
    uint32_t max_retries;           /* probes without any answer before giving up;
                                       0 = keep probing until the deadline [0] */
    uint32_t retain_ms;             /* results kept for NACKs and repeats [1000] */

    /* Protocol version 2 (docs/PROTOCOL.md): sessions from a Noise IK
     * handshake, every frame sealed (AES-256-GCM or ChaCha20-Poly1305,
     * `cipher` below). A server gives
     * its static private key; a client gives the server's public key and,
     * optionally, its own private key (else one is made for the endpoint),
     * and holds a session with each server address it sends to.
     * Keys are 32 bytes (spw_net_key_load_*), copied at open. Neither key
     * and not insecure: spw_net_open fails with SPW_EINVAL. */
    const uint8_t *private_key;
    const uint8_t *server_public_key;
    /* Protocol version 1: nothing authenticated or encrypted; for
     * benchmarks and tests on a trusted link only. */
    int insecure;
    uint32_t max_sessions;   /* server: sessions held, the idlest replaced [1024] */
    uint32_t handshake_rate; /* server: handshakes a second before a HELLO
                                must echo a cookie [1000] */
    /* Protocol 2's frame AEAD, agreed in the handshake: a client offers,
     * the server picks AES-256-GCM when both sides have it, else
     * ChaCha20-Poly1305. AUTO offers (accepts) AES-256-GCM where the CPU has
     * AES-NI, and ChaCha20-Poly1305 always; the environment variable
     * SPW_NET_CIPHER (chacha20-poly1305, aes-256-gcm, auto) then decides
     * instead. One cipher alone restricts the endpoint to it (AES-256-GCM
     * without AES-NI: SPW_EUNSUPPORTED at open); two endpoints without one
     * in common never complete a handshake. */
    int cipher; /* SPW_NET_CIPHER_* [AUTO] */

    /* Link emulation on transmit: token bucket (rate in bit/s, burst in
     * bytes), one-way delay with jitter and random loss. rate 0 = unlimited.
     * Every frame sent pays for its bytes on the wire (protocol, UDP/IPv4
     * and Ethernet headers included), fragments and resends alike; jitter
     * adds a uniform -jitter .. +jitter to the delay of each burst (frames
     * sent back to back keep their spacing) and never reorders frames. Each
     * endpoint shapes its own transmit side, so a
     * symmetric link is emulated by giving both ends the same values. */
    uint64_t shape_rate_bps;
    uint32_t shape_burst_bytes; /* 0 = one MTU */
    uint32_t shape_delay_us;
    uint32_t shape_jitter_us;
    double shape_loss; /* 0 .. 1 */
    /* Rate steps: from shape_epoch_ns + shape_step_ms[i] on, the rate is
     * shape_step_bps[i] (0 = unlimited); times increasing. The epoch is on
     * the monotonic clock, so two processes on one machine given the same
     * one step together; 0 = when the endpoint opens. */
    uint32_t shape_nsteps;
    uint32_t shape_step_ms[SPW_NET_LINK_STEPS];
    uint64_t shape_step_bps[SPW_NET_LINK_STEPS];
    uint64_t shape_epoch_ns;

    /* Fault injection on receive (tests): probabilities 0 .. 1 per packet. */
    double fault_loss, fault_dup, fault_reorder, fault_truncate, fault_corrupt;
    uint64_t seed; /* for the shaper and the faults; 0 = fixed default */
} spw_net_config;

/*
 * An emulated link: a preset name or "RATE,DELAY[,JITTER[,LOSS]]", then
 * optionally rate steps ";RATE@TIME" (TIME since the epoch, us/ms/s, bare:
 * ms), e.g. "20mbit,20ms;1mbit@10s;20mbit@20s".
 *   presets (rate, one-way delay, jitter): nbiot 100kbit 300ms 50ms,
 *   ltem 1mbit 20ms 5ms, 3g 2mbit 50ms 10ms, 4g 10mbit 20ms 5ms,
 *   wifi 50mbit 3ms 1ms, 5g 200mbit 5ms 1ms, wired 1gbit 100us 0.
 *   RATE: a number with bit, kbit, mbit or gbit (bare: bit/s; "0" or
 *   "inf": unlimited); DELAY, JITTER: a number with us, ms or s (bare: ms);
 *   LOSS: a fraction 0 .. 1 or a percentage ("1%").
 * Sets the shape_* fields of *c (the others untouched; the epoch stays). SPW_EINVAL with a
 * detail on a malformed value. Whether emulation is built in is checked at
 * spw_net_open.
 */
SPW_API int spw_net_link_parse(const char *spec, spw_net_config *c);

/* Whether link emulation (the shape_* and fault_* fields) is built in. */
SPW_API int spw_net_emulation_available(void);

/* Whether the transport was compiled in (DPDK needs libdpdk at build time). */
SPW_API int spw_net_transport_available(spw_net_transport transport);
SPW_API const char *spw_net_transport_name(spw_net_transport transport);

/* Opens an endpoint. DPDK: an EAL or port failure returns SPW_ENODEV with a
 * detail (the caller may fall back to UDP). */
SPW_API int spw_net_open(const spw_net_config *config, spw_net **out);
SPW_API void spw_net_close(spw_net *net);

/* Largest payload of one fragment (a multiple of 4) for this endpoint's MTU. */
SPW_API size_t spw_net_frag_payload(const spw_net *net);
/* Largest message this endpoint accepts or sends (max_msg_bytes in effect). */
SPW_API size_t spw_net_max_msg_bytes(const spw_net *net);

/*
 * A message. On receive every field is filled in and segs points at the
 * payload in place. On send, fill in the header fields; peer may stay zero
 * to use the configured destination (a server sets it to the request's peer).
 */
typedef struct spw_net_msg {
    uint8_t type; /* spw_net_msg_type */
    uint8_t rate_point;
    uint16_t flags; /* application flags, carried as is */
    uint16_t model_id;
    uint16_t c, h, w; /* latent shape */
    uint64_t request_id;
    spw_net_addr peer;
    /* Protocol 2: the session a message arrived on; an answer passes the
     * request's back (with peer) so it is sealed for that session only, and
     * is not sent when the session is gone. 0: the peer's current session. */
    uint32_t session;
    int status;          /* receive: 0, or SPW_ETIMEDOUT for a request given up (local) */
    uint32_t timeout_ms; /* send (requests): deadline from now; 0 = request_timeout_ms */
    size_t bytes;        /* receive: payload bytes; send: capacity */
    int nsegs;
    spw_net_seg *segs;
} spw_net_msg;

/* Transmit buffers for up to capacity payload bytes (at most max_msg_bytes).
 * SPW_EAGAIN when buffers or outstanding slots are exhausted (poll and retry). */
SPW_API int spw_net_tx_alloc(spw_net *net, size_t capacity, spw_net_msg **out);

/*
 * Sends bytes of payload lying in msg->segs from segs[first] + offset on,
 * running to the end of that segment and on through the following ones (the
 * layout spw_codec_encode leaves; a front-filled message passes 0, 0). Every
 * touched segment becomes one fragment. offset and bytes must be multiples of
 * 4. The message is consumed, also on failure. Requests and results are kept
 * for retransmission until answered or expired.
 */
SPW_API int spw_net_send(spw_net *net, spw_net_msg *msg, int first, size_t offset, size_t bytes);

/* Sends a payload gathered from caller memory (copied: counted in stats). */
SPW_API int spw_net_sendv(spw_net *net, const spw_net_msg *hdr, const spw_net_seg *segs, int nsegs);

/*
 * Receives packets, runs timers (NACKs, retransmissions, expiry) and the
 * shaper, waiting up to timeout_us (0 = do not wait, < 0 = no limit) until a
 * message is ready. Returns the number of ready messages or an error.
 */
SPW_API int spw_net_poll(spw_net *net, int64_t timeout_us);

/*
 * Ends a spw_net_poll waiting now on another thread early, or if none is, the
 * next one (it returns 0 when no message is ready). The one call of this API
 * that may be made from any thread while another uses net: a worker tells
 * the thread that drives the transport that it has work for it.
 */
SPW_API int spw_net_wake(spw_net *net);

/* Takes up to max ready messages (polls once without waiting when none is
 * ready). Each must be released with spw_net_msg_free(). */
SPW_API int spw_net_recv(spw_net *net, spw_net_msg **msgs, int max);

/* Copies a received payload to dst (counted in stats); returns bytes copied. */
SPW_API size_t spw_net_msg_copy(spw_net *net, const spw_net_msg *msg, void *dst, size_t cap);

/* Releases a received message or an unsent one from spw_net_tx_alloc(). */
SPW_API void spw_net_msg_free(spw_net *net, spw_net_msg *msg);

/* Sends a PING carrying 8 bytes of token; the PONG comes back as a message. */
SPW_API int spw_net_ping(spw_net *net, const spw_net_addr *dst, uint64_t token);

typedef struct spw_net_stats {
    uint64_t tx_packets, tx_bytes, rx_packets, rx_bytes; /* frames, splitwire bytes */
    uint64_t tx_msgs, rx_msgs;
    /* Payload bytes copied by the library or through the kernel socket API.
     * Copies a DPDK driver makes are in driver_tx/rx_copy_bytes below. */
    uint64_t tx_copy_bytes, rx_copy_bytes;
    uint64_t retransmits, nacks_sent, nacks_received;
    uint64_t acks_sent, acks_received;
    uint64_t probes; /* request fragments resent because nothing came back in time */
    /* Keep-alive probes: 74-byte frames without request payload that ask a
     * server for the ACK of a request it already ACKed (sent, and received
     * by a server), and the interval between them in use. */
    uint64_t keepalives_sent, keepalives_received;
    uint32_t keepalive_us;
    uint64_t nacks_held;       /* NACKs not sent: over the per-message count or byte budget */
    uint64_t pings_unanswered; /* PINGs dropped while not ready (spw_net_set_ready) */
    /* Round-trip estimate from requests' ACKs (RFC 6298): smoothed RTT, its
     * variation and the retransmission timeout in use, in microseconds. */
    uint32_t srtt_us, rttvar_us, rto_us;
    uint64_t rx_invalid;   /* packets failing validation */
    uint64_t rx_duplicate; /* fragments or messages already held or done */
    uint64_t reasm_timeouts, evictions, request_timeouts;
    uint64_t shaper_drops, tx_drops, fault_events;
    /* Protocol 2: datagrams dropped because their tag failed (forged,
     * altered, or sealed under keys this endpoint does not hold), because
     * their counter was seen before (replay), or because they named a session
     * this endpoint does not have; frames not sent for want of a session;
     * handshakes completed (client) or answered (server), cookies sent, and
     * STALE notices (no such session) sent; of the handshakes, those that
     * agreed on AES-256-GCM (the others: ChaCha20-Poly1305). */
    uint64_t rx_auth_fail, rx_replay, rx_no_session, tx_no_session;
    uint64_t handshakes, cookies_sent, stale_sent;
    uint64_t handshakes_aes256gcm;
    /* Failed socket calls (kernel UDP), by cause: tx_errors and rx_errors
     * count every failed send or receive call (a receive with nothing
     * waiting is not a failure); the err_* fields split them by errno, and
     * last_errno is the most recent one. */
    uint64_t tx_errors, rx_errors;
    uint64_t err_nobufs;  /* ENOBUFS, ENOMEM: socket or device queue full */
    uint64_t err_again;   /* EAGAIN on send: the socket buffer is full */
    uint64_t err_refused; /* ECONNREFUSED: an ICMP port unreachable came back */
    uint64_t err_unreach; /* ENETUNREACH, EHOSTUNREACH, EADDRNOTAVAIL: no route */
    uint64_t err_msgsize; /* EMSGSIZE: a frame larger than the path takes */
    uint64_t err_perm;    /* EPERM, EACCES: a firewall refused it */
    uint64_t err_other;
    int last_errno;
    /* Payload bytes the transport's driver copies below the library, each
     * endpoint counting its own side: DPDK net_memif between mbufs and the
     * shared rings (both ways; none on a client in zero-copy mode, whose
     * mbufs the server reads and fills, so its peer counts that one copy),
     * net_af_packet and net_tap to and from the kernel, and the memory
     * transport's copy into its peer (on send). A NIC's DMA is no copy. */
    uint64_t driver_tx_copy_bytes, driver_rx_copy_bytes;
} spw_net_stats;

SPW_API void spw_net_stats_get(const spw_net *net, spw_net_stats *out);

/* Messages this endpoint still keeps: requests not yet answered or given
 * up, answers not yet ACKed or expired (retain_ms). A server draining waits
 * for 0 before it closes, so no answer is lost with it. */
SPW_API size_t spw_net_kept(const spw_net *net);

/* Readiness as health checks see it: a server that is leaving (draining)
 * calls it with false, and PINGs then go unanswered (counted in
 * pings_unanswered) while requests and ACKs are still handled. */
SPW_API void spw_net_set_ready(spw_net *net, bool ready);

/*
 * Makes a new X25519 key pair for protocol version 2 and writes the private
 * key to private_path (mode 0600) and the public key to public_path (either
 * may be NULL); neither file is overwritten if it exists. pub_hex, when not
 * NULL, receives the public key as 64 hex digits and a NUL.
 */
SPW_API int spw_net_keygen(const char *private_path, const char *public_path, char *pub_hex);

/* A fresh key pair in memory (e.g. for an in-process client and server). */
SPW_API int spw_net_keypair(uint8_t private_key[32], uint8_t public_key[32]);
/* Reads a private key file (refused when others may read it). */
SPW_API int spw_net_key_load_private(const char *path, uint8_t private_key[32]);
/* Reads a public key file, or takes 64 hex digits given directly. */
SPW_API int spw_net_key_load_public(const char *hex_or_path, uint8_t public_key[32]);

/* The bound address (useful after binding port 0). */
SPW_API int spw_net_local_addr(const spw_net *net, spw_net_addr *out);

#ifdef __cplusplus
}
#endif
#endif

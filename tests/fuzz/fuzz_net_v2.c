/*
 * Protocol 2 fuzzer: the handshake frames and sealed framing. The input is a
 * flags byte, then frames as in fuzz_net_parse ("len (2 bytes LE) | sender
 * (1 byte) | frame bytes"), received by a protocol 2 server (flags bit 2
 * clear) or client (set). Flags bit 0: a client with a fixed key first
 * completes a real handshake with the server from sender 0's address;
 * bit 1: then every frame from sender 0 is sealed with that session's keys
 * (header fields and payload as the input has them), so the fuzzer gets past
 * authentication into reassembly; bit 3: the endpoint takes ChaCha20-Poly1305
 * only (else AES-256-GCM where the CPU has it), so sealed framing is fuzzed
 * under either AEAD. Senders 1..3 have no session: everything
 * the endpoint sends them, in total, must stay within what they sent.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netpath/proto.h"
#include "netpath/session.h"
#include "netpath/transport.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static spw_keypair server_kp, client_kp;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    spw_log_set_level(SPW_LOG_OFF);
    uint8_t a[32], b[32];
    for (int i = 0; i < 32; i++) {
        a[i] = (uint8_t)(i * 7 + 1);
        b[i] = (uint8_t)(i * 13 + 5);
    }
    if (spw__keypair_from_private(a, &server_kp) || spw__keypair_from_private(b, &client_kp))
        abort();
    return 0;
}

typedef struct watch {
    uint64_t sent[4], got[4]; /* bytes to and from each sender */
    uint8_t welcome[SPW_WELCOME_LEN];
    bool have_welcome;
} watch;

static int sender_of(const spw_net_addr *a)
{
    return a->port == 1 && a->ip >= 0x0a000001u && a->ip <= 0x0a000004u ? (int)(a->ip - 0x0a000001u)
                                                                        : -1;
}

static void tap(void *ctx, const uint8_t *f, size_t len, const spw_net_addr *dst)
{
    watch *w = ctx;
    int s = sender_of(dst);
    if (s >= 0)
        w->sent[s] += len;
    if (len == SPW_PROTO_HDR_LEN + SPW_WELCOME_LEN && f[3] == SPW_PROTO_WELCOME) {
        memcpy(w->welcome, f + SPW_PROTO_HDR_LEN, SPW_WELCOME_LEN);
        w->have_welcome = true;
    }
}

static void drain(spw_net *n)
{
    spw_net_msg *m[8];
    int got;
    while ((got = spw_net_recv(n, m, 8)) > 0)
        for (int i = 0; i < got; i++) {
            size_t total = 0;
            for (int s = 0; s < m[i]->nsegs; s++)
                total += m[i]->segs[s].size;
            if (total != m[i]->bytes)
                abort();
            spw_net_msg_free(n, m[i]);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size)
        return 0;
    uint8_t flags = data[0];
    bool as_client = flags & 4;
    spw_net_config c = {0};
    c.transport = SPW_NET_MEMORY;
    c.local = "127.0.0.2:9000";
    c.mtu = 576;
    c.max_msg_bytes = 16384;
    c.max_inflight = 8;
    c.max_inflight_per_peer = 4;
    c.max_outstanding = 8;
    c.max_sessions = 4;
    c.handshake_rate = 2; /* cookies soon */
    c.nack_delay_us = 1;
    c.mbufs = 256;
    c.cipher = flags & 8 ? SPW_NET_CIPHER_CHACHA20 : SPW_NET_CIPHER_AUTO;
    if (as_client) {
        c.peer = "10.0.0.1:1";
        c.server_public_key = server_kp.pub;
    } else {
        c.private_key = server_kp.priv;
    }
    spw_net *n;
    if (spw_net_open(&c, &n))
        abort();
    watch w = {0};
    spw__net_set_tap(n, tap, &w);
    spw_session_keys keys;
    bool sealing = false;
    uint8_t frame[1024];
    if (!as_client && (flags & 1)) {
        spw_hs_initiator st;
        spw_proto_hdr h = {.version = 2,
                           .type = SPW_PROTO_HELLO,
                           .frag_count = 1,
                           .payload_len = SPW_HELLO_LEN,
                           .msg_len = SPW_HELLO_LEN};
        if (spw__hs_hello(&st, &client_kp, server_kp.pub, 1, SPW_AEAD_ALL,
                          frame + SPW_PROTO_HDR_LEN))
            abort();
        spw__proto_write(frame, &h);
        spw_net_addr from = {.ip = 0x0a000001u, .port = 1};
        w.got[0] += SPW_PROTO_HDR_LEN + SPW_HELLO_LEN;
        (void)spw__net_inject(n, frame, SPW_PROTO_HDR_LEN + SPW_HELLO_LEN, &from);
        /* A handshake with the right keys must succeed. */
        if (!w.have_welcome || spw__hs_read_welcome(&st, w.welcome, &keys))
            abort();
        sealing = flags & 2;
    }
    size_t pos = 1;
    while (pos + 3 <= size) {
        size_t len = (size_t)data[pos] | ((size_t)data[pos + 1] << 8);
        int s = data[pos + 2] % 4;
        spw_net_addr from = {.ip = 0x0a000001u + (uint32_t)s, .port = 1};
        pos += 3;
        len = len > size - pos ? size - pos : len;
        len = len > sizeof(frame) ? sizeof(frame) : len;
        memcpy(frame, data + pos, len);
        pos += len;
        if (sealing && s == 0 && len >= SPW_PROTO_HDR_LEN) {
            frame[2] = SPW_PROTO_VERSION2;
            frame[5] = (uint8_t)(SPW_PROTO_SEALED | (frame[5] & SPW_PROTO_PROBE));
            memset(frame + 16, 0, 4);
            uint64_t ctr;
            spw__st32(frame + SPW_PROTO_NONCE_OFF, keys.id);
            spw__st64(frame + SPW_PROTO_NONCE_OFF + 4, keys.tx.next);
            if (spw__frame_seal(&keys.tx, keys.id, frame, SPW_PROTO_AD_LEN,
                                frame + SPW_PROTO_HDR_LEN, frame + SPW_PROTO_HDR_LEN,
                                len - SPW_PROTO_HDR_LEN, frame + SPW_PROTO_TAG_OFF, &ctr))
                abort();
        }
        w.got[s] += len;
        (void)spw__net_inject(n, frame, len, &from);
        drain(n);
        (void)spw_net_poll(n, 0);
        drain(n);
    }
    /* No amplification towards a sender without a session (a client's
     * only peer, sender 0, is its server: HELLOs go there unasked). */
    for (int s = 1; s < 4; s++)
        if (w.sent[s] > w.got[s])
            abort();
    spw_net_close(n);
    return 0;
}

/* The splitwire wire header (docs/PROTOCOL.md, versions 1 and 2). Not installed.
 *
 * All multi-byte fields are little-endian, like the latent stream they carry.
 *
 *  off size field
 *    0    2 magic "SW"
 *    2    1 version (1 or 2)
 *    3    1 type (spw_net_msg_type)
 *    4    1 header length in bytes (70)
 *    5    1 protocol flags (bit 0: sealed, version 2; bit 1: keep-alive probe)
 *    6    1 rate point
 *    7    1 reserved, 0
 *    8    8 request id
 *   16    4 CRC32C of the header (this field as 0) and the fragment payload
 *           (version 1; 0 in version 2, where the tag covers both)
 *   20    2 application flags
 *   22    2 model id
 *   24    6 latent shape C, H, W
 *   30    2 fragment index
 *   32    2 fragment count
 *   34    2 payload length of this fragment (a multiple of 4)
 *   36    4 message length (sum of all fragment payloads)
 *   40    2 reserved, 0
 *   42   12 nonce: session id (4), counter (8) (version 2 sealed; else 0)
 *   54   16 authentication tag of bytes 0..53 and the payload (else 0)
 *   70      payload
 *
 * 14 + 20 + 8 + 70 = 112: behind Ethernet, IPv4 and UDP the payload starts
 * 16-byte aligned wherever the frame starts so.
 */
#ifndef SPW_NETPATH_PROTO_H
#define SPW_NETPATH_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPW_PROTO_VERSION 1u
#define SPW_PROTO_VERSION2 2u
#define SPW_PROTO_HDR_LEN 70u
#define SPW_PROTO_MAX_FRAGS 4096u
#define SPW_PROTO_TYPE_MAX 7u
/* Version 2: bytes 0..53 are the associated data, the tag follows them. */
#define SPW_PROTO_AD_LEN 54u
#define SPW_PROTO_NONCE_OFF 42u
#define SPW_PROTO_TAG_OFF 54u
#define SPW_PROTO_SEALED 1u
/* A keep-alive probe of a REQUEST the receiver ACKed: one fragment of 4
 * reserved zero bytes, as long as the ACK it asks for, carrying no request
 * payload (docs/PROTOCOL.md). */
#define SPW_PROTO_PROBE 2u
#define SPW_PROTO_PROBE_LEN 4u

/* Version 2's handshake frames: never sealed, single fragments, answered
 * only with frames no larger than themselves. */
enum {
    SPW_PROTO_HELLO = 8,   /* client -> server: Noise IK first message [+ cookie] */
    SPW_PROTO_WELCOME = 9, /* server -> client: second message (session id inside) */
    SPW_PROTO_COOKIE = 10, /* server -> client: echo this in HELLO (server loaded) */
    SPW_PROTO_STALE = 11,  /* server -> client: no session with the id in request_id */
};
#define SPW_PROTO_TYPE_MAX2 11u

/* NACK payload: ref type, reserved, first index, bit count, reserved, then
 * the bitmap (bit i, LSB first: fragment first + i missing), padded to 4. */
#define SPW_PROTO_NACK_FIXED 8u

typedef struct spw_proto_hdr {
    uint8_t version; /* 0 is taken as 1 when writing */
    uint8_t type, pflags, rate_point;
    uint16_t app_flags, model_id, c, h, w;
    uint16_t frag_index, frag_count, payload_len;
    uint32_t msg_len, crc;
    uint64_t request_id;
    uint32_t sid;     /* version 2 sealed: session id from the nonce */
    uint64_t counter; /* ... and the frame's counter */
} spw_proto_hdr;

static inline uint16_t spw__ld16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t spw__ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t spw__ld64(const uint8_t *p)
{
    return (uint64_t)spw__ld32(p) | ((uint64_t)spw__ld32(p + 4) << 32);
}
static inline void spw__st16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void spw__st32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void spw__st64(uint8_t *p, uint64_t v)
{
    spw__st32(p, (uint32_t)v);
    spw__st32(p + 4, (uint32_t)(v >> 32));
}

/* Writes the header in front of payload_len bytes already at frame + 70:
 * version 1 sealed with the CRC; version 2 with zero nonce and tag (sealing
 * fills them) and protocol flag `sealed` on every type but the handshake's.
 * Of h->pflags only SPW_PROTO_PROBE is taken. */
void spw__proto_write(uint8_t *frame, const spw_proto_hdr *h);

/*
 * Validates one frame of len bytes: every length and field is checked here,
 * once, so the message layer can trust the result. 0, SPW_ETRUNC (shorter
 * than its header says), SPW_EFORMAT (bad magic, version or field) or
 * SPW_ECORRUPT (CRC mismatch). max_msg bounds the message length. A version
 * 2 frame's payload is not authenticated here (the session layer does it).
 */
int spw__proto_parse(const uint8_t *frame, size_t len, uint32_t max_msg, spw_proto_hdr *h);

#endif

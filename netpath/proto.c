/* Encoding and strict validation of the splitwire header. */
#include <string.h>

#include "netpath/proto.h"
#include "runtime/core/internal.h"
#include "splitwire/codec.h"
#include "splitwire/net.h"

void spw__proto_write(uint8_t *f, const spw_proto_hdr *h)
{
    bool v2 = h->version == SPW_PROTO_VERSION2;
    f[0] = 'S';
    f[1] = 'W';
    f[2] = v2 ? SPW_PROTO_VERSION2 : SPW_PROTO_VERSION;
    f[3] = h->type;
    f[4] = SPW_PROTO_HDR_LEN;
    f[5] = (uint8_t)((v2 && h->type <= SPW_PROTO_TYPE_MAX ? SPW_PROTO_SEALED : 0) |
                     (h->pflags & SPW_PROTO_PROBE));
    f[6] = h->rate_point;
    f[7] = 0;
    spw__st64(f + 8, h->request_id);
    spw__st32(f + 16, 0);
    spw__st16(f + 20, h->app_flags);
    spw__st16(f + 22, h->model_id);
    spw__st16(f + 24, h->c);
    spw__st16(f + 26, h->h);
    spw__st16(f + 28, h->w);
    spw__st16(f + 30, h->frag_index);
    spw__st16(f + 32, h->frag_count);
    spw__st16(f + 34, h->payload_len);
    spw__st32(f + 36, h->msg_len);
    memset(f + 40, 0, SPW_PROTO_HDR_LEN - 40);
    if (v2)
        return; /* the tag authenticates it all */
    uint32_t crc = spw_crc32c(0, f, SPW_PROTO_HDR_LEN + (size_t)h->payload_len);
    spw__st32(f + 16, crc);
}

int spw__proto_parse(const uint8_t *f, size_t len, uint32_t max_msg, spw_proto_hdr *h)
{
    if (len < SPW_PROTO_HDR_LEN)
        return SPW_ETRUNC;
    if (f[0] != 'S' || f[1] != 'W' || (f[2] != SPW_PROTO_VERSION && f[2] != SPW_PROTO_VERSION2) ||
        f[4] != SPW_PROTO_HDR_LEN)
        return SPW_EFORMAT;
    bool v2 = f[2] == SPW_PROTO_VERSION2;
    h->version = f[2];
    h->type = f[3];
    h->pflags = f[5];
    h->rate_point = f[6];
    h->request_id = spw__ld64(f + 8);
    h->crc = spw__ld32(f + 16);
    h->app_flags = spw__ld16(f + 20);
    h->model_id = spw__ld16(f + 22);
    h->c = spw__ld16(f + 24);
    h->h = spw__ld16(f + 26);
    h->w = spw__ld16(f + 28);
    h->frag_index = spw__ld16(f + 30);
    h->frag_count = spw__ld16(f + 32);
    h->payload_len = spw__ld16(f + 34);
    h->msg_len = spw__ld32(f + 36);
    h->sid = 0;
    h->counter = 0;
    if (h->type < SPW_NET_REQUEST || f[7] || spw__ld16(f + 40))
        return SPW_EFORMAT;
    bool sealed = false;
    if (v2) {
        /* Sealed: every message type; plain: the handshake's only. */
        sealed = (h->pflags & ~SPW_PROTO_PROBE) == SPW_PROTO_SEALED;
        if (sealed ? h->type > SPW_PROTO_TYPE_MAX
                   : (h->pflags || h->type <= SPW_PROTO_TYPE_MAX || h->type > SPW_PROTO_TYPE_MAX2))
            return SPW_EFORMAT;
        if (h->crc)
            return SPW_EFORMAT;
        h->sid = spw__ld32(f + SPW_PROTO_NONCE_OFF);
        h->counter = spw__ld64(f + SPW_PROTO_NONCE_OFF + 4);
    } else if (h->type > SPW_PROTO_TYPE_MAX || (h->pflags & ~SPW_PROTO_PROBE)) {
        return SPW_EFORMAT;
    }
    /* Nonce and tag: zero unless sealed. */
    static const uint8_t zero[SPW_PROTO_HDR_LEN - 42];
    if (!sealed && memcmp(f + 42, zero, sizeof(zero)))
        return SPW_EFORMAT;
    if ((size_t)h->payload_len + SPW_PROTO_HDR_LEN > len)
        return SPW_ETRUNC;
    if ((size_t)h->payload_len + SPW_PROTO_HDR_LEN < len)
        return SPW_EFORMAT;
    if ((h->payload_len & 3u) || h->frag_count == 0 || h->frag_count > SPW_PROTO_MAX_FRAGS ||
        h->frag_index >= h->frag_count || h->msg_len > max_msg || h->payload_len > h->msg_len ||
        (h->msg_len & 3u))
        return SPW_EFORMAT;
    /* Control messages are single fragments. */
    if (h->type >= SPW_NET_NACK && (h->frag_count != 1 || h->msg_len != h->payload_len))
        return SPW_EFORMAT;
    /* A probe: of a REQUEST, one fragment of exactly its 4 bytes. */
    if ((h->pflags & SPW_PROTO_PROBE) &&
        (h->type != SPW_NET_REQUEST || h->frag_count != 1 ||
         h->payload_len != SPW_PROTO_PROBE_LEN || h->msg_len != SPW_PROTO_PROBE_LEN))
        return SPW_EFORMAT;
    if (v2)
        return 0;
    uint32_t crc = spw_crc32c(0, f, 16);
    crc = spw_crc32c(crc, "\0\0\0\0", 4);
    crc = spw_crc32c(crc, f + 20, len - 20);
    if (crc != h->crc)
        return SPW_ECORRUPT;
    return 0;
}

/*
 * Packet parsing and reassembly fuzzer: the input is one flags byte, then a
 * sequence of frames, each "len (2 bytes LE) | sender (1 byte) | frame
 * bytes", fed to one
 * endpoint of the in-process transport as if received. Every frame is parsed
 * and, when valid, goes through reassembly, NACK and duplicate handling.
 * Complete messages must have consistent segments. Flags bit 0 reseals each
 * frame's CRC first, so the fuzzer gets past the checksum into reassembly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netpath/proto.h"
#include "netpath/transport.h"
#include "splitwire/codec.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    spw_log_set_level(SPW_LOG_OFF);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    spw_net_config c = {0};
    c.transport = SPW_NET_MEMORY;
    c.insecure = 1;
    c.local = "127.0.0.2:9000";
    c.mtu = 576;
    c.max_msg_bytes = 16384;
    c.max_inflight = 8;
    c.max_inflight_per_peer = 4;
    c.max_outstanding = 8;
    c.nack_delay_us = 1;
    c.mbufs = 256;
    spw_net *n;
    if (spw_net_open(&c, &n))
        abort();
    /* Also the header parser alone, on the raw input. */
    spw_proto_hdr h;
    (void)spw__proto_parse(data, size, 1u << 20, &h);
    if (!size)
        goto out;
    bool reseal = data[0] & 1;
    size_t pos = 1;
    uint8_t frame[1024];
    while (pos + 3 <= size) {
        size_t len = (size_t)data[pos] | ((size_t)data[pos + 1] << 8);
        spw_net_addr from = {.ip = 0x0a000001u + data[pos + 2] % 4, .port = 1};
        pos += 3;
        len = len > size - pos ? size - pos : len;
        len = len > sizeof(frame) ? sizeof(frame) : len;
        memcpy(frame, data + pos, len);
        if (reseal && len >= SPW_PROTO_HDR_LEN) {
            memset(frame + 16, 0, 4);
            spw__st32(frame + 16, spw_crc32c(0, frame, len));
        }
        (void)spw__net_inject(n, frame, len, &from);
        pos += len;
        spw_net_msg *m[8];
        int got = spw_net_recv(n, m, 8);
        for (int i = 0; i < got; i++) {
            size_t total = 0;
            for (int s = 0; s < m[i]->nsegs; s++) {
                if (m[i]->segs[s].size % 4 || m[i]->segs[s].size > 576)
                    abort();
                /* Touch every byte so ASan checks the segment bounds. */
                volatile uint8_t sink = 0;
                for (size_t b = 0; b < m[i]->segs[s].size; b++)
                    sink ^= ((const uint8_t *)m[i]->segs[s].data)[b];
                (void)sink;
                total += m[i]->segs[s].size;
            }
            if (total != m[i]->bytes)
                abort();
            spw_net_msg_free(n, m[i]);
        }
    }
out:
    spw_net_close(n);
    return 0;
}

/*
 * Table loader fuzzer: arbitrary bytes as table arrays. Whatever loads must
 * code a latent derived from the same bytes and decode it back exactly.
 *
 * Input: byte 0 = channels - 1 (bits 0..2), byte 1 = cdf stride - 1; then per
 * channel a length byte and an offset byte, then cdf entries as u16 deltas
 * (a delta of 0xffff means "+65536", to reach the end), then symbol bytes.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "splitwire/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int C = 1 + (data[0] & 7), stride = 1 + data[1];
    const uint8_t *p = data + 2, *end = data + size;
    int32_t *cdf = calloc((size_t)C * stride, sizeof(int32_t));
    int32_t len[8], off[8];
    float med[8];
    for (int c = 0; c < C; c++) {
        len[c] = p < end ? (int8_t)*p++ : 0;
        off[c] = p < end ? (int8_t)*p++ * 1000003 : 0;
        med[c] = p < end && *p == 0xff ? NAN : (float)c * 0.5f;
    }
    for (int c = 0; c < C; c++) {
        int32_t v = 0;
        for (int i = 0; i < stride && i < 128; i++) {
            if (end - p >= 2) {
                uint32_t dlt = (uint32_t)p[0] | (uint32_t)p[1] << 8;
                v += dlt == 0xffff ? 65536 : (int32_t)dlt - 256;
                p += 2;
            }
            cdf[(size_t)c * stride + i] = v;
        }
    }
    spw_codec_table_desc d = {C, stride, cdf, len, off, med};
    spw_codec_tables *t = NULL;
    if (spw_codec_tables_create(&d, &t) == 0) {
        const int H = 3, W = 5;
        size_t n = (size_t)C * H * W;
        int32_t *sym = malloc(n * sizeof(int32_t)), *out = malloc(n * sizeof(int32_t));
        for (size_t i = 0; i < n; i++) {
            int8_t b = p < end ? (int8_t)*p++ : 0;
            sym[i] = off[i / (H * W)] + b;
        }
        for (int fmt = 0; fmt < 2; fmt++) {
            spw_codec_config cfg = {(spw_codec_format)fmt, 1, 1};
            spw_codec *k = NULL;
            if (spw_codec_create(t, &cfg, &k))
                abort();
            size_t cap = spw_codec_bound(k, C, H, W), got;
            uint8_t *buf = malloc(cap);
            if (spw_codec_encode_buf(k, sym, C, H, W, buf, cap, &got) ||
                spw_codec_decode_buf(k, buf, got, C, H, W, out, NULL) ||
                memcmp(sym, out, n * sizeof(int32_t)))
                abort();
            free(buf);
            spw_codec_free(k);
        }
        free(sym);
        free(out);
        spw_codec_tables_free(t);
    }
    free(cdf);
    return 0;
}

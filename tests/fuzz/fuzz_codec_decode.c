/*
 * Decoder fuzzer: arbitrary bytes as a plain or tiled stream, split into
 * separately allocated segments. Whatever decodes must re-encode and decode
 * to the same symbols.
 *
 * Input: byte 0 = format (bit 0), threads (bit 1), H - 1 (bits 2..4);
 *        byte 1 = W - 1 (bits 0..3), segment size / 4 - 1 (bits 4..7, 0 = one
 *        segment); the rest is the stream.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "splitwire/codec.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define C 3
static spw_codec_tables *tables;
static spw_codec *codecs[4];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* A near-certain bin with a tiny tail, a spread table, a 1-count tail. */
    int32_t cdf[C][12] = {
        {0, 1, 65535, 65536},
        {0, 900, 4000, 12000, 30000, 45000, 56000, 62000, 64500, 65400, 65535, 65536},
        {0, 65535, 65536}};
    int32_t len[C] = {4, 12, 3}, off[C] = {-1, -5, 2};
    float med[C] = {0.0f, 0.5f, -1.0f};
    spw_codec_table_desc d = {C, 12, &cdf[0][0], len, off, med};
    if (spw_codec_tables_create(&d, &tables))
        abort();
    for (int i = 0; i < 4; i++) {
        spw_codec_config cfg = {(spw_codec_format)(i & 1), (i & 2) ? 2 : 1, 2};
        if (spw_codec_create(tables, &cfg, &codecs[i]))
            abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    spw_codec *k = codecs[data[0] & 3];
    int H = 1 + ((data[0] >> 2) & 7), W = 1 + (data[1] & 15);
    size_t piece = (size_t)(data[1] >> 4) * 4;
    data += 2;
    size = (size - 2) & ~(size_t)3;
    size_t n = (size_t)C * H * W;
    int32_t *sym = malloc(n * sizeof(int32_t)), *again = malloc(n * sizeof(int32_t));

    int nsegs = piece ? (int)((size + piece - 1) / piece) : 1;
    spw_codec_seg *segs = calloc((size_t)nsegs + 1, sizeof(*segs));
    size_t at = 0;
    for (int i = 0; i < nsegs; i++) {
        size_t take = piece ? (size - at < piece ? size - at : piece) : size;
        segs[i].data = malloc(take + 1); /* exact blocks: overruns trap */
        memcpy(segs[i].data, data + at, take);
        segs[i].size = take;
        at += take;
    }
    uint8_t bitmap[2];
    spw_codec_report rep = {.bitmap = bitmap, .bitmap_size = sizeof(bitmap)};
    int rc = spw_codec_decode(k, segs, nsegs, C, H, W, sym, &rep);
    if (rc == 0) {
        size_t cap = spw_codec_bound(k, C, H, W), got;
        uint8_t *buf = malloc(cap);
        if (spw_codec_encode_buf(k, sym, C, H, W, buf, cap, &got) ||
            spw_codec_decode_buf(k, buf, got, C, H, W, again, NULL) ||
            memcmp(sym, again, n * sizeof(int32_t)))
            abort();
        free(buf);
    }
    for (int i = 0; i < nsegs; i++)
        free(segs[i].data);
    free(segs);
    free(sym);
    free(again);
    return 0;
}

/* The codec object shared by the plain and tiled paths. */
#ifndef SPW_CODEC_PRIV_H
#define SPW_CODEC_PRIV_H

#include "runtime/codec/codec_internal.h"
#include "runtime/codec/pool.h"

#define SPW_CODEC_MAX_SYMBOLS ((size_t)1 << 31)
#define SPW_CODEC_MAX_THREADS 256

/* Per-tile bookkeeping, reused across calls. */
typedef struct tile_rec {
    int rc;
    int state;           /* decode: TILE_* */
    const uint8_t *data; /* encode: finished tile (header + payload) in scratch */
    size_t len;          /* encode: bytes at data; decode: payload bytes */
    int seg;             /* decode: payload start */
    size_t off;
} tile_rec;

struct spw_codec {
    const spw_codec_tables *t;
    spw_codec_config cfg;
    spw__pool *pool; /* tiled with threads > 1 only */
    uint8_t *scratch;
    size_t scratch_cap;
    tile_rec *tiles;
    int tiles_cap;
};

int spw__codec_check_shape(const spw_codec_tables *t, int C, int H, int W, size_t *n);
int spw__tiled_encode(spw_codec *k, const int32_t *sym, int C, int H, int W, wcur *w);
int spw__tiled_decode(spw_codec *k, const spw_codec_seg *segs, int nsegs, size_t total, int C,
                      int H, int W, int32_t *sym, spw_codec_report *rep);

#endif

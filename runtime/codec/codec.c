/* The codec object: argument checks, plain streams, quantisation. */
#include <math.h>

#include "runtime/codec/codec_priv.h"

int spw__codec_check_shape(const spw_codec_tables *t, int C, int H, int W, size_t *n)
{
    if (C != t->channels)
        return spw__error(SPW_ESHAPE, "codec: latent has %d channels, the tables %d", C,
                          t->channels);
    if (H < 1 || W < 1)
        return spw__error(SPW_ESHAPE, "codec: latent shape %dx%dx%d", C, H, W);
    size_t hw, chw;
    if (!spw__mul_ok((size_t)H, (size_t)W, &hw) || !spw__mul_ok(hw, (size_t)C, &chw) ||
        chw > SPW_CODEC_MAX_SYMBOLS)
        return spw__error(SPW_ESHAPE, "codec: latent %dx%dx%d has too many symbols", C, H, W);
    if (n)
        *n = chw;
    return 0;
}

int spw_codec_create(const spw_codec_tables *t, const spw_codec_config *cfg, spw_codec **out)
{
    if (!t || !out)
        return spw__error(SPW_EINVAL, "codec: NULL argument");
    *out = NULL;
    spw_codec_config c = cfg ? *cfg : (spw_codec_config){0};
    if (c.format != SPW_CODEC_PLAIN && c.format != SPW_CODEC_TILED)
        return spw__error(SPW_EINVAL, "codec: unknown format %d", (int)c.format);
    if (c.threads < 0 || c.threads > SPW_CODEC_MAX_THREADS)
        return spw__error(SPW_EINVAL, "codec: %d threads (0..%d)", c.threads,
                          SPW_CODEC_MAX_THREADS);
    if (c.tile_rows < 0 || c.tile_rows > SPW_CODEC_MAX_TILES)
        return spw__error(SPW_EINVAL, "codec: %d rows per tile (0..%d)", c.tile_rows,
                          SPW_CODEC_MAX_TILES);
    spw_codec *k = spw__calloc(1, sizeof(*k));
    if (!k)
        return spw__error(SPW_ENOMEM, "codec: out of memory");
    k->t = t;
    k->cfg = c;
    int rc;
    if (c.format == SPW_CODEC_TILED && c.threads > 1) {
        rc = spw__pool_create(c.threads - 1, &k->pool);
        if (rc)
            goto fail_pool;
    }
    *out = k;
    return 0;

fail_pool:
    spw__free(k);
    return rc;
}

void spw_codec_free(spw_codec *k)
{
    if (!k)
        return;
    spw__pool_free(k->pool);
    spw__free(k->scratch);
    spw__free(k->tiles);
    spw__free(k);
}

int spw_codec_tile_rows(const spw_codec *k, int H, int W)
{
    if (!k || H < 1 || W < 1)
        return 0;
    if (k->cfg.format != SPW_CODEC_TILED)
        return H;
    int rows = k->cfg.tile_rows;
    if (!rows) {
        /* Rows whose expected size under the tables fills the target. */
        double bits = 0;
        for (int c = 0; c < k->t->channels; c++)
            bits += k->t->chan[c].entropy;
        double per_row = bits * W / 8.0;
        double r = per_row > 0 ? SPW_CODEC_TILE_TARGET / per_row : H;
        rows = r >= H ? H : r < 1 ? 1 : (int)r;
    }
    rows = SPW_MIN(SPW_MIN(rows, H), SPW_CODEC_MAX_TILES);
    /* Never more tiles than the header's index can name. */
    int min_rows = (int)(((int64_t)H + SPW_CODEC_MAX_TILES - 1) / SPW_CODEC_MAX_TILES);
    return SPW_MAX(rows, min_rows);
}

int spw_codec_tile_count(const spw_codec *k, int H, int W)
{
    int rows = spw_codec_tile_rows(k, H, W);
    return rows ? (H + rows - 1) / rows : 0;
}

size_t spw_codec_bound(const spw_codec *k, int C, int H, int W)
{
    if (!k || spw__codec_check_shape(k->t, C, H, W, NULL))
        return 0;
    if (k->cfg.format != SPW_CODEC_TILED)
        return spw__rans_bound((size_t)C * H * W);
    int rows = spw_codec_tile_rows(k, H, W);
    size_t total = 0;
    for (int r0 = 0; r0 < H; r0 += rows) {
        size_t n = (size_t)C * (size_t)SPW_MIN(rows, H - r0) * (size_t)W;
        total += SPW_CODEC_TILE_HEADER + spw__rans_bound(n);
    }
    return total;
}

/* ---- plain streams ------------------------------------------------------------ */

int spw_codec_encode(spw_codec *k, const int32_t *sym, int C, int H, int W,
                     const spw_codec_seg *segs, int nsegs, spw_codec_span *span)
{
    if (!k || !sym || !span)
        return spw__error(SPW_EINVAL, "codec: NULL argument");
    memset(span, 0, sizeof(*span));
    size_t n;
    int rc = spw__codec_check_shape(k->t, C, H, W, &n);
    if (rc || (rc = spw__codec_check_segs(segs, nsegs, NULL)))
        return rc;
    wcur w;
    spw__wcur_init(&w, segs, nsegs);
    if (k->cfg.format == SPW_CODEC_TILED) {
        rc = spw__tiled_encode(k, sym, C, H, W, &w);
    } else {
        sym_block b = {C, (size_t)H * (size_t)W, (size_t)H * (size_t)W};
        rc = spw__rans_encode(k->t, sym, &b, &w);
    }
    if (rc)
        return rc;
    span->first = w.seg;
    span->offset = (size_t)(w.p - w.lo);
    span->bytes = w.bytes;
    return 0;
}

int spw_codec_encode_buf(spw_codec *k, const int32_t *sym, int C, int H, int W, void *buf,
                         size_t cap, size_t *len)
{
    if (!len || (!buf && cap))
        return spw__error(SPW_EINVAL, "codec: NULL argument");
    *len = 0;
    spw_codec_seg seg = {buf, cap & ~(size_t)3};
    spw_codec_span span = {0, 0, 0};
    int rc = spw_codec_encode(k, sym, C, H, W, &seg, 1, &span);
    if (rc)
        return rc;
    if (span.bytes)
        memmove(buf, (uint8_t *)buf + span.offset, span.bytes);
    *len = span.bytes;
    return 0;
}

static void report_init(spw_codec_report *rep)
{
    if (!rep)
        return;
    rep->tiles = rep->decoded = rep->corrupt = 0;
    if (rep->bitmap && rep->bitmap_size)
        memset(rep->bitmap, 0, rep->bitmap_size);
}

int spw_codec_decode(spw_codec *k, const spw_codec_seg *segs, int nsegs, int C, int H, int W,
                     int32_t *sym, spw_codec_report *rep)
{
    report_init(rep);
    if (!k || !sym)
        return spw__error(SPW_EINVAL, "codec: NULL argument");
    size_t n, total;
    int rc = spw__codec_check_shape(k->t, C, H, W, &n);
    if (rc || (rc = spw__codec_check_segs(segs, nsegs, &total)))
        return rc;
    if (k->cfg.format == SPW_CODEC_TILED) {
        return spw__tiled_decode(k, segs, nsegs, total, C, H, W, sym, rep);
    }
    rcur r;
    spw__rcur_init(&r, segs, nsegs, 0, 0, total);
    sym_block b = {C, (size_t)H * (size_t)W, (size_t)H * (size_t)W};
    rc = spw__rans_decode(k->t, &r, &b, sym);
    if (rep) {
        rep->tiles = 1;
        rep->decoded = rc == 0;
        rep->corrupt = rc != 0;
        if (rep->bitmap && rep->bitmap_size)
            rep->bitmap[0] = rc == 0;
    }
    return rc;
}

int spw_codec_decode_buf(spw_codec *k, const void *buf, size_t len, int C, int H, int W,
                         int32_t *sym, spw_codec_report *rep)
{
    if (!buf && len) {
        report_init(rep);
        return spw__error(SPW_EINVAL, "codec: NULL argument");
    }
    if (len % 4) {
        report_init(rep);
        return spw__error(SPW_ETRUNC, "codec: stream of %zu bytes is not whole 32-bit words", len);
    }
    spw_codec_seg seg = {(void *)buf, len};
    return spw_codec_decode(k, &seg, 1, C, H, W, sym, rep);
}

/* ---- quantisation --------------------------------------------------------------- */

int spw_codec_quantize(const spw_codec_tables *t, const float *y, int C, int H, int W, int32_t *sym)
{
    if (!t || !y || !sym)
        return spw__error(SPW_EINVAL, "codec: NULL argument");
    int rc = spw__codec_check_shape(t, C, H, W, NULL);
    if (rc)
        return rc;
    size_t hw = (size_t)H * (size_t)W;
    for (int c = 0; c < C; c++) {
        const float m = t->chan[c].median;
        const float *src = y + (size_t)c * hw;
        int32_t *dst = sym + (size_t)c * hw;
        for (size_t i = 0; i < hw; i++) {
            dst[i] = spw__round_i32(src[i] - m);
        }
    }
    return 0;
}

int spw_codec_dequantize(const spw_codec_tables *t, const int32_t *sym, int C, int H, int W,
                         float *y)
{
    if (!t || !y || !sym)
        return spw__error(SPW_EINVAL, "codec: NULL argument");
    int rc = spw__codec_check_shape(t, C, H, W, NULL);
    if (rc)
        return rc;
    size_t hw = (size_t)H * (size_t)W;
    for (int c = 0; c < C; c++) {
        const float m = t->chan[c].median;
        for (size_t i = 0; i < hw; i++)
            y[(size_t)c * hw + i] = (float)sym[(size_t)c * hw + i] + m;
    }
    return 0;
}

/*
 * Tiled streams: the latent is cut into bands of rows, each band coded as an
 * independent rANS stream (all channels of those rows, C,H,W order inside)
 * behind a 16-byte header:
 *
 *   0  u8   'S' (0x53)
 *   1  u8   version (1)
 *   2  u16  tile index
 *   4  u16  rows per tile (the last tile may have fewer)
 *   6  u16  low 16 bits of CRC32C(C, H, W as u32 | bytes 0..5 | bytes 8..15)
 *   8  u32  payload bytes (multiple of 4, >= 8)
 *   12 u32  CRC32C of the payload
 *
 * Bands rather than channel groups: the prior is factorized, so cutting costs
 * nothing but the header and the flushed state, and a lost band leaves a
 * spatially local hole in every channel, which the server's decoder handles
 * better than whole channels gone. The header check lets the reader trust a
 * length before it CRCs a payload, so resynchronising after damage costs
 * O(stream) work even on adversarial input, and seeding it with the shape
 * makes a shape mismatch fail every header instead of decoding garbage.
 */
#include "runtime/codec/codec_priv.h"

enum { TILE_MISSING = 0, TILE_FOUND, TILE_DECODED, TILE_FAILED };

static int ensure_tiles(spw_codec *k, int n)
{
    if (n <= k->tiles_cap)
        return 0;
    tile_rec *t = spw__realloc(k->tiles, (size_t)n * sizeof(*t));
    if (!t)
        return spw__error(SPW_ENOMEM, "codec: no memory for %d tiles", n);
    k->tiles = t;
    k->tiles_cap = n;
    return 0;
}

static uint16_t header_check(const uint8_t h[16], int C, int H, int W)
{
    uint8_t geo[12];
    wr32(geo, (uint32_t)C);
    wr32(geo + 4, (uint32_t)H);
    wr32(geo + 8, (uint32_t)W);
    uint32_t crc = spw_crc32c(0, geo, sizeof(geo));
    crc = spw_crc32c(crc, h, 6);
    crc = spw_crc32c(crc, h + 8, 8);
    return (uint16_t)crc;
}

static void header_build(uint8_t h[16], int idx, int rows, size_t len, uint32_t crc, int C, int H,
                         int W)
{
    h[0] = 'S';
    h[1] = 1;
    wr16(h + 2, (uint16_t)idx);
    wr16(h + 4, (uint16_t)rows);
    wr32(h + 8, (uint32_t)len);
    wr32(h + 12, crc);
    wr16(h + 6, header_check(h, C, H, W));
}

/* CRC32C of len bytes from (seg, off) on, across segment boundaries. */
static uint32_t crc_range(const spw_codec_seg *segs, int nsegs, int seg, size_t off, size_t len)
{
    uint32_t crc = 0;
    for (; len && seg < nsegs; seg++, off = 0) {
        size_t take = SPW_MIN(segs[seg].size - off, len);
        crc = spw_crc32c(crc, (const uint8_t *)segs[seg].data + off, take);
        len -= take;
    }
    return crc;
}

/* ---- encoder --------------------------------------------------------------- */

typedef struct enc_job {
    spw_codec *k;
    const int32_t *sym;
    int C, H, W, rows;
    size_t *region; /* scratch offsets, one per tile plus the end */
} enc_job;

static void tile_block(int i, int rows, int C, int H, int W, sym_block *b, size_t *first)
{
    int r0 = i * rows, nr = SPW_MIN(rows, H - r0);
    b->C = C;
    b->n = (size_t)nr * (size_t)W;
    b->stride = (size_t)H * (size_t)W;
    *first = (size_t)r0 * (size_t)W;
}

/* One tile, header included, into a writer positioned after where it ends. */
static int encode_tile(const spw_codec *k, const int32_t *sym, int i, int rows, int C, int H, int W,
                       wcur *w)
{
    sym_block b;
    size_t first;
    tile_block(i, rows, C, H, W, &b, &first);
    size_t before = w->bytes;
    int rc = spw__rans_encode(k->t, sym + first, &b, w);
    if (rc)
        return rc;
    size_t len = w->bytes - before;
    uint32_t crc = crc_range(w->segs, w->nsegs, w->seg, (size_t)(w->p - w->lo), len);
    uint8_t h[16];
    header_build(h, i, rows, len, crc, C, H, W);
    for (int q = 12; q >= 0; q -= 4)
        if ((rc = spw__wcur_put(w, rd32(h + q))))
            return rc;
    return 0;
}

static void encode_worker(void *ctx, int i)
{
    enc_job *j = ctx;
    tile_rec *tr = &j->k->tiles[i];
    spw_codec_seg seg = {j->k->scratch + j->region[i], j->region[i + 1] - j->region[i]};
    wcur w;
    spw__wcur_init(&w, &seg, 1);
    tr->rc = encode_tile(j->k, j->sym, i, j->rows, j->C, j->H, j->W, &w);
    tr->data = w.p;
    tr->len = w.bytes;
}

/* Copies a finished tile in front of what the writer already holds. */
static int put_bytes_back(wcur *w, const uint8_t *src, size_t len)
{
    while (len) {
        size_t room = w->p ? (size_t)(w->p - w->lo) : 0;
        if (!room) {
            /* spw__wcur_put moves to the previous segment, or fails. */
            int rc = spw__wcur_put(w, rd32(src + len - 4));
            if (rc)
                return rc;
            len -= 4;
            continue;
        }
        size_t take = SPW_MIN(room, len);
        w->p -= take;
        memcpy(w->p, src + len - take, take);
        w->bytes += take;
        len -= take;
    }
    return 0;
}

int spw__tiled_encode(spw_codec *k, const int32_t *sym, int C, int H, int W, wcur *w)
{
    int rows = spw_codec_tile_rows(k, H, W);
    int n = (H + rows - 1) / rows;
    int rc;
    if (!k->pool) {
        /* Straight into the caller's segments, last tile first. */
        for (int i = n - 1; i >= 0; i--)
            if ((rc = encode_tile(k, sym, i, rows, C, H, W, w)))
                return rc;
        return 0;
    }
    /* Tiles finish in any order and at unknown sizes, so workers code into
     * scratch (worst-case regions) and the caller then copies them out. */
    if ((rc = ensure_tiles(k, n)))
        return rc;
    size_t *region = spw__malloc(((size_t)n + 1) * sizeof(size_t));
    if (!region)
        return spw__error(SPW_ENOMEM, "codec: no memory for %d tiles", n);
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        region[i] = total;
        total += SPW_CODEC_TILE_HEADER +
                 spw__rans_bound((size_t)C * (size_t)SPW_MIN(rows, H - i * rows) * (size_t)W);
    }
    region[n] = total;
    if (total > k->scratch_cap) {
        uint8_t *s = spw__malloc(total);
        if (!s) {
            rc = spw__error(SPW_ENOMEM, "codec: no memory for %zu bytes of scratch", total);
            goto fail_region;
        }
        spw__free(k->scratch);
        k->scratch = s;
        k->scratch_cap = total;
    }
    enc_job job = {k, sym, C, H, W, rows, region};
    spw__pool_run(k->pool, encode_worker, &job, n);
    for (int i = n - 1; i >= 0; i--) {
        if ((rc = k->tiles[i].rc))
            goto fail_region;
        if ((rc = put_bytes_back(w, k->tiles[i].data, k->tiles[i].len)))
            goto fail_region;
    }
    rc = 0;
fail_region:
    spw__free(region);
    return rc;
}

/* ---- decoder --------------------------------------------------------------- */

/* A position in the segments' concatenation. */
typedef struct pos {
    int seg;
    size_t off, abs;
} pos;

static void pos_fix(const spw_codec_seg *segs, int nsegs, pos *p)
{
    while (p->seg < nsegs && p->off >= segs[p->seg].size) {
        p->off -= segs[p->seg].size;
        p->seg++;
    }
}

static void pos_advance(const spw_codec_seg *segs, int nsegs, pos *p, size_t n)
{
    p->off += n;
    p->abs += n;
    pos_fix(segs, nsegs, p);
}

/* Copies n bytes at p (the caller checked they exist). */
static void pos_read(const spw_codec_seg *segs, int nsegs, pos p, uint8_t *dst, size_t n)
{
    while (n && p.seg < nsegs) {
        size_t take = SPW_MIN(segs[p.seg].size - p.off, n);
        memcpy(dst, (const uint8_t *)segs[p.seg].data + p.off, take);
        dst += take;
        n -= take;
        p.seg++;
        p.off = 0;
        pos_fix(segs, nsegs, &p);
    }
}

typedef struct dec_job {
    spw_codec *k;
    const spw_codec_seg *segs;
    int nsegs, C, H, W, rows;
    int32_t *sym;
} dec_job;

static void zero_rows(int32_t *sym, int C, int H, int W, int r0, int nr)
{
    size_t hw = (size_t)H * (size_t)W;
    for (int c = 0; c < C; c++)
        memset(sym + (size_t)c * hw + (size_t)r0 * (size_t)W, 0,
               (size_t)nr * (size_t)W * sizeof(int32_t));
}

static void decode_worker(void *ctx, int i)
{
    dec_job *j = ctx;
    tile_rec *tr = &j->k->tiles[i];
    int r0 = i * j->rows, nr = SPW_MIN(j->rows, j->H - r0);
    if (tr->state == TILE_FOUND) {
        sym_block b;
        size_t first;
        tile_block(i, j->rows, j->C, j->H, j->W, &b, &first);
        rcur r;
        spw__rcur_init(&r, j->segs, j->nsegs, tr->seg, tr->off, tr->len);
        tr->rc = spw__rans_decode(j->k->t, &r, &b, j->sym + first);
        tr->state = tr->rc ? TILE_FAILED : TILE_DECODED;
        if (tr->rc)
            SPW_LOGD("codec: tile %d: %s", i, spw_error_detail());
    }
    if (tr->state != TILE_DECODED)
        zero_rows(j->sym, j->C, j->H, j->W, r0, nr);
}

/* Checks a header's own fields; false means "not a header here". */
static bool header_ok(const uint8_t h[16], int C, int H, int W, size_t avail, int *idx, int *rows,
                      size_t *len)
{
    if (h[0] != 'S' || h[1] != 1 || rd16(h + 6) != header_check(h, C, H, W))
        return false;
    int r = rd16(h + 4), i = rd16(h + 2);
    size_t l = rd32(h + 8);
    if (r < 1 || r > H || i >= (H + r - 1) / r)
        return false;
    int nr = SPW_MIN(r, H - i * r);
    if (l < 8 || l % 4 || l > avail || l > spw__rans_bound((size_t)C * (size_t)nr * (size_t)W))
        return false;
    *idx = i;
    *rows = r;
    *len = l;
    return true;
}

int spw__tiled_decode(spw_codec *k, const spw_codec_seg *segs, int nsegs, size_t total, int C,
                      int H, int W, int32_t *sym, spw_codec_report *rep)
{
    int rows = 0, ntiles = 0, corrupt = 0, rc;
    bool in_junk = false;
    pos p = {0, 0, 0};
    pos_fix(segs, nsegs, &p);
    /* The most tiles any tile height could give; the real count is known
     * once the first header is trusted. */
    if ((rc = ensure_tiles(k, SPW_MIN(H, SPW_CODEC_MAX_TILES))))
        return rc;
    for (int i = 0; i < k->tiles_cap; i++)
        k->tiles[i].state = TILE_MISSING;

    while (total - p.abs >= SPW_CODEC_TILE_HEADER) {
        uint8_t h[SPW_CODEC_TILE_HEADER];
        pos_read(segs, nsegs, p, h, sizeof(h));
        int idx, r;
        size_t len;
        if (!header_ok(h, C, H, W, total - p.abs - sizeof(h), &idx, &r, &len)) {
            /* Damage: slide a word at a time to the next plausible header. */
            corrupt += !in_junk;
            in_junk = true;
            pos_advance(segs, nsegs, &p, 4);
            continue;
        }
        in_junk = false;
        pos payload = p;
        pos_advance(segs, nsegs, &payload, sizeof(h));
        bool good = rows == 0 || r == rows;
        if (good && rows == 0) {
            rows = r;
            ntiles = (H + rows - 1) / rows;
        }
        if (good && rd32(h + 12) != crc_range(segs, nsegs, payload.seg, payload.off, len))
            good = false;
        if (!good) {
            corrupt++;
        } else if (k->tiles[idx].state == TILE_MISSING) {
            tile_rec *tr = &k->tiles[idx];
            tr->state = TILE_FOUND;
            tr->seg = payload.seg;
            tr->off = payload.off;
            tr->len = len;
        }
        p = payload;
        pos_advance(segs, nsegs, &p, len);
    }
    corrupt += total - p.abs > 0 && !in_junk; /* a torn last tile */

    if (!rows) {
        memset(sym, 0, (size_t)C * (size_t)H * (size_t)W * sizeof(int32_t));
        if (rep) {
            rep->tiles = spw_codec_tile_count(k, H, W);
            rep->corrupt = corrupt;
        }
        if (total < SPW_CODEC_TILE_HEADER)
            return spw__error(SPW_ETRUNC, "codec: %zu bytes cannot hold a tile", total);
        return spw__error(SPW_ECORRUPT,
                          "codec: no valid tile in %zu bytes (not a tiled stream, or another "
                          "shape than %dx%dx%d?)",
                          total, C, H, W);
    }

    dec_job job = {k, segs, nsegs, C, H, W, rows, sym};
    spw__pool_run(k->pool, decode_worker, &job, ntiles);
    int decoded = 0;
    for (int i = 0; i < ntiles; i++) {
        decoded += k->tiles[i].state == TILE_DECODED;
        corrupt += k->tiles[i].state == TILE_FAILED;
    }
    if (rep) {
        rep->tiles = ntiles;
        rep->decoded = decoded;
        rep->corrupt = corrupt;
        if (rep->bitmap)
            for (int i = 0; i < ntiles && (size_t)(i / 8) < rep->bitmap_size; i++)
                if (k->tiles[i].state == TILE_DECODED)
                    rep->bitmap[i / 8] |= (uint8_t)(1u << (i % 8));
    }
    if (!decoded)
        return spw__error(SPW_ECORRUPT, "codec: none of %d tiles decoded", ntiles);
    return 0;
}

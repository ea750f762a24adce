/* Entropy tables: validation at load and the precomputed coder structures. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "runtime/codec/codec_internal.h"

/* Mode probability from which testing the mode first pays (mispredictions
 * cost more than the lookup below it). */
#ifndef MODE_FAST_FREQ
#define MODE_FAST_FREQ 32768 /* 0.5, measured best */
#endif

/* Everything the tables need lives in one block, carved in this order. */
typedef struct layout {
    size_t chan, cdf, enc, lut, bin, total;
} layout;

static bool place(size_t *at, size_t n, size_t elem, size_t align, size_t *out)
{
    size_t bytes, start;
    if (!spw__mul_ok(n, elem, &bytes) || !spw__add_ok(*at, align - 1, &start))
        return false;
    start &= ~(align - 1);
    *out = start;
    return spw__add_ok(start, bytes, at);
}

static int validate(const spw_codec_table_desc *d, size_t *cdf_total, size_t *enc_total)
{
    if (d->channels < 1 || d->channels > SPW_CODEC_MAX_CHANNELS)
        return spw__error(SPW_EFORMAT, "tables: %d channels (need 1..%d)", d->channels,
                          SPW_CODEC_MAX_CHANNELS);
    if (d->cdf_stride < 3)
        return spw__error(SPW_EFORMAT, "tables: cdf stride %d (need >= 3)", d->cdf_stride);
    size_t ct = 0, et = 0;
    for (int c = 0; c < d->channels; c++) {
        int32_t len = d->cdf_length[c];
        if (len < 3 || len > SPW_CODEC_MAX_CDF_LENGTH || len > d->cdf_stride)
            return spw__error(SPW_EFORMAT,
                              "tables: channel %d: cdf_length %d (need 3..%d, at most the "
                              "stride %d)",
                              c, len, SPW_CODEC_MAX_CDF_LENGTH, d->cdf_stride);
        int32_t off = d->offset[c];
        if (off < -SPW_CODEC_MAX_OFFSET || off > SPW_CODEC_MAX_OFFSET)
            return spw__error(SPW_EFORMAT, "tables: channel %d: offset %d out of range", c, off);
        if (d->medians && !isfinite(d->medians[c]))
            return spw__error(SPW_EFORMAT, "tables: channel %d: median is not finite", c);
        const int32_t *cdf = d->cdf + (size_t)c * (size_t)d->cdf_stride;
        if (cdf[0] != 0)
            return spw__error(SPW_EFORMAT, "tables: channel %d: cdf[0] = %d, must be 0", c, cdf[0]);
        for (int32_t i = 1; i < len; i++)
            if (cdf[i] <= cdf[i - 1])
                return spw__error(SPW_EFORMAT,
                                  "tables: channel %d: bin %d is empty or negative (cdf[%d] = "
                                  "%d, cdf[%d] = %d)",
                                  c, i - 1, i - 1, cdf[i - 1], i, cdf[i]);
        if (cdf[len - 1] != (1 << RANS_PREC))
            return spw__error(SPW_EFORMAT, "tables: channel %d: cdf ends at %d, must be exactly %d",
                              c, cdf[len - 1], 1 << RANS_PREC);
        ct += (size_t)len;
        et += (size_t)len - 1;
    }
    *cdf_total = ct;
    *enc_total = et;
    return 0;
}

static void enc_entry_init(enc_entry *e, uint32_t start, uint32_t freq)
{
    e->freq = (uint16_t)freq;
    if (freq == 1) {
        /* q comes out as x - 1; the extra 2^16 - 1 in bias puts it right. */
        e->rcp = ~0ull;
        e->shift = 0;
        e->bias = start + (1u << RANS_PREC) - 1;
        return;
    }
    /* Division by invariant integers: with l = ceil(log2 freq) and
     * m = ceil(2^(63+l) / freq), floor(x / freq) = floor(x * m / 2^(63+l))
     * for every x < 2^63, which holds since x < freq << 47 here. */
    uint32_t l = 0;
    while ((1u << l) < freq)
        l++;
#ifdef __SIZEOF_INT128__
    unsigned __int128 num = (unsigned __int128)1 << (63 + l);
    e->rcp = (uint64_t)((num + freq - 1) / freq);
#else
    /* 2^(63+l) / freq by long division in 32-bit limbs. */
    uint64_t hi = (1ull << (31 + l)) / freq;
    uint64_t rem = (1ull << (31 + l)) % freq;
    uint64_t lo = (rem << 32) / freq;
    rem = (rem << 32) % freq;
    e->rcp = (hi << 32) + lo + (rem != 0);
#endif
    e->shift = (uint16_t)(l - 1);
    e->bias = start;
}

static void chan_init(codec_chan *ch, const int32_t *src, int32_t len, uint32_t *cdf,
                      enc_entry *enc, lut_entry *lut, uint16_t *lut_bin)
{
    int32_t maxv = len - 2;
    double h = 0;
    for (int32_t i = 0; i < len; i++)
        cdf[i] = (uint32_t)src[i];
    for (int32_t b = 0; b <= maxv; b++) {
        uint32_t f = cdf[b + 1] - cdf[b];
        enc_entry_init(&enc[b], cdf[b], f);
        double p = f / 65536.0;
        h -= p * log2(p);
    }
    /* Walk the buckets and the bins together: bucket k starts at slot
     * k << LUT_SHIFT, owned by the last bin whose start is <= that slot. */
    int32_t b = 0;
    for (uint32_t k = 0; k < (1u << LUT_BITS); k++) {
        uint32_t slot = k << LUT_SHIFT;
        while (cdf[b + 1] <= slot)
            b++;
        uint32_t f = b == maxv ? 0 : cdf[b + 1] - cdf[b];
        lut[k] = cdf[b] | f << 16;
        lut_bin[k] = (uint16_t)b;
    }
    uint32_t mode = 0;
    for (int32_t i = 1; i < maxv; i++)
        if (cdf[i + 1] - cdf[i] > cdf[mode + 1] - cdf[mode])
            mode = (uint32_t)i;
    ch->mode_bin = mode;
    ch->mode_start = cdf[mode];
    ch->mode_freq = cdf[mode + 1] - cdf[mode];
    ch->mode_fast = ch->mode_freq >= MODE_FAST_FREQ;
    ch->maxv = maxv;
    ch->entropy = h;
    ch->cdf = cdf;
    ch->enc = enc;
    ch->lut = lut;
    ch->lut_bin = lut_bin;
}

int spw_codec_tables_create(const spw_codec_table_desc *d, spw_codec_tables **out)
{
    if (!d || !out || !d->cdf || !d->cdf_length || !d->offset)
        return spw__error(SPW_EINVAL, "tables: NULL argument");
    *out = NULL;
    size_t cdf_total = 0, enc_total = 0;
    int rc = validate(d, &cdf_total, &enc_total);
    if (rc)
        return rc;

    size_t nch = (size_t)d->channels, at = 0;
    layout L;
    if (!place(&at, nch, sizeof(codec_chan), 64, &L.chan) ||
        !place(&at, enc_total, sizeof(enc_entry), 64, &L.enc) ||
        !place(&at, nch << LUT_BITS, sizeof(lut_entry), 64, &L.lut) ||
        !place(&at, nch << LUT_BITS, sizeof(uint16_t), 64, &L.bin) ||
        !place(&at, cdf_total, sizeof(uint32_t), 64, &L.cdf))
        return spw__error(SPW_ENOMEM, "tables: size overflow");
    L.total = at;

    spw_codec_tables *t = spw__calloc(1, sizeof(*t));
    if (!t)
        return spw__error(SPW_ENOMEM, "tables: out of memory");
    uint8_t *block = spw__aligned_alloc(64, L.total);
    if (!block) {
        rc = spw__error(SPW_ENOMEM, "tables: no memory for %zu bytes", L.total);
        goto fail_tables;
    }
    t->block = block;
    t->channels = d->channels;
    t->chan = (codec_chan *)(block + L.chan);
    uint32_t *cdf = (uint32_t *)(block + L.cdf);
    enc_entry *enc = (enc_entry *)(block + L.enc);
    lut_entry *lut = (lut_entry *)(block + L.lut);
    uint16_t *lut_bin = (uint16_t *)(block + L.bin);
    for (size_t c = 0; c < nch; c++) {
        codec_chan *ch = &t->chan[c];
        int32_t len = d->cdf_length[c];
        chan_init(ch, d->cdf + c * (size_t)d->cdf_stride, len, cdf, enc, lut, lut_bin);
        ch->offset = d->offset[c];
        ch->median = d->medians ? d->medians[c] : 0.0f;
        cdf += len;
        enc += len - 1;
        lut += (size_t)1 << LUT_BITS;
        lut_bin += (size_t)1 << LUT_BITS;
    }
    *out = t;
    return 0;

fail_tables:
    spw__free(t);
    return rc;
}

void spw_codec_tables_free(spw_codec_tables *t)
{
    if (!t)
        return;
    spw__aligned_free(t->block);
    spw__free(t);
}

int spw_codec_tables_channels(const spw_codec_tables *t)
{
    return t ? t->channels : 0;
}

float spw_codec_tables_median(const spw_codec_tables *t, int c)
{
    return t && c >= 0 && c < t->channels ? t->chan[c].median : 0.0f;
}

double spw_codec_tables_entropy(const spw_codec_tables *t, int c)
{
    return t && c >= 0 && c < t->channels ? t->chan[c].entropy : 0.0;
}

double spw_codec_cost_bits(const spw_codec_tables *t, const int32_t *sym, int C, int H, int W)
{
    if (!t || !sym || C != t->channels || H < 1 || W < 1)
        return 0.0;
    size_t hw = (size_t)H * (size_t)W;
    double bits = 0;
    for (int c = 0; c < C; c++) {
        const codec_chan *ch = &t->chan[c];
        /* A bin costs 16 - log2(freq) bits, a bypass 4 bits per nibble and chunk. */
        for (size_t i = 0; i < hw; i++) {
            int64_t v = (int64_t)sym[(size_t)c * hw + i] - ch->offset;
            int32_t bin = v >= 0 && v < ch->maxv ? (int32_t)v : ch->maxv;
            bits += RANS_PREC - log2((double)(ch->cdf[bin + 1] - ch->cdf[bin]));
            if (bin == ch->maxv) {
                uint64_t raw = v < 0 ? (uint64_t)(-2 * v - 1) : (uint64_t)(2 * (v - ch->maxv));
                int nib = 0;
                while (nib < 16 && (raw >> (4 * nib)))
                    nib++;
                bits += RANS_BYPASS_BITS * (nib / (int)RANS_BYPASS_MAX + 1 + nib);
            }
        }
    }
    return bits;
}

/* ---- table directory ------------------------------------------------------ */

static int load_npy(const char *dir, const char *name, spw_dtype dtype, int ndim, spw_tensor *t)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return spw__error(SPW_EINVAL, "tables: path too long");
    int rc = spw_npy_read(path, t);
    if (rc)
        return rc;
    if (t->dtype != dtype || t->ndim != ndim) {
        spw_free(t->data);
        t->data = NULL;
        return spw__error(SPW_EFORMAT, "tables: %s must be a %d-D %s array", path, ndim,
                          spw_dtype_name(dtype));
    }
    return 0;
}

int spw_codec_tables_load(const char *dir, spw_codec_tables **out)
{
    if (!dir || !out)
        return spw__error(SPW_EINVAL, "tables: NULL argument");
    *out = NULL;
    spw_tensor cdf = {0}, len = {0}, off = {0}, med = {0};
    int rc = load_npy(dir, "quantized_cdf.npy", SPW_I32, 2, &cdf);
    if (rc)
        goto fail_cdf;
    rc = load_npy(dir, "cdf_length.npy", SPW_I32, 1, &len);
    if (rc)
        goto fail_len;
    rc = load_npy(dir, "offset.npy", SPW_I32, 1, &off);
    if (rc)
        goto fail_off;
    rc = load_npy(dir, "medians.npy", SPW_F32, 1, &med);
    if (rc)
        goto fail_med;
    int64_t C = cdf.dims[0];
    if (C < 1 || C > SPW_CODEC_MAX_CHANNELS || cdf.dims[1] > SPW_CODEC_MAX_CDF_LENGTH ||
        len.dims[0] != C || off.dims[0] != C || med.dims[0] != C) {
        rc = spw__error(SPW_EFORMAT,
                        "tables: %s: inconsistent shapes (cdf %lldx%lld, lengths %lld, "
                        "offsets %lld, medians %lld)",
                        dir, (long long)C, (long long)cdf.dims[1], (long long)len.dims[0],
                        (long long)off.dims[0], (long long)med.dims[0]);
        goto fail_shape;
    }
    spw_codec_table_desc d = {
        .channels = (int)C,
        .cdf_stride = (int)cdf.dims[1],
        .cdf = cdf.data,
        .cdf_length = len.data,
        .offset = off.data,
        .medians = med.data,
    };
    rc = spw_codec_tables_create(&d, out);
    if (rc)
        spw__error_context(rc, "%s", dir);
fail_shape:
    spw_free(med.data);
fail_med:
    spw_free(off.data);
fail_off:
    spw_free(len.data);
fail_len:
    spw_free(cdf.data);
fail_cdf:
    return rc;
}

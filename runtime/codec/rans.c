/*
 * 64-bit rANS over caller segments, bit-exact with CompressAI 1.2.2.
 *
 * State x stays in [L, 2^63) with L = 2^31; probabilities are 16-bit, so one
 * coding step moves x by at most 16 bits and renormalisation never needs more
 * than one 32-bit word per symbol. The hot loops rely on that: before a run
 * of symbols they take as many as there are whole words left in the current
 * segment, and inside the run neither reads nor writes are checked. Anything
 * unusual (the bypass bin, a decoder bucket with a bin boundary, a segment
 * edge) drops to a per-symbol path that checks every word.
 */
#include "runtime/codec/codec_internal.h"

#ifdef __SIZEOF_INT128__
static inline uint64_t mulhi64(uint64_t a, uint64_t b)
{
    return (uint64_t)(((unsigned __int128)a * b) >> 64);
}
#else
static inline uint64_t mulhi64(uint64_t a, uint64_t b)
{
    uint64_t a0 = (uint32_t)a, a1 = a >> 32, b0 = (uint32_t)b, b1 = b >> 32;
    uint64_t t = a1 * b0 + ((a0 * b0) >> 32);
    uint64_t u = a0 * b1 + (uint32_t)t;
    return a1 * b1 + (t >> 32) + (u >> 32);
}
#endif

/* ---- segments --------------------------------------------------------------- */

int spw__codec_check_segs(const spw_codec_seg *segs, int nsegs, size_t *total)
{
    if (nsegs < 0 || (nsegs > 0 && !segs))
        return spw__error(SPW_EINVAL, "codec: bad segment list");
    size_t sum = 0;
    for (int i = 0; i < nsegs; i++) {
        if (segs[i].size % 4)
            return spw__error(SPW_EINVAL, "codec: segment %d has %zu bytes, not a multiple of 4", i,
                              segs[i].size);
        if (segs[i].size && !segs[i].data)
            return spw__error(SPW_EINVAL, "codec: segment %d has no data", i);
        if (!spw__add_ok(sum, segs[i].size, &sum))
            return spw__error(SPW_EINVAL, "codec: segment sizes overflow");
    }
    if (total)
        *total = sum;
    return 0;
}

static size_t wroom(const wcur *w)
{
    return w->p ? (size_t)(w->p - w->lo) : 0;
}

/* Steps to the previous segment with room; false when there is none. */
static bool wcur_prev(wcur *w)
{
    for (int s = w->seg - 1; s >= 0; s--) {
        if (w->segs[s].size) {
            w->seg = s;
            w->lo = w->segs[s].data;
            w->p = w->lo + w->segs[s].size;
            return true;
        }
    }
    return false;
}

void spw__wcur_init(wcur *w, const spw_codec_seg *segs, int nsegs)
{
    w->segs = segs;
    w->seg = w->nsegs = nsegs;
    w->p = w->lo = NULL;
    w->bytes = 0;
    wcur_prev(w);
}

int spw__wcur_put(wcur *w, uint32_t v)
{
    if (SPW_UNLIKELY(wroom(w) < 4) && !wcur_prev(w))
        return spw__error(SPW_ENOSPC, "codec: output full after %zu bytes", w->bytes);
    w->p -= 4;
    wr32(w->p, v);
    w->bytes += 4;
    return 0;
}

void spw__rcur_init(rcur *r, const spw_codec_seg *segs, int nsegs, int seg, size_t off, size_t len)
{
    r->segs = segs;
    r->nsegs = nsegs;
    r->seg = seg;
    if (seg < nsegs) {
        size_t avail = segs[seg].size - off;
        size_t take = SPW_MIN(avail, len);
        r->p = (const uint8_t *)segs[seg].data + off;
        r->end = r->p + take;
        r->left = len - take;
    } else {
        r->p = r->end = NULL;
        r->left = 0;
    }
}

static size_t rroom(const rcur *r)
{
    return (size_t)(r->end - r->p);
}

static int rcur_word(rcur *r, uint32_t *v)
{
    while (SPW_UNLIKELY(r->p == r->end)) {
        if (!r->left || r->seg + 1 >= r->nsegs)
            return spw__error(SPW_ETRUNC, "codec: stream ends in the middle of a symbol");
        r->seg++;
        size_t take = SPW_MIN(r->segs[r->seg].size, r->left);
        r->p = r->segs[r->seg].data;
        r->end = r->p + take;
        r->left -= take;
    }
    *v = rd32(r->p);
    r->p += 4;
    return 0;
}

static bool rcur_done(const rcur *r)
{
    return r->p == r->end && r->left == 0;
}

/* ---- encoder ------------------------------------------------------------------ */

static inline int put_checked(uint64_t *px, wcur *w, const enc_entry *e)
{
    uint64_t x = *px;
    if (x >= ((uint64_t)e->freq << 47)) {
        int rc = spw__wcur_put(w, (uint32_t)x);
        if (rc)
            return rc;
        x >>= 32;
    }
    uint64_t q = mulhi64(x, e->rcp) >> e->shift;
    *px = x + e->bias + q * ((1u << RANS_PREC) - e->freq);
    return 0;
}

static inline int put_bits(uint64_t *px, wcur *w, uint32_t val)
{
    uint64_t x = *px;
    if (x >= ((RANS_L >> RANS_BYPASS_BITS) << 32)) {
        int rc = spw__wcur_put(w, (uint32_t)x);
        if (rc)
            return rc;
        x >>= 32;
    }
    *px = (x << RANS_BYPASS_BITS) | val;
    return 0;
}

/*
 * One symbol the slow way. The decoder reads, in order: the bin, then for the
 * tail bin the nibble count in 4-bit chunks (15 while >= 15 remain) and the
 * nibbles of raw, low first; being a stack, the encoder pushes all of it in
 * the opposite order.
 */
static int put_symbol_slow(const codec_chan *ch, int32_t s, uint64_t *x, wcur *w)
{
    int64_t v = (int64_t)s - ch->offset;
    if (v >= 0 && v < ch->maxv)
        return put_checked(x, w, &ch->enc[v]);
    uint64_t raw = v < 0 ? (uint64_t)(-2 * v - 1) : (uint64_t)(2 * (v - ch->maxv));
    if (raw > UINT32_MAX)
        return spw__error(SPW_ERANGE, "codec: symbol %d is too far from its table (offset %d)", s,
                          ch->offset);
    int nib = 0;
    while (raw >> (RANS_BYPASS_BITS * nib))
        nib++;
    int rc;
    for (int j = nib - 1; j >= 0; j--)
        if ((rc = put_bits(x, w, (uint32_t)(raw >> (RANS_BYPASS_BITS * j)) & RANS_BYPASS_MAX)))
            return rc;
    if ((rc = put_bits(x, w, (uint32_t)nib % RANS_BYPASS_MAX)))
        return rc;
    for (int k = nib / (int)RANS_BYPASS_MAX; k > 0; k--)
        if ((rc = put_bits(x, w, RANS_BYPASS_MAX)))
            return rc;
    return put_checked(x, w, &ch->enc[ch->maxv]);
}

int spw__rans_encode(const spw_codec_tables *t, const int32_t *sym, const sym_block *b, wcur *w)
{
    uint64_t x = RANS_L;
    int rc;
    for (int c = b->C - 1; c >= 0; c--) {
        const codec_chan *ch = &t->chan[c];
        const int32_t *s = sym + (size_t)c * b->stride;
        const enc_entry *tab = ch->enc;
        const uint32_t off = (uint32_t)ch->offset, maxv = (uint32_t)ch->maxv;
        size_t j = b->n;
        while (j > 0) {
            size_t room = wroom(w) / 4;
            size_t stop = j - SPW_MIN(j, room);
            uint8_t *p = w->p;
            /* Unsigned wrap sends v < 0 and v >= maxv alike to the slow path;
             * |offset| <= 2^30 keeps a wrapped value from landing in range. */
            while (j > stop) {
                uint32_t u = (uint32_t)s[j - 1] - off;
                if (SPW_UNLIKELY(u >= maxv))
                    break;
                const enc_entry *e = &tab[u];
                if (x >= ((uint64_t)e->freq << 47)) {
                    p -= 4;
                    wr32(p, (uint32_t)x);
                    x >>= 32;
                }
                uint64_t q = mulhi64(x, e->rcp) >> e->shift;
                x += e->bias + q * ((1u << RANS_PREC) - e->freq);
                j--;
            }
            w->bytes += (size_t)(w->p - p);
            w->p = p;
            if (j > stop || (j > 0 && room == 0)) {
                if ((rc = put_symbol_slow(ch, s[j - 1], &x, w)))
                    return rc;
                j--;
            }
        }
    }
    /* Final state, low word first in memory. */
    if ((rc = spw__wcur_put(w, (uint32_t)(x >> 32))) || (rc = spw__wcur_put(w, (uint32_t)x)))
        return rc;
    return 0;
}

size_t spw__rans_bound(size_t n)
{
    /* Each coding step grows log2(x) by at most 16 - log2(freq) + 2^-15 bits
     * and a bypass nibble by 4, and every emitted word takes 32 bits off;
     * a symbol costs at most 16 + 4 + 8 * 4 = 52 bits. Add the flushed state
     * and a word of slack for the 2^-15 terms per 2^15 symbols. */
    size_t words = n / 32 * 52 + (n % 32 * 52 + 31) / 32 + n / 32768 + 4;
    return words * 4;
}

/* ---- decoder ---------------------------------------------------------------- */

static inline int get_bits(uint64_t *px, rcur *r, uint32_t *val)
{
    uint64_t x = *px;
    *val = (uint32_t)x & RANS_BYPASS_MAX;
    x >>= RANS_BYPASS_BITS;
    if (x < RANS_L) {
        uint32_t word = 0;
        int rc = rcur_word(r, &word);
        if (rc)
            return rc;
        x = (x << 32) | word;
    }
    *px = x;
    return 0;
}

static int get_symbol_slow(const codec_chan *ch, uint64_t *px, rcur *r, int32_t *out)
{
    uint64_t x = *px;
    uint32_t cum = (uint32_t)x & 0xffff;
    /* Largest bin whose start is <= cum; cdf[maxv + 1] = 2^16 > cum. */
    uint32_t lo = 0, hi = (uint32_t)ch->maxv;
    while (lo < hi) {
        uint32_t mid = (lo + hi + 1) / 2;
        if (ch->cdf[mid] <= cum)
            lo = mid;
        else
            hi = mid - 1;
    }
    uint32_t start = ch->cdf[lo], freq = ch->cdf[lo + 1] - start;
    x = freq * (x >> RANS_PREC) + cum - start;
    int rc;
    if (x < RANS_L) {
        uint32_t word = 0;
        if ((rc = rcur_word(r, &word)))
            return rc;
        x = (x << 32) | word;
    }
    if (lo < (uint32_t)ch->maxv) {
        *px = x;
        *out = (int32_t)lo + ch->offset;
        return 0;
    }
    uint32_t val, nib = 0;
    do {
        if ((rc = get_bits(&x, r, &val)))
            return rc;
        nib += val;
        if (nib > RANS_MAX_NIBBLES)
            return spw__error(SPW_ECORRUPT, "codec: bypass of %u nibbles (at most %d)", nib,
                              RANS_MAX_NIBBLES);
    } while (val == RANS_BYPASS_MAX);
    uint32_t raw = 0;
    for (uint32_t j = 0; j < nib; j++) {
        if ((rc = get_bits(&x, r, &val)))
            return rc;
        raw |= val << (RANS_BYPASS_BITS * j);
    }
    int64_t v = raw & 1 ? -(int64_t)(raw >> 1) - 1 : (int64_t)(raw >> 1) + ch->maxv;
    int64_t s = v + ch->offset;
    if (s < INT32_MIN || s > INT32_MAX)
        return spw__error(SPW_ECORRUPT, "codec: bypassed symbol %lld out of int32 range",
                          (long long)s);
    *px = x;
    *out = (int32_t)s;
    return 0;
}

int spw__rans_decode(const spw_codec_tables *t, rcur *r, const sym_block *b, int32_t *out)
{
    uint32_t w0 = 0, w1 = 0;
    int rc;
    if ((rc = rcur_word(r, &w0)) || (rc = rcur_word(r, &w1)))
        return spw__error(rc, "codec: stream shorter than its 8-byte state");
    uint64_t x = (uint64_t)w0 | (uint64_t)w1 << 32;
    if (x < RANS_L || x >> 63)
        return spw__error(SPW_ECORRUPT, "codec: initial state out of range");
    for (int c = 0; c < b->C; c++) {
        const codec_chan *ch = &t->chan[c];
        const lut_entry *lut = ch->lut;
        const uint16_t *lut_bin = ch->lut_bin;
        const int32_t off = ch->offset;
        int32_t *o = out + (size_t)c * b->stride;
        const size_t n = b->n;
        size_t j = 0;
        while (j < n) {
            size_t room = rroom(r) / 4;
            size_t stop = j + SPW_MIN(n - j, room);
            const uint8_t *p = r->p;
            if (ch->mode_fast) {
                const uint32_t ms = ch->mode_start, mf = ch->mode_freq;
                const int32_t mo = (int32_t)ch->mode_bin + off;
                while (j < stop) {
                    uint32_t cum = (uint32_t)x & 0xffff;
                    uint32_t start, freq;
                    if (SPW_LIKELY(cum - ms < mf)) {
                        start = ms;
                        freq = mf;
                        o[j] = mo;
                    } else {
                        lut_entry e = lut[cum >> LUT_SHIFT];
                        start = e & 0xffff;
                        freq = e >> 16;
                        if (SPW_UNLIKELY(cum - start >= freq))
                            break;
                        o[j] = (int32_t)lut_bin[cum >> LUT_SHIFT] + off;
                    }
                    x = freq * (x >> RANS_PREC) + cum - start;
                    if (x < RANS_L) {
                        x = (x << 32) | rd32(p);
                        p += 4;
                    }
                    j++;
                }
            }
            while (j < stop) {
                uint32_t cum = (uint32_t)x & 0xffff;
                lut_entry e = lut[cum >> LUT_SHIFT];
                uint32_t start = e & 0xffff, freq = e >> 16;
                /* Bucket start is >= start, so cum - start does not wrap;
                 * freq is 0 in tail buckets. */
                if (SPW_UNLIKELY(cum - start >= freq))
                    break;
                o[j] = (int32_t)lut_bin[cum >> LUT_SHIFT] + off;
                x = freq * (x >> RANS_PREC) + cum - start;
                if (x < RANS_L) {
                    x = (x << 32) | rd32(p);
                    p += 4;
                }
                j++;
            }
            r->p = p;
            if (j < n && (j < stop || room == 0)) {
                if ((rc = get_symbol_slow(ch, &x, r, &o[j])))
                    return rc;
                j++;
            }
        }
    }
    if (x != RANS_L)
        return spw__error(SPW_ECORRUPT, "codec: stream does not end in the initial state");
    if (!rcur_done(r))
        return spw__error(SPW_ECORRUPT, "codec: bytes left over after the last symbol");
    return 0;
}

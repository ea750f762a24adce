/* Private structures of the entropy codec. */
#ifndef SPW_CODEC_INTERNAL_H
#define SPW_CODEC_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "runtime/core/internal.h"
#include "splitwire/codec.h"

/* rANS constants of the CompressAI stream: 64-bit state kept in [L, 2^63),
 * 32-bit renormalisation words, 16-bit probabilities, 4-bit bypass. */
#define RANS_L (1ull << 31)
#define RANS_PREC 16
#define RANS_BYPASS_BITS 4
#define RANS_BYPASS_MAX 15u
/* A bypassed value is at most 32 bits, i.e. 8 nibbles. */
#define RANS_MAX_NIBBLES 8

/* Decoder lookup: the top LUT_BITS of the 16-bit slot pick a bucket. */
#define LUT_BITS 8
#define LUT_SHIFT (RANS_PREC - LUT_BITS)

/*
 * Encoder entry for one bin, all that C(s, x) needs without a division:
 * q = mulhi(x, rcp) >> shift equals floor(x / freq) (freq = 1 uses
 * rcp = 2^64 - 1, q = x - 1, and bias absorbs the difference), and then
 * x' = x + bias + q * (2^16 - freq).
 */
typedef struct enc_entry {
    uint64_t rcp;
    uint32_t bias;
    uint16_t freq; /* x_max = freq << 47; 2^16 - freq multiplies q */
    uint16_t shift;
} enc_entry;

/*
 * Decoder bucket: start and freq of the bin holding the bucket's first slot
 * (lut_entry), and that bin's index in a parallel array, so the loads on the
 * state's dependency chain touch only 4 bytes a bucket. freq is stored as 0
 * for the tail bin so the one range check in the hot loop also routes bypass
 * symbols to the slow path.
 */
typedef uint32_t lut_entry; /* start | freq << 16 */

typedef struct codec_chan {
    int32_t offset;
    int32_t maxv; /* cdf_length - 2: the tail (bypass) bin */
    float median;
    double entropy;          /* bits per symbol under its own pmf */
    const uint32_t *cdf;     /* cdf_length entries */
    const enc_entry *enc;    /* maxv + 1 entries */
    const lut_entry *lut;    /* 1 << LUT_BITS entries */
    const uint16_t *lut_bin; /* 1 << LUT_BITS entries */
    /* Most probable bin; when it is likely enough (mode_fast), the decoder
     * tests it before the lookup, a branch the CPU predicts and runs ahead
     * of, taking the table load off the state's dependency chain. */
    uint32_t mode_start, mode_freq, mode_bin;
    bool mode_fast;
} codec_chan;

struct spw_codec_tables {
    int channels;
    codec_chan *chan;
    void *block; /* one aligned allocation holding every array */
};

/* Little-endian 32-bit words at any alignment. */
static inline uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}
static inline void wr32(uint8_t *p, uint32_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    memcpy(p, &v, 4);
}
static inline uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* Backward writer over caller segments: the next word goes to p - 4. */
typedef struct wcur {
    uint8_t *p;
    uint8_t *lo; /* start of the current segment */
    const spw_codec_seg *segs;
    int seg, nsegs;
    size_t bytes; /* written so far */
} wcur;

/* Forward reader over caller segments. */
typedef struct rcur {
    const uint8_t *p;
    const uint8_t *end;
    const spw_codec_seg *segs;
    int seg, nsegs;
    size_t left; /* bytes after the current segment in this range */
} rcur;

/* A block of symbols: C channels of n symbols each, channel c at
 * base + c * stride. */
typedef struct sym_block {
    int C;
    size_t n, stride;
} sym_block;

int spw__codec_check_segs(const spw_codec_seg *segs, int nsegs, size_t *total);
void spw__wcur_init(wcur *w, const spw_codec_seg *segs, int nsegs);
int spw__wcur_put(wcur *w, uint32_t v);
/* Reader over [start, start + len) of the segments' concatenation. */
void spw__rcur_init(rcur *r, const spw_codec_seg *segs, int nsegs, int seg, size_t off, size_t len);

/* Codes one block as one complete rANS stream (state flush included). */
int spw__rans_encode(const spw_codec_tables *t, const int32_t *sym, const sym_block *b, wcur *w);
/* Decodes one complete stream that must span exactly the reader's range. */
int spw__rans_decode(const spw_codec_tables *t, rcur *r, const sym_block *b, int32_t *out);

/* Worst-case stream bytes for n symbols. */
size_t spw__rans_bound(size_t n);

#endif

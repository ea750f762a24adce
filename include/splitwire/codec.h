/* splitwire: entropy codec for factorized-prior latents (rANS, CompressAI-compatible). */
#ifndef SPLITWIRE_CODEC_H
#define SPLITWIRE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "splitwire/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Overview
 *
 * A latent y of shape C x H x W is quantised per channel against the median of
 * that channel's learned density: symbol = rint(y - median[c]). Symbols are
 * coded with one 16-bit quantised CDF per channel (the tables), built once
 * after training (tools/codec/tables.py) and loaded here; the runtime never
 * rebuilds them.
 *
 * Two stream formats (docs/CODEC.md has the byte layouts):
 *   SPW_CODEC_PLAIN  one rANS stream, byte-identical to CompressAI 1.2.2's
 *                    RansEncoder.encode_with_indexes() with indexes = channel.
 *                    No header: the shape travels separately.
 *   SPW_CODEC_TILED  the latent cut into bands of rows ("tiles"); each tile is
 *                    an independent rANS stream behind a 16-byte header with a
 *                    CRC32C. Tiles code in parallel and a lost or corrupted
 *                    tile only loses its rows (decoded as the medians).
 *
 * Segments. Streams are read from and written into caller memory given as a
 * list of segments (e.g. packet buffers), never joined. Every segment size
 * must be a multiple of 4. rANS produces its output back to front, so the
 * encoder fills the LAST segment first, from its end, moving towards the
 * first; on return the stream starts at segs[first].data + offset and runs
 * contiguously to the end of that segment and then through all later
 * segments, which are full. Bytes before the stream start are unspecified.
 * spw_codec_bound() gives a size that can never run out.
 *
 * Thread safety: a spw_codec_tables is immutable and may be shared by any
 * number of threads and codecs. A spw_codec runs one call at a time.
 */

/* Caller memory: encode reads size as capacity, decode as stream bytes. */
typedef struct spw_codec_seg {
    void *data;
    size_t size;
} spw_codec_seg;

/* ---- tables ------------------------------------------------------------ */

typedef struct spw_codec_tables spw_codec_tables;

/*
 * The arrays CompressAI's EntropyBottleneck keeps after update():
 * _quantized_cdf (channels x cdf_stride, zero padded), _cdf_length, _offset,
 * plus the medians (quantiles[:, 0, 1]). Copied at load; the caller keeps
 * ownership of its arrays.
 */
typedef struct spw_codec_table_desc {
    int channels;              /* 1 .. SPW_CODEC_MAX_CHANNELS */
    int cdf_stride;            /* int32 entries per cdf row (>= every cdf_length) */
    const int32_t *cdf;        /* row c: cdf_length[c] entries, 0 .. 65536 */
    const int32_t *cdf_length; /* 3 .. SPW_CODEC_MAX_CDF_LENGTH */
    const int32_t *offset;     /* symbol of bin 0; |offset| <= SPW_CODEC_MAX_OFFSET */
    const float *medians;      /* finite; NULL means all zero */
} spw_codec_table_desc;

#define SPW_CODEC_MAX_CHANNELS 65535
#define SPW_CODEC_MAX_CDF_LENGTH 65537
#define SPW_CODEC_MAX_OFFSET (1 << 30)
#define SPW_CODEC_PRECISION 16

/*
 * Validates and loads tables. Rejected (SPW_EFORMAT with a detail naming the
 * channel and entry): a CDF not starting at 0, not ending at exactly 65536,
 * with an empty bin (every bin needs frequency >= 1), out-of-range lengths,
 * offsets or non-finite medians. Precomputes the encoder reciprocals and the
 * decoder lookup tables.
 */
SPW_API int spw_codec_tables_create(const spw_codec_table_desc *desc, spw_codec_tables **out);

/*
 * Loads tables from a directory holding quantized_cdf.npy (int32 C x N),
 * cdf_length.npy (int32 C), offset.npy (int32 C) and medians.npy (float32 C),
 * as written by tools/codec/tables.py save_tables().
 */
SPW_API int spw_codec_tables_load(const char *dir, spw_codec_tables **out);
SPW_API void spw_codec_tables_free(spw_codec_tables *tables);

SPW_API int spw_codec_tables_channels(const spw_codec_tables *tables);
SPW_API float spw_codec_tables_median(const spw_codec_tables *tables, int channel);
/* Ideal code length in bits of one symbol of channel c drawn from its own
 * table (the table's entropy, counting the tail bin but not bypass bits). */
SPW_API double spw_codec_tables_entropy(const spw_codec_tables *tables, int channel);
/* Ideal cost in bits of coding these symbols with the tables (-sum log2 p,
 * bypass nibbles included); a plain stream exceeds it by at most the flushed
 * 8-byte state plus 0.0001 bit per symbol. */
SPW_API double spw_codec_cost_bits(const spw_codec_tables *tables, const int32_t *symbols, int C,
                                   int H, int W);

/* ---- quantisation ---------------------------------------------------------- */

/* symbols = rint(y - median[c]) (round half to even), saturated to int32; NaN -> 0. */
SPW_API int spw_codec_quantize(const spw_codec_tables *tables, const float *y, int C, int H, int W,
                               int32_t *symbols);
/* y = symbols + median[c]. */
SPW_API int spw_codec_dequantize(const spw_codec_tables *tables, const int32_t *symbols, int C,
                                 int H, int W, float *y);

/* ---- coder ------------------------------------------------------------- */

typedef struct spw_codec spw_codec;

typedef enum spw_codec_format {
    SPW_CODEC_PLAIN = 0,
    SPW_CODEC_TILED = 1,
} spw_codec_format;

typedef struct spw_codec_config {
    spw_codec_format format;
    int threads;   /* tiled only: worker threads including the caller; 0 or 1 = none */
    int tile_rows; /* tiled only: rows per tile; 0 = chosen from the tables'
                      entropy so a tile is about SPW_CODEC_TILE_TARGET bytes */
} spw_codec_config;

#define SPW_CODEC_TILE_TARGET 1024
#define SPW_CODEC_TILE_HEADER 16
#define SPW_CODEC_MAX_TILES 65535

/* config NULL means plain, single thread. tables must outlive the codec. */
SPW_API int spw_codec_create(const spw_codec_tables *tables, const spw_codec_config *config,
                             spw_codec **out);
SPW_API void spw_codec_free(spw_codec *codec);

/* Rows per tile and number of tiles this codec's encoder uses for an H x W
 * latent (one tile of H rows for plain streams). */
SPW_API int spw_codec_tile_rows(const spw_codec *codec, int H, int W);
SPW_API int spw_codec_tile_count(const spw_codec *codec, int H, int W);

/* Bytes that always suffice for a stream of this shape, however bad the
 * symbols (0 when the shape is invalid). */
SPW_API size_t spw_codec_bound(const spw_codec *codec, int C, int H, int W);

/* Where an encoded stream lies in the caller's segments. */
typedef struct spw_codec_span {
    int first;     /* segment holding the first byte */
    size_t offset; /* offset of the first byte inside segs[first] */
    size_t bytes;  /* total stream length (multiple of 4) */
} spw_codec_span;

/*
 * Encodes C x H x W int32 symbols (C = the tables' channels) into segs, filled
 * from the end of the last segment backwards. SPW_ENOSPC when they cannot
 * hold the stream (nothing outside them is touched), SPW_ERANGE for a symbol
 * whose distance from its table exceeds 32 bits of bypass.
 */
SPW_API int spw_codec_encode(spw_codec *codec, const int32_t *symbols, int C, int H, int W,
                             const spw_codec_seg *segs, int nsegs, spw_codec_span *span);

/* Contiguous form: the stream is written to buf[0 .. *len). */
SPW_API int spw_codec_encode_buf(spw_codec *codec, const int32_t *symbols, int C, int H, int W,
                                 void *buf, size_t capacity, size_t *len);

/* What a decode found; all fields are outputs except bitmap/bitmap_size. */
typedef struct spw_codec_report {
    int tiles;          /* tiles of the latent (1 for a plain stream) */
    int decoded;        /* tiles decoded and verified */
    int corrupt;        /* tiles found but rejected (checksum, header or content) */
    uint8_t *bitmap;    /* optional, caller memory: bit i (LSB first) set = tile i decoded */
    size_t bitmap_size; /* bytes at bitmap; needs (tiles + 7) / 8 */
} spw_codec_report;

/*
 * Decodes a stream from segments read in order. Plain: the whole input must
 * be exactly one stream; any damage is SPW_ETRUNC / SPW_ECORRUPT.
 * Tiled: tiles may come in any order and some may be absent; every tile not
 * decoded is filled with symbol 0 (the medians). Returns 0 when at least one
 * tile was decoded (check report->decoded against report->tiles), and
 * SPW_ECORRUPT / SPW_ETRUNC when none was (symbols are then all 0).
 */
SPW_API int spw_codec_decode(spw_codec *codec, const spw_codec_seg *segs, int nsegs, int C, int H,
                             int W, int32_t *symbols, spw_codec_report *report);

SPW_API int spw_codec_decode_buf(spw_codec *codec, const void *buf, size_t len, int C, int H, int W,
                                 int32_t *symbols, spw_codec_report *report);

/* CRC32C (Castagnoli) as used in tile headers; crc = 0 to start. */
SPW_API uint32_t spw_crc32c(uint32_t crc, const void *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif

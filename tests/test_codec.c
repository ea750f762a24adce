/* Entropy codec: tables, CompressAI vectors, segments, tiles, damage, OOM. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/core/internal.h"
#include "splitwire/codec.h"

#define VEC SPW_TEST_DATA "/vectors/codec"

/* ---- helpers ------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static double rndu(void)
{
    return (rnd() + 0.5) / 4294967296.0;
}

/* A discretised Laplacian per channel (scale s, pmf_length 2m+1), quantised
 * the simple way: every bin >= 1, the largest absorbs the rounding. */
typedef struct synth {
    int C, stride;
    int32_t *cdf, *len, *off;
    float *med;
} synth;

static void synth_make(synth *t, int C, const double *scales)
{
    t->C = C;
    t->stride = 0;
    int m[256];
    for (int c = 0; c < C; c++) {
        m[c] = (int)ceil(scales[c] * 12.0) + 1;
        t->stride = SPW_MAX(t->stride, 2 * m[c] + 3);
    }
    size_t nc = (size_t)(unsigned)C;
    t->cdf = calloc(nc * (size_t)(unsigned)t->stride, sizeof(int32_t));
    t->len = calloc(nc, sizeof(int32_t));
    t->off = calloc(nc, sizeof(int32_t));
    t->med = calloc(nc, sizeof(float));
    for (int c = 0; c < C; c++) {
        int nb = 2 * m[c] + 2; /* bins incl. tail */
        int32_t f[1024];
        double s = scales[c];
        int32_t sum = 0, big = 0;
        for (int b = 0; b < nb; b++) {
            double v = b - m[c];
            double p =
                b == nb - 1 ? 1e-6 : (exp(-fabs(v) / s) * (1 - exp(-1 / s)) / (1 + exp(-1 / s)));
            f[b] = (int32_t)(p * 65536.0);
            if (f[b] < 1)
                f[b] = 1;
            sum += f[b];
            if (f[b] > f[big])
                big = b;
        }
        f[big] += 65536 - sum;
        int32_t *row = t->cdf + (size_t)c * t->stride;
        row[0] = 0;
        for (int b = 0; b < nb; b++)
            row[b + 1] = row[b] + f[b];
        t->len[c] = nb + 1;
        t->off[c] = -m[c];
        t->med[c] = (float)(0.25 * c - 1.0);
    }
}

static void synth_free(synth *t)
{
    free(t->cdf);
    free(t->len);
    free(t->off);
    free(t->med);
}

static spw_codec_table_desc synth_desc(const synth *t)
{
    return (spw_codec_table_desc){t->C, t->stride, t->cdf, t->len, t->off, t->med};
}

static spw_codec_tables *synth_tables(const synth *t)
{
    spw_codec_table_desc d = synth_desc(t);
    spw_codec_tables *tab = NULL;
    assert_int_equal(spw_codec_tables_create(&d, &tab), 0);
    return tab;
}

/* Symbols: kind 0 random in and around the table, 1 drawn from the table,
 * 2 bypass-heavy (half far outside, up to 2^26 away). */
static void gen_symbols(const synth *t, int kind, int H, int W, int32_t *out)
{
    size_t hw = (size_t)H * W;
    for (int c = 0; c < t->C; c++) {
        const int32_t *row = t->cdf + (size_t)c * t->stride;
        int maxv = t->len[c] - 2;
        for (size_t i = 0; i < hw; i++) {
            int32_t v;
            if (kind == 0) {
                v = (int32_t)(rnd() % (uint32_t)(maxv + 6)) - 3;
            } else if (kind == 1) {
                uint32_t u = rnd() & 0xffff;
                v = 0;
                while (row[v + 1] <= (int32_t)u)
                    v++;
                if (v == maxv)
                    v = (rnd() & 1) ? -1 - (int32_t)(rnd() % 5) : maxv + (int32_t)(rnd() % 5);
            } else {
                if (rnd() & 1) {
                    v = (int32_t)(rnd() % (uint32_t)maxv);
                } else {
                    int32_t mag = (int32_t)exp(rndu() * log(67108864.0));
                    v = (rnd() & 1) ? -mag : maxv + mag;
                }
            }
            out[(size_t)c * hw + i] = v + t->off[c];
        }
    }
}

static void *read_bin(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    void *p = malloc((size_t)n + 1);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static spw_codec *make_codec(const spw_codec_tables *t, spw_codec_format fmt, int threads, int rows)
{
    spw_codec_config cfg = {fmt, threads, rows};
    spw_codec *k = NULL;
    assert_int_equal(spw_codec_create(t, &cfg, &k), 0);
    return k;
}

/* ---- tables --------------------------------------------------------------------- */

static void test_tables_validation(void **state)
{
    (void)state;
    int32_t cdf[2][6] = {{0, 100, 65000, 65535, 65536, 0}, {0, 1, 2, 65536, 0, 0}};
    int32_t len[2] = {5, 4}, off[2] = {-1, 0};
    float med[2] = {0.5f, -1.0f};
    spw_codec_table_desc d = {2, 6, &cdf[0][0], len, off, med};
    spw_codec_tables *t = NULL;
    assert_int_equal(spw_codec_tables_create(&d, &t), 0);
    assert_int_equal(spw_codec_tables_channels(t), 2);
    assert_true(spw_codec_tables_median(t, 0) == 0.5f);
    assert_true(spw_codec_tables_entropy(t, 1) > 0.0);
    spw_codec_tables_free(t);

#define EXPECT_BAD(mutate, undo)                                        \
    do {                                                                \
        mutate;                                                         \
        t = (spw_codec_tables *)1;                                      \
        assert_int_equal(spw_codec_tables_create(&d, &t), SPW_EFORMAT); \
        assert_null(t);                                                 \
        assert_true(strlen(spw_error_detail()) > 0);                    \
        undo;                                                           \
    } while (0)
    EXPECT_BAD(cdf[0][0] = 1, cdf[0][0] = 0);         /* not starting at 0 */
    EXPECT_BAD(cdf[0][4] = 65535, cdf[0][4] = 65536); /* not ending at 2^16 */
    EXPECT_BAD(cdf[0][4] = 65537, cdf[0][4] = 65536);
    EXPECT_BAD(cdf[0][2] = 100, cdf[0][2] = 65000); /* empty bin */
    EXPECT_BAD(cdf[0][2] = 50, cdf[0][2] = 65000);  /* decreasing */
    EXPECT_BAD(len[1] = 2, len[1] = 4);             /* one bin */
    EXPECT_BAD(len[1] = 7, len[1] = 4);             /* past the stride */
    EXPECT_BAD(len[1] = -5, len[1] = 4);
    EXPECT_BAD(off[0] = INT32_MIN, off[0] = -1);
    EXPECT_BAD(off[0] = (1 << 30) + 1, off[0] = -1);
    EXPECT_BAD(med[1] = NAN, med[1] = -1.0f);
    EXPECT_BAD(med[1] = INFINITY, med[1] = -1.0f);
    EXPECT_BAD(d.channels = 0, d.channels = 2);
    EXPECT_BAD(d.cdf_stride = 2, d.cdf_stride = 6);
#undef EXPECT_BAD
    assert_int_equal(spw_codec_tables_create(NULL, &t), SPW_EINVAL);
    assert_int_not_equal(spw_codec_tables_load("/nonexistent/dir", &t), 0);
}

static void test_tables_load_dir(void **state)
{
    (void)state;
    spw_codec_tables *t = NULL;
    assert_int_equal(spw_codec_tables_load(VEC "/t6", &t), 0);
    assert_int_equal(spw_codec_tables_channels(t), 6);
    assert_true(fabsf(spw_codec_tables_median(t, 2) - (-1.7f)) < 1e-6f);
    spw_codec_tables_free(t);
}

/* ---- CompressAI vectors ----------------------------------------------------------- */

static void check_vector(const char *tables_dir, const char *name)
{
    char path[512];
    spw_codec_tables *t = NULL;
    assert_int_equal(spw_codec_tables_load(tables_dir, &t), 0);
    spw_tensor s = {0};
    snprintf(path, sizeof(path), VEC "/%s.npy", name);
    assert_int_equal(spw_npy_read(path, &s), 0);
    assert_int_equal(s.dtype, SPW_I32);
    assert_int_equal(s.ndim, 3);
    int C = (int)s.dims[0], H = (int)s.dims[1], W = (int)s.dims[2];
    size_t n = (size_t)C * H * W, len;
    snprintf(path, sizeof(path), VEC "/%s.bin", name);
    uint8_t *ref = read_bin(path, &len);

    spw_codec *k = make_codec(t, SPW_CODEC_PLAIN, 0, 0);
    /* Python stream -> C decoder. */
    int32_t *out = calloc(n, sizeof(int32_t));
    spw_codec_report rep;
    memset(&rep, 0, sizeof(rep));
    assert_int_equal(spw_codec_decode_buf(k, ref, len, C, H, W, out, &rep), 0);
    assert_memory_equal(out, s.data, n * sizeof(int32_t));
    assert_int_equal(rep.decoded, 1);
    /* C encoder -> the same bytes. */
    size_t cap = spw_codec_bound(k, C, H, W), got;
    uint8_t *buf = malloc(cap);
    assert_int_equal(spw_codec_encode_buf(k, s.data, C, H, W, buf, cap, &got), 0);
    assert_int_equal(got, len);
    assert_memory_equal(buf, ref, len);
    /* The cost model agrees with the stream to within the flushed state. */
    double bits = spw_codec_cost_bits(t, s.data, C, H, W);
    assert_true(len * 8.0 >= bits && len * 8.0 <= bits + 64 + 32);

    free(buf);
    free(out);
    free(ref);
    spw_free(s.data);
    spw_codec_free(k);
    spw_codec_tables_free(t);
}

static void test_vector_random(void **state)
{
    (void)state;
    check_vector(VEC "/t6", "random");
}
static void test_vector_skewed(void **state)
{
    (void)state;
    check_vector(VEC "/t6", "skewed");
}
static void test_vector_bypass(void **state)
{
    (void)state;
    check_vector(VEC "/t2", "bypass");
}

static void test_vector_tiled(void **state)
{
    (void)state;
    spw_codec_tables *t = NULL;
    assert_int_equal(spw_codec_tables_load(VEC "/t6", &t), 0);
    spw_tensor s = {0};
    assert_int_equal(spw_npy_read(VEC "/random.npy", &s), 0);
    int C = (int)s.dims[0], H = (int)s.dims[1], W = (int)s.dims[2];
    size_t n = (size_t)C * H * W, len;
    uint8_t *ref = read_bin(VEC "/random_tiled3.bin", &len);
    for (int threads = 1; threads <= 3; threads += 2) {
        spw_codec *k = make_codec(t, SPW_CODEC_TILED, threads, 3);
        size_t cap = spw_codec_bound(k, C, H, W), got;
        uint8_t *buf = malloc(cap);
        assert_int_equal(spw_codec_encode_buf(k, s.data, C, H, W, buf, cap, &got), 0);
        assert_int_equal(got, len);
        assert_memory_equal(buf, ref, len);
        int32_t *out = calloc(n, sizeof(int32_t));
        uint8_t bitmap[1];
        spw_codec_report rep = {.bitmap = bitmap, .bitmap_size = 1};
        assert_int_equal(spw_codec_decode_buf(k, ref, len, C, H, W, out, &rep), 0);
        assert_int_equal(rep.tiles, 3);
        assert_int_equal(rep.decoded, 3);
        assert_int_equal(bitmap[0], 7);
        assert_memory_equal(out, s.data, n * sizeof(int32_t));
        free(out);
        free(buf);
        spw_codec_free(k);
    }
    free(ref);
    spw_free(s.data);
    spw_codec_tables_free(t);
}

static void test_quantize(void **state)
{
    (void)state;
    spw_codec_tables *t = NULL;
    assert_int_equal(spw_codec_tables_load(VEC "/t6", &t), 0);
    spw_tensor y = {0}, s = {0};
    assert_int_equal(spw_npy_read(VEC "/latent.npy", &y), 0);
    assert_int_equal(spw_npy_read(VEC "/latent_symbols.npy", &s), 0);
    int C = (int)y.dims[0], H = (int)y.dims[1], W = (int)y.dims[2];
    size_t n = (size_t)C * H * W;
    int32_t *q = malloc(n * sizeof(int32_t));
    float *back = malloc(n * sizeof(float));
    assert_int_equal(spw_codec_quantize(t, y.data, C, H, W, q), 0);
    assert_memory_equal(q, s.data, n * sizeof(int32_t));
    assert_int_equal(spw_codec_dequantize(t, q, C, H, W, back), 0);
    for (size_t i = 0; i < n; i++)
        assert_true(fabsf(back[i] - ((float *)y.data)[i]) <= 0.5f + 1e-5f);
    /* Saturation and NaN. */
    float odd[6 * 1 * 1] = {NAN, 1e30f, -1e30f, 0, 0, 0};
    int32_t oq[6];
    assert_int_equal(spw_codec_quantize(t, odd, 6, 1, 1, oq), 0);
    assert_int_equal(oq[0], 0);
    assert_int_equal(oq[1], INT32_MAX);
    assert_int_equal(oq[2], INT32_MIN);
    assert_int_equal(spw_codec_quantize(t, odd, 5, 1, 1, oq), SPW_ESHAPE);
    free(q);
    free(back);
    spw_free(y.data);
    spw_free(s.data);
    spw_codec_tables_free(t);
}

/* ---- round trips ----------------------------------------------------------------- */

static void roundtrip(spw_codec *k, const spw_codec_tables *t, const int32_t *sym, int C, int H,
                      int W, size_t *bytes)
{
    size_t n = (size_t)C * H * W;
    size_t cap = spw_codec_bound(k, C, H, W), got;
    assert_true(cap > 0);
    uint8_t *buf = malloc(cap + 64);
    memset(buf, 0xcc, cap + 64);
    assert_int_equal(spw_codec_encode_buf(k, sym, C, H, W, buf, cap, &got), 0);
    for (size_t i = cap; i < cap + 64; i++)
        assert_int_equal(buf[i], 0xcc);
    int32_t *out = malloc(n * sizeof(int32_t));
    spw_codec_report rep = {0};
    assert_int_equal(spw_codec_decode_buf(k, buf, got, C, H, W, out, &rep), 0);
    assert_int_equal(rep.decoded, rep.tiles);
    assert_memory_equal(out, sym, n * sizeof(int32_t));
    if (bytes)
        *bytes = got;
    (void)t;
    free(out);
    free(buf);
}

static void test_roundtrip_sets(void **state)
{
    (void)state;
    double scales[48];
    for (int c = 0; c < 48; c++)
        scales[c] = 0.1 + 0.15 * c;
    synth s;
    synth_make(&s, 48, scales);
    spw_codec_tables *t = synth_tables(&s);
    const int C = 48, H = 28, W = 28;
    size_t n = (size_t)C * H * W;
    int32_t *sym = malloc(n * sizeof(int32_t));
    spw_codec *plain = make_codec(t, SPW_CODEC_PLAIN, 0, 0);
    spw_codec *tiled = make_codec(t, SPW_CODEC_TILED, 1, 0);
    spw_codec *tiled3 = make_codec(t, SPW_CODEC_TILED, 3, 5);
    for (int kind = 0; kind < 3; kind++) {
        gen_symbols(&s, kind, H, W, sym);
        size_t bytes;
        roundtrip(plain, t, sym, C, H, W, &bytes);
        /* Within the flush and word rounding of the ideal code length. */
        double bits = spw_codec_cost_bits(t, sym, C, H, W);
        assert_true(bytes * 8.0 >= bits);
        assert_true(bytes * 8.0 <= bits * 1.001 + 64 + 32);
        roundtrip(tiled, t, sym, C, H, W, NULL);
        roundtrip(tiled3, t, sym, C, H, W, NULL);
    }
    /* Odd shapes, one row, one column, one symbol per channel. */
    int shapes[][2] = {{1, 1}, {1, 13}, {13, 1}, {5, 7}, {127, 3}};
    for (size_t i = 0; i < SPW_ARRAY_SIZE(shapes); i++) {
        gen_symbols(&s, (int)i % 3, shapes[i][0], shapes[i][1], sym);
        roundtrip(plain, t, sym, C, shapes[i][0], shapes[i][1], NULL);
        roundtrip(tiled, t, sym, C, shapes[i][0], shapes[i][1], NULL);
        roundtrip(tiled3, t, sym, C, shapes[i][0], shapes[i][1], NULL);
    }
    spw_codec_free(plain);
    spw_codec_free(tiled);
    spw_codec_free(tiled3);
    free(sym);
    spw_codec_tables_free(t);
    synth_free(&s);
}

/* Worst case for the size bound: tail bins of frequency 1 and 8-nibble bypass. */
static void test_bound_and_range(void **state)
{
    (void)state;
    int32_t cdf[2][3] = {{0, 65535, 65536}, {0, 1, 65536}};
    int32_t len[2] = {3, 3}, off[2] = {0, 1};
    spw_codec_table_desc d = {2, 3, &cdf[0][0], len, off, NULL};
    spw_codec_tables *t = NULL;
    assert_int_equal(spw_codec_tables_create(&d, &t), 0);
    const int C = 2, H = 9, W = 17;
    size_t n = (size_t)C * H * W;
    int32_t *sym = malloc(n * sizeof(int32_t));
    for (size_t i = 0; i < n; i++)
        sym[i] = i < n / 2 ? INT32_MIN : (i & 1 ? INT32_MAX : 0);
    sym[n / 2 + 1] = INT32_MAX; /* channel 1: v = 2^31 - 2, raw < 2^32 */
    spw_codec *k = make_codec(t, SPW_CODEC_PLAIN, 0, 0);
    spw_codec *kt = make_codec(t, SPW_CODEC_TILED, 2, 2);
    roundtrip(k, t, sym, C, H, W, NULL);
    roundtrip(kt, t, sym, C, H, W, NULL);
    /* Channel 1 (offset 1): INT32_MIN is 2^31 + 1 below bin 0 -> raw >= 2^32. */
    sym[n - 1] = INT32_MIN;
    uint8_t *buf = malloc(spw_codec_bound(k, C, H, W));
    size_t got;
    assert_int_equal(spw_codec_encode_buf(k, sym, C, H, W, buf, spw_codec_bound(k, C, H, W), &got),
                     SPW_ERANGE);
    free(buf);
    free(sym);
    spw_codec_free(k);
    spw_codec_free(kt);
    spw_codec_tables_free(t);
}

/* ---- segments -------------------------------------------------------------------- */

/* Encodes into segments of the given sizes carved from one guarded buffer and
 * checks the bytes against the contiguous stream, then decodes them from a
 * different split. */
static void segments_case(spw_codec *k, const int32_t *sym, int C, int H, int W, const uint8_t *ref,
                          size_t ref_len, const size_t *sizes, int nsegs)
{
    size_t total = 0;
    for (int i = 0; i < nsegs; i++)
        total += sizes[i];
    /* 16 guard bytes between segments. */
    uint8_t *mem = malloc(total + 16 * (size_t)(nsegs + 1));
    memset(mem, 0xa5, total + 16 * (size_t)(nsegs + 1));
    assert_true(nsegs > 0);
    spw_codec_seg *segs = calloc((size_t)(unsigned)nsegs, sizeof(*segs));
    size_t at = 16;
    for (int i = 0; i < nsegs; i++) {
        segs[i].data = mem + at;
        segs[i].size = sizes[i];
        at += sizes[i] + 16;
    }
    spw_codec_span span;
    int rc = spw_codec_encode(k, sym, C, H, W, segs, nsegs, &span);
    at = 0;
    for (int i = 0; i <= nsegs; i++) {
        for (size_t g = 0; g < 16; g++)
            assert_int_equal(mem[at + g], 0xa5);
        if (i < nsegs)
            at += 16 + sizes[i];
    }
    if (total < ref_len) {
        assert_int_equal(rc, SPW_ENOSPC);
        free(segs);
        free(mem);
        return;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(span.bytes, ref_len);
    /* Gather and compare; every segment after the first is full. */
    uint8_t *g = malloc(ref_len);
    size_t got = 0;
    for (int i = span.first; i < nsegs; i++) {
        size_t o = i == span.first ? span.offset : 0;
        assert_true(o <= segs[i].size);
        memcpy(g + got, (uint8_t *)segs[i].data + o, segs[i].size - o);
        got += segs[i].size - o;
    }
    assert_int_equal(got, ref_len);
    assert_memory_equal(g, ref, ref_len);

    /* Decode from the encoder's own segments (first one trimmed). */
    size_t n = (size_t)C * H * W;
    int32_t *out = malloc(n * sizeof(int32_t));
    spw_codec_seg *rd = calloc((size_t)(unsigned)nsegs, sizeof(*rd));
    int nr = 0;
    for (int i = span.first; i < nsegs; i++) {
        size_t o = i == span.first ? span.offset : 0;
        rd[nr].data = (uint8_t *)segs[i].data + o;
        rd[nr].size = segs[i].size - o;
        nr++;
    }
    assert_int_equal(spw_codec_decode(k, rd, nr, C, H, W, out, NULL), 0);
    assert_memory_equal(out, sym, n * sizeof(int32_t));
    free(rd);
    free(out);
    free(g);
    free(segs);
    free(mem);
}

static void decode_split(spw_codec *k, const int32_t *sym, int C, int H, int W, const uint8_t *ref,
                         size_t len, size_t piece)
{
    size_t n = (size_t)C * H * W;
    int nsegs = (int)((len + piece - 1) / piece) + 2;
    spw_codec_seg *segs = calloc((size_t)nsegs, sizeof(*segs));
    uint8_t **copies = calloc((size_t)nsegs, sizeof(*copies));
    size_t at = 0;
    int ns = 0;
    segs[ns++] = (spw_codec_seg){NULL, 0}; /* empty segments are skipped */
    while (at < len) {
        size_t take = SPW_MIN(piece, len - at);
        copies[ns] = malloc(take); /* separate blocks: ASan sees any overrun */
        memcpy(copies[ns], ref + at, take);
        segs[ns] = (spw_codec_seg){copies[ns], take};
        ns++;
        at += take;
    }
    segs[ns++] = (spw_codec_seg){NULL, 0};
    int32_t *out = malloc(n * sizeof(int32_t));
    assert_int_equal(spw_codec_decode(k, segs, ns, C, H, W, out, NULL), 0);
    assert_memory_equal(out, sym, n * sizeof(int32_t));
    free(out);
    for (int i = 0; i < ns; i++)
        free(copies[i]);
    free(copies);
    free(segs);
}

static void test_segments(void **state)
{
    (void)state;
    double scales[8] = {0.3, 0.8, 1.5, 2.5, 4.0, 0.5, 1.0, 6.0};
    synth s;
    synth_make(&s, 8, scales);
    spw_codec_tables *t = synth_tables(&s);
    const int C = 8, H = 11, W = 13;
    size_t n = (size_t)C * H * W;
    int32_t *sym = malloc(n * sizeof(int32_t));
    for (int fmt = 0; fmt < 2; fmt++) {
        spw_codec *k = make_codec(t, fmt, fmt ? 2 : 0, 3);
        for (int kind = 0; kind < 3; kind++) {
            gen_symbols(&s, kind, H, W, sym);
            size_t cap = spw_codec_bound(k, C, H, W), len;
            uint8_t *ref = malloc(cap);
            assert_int_equal(spw_codec_encode_buf(k, sym, C, H, W, ref, cap, &len), 0);
            /* One segment: exact, roomy. */
            size_t one[1] = {len};
            segments_case(k, sym, C, H, W, ref, len, one, 1);
            one[0] = (len + 400) & ~(size_t)3;
            segments_case(k, sym, C, H, W, ref, len, one, 1);
            /* 4-byte segments. */
            int n4 = (int)(len / 4) + 3;
            size_t *four = malloc((size_t)n4 * sizeof(size_t));
            for (int i = 0; i < n4; i++)
                four[i] = 4;
            segments_case(k, sym, C, H, W, ref, len, four, n4);
            free(four);
            /* Odd mixes with empty segments. */
            size_t mix[] = {8, 0, 12, 4, 100, 0, 36, 1000, 4, 20, 0, 4096, 8};
            segments_case(k, sym, C, H, W, ref, len, mix, (int)SPW_ARRAY_SIZE(mix));
            size_t tight[] = {len - 8, 4, 4};
            segments_case(k, sym, C, H, W, ref, len, tight, 3);
            /* Too small by one word in total -> ENOSPC, guards intact. */
            size_t small[] = {4, 8, len - 16};
            segments_case(k, sym, C, H, W, ref, len, small, 3);
            size_t none[] = {0};
            segments_case(k, sym, C, H, W, ref, len, none, 1);
            /* Decoder with splits unrelated to the encoder's. */
            size_t pieces[] = {4, 8, 12, 52, 256};
            for (size_t p = 0; p < SPW_ARRAY_SIZE(pieces); p++)
                decode_split(k, sym, C, H, W, ref, len, pieces[p]);
            free(ref);
        }
        /* Contiguous API: too small, and not word-sized segments. */
        gen_symbols(&s, 1, H, W, sym);
        uint8_t tiny[64];
        size_t got = 123;
        assert_int_equal(spw_codec_encode_buf(k, sym, C, H, W, tiny, sizeof(tiny), &got),
                         SPW_ENOSPC);
        assert_int_equal(got, 0);
        spw_codec_seg bad = {tiny, 6};
        spw_codec_span span;
        assert_int_equal(spw_codec_encode(k, sym, C, H, W, &bad, 1, &span), SPW_EINVAL);
        assert_int_equal(spw_codec_decode(k, &bad, 1, C, H, W, sym, NULL), SPW_EINVAL);
        spw_codec_free(k);
    }
    free(sym);
    spw_codec_tables_free(t);
    synth_free(&s);
}

/* ---- damage ------------------------------------------------------------------- */

static void test_truncation(void **state)
{
    (void)state;
    spw_codec_tables *t = NULL;
    assert_int_equal(spw_codec_tables_load(VEC "/t6", &t), 0);
    spw_tensor s = {0};
    assert_int_equal(spw_npy_read(VEC "/random.npy", &s), 0);
    int C = (int)s.dims[0], H = (int)s.dims[1], W = (int)s.dims[2];
    size_t n = (size_t)C * H * W, len;
    uint8_t *ref = read_bin(VEC "/random.bin", &len);
    spw_codec *k = make_codec(t, SPW_CODEC_PLAIN, 0, 0);
    int32_t *out = malloc(n * sizeof(int32_t));
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *p = malloc(cut + 1); /* exact-size block for ASan */
        memcpy(p, ref, cut);
        int rc = spw_codec_decode_buf(k, p, cut, C, H, W, out, NULL);
        assert_true(rc == SPW_ETRUNC || rc == SPW_ECORRUPT);
        assert_true(strlen(spw_error_detail()) > 0);
        free(p);
    }
    /* Extra bytes are damage too. */
    uint8_t *p = malloc(len + 4);
    memcpy(p, ref, len);
    memset(p + len, 0, 4);
    assert_int_equal(spw_codec_decode_buf(k, p, len + 4, C, H, W, out, NULL), SPW_ECORRUPT);
    free(p);
    spw_codec_free(k);

    /* Tiled: every cut keeps the whole tiles before it. */
    free(ref);
    ref = read_bin(VEC "/random_tiled3.bin", &len);
    k = make_codec(t, SPW_CODEC_TILED, 0, 0);
    for (size_t cut = 0; cut <= len; cut += 4) {
        uint8_t *q = malloc(cut + 1);
        memcpy(q, ref, cut);
        spw_codec_report rep = {0};
        int rc = spw_codec_decode_buf(k, q, cut, C, H, W, out, &rep);
        if (rep.decoded)
            assert_int_equal(rc, 0);
        else
            assert_true(rc == SPW_ETRUNC || rc == SPW_ECORRUPT);
        /* Decoded tiles are right, the rest are zero. */
        for (int tile = 0; tile < rep.tiles; tile++) {
            for (int c = 0; c < C; c++)
                for (int r = tile * 3; r < SPW_MIN(H, tile * 3 + 3); r++)
                    for (int w = 0; w < W; w++) {
                        size_t i = ((size_t)c * H + r) * W + w;
                        int32_t want = tile < rep.decoded ? ((int32_t *)s.data)[i] : 0;
                        assert_int_equal(out[i], want);
                    }
        }
        free(q);
    }
    free(out);
    free(ref);
    spw_free(s.data);
    spw_codec_free(k);
    spw_codec_tables_free(t);
}

static void test_corruption(void **state)
{
    (void)state;
    double scales[6] = {0.3, 1.0, 2.0, 3.5, 0.7, 5.0};
    synth s;
    synth_make(&s, 6, scales);
    spw_codec_tables *t = synth_tables(&s);
    const int C = 6, H = 12, W = 10;
    size_t n = (size_t)C * H * W;
    int32_t *sym = malloc(n * sizeof(int32_t)), *out = malloc(n * sizeof(int32_t));
    spw_codec *k = make_codec(t, SPW_CODEC_PLAIN, 0, 0);
    for (int kind = 0; kind < 3; kind++) {
        gen_symbols(&s, kind, H, W, sym);
        size_t cap = spw_codec_bound(k, C, H, W), len;
        uint8_t *ref = malloc(cap);
        assert_int_equal(spw_codec_encode_buf(k, sym, C, H, W, ref, cap, &len), 0);
        int detected = 0;
        for (int trial = 0; trial < 300; trial++) {
            uint8_t *p = malloc(len);
            memcpy(p, ref, len);
            int flips = 1 + (int)(rnd() % 4);
            for (int f = 0; f < flips; f++)
                p[rnd() % len] ^= (uint8_t)(1u << (rnd() % 8));
            if (trial % 10 == 0) /* garbage */
                for (size_t i = 0; i < len; i++)
                    p[i] = (uint8_t)rnd();
            int rc = spw_codec_decode_buf(k, p, len, C, H, W, out, NULL);
            assert_true(rc == 0 || rc == SPW_ETRUNC || rc == SPW_ECORRUPT);
            detected += rc != 0;
            free(p);
        }
        /* The end-state check catches nearly every flip. */
        assert_true(detected > 250);
        free(ref);
    }
    spw_codec_free(k);
    free(sym);
    free(out);
    spw_codec_tables_free(t);
    synth_free(&s);
}

/* Locates tile i's bytes in a tiled stream by walking the headers. */
static void tile_span(const uint8_t *p, size_t len, int want, size_t *start, size_t *bytes)
{
    size_t at = 0;
    while (at + 16 <= len) {
        uint32_t plen = (uint32_t)p[at + 8] | (uint32_t)p[at + 9] << 8 |
                        (uint32_t)p[at + 10] << 16 | (uint32_t)p[at + 11] << 24;
        int idx = p[at + 2] | p[at + 3] << 8;
        if (idx == want) {
            *start = at;
            *bytes = 16 + plen;
            return;
        }
        at += 16 + plen;
    }
    fail_msg("tile %d not found", want);
}

static void check_tiles(const int32_t *out, const int32_t *sym, int C, int H, int W, int rows,
                        uint32_t lost_mask)
{
    for (int c = 0; c < C; c++)
        for (int r = 0; r < H; r++)
            for (int w = 0; w < W; w++) {
                size_t i = ((size_t)c * H + r) * W + w;
                int lost = (lost_mask >> (r / rows)) & 1;
                assert_int_equal(out[i], lost ? 0 : sym[i]);
            }
}

static void test_tiled_loss(void **state)
{
    (void)state;
    double scales[16];
    for (int c = 0; c < 16; c++)
        scales[c] = 0.3 + 0.3 * c;
    synth s;
    synth_make(&s, 16, scales);
    spw_codec_tables *t = synth_tables(&s);
    const int C = 16, H = 20, W = 9, rows = 3, ntiles = 7;
    size_t n = (size_t)C * H * W;
    /* out also takes the wrong-shape (W + 1) decode below. */
    int32_t *sym = malloc(n * sizeof(int32_t)), *out = malloc((n + C * H) * sizeof(int32_t));
    gen_symbols(&s, 1, H, W, sym);
    for (int threads = 1; threads <= 4; threads += 3) {
        spw_codec *k = make_codec(t, SPW_CODEC_TILED, threads, rows);
        assert_int_equal(spw_codec_tile_count(k, H, W), ntiles);
        size_t cap = spw_codec_bound(k, C, H, W), len;
        uint8_t *ref = malloc(cap), *p = malloc(cap);
        assert_int_equal(spw_codec_encode_buf(k, sym, C, H, W, ref, cap, &len), 0);
        uint8_t bitmap[2];
        spw_codec_report rep = {.bitmap = bitmap, .bitmap_size = sizeof(bitmap)};

        /* Drop each tile in turn. */
        for (int lost = 0; lost < ntiles; lost++) {
            size_t st, nb;
            tile_span(ref, len, lost, &st, &nb);
            memcpy(p, ref, st);
            memcpy(p + st, ref + st + nb, len - st - nb);
            assert_int_equal(spw_codec_decode_buf(k, p, len - nb, C, H, W, out, &rep), 0);
            assert_int_equal(rep.tiles, ntiles);
            assert_int_equal(rep.decoded, ntiles - 1);
            assert_int_equal(rep.corrupt, 0);
            assert_int_equal(bitmap[0], 0x7f & ~(1u << lost));
            check_tiles(out, sym, C, H, W, rows, 1u << lost);
        }
        /* Corrupt a payload byte of tile 2 and the header length of tile 5:
         * both are rejected, the reader resyncs after the second. */
        size_t st2, nb2, st5, nb5;
        tile_span(ref, len, 2, &st2, &nb2);
        tile_span(ref, len, 5, &st5, &nb5);
        memcpy(p, ref, len);
        p[st2 + 16 + nb2 / 3] ^= 0x10;
        p[st5 + 9] ^= 0x01;
        assert_int_equal(spw_codec_decode_buf(k, p, len, C, H, W, out, &rep), 0);
        assert_int_equal(rep.decoded, ntiles - 2);
        assert_int_equal(rep.corrupt, 2);
        assert_int_equal(bitmap[0], 0x7f & ~0x24u);
        check_tiles(out, sym, C, H, W, rows, 0x24);
        /* Tile 2's payload from another latent, under tile 2's own header:
         * a valid stream of the same length, so only the header's payload
         * checksum tells it is not this tile's. */
        uint8_t *other = malloc(cap);
        int32_t *sym2 = malloc(n * sizeof(int32_t));
        size_t len2 = 0, sto, nbo = 0;
        for (int tries = 0; tries < 500 && nbo != nb2; tries++) {
            gen_symbols(&s, 1, H, W, sym2);
            assert_int_equal(spw_codec_encode_buf(k, sym2, C, H, W, other, cap, &len2), 0);
            tile_span(other, len2, 2, &sto, &nbo);
        }
        assert_int_equal(nbo, nb2);
        assert_memory_not_equal(other + sto + 16, ref + st2 + 16, nb2 - 16);
        memcpy(p, ref, len);
        memcpy(p + st2 + 16, other + sto + 16, nb2 - 16);
        assert_int_equal(spw_codec_decode_buf(k, p, len, C, H, W, out, &rep), 0);
        assert_int_equal(rep.decoded, ntiles - 1);
        assert_int_equal(rep.corrupt, 1);
        assert_int_equal(bitmap[0], 0x7f & ~0x04u);
        check_tiles(out, sym, C, H, W, rows, 0x04);
        free(sym2);
        free(other);
        /* Reversed tile order, plus a duplicate. */
        size_t at = 0;
        for (int i = ntiles - 1; i >= 0; i--) {
            size_t st, nb;
            tile_span(ref, len, i, &st, &nb);
            memcpy(p + at, ref + st, nb);
            at += nb;
        }
        uint8_t *big = malloc(len * 2);
        memcpy(big, p, len);
        memcpy(big + len, p, len);
        assert_int_equal(spw_codec_decode_buf(k, big, 2 * len, C, H, W, out, &rep), 0);
        assert_int_equal(rep.decoded, ntiles);
        assert_memory_equal(out, sym, n * sizeof(int32_t));
        /* Wrong shape: no header checks out. */
        assert_int_equal(spw_codec_decode_buf(k, ref, len, C, H, W + 1, out, &rep), SPW_ECORRUPT);
        assert_int_equal(rep.decoded, 0);
        /* Garbage around tiles. */
        for (size_t i = 0; i < len; i++)
            big[i] = (uint8_t)rnd();
        memcpy(big + 64, ref, len);
        assert_int_equal(spw_codec_decode_buf(k, big, len + 64 + 40, C, H, W, out, &rep), 0);
        assert_int_equal(rep.decoded, ntiles);
        assert_memory_equal(out, sym, n * sizeof(int32_t));
        free(big);
        free(ref);
        free(p);
        spw_codec_free(k);
    }
    free(sym);
    free(out);
    spw_codec_tables_free(t);
    synth_free(&s);
}

/* ---- allocation failure ------------------------------------------------------- */

static long alloc_budget, alloc_count, alloc_live;

static void *fail_malloc(size_t size, void *ctx)
{
    (void)ctx;
    if (alloc_count++ >= alloc_budget)
        return NULL;
    void *p = malloc(size);
    if (p)
        alloc_live++;
    return p;
}
static void *fail_realloc(void *ptr, size_t size, void *ctx)
{
    (void)ctx;
    if (alloc_count++ >= alloc_budget)
        return NULL;
    void *p = realloc(ptr, size);
    if (p && !ptr)
        alloc_live++;
    return p;
}
static void fail_free(void *ptr, void *ctx)
{
    (void)ctx;
    if (ptr)
        alloc_live--;
    free(ptr);
}

static int oom_run(const synth *s, const int32_t *sym, int C, int H, int W, int fmt)
{
    spw_codec_table_desc d = synth_desc(s);
    spw_codec_tables *t = NULL;
    spw_codec *k = NULL;
    int rc = spw_codec_tables_create(&d, &t);
    if (rc)
        return rc;
    spw_codec_config cfg = {fmt, fmt ? 3 : 0, 2};
    if ((rc = spw_codec_create(t, &cfg, &k)))
        goto out_tables;
    size_t n = (size_t)C * H * W, cap = spw_codec_bound(k, C, H, W), len;
    uint8_t *buf = malloc(cap);
    int32_t *out = malloc(n * sizeof(int32_t));
    if ((rc = spw_codec_encode_buf(k, sym, C, H, W, buf, cap, &len)) == 0 &&
        (rc = spw_codec_decode_buf(k, buf, len, C, H, W, out, NULL)) == 0)
        assert_memory_equal(out, sym, n * sizeof(int32_t));
    free(out);
    free(buf);
    spw_codec_free(k);
out_tables:
    spw_codec_tables_free(t);
    return rc;
}

static void test_alloc_failure(void **state)
{
    (void)state;
    double scales[4] = {0.5, 1.0, 2.0, 3.0};
    synth s;
    synth_make(&s, 4, scales);
    const int C = 4, H = 9, W = 7;
    int32_t sym[4 * 9 * 7];
    gen_symbols(&s, 2, H, W, sym);
    spw_allocator a = {fail_malloc, fail_realloc, fail_free, NULL};
    for (int fmt = 0; fmt < 2; fmt++) {
        int rc = -1;
        for (alloc_budget = 0; alloc_budget < 100 && rc != 0; alloc_budget++) {
            alloc_count = alloc_live = 0;
            spw_set_allocator(&a);
            rc = oom_run(&s, sym, C, H, W, fmt);
            spw_set_allocator(NULL);
            assert_true(rc == 0 || rc == SPW_ENOMEM);
            assert_int_equal(alloc_live, 0);
        }
        assert_int_equal(rc, 0);
        assert_true(alloc_budget > 2);
    }
    synth_free(&s);
}

static void test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(spw_crc32c(0, "123456789", 9), 0xe3069283u);
    uint8_t buf[1000];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 7 + 3);
    uint32_t whole = spw_crc32c(0, buf, sizeof(buf));
    assert_int_equal(spw_crc32c(spw_crc32c(0, buf, 333), buf + 333, 667), whole);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),          cmocka_unit_test(test_tables_validation),
        cmocka_unit_test(test_tables_load_dir), cmocka_unit_test(test_vector_random),
        cmocka_unit_test(test_vector_skewed),   cmocka_unit_test(test_vector_bypass),
        cmocka_unit_test(test_vector_tiled),    cmocka_unit_test(test_quantize),
        cmocka_unit_test(test_roundtrip_sets),  cmocka_unit_test(test_bound_and_range),
        cmocka_unit_test(test_segments),        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_corruption),      cmocka_unit_test(test_tiled_loss),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* splitwire bench codec: throughput of the entropy codec on a 48x28x28 latent. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "splitwire/codec.h"
#include "tools/cli/cli.h"

/* ---- realistic tables --------------------------------------------------------- */

/* Discretised Gaussian per channel, tails at 6 sigma plus a tail bin,
 * quantised to 16 bits with every bin >= 1. */
typedef struct bench_tables {
    int C, stride;
    int32_t *cdf, *len, *off;
    float *med;
} bench_tables;

static double phi(double x)
{
    return 0.5 * erfc(-x / sqrt(2.0));
}

static void gauss_row(double sigma, int32_t *row, int32_t *len, int32_t *off)
{
    int m = (int)ceil(6.0 * sigma) + 1, nb = 2 * m + 2, big = 0;
    int32_t f[2048] = {0}, sum = 0; /* sigma stays small enough for 2048 bins */
    for (int b = 0; b < nb; b++) {
        double p;
        if (b == nb - 1)
            p = 2.0 * (1.0 - phi((m + 0.5) / sigma));
        else
            p = phi((b - m + 0.5) / sigma) - phi((b - m - 0.5) / sigma);
        f[b] = (int32_t)floor(p * 65536.0 + 0.5);
        if (f[b] < 1)
            f[b] = 1;
        sum += f[b];
        if (f[b] > f[big])
            big = b;
    }
    f[big] += 65536 - sum;
    row[0] = 0;
    for (int b = 0; b < nb; b++)
        row[b + 1] = row[b] + f[b];
    *len = nb + 1;
    *off = -m;
}

static double row_entropy(const int32_t *row, int32_t len)
{
    double h = 0;
    for (int b = 0; b + 1 < len; b++) {
        double p = (row[b + 1] - row[b]) / 65536.0;
        h -= p * log2(p);
    }
    return h;
}

/* Channel c's sigma = k * spread[c]; k found by bisection so that the mean
 * table entropy is the target. */
static int bench_tables_make(bench_tables *t, int C, double target)
{
    t->C = C;
    t->stride = 2 * ((int)ceil(6.0 * 40.0) + 1) + 3;
    t->cdf = calloc((size_t)C * t->stride, sizeof(int32_t));
    t->len = calloc((size_t)C, sizeof(int32_t));
    t->off = calloc((size_t)C, sizeof(int32_t));
    t->med = calloc((size_t)C, sizeof(float));
    if (!t->cdf || !t->len || !t->off || !t->med)
        return SPW_ENOMEM;
    double lo = 0.02, hi = 20.0;
    for (int it = 0; it < 60; it++) {
        double k = sqrt(lo * hi), h = 0;
        for (int c = 0; c < C; c++) {
            double spread = 0.5 + (double)c / (C > 1 ? C - 1 : 1);
            int32_t *row = t->cdf + (size_t)c * t->stride;
            gauss_row(k * spread, row, &t->len[c], &t->off[c]);
            h += row_entropy(row, t->len[c]);
            t->med[c] = 0.01f * (float)c;
        }
        if (h / C < target)
            lo = k;
        else
            hi = k;
    }
    return 0;
}

static void bench_tables_free(bench_tables *t)
{
    free(t->cdf);
    free(t->len);
    free(t->off);
    free(t->med);
}

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint32_t rnd32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

/* Symbols drawn from the tables; tail draws land just outside the range. */
static void sample(const bench_tables *t, int HW, int32_t *out)
{
    for (int c = 0; c < t->C; c++) {
        const int32_t *row = t->cdf + (size_t)c * t->stride;
        int maxv = t->len[c] - 2;
        for (int i = 0; i < HW; i++) {
            int32_t u = (int32_t)(rnd32() & 0xffff), lo = 0, hi = maxv;
            while (lo < hi) {
                int32_t mid = (lo + hi + 1) / 2;
                if (row[mid] <= u)
                    lo = mid;
                else
                    hi = mid - 1;
            }
            int32_t v = lo;
            if (v == maxv)
                v = (rnd32() & 1) ? -1 - (int32_t)(rnd32() % 3) : maxv + (int32_t)(rnd32() % 3);
            out[(size_t)c * HW + i] = v + t->off[c];
        }
    }
}

/* ---- the in-run baseline: a CompressAI-style coder ---------------------------- */

/*
 * What CompressAI's C++ RansEncoder/RansDecoder do per symbol: the encoder
 * first queues (start, freq, bypass) for every symbol and put, then codes the
 * queue backwards with a true division; the decoder finds each symbol by a
 * linear scan of the CDF. Same stream, so it also cross-checks ours.
 */
typedef struct base_sym {
    uint16_t start, freq;
    uint8_t bypass;
} base_sym;

static size_t base_encode(const bench_tables *t, const int32_t *sym, int HW, base_sym *q,
                          uint32_t *words, size_t nwords)
{
    size_t nq = 0;
    for (int c = 0; c < t->C; c++) {
        const int32_t *cdf = t->cdf + (size_t)c * t->stride;
        int32_t maxv = t->len[c] - 2;
        for (int i = 0; i < HW; i++) {
            int32_t v = sym[(size_t)c * HW + i] - t->off[c];
            uint32_t raw = 0;
            if (v < 0) {
                raw = (uint32_t)(-2 * v - 1);
                v = maxv;
            } else if (v >= maxv) {
                raw = (uint32_t)(2 * (v - maxv));
                v = maxv;
            }
            q[nq++] = (base_sym){(uint16_t)cdf[v], (uint16_t)(cdf[v + 1] - cdf[v]), 0};
            if (v == maxv) {
                int nb = 0;
                while (nb < 8 && (raw >> (4 * nb)))
                    nb++;
                int val = nb;
                while (val >= 15) {
                    q[nq++] = (base_sym){15, 16, 1};
                    val -= 15;
                }
                q[nq++] = (base_sym){(uint16_t)val, (uint16_t)(val + 1), 1};
                for (int j = 0; j < nb; j++)
                    q[nq++] = (base_sym){(uint16_t)((raw >> (4 * j)) & 15), 0, 1};
            }
        }
    }
    uint64_t x = 1ull << 31;
    uint32_t *p = words + nwords;
    while (nq) {
        base_sym s = q[--nq];
        if (!s.bypass) {
            if (x >= ((uint64_t)s.freq << 47)) {
                *--p = (uint32_t)x;
                x >>= 32;
            }
            x = ((x / s.freq) << 16) + (x % s.freq) + s.start;
        } else {
            if (x >= (1ull << 59)) {
                *--p = (uint32_t)x;
                x >>= 32;
            }
            x = (x << 4) | s.start;
        }
    }
    *--p = (uint32_t)(x >> 32);
    *--p = (uint32_t)x;
    size_t n = (size_t)(words + nwords - p);
    memmove(words, p, n * 4);
    return n * 4;
}

static uint32_t base_bits(uint64_t *x, const uint32_t **p)
{
    uint32_t v = (uint32_t)*x & 15;
    *x >>= 4;
    if (*x < (1ull << 31))
        *x = (*x << 32) | *(*p)++;
    return v;
}

static void base_decode(const bench_tables *t, const uint32_t *words, int HW, int32_t *out)
{
    const uint32_t *p = words + 2;
    uint64_t x = (uint64_t)words[0] | (uint64_t)words[1] << 32;
    for (int c = 0; c < t->C; c++) {
        const int32_t *cdf = t->cdf + (size_t)c * t->stride;
        int32_t maxv = t->len[c] - 2;
        for (int i = 0; i < HW; i++) {
            uint32_t cum = (uint32_t)x & 0xffff;
            int32_t s = 0;
            while (cdf[s + 1] <= (int32_t)cum)
                s++;
            x = (uint64_t)(cdf[s + 1] - cdf[s]) * (x >> 16) + cum - (uint32_t)cdf[s];
            if (x < (1ull << 31))
                x = (x << 32) | *p++;
            int32_t v = s;
            if (s == maxv) {
                uint32_t val = base_bits(&x, &p), nb = val;
                while (val == 15)
                    nb += val = base_bits(&x, &p);
                uint32_t raw = 0;
                for (uint32_t j = 0; j < nb; j++)
                    raw |= base_bits(&x, &p) << (4 * j);
                v = (raw & 1) ? -(int32_t)(raw >> 1) - 1 : (int32_t)(raw >> 1) + maxv;
            }
            out[(size_t)c * HW + i] = v + t->off[c];
        }
    }
}

/* ---- timing --------------------------------------------------------------------- */

static double median_ns(double *v, int n)
{
    spw_cli_stats st;
    spw_cli_stats_of(v, n, &st);
    return st.median;
}

typedef struct result {
    const char *level, *variant;
    int threads;
    double enc_ns, dec_ns; /* median per latent */
    size_t bytes;
} result;

typedef struct bench_opts {
    int repeat, threads;
    bool json;
} bench_opts;

#define BC 48
#define BH 28
#define BW 28
#define BN (BC * BH * BW)

static int run_codec(spw_codec *k, const int32_t *sym, int repeat, uint8_t *buf, size_t cap,
                     int32_t *out, result *r)
{
    double *te = malloc(sizeof(double) * (size_t)repeat);
    double *td = malloc(sizeof(double) * (size_t)repeat);
    if (!te || !td) {
        free(te);
        free(td);
        return SPW_ENOMEM;
    }
    int rc = 0;
    size_t len = 0;
    for (int i = 0; i < repeat && !rc; i++) {
        uint64_t t0 = spw_cli_now_ns();
        rc = spw_codec_encode_buf(k, sym, BC, BH, BW, buf, cap, &len);
        uint64_t t1 = spw_cli_now_ns();
        if (!rc)
            rc = spw_codec_decode_buf(k, buf, len, BC, BH, BW, out, NULL);
        uint64_t t2 = spw_cli_now_ns();
        te[i] = (double)(t1 - t0);
        td[i] = (double)(t2 - t1);
    }
    if (!rc && memcmp(out, sym, sizeof(int32_t) * BN))
        rc = SPW_EINTERNAL;
    if (!rc) {
        r->enc_ns = median_ns(te, repeat);
        r->dec_ns = median_ns(td, repeat);
        r->bytes = len;
    }
    free(te);
    free(td);
    return rc;
}

static void print_result(const result *r, const result *base, bool json, bool *first)
{
    double ms_e = BN / r->enc_ns * 1e3, ms_d = BN / r->dec_ns * 1e3;
    if (json) {
        printf("%s    {\"level\": \"%s\", \"coder\": \"%s\", \"threads\": %d, "
               "\"encode_msym_s\": %.1f, \"decode_msym_s\": %.1f, "
               "\"encode_ns_sym\": %.3f, \"decode_ns_sym\": %.3f, "
               "\"encode_mb_s\": %.1f, \"decode_mb_s\": %.1f, \"bytes\": %zu",
               *first ? "" : ",\n", r->level, r->variant, r->threads, ms_e, ms_d, r->enc_ns / BN,
               r->dec_ns / BN, r->bytes / r->enc_ns * 1e3, r->bytes / r->dec_ns * 1e3, r->bytes);
        if (base)
            printf(", \"encode_speedup\": %.2f, \"decode_speedup\": %.2f", base->enc_ns / r->enc_ns,
                   base->dec_ns / r->dec_ns);
        printf("}");
        *first = false;
        return;
    }
    printf("  %-6s %-22s %2d  %8.1f %8.1f  %6.2f %6.2f  %7.1f %7.1f  %7zu", r->level, r->variant,
           r->threads, ms_e, ms_d, r->enc_ns / BN, r->dec_ns / BN, r->bytes / r->enc_ns * 1e3,
           r->bytes / r->dec_ns * 1e3, r->bytes);
    if (base)
        printf("  %5.2fx %5.2fx", base->enc_ns / r->enc_ns, base->dec_ns / r->dec_ns);
    printf("\n");
}

static int bench_level(const char *name, double target, const bench_opts *o, bool *first)
{
    bench_tables bt = {0};
    int rc = bench_tables_make(&bt, BC, target);
    spw_codec_tables *t = NULL;
    spw_codec *plain = NULL, *tiled1 = NULL, *tiledn = NULL;
    int32_t *sym = malloc(sizeof(int32_t) * BN), *out = malloc(sizeof(int32_t) * BN);
    base_sym *q = malloc(sizeof(base_sym) * BN * 12);
    size_t cap = (size_t)BN * 8 + 4096;
    uint8_t *buf = malloc(cap);
    uint32_t *words = malloc(cap);
    if (rc || !sym || !out || !q || !buf || !words) {
        rc = SPW_ENOMEM;
        goto done;
    }
    spw_codec_table_desc d = {bt.C, bt.stride, bt.cdf, bt.len, bt.off, bt.med};
    if ((rc = spw_codec_tables_create(&d, &t)))
        goto done;
    spw_codec_config c1 = {SPW_CODEC_TILED, 1, 0}, cn = {SPW_CODEC_TILED, o->threads, 0};
    if ((rc = spw_codec_create(t, NULL, &plain)) || (rc = spw_codec_create(t, &c1, &tiled1)) ||
        (rc = spw_codec_create(t, &cn, &tiledn)))
        goto done;
    sample(&bt, BH * BW, sym);

    /* Baseline first; its stream must equal ours byte for byte. */
    result base = {name, "baseline(compressai)", 1, 0, 0, 0};
    double *te = malloc(sizeof(double) * (size_t)o->repeat);
    double *td = malloc(sizeof(double) * (size_t)o->repeat);
    size_t blen = 0;
    for (int i = 0; te && td && i < o->repeat; i++) {
        uint64_t t0 = spw_cli_now_ns();
        blen = base_encode(&bt, sym, BH * BW, q, words, cap / 4);
        uint64_t t1 = spw_cli_now_ns();
        base_decode(&bt, words, BH * BW, out);
        te[i] = (double)(t1 - t0);
        td[i] = (double)(spw_cli_now_ns() - t1);
    }
    if (te && td) {
        base.enc_ns = median_ns(te, o->repeat);
        base.dec_ns = median_ns(td, o->repeat);
        base.bytes = blen;
    }
    free(te);
    free(td);
    if (!base.bytes || memcmp(out, sym, sizeof(int32_t) * BN)) {
        rc = SPW_EINTERNAL;
        goto done;
    }

    result rp = {name, "splitwire plain", 1, 0, 0, 0};
    if ((rc = run_codec(plain, sym, o->repeat, buf, cap, out, &rp)))
        goto done;
    if (rp.bytes != blen || memcmp(buf, words, blen)) {
        fprintf(stderr, "splitwire: bench: streams differ from the baseline\n");
        rc = SPW_EINTERNAL;
        goto done;
    }
    result r1 = {name, "splitwire tiled", 1, 0, 0, 0};
    result rn = {name, "splitwire tiled", o->threads, 0, 0, 0};
    if ((rc = run_codec(tiled1, sym, o->repeat, buf, cap, out, &r1)) ||
        (rc = run_codec(tiledn, sym, o->repeat, buf, cap, out, &rn)))
        goto done;

    double h = 0;
    for (int c = 0; c < BC; c++)
        h += spw_codec_tables_entropy(t, c);
    double cost = spw_codec_cost_bits(t, sym, BC, BH, BW);
    double overhead = rp.bytes * 8.0 / cost - 1.0;
    int tiles = spw_codec_tile_count(tiledn, BH, BW);
    if (o->json) {
        printf("%s  {\"level\": \"%s\", \"table_entropy_bits\": %.4f, \"cross_entropy_bits\": "
               "%.4f, \"plain_bits\": %.4f, \"plain_overhead\": %.6f, "
               "\"plain_within_0.1pct_plus_8B\": %s, \"tiles\": %d, \"tiled_bits\": %.4f, "
               "\"results\": [\n",
               *first ? "" : ",\n", name, h / BC, cost / BN, rp.bytes * 8.0 / BN, overhead,
               rp.bytes <= cost / 8.0 * 1.001 + 8 ? "true" : "false", tiles, r1.bytes * 8.0 / BN);
        bool f2 = true;
        print_result(&base, NULL, true, &f2);
        print_result(&rp, &base, true, &f2);
        print_result(&r1, &base, true, &f2);
        print_result(&rn, &base, true, &f2);
        printf("\n  ]}");
        *first = false;
    } else {
        printf("%s: table entropy %.3f bits/sym, cross-entropy of the sample %.4f, plain "
               "stream %.4f (%+.4f%%, %zu bytes), tiled %.4f (%d tiles)\n",
               name, h / BC, cost / BN, rp.bytes * 8.0 / BN, overhead * 100, rp.bytes,
               r1.bytes * 8.0 / BN, tiles);
        print_result(&base, NULL, false, first);
        print_result(&rp, &base, false, first);
        print_result(&r1, &base, false, first);
        print_result(&rn, &base, false, first);
    }
done:
    spw_codec_free(plain);
    spw_codec_free(tiled1);
    spw_codec_free(tiledn);
    spw_codec_tables_free(t);
    bench_tables_free(&bt);
    free(sym);
    free(out);
    free(q);
    free(buf);
    free(words);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: splitwire bench codec [--json] [--repeat N] [--threads N]\n\n"
               "Encode/decode throughput of the rANS codec on a 48x28x28 latent with\n"
               "discretised Gaussian tables at low (0.75), mid (1.8) and high (3.5)\n"
               "bits/symbol: plain stream, tiled single-thread and tiled multi-thread,\n"
               "next to an in-run CompressAI-style baseline (queue + division encoder,\n"
               "linear-search decoder) that must produce the identical stream.\n"
               "Times are medians over the repeats.\n\n"
               "  --json       machine-readable output\n"
               "  --repeat N   runs per measurement (default 201)\n"
               "  --threads N  threads for the tiled multi-thread run (default: CPUs)\n");
}

int spw_cli_bench_codec(int argc, char **argv)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    bench_opts o = {201, cpus > 1 ? (int)(cpus < 64 ? cpus : 64) : 2, false};
    const spw_cli_opt opts[] = {
        SPW_CLI_OPT_FLAG("json", &o.json),
        SPW_CLI_OPT_INT("repeat", &o.repeat, 1, 100000),
        SPW_CLI_OPT_INT("threads", &o.threads, 1, 256),
        SPW_CLI_OPT_END,
    };
    int prc = spw_cli_parse("splitwire bench codec", argc, argv, opts, NULL, usage, NULL);
    if (prc >= 0)
        return prc;
    static const struct {
        const char *name;
        double bits;
    } levels[] = {{"low", 0.75}, {"mid", 1.8}, {"high", 3.5}};
    bool first = true;
    if (o.json)
        printf("{\"benchmark\": \"codec\", \"shape\": [%d, %d, %d], \"repeat\": %d, "
               "\"levels\": [\n",
               BC, BH, BW, o.repeat);
    else
        printf("codec benchmark: %dx%dx%d latent, median of %d runs\n"
               "  level  coder                  thr  enc Msym/s dec Msym/s  enc ns dec ns"
               "   enc MB/s dec MB/s   bytes  speedup(enc, dec)\n",
               BC, BH, BW, o.repeat);
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        int rc = bench_level(levels[i].name, levels[i].bits, &o, &first);
        if (rc)
            return spw_cli_fail(rc, "bench codec (%s)", levels[i].name);
    }
    if (o.json)
        printf("\n]}\n");
    return 0;
}

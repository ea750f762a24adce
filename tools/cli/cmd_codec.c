/* splitwire codec encode|decode: .npy symbols or latents <-> rANS stream files. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "splitwire/codec.h"
#include "tools/cli/cli.h"

typedef struct codec_opts {
    const char *tables, *in, *out;
    bool latent, tiled, batch;
    int threads, tile_rows;
    int shape[3];
    bool have_shape;
} codec_opts;

static void usage_encode(FILE *f)
{
    fprintf(f, "usage: splitwire codec encode --tables DIR [options] IN.npy OUT.bin\n\n"
               "Entropy-codes int32 symbols (C,H,W or N,C,H,W) into a stream file.\n"
               "A C,H,W input gives the bare stream (CompressAI-compatible unless\n"
               "--tiled); an N,C,H,W input gives N records of a u32 little-endian\n"
               "byte count followed by the stream.\n\n"
               "  --tables DIR     table directory (quantized_cdf.npy, cdf_length.npy,\n"
               "                   offset.npy, medians.npy; see docs/CODEC.md)\n"
               "  --latent         IN is float32 latents, quantised against the medians\n"
               "  --tiled          tiled format (independent row bands with CRC32C)\n"
               "  --tile-rows N    rows per tile (default: about 1 KB per tile)\n"
               "  --threads N      threads for tiled coding (default 1)\n");
}

static void usage_decode(FILE *f)
{
    fprintf(f, "usage: splitwire codec decode --tables DIR --shape C,H,W [options] IN.bin "
               "OUT.npy\n\n"
               "Decodes a stream file into int32 symbols (or float32 latents). The\n"
               "stream has no header, so the shape is given.\n\n"
               "  --tables DIR     table directory (as for encode)\n"
               "  --shape C,H,W    latent shape\n"
               "  --batch          IN holds length-prefixed records; OUT is N,C,H,W\n"
               "  --latent         write float32 latents (symbol + median)\n"
               "  --tiled          tiled format; lost or damaged tiles come out as the\n"
               "                   medians and are reported on stderr\n"
               "  --threads N      threads for tiled decoding (default 1)\n");
}

static bool parse_shape(const char *s, int shape[3])
{
    char buf[64];
    if (strlen(s) >= sizeof(buf))
        return false;
    strcpy(buf, s);
    char *save = NULL, *tok = strtok_r(buf, ",x", &save);
    for (int i = 0; i < 3; i++, tok = strtok_r(NULL, ",x", &save)) {
        long v;
        if (!tok || !spw_cli_parse_int(tok, 1, 1 << 20, &v))
            return false;
        shape[i] = (int)v;
    }
    return tok == NULL;
}

/* --shape C,H,W (decode). */
static int codec_shape(int id, const char *arg, void *ctx)
{
    codec_opts *o = ctx;
    if (!parse_shape(arg, o->shape)) {
        fprintf(stderr, "splitwire codec: bad --shape '%s' (want C,H,W)\n", arg);
        return 2;
    }
    o->have_shape = true;
    return -1;
}

/* Returns 0 to go on, else the exit code (help: 0 via *done). */
static int parse_args(int argc, char **argv, bool decode, codec_opts *o, bool *done)
{
    void (*usage)(FILE *) = decode ? usage_decode : usage_encode;
    *done = false;
    memset(o, 0, sizeof(*o));
    o->threads = 1;
    const spw_cli_opt common[] = {
        SPW_CLI_OPT_STR("tables", &o->tables),
        SPW_CLI_OPT_FLAG("latent", &o->latent),
        SPW_CLI_OPT_FLAG("tiled", &o->tiled),
        SPW_CLI_OPT_INT("threads", &o->threads, 1, 256),
    };
    const spw_cli_opt enc[] = {SPW_CLI_OPT_INT("tile-rows", &o->tile_rows, 1, SPW_CODEC_MAX_TILES),
                               SPW_CLI_OPT_END};
    const spw_cli_opt dec[] = {SPW_CLI_OPT_FLAG("batch", &o->batch),
                               SPW_CLI_OPT_FN("shape", codec_shape, 0, true), SPW_CLI_OPT_END};
    spw_cli_opt opts[8];
    size_t n = sizeof(common) / sizeof(common[0]);
    memcpy(opts, common, sizeof(common));
    memcpy(opts + n, decode ? dec : enc, decode ? sizeof(dec) : sizeof(enc));
    int operand;
    int prc = spw_cli_parse(decode ? "splitwire codec decode" : "splitwire codec encode", argc,
                            argv, opts, o, usage, &operand);
    if (prc >= 0) {
        *done = prc == 0;
        return prc;
    }
    int npos = argc - operand;
    if (npos > 2) {
        fprintf(stderr, "splitwire codec: too many arguments\n");
        usage(stderr);
        return 2;
    }
    if (!o->tables || npos != 2 || (decode && !o->have_shape)) {
        fprintf(stderr, "splitwire codec: missing %s\n",
                !o->tables  ? "--tables"
                : npos != 2 ? "input or output file"
                            : "--shape");
        usage(stderr);
        return 2;
    }
    o->in = argv[operand];
    o->out = argv[operand + 1];
    return 0;
}

static int open_codec(const codec_opts *o, spw_codec_tables **t, spw_codec **k)
{
    int rc = spw_codec_tables_load(o->tables, t);
    if (rc)
        return spw_cli_fail(rc, "loading tables from %s", o->tables);
    spw_codec_config cfg = {o->tiled ? SPW_CODEC_TILED : SPW_CODEC_PLAIN, o->threads, o->tile_rows};
    rc = spw_codec_create(*t, &cfg, k);
    if (rc) {
        spw_codec_tables_free(*t);
        return spw_cli_fail(rc, "creating the codec");
    }
    return 0;
}

static int write_all(FILE *f, const void *p, size_t n)
{
    return fwrite(p, 1, n, f) == n ? 0 : -1;
}

static int codec_encode(int argc, char **argv)
{
    codec_opts o;
    bool done;
    int rc = parse_args(argc, argv, false, &o, &done);
    if (rc || done)
        return rc;
    spw_tensor in = {0};
    if ((rc = spw_npy_read(o.in, &in)))
        return spw_cli_fail(rc, "reading %s", o.in);
    int ret = 1;
    spw_codec_tables *t = NULL;
    spw_codec *k = NULL;
    uint8_t *buf = NULL;
    int32_t *sym = NULL;
    FILE *f = NULL;
    spw_dtype want = o.latent ? SPW_F32 : SPW_I32;
    if (in.dtype != want || (in.ndim != 3 && in.ndim != 4)) {
        fprintf(stderr, "splitwire codec: %s: need a 3-D or 4-D %s array (got %d-D %s)%s\n", o.in,
                spw_dtype_name(want), in.ndim, spw_dtype_name(in.dtype),
                o.latent ? "" : "; use --latent for float latents");
        goto out;
    }
    if (open_codec(&o, &t, &k))
        goto out;
    int b = in.ndim == 4;
    int64_t N = b ? in.dims[0] : 1;
    int C = (int)in.dims[b], H = (int)in.dims[b + 1], W = (int)in.dims[b + 2];
    if (in.dims[b] > INT32_MAX || in.dims[b + 1] > INT32_MAX || in.dims[b + 2] > INT32_MAX) {
        fprintf(stderr, "splitwire codec: %s: shape too large\n", o.in);
        goto out;
    }
    size_t cap = spw_codec_bound(k, C, H, W), per = (size_t)C * H * W;
    if (!cap) {
        fprintf(stderr,
                "splitwire codec: %s: latent %dx%dx%d does not fit tables of %d "
                "channels\n",
                o.in, C, H, W, spw_codec_tables_channels(t));
        goto out;
    }
    buf = malloc(cap);
    sym = o.latent ? malloc(per * sizeof(int32_t)) : NULL;
    if (!buf || (o.latent && !sym)) {
        spw_cli_fail(SPW_ENOMEM, "encoding");
        goto out;
    }
    f = fopen(o.out, "wb");
    if (!f) {
        fprintf(stderr, "splitwire codec: %s: %s\n", o.out, strerror(errno));
        goto out;
    }
    size_t total = 0;
    for (int64_t i = 0; i < N; i++) {
        const int32_t *s;
        if (o.latent) {
            if ((rc = spw_codec_quantize(t, (const float *)in.data + i * per, C, H, W, sym))) {
                spw_cli_fail(rc, "quantising %s", o.in);
                goto out;
            }
            s = sym;
        } else {
            s = (const int32_t *)in.data + i * per;
        }
        size_t len;
        if ((rc = spw_codec_encode_buf(k, s, C, H, W, buf, cap, &len))) {
            spw_cli_fail(rc, "encoding item %lld of %s", (long long)i, o.in);
            goto out;
        }
        uint8_t hdr[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                          (uint8_t)(len >> 24)};
        if ((b && write_all(f, hdr, 4)) || write_all(f, buf, len)) {
            fprintf(stderr, "splitwire codec: %s: write failed\n", o.out);
            goto out;
        }
        total += len;
    }
    if (fclose(f)) {
        f = NULL;
        fprintf(stderr, "splitwire codec: %s: write failed\n", o.out);
        goto out;
    }
    f = NULL;
    fprintf(stderr, "splitwire codec: %lld x %dx%dx%d -> %zu bytes (%.4f bits/symbol)\n",
            (long long)N, C, H, W, total, total * 8.0 / ((double)per * (double)N));
    ret = 0;
out:
    if (f)
        fclose(f);
    free(buf);
    free(sym);
    spw_codec_free(k);
    spw_codec_tables_free(t);
    spw_free(in.data);
    return ret;
}

static int read_file(const char *path, uint8_t **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "splitwire codec: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *p = malloc(cap);
    while (p) {
        n += fread(p + n, 1, cap - n, f);
        if (n < cap)
            break;
        uint8_t *q = realloc(p, cap * 2);
        if (!q) {
            free(p);
            p = NULL;
            break;
        }
        p = q;
        cap *= 2;
    }
    bool err = ferror(f);
    fclose(f);
    if (!p || err) {
        free(p);
        fprintf(stderr, "splitwire codec: %s: read failed\n", path);
        return -1;
    }
    *data = p;
    *size = n;
    return 0;
}

static int codec_decode(int argc, char **argv)
{
    codec_opts o;
    bool done;
    int rc = parse_args(argc, argv, true, &o, &done);
    if (rc || done)
        return rc;
    int ret = 1;
    spw_codec_tables *t = NULL;
    spw_codec *k = NULL;
    uint8_t *data = NULL, *bitmap = NULL;
    int32_t *sym = NULL;
    size_t size;
    if (read_file(o.in, &data, &size))
        return 1;
    if (open_codec(&o, &t, &k))
        goto out;
    int C = o.shape[0], H = o.shape[1], W = o.shape[2];
    size_t per = (size_t)C * H * W;
    /* Count the records first. */
    int64_t N = 1;
    if (o.batch) {
        N = 0;
        for (size_t at = 0; at < size; N++) {
            if (size - at < 4) {
                fprintf(stderr, "splitwire codec: %s: torn record header at byte %zu\n", o.in, at);
                goto out;
            }
            uint32_t len = (uint32_t)data[at] | (uint32_t)data[at + 1] << 8 |
                           (uint32_t)data[at + 2] << 16 | (uint32_t)data[at + 3] << 24;
            if (len > size - at - 4) {
                fprintf(stderr, "splitwire codec: %s: record %lld claims %u bytes, %zu left\n",
                        o.in, (long long)N, len, size - at - 4);
                goto out;
            }
            at += 4 + (size_t)len;
        }
    }
    size_t elem = o.latent ? sizeof(float) : sizeof(int32_t);
    sym = malloc(per * (size_t)(N ? N : 1) * elem);
    int tiles = H < SPW_CODEC_MAX_TILES ? H : SPW_CODEC_MAX_TILES; /* any band height */
    bitmap = calloc((size_t)(tiles + 7) / 8, 1);
    if (!sym || !bitmap) {
        spw_cli_fail(SPW_ENOMEM, "decoding");
        goto out;
    }
    int32_t *tmp = o.latent ? malloc(per * sizeof(int32_t)) : NULL;
    if (o.latent && !tmp) {
        spw_cli_fail(SPW_ENOMEM, "decoding");
        goto out;
    }
    size_t at = 0;
    for (int64_t i = 0; i < N; i++) {
        size_t len = size;
        if (o.batch) {
            len = (size_t)data[at] | (size_t)data[at + 1] << 8 | (size_t)data[at + 2] << 16 |
                  (size_t)data[at + 3] << 24;
            at += 4;
        }
        int32_t *dst = o.latent ? tmp : sym + (size_t)i * per;
        spw_codec_report rep = {.bitmap = bitmap, .bitmap_size = (size_t)(tiles + 7) / 8};
        rc = spw_codec_decode_buf(k, data + at, len, C, H, W, dst, &rep);
        if (rc) {
            spw_cli_fail(rc, "decoding %s%s", o.in, o.batch ? " (a record)" : "");
            free(tmp);
            goto out;
        }
        if (rep.decoded < rep.tiles) {
            fprintf(stderr,
                    "splitwire codec: item %lld: %d of %d tiles decoded (%d damaged); missing "
                    "tiles:",
                    (long long)i, rep.decoded, rep.tiles, rep.corrupt);
            for (int j = 0; j < rep.tiles; j++)
                if (!(bitmap[j / 8] >> (j % 8) & 1))
                    fprintf(stderr, " %d", j);
            fprintf(stderr, " (filled with the medians)\n");
        }
        if (o.latent &&
            (rc = spw_codec_dequantize(t, tmp, C, H, W, (float *)sym + (size_t)i * per))) {
            spw_cli_fail(rc, "dequantising");
            free(tmp);
            goto out;
        }
        at += len;
    }
    free(tmp);
    spw_tensor outt = {.dtype = o.latent ? SPW_F32 : SPW_I32, .ndim = o.batch ? 4 : 3, .data = sym};
    int d = 0;
    if (o.batch)
        outt.dims[d++] = N;
    outt.dims[d++] = C;
    outt.dims[d++] = H;
    outt.dims[d++] = W;
    if ((rc = spw_npy_write(o.out, &outt))) {
        spw_cli_fail(rc, "writing %s", o.out);
        goto out;
    }
    ret = 0;
out:
    free(bitmap);
    free(sym);
    free(data);
    spw_codec_free(k);
    spw_codec_tables_free(t);
    return ret;
}

static const spw_cli_command codec_cmds[] = {
    {"encode", codec_encode, "symbols or latents (.npy) -> stream file"},
    {"decode", codec_decode, "stream file -> symbols or latents (.npy)"},
    {NULL, NULL, NULL},
};

int spw_cli_codec(int argc, char **argv)
{
    return spw_cli_dispatch("splitwire codec", codec_cmds, argc, argv);
}

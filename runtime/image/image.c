/* Image decoding (libjpeg-turbo, libpng) and resize / crop / normalise. */
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "runtime/core/internal.h"
#include "splitwire/image.h"

/* Largest accepted image side: keeps width * height * 3 far from overflow and
 * refuses decompression bombs before any large allocation. */
#define MAX_SIDE 16384

/* ---- JPEG ---------------------------------------------------------------- */

typedef struct jpeg_err {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
    bool truncated;
} jpeg_err;

/* libjpeg's default handler exits the process; return through longjmp instead. */
static void jpeg_fail(j_common_ptr cinfo)
{
    jpeg_err *e = (jpeg_err *)cinfo->err;
    e->mgr.format_message(cinfo, e->msg);
    longjmp(e->jump, 1);
}

/* Warnings stay quiet, but running out of data (libjpeg then pads the image
 * with grey) means the image is incomplete: remember it and refuse it. */
static void jpeg_quiet(j_common_ptr cinfo, int level)
{
    jpeg_err *e = (jpeg_err *)cinfo->err;
    if (level < 0 && e->mgr.msg_code == JWRN_JPEG_EOF)
        e->truncated = true;
}

static int decode_jpeg(const unsigned char *data, size_t size, spw_image *out)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_err err;
    uint8_t *volatile rgb = NULL;
    uint8_t *volatile row = NULL;
    memset(&cinfo, 0, sizeof(cinfo));
    cinfo.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpeg_fail;
    err.mgr.emit_message = jpeg_quiet;
    err.truncated = false;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        spw__free(rgb);
        spw__free(row);
        return spw__error(SPW_EFORMAT, "JPEG: %s", err.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB; /* greyscale expands to RGB */
    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height;
    if (w <= 0 || h <= 0 || w > MAX_SIDE || h > MAX_SIDE) {
        jpeg_destroy_decompress(&cinfo);
        return spw__error(SPW_EUNSUPPORTED, "JPEG: %dx%d is outside 1..%d", w, h, MAX_SIDE);
    }
    rgb = spw__malloc((size_t)w * (size_t)h * 3);
    row = spw__malloc((size_t)w * 4);
    if (!rgb || !row) {
        jpeg_destroy_decompress(&cinfo);
        spw__free(rgb);
        spw__free(row);
        return spw__error(SPW_ENOMEM, "JPEG: no memory for %dx%d", w, h);
    }
    /* Adobe CMYK JPEGs store inverted ink values. */
    bool inverted = cinfo.saw_Adobe_marker;
    while (cinfo.output_scanline < cinfo.output_height) {
        uint8_t *dst = rgb + (size_t)cinfo.output_scanline * (size_t)w * 3;
        JSAMPROW rows[1] = {cmyk ? row : dst};
        jpeg_read_scanlines(&cinfo, rows, 1);
        if (cmyk) {
            for (int x = 0; x < w; x++) {
                int c = row[4 * x], m = row[4 * x + 1], yv = row[4 * x + 2], k = row[4 * x + 3];
                if (!inverted) {
                    c = 255 - c;
                    m = 255 - m;
                    yv = 255 - yv;
                    k = 255 - k;
                }
                dst[3 * x] = (uint8_t)((c * k + 127) / 255);
                dst[3 * x + 1] = (uint8_t)((m * k + 127) / 255);
                dst[3 * x + 2] = (uint8_t)((yv * k + 127) / 255);
            }
        }
    }
    bool truncated = err.truncated;
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    spw__free(row);
    if (truncated) {
        spw__free(rgb);
        return spw__error(SPW_ETRUNC, "JPEG: data ends before the image does");
    }
    out->width = w;
    out->height = h;
    out->rgb = rgb;
    return 0;
}

/* ---- PNG ----------------------------------------------------------------- */

static int decode_png(const unsigned char *data, size_t size, spw_image *out)
{
    png_image img;
    memset(&img, 0, sizeof(img));
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&img, data, size))
        return spw__error(SPW_EFORMAT, "PNG: %s", img.message);
    if (img.width == 0 || img.height == 0 || img.width > MAX_SIDE || img.height > MAX_SIDE) {
        png_image_free(&img);
        return spw__error(SPW_EUNSUPPORTED, "PNG: %ux%u is outside 1..%d", img.width, img.height,
                          MAX_SIDE);
    }
    /* Alpha is composited onto black by dropping it (the simplified API
     * composes onto the background when asked for RGB). */
    img.format = PNG_FORMAT_RGB;
    size_t bytes = (size_t)img.width * img.height * 3;
    uint8_t *rgb = spw__malloc(bytes);
    if (!rgb) {
        png_image_free(&img);
        return spw__error(SPW_ENOMEM, "PNG: no memory for %ux%u", img.width, img.height);
    }
    if (!png_image_finish_read(&img, NULL, rgb, 0, NULL)) {
        spw__free(rgb);
        int rc = spw__error(SPW_EFORMAT, "PNG: %s", img.message);
        png_image_free(&img);
        return rc;
    }
    out->width = (int)img.width;
    out->height = (int)img.height;
    out->rgb = rgb;
    return 0;
}

int spw_image_decode(const void *data, size_t size, spw_image *out)
{
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (!data || !out)
        return spw__error(SPW_EINVAL, "image_decode: NULL argument");
    memset(out, 0, sizeof(*out));
    const unsigned char *p = data;
    if (size >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff)
        return decode_jpeg(p, size, out);
    if (size >= 8 && !memcmp(p, png_sig, 8))
        return decode_png(p, size, out);
    return spw__error(SPW_EUNSUPPORTED, "not a JPEG or PNG image");
}

int spw_image_load(const char *path, spw_image *out)
{
    if (!path || !out)
        return spw__error(SPW_EINVAL, "image_load: NULL argument");
    memset(out, 0, sizeof(*out));
    void *data;
    size_t size;
    int rc = spw__read_file(path, &data, &size);
    if (rc)
        return rc;
    rc = spw_image_decode(data, size, out);
    spw__free(data);
    if (rc)
        return spw__error_context(rc, "%s", path);
    return 0;
}

void spw_image_release(spw_image *img)
{
    if (!img)
        return;
    spw__free(img->rgb);
    img->rgb = NULL;
}

int spw_image_alloc(int width, int height, spw_image *out)
{
    if (!out || width <= 0 || height <= 0)
        return spw__error(SPW_EINVAL, "image size %dx%d", width, height);
    size_t bytes;
    if (!spw__mul_ok((size_t)width, (size_t)height, &bytes) || !spw__mul_ok(bytes, 3, &bytes))
        return spw__error(SPW_ERANGE, "image size %dx%d", width, height);
    out->rgb = spw__malloc(bytes);
    if (!out->rgb)
        return spw__error(SPW_ENOMEM, "out of memory for a %dx%d image", width, height);
    out->width = width;
    out->height = height;
    return 0;
}

/* ---- resize, crop, normalise -------------------------------------------- */

/* Contributions of source samples to one output sample along one axis. */
typedef struct taps {
    int first; /* first source index */
    int count;
    int offset; /* into the shared weight array */
} taps;

/*
 * Weights for output samples [start, start + n) of an axis resampled from
 * `src` to `dst` samples. Downscaling integrates the source over the output
 * sample's footprint; upscaling interpolates linearly between centres.
 */
static int make_taps(int src, int dst, int start, int n, taps **t_out, float **w_out)
{
    double scale = (double)src / dst;
    int max_taps = scale > 1 ? (int)ceil(scale) + 2 : 2;
    taps *t = spw__malloc(sizeof(*t) * (size_t)n);
    float *w = spw__malloc(sizeof(*w) * (size_t)n * (size_t)max_taps);
    if (!t || !w) {
        spw__free(t);
        spw__free(w);
        return spw__error(SPW_ENOMEM, "resize: out of memory");
    }
    for (int i = 0; i < n; i++) {
        int o = start + i;
        float *wi = w + (size_t)i * (size_t)max_taps;
        t[i].offset = i * max_taps;
        if (scale > 1) {
            double lo = o * scale, hi = (o + 1) * scale;
            int a = (int)floor(lo), b = (int)ceil(hi);
            if (b > src)
                b = src;
            t[i].first = a;
            t[i].count = b - a;
            for (int s = a; s < b; s++) {
                double cover = fmin(hi, s + 1.0) - fmax(lo, (double)s);
                wi[s - a] = (float)(cover / scale);
            }
        } else {
            double c = (o + 0.5) * scale - 0.5;
            if (c < 0)
                c = 0;
            int a = (int)floor(c);
            if (a > src - 1)
                a = src - 1;
            double f = c - a;
            t[i].first = a;
            if (a + 1 < src && f > 0) {
                t[i].count = 2;
                wi[0] = (float)(1 - f);
                wi[1] = (float)f;
            } else {
                t[i].count = 1;
                wi[0] = 1;
            }
        }
    }
    *t_out = t;
    *w_out = w;
    return 0;
}

int spw_image_to_tensor(const spw_image *img, const spw_preprocess *pp, float *dst)
{
    if (!img || !img->rgb || !pp || !dst)
        return spw__error(SPW_EINVAL, "image_to_tensor: NULL argument");
    if (pp->crop_w <= 0 || pp->crop_h <= 0 || pp->resize < 0)
        return spw__error(SPW_EINVAL, "image_to_tensor: crop %dx%d, resize %d", pp->crop_w,
                          pp->crop_h, pp->resize);
    for (int c = 0; c < 3; c++)
        if (!(pp->std[c] > 0))
            return spw__error(SPW_EINVAL, "image_to_tensor: std[%d] must be positive", c);
    int w = img->width, h = img->height, rw = w, rh = h;
    if (pp->resize > 0) {
        double s = (double)pp->resize / (w < h ? w : h);
        rw = w < h ? pp->resize : (int)lround(w * s);
        rh = h <= w ? pp->resize : (int)lround(h * s);
    }
    if (rw < pp->crop_w || rh < pp->crop_h) {
        /* Too small for the crop (a small photo, or resize 0): scale up, aspect
         * kept, until both sides cover it, as a short-side resize would. */
        double s = fmax((double)pp->crop_w / w, (double)pp->crop_h / h);
        rw = (int)ceil(w * s - 1e-9);
        rh = (int)ceil(h * s - 1e-9);
    }
    int x0 = (int)lround((rw - pp->crop_w) / 2.0), y0 = (int)lround((rh - pp->crop_h) / 2.0);
    size_t plane = (size_t)pp->crop_w * (size_t)pp->crop_h;
    float scale[3], bias[3];
    for (int c = 0; c < 3; c++) {
        scale[c] = 1.0f / (255.0f * pp->std[c]);
        bias[c] = -pp->mean[c] / pp->std[c];
    }
    if (rw == w && rh == h) {
        /* Crop only: the common case for 224x224 inputs. */
        for (int y = 0; y < pp->crop_h; y++) {
            const uint8_t *s = img->rgb + ((size_t)(y + y0) * (size_t)w + (size_t)x0) * 3;
            for (int x = 0; x < pp->crop_w; x++)
                for (int c = 0; c < 3; c++)
                    dst[c * plane + (size_t)y * (size_t)pp->crop_w + (size_t)x] =
                        s[3 * x + c] * scale[c] + bias[c];
        }
        return 0;
    }
    taps *tx = NULL, *ty = NULL;
    float *wx = NULL, *wy = NULL;
    float *rows = NULL;
    int rc = make_taps(w, rw, x0, pp->crop_w, &tx, &wx);
    if (rc)
        return rc;
    if ((rc = make_taps(h, rh, y0, pp->crop_h, &ty, &wy)))
        goto out;
    /* Horizontal pass over every source row into a crop-width float buffer,
     * then the vertical pass per output row. */
    rows = spw__malloc(sizeof(float) * (size_t)h * (size_t)pp->crop_w * 3);
    if (!rows) {
        rc = spw__error(SPW_ENOMEM, "resize: out of memory");
        goto out;
    }
    for (int y = 0; y < h; y++) {
        const uint8_t *s = img->rgb + (size_t)y * (size_t)w * 3;
        float *r = rows + (size_t)y * (size_t)pp->crop_w * 3;
        for (int x = 0; x < pp->crop_w; x++) {
            float acc[3] = {0, 0, 0};
            const float *wt = wx + tx[x].offset;
            for (int k = 0; k < tx[x].count; k++) {
                const uint8_t *px = s + (size_t)(tx[x].first + k) * 3;
                acc[0] += wt[k] * px[0];
                acc[1] += wt[k] * px[1];
                acc[2] += wt[k] * px[2];
            }
            r[3 * x] = acc[0];
            r[3 * x + 1] = acc[1];
            r[3 * x + 2] = acc[2];
        }
    }
    for (int y = 0; y < pp->crop_h; y++) {
        const float *wt = wy + ty[y].offset;
        for (int x = 0; x < pp->crop_w; x++) {
            float acc[3] = {0, 0, 0};
            for (int k = 0; k < ty[y].count; k++) {
                const float *r = rows + ((size_t)(ty[y].first + k) * (size_t)pp->crop_w + x) * 3;
                acc[0] += wt[k] * r[0];
                acc[1] += wt[k] * r[1];
                acc[2] += wt[k] * r[2];
            }
            for (int c = 0; c < 3; c++) {
                /* Round to 8 bits like a resized image file would be. */
                float v = floorf(acc[c] + 0.5f);
                v = v < 0 ? 0 : v > 255 ? 255 : v;
                dst[c * plane + (size_t)y * (size_t)pp->crop_w + (size_t)x] =
                    v * scale[c] + bias[c];
            }
        }
    }
out:
    spw__free(rows);
    spw__free(tx);
    spw__free(wx);
    spw__free(ty);
    spw__free(wy);
    return rc;
}

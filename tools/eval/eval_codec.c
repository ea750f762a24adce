/* splitwire eval: in-memory round trips through the standard image codecs
 * that the learned compressor is compared against. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#ifdef SPW_EVAL_HAVE_WEBP
#include <webp/decode.h>
#include <webp/encode.h>
#endif
#ifdef SPW_EVAL_HAVE_AVIF
#include <avif/avif.h>
#endif

#include "tools/eval/eval.h"

static const char *const codec_names[SPW_EVAL_NCODECS] = {"none", "jpeg", "webp", "avif"};

const char *spw_eval_codec_name(spw_eval_codec c)
{
    return (unsigned)c < SPW_EVAL_NCODECS ? codec_names[c] : "?";
}

int spw_eval_codec_parse(const char *name, spw_eval_codec *out)
{
    for (int i = 0; i < SPW_EVAL_NCODECS; i++)
        if (name && !strcmp(name, codec_names[i])) {
            *out = (spw_eval_codec)i;
            return 0;
        }
    return -1;
}

bool spw_eval_codec_available(spw_eval_codec c)
{
    switch (c) {
    case SPW_EVAL_NONE:
    case SPW_EVAL_JPEG:
        return true;
#ifdef SPW_EVAL_HAVE_WEBP
    case SPW_EVAL_WEBP:
        return true;
#endif
#ifdef SPW_EVAL_HAVE_AVIF
    case SPW_EVAL_AVIF:
        return true;
#endif
    default:
        return false;
    }
}

int spw_eval_avif_quantizer(int quality)
{
    if (quality < 0)
        quality = 0;
    if (quality > 100)
        quality = 100;
    return ((100 - quality) * 63 + 50) / 100;
}

/* ---- JPEG ---------------------------------------------------------------- */

typedef struct jpeg_err {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void jpeg_err_exit(j_common_ptr cinfo)
{
    jpeg_err *e = (jpeg_err *)cinfo->err;
    cinfo->err->format_message(cinfo, e->msg);
    longjmp(e->jb, 1);
}

/* The output buffer lives in the caller's frame, so its value is defined
 * after a longjmp back into jpeg_encode. */
typedef struct jpeg_out {
    unsigned char *data; /* malloc'd by libjpeg's memory destination */
    unsigned long size;
} jpeg_out;

static int jpeg_encode(const spw_image *in, int quality, jpeg_out *o)
{
    struct jpeg_compress_struct c;
    jpeg_err err;
    c.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = jpeg_err_exit;
    if (setjmp(err.jb)) {
        jpeg_destroy_compress(&c);
        return spw_error_set(SPW_EINTERNAL, "JPEG encoder: %s", err.msg);
    }
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &o->data, &o->size);
    c.image_width = (JDIMENSION)in->width;
    c.image_height = (JDIMENSION)in->height;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    /* Defaults: YCbCr 4:2:0, baseline Huffman tables, the IJG quality scaling. */
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    size_t stride = (size_t)in->width * 3;
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = in->rgb + (size_t)c.next_scanline * stride;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return 0;
}

static int jpeg_roundtrip(int quality, const spw_image *in, spw_image *out, size_t *bytes)
{
    jpeg_out o = {NULL, 0};
    int rc = jpeg_encode(in, quality, &o);
    if (!rc) {
        *bytes = o.size;
        /* Decoded by the runtime's own decoder, as any JPEG input would be. */
        rc = spw_image_decode(o.data, o.size, out);
    }
    free(o.data);
    return rc;
}

/* ---- WebP ---------------------------------------------------------------- */

#ifdef SPW_EVAL_HAVE_WEBP
static int webp_decode(const uint8_t *data, size_t n, spw_image *out)
{
    int w = 0, h = 0, rc;
    if (!WebPGetInfo(data, n, &w, &h) || w <= 0 || h <= 0)
        return spw_error_set(SPW_ECORRUPT, "WebP: not a readable image");
    if ((rc = spw_image_alloc(w, h, out)))
        return rc;
    size_t cap = (size_t)w * (size_t)h * 3;
    if (!WebPDecodeRGBInto(data, n, out->rgb, cap, w * 3)) {
        spw_image_release(out);
        return spw_error_set(SPW_ECORRUPT, "WebP decoder failed");
    }
    return 0;
}

static int webp_roundtrip(int quality, const spw_image *in, spw_image *out, size_t *bytes)
{
    uint8_t *enc = NULL;
    size_t n = WebPEncodeRGB(in->rgb, in->width, in->height, in->width * 3, (float)quality, &enc);
    if (!n)
        return spw_error_set(SPW_EINTERNAL, "WebP encoder failed on a %dx%d image", in->width,
                             in->height);
    int rc = webp_decode(enc, n, out);
    if (!rc && (out->width != in->width || out->height != in->height)) {
        rc = spw_error_set(SPW_ECORRUPT, "WebP: the encoded image reads back as %dx%d", out->width,
                           out->height);
        spw_image_release(out);
    }
    if (!rc)
        *bytes = n;
    WebPFree(enc);
    return rc;
}
#endif

/* ---- AVIF ---------------------------------------------------------------- */

#ifdef SPW_EVAL_HAVE_AVIF
static int avif_encode(int quality, const spw_image *in, avifRWData *o)
{
    if (!avifCodecName(AVIF_CODEC_CHOICE_AOM, AVIF_CODEC_FLAG_CAN_ENCODE))
        return spw_error_set(SPW_EUNSUPPORTED, "AVIF: this libavif has no aom encoder");
    avifImage *im =
        avifImageCreate((uint32_t)in->width, (uint32_t)in->height, 8, AVIF_PIXEL_FORMAT_YUV420);
    avifEncoder *enc = avifEncoderCreate();
    int rc = 0;
    if (!im || !enc) {
        rc = spw_error_set(SPW_ENOMEM, "AVIF: out of memory");
        goto out;
    }
    avifRGBImage rgb;
    avifRGBImageSetDefaults(&rgb, im);
    rgb.format = AVIF_RGB_FORMAT_RGB;
    rgb.pixels = in->rgb;
    rgb.rowBytes = (uint32_t)in->width * 3;
    avifResult r = avifImageRGBToYUV(im, &rgb);
    if (r != AVIF_RESULT_OK) {
        rc = spw_error_set(SPW_EINTERNAL, "AVIF: RGB to YUV: %s", avifResultToString(r));
        goto out;
    }
    enc->codecChoice = AVIF_CODEC_CHOICE_AOM;
    enc->maxThreads = 1; /* the caller's one thread; inference has the others */
    enc->speed = SPW_EVAL_AVIF_SPEED;
    enc->minQuantizer = enc->maxQuantizer = spw_eval_avif_quantizer(quality);
    if ((r = avifEncoderWrite(enc, im, o)) != AVIF_RESULT_OK)
        rc = spw_error_set(SPW_EINTERNAL, "AVIF encoder: %s", avifResultToString(r));
out:
    if (enc)
        avifEncoderDestroy(enc);
    if (im)
        avifImageDestroy(im);
    return rc;
}

static int avif_decode(const uint8_t *data, size_t size, spw_image *out)
{
    avifDecoder *dec = avifDecoderCreate();
    avifImage *im = avifImageCreateEmpty();
    int rc = 0;
    if (!dec || !im) {
        rc = spw_error_set(SPW_ENOMEM, "AVIF: out of memory");
        goto out;
    }
    dec->maxThreads = 1;
    avifResult r = avifDecoderReadMemory(dec, im, data, size);
    if (r != AVIF_RESULT_OK) {
        rc = spw_error_set(SPW_ECORRUPT, "AVIF decoder: %s", avifResultToString(r));
        goto out;
    }
    if ((rc = spw_image_alloc((int)im->width, (int)im->height, out)))
        goto out;
    avifRGBImage rgb;
    avifRGBImageSetDefaults(&rgb, im);
    rgb.format = AVIF_RGB_FORMAT_RGB;
    rgb.depth = 8;
    rgb.pixels = out->rgb;
    rgb.rowBytes = im->width * 3;
    if ((r = avifImageYUVToRGB(im, &rgb)) != AVIF_RESULT_OK) {
        spw_image_release(out);
        rc = spw_error_set(SPW_EINTERNAL, "AVIF: YUV to RGB: %s", avifResultToString(r));
    }
out:
    if (im)
        avifImageDestroy(im);
    if (dec)
        avifDecoderDestroy(dec);
    return rc;
}

static int avif_roundtrip(int quality, const spw_image *in, spw_image *out, size_t *bytes)
{
    avifRWData o = AVIF_DATA_EMPTY;
    int rc = avif_encode(quality, in, &o);
    if (!rc && !(rc = avif_decode(o.data, o.size, out)))
        *bytes = o.size;
    avifRWDataFree(&o);
    return rc;
}
#endif

int spw_eval_roundtrip(spw_eval_codec c, int quality, const spw_image *in, spw_image *out,
                       size_t *bytes)
{
    if (!in || !in->rgb || !out || !bytes || in->width <= 0 || in->height <= 0)
        return spw_error_set(SPW_EINVAL, "eval round trip: bad argument");
    if (quality < 1 || quality > 100)
        return spw_error_set(SPW_ERANGE, "quality %d is not in 1..100", quality);
    memset(out, 0, sizeof(*out));
    switch (c) {
    case SPW_EVAL_JPEG:
        return jpeg_roundtrip(quality, in, out, bytes);
    case SPW_EVAL_WEBP:
#ifdef SPW_EVAL_HAVE_WEBP
        return webp_roundtrip(quality, in, out, bytes);
#else
        return spw_error_set(SPW_EUNSUPPORTED, "built without libwebp (install libwebp-dev)");
#endif
    case SPW_EVAL_AVIF:
#ifdef SPW_EVAL_HAVE_AVIF
        return avif_roundtrip(quality, in, out, bytes);
#else
        return spw_error_set(SPW_EUNSUPPORTED, "built without libavif (install libavif-dev)");
#endif
    default:
        return spw_error_set(SPW_EINVAL, "codec '%s' has no round trip", spw_eval_codec_name(c));
    }
}

int spw_eval_encode(spw_eval_codec c, int quality, const spw_image *in, unsigned char **data,
                    size_t *bytes)
{
    if (!in || !in->rgb || !data || !bytes || in->width <= 0 || in->height <= 0)
        return spw_error_set(SPW_EINVAL, "eval encode: bad argument");
    if (quality < 1 || quality > 100)
        return spw_error_set(SPW_ERANGE, "quality %d is not in 1..100", quality);
    *data = NULL;
    *bytes = 0;
    switch (c) {
    case SPW_EVAL_JPEG: {
        jpeg_out o = {NULL, 0};
        int rc = jpeg_encode(in, quality, &o);
        if (rc) {
            free(o.data);
            return rc;
        }
        *data = o.data;
        *bytes = o.size;
        return 0;
    }
#ifdef SPW_EVAL_HAVE_WEBP
    case SPW_EVAL_WEBP: {
        uint8_t *enc = NULL;
        size_t n =
            WebPEncodeRGB(in->rgb, in->width, in->height, in->width * 3, (float)quality, &enc);
        if (!n)
            return spw_error_set(SPW_EINTERNAL, "WebP encoder failed on a %dx%d image", in->width,
                                 in->height);
        /* Handed out as malloc memory, one way to free every codec's. */
        *data = malloc(n);
        if (*data)
            memcpy(*data, enc, n);
        WebPFree(enc);
        if (!*data)
            return spw_error_set(SPW_ENOMEM, "out of memory");
        *bytes = n;
        return 0;
    }
#endif
#ifdef SPW_EVAL_HAVE_AVIF
    case SPW_EVAL_AVIF: {
        avifRWData o = AVIF_DATA_EMPTY;
        int rc = avif_encode(quality, in, &o);
        if (!rc) {
            *data = malloc(o.size ? o.size : 1);
            if (*data) {
                memcpy(*data, o.data, o.size);
                *bytes = o.size;
            } else {
                rc = spw_error_set(SPW_ENOMEM, "out of memory");
            }
        }
        avifRWDataFree(&o);
        return rc;
    }
#endif
#ifndef SPW_EVAL_HAVE_WEBP
    case SPW_EVAL_WEBP:
        return spw_error_set(SPW_EUNSUPPORTED, "built without libwebp (install libwebp-dev)");
#endif
#ifndef SPW_EVAL_HAVE_AVIF
    case SPW_EVAL_AVIF:
        return spw_error_set(SPW_EUNSUPPORTED, "built without libavif (install libavif-dev)");
#endif
    default:
        return spw_error_set(SPW_EINVAL, "codec '%s' does not encode", spw_eval_codec_name(c));
    }
}

int spw_eval_decode(const void *data, size_t size, spw_image *out)
{
    const uint8_t *p = data;
    if (!data || !out)
        return spw_error_set(SPW_EINVAL, "eval decode: NULL argument");
    memset(out, 0, sizeof(*out));
    /* By content: RIFF....WEBP, an ISO-BMFF box "ftyp" with an AVIF brand,
     * else the runtime's own decoder (JPEG, PNG). */
    if (size >= 12 && !memcmp(p, "RIFF", 4) && !memcmp(p + 8, "WEBP", 4)) {
#ifdef SPW_EVAL_HAVE_WEBP
        return webp_decode(p, size, out);
#else
        return spw_error_set(SPW_EUNSUPPORTED, "WebP image, built without libwebp");
#endif
    }
    if (size >= 12 && !memcmp(p + 4, "ftyp", 4)) {
#ifdef SPW_EVAL_HAVE_AVIF
        return avif_decode(p, size, out);
#else
        return spw_error_set(SPW_EUNSUPPORTED, "AVIF image, built without libavif");
#endif
    }
    return spw_image_decode(data, size, out);
}

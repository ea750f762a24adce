/* splitwire: image decoding and preprocessing for the client. */
#ifndef SPLITWIRE_IMAGE_H
#define SPLITWIRE_IMAGE_H

#include <stdint.h>
#include <stddef.h>

#include "splitwire/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 8-bit RGB, rows top to bottom, pixels interleaved (R, G, B). */
typedef struct spw_image {
    int width, height;
    uint8_t *rgb; /* width * height * 3 bytes; release with spw_image_release */
} spw_image;

/* Decodes JPEG (baseline/progressive; greyscale, YCbCr, CMYK and YCCK) or PNG
 * (any bit depth, palette, grey, alpha dropped) by content, not by name.
 * Corrupt or truncated data gives SPW_EFORMAT/SPW_ETRUNC with a detail. */
SPW_API int spw_image_decode(const void *data, size_t size, spw_image *out);
SPW_API int spw_image_load(const char *path, spw_image *out);
SPW_API void spw_image_release(spw_image *img);
/* Allocates out->rgb for a width x height image (pixels uninitialised), for
 * decoders outside the library whose images the library releases (a
 * spw_server_config image_decode). SPW_EINVAL for a size <= 0. */
SPW_API int spw_image_alloc(int width, int height, spw_image *out);

/*
 * Resize so the shorter side is `resize` pixels (0: no resize), aspect kept;
 * an image still smaller than the crop on either side is scaled up, aspect
 * kept, until it covers the crop. Then centre-crop to crop_w x crop_h and
 * write planar float CHW:
 *   dst[c][y][x] = (pixel / 255 - mean[c]) / std[c].
 * Downscaling averages the covered source area (no aliasing); upscaling is
 * bilinear between pixel centres (half-pixel, clamped at the edges); values
 * are rounded to 8 bits after both axes. dst holds 3 * crop_h * crop_w floats.
 */
typedef struct spw_preprocess {
    int resize;
    int crop_w, crop_h;
    float mean[3], std[3];
} spw_preprocess;

SPW_API int spw_image_to_tensor(const spw_image *img, const spw_preprocess *pp, float *dst);

#ifdef __cplusplus
}
#endif
#endif

/* Image decoding and preprocessing: JPEG (RGB, grey, CMYK), PNG (RGB, grey,
 * alpha, palette), corrupt and truncated files, resize/crop/normalise. Test
 * images are encoded here with the same libraries, so nothing binary is
 * committed, except the small resize vectors of tests/vectors/image
 * (tools/gen_resize_vectors.py). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "spw_test.h"
#include <jpeglib.h>
#include <png.h>

#include "runtime/core/internal.h"

/* Encodes w x h pixels with `comps` components in color space cs to JPEG. */
static unsigned char *encode_jpeg(const uint8_t *px, int w, int h, int comps, J_COLOR_SPACE cs,
                                  unsigned long *size)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    unsigned char *buf = NULL;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &buf, size);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = comps;
    c.in_color_space = cs;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 98, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)c.next_scanline * (size_t)w * (size_t)comps);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return buf;
}

static void *encode_png(const void *px, int w, int h, png_uint_32 format, size_t *size,
                        const void *colormap, int colormap_entries)
{
    png_image img;
    memset(&img, 0, sizeof(img));
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = format;
    img.colormap_entries = (png_uint_32)colormap_entries;
    assert_true(png_image_write_get_memory_size(img, *size, 0, px, 0, colormap));
    void *buf = malloc(*size);
    assert_true(png_image_write_to_memory(&img, buf, size, 0, px, 0, colormap));
    return buf;
}

static void gradient(uint8_t *px, int w, int h)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = px + ((size_t)y * (size_t)w + (size_t)x) * 3;
            p[0] = (uint8_t)(x * 255 / (w - 1));
            p[1] = (uint8_t)(y * 255 / (h - 1));
            p[2] = 128;
        }
}

static void test_jpeg_rgb(void **state)
{
    (void)state;
    enum { W = 37, H = 23 };
    uint8_t px[W * H * 3];
    gradient(px, W, H);
    unsigned long size = 0;
    unsigned char *jpg = encode_jpeg(px, W, H, 3, JCS_RGB, &size);
    spw_image img;
    assert_int_equal(spw_image_decode(jpg, size, &img), 0);
    assert_int_equal(img.width, W);
    assert_int_equal(img.height, H);
    int worst = 0;
    for (int i = 0; i < W * H * 3; i++) {
        int d = abs((int)img.rgb[i] - (int)px[i]);
        worst = d > worst ? d : worst;
    }
    assert_true(worst <= 12); /* lossy, at quality 98 on a smooth gradient */
    spw_image_release(&img);

    /* Truncated at every length: a clean error, never a crash or a partial image. */
    for (unsigned long n = 0; n < size - 2; n += 7) {
        int rc = spw_image_decode(jpg, n, &img);
        assert_true(rc < 0);
        assert_null(img.rgb);
    }
    /* Corrupted bytes in the entropy-coded data: success or a clean error. */
    unsigned char *bad = malloc(size);
    for (int trial = 0; trial < 50; trial++) {
        memcpy(bad, jpg, size);
        for (int k = 0; k < 4; k++)
            bad[(size_t)(rand() % (int)size)] ^= (unsigned char)(1 + rand() % 255);
        if (spw_image_decode(bad, size, &img) == 0) {
            assert_int_equal(img.width * img.height > 0, 1);
            spw_image_release(&img);
        }
    }
    free(bad);
    free(jpg);
}

static void test_jpeg_grey_and_cmyk(void **state)
{
    (void)state;
    enum { W = 16, H = 9 };
    uint8_t grey[W * H];
    for (int i = 0; i < W * H; i++)
        grey[i] = (uint8_t)(i * 255 / (W * H - 1));
    unsigned long size = 0;
    unsigned char *jpg = encode_jpeg(grey, W, H, 1, JCS_GRAYSCALE, &size);
    spw_image img;
    assert_int_equal(spw_image_decode(jpg, size, &img), 0);
    for (int i = 0; i < W * H; i++) {
        assert_int_equal(img.rgb[3 * i], img.rgb[3 * i + 1]);
        assert_int_equal(img.rgb[3 * i], img.rgb[3 * i + 2]);
        assert_true(abs((int)img.rgb[3 * i] - grey[i]) <= 6);
    }
    spw_image_release(&img);
    free(jpg);

    /* Adobe-style CMYK (255 = no ink): left half pure cyan ink, right half none. */
    uint8_t cmyk[W * H * 4];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = cmyk + ((size_t)y * W + (size_t)x) * 4;
            p[0] = x < W / 2 ? 0 : 255;
            p[1] = p[2] = p[3] = 255;
        }
    jpg = encode_jpeg(cmyk, W, H, 4, JCS_CMYK, &size);
    assert_int_equal(spw_image_decode(jpg, size, &img), 0);
    const uint8_t *cyan = img.rgb + ((size_t)4 * W + 2) * 3;
    const uint8_t *white = img.rgb + ((size_t)4 * W + W - 2) * 3;
    assert_true(cyan[0] < 40 && cyan[1] > 215 && cyan[2] > 215);
    assert_true(white[0] > 215 && white[1] > 215 && white[2] > 215);
    spw_image_release(&img);
    free(jpg);
}

static void test_png_formats(void **state)
{
    (void)state;
    enum { W = 5, H = 3 };
    uint8_t rgba[W * H * 4];
    for (int i = 0; i < W * H; i++) {
        rgba[4 * i] = (uint8_t)(10 * i);
        rgba[4 * i + 1] = (uint8_t)(255 - 10 * i);
        rgba[4 * i + 2] = 77;
        rgba[4 * i + 3] = 255;
    }
    size_t size = 0;
    void *png = encode_png(rgba, W, H, PNG_FORMAT_RGBA, &size, NULL, 0);
    spw_image img;
    assert_int_equal(spw_image_decode(png, size, &img), 0);
    assert_int_equal(img.width, W);
    for (int i = 0; i < W * H; i++)
        for (int c = 0; c < 3; c++)
            assert_int_equal(img.rgb[3 * i + c], rgba[4 * i + c]);
    spw_image_release(&img);
    /* Cut anywhere before the image data ends: a clean error. Losing only the
     * 12-byte IEND trailer leaves the pixels whole, and they must be exact. */
    for (size_t n = 0; n < size; n++) {
        int rc = spw_image_decode(png, n, &img);
        if (n < size - 12) {
            assert_true(rc < 0);
            assert_null(img.rgb);
        } else if (rc == 0) {
            for (int i = 0; i < W * H; i++)
                assert_int_equal(img.rgb[3 * i], rgba[4 * i]);
            spw_image_release(&img);
        }
    }
    free(png);

    uint8_t grey[W * H];
    for (int i = 0; i < W * H; i++)
        grey[i] = (uint8_t)(17 * i);
    size = 0;
    png = encode_png(grey, W, H, PNG_FORMAT_GRAY, &size, NULL, 0);
    assert_int_equal(spw_image_decode(png, size, &img), 0);
    for (int i = 0; i < W * H; i++)
        assert_int_equal(img.rgb[3 * i + 1], grey[i]);
    spw_image_release(&img);
    free(png);

    uint8_t index[W * H], palette[4 * 3] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9};
    for (int i = 0; i < W * H; i++)
        index[i] = (uint8_t)(i % 4);
    size = 0;
    png = encode_png(index, W, H, PNG_FORMAT_RGB_COLORMAP, &size, palette, 4);
    assert_int_equal(spw_image_decode(png, size, &img), 0);
    for (int i = 0; i < W * H; i++)
        assert_memory_equal(img.rgb + 3 * i, palette + 3 * (i % 4), 3);
    spw_image_release(&img);
    free(png);
}

static void test_not_an_image(void **state)
{
    (void)state;
    spw_image img;
    const char text[] = "GIF89a this is not supported";
    assert_int_equal(spw_image_decode(text, sizeof(text), &img), SPW_EUNSUPPORTED);
    assert_int_equal(spw_image_decode(text, 0, &img), SPW_EUNSUPPORTED);
    assert_int_equal(spw_image_load("/nonexistent.jpg", &img), SPW_ENOENT);
}

static void test_to_tensor(void **state)
{
    (void)state;
    /* Crop only: 6x4 image, 4x2 centre crop, mean 0.5 std 0.25. */
    uint8_t px[6 * 4 * 3];
    for (int i = 0; i < 6 * 4 * 3; i++)
        px[i] = (uint8_t)(i * 3);
    spw_image img = {6, 4, px};
    spw_preprocess pp = {0, 4, 2, {0.5f, 0.5f, 0.5f}, {0.25f, 0.25f, 0.25f}};
    float out[3 * 2 * 4];
    assert_int_equal(spw_image_to_tensor(&img, &pp, out), 0);
    /* Output (c=1, y=0, x=0) is source (x=1, y=1), channel 1. */
    float expect = (px[(1 * 6 + 1) * 3 + 1] / 255.0f - 0.5f) / 0.25f;
    assert_float_equal(out[1 * 8 + 0], expect, 1e-5);

    /* Downscale by 2 of a checkerboard averages to mid-grey; constant stays constant. */
    enum { W = 64, H = 48 };
    uint8_t *big = malloc(W * H * 3);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            memset(big + ((size_t)y * W + (size_t)x) * 3, ((x + y) & 1) ? 200 : 100, 3);
    spw_image b = {W, H, big};
    spw_preprocess half = {24, 24, 24, {0, 0, 0}, {1, 1, 1}};
    float small[3 * 24 * 24];
    assert_int_equal(spw_image_to_tensor(&b, &half, small), 0);
    for (int i = 0; i < 3 * 24 * 24; i++)
        assert_float_equal(small[i], 150.0f / 255.0f, 1.0f / 255.0f);
    /* Upscale (bilinear) of a constant image stays constant. */
    memset(big, 33, W * H * 3);
    spw_preprocess up = {96, 90, 90, {0, 0, 0}, {1, 1, 1}};
    float *large = malloc(sizeof(float) * 3 * 90 * 90);
    assert_int_equal(spw_image_to_tensor(&b, &up, large), 0);
    for (int i = 0; i < 3 * 90 * 90; i++)
        assert_float_equal(large[i], 33.0f / 255.0f, 1e-6);
    /* A crop larger than the image (no resize asked) scales it up until it
     * covers the crop: a constant image stays constant. */
    spw_preprocess too_big = {0, 90, 90, {0, 0, 0}, {1, 1, 1}};
    assert_int_equal(spw_image_to_tensor(&b, &too_big, large), 0);
    for (int i = 0; i < 3 * 90 * 90; i++)
        assert_float_equal(large[i], 33.0f / 255.0f, 1e-6);
    spw_preprocess bad_std = {0, 8, 8, {0, 0, 0}, {1, 0, 1}};
    assert_int_equal(spw_image_to_tensor(&b, &bad_std, large), SPW_EINVAL);
    free(large);
    free(big);
}

/* Resize against tests/vectors/image (tools/gen_resize_vectors.py: PyTorch
 * in float64, area averaging down, half-pixel bilinear up, rounded half up).
 * The C side sums in float, so a value within float error of a half may round
 * the other way: every pixel must be within 1 level and at most 1% of them
 * off by that one. A sample position off by half a pixel or a swapped axis
 * moves many pixels by tens of levels (the sources are noise). */
static void test_resize_vectors(void **state)
{
    (void)state;
    static const char *const names[] = {"down_37x23", "down_30x40_by2", "down_64x48",
                                        "up_13x9",    "up_8x8",         "up_5x7"};
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        char path[512];
        spw_tensor src, pp, want;
        snprintf(path, sizeof(path), SPW_TEST_DATA "/vectors/image/%s_src.npy", names[k]);
        assert_int_equal(spw_npy_read(path, &src), 0);
        snprintf(path, sizeof(path), SPW_TEST_DATA "/vectors/image/%s_pp.npy", names[k]);
        assert_int_equal(spw_npy_read(path, &pp), 0);
        snprintf(path, sizeof(path), SPW_TEST_DATA "/vectors/image/%s_out.npy", names[k]);
        assert_int_equal(spw_npy_read(path, &want), 0);
        assert_true(src.dtype == SPW_U8 && src.ndim == 3 && src.dims[2] == 3);
        assert_true(pp.dtype == SPW_I32 && pp.ndim == 1 && pp.dims[0] == 3);
        assert_true(want.dtype == SPW_U8 && want.ndim == 3 && want.dims[0] == 3);
        const int32_t *p = pp.data;
        assert_int_equal(want.dims[1], p[2]);
        assert_int_equal(want.dims[2], p[1]);
        spw_image img = {(int)src.dims[1], (int)src.dims[0], src.data};
        spw_preprocess pre = {p[0], p[1], p[2], {0, 0, 0}, {1, 1, 1}};
        size_t n = (size_t)3 * (size_t)p[1] * (size_t)p[2];
        float *got = malloc(sizeof(float) * n);
        assert_non_null(got);
        assert_int_equal(spw_image_to_tensor(&img, &pre, got), 0);
        const uint8_t *w = want.data;
        size_t off = 0;
        int worst = 0;
        for (size_t i = 0; i < n; i++) {
            int level = (int)lroundf(got[i] * 255.0f), d = abs(level - (int)w[i]);
            off += d != 0;
            worst = d > worst ? d : worst;
            if (d > 1)
                fail_msg("%s: element %zu (c %zu y %zu x %zu) is %d, reference %d", names[k], i,
                         i / ((size_t)p[1] * (size_t)p[2]), i / (size_t)p[1] % (size_t)p[2],
                         i % (size_t)p[1], level, w[i]);
        }
        print_message("  %-16s %lldx%lld -> %d, crop %dx%d: %zu of %zu one level off\n", names[k],
                      (long long)src.dims[1], (long long)src.dims[0], p[0], p[1], p[2], off, n);
        assert_true(off * 100 <= n);
        free(got);
        spw_free(src.data);
        spw_free(pp.data);
        spw_free(want.data);
    }
}

/* A real photo from the shared data set, when it is there. */
static void test_real_photo(void **state)
{
    (void)state;
    const char *shared = getenv("SPLITWIRE_SHARED");
    char path[512];
    snprintf(path, sizeof(path),
             "%s/data/imagenette2-224/val/n01440764/ILSVRC2012_val_00009111.jpg",
             shared ? shared : SPW_SOURCE_DIR "/../shared");
    FILE *f = fopen(path, "rb");
    if (!f)
        spw_skip("../shared missing: no %s (set SPLITWIRE_SHARED)", path);
    fclose(f);
    spw_image img;
    assert_int_equal(spw_image_load(path, &img), 0);
    assert_int_equal(img.width, 224);
    assert_int_equal(img.height, 224);
    spw_image_release(&img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jpeg_rgb),    cmocka_unit_test(test_jpeg_grey_and_cmyk),
        cmocka_unit_test(test_png_formats), cmocka_unit_test(test_not_an_image),
        cmocka_unit_test(test_to_tensor),   cmocka_unit_test(test_resize_vectors),
        cmocka_unit_test(test_real_photo),
    };
    return spw_test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}

/* Core: status codes, error detail, logging level, allocator hook, f16,
 * tensor conversion and .npy I/O. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime/core/internal.h"

static void test_status_strings(void **state)
{
    (void)state;
    assert_string_equal(spw_strerror(SPW_OK), "success");
    assert_string_equal(spw_err_name(SPW_ESHAPE), "SPW_ESHAPE");
    assert_string_equal(spw_strerror(SPW_ENOMEM), "out of memory");
    assert_string_equal(spw_strerror(12345), "unknown error");
    /* Every code has distinct text and a negative value. */
    static const int codes[] = {
#define SPW__CODE(name, value, text) SPW_##name,
        SPW_STATUS_MAP(SPW__CODE)
#undef SPW__CODE
    };
    for (size_t i = 0; i < SPW_ARRAY_SIZE(codes); i++) {
        assert_true(codes[i] < 0);
        assert_string_not_equal(spw_strerror(codes[i]), "unknown error");
        for (size_t j = i + 1; j < SPW_ARRAY_SIZE(codes); j++) {
            assert_int_not_equal(codes[i], codes[j]);
            assert_string_not_equal(spw_strerror(codes[i]), spw_strerror(codes[j]));
        }
    }
}

static void test_error_detail(void **state)
{
    (void)state;
    spw_error_clear();
    assert_string_equal(spw_error_detail(), "");
    assert_int_equal(spw__error(SPW_ESHAPE, "node '%s': %d vs %d", "conv1", 3, 4), SPW_ESHAPE);
    assert_string_equal(spw_error_detail(), "node 'conv1': 3 vs 4");
    assert_int_equal(spw__error_context(SPW_ESHAPE, "model.onnx"), SPW_ESHAPE);
    assert_string_equal(spw_error_detail(), "model.onnx: node 'conv1': 3 vs 4");
}

static void test_log_level(void **state)
{
    (void)state;
    spw_log_level old = spw_log_get_level();
    spw_log_set_level(SPW_LOG_DEBUG);
    assert_int_equal(spw_log_get_level(), SPW_LOG_DEBUG);
    spw_log_set_level(old);
}

/* Counting allocator: fails once `budget` allocations have been made. */
static struct {
    long calls, budget, live;
} counter;

static void *count_malloc(size_t n, void *ctx)
{
    (void)ctx;
    if (counter.budget >= 0 && counter.calls >= counter.budget)
        return NULL;
    counter.calls++;
    counter.live++;
    return malloc(n);
}
static void *count_realloc(void *p, size_t n, void *ctx)
{
    (void)ctx;
    if (counter.budget >= 0 && counter.calls >= counter.budget)
        return NULL;
    counter.calls++;
    if (!p)
        counter.live++;
    return realloc(p, n);
}
static void count_free(void *p, void *ctx)
{
    (void)ctx;
    if (p)
        counter.live--;
    free(p);
}

static void test_allocator_hook(void **state)
{
    (void)state;
    spw_allocator a = {count_malloc, count_realloc, count_free, NULL};
    counter.calls = 0;
    counter.budget = -1;
    counter.live = 0;
    spw_set_allocator(&a);
    void *p = spw__aligned_alloc(64, 1000);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 64, 0);
    assert_int_equal(counter.live, 1);
    spw__aligned_free(p);
    assert_int_equal(counter.live, 0);
    counter.budget = 0;
    assert_null(spw__malloc(10));
    assert_null(spw__aligned_alloc(64, 10));
    spw_set_allocator(NULL);
    p = spw__malloc(10);
    assert_non_null(p);
    spw__free(p);
}

static void test_f16(void **state)
{
    (void)state;
    assert_int_equal(spw_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(spw_f32_to_f16(-2.0f), 0xc000);
    assert_int_equal(spw_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(spw_f32_to_f16(65520.0f), 0x7c00); /* rounds to Inf */
    assert_int_equal(spw_f32_to_f16(INFINITY), 0x7c00);
    assert_true(isnan(spw_f16_to_f32(spw_f32_to_f16(NAN))));
    assert_int_equal(spw_f32_to_f16(5.9604645e-8f), 0x0001); /* smallest subnormal */
    assert_int_equal(spw_f32_to_f16(1.0009765625f), 0x3c01);
    /* Ties go to even: 1 + 2^-11 is halfway between 0x3c00 and 0x3c01. */
    assert_int_equal(spw_f32_to_f16(1.00048828125f), 0x3c00);
    /* Every finite half survives a round trip through f32. */
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00)
            continue;
        assert_int_equal(spw_f32_to_f16(spw_f16_to_f32((uint16_t)h)), h);
    }
}

static void test_convert_layout_and_type(void **state)
{
    (void)state;
    float src[2 * 3 * 2 * 2];
    for (int i = 0; i < 24; i++)
        src[i] = (float)i + 0.5f;
    uint16_t half[24];
    float back[24];
    spw_tensor a = {SPW_F32, SPW_LAYOUT_NCHW, 4, {2, 3, 2, 2}, src};
    spw_tensor b = {SPW_F16, SPW_LAYOUT_NHWC, 4, {2, 3, 2, 2}, half};
    spw_tensor c = {SPW_F32, SPW_LAYOUT_NCHW, 4, {2, 3, 2, 2}, back};
    assert_int_equal(spw_tensor_convert(&b, &a), 0);
    /* NHWC element (n=0, h=0, w=1, c=2) is NCHW element (0, 2, 0, 1) = 9. */
    assert_float_equal(spw_f16_to_f32(half[(0 * 2 + 1) * 3 + 2]), 9.5f, 0);
    assert_int_equal(spw_tensor_convert(&c, &b), 0);
    assert_memory_equal(src, back, sizeof(src));
    int32_t ints[24];
    spw_tensor d = {SPW_I32, SPW_LAYOUT_NCHW, 4, {2, 3, 2, 2}, ints};
    assert_int_equal(spw_tensor_convert(&d, &a), 0);
    assert_int_equal(ints[0], 0); /* 0.5 rounds half to even */
    assert_int_equal(ints[1], 2); /* 1.5 -> 2 */
    spw_tensor wrong = {SPW_F32, SPW_LAYOUT_NCHW, 4, {2, 3, 2, 3}, back};
    assert_int_equal(spw_tensor_convert(&wrong, &a), SPW_ESHAPE);
}

/* Same-type 4-byte relayout takes the blocked transpose: check every index
 * on a shape whose sides are not multiples of the block. */
static void test_convert_blocked_transpose(void **state)
{
    (void)state;
    enum { N = 2, C = 37, H = 5, W = 41 };
    size_t n = (size_t)N * C * H * W;
    float *a = malloc(n * 4), *b = malloc(n * 4), *c = malloc(n * 4);
    for (size_t i = 0; i < n; i++)
        a[i] = (float)i;
    spw_tensor nchw = {SPW_F32, SPW_LAYOUT_NCHW, 4, {N, C, H, W}, a};
    spw_tensor nhwc = {SPW_F32, SPW_LAYOUT_NHWC, 4, {N, C, H, W}, b};
    spw_tensor back = {SPW_F32, SPW_LAYOUT_NCHW, 4, {N, C, H, W}, c};
    assert_int_equal(spw_tensor_convert(&nhwc, &nchw), 0);
    for (int bb = 0; bb < N; bb++)
        for (int ch = 0; ch < C; ch++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    assert_float_equal(b[(((size_t)bb * H + y) * W + x) * C + ch],
                                       a[(((size_t)bb * C + ch) * H + y) * W + x], 0);
    assert_int_equal(spw_tensor_convert(&back, &nhwc), 0);
    assert_memory_equal(a, c, n * 4);
    free(a);
    free(b);
    free(c);
}

static void test_npy_round_trip(void **state)
{
    (void)state;
    char path[] = "/tmp/spw_test_npy_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    int32_t data[5 * 7];
    for (int i = 0; i < 35; i++)
        data[i] = i * 1000 - 7;
    spw_tensor t = {SPW_I32, SPW_LAYOUT_NCHW, 2, {5, 7}, data};
    assert_int_equal(spw_npy_write(path, &t), 0);
    spw_tensor r;
    assert_int_equal(spw_npy_read(path, &r), 0);
    assert_int_equal(r.dtype, SPW_I32);
    assert_int_equal(r.ndim, 2);
    assert_int_equal(r.dims[0], 5);
    assert_int_equal(r.dims[1], 7);
    assert_memory_equal(r.data, data, sizeof(data));
    spw_free(r.data);

    /* 1-D shape is written as (n,) and read back. */
    spw_tensor one = {SPW_I32, SPW_LAYOUT_NCHW, 1, {3}, data};
    assert_int_equal(spw_npy_write(path, &one), 0);
    assert_int_equal(spw_npy_read(path, &r), 0);
    assert_int_equal(r.ndim, 1);
    assert_int_equal(r.dims[0], 3);
    spw_free(r.data);

    /* Truncation at every length fails cleanly. */
    void *buf;
    size_t size;
    assert_int_equal(spw_npy_write(path, &t), 0);
    assert_int_equal(spw__read_file(path, &buf, &size), 0);
    for (size_t n = 0; n < size; n++) {
        int rc = spw_npy_read_buffer(buf, n, &r);
        assert_true(rc < 0);
        assert_null(r.data);
    }
    assert_int_equal(spw_npy_read_buffer(buf, size, &r), 0);
    spw_free(r.data);
    /* Unsupported dtype and fortran order are refused. */
    char *hdr = (char *)buf + 10;
    char *descr = strstr(hdr, "<i4");
    assert_non_null(descr);
    memcpy(descr, "<c8", 3);
    assert_int_equal(spw_npy_read_buffer(buf, size, &r), SPW_EUNSUPPORTED);
    memcpy(descr, "<i4", 3);
    char *fo = strstr(hdr, "False");
    memcpy(fo, "True ", 5);
    assert_int_equal(spw_npy_read_buffer(buf, size, &r), SPW_EUNSUPPORTED);
    spw__free(buf);
    assert_int_equal(spw_npy_read("/nonexistent/x.npy", &r), SPW_ENOENT);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_strings),
        cmocka_unit_test(test_error_detail),
        cmocka_unit_test(test_log_level),
        cmocka_unit_test(test_allocator_hook),
        cmocka_unit_test(test_f16),
        cmocka_unit_test(test_convert_layout_and_type),
        cmocka_unit_test(test_convert_blocked_transpose),
        cmocka_unit_test(test_npy_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Element types, half-precision conversion and tensor copies. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "runtime/core/internal.h"

size_t spw_dtype_size(spw_dtype dtype)
{
    switch (dtype) {
    case SPW_F32:
    case SPW_I32:
        return 4;
    case SPW_F16:
        return 2;
    case SPW_I8:
    case SPW_U8:
        return 1;
    case SPW_I64:
        return 8;
    default:
        return 0;
    }
}

const char *spw_dtype_name(spw_dtype dtype)
{
    switch (dtype) {
    case SPW_F32:
        return "f32";
    case SPW_F16:
        return "f16";
    case SPW_I8:
        return "i8";
    case SPW_I32:
        return "i32";
    case SPW_U8:
        return "u8";
    case SPW_I64:
        return "i64";
    default:
        return "invalid";
    }
}

int64_t spw_tensor_numel(const spw_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->dims[i] < 0)
            return 0;
        if (__builtin_mul_overflow(n, t->dims[i], &n))
            return 0;
    }
    return n;
}

size_t spw_tensor_nbytes(const spw_tensor *t)
{
    return (size_t)spw_tensor_numel(t) * spw_dtype_size(t->dtype);
}

const char *spw__dims_str(int ndim, const int64_t *dims, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    if (ndim < 0) {
        snprintf(buf, size, "?");
        return buf;
    }
    if (ndim == 0) {
        snprintf(buf, size, "scalar");
        return buf;
    }
    for (int i = 0; i < ndim && used < size; i++) {
        int w = dims[i] < 0
                    ? snprintf(buf + used, size - used, "%sN", i ? "x" : "")
                    : snprintf(buf + used, size - used, "%s%lld", i ? "x" : "", (long long)dims[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return buf;
}

const char *spw_tensor_shape_str(const spw_tensor *t, char *buf, size_t size)
{
    return spw__dims_str(t->ndim, t->dims, buf, size);
}

uint16_t spw_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t exp = (x >> 23) & 0xffu;
    uint32_t mant = x & 0x7fffffu;
    if (exp == 0xff) /* Inf stays Inf; NaN keeps a quiet payload bit */
        return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u | (mant >> 13) : 0));
    int e = (int)exp - 127 + 15;
    if (e >= 31)
        return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) {
        if (e < -10)
            return (uint16_t)sign;
        /* Subnormal half: shift the full significand, round to nearest even. */
        mant |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = sign | ((uint32_t)e << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fffu;
    /* Carry from rounding may ripple into the exponent, which is correct. */
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1)))
        h++;
    return (uint16_t)h;
}

float spw_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t x;
    if (exp == 0) {
        if (mant == 0) {
            x = sign;
        } else {
            int e = -1;
            do {
                mant <<= 1;
                e++;
            } while (!(mant & 0x400u));
            x = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        x = sign | 0x7f800000u | (mant << 13);
    } else {
        x = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

static double load_elem(const void *p, spw_dtype t, size_t i)
{
    switch (t) {
    case SPW_F32:
        return ((const float *)p)[i];
    case SPW_F16:
        return spw_f16_to_f32(((const uint16_t *)p)[i]);
    case SPW_I8:
        return ((const int8_t *)p)[i];
    case SPW_U8:
        return ((const uint8_t *)p)[i];
    case SPW_I32:
        return ((const int32_t *)p)[i];
    case SPW_I64:
        return (double)((const int64_t *)p)[i];
    default:
        return 0;
    }
}

static double sat(double v, double lo, double hi)
{
    if (isnan(v))
        return 0;
    v = nearbyint(v);
    return v < lo ? lo : v > hi ? hi : v;
}

static void store_elem(void *p, spw_dtype t, size_t i, double v)
{
    switch (t) {
    case SPW_F32:
        ((float *)p)[i] = (float)v;
        break;
    case SPW_F16:
        ((uint16_t *)p)[i] = spw_f32_to_f16((float)v);
        break;
    case SPW_I8:
        ((int8_t *)p)[i] = (int8_t)sat(v, -128, 127);
        break;
    case SPW_U8:
        ((uint8_t *)p)[i] = (uint8_t)sat(v, 0, 255);
        break;
    case SPW_I32:
        ((int32_t *)p)[i] = (int32_t)sat(v, -2147483648.0, 2147483647.0);
        break;
    case SPW_I64:
        ((int64_t *)p)[i] = (int64_t)sat(v, -9.2233720368547748e18, 9.2233720368547748e18);
        break;
    default:
        break;
    }
}

/* dst[c][r] = src[r][c] for a rows x cols matrix. */
static void transpose32(const uint32_t *src, uint32_t *dst, size_t rows, size_t cols)
{
    enum { B = 32 }; /* 32 x 32 words: both tiles stay in L1 */
    for (size_t r0 = 0; r0 < rows; r0 += B) {
        size_t r1 = r0 + B < rows ? r0 + B : rows;
        for (size_t c0 = 0; c0 < cols; c0 += B) {
            size_t c1 = c0 + B < cols ? c0 + B : cols;
            for (size_t r = r0; r < r1; r++)
                for (size_t c = c0; c < c1; c++)
                    dst[c * rows + r] = src[r * cols + c];
        }
    }
}

int spw_tensor_convert(spw_tensor *dst, const spw_tensor *src)
{
    if (!dst || !src || !dst->data || !src->data)
        return spw__error(SPW_EINVAL, "tensor_convert: NULL tensor or data");
    if (!spw_dtype_size(dst->dtype) || !spw_dtype_size(src->dtype))
        return spw__error(SPW_EINVAL, "tensor_convert: invalid dtype");
    if (dst->ndim != src->ndim)
        return spw__error(SPW_ESHAPE, "tensor_convert: rank %d vs %d", dst->ndim, src->ndim);
    for (int i = 0; i < src->ndim; i++)
        if (dst->dims[i] != src->dims[i])
            return spw__error(SPW_ESHAPE, "tensor_convert: dim %d is %lld vs %lld", i,
                              (long long)dst->dims[i], (long long)src->dims[i]);
    int64_t n = spw_tensor_numel(src);
    bool relayout = src->ndim == 4 && src->layout != dst->layout;
    if (!relayout && src->dtype == dst->dtype) {
        if (dst->data != src->data)
            memmove(dst->data, src->data, (size_t)n * spw_dtype_size(src->dtype));
        return 0;
    }
    if (relayout && dst->data == src->data)
        return spw__error(SPW_EINVAL, "tensor_convert: layout change cannot be in place");
    if (!relayout) {
        /* Same layout: element i maps to element i. Wider to narrower in place is
         * safe front to back; narrower to wider must go back to front. */
        if (spw_dtype_size(dst->dtype) > spw_dtype_size(src->dtype))
            for (int64_t i = n - 1; i >= 0; i--)
                store_elem(dst->data, dst->dtype, (size_t)i,
                           load_elem(src->data, src->dtype, (size_t)i));
        else
            for (int64_t i = 0; i < n; i++)
                store_elem(dst->data, dst->dtype, (size_t)i,
                           load_elem(src->data, src->dtype, (size_t)i));
        return 0;
    }
    if (src->dtype == dst->dtype && spw_dtype_size(src->dtype) == 4) {
        /* The common case on every run of an NHWC backend: per image, a
         * [C][HW] <-> [HW][C] transpose of 4-byte words, in cache-sized blocks. */
        size_t C = (size_t)src->dims[1], HW = (size_t)(src->dims[2] * src->dims[3]);
        bool to_nhwc = dst->layout == SPW_LAYOUT_NHWC;
        size_t rows = to_nhwc ? C : HW, cols = to_nhwc ? HW : C;
        for (int64_t b = 0; b < src->dims[0]; b++)
            transpose32((const uint32_t *)src->data + (size_t)b * C * HW,
                        (uint32_t *)dst->data + (size_t)b * C * HW, rows, cols);
        return 0;
    }
    /* dims are the logical NCHW shape in both; walk it and index each side. */
    int64_t N = src->dims[0], C = src->dims[1], H = src->dims[2], W = src->dims[3];
    for (int64_t b = 0; b < N; b++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t y = 0; y < H; y++)
                for (int64_t x = 0; x < W; x++) {
                    size_t nchw = (size_t)(((b * C + c) * H + y) * W + x);
                    size_t nhwc = (size_t)(((b * H + y) * W + x) * C + c);
                    size_t si = src->layout == SPW_LAYOUT_NCHW ? nchw : nhwc;
                    size_t di = dst->layout == SPW_LAYOUT_NCHW ? nchw : nhwc;
                    store_elem(dst->data, dst->dtype, di, load_elem(src->data, src->dtype, si));
                }
    return 0;
}

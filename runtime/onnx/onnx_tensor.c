/* TensorProto -> dense constant data. ONNX stores values either as raw
 * little-endian bytes or in typed repeated fields (float_data, int32_data,
 * int64_data, double_data); every float type ends up as F32 so passes and
 * kernels see one float constant type. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "runtime/onnx/onnx_internal.h"

typedef Onnx__TensorProto__DataType onnx_type;

const char *spw__onnx_type_name(int32_t t)
{
    switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
        return "FLOAT";
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
        return "UINT8";
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
        return "INT8";
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16:
        return "UINT16";
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
        return "INT16";
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
        return "INT32";
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
        return "INT64";
    case ONNX__TENSOR_PROTO__DATA_TYPE__STRING:
        return "STRING";
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL:
        return "BOOL";
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
        return "FLOAT16";
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
        return "DOUBLE";
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
        return "UINT32";
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
        return "UINT64";
    case ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX64:
        return "COMPLEX64";
    case ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX128:
        return "COMPLEX128";
    case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16:
        return "BFLOAT16";
    default:
        return "UNDEFINED";
    }
}

spw_dtype spw__onnx_value_dtype(int32_t t)
{
    switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
        return SPW_F32;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
        return SPW_F16;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
        return SPW_I8;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
        return SPW_U8;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
        return SPW_I32;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
        return SPW_I64;
    default:
        return SPW_DTYPE_INVALID;
    }
}

/* Host type a constant of this ONNX type becomes, and its size in raw_data. */
static spw_dtype const_dtype(int32_t t, size_t *raw_size)
{
    switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
        *raw_size = 4;
        return SPW_F32;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
        *raw_size = 2;
        return SPW_F32;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
        *raw_size = 8;
        return SPW_F32;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
        *raw_size = 1;
        return SPW_I8;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
        *raw_size = 1;
        return SPW_U8;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
        *raw_size = 4;
        return SPW_I32;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
        *raw_size = 8;
        return SPW_I64;
    default:
        *raw_size = 0;
        return SPW_DTYPE_INVALID;
    }
}

/* Byte-wise little-endian loads: correct on any host and alignment. */
static uint16_t ld16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (unsigned)p[1] << 8);
}
static uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t ld64(const uint8_t *p)
{
    return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

/* double -> float without the undefined behaviour of an out-of-range cast. */
static float narrow(double d)
{
    if (d > FLT_MAX)
        return INFINITY;
    if (d < -FLT_MAX)
        return -INFINITY;
    return (float)d;
}

/* Converts raw little-endian bytes into dst (type from const_dtype). */
static void convert_raw(int32_t t, const uint8_t *src, size_t n, void *dst)
{
    float *f = dst;
    switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
        for (size_t i = 0; i < n; i++)
            f[i] = bits_f32(ld32(src + 4 * i));
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
        for (size_t i = 0; i < n; i++)
            f[i] = spw_f16_to_f32(ld16(src + 2 * i));
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
        for (size_t i = 0; i < n; i++) {
            uint64_t u = ld64(src + 8 * i);
            double d;
            memcpy(&d, &u, sizeof(d));
            f[i] = narrow(d);
        }
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
        memcpy(dst, src, n);
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
        for (size_t i = 0; i < n; i++)
            ((int32_t *)dst)[i] = (int32_t)ld32(src + 4 * i);
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
        for (size_t i = 0; i < n; i++)
            ((int64_t *)dst)[i] = (int64_t)ld64(src + 8 * i);
        break;
    default:
        break;
    }
}

/* The typed field a value of type t lives in when raw_data is absent.
 * int32_data also carries FLOAT16 bits, INT8 and UINT8 (ONNX packs every
 * narrow type into it); the range check keeps a corrupt value from being
 * silently truncated. */
static int convert_typed(const Onnx__TensorProto *t, const char *what, size_t n, void *dst)
{
    switch (t->data_type) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
        memcpy(dst, t->float_data, n * sizeof(float));
        return 0;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
        for (size_t i = 0; i < n; i++)
            ((float *)dst)[i] = narrow(t->double_data[i]);
        return 0;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
        memcpy(dst, t->int64_data, n * sizeof(int64_t));
        return 0;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
        memcpy(dst, t->int32_data, n * sizeof(int32_t));
        return 0;
    default:
        break;
    }
    int32_t lo = 0, hi = 0;
    switch (t->data_type) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
        lo = 0, hi = 0xffff;
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
        lo = -128, hi = 127;
        break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
        lo = 0, hi = 255;
        break;
    default:
        return spw__error(SPW_EINTERNAL, "%s: unexpected data type", what);
    }
    for (size_t i = 0; i < n; i++) {
        int32_t v = t->int32_data[i];
        if (v < lo || v > hi)
            return spw__error(SPW_EFORMAT, "%s: int32_data[%zu] = %d is out of range for %s", what,
                              i, (int)v, spw__onnx_type_name(t->data_type));
        if (t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16)
            ((float *)dst)[i] = spw_f16_to_f32((uint16_t)v);
        else if (t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT8)
            ((int8_t *)dst)[i] = (int8_t)v;
        else
            ((uint8_t *)dst)[i] = (uint8_t)v;
    }
    return 0;
}

/* Number of values the typed field for type t holds, and its name. */
static size_t typed_count(const Onnx__TensorProto *t, const char **field)
{
    switch (t->data_type) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
        *field = "float_data";
        return t->n_float_data;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
        *field = "double_data";
        return t->n_double_data;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
        *field = "int64_data";
        return t->n_int64_data;
    default:
        *field = "int32_data";
        return t->n_int32_data;
    }
}

int spw__onnx_tensor_decode(const Onnx__TensorProto *t, const char *what, spw_onnx_tensor *out)
{
    memset(out, 0, sizeof(*out));
    if ((t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) ||
        t->n_external_data)
        return spw__error(SPW_EUNSUPPORTED,
                          "%s: external data is not supported (embed the weights in the file)",
                          what);
    if (t->segment)
        return spw__error(SPW_EUNSUPPORTED, "%s: segmented tensors are not supported", what);
    if (!t->has_data_type)
        return spw__error(SPW_EFORMAT, "%s: no data_type", what);
    size_t raw_size;
    spw_dtype dtype = const_dtype(t->data_type, &raw_size);
    if (dtype == SPW_DTYPE_INVALID)
        return spw__error(SPW_EUNSUPPORTED, "%s: data type %s (%d) is not supported", what,
                          spw__onnx_type_name(t->data_type), (int)t->data_type);
    if (t->n_dims > SPW_MAX_DIMS)
        return spw__error(SPW_EUNSUPPORTED, "%s: %zu dims (at most %d supported)", what, t->n_dims,
                          SPW_MAX_DIMS);
    size_t numel = 1;
    for (size_t i = 0; i < t->n_dims; i++) {
        int64_t d = t->dims[i];
        if (d < 0 || d > SPW_ONNX_MAX_DIM)
            return spw__error(SPW_EFORMAT, "%s: dim %zu is %lld", what, i, (long long)d);
        /* Every partial product stays in int64 too: the graph multiplies
         * dims in that type, and a trailing 0 dim must not hide an overflow. */
        if (!spw__mul_ok(numel, (size_t)d, &numel) || numel > (size_t)INT64_MAX)
            return spw__error(SPW_EFORMAT, "%s: element count overflows", what);
        out->dims[i] = d;
    }
    out->ndim = (int)t->n_dims;
    out->dtype = dtype;

    const char *field;
    size_t have = typed_count(t, &field);
    if (t->has_raw_data) {
        size_t need;
        if (!spw__mul_ok(numel, raw_size, &need) || t->raw_data.len != need)
            return spw__error(SPW_EFORMAT,
                              "%s: %zu elements of %s (%zu bytes each) do not match "
                              "%zu bytes of raw_data",
                              what, numel, spw__onnx_type_name(t->data_type), raw_size,
                              t->raw_data.len);
        if (have)
            return spw__error(SPW_EFORMAT, "%s: has both raw_data and %s", what, field);
    } else if (have != numel) {
        return spw__error(SPW_EFORMAT, "%s: %zu elements of %s expected, %s holds %zu", what, numel,
                          spw__onnx_type_name(t->data_type), field, have);
    }

    /* numel is bounded by the data present, so this allocation is too. */
    out->data = spw__malloc(numel * spw_dtype_size(dtype));
    if (!out->data)
        return spw__error(SPW_ENOMEM, "%s: out of memory for %zu elements", what, numel);
    if (!numel) {
        /* Empty tensor: the source arrays may be NULL. */
    } else if (t->has_raw_data) {
        convert_raw(t->data_type, t->raw_data.data, numel, out->data);
    } else {
        int rc = convert_typed(t, what, numel, out->data);
        if (rc) {
            spw__free(out->data);
            out->data = NULL;
            return rc;
        }
    }
    return 0;
}

/* splitwire: tensor descriptors, element types, layouts and .npy files. */
#ifndef SPLITWIRE_TENSOR_H
#define SPLITWIRE_TENSOR_H

#include <stdint.h>
#include <stddef.h>

#include "splitwire/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SPW_MAX_DIMS 8

typedef enum spw_dtype {
    SPW_DTYPE_INVALID = 0,
    SPW_F32 = 1,
    SPW_F16 = 2,
    SPW_I8 = 3,
    SPW_I32 = 4,
    SPW_U8 = 5,
    SPW_I64 = 6,
} spw_dtype;

/* Meaning of a 4-D tensor's axes. Other ranks are always row-major as given. */
typedef enum spw_layout {
    SPW_LAYOUT_NCHW = 0,
    SPW_LAYOUT_NHWC = 1,
} spw_layout;

/*
 * A tensor view: shape, type and a pointer the caller owns. dims[i] is -1 in
 * model descriptions where the size is chosen at plan time (the batch).
 */
typedef struct spw_tensor {
    spw_dtype dtype;
    spw_layout layout;
    int ndim;
    int64_t dims[SPW_MAX_DIMS];
    void *data;
} spw_tensor;

SPW_API size_t spw_dtype_size(spw_dtype dtype);
SPW_API const char *spw_dtype_name(spw_dtype dtype);
/* Number of elements (product of dims); 0 when any dim is negative. */
SPW_API int64_t spw_tensor_numel(const spw_tensor *t);
SPW_API size_t spw_tensor_nbytes(const spw_tensor *t);
/* Formats "1x3x224x224" into buf; returns buf. */
SPW_API const char *spw_tensor_shape_str(const spw_tensor *t, char *buf, size_t size);

/* IEEE binary16 <-> binary32, round to nearest even, NaN and Inf kept. */
SPW_API uint16_t spw_f32_to_f16(float f);
SPW_API float spw_f16_to_f32(uint16_t h);

/*
 * Copy src into dst converting element type (any of f32, f16, i8, i32, u8, i64;
 * float to int rounds half to even and saturates) and, for 4-D tensors, layout.
 * dst->dims must describe the same logical (NCHW) shape as src.
 */
SPW_API int spw_tensor_convert(spw_tensor *dst, const spw_tensor *src);

/*
 * .npy files (format 1.0/2.0/3.0, little-endian, C order; f32 f16 i8 u8 i32 i64).
 * spw_npy_read allocates t->data; release it with spw_free().
 */
SPW_API int spw_npy_read(const char *path, spw_tensor *t);
SPW_API int spw_npy_read_buffer(const void *buf, size_t size, spw_tensor *t);
SPW_API int spw_npy_write(const char *path, const spw_tensor *t);

#ifdef __cplusplus
}
#endif
#endif

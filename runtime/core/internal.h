/* Internal helpers shared across the library (prefix spw__). Not installed. */
#ifndef SPW_CORE_INTERNAL_H
#define SPW_CORE_INTERNAL_H

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "splitwire/splitwire.h"

#if defined(__GNUC__)
#define SPW_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define SPW_LIKELY(x) __builtin_expect(!!(x), 1)
#define SPW_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define SPW_PRINTF(a, b)
#define SPW_LIKELY(x) (x)
#define SPW_UNLIKELY(x) (x)
#endif

#define SPW_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define SPW_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SPW_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Records a detail message for spw_error_detail() and returns status, so
 * failures read: return spw__error(SPW_ESHAPE, "node '%s': ...", name); */
#define spw__error spw_error_set /* the public call, so code outside reports alike */
/* Prefixes the current detail with more context ("loading x.onnx: ..."). */
int spw__error_context(int status, const char *fmt, ...) SPW_PRINTF(2, 3);

void spw__log(spw_log_level level, const char *fmt, ...) SPW_PRINTF(2, 3);
extern int spw__log_level_cached; /* -1 until SPW_LOG has been read */
spw_log_level spw__log_level(void);
#define SPW_LOG_AT(lvl, ...)                     \
    do {                                         \
        if ((int)(lvl) <= (int)spw__log_level()) \
            spw__log((lvl), __VA_ARGS__);        \
    } while (0)
#define SPW_LOGE(...) SPW_LOG_AT(SPW_LOG_ERROR, __VA_ARGS__)
#define SPW_LOGW(...) SPW_LOG_AT(SPW_LOG_WARN, __VA_ARGS__)
#define SPW_LOGI(...) SPW_LOG_AT(SPW_LOG_INFO, __VA_ARGS__)
#define SPW_LOGD(...) SPW_LOG_AT(SPW_LOG_DEBUG, __VA_ARGS__)

/* All allocation goes through these (and so through spw_set_allocator). */
void *spw__malloc(size_t size);
void *spw__calloc(size_t n, size_t size);
void *spw__realloc(void *ptr, size_t size);
void spw__free(void *ptr);
char *spw__strdup(const char *s);
/* Aligned blocks (align a power of two); free with spw__aligned_free. */
void *spw__aligned_alloc(size_t align, size_t size);
void spw__aligned_free(void *ptr);
/* Touches every page so the first inference does not pay page faults. */
void spw__prefault(void *ptr, size_t size);

/* Grows *arr (element size elem) to hold at least need elements. */
int spw__grow(void **arr, int *cap, int need, size_t elem);

/* Overflow-checked size arithmetic: false on overflow. */
static inline bool spw__mul_ok(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool spw__add_ok(size_t a, size_t b, size_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

/* The latent quantiser's rounding (Quantize op, codec): rintf, i.e. half to
 * even in the default rounding mode like torch.round, saturated to int32 so
 * no input reaches undefined behaviour; NaN maps to 0. */
static inline int32_t spw__round_i32(float v)
{
    float r = rintf(v);
    if (isnan(r))
        return 0;
    if (r >= 2147483648.0f)
        return INT32_MAX;
    if (r < -2147483648.0f)
        return INT32_MIN;
    return (int32_t)r;
}

/* "<dir>/<backbone id>.onnx", where dir is models_dir, else $SPW_MODEL_DIR,
 * else build/models (NULL or empty counts as unset). Truncates to size. */
void spw__backbone_path(const char *models_dir, const char *id, char *buf, size_t size);

/* Reads a whole file into memory (spw__free the result). */
int spw__read_file(const char *path, void **data, size_t *size);

/* "1x48x28x28" ("N" for a free dim, "?" for unknown rank). */
const char *spw__dims_str(int ndim, const int64_t *dims, char *buf, size_t size);

/* Monotonic clock in nanoseconds. */
uint64_t spw__now_ns(void);

#endif

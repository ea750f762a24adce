/* splitwire: status codes, error details, logging and the replaceable allocator. */
#ifndef SPLITWIRE_STATUS_H
#define SPLITWIRE_STATUS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SPW_BUILDING_LIBRARY) && defined(__GNUC__)
#define SPW_API __attribute__((visibility("default")))
#else
#define SPW_API
#endif

/*
 * Every fallible call returns 0 (SPW_OK) or one of these negative codes.
 * The list is the single source for the enum, spw_strerror() and spw_err_name().
 */
#define SPW_STATUS_MAP(X)                                   \
    X(EINVAL, -1, "invalid argument")                       \
    X(ENOMEM, -2, "out of memory")                          \
    X(EIO, -3, "input/output error")                        \
    X(EFORMAT, -4, "malformed input")                       \
    X(EUNSUPPORTED, -5, "unsupported operation or feature") \
    X(ESHAPE, -6, "inconsistent tensor shapes")             \
    X(ERANGE, -7, "value out of range")                     \
    X(ENOENT, -8, "not found")                              \
    X(ETRUNC, -9, "truncated input")                        \
    X(ECORRUPT, -10, "corrupt data")                        \
    X(EBACKEND, -11, "backend failure")                     \
    X(ENODEV, -12, "no usable device")                      \
    X(ETIMEDOUT, -13, "timed out")                          \
    X(EAGAIN, -14, "resource temporarily unavailable")      \
    X(ENOSPC, -15, "not enough space in the output buffer") \
    X(EMISMATCH, -16, "mismatched model or configuration")  \
    X(EPROTO, -17, "protocol error")                        \
    X(EBUSY, -18, "resource busy")                          \
    X(ECANCELED, -19, "operation canceled")                 \
    X(EINTERNAL, -20, "internal error")                     \
    X(EAUTH, -21, "authentication failed")                  \
    X(EREPLAY, -22, "replayed message")

typedef enum spw_status {
    SPW_OK = 0,
#define SPW__STATUS_ENUM(name, value, text) SPW_##name = (value),
    SPW_STATUS_MAP(SPW__STATUS_ENUM)
#undef SPW__STATUS_ENUM
} spw_status;

/* Human-readable text for a status code ("unknown error" for foreign values). */
SPW_API const char *spw_strerror(int status);
/* Symbolic name of a status code, e.g. "SPW_ESHAPE". */
SPW_API const char *spw_err_name(int status);

/*
 * Detail of the most recent failure in the calling thread, e.g.
 * "node 'conv3' (Conv): weight has 3 input channels, input has 4".
 * Empty string when the last failing call set none. Valid until the next
 * failing call in the same thread.
 */
SPW_API const char *spw_error_detail(void);
SPW_API void spw_error_clear(void);
/*
 * Sets the calling thread's detail (printf-style) and returns status, so code
 * built on the library (a decoder given to the server, a tool) reports its
 * failures the way the library's own calls do:
 *   return spw_error_set(SPW_EFORMAT, "%s: not a WebP image", path);
 */
SPW_API int spw_error_set(int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Logging goes to stderr. Level from SPW_LOG (error|warn|info|debug|trace|off),
 * default warn; spw_log_set_level() overrides it. */
typedef enum spw_log_level {
    SPW_LOG_OFF = 0,
    SPW_LOG_ERROR = 1,
    SPW_LOG_WARN = 2,
    SPW_LOG_INFO = 3,
    SPW_LOG_DEBUG = 4,
    SPW_LOG_TRACE = 5,
} spw_log_level;

SPW_API void spw_log_set_level(spw_log_level level);
SPW_API spw_log_level spw_log_get_level(void);

/*
 * Every allocation of the library goes through this table. Replace it before
 * any other call (tests use it to fail allocations at a chosen point).
 * Passing NULL restores the C library's allocator.
 */
typedef struct spw_allocator {
    void *(*malloc_fn)(size_t size, void *ctx);
    void *(*realloc_fn)(void *ptr, size_t size, void *ctx);
    void (*free_fn)(void *ptr, void *ctx);
    void *ctx;
} spw_allocator;

SPW_API void spw_set_allocator(const spw_allocator *allocator);
/* Frees memory the library handed to the caller (e.g. spw_npy_read data). */
SPW_API void spw_free(void *ptr);

#ifdef __cplusplus
}
#endif
#endif

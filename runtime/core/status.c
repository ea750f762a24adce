/* Status codes, per-thread error detail and levelled logging. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "runtime/core/internal.h"

const char *spw_strerror(int status)
{
    switch (status) {
    case SPW_OK:
        return "success";
#define SPW__STATUS_TEXT(name, value, text) \
    case SPW_##name:                        \
        return text;
        SPW_STATUS_MAP(SPW__STATUS_TEXT)
#undef SPW__STATUS_TEXT
    }
    return "unknown error";
}

const char *spw_err_name(int status)
{
    switch (status) {
    case SPW_OK:
        return "SPW_OK";
#define SPW__STATUS_NAME(name, value, text) \
    case SPW_##name:                        \
        return "SPW_" #name;
        SPW_STATUS_MAP(SPW__STATUS_NAME)
#undef SPW__STATUS_NAME
    }
    return "SPW_UNKNOWN";
}

/* One message per thread, like errno: no locking, no allocation. */
static _Thread_local char detail[512];

const char *spw_error_detail(void)
{
    return detail;
}

void spw_error_clear(void)
{
    detail[0] = '\0';
}

int spw_error_set(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    SPW_LOGD("%s: %s", spw_err_name(status), detail);
    return status;
}

int spw__error_context(int status, const char *fmt, ...)
{
    char prefix[256], old[sizeof(detail)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, detail, sizeof(old));
    /* Truncating an over-long detail is fine: it is for people. */
    int n = snprintf(detail, sizeof(detail), "%s: ", prefix);
    size_t used = n < 0 ? 0 : (size_t)n < sizeof(detail) ? (size_t)n : sizeof(detail) - 1;
    const char *tail = old[0] ? old : spw_strerror(status);
    size_t len = strlen(tail);
    if (len > sizeof(detail) - 1 - used)
        len = sizeof(detail) - 1 - used;
    memcpy(detail + used, tail, len);
    detail[used + len] = '\0';
    return status;
}

int spw__log_level_cached = -1;

spw_log_level spw__log_level(void)
{
    int lvl = __atomic_load_n(&spw__log_level_cached, __ATOMIC_RELAXED);
    if (SPW_LIKELY(lvl >= 0))
        return (spw_log_level)lvl;
    static const struct {
        const char *name;
        spw_log_level level;
    } names[] = {
        {"off", SPW_LOG_OFF},      {"error", SPW_LOG_ERROR}, {"warn", SPW_LOG_WARN},
        {"warning", SPW_LOG_WARN}, {"info", SPW_LOG_INFO},   {"debug", SPW_LOG_DEBUG},
        {"trace", SPW_LOG_TRACE},
    };
    lvl = SPW_LOG_WARN;
    const char *env = getenv("SPW_LOG");
    if (env && *env) {
        bool known = false;
        for (size_t i = 0; i < SPW_ARRAY_SIZE(names); i++) {
            if (strcasecmp(env, names[i].name) == 0) {
                lvl = names[i].level;
                known = true;
            }
        }
        if (!known && env[0] >= '0' && env[0] <= '5' && env[1] == '\0') {
            lvl = env[0] - '0';
            known = true;
        }
        if (!known)
            fprintf(stderr, "splitwire: warn: SPW_LOG=%s not understood, using warn\n", env);
    }
    __atomic_store_n(&spw__log_level_cached, lvl, __ATOMIC_RELAXED);
    return (spw_log_level)lvl;
}

void spw_log_set_level(spw_log_level level)
{
    __atomic_store_n(&spw__log_level_cached, (int)level, __ATOMIC_RELAXED);
}

spw_log_level spw_log_get_level(void)
{
    return spw__log_level();
}

void spw__log(spw_log_level level, const char *fmt, ...)
{
    static const char *const tags[] = {"", "error", "warn", "info", "debug", "trace"};
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* One fputs per line keeps lines from different threads whole. */
    char out[1100];
    snprintf(out, sizeof(out), "splitwire: %s: %s\n",
             tags[(unsigned)level < SPW_ARRAY_SIZE(tags) ? level : 0], line);
    fputs(out, stderr);
}

const char *spw_version_string(void)
{
#define SPW__STR2(x) #x
#define SPW__STR(x) SPW__STR2(x)
    return SPW__STR(SPW_VERSION_MAJOR) "." SPW__STR(SPW_VERSION_MINOR) "." SPW__STR(
        SPW_VERSION_PATCH);
}

uint64_t spw__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

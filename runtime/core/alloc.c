/* The replaceable allocator and the few memory helpers built on it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/core/internal.h"

static void *default_malloc(size_t size, void *ctx)
{
    (void)ctx;
    return malloc(size);
}
static void *default_realloc(void *ptr, size_t size, void *ctx)
{
    (void)ctx;
    return realloc(ptr, size);
}
static void default_free(void *ptr, void *ctx)
{
    (void)ctx;
    free(ptr);
}

static const spw_allocator default_allocator = {default_malloc, default_realloc, default_free,
                                                NULL};
static spw_allocator current = {default_malloc, default_realloc, default_free, NULL};

void spw_set_allocator(const spw_allocator *a)
{
    current = (a && a->malloc_fn && a->realloc_fn && a->free_fn) ? *a : default_allocator;
}

void *spw__malloc(size_t size)
{
    return current.malloc_fn(size ? size : 1, current.ctx);
}

void *spw__calloc(size_t n, size_t size)
{
    size_t total;
    if (!spw__mul_ok(n, size, &total))
        return NULL;
    void *p = spw__malloc(total);
    if (p)
        memset(p, 0, total);
    return p;
}

void *spw__realloc(void *ptr, size_t size)
{
    return current.realloc_fn(ptr, size ? size : 1, current.ctx);
}

void spw__free(void *ptr)
{
    if (ptr)
        current.free_fn(ptr, current.ctx);
}

void spw_free(void *ptr)
{
    spw__free(ptr);
}

char *spw__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = spw__malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* Over-allocate and keep the raw pointer just below the aligned block, so
 * aligned memory also goes through the replaceable allocator. */
void *spw__aligned_alloc(size_t align, size_t size)
{
    size_t total;
    if (align < sizeof(void *) || (align & (align - 1)) ||
        !spw__add_ok(size, align + sizeof(void *), &total))
        return NULL;
    void *raw = spw__malloc(total);
    if (!raw)
        return NULL;
    uintptr_t p = ((uintptr_t)raw + sizeof(void *) + align - 1) & ~(uintptr_t)(align - 1);
    ((void **)p)[-1] = raw;
    return (void *)p;
}

void spw__aligned_free(void *ptr)
{
    if (ptr)
        spw__free(((void **)ptr)[-1]);
}

void spw__prefault(void *ptr, size_t size)
{
    static size_t page;
    if (!page) {
        long ps = sysconf(_SC_PAGESIZE);
        page = ps > 0 ? (size_t)ps : 4096;
    }
    volatile unsigned char *p = ptr;
    for (size_t off = 0; off < size; off += page)
        p[off] = 0;
    if (size)
        p[size - 1] = 0;
}

int spw__grow(void **arr, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return 0;
    if (need < 0 || need > (1 << 28))
        return spw__error(SPW_ENOMEM, "array of %d elements is too large", need);
    int ncap = *cap ? *cap : 8;
    while (ncap < need)
        ncap *= 2;
    void *p = spw__realloc(*arr, (size_t)ncap * elem);
    if (!p)
        return spw__error(SPW_ENOMEM, "out of memory growing an array to %d elements", ncap);
    *arr = p;
    *cap = ncap;
    return 0;
}

int spw__read_file(const char *path, void **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return spw__error(errno == ENOENT ? SPW_ENOENT : SPW_EIO, "%s: %s", path,
                          strerror(errno));
    int rc = 0;
    unsigned char *buf = NULL;
    if (fseek(f, 0, SEEK_END) != 0) {
        rc = spw__error(SPW_EIO, "%s: cannot seek: %s", path, strerror(errno));
        goto fail_file;
    }
    long len = ftell(f);
    if (len < 0) {
        rc = spw__error(SPW_EIO, "%s: cannot size: %s", path, strerror(errno));
        goto fail_file;
    }
    rewind(f);
    buf = spw__malloc((size_t)len + 1);
    if (!buf) {
        rc = spw__error(SPW_ENOMEM, "%s: no memory for %ld bytes", path, len);
        goto fail_file;
    }
    if (len && fread(buf, 1, (size_t)len, f) != (size_t)len) {
        rc = spw__error(SPW_EIO, "%s: short read", path);
        goto fail_buf;
    }
    buf[len] = 0;
    fclose(f);
    *data = buf;
    *size = (size_t)len;
    return 0;

fail_buf:
    spw__free(buf);
fail_file:
    fclose(f);
    return rc;
}

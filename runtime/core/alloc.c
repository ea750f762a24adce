/* The replaceable allocator and the few memory helpers built on it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; anything but a
     * regular file (directory, FIFO, device) is refused before reading. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return spw__error(errno == ENOENT ? SPW_ENOENT : SPW_EIO, "%s: %s", path, strerror(errno));
    int rc = 0;
    unsigned char *buf = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = spw__error(SPW_EIO, "%s: cannot stat: %s", path, strerror(errno));
        goto fail_fd;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = spw__error(SPW_EINVAL, "%s: not a regular file (%s)", path,
                        S_ISDIR(st.st_mode) ? "a directory" : "a FIFO, socket or device");
        goto fail_fd;
    }
    size_t len = (size_t)st.st_size;
    buf = spw__malloc(len + 1);
    if (!buf) {
        rc = spw__error(SPW_ENOMEM, "%s: no memory for %zu bytes", path, len);
        goto fail_fd;
    }
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = spw__error(SPW_EIO, "%s: short read (%zu of %zu bytes)%s%s", path, got, len,
                            n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
            goto fail_buf;
        }
        got += (size_t)n;
    }
    buf[len] = 0;
    close(fd);
    *data = buf;
    *size = len;
    return 0;

fail_buf:
    spw__free(buf);
fail_fd:
    close(fd);
    return rc;
}

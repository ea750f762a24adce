/* NumPy .npy reader and writer (little-endian, C order). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/core/internal.h"

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

static const struct {
    const char *descr;
    spw_dtype dtype;
} npy_types[] = {
    {"<f4", SPW_F32}, {"<f2", SPW_F16}, {"|i1", SPW_I8},  {"<i1", SPW_I8},
    {"|u1", SPW_U8},  {"<u1", SPW_U8},  {"<i4", SPW_I32}, {"<i8", SPW_I64},
};

/* Finds 'key' in the header dict and returns a pointer past "'key':" and spaces. */
static const char *dict_value(const char *hdr, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof(pat), "'%s'", key);
    const char *p = strstr(hdr, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    if (*p != ':')
        return NULL;
    p++;
    while (*p == ' ')
        p++;
    return p;
}

static int parse_header(const char *hdr, spw_tensor *t)
{
    const char *d = dict_value(hdr, "descr");
    if (!d || *d != '\'')
        return spw__error(SPW_EFORMAT, "npy: header has no 'descr'");
    d++;
    t->dtype = SPW_DTYPE_INVALID;
    for (size_t i = 0; i < SPW_ARRAY_SIZE(npy_types); i++) {
        size_t n = strlen(npy_types[i].descr);
        if (!strncmp(d, npy_types[i].descr, n) && d[n] == '\'')
            t->dtype = npy_types[i].dtype;
    }
    if (t->dtype == SPW_DTYPE_INVALID) {
        const char *e = strchr(d, '\'');
        return spw__error(SPW_EUNSUPPORTED, "npy: element type '%.*s' is not supported",
                          e ? (int)(e - d) : 8, d);
    }
    const char *f = dict_value(hdr, "fortran_order");
    if (!f || strncmp(f, "False", 5))
        return spw__error(SPW_EUNSUPPORTED, "npy: only C-order arrays are supported");
    const char *s = dict_value(hdr, "shape");
    if (!s || *s != '(')
        return spw__error(SPW_EFORMAT, "npy: header has no 'shape'");
    s++;
    t->ndim = 0;
    for (;;) {
        while (*s == ' ' || *s == ',')
            s++;
        if (*s == ')')
            break;
        if (*s < '0' || *s > '9')
            return spw__error(SPW_EFORMAT, "npy: malformed shape");
        if (t->ndim == SPW_MAX_DIMS)
            return spw__error(SPW_EUNSUPPORTED, "npy: more than %d dims", SPW_MAX_DIMS);
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || v < 0 || v > (1ll << 40))
            return spw__error(SPW_EFORMAT, "npy: dimension out of range");
        t->dims[t->ndim++] = v;
        s = end;
        if (*s == 'L')
            s++;
    }
    t->layout = SPW_LAYOUT_NCHW;
    return 0;
}

int spw_npy_read_buffer(const void *buf, size_t size, spw_tensor *t)
{
    const unsigned char *p = buf;
    if (!buf || !t)
        return spw__error(SPW_EINVAL, "npy: NULL argument");
    memset(t, 0, sizeof(*t));
    if (size < 10 || memcmp(p, npy_magic, 6))
        return spw__error(SPW_EFORMAT, "npy: not a .npy file (bad magic)");
    unsigned major = p[6];
    size_t hlen, hoff;
    if (major == 1) {
        hlen = (size_t)p[8] | (size_t)p[9] << 8;
        hoff = 10;
    } else if (major == 2 || major == 3) {
        if (size < 12)
            return spw__error(SPW_ETRUNC, "npy: truncated header");
        hlen = (size_t)p[8] | (size_t)p[9] << 8 | (size_t)p[10] << 16 | (size_t)p[11] << 24;
        hoff = 12;
    } else {
        return spw__error(SPW_EUNSUPPORTED, "npy: format version %u", major);
    }
    if (hlen > 1 << 20 || hoff + hlen > size)
        return spw__error(SPW_ETRUNC, "npy: truncated header");
    char hdr[4096];
    if (hlen >= sizeof(hdr))
        return spw__error(SPW_EFORMAT, "npy: header too long");
    memcpy(hdr, p + hoff, hlen);
    hdr[hlen] = '\0';
    int rc = parse_header(hdr, t);
    if (rc)
        return rc;
    size_t nbytes;
    if (!spw__mul_ok((size_t)spw_tensor_numel(t), spw_dtype_size(t->dtype), &nbytes))
        return spw__error(SPW_EFORMAT, "npy: array too large");
    if (size - hoff - hlen < nbytes)
        return spw__error(SPW_ETRUNC, "npy: data is %zu bytes, shape needs %zu", size - hoff - hlen,
                          nbytes);
    t->data = spw__malloc(nbytes);
    if (!t->data)
        return spw__error(SPW_ENOMEM, "npy: no memory for %zu bytes", nbytes);
    memcpy(t->data, p + hoff + hlen, nbytes);
    return 0;
}

int spw_npy_read(const char *path, spw_tensor *t)
{
    void *buf;
    size_t size;
    if (!path || !t)
        return spw__error(SPW_EINVAL, "npy: NULL argument");
    int rc = spw__read_file(path, &buf, &size);
    if (rc)
        return rc;
    rc = spw_npy_read_buffer(buf, size, t);
    spw__free(buf);
    if (rc)
        return spw__error_context(rc, "%s", path);
    return 0;
}

int spw_npy_write(const char *path, const spw_tensor *t)
{
    if (!path || !t || (!t->data && spw_tensor_numel(t) > 0))
        return spw__error(SPW_EINVAL, "npy: NULL argument");
    const char *descr = NULL;
    for (size_t i = 0; i < SPW_ARRAY_SIZE(npy_types); i++)
        if (npy_types[i].dtype == t->dtype && !descr)
            descr = npy_types[i].descr;
    if (!descr)
        return spw__error(SPW_EINVAL, "npy: cannot write dtype %d", t->dtype);
    char shape[256];
    size_t used = 0;
    for (int i = 0; i < t->ndim; i++)
        used += (size_t)snprintf(shape + used, sizeof(shape) - used, "%lld,%s",
                                 (long long)t->dims[i], i + 1 < t->ndim ? " " : "");
    if (t->ndim > 1 && used) /* numpy writes (2, 3), but (5,) for one dim */
        shape[--used] = '\0';
    char hdr[512];
    int n = snprintf(hdr, sizeof(hdr), "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                     descr, shape);
    /* Pad with spaces so the data starts 64-byte aligned, then a newline. */
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    memset(hdr + n, ' ', pad);
    hdr[n + pad] = '\n';
    size_t hlen = (size_t)n + pad + 1;
    unsigned char pre[10];
    memcpy(pre, npy_magic, 6);
    pre[6] = 1;
    pre[7] = 0;
    pre[8] = (unsigned char)(hlen & 0xff);
    pre[9] = (unsigned char)(hlen >> 8);
    FILE *f = fopen(path, "wb");
    if (!f)
        return spw__error(SPW_EIO, "%s: %s", path, strerror(errno));
    size_t nbytes = spw_tensor_nbytes(t);
    bool ok = fwrite(pre, 1, 10, f) == 10 && fwrite(hdr, 1, hlen, f) == hlen &&
              (nbytes == 0 || fwrite(t->data, 1, nbytes, f) == nbytes);
    if (fclose(f) != 0)
        ok = false;
    if (!ok)
        return spw__error(SPW_EIO, "%s: write failed", path);
    return 0;
}

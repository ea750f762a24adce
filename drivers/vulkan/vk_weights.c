/* Vulkan: one device buffer per distinct set of constants of a model.
 *
 * Every plan packs the constants its dispatches read into one array
 * (vk_backend.c). Plans of the same model at other batch sizes, or in other
 * workers, pack the same bytes: the model's cache (its weights state on this
 * backend) hands them the buffer already uploaded, counted, instead of a new
 * one. Matching is by content, so a plan whose packing differs (another
 * tuning, fp16) simply gets its own entry. An entry lives while a plan uses
 * it; plans are closed before the device goes (the exit hook), so the cache
 * itself holds host memory only. */
#include <string.h>

#include "drivers/vulkan/vk_internal.h"

typedef struct vk_wentry {
    uint64_t hash;
    size_t bytes; /* of data; the buffer is at least 16 bytes */
    spw_vk_buffer buf;
    void *host; /* a copy to compare against when buf is not mapped */
    int refs;
} vk_wentry;

struct spw_vk_weights {
    pthread_mutex_t lock;
    vk_wentry **e;
    int n, cap;
};

int spw__vk_weights_create(spw_vk_weights **out)
{
    spw_vk_weights *w = spw__calloc(1, sizeof(*w));
    if (!w)
        return spw__error(SPW_ENOMEM, "vulkan: out of memory");
    pthread_mutex_init(&w->lock, NULL);
    *out = w;
    return 0;
}

void spw__vk_weights_free(spw_vk_weights *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->n; i++) { /* none left once every plan is gone */
        spw__free(w->e[i]->host);
        spw__free(w->e[i]);
    }
    spw__free(w->e);
    pthread_mutex_destroy(&w->lock);
    spw__free(w);
}

static uint64_t fingerprint(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ull ^ n;
    size_t words = n / 8, step = words > 512 ? words / 512 : 1;
    for (size_t i = 0; i < words; i += step) {
        uint64_t v;
        memcpy(&v, b + i * 8, 8);
        h = (h ^ v) * 1099511628211ull;
    }
    return h;
}

static const void *contents(const vk_wentry *e)
{
    return e->host ? e->host : e->buf.mem.map;
}

int spw__vk_weights_get(spw_vk_weights *w, spw_vk_ctx *ctx, const void *data, size_t bytes,
                        spw_vk_buffer *out, void **entry)
{
    uint64_t h = fingerprint(data, bytes);
    int rc = 0;
    pthread_mutex_lock(&w->lock);
    for (int i = 0; i < w->n; i++) {
        vk_wentry *e = w->e[i];
        if (e->hash == h && e->bytes == bytes && (!bytes || !memcmp(contents(e), data, bytes))) {
            e->refs++;
            *out = e->buf;
            *entry = e;
            goto out;
        }
    }
    vk_wentry *e = spw__calloc(1, sizeof(*e));
    if (!e || spw__grow((void **)&w->e, &w->cap, w->n + 1, sizeof(*w->e))) {
        spw__free(e);
        rc = spw__error(SPW_ENOMEM, "vulkan: out of memory");
        goto out;
    }
    bool mapped = ctx->map_arena;
    if ((rc = spw__vk_buffer_create(ctx, bytes > 16 ? bytes : 16, mapped, &e->buf))) {
        spw__free(e);
        goto out;
    }
    if (bytes && mapped) {
        memcpy(e->buf.mem.map, data, bytes);
    } else if (bytes) {
        if (!(e->host = spw__malloc(bytes))) {
            rc = spw__error(SPW_ENOMEM, "vulkan: out of memory");
        } else {
            memcpy(e->host, data, bytes);
            rc = spw__vk_staged_copy(ctx, &e->buf, 0, data, NULL, bytes, true);
        }
        if (rc) {
            spw__vk_buffer_destroy(ctx, &e->buf);
            spw__free(e->host);
            spw__free(e);
            goto out;
        }
    }
    e->hash = h;
    e->bytes = bytes;
    e->refs = 1;
    w->e[w->n++] = e;
    *out = e->buf;
    *entry = e;
out:
    pthread_mutex_unlock(&w->lock);
    return rc;
}

void spw__vk_weights_put(spw_vk_weights *w, spw_vk_ctx *ctx, void *entry)
{
    vk_wentry *e = entry;
    pthread_mutex_lock(&w->lock);
    if (--e->refs == 0) {
        for (int i = 0; i < w->n; i++)
            if (w->e[i] == e) {
                w->e[i] = w->e[--w->n];
                break;
            }
        spw__vk_buffer_destroy(ctx, &e->buf);
        spw__free(e->host);
        spw__free(e);
    }
    pthread_mutex_unlock(&w->lock);
}

int spw__vk_weights_count(spw_vk_weights *w)
{
    pthread_mutex_lock(&w->lock);
    int n = w->n;
    pthread_mutex_unlock(&w->lock);
    return n;
}

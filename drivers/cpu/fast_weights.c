/* cpu-fast: XNNPACK's memory, and packed weights shared between plans.
 *
 * This XNNPACK has no weights cache: each operator packs its own copy of its
 * filter when created, so every plan (each batch size, each server worker,
 * each Winograd thread slot) would hold one more copy of the model. The
 * allocator we give XNNPACK puts a small header before each aligned block,
 * which lets a block be shared and counted. While an operator that packs
 * weights is created, the blocks it allocates are noted (per thread: plans
 * are built concurrently); afterwards each large block referred to by exactly
 * one word of the operator, and by no other pointer at or into it (from the
 * operator or the plain blocks it allocated meanwhile), is looked up
 * by content in the model's cache (fast_weights): on a hit the operator is
 * pointed at the cached block and its own copy freed, on a miss the block
 * becomes the cached one. Identical bytes give identical results, so the
 * sharing is invisible; a block that fails any check simply stays private.
 * Only create-time blocks are candidates: what setup allocates (indirection
 * buffers, scratch written while running) never is. */
#include <pthread.h>
#include <string.h>

#include "drivers/cpu/fast_internal.h"

#define HDR 64u /* header bytes before every aligned block */
#define HDR_MAGIC 0x5357464bu
#define SHARE_MIN 1024 /* smaller blocks are not worth a lookup */

typedef struct block_hdr {
    uint32_t magic;
    uint32_t lead; /* bytes from the allocation's start to the block */
    int shared;    /* set once, before the block is handed to a second owner */
    int refs;      /* atomic, when shared */
} block_hdr;

static block_hdr *hdr_of(void *p)
{
    return (block_hdr *)((char *)p - HDR);
}

/* ---- what XNNPACK is given ------------------------------------------------ */

#define CAP_MAX 16

/* Blocks allocated by the create call in progress on this thread: aligned
 * ones (candidates) and plain ones (checked for pointers into candidates). */
static _Thread_local struct {
    bool on, overflow;
    int n;
    void *p[CAP_MAX];
    size_t size[CAP_MAX];
    bool plain[CAP_MAX];
} cap;

static void cap_add(void *p, size_t size, bool plain)
{
    if (cap.n == CAP_MAX) {
        cap.overflow = true;
        return;
    }
    cap.p[cap.n] = p;
    cap.size[cap.n] = size;
    cap.plain[cap.n++] = plain;
}

static void cap_drop(void *p)
{
    for (int i = 0; i < cap.n; i++)
        if (cap.p[i] == p) {
            cap.n--;
            cap.p[i] = cap.p[cap.n];
            cap.size[i] = cap.size[cap.n];
            cap.plain[i] = cap.plain[cap.n];
            return;
        }
}

static void *xa_allocate(void *ctx, size_t size)
{
    (void)ctx;
    void *p = spw__malloc(size);
    if (p && cap.on)
        cap_add(p, size, true);
    return p;
}

static void *xa_reallocate(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    void *p = spw__realloc(ptr, size);
    if (p && cap.on) {
        if (ptr)
            cap_drop(ptr);
        cap_add(p, size, true);
    }
    return p;
}

static void xa_deallocate(void *ctx, void *ptr)
{
    (void)ctx;
    if (ptr && cap.on)
        cap_drop(ptr);
    spw__free(ptr);
}

static void *xa_aligned_allocate(void *ctx, size_t alignment, size_t size)
{
    (void)ctx;
    size_t lead = alignment > HDR ? alignment : HDR, total;
    if (!spw__add_ok(size, lead, &total))
        return NULL;
    char *base = spw__aligned_alloc(lead, total);
    if (!base)
        return NULL;
    char *p = base + lead;
    block_hdr *h = hdr_of(p);
    memset(h, 0, sizeof(*h));
    h->magic = HDR_MAGIC;
    h->lead = (uint32_t)lead;
    if (cap.on) {
        /* Zeroed, so padding XNNPACK leaves unwritten compares equal. */
        memset(p, 0, size);
        cap_add(p, size, false);
    }
    return p;
}

static void xa_aligned_deallocate(void *ctx, void *ptr)
{
    (void)ctx;
    if (!ptr)
        return;
    block_hdr *h = hdr_of(ptr);
    if (h->shared && __atomic_sub_fetch(&h->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    if (cap.on)
        cap_drop(ptr);
    spw__aligned_free((char *)ptr - h->lead);
}

const struct xnn_allocator spw__fast_xnn_allocator = {
    .allocate = xa_allocate,
    .reallocate = xa_reallocate,
    .deallocate = xa_deallocate,
    .aligned_allocate = xa_aligned_allocate,
    .aligned_deallocate = xa_aligned_deallocate,
};

/* ---- the per-model cache ---------------------------------------------------- */

typedef struct shared_block {
    uint64_t hash;
    size_t size;
    void *p; /* an XNNPACK block with shared set; one reference is ours */
} shared_block;

/* An operator as created, before any setup: later plans asking for the same
 * operator (same key) get a copy of these bytes instead of a new create,
 * which would pack the weights again. Every block the image points at is
 * shared (counted) and holds one reference for the template. */
typedef struct op_template {
    void *key;
    size_t key_size;
    void *image;
    size_t size;
    void **refs; /* the blocks the image points at */
    int n_refs;
} op_template;

struct fast_weights {
    pthread_mutex_t lock;
    shared_block *blocks;
    int n_blocks, cap_blocks;
    op_template *tmpl;
    int n_tmpl, cap_tmpl;
    size_t bytes_shared; /* packed bytes that plans did not copy (debug log) */
    int clones;          /* operators copied from a template (debug log) */
};

int spw__fast_weights_create(fast_weights **out)
{
    fast_weights *w = spw__calloc(1, sizeof(*w));
    if (!w)
        return spw__error(SPW_ENOMEM, "cpu-fast: out of memory");
    pthread_mutex_init(&w->lock, NULL);
    *out = w;
    return 0;
}

void spw__fast_weights_release(fast_weights *w)
{
    if (!w)
        return;
    SPW_LOGD("cpu-fast: %d packed weight blocks shared, %zu bytes not copied, %d operators "
             "copied from %d templates",
             w->n_blocks, w->bytes_shared, w->clones, w->n_tmpl);
    for (int i = 0; i < w->n_tmpl; i++) {
        for (int k = 0; k < w->tmpl[i].n_refs; k++)
            xa_aligned_deallocate(NULL, w->tmpl[i].refs[k]);
        spw__free(w->tmpl[i].refs);
        spw__free(w->tmpl[i].image);
        spw__free(w->tmpl[i].key);
    }
    spw__free(w->tmpl);
    for (int i = 0; i < w->n_blocks; i++)
        xa_aligned_deallocate(NULL, w->blocks[i].p);
    spw__free(w->blocks);
    pthread_mutex_destroy(&w->lock);
    spw__free(w);
}

void spw__fast_capture_begin(void)
{
    cap.on = true;
    cap.overflow = false;
    cap.n = 0;
}

/* A quick fingerprint (the size and 512 words spread over the block) to find
 * candidates; equality is always checked on every byte. */
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

/* The word of block `in` (in_size bytes) that holds p, when it is the only
 * word there pointing at or into p's size bytes; else NULL. */
static uintptr_t *sole_reference(void *in, size_t in_size, const void *p, size_t size)
{
    uintptr_t *words = in, lo = (uintptr_t)p, *found = NULL;
    for (size_t i = 0; i < in_size / sizeof(uintptr_t); i++) {
        uintptr_t v = words[i];
        if (v == lo) {
            if (found)
                return NULL;
            found = &words[i];
        } else if (v > lo && v < lo + size) {
            return NULL;
        }
    }
    return found;
}

/* Whether a block other than the operator and p itself points into p. */
static bool referenced_elsewhere(const void *op, const void *p, size_t size)
{
    uintptr_t lo = (uintptr_t)p;
    for (int i = 0; i < cap.n; i++) {
        if (cap.p[i] == op || cap.p[i] == p || !cap.plain[i])
            continue;
        const uintptr_t *words = cap.p[i];
        for (size_t k = 0; k < cap.size[i] / sizeof(uintptr_t); k++)
            if (words[k] >= lo && words[k] < lo + size)
                return true;
    }
    return false;
}

static op_template *find_template(fast_weights *w, const void *key, size_t key_size)
{
    for (int i = 0; i < w->n_tmpl; i++)
        if (w->tmpl[i].key_size == key_size && !memcmp(w->tmpl[i].key, key, key_size))
            return &w->tmpl[i];
    return NULL;
}

xnn_operator_t spw__fast_clone(fast_weights *w, const void *key, size_t key_size)
{
    if (!w)
        return NULL;
    xnn_operator_t op = NULL;
    pthread_mutex_lock(&w->lock);
    op_template *t = find_template(w, key, key_size);
    if (t && (op = xa_aligned_allocate(NULL, HDR, t->size))) {
        memcpy(op, t->image, t->size);
        for (int k = 0; k < t->n_refs; k++)
            __atomic_add_fetch(&hdr_of(t->refs[k])->refs, 1, __ATOMIC_RELAXED);
        w->clones++;
    }
    pthread_mutex_unlock(&w->lock);
    return op;
}

/* Records op (just created, not set up) as the template for key, when every
 * pointer it holds into a block it allocated is to the start of an aligned
 * block (which then becomes shared) and none points into op itself; the
 * caller holds w->lock. A failure leaves no template: later plans create. */
static void make_template(fast_weights *w, void *op, size_t op_size, const void *key,
                          size_t key_size)
{
    if (find_template(w, key, key_size))
        return;
    const uintptr_t *words = op, lo = (uintptr_t)op;
    void *refs[CAP_MAX];
    int n_refs = 0;
    for (size_t i = 0; i < op_size / sizeof(uintptr_t); i++) {
        uintptr_t v = words[i];
        if (v >= lo && v < lo + op_size)
            return;
        for (int j = 0; j < cap.n; j++) {
            uintptr_t b = (uintptr_t)cap.p[j];
            if (cap.p[j] == op || v < b || v >= b + cap.size[j])
                continue;
            if (cap.plain[j] || v != b)
                return;
            bool seen = false;
            for (int k = 0; k < n_refs; k++)
                seen = seen || refs[k] == cap.p[j];
            if (!seen)
                refs[n_refs++] = cap.p[j];
        }
    }
    op_template t = {.key_size = key_size, .size = op_size, .n_refs = n_refs};
    t.key = spw__malloc(key_size);
    t.image = spw__malloc(op_size);
    t.refs = spw__malloc(sizeof(void *) * (size_t)(n_refs ? n_refs : 1));
    if (!t.key || !t.image || !t.refs ||
        spw__grow((void **)&w->tmpl, &w->cap_tmpl, w->n_tmpl + 1, sizeof(op_template))) {
        spw__free(t.key);
        spw__free(t.image);
        spw__free(t.refs);
        spw_error_clear(); /* a template is an optimisation: no error */
        return;
    }
    memcpy(t.key, key, key_size);
    memcpy(t.image, op, op_size);
    for (int k = 0; k < n_refs; k++) {
        block_hdr *h = hdr_of(refs[k]);
        if (!h->shared) {
            h->refs = 1; /* the operator's */
            h->shared = 1;
        }
        __atomic_add_fetch(&h->refs, 1, __ATOMIC_RELAXED); /* the template's */
        t.refs[k] = refs[k];
    }
    w->tmpl[w->n_tmpl++] = t;
}

void spw__fast_capture_end(fast_weights *w, xnn_operator_t op, const void *key, size_t key_size)
{
    cap.on = false;
    if (!w || !op || cap.overflow)
        return;
    size_t op_size = 0;
    for (int i = 0; i < cap.n; i++)
        if (cap.p[i] == (void *)op && !cap.plain[i])
            op_size = cap.size[i];
    if (!op_size)
        return;
    for (int i = 0; i < cap.n; i++) {
        void *p = cap.p[i];
        size_t size = cap.size[i];
        if (cap.plain[i] || p == (void *)op || size < SHARE_MIN || hdr_of(p)->shared)
            continue;
        uintptr_t *ref = sole_reference(op, op_size, p, size);
        if (!ref || referenced_elsewhere(op, p, size))
            continue;
        uint64_t h = fingerprint(p, size);
        pthread_mutex_lock(&w->lock);
        int k;
        for (k = 0; k < w->n_blocks; k++)
            if (w->blocks[k].hash == h && w->blocks[k].size == size &&
                !memcmp(w->blocks[k].p, p, size))
                break;
        if (k < w->n_blocks) {
            void *q = w->blocks[k].p;
            __atomic_add_fetch(&hdr_of(q)->refs, 1, __ATOMIC_RELAXED);
            *ref = (uintptr_t)q;
            w->bytes_shared += size;
            pthread_mutex_unlock(&w->lock);
            xa_aligned_deallocate(NULL, p);
            cap.p[i] = q; /* what the operator now holds */
            continue;
        }
        if (!spw__grow((void **)&w->blocks, &w->cap_blocks, w->n_blocks + 1,
                       sizeof(shared_block))) {
            block_hdr *bh = hdr_of(p);
            bh->refs = 2; /* the operator's and the cache's */
            bh->shared = 1;
            w->blocks[w->n_blocks++] = (shared_block){h, size, p};
        }
        pthread_mutex_unlock(&w->lock);
    }
    if (key) {
        pthread_mutex_lock(&w->lock);
        make_template(w, op, op_size, key, key_size);
        pthread_mutex_unlock(&w->lock);
    }
    cap.n = 0;
}

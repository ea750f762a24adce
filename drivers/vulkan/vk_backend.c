/* The Vulkan backend: registration, buffers, and plans turned into one
 * recorded command buffer (pipelines built once at prepare, replayed per run).
 *
 * Every dispatch binds the same descriptor set (arena, constants); operand
 * offsets travel in push constants and shapes in specialisation constants,
 * so layers of the same shape share one pipeline. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/vulkan/vk_internal.h"
#include "shaders/spw_vk_shaders.h"

#define MAX_SPEC 40
/* Distance from a shader's fp32 build to its fp16-storage build. */
#define SH_F16 (SPW_VK_SH_CONV_F16 - SPW_VK_SH_CONV)
#define MAX_READS 8
#define NO_WOFF UINT32_MAX
#define FROM_CONSTS 0x80000000u
/* Spec ids shared by every shader (common.glsl): 0-2 workgroup size, 3-15 post ops. */
#define SPEC_SHAPE 16
/* A grid dimension is only guaranteed up to 65535 workgroups. */
#define MAX_GROUPS 65535u

typedef struct range {
    size_t lo, hi; /* bytes of the arena, [lo, hi) */
} range;

typedef struct vk_disp {
    int shader;
    uint32_t spec[MAX_SPEC];
    uint32_t n_spec;
    uint32_t push[SPW_VK_PUSH_WORDS];
    uint32_t groups[3];
    int pipe;
    int step;
    range rd[MAX_READS];
    int n_rd;
    range wr;
} vk_disp;

typedef struct vk_pipe {
    int shader;
    uint32_t n_spec;
    uint32_t spec[MAX_SPEC];
    VkPipeline pipe;
} vk_pipe;

typedef struct vk_plan {
    spw_vk_live live; /* linked while prepared; dead once the exit hook closed it */
    spw_vk_ctx *ctx;
    uint32_t *woff; /* per value: element offset in the constants, or NO_WOFF */
    float *wdata;   /* constants on the host while building */
    int n_wdata, cap_wdata;
    spw_vk_buffer weights;
    bool has_weights;
    spw_vk_weights *wshared; /* the model's (plan->weights_state) */
    void *wentry;            /* weights is wshared's entry: put back, not destroyed */
    vk_disp *disp;
    int n_disp, cap_disp;
    vk_pipe *pipes;
    int n_pipes, cap_pipes;
    VkDescriptorPool dpool;
    VkDescriptorSet set;
    VkCommandBuffer cmd;
    VkQueryPool qpool;
    uint64_t *ts;
    VkFence fence;    /* its own: plans of other workers stay in flight */
    VkQueryPool span; /* two timestamps around the whole run, or null */
    /* fp16 storage: f32 activations live in shadow, one half per 4-byte
     * arena slot at the same element index (common.glsl). */
    bool fp16;
    spw_vk_buffer shadow;
    bool has_shadow;
    bool held; /* in ctx->live (prepared successfully) */
} vk_plan;

/* An arena: buffer->impl points at vb. */
typedef struct vk_buf {
    spw_vk_live live;
    spw_vk_buffer vb;
    spw_buffer *owner;
    spw_vk_xfer *xfer; /* staging of its own, made on the first copy */
} vk_buf;

#define VK_BUF_OF(vbp) ((vk_buf *)((char *)(vbp)-offsetof(vk_buf, vb)))

/* ---- registration and buffers ----------------------------------------- */

static int vk_init(spw_backend *be)
{
    spw_vk_device_info *devs;
    int n, rc = spw__vk_list_devices(&devs, &n);
    if (rc)
        return rc;
    const char *want = getenv("SPW_VULKAN_DEVICE");
    int idx = spw__vk_pick(devs, n, want);
    spw__free(devs);
    if (idx < 0) {
        if (want && *want)
            return spw__error(SPW_ENODEV, "no Vulkan device matches SPW_VULKAN_DEVICE='%s'", want);
        return spw__error(SPW_ENODEV, "no Vulkan device with a compute queue (%d found)", n);
    }
    spw_vk_ctx *ctx;
    if ((rc = spw__vk_ctx_create(idx, &ctx)))
        return rc;
    be->ctx = ctx;
    /* A Vulkan implementation on the CPU (lavapipe, SwiftShader) is slower
     * than the CPU backends: usable by name only. */
    be->manual_only = ctx->info.type == VK_PHYSICAL_DEVICE_TYPE_CPU;
    SPW_LOGI("vulkan: device %d '%s' (%s)%s", idx, ctx->info.name,
             spw__vk_type_name(ctx->info.type), be->manual_only ? ", chosen only by name" : "");
    return 0;
}

/* Every buffer and plan holds the device and is linked into ctx->live. The
 * registry calls fini from its exit hook, which runs before the drivers' own
 * exit handlers; whatever is still alive then is closed there (its Vulkan
 * objects destroyed, itself marked dead) and the device goes with it, so no
 * Vulkan call is left for a later exit handler to make. */
static void ctx_hold(spw_vk_ctx *ctx, spw_vk_live *node, void (*close)(spw_vk_live *, spw_vk_ctx *))
{
    node->close = close;
    node->dead = false;
    pthread_mutex_lock(&ctx->lock);
    node->prev = NULL;
    node->next = ctx->live;
    if (ctx->live)
        ctx->live->prev = node;
    ctx->live = node;
    pthread_mutex_unlock(&ctx->lock);
}

static void ctx_drop(spw_vk_ctx *ctx, spw_vk_live *node)
{
    pthread_mutex_lock(&ctx->lock);
    if (node->prev)
        node->prev->next = node->next;
    else
        ctx->live = node->next;
    if (node->next)
        node->next->prev = node->prev;
    pthread_mutex_unlock(&ctx->lock);
}

/* The instance stays: destroying it makes the loader unload the driver,
 * whose own exit handlers (and leak attribution) still expect it mapped. */
static void vk_fini(spw_backend *be)
{
    spw_vk_ctx *ctx = be->ctx;
    if (!ctx)
        return;
    /* Exit is single-threaded from here (running a plan in another thread
     * while the process exits is not supported), so no lock is held across
     * close(), which takes it itself. */
    spw_vk_live *n = ctx->live;
    ctx->live = NULL;
    int closed = 0;
    for (; n; closed++) {
        spw_vk_live *next = n->next;
        n->close(n, ctx);
        n->dead = true;
        n->prev = n->next = NULL;
        n = next;
    }
    if (closed)
        SPW_LOGD("vulkan: closed %d buffers and plans still alive at exit", closed);
    spw__vk_ctx_destroy(ctx);
    be->ctx = NULL;
}

static bool import_wanted(const spw_vk_ctx *ctx)
{
    const char *e = getenv("SPW_VULKAN_HOST_IMPORT");
    return ctx->import_align && e && !strcmp(e, "1");
}

static void buf_close(spw_vk_live *self, spw_vk_ctx *ctx)
{
    vk_buf *kb = (vk_buf *)self;
    kb->owner->host = NULL; /* mapped memory goes with the buffer */
    spw__vk_xfer_destroy(ctx, kb->xfer);
    kb->xfer = NULL;
    void *host = kb->vb.host_copy;
    spw__vk_buffer_destroy(ctx, &kb->vb);
    kb->vb.host_copy = host; /* host memory is freed with the buffer itself */
}

static int vk_buffer_alloc(spw_backend *be, size_t size, spw_buffer **out)
{
    spw_vk_ctx *ctx = be->ctx;
    spw_buffer *b = spw__calloc(1, sizeof(*b));
    vk_buf *kb = spw__calloc(1, sizeof(*kb));
    spw_vk_buffer *vb = kb ? &kb->vb : NULL;
    int rc;
    if (!b || !kb) {
        rc = spw__error(SPW_ENOMEM, "vulkan: out of memory");
        goto fail;
    }
    size_t bytes = size ? size : 4;
    if (import_wanted(ctx)) {
        /* The arena is ordinary host memory that the device reads in place. */
        size_t a = (size_t)ctx->import_align;
        size_t rounded = (bytes + a - 1) / a * a;
        void *host = spw__aligned_alloc(a, rounded);
        if (!host) {
            rc = spw__error(SPW_ENOMEM, "vulkan: no memory for a %zu-byte arena", rounded);
            goto fail;
        }
        if ((rc = spw__vk_buffer_import(ctx, host, rounded, vb))) {
            spw__aligned_free(host);
            goto fail;
        }
        vb->host_copy = host;
    } else if ((rc = spw__vk_buffer_create(ctx, bytes, ctx->map_arena, vb))) {
        goto fail;
    }
    b->backend = be;
    b->size = size;
    /* Off unified memory the arena goes through staging even when the
     * memory happens to be mappable (lavapipe taken for a discrete GPU), so
     * that path runs where the tests run. */
    b->host = ctx->map_arena || vb->imported ? vb->mem.map : NULL;
    b->impl = vb;
    kb->owner = b;
    ctx_hold(ctx, &kb->live, buf_close);
    *out = b;
    return 0;
fail:
    spw__free(kb);
    spw__free(b);
    return rc;
}

static void vk_buffer_free(spw_backend *be, spw_buffer *buf)
{
    if (!buf)
        return;
    vk_buf *kb = VK_BUF_OF(buf->impl);
    void *host = kb->vb.host_copy;
    if (!kb->live.dead) {
        spw__vk_xfer_destroy(be->ctx, kb->xfer);
        spw__vk_buffer_destroy(be->ctx, &kb->vb);
        ctx_drop(be->ctx, &kb->live);
    }
    spw__aligned_free(host);
    spw__free(kb);
    spw__free(buf);
}

static int closed_error(void)
{
    return spw__error(SPW_ENODEV, "vulkan: the device was closed at process exit");
}

/* Through the arena's own staging: a copy of one worker never waits for
 * another's (vk_slots.c). */
static int arena_copy(spw_backend *be, spw_buffer *buf, size_t offset, const void *src, void *dst,
                      size_t size, bool upload)
{
    vk_buf *kb = VK_BUF_OF(buf->impl);
    if (kb->live.dead)
        return closed_error();
    int rc;
    if (!kb->xfer && (rc = spw__vk_xfer_create(be->ctx, &kb->xfer)))
        return rc;
    return spw__vk_xfer_copy(be->ctx, kb->xfer, &kb->vb, offset, src, dst, size, upload);
}

static int vk_buffer_upload(spw_backend *be, spw_buffer *buf, size_t offset, const void *src,
                            size_t size)
{
    if (buf->host) {
        memcpy((char *)buf->host + offset, src, size);
        return 0;
    }
    return arena_copy(be, buf, offset, src, NULL, size, true);
}

static int vk_buffer_download(spw_backend *be, spw_buffer *buf, size_t offset, void *dst,
                              size_t size)
{
    if (buf->host) {
        memcpy(dst, (char *)buf->host + offset, size);
        return 0;
    }
    return arena_copy(be, buf, offset, NULL, dst, size, false);
}

/* ---- what runs here ---------------------------------------------------- */

static bool is_const(const spw_graph *g, int v)
{
    return v >= 0 && (g->values[v].flags & SPW_VALUE_CONST);
}

static int64_t span(const spw_value *v, int from, int to)
{
    int64_t n = 1;
    for (int i = from; i < to && i < v->ndim; i++)
        n *= v->dims[i];
    return n;
}

static bool is_copy_op(spw_op op)
{
    return op == SPW_OP_RESHAPE || op == SPW_OP_FLATTEN || op == SPW_OP_IDENTITY ||
           op == SPW_OP_TRANSPOSE || op == SPW_OP_CONCAT;
}

static bool is_unary(spw_op op)
{
    return op == SPW_OP_RELU || op == SPW_OP_CLIP || op == SPW_OP_LEAKY_RELU ||
           op == SPW_OP_SIGMOID || op == SPW_OP_HARD_SWISH;
}

/* Pad as at most 6 axes: runs of axes that are not padded merge into one,
 * so higher ranks fit when few of their axes are padded. Fills the output
 * dims, input dims and begin pads (outermost first, leading axes 1 / 0) and
 * returns the axis count, or -1 when more than 6 remain. */
static int pad_axes(const spw_graph *g, const spw_node *n, uint32_t *od, uint32_t *xd, int32_t *pb)
{
    const spw_value *x = &g->values[n->inputs[0]], *y = &g->values[n->outputs[0]];
    const spw_pad_params *p = &n->p.pad;
    int64_t o[SPW_MAX_DIMS], xi[SPW_MAX_DIMS], b[SPW_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < x->ndim; i++) {
        const int64_t begin = i < p->ndim ? p->pads[i] : 0;
        const int64_t end = i < p->ndim ? p->pads[p->ndim + i] : 0;
        /* Two neighbouring axes without pads read as one. */
        const bool plain = !begin && !end;
        if (plain && k > 0 && b[k - 1] == 0 && o[k - 1] == xi[k - 1]) {
            o[k - 1] *= y->dims[i];
            xi[k - 1] *= x->dims[i];
            continue;
        }
        o[k] = y->dims[i];
        xi[k] = x->dims[i];
        b[k] = begin;
        k++;
    }
    if (k > 6)
        return -1;
    for (int i = 0; i < 6; i++) {
        int src = i - (6 - k);
        if (od)
            od[i] = src >= 0 ? (uint32_t)o[src] : 1;
        if (xd)
            xd[i] = src >= 0 ? (uint32_t)xi[src] : 1;
        if (pb)
            pb[i] = src >= 0 ? (int32_t)b[src] : 0;
    }
    return k;
}

static bool vk_supports_op(const spw_backend *be, const spw_graph *g, const spw_node *n)
{
    (void)be;
    if (n->n_outputs != 1 || n->n_inputs < 1 || n->inputs[0] < 0)
        return false;
    const spw_value *y = &g->values[n->outputs[0]];
    const spw_value *x = &g->values[n->inputs[0]];
    int64_t numel = spw__value_numel(y);
    /* Pad merges axes itself (pad_axes). */
    if (numel < 0 || numel >= ((int64_t)1 << 31) || (y->ndim > 6 && n->op != SPW_OP_PAD))
        return false;
    /* Element types: f32 everywhere, except the symbol ops and 32-bit copies. */
    for (int k = 0; k < n->n_inputs; k++) {
        int v = n->inputs[k];
        /* Pad's pads, value and axes were decoded into n->p.pad at import. */
        if (v < 0 || (n->op == SPW_OP_PAD && k > 0))
            continue;
        spw_dtype t = g->values[v].dtype;
        bool ok = t == SPW_F32 ||
                  (t == SPW_I32 && ((n->op == SPW_OP_DEQUANTIZE && k == 0) ||
                                    (n->op == SPW_OP_QUANTIZE && k >= 2) || is_copy_op(n->op)));
        if (!ok)
            return false;
    }
    bool int_out = n->op == SPW_OP_QUANTIZE || (is_copy_op(n->op) && y->dtype == SPW_I32);
    if (y->dtype != (int_out ? SPW_I32 : SPW_F32))
        return false;
    if (n->n_post && (is_copy_op(n->op) || n->op == SPW_OP_QUANTIZE || n->op == SPW_OP_SOFTMAX))
        return false;

    switch (n->op) {
    case SPW_OP_CONV:
    case SPW_OP_CONV_TRANSPOSE:
        return x->ndim == 4 && !is_const(g, n->inputs[0]) && n->n_inputs >= 2 &&
               is_const(g, n->inputs[1]) && g->values[n->inputs[1]].ndim == 4 &&
               (n->n_inputs < 3 || n->inputs[2] < 0 || is_const(g, n->inputs[2])) &&
               y->dims[0] <= MAX_GROUPS && y->dims[1] <= MAX_GROUPS;
    case SPW_OP_AVG_POOL:
    case SPW_OP_MAX_POOL:
        return x->ndim == 4 && !is_const(g, n->inputs[0]) && x->dims[0] * x->dims[1] <= MAX_GROUPS;
    case SPW_OP_GLOBAL_AVG_POOL:
        return x->ndim >= 2 && !is_const(g, n->inputs[0]);
    case SPW_OP_GEMM:
        return n->n_inputs >= 2 && x->ndim == 2 && g->values[n->inputs[1]].ndim == 2 &&
               y->dims[0] <= MAX_GROUPS &&
               (n->n_inputs < 3 || n->inputs[2] < 0 || g->values[n->inputs[2]].ndim <= 2);
    case SPW_OP_MATMUL: {
        const spw_value *b = &g->values[n->inputs[1]];
        if (n->n_inputs != 2 || x->ndim < 1 || b->ndim < 1 || x->ndim > 5 || b->ndim > 5)
            return false;
        int64_t m = x->ndim >= 2 ? x->dims[x->ndim - 2] : 1;
        int64_t cols = b->ndim >= 2 ? b->dims[b->ndim - 1] : 1;
        int64_t batches = m * cols > 0 ? numel / (m * cols) : 0;
        return m <= MAX_GROUPS && batches <= MAX_GROUPS;
    }
    case SPW_OP_ADD:
    case SPW_OP_MUL:
        return n->n_inputs == 2 && n->inputs[1] >= 0 && g->values[n->inputs[1]].ndim <= 6;
    case SPW_OP_RELU:
    case SPW_OP_CLIP:
    case SPW_OP_LEAKY_RELU:
    case SPW_OP_SIGMOID:
    case SPW_OP_HARD_SWISH:
        return true;
    case SPW_OP_RESHAPE:
    case SPW_OP_FLATTEN:
    case SPW_OP_IDENTITY:
    case SPW_OP_TRANSPOSE:
        return spw_dtype_size(x->dtype) == 4 && x->ndim <= 6;
    case SPW_OP_CONCAT:
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] < 0 || spw_dtype_size(g->values[n->inputs[k]].dtype) != 4)
                return false;
        return true;
    case SPW_OP_SOFTMAX:
        return true;
    case SPW_OP_PAD:
        return spw__value_numel(x) < ((int64_t)1 << 31) && pad_axes(g, n, NULL, NULL, NULL) >= 0;
    case SPW_OP_GDN:
        return x->ndim >= 2 && !is_const(g, n->inputs[0]) && n->n_inputs == 3 &&
               is_const(g, n->inputs[1]) && is_const(g, n->inputs[2]) && x->dims[0] <= MAX_GROUPS &&
               x->dims[1] <= MAX_GROUPS;
    case SPW_OP_QUANTIZE:
    case SPW_OP_DEQUANTIZE:
        return n->n_inputs >= 2 && !is_const(g, n->inputs[0]) && is_const(g, n->inputs[1]);
    case SPW_OP_BATCH_NORM:
        if (n->n_inputs != 5 || is_const(g, n->inputs[0]) || x->ndim < 2)
            return false;
        for (int k = 1; k < 5; k++)
            if (!is_const(g, n->inputs[k]))
                return false;
        return true;
    default:
        return false;
    }
}

/* ---- building the dispatch list ---------------------------------------- */

typedef struct build {
    spw_plan *plan;
    const spw_graph *g;
    vk_plan *st;
    const spw_vk_tuning *tune;
    int step;
} build;

static uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static uint32_t ceil_div(uint64_t a, uint64_t b)
{
    return (uint32_t)((a + b - 1) / b);
}

/* Appends words to the constants, 16-byte aligned. */
static int wpush(build *b, const void *data, size_t words, uint32_t *off)
{
    vk_plan *st = b->st;
    size_t need = (size_t)st->n_wdata + words + 4;
    if (need > (size_t)INT32_MAX)
        return spw__error(SPW_EUNSUPPORTED, "vulkan: constants too large");
    if (spw__grow((void **)&st->wdata, &st->cap_wdata, (int)need, sizeof(float)))
        return spw__error(SPW_ENOMEM, "vulkan: out of memory packing constants");
    *off = (uint32_t)st->n_wdata;
    if (words)
        memcpy(st->wdata + st->n_wdata, data, words * 4);
    st->n_wdata += (int)words;
    while (st->n_wdata % 4)
        st->wdata[st->n_wdata++] = 0.0f;
    return 0;
}

/* Element offset of constant v in the constants buffer, packed on first use. */
static int wconst(build *b, int v, uint32_t *off)
{
    vk_plan *st = b->st;
    if (st->woff[v] == NO_WOFF) {
        const spw_value *val = &b->g->values[v];
        if (spw_dtype_size(val->dtype) != 4)
            return spw__error(SPW_EUNSUPPORTED, "vulkan: constant '%s' is not 32-bit", val->name);
        int rc = wpush(b, val->data, val->nbytes / 4, &st->woff[v]);
        if (rc)
            return rc;
    }
    *off = st->woff[v];
    return 0;
}

static size_t value_bytes(const spw_graph *g, int v)
{
    return (size_t)spw__value_numel(&g->values[v]) * spw_dtype_size(g->values[v].dtype);
}

/* Operand offset in 4-byte words: arena, or constants with bit 31 set. */
static int operand(build *b, vk_disp *d, int v, uint32_t *off)
{
    if (is_const(b->g, v)) {
        int rc = wconst(b, v, off);
        *off |= FROM_CONSTS;
        return rc;
    }
    size_t o = b->plan->offsets[v];
    *off = (uint32_t)(o / 4);
    if (d->n_rd < MAX_READS)
        d->rd[d->n_rd++] = (range){o, o + value_bytes(b->g, v)};
    return 0;
}

/* A dispatch of shader (its fp16 build in an fp16 plan) with no post ops. */
static vk_disp *add_disp(build *b, int shader, uint32_t wg_x)
{
    vk_plan *st = b->st;
    if (st->n_disp == st->cap_disp &&
        spw__grow((void **)&st->disp, &st->cap_disp, st->n_disp + 1, sizeof(vk_disp)))
        return NULL;
    vk_disp *d = &st->disp[st->n_disp++];
    memset(d, 0, sizeof(*d));
    d->shader = shader + (st->fp16 ? SH_F16 : 0);
    d->step = b->step;
    d->spec[0] = wg_x;
    d->spec[1] = 1;
    d->spec[2] = 1;
    d->n_spec = SPEC_SHAPE;
    return d;
}

static vk_disp *new_disp(build *b, int shader, const spw_node *n, uint32_t wg_x)
{
    vk_disp *d = add_disp(b, shader, wg_x);
    if (!d)
        return NULL;
    d->spec[3] = (uint32_t)n->n_post;
    for (int k = 0; k < n->n_post; k++) {
        const spw_post_op *p = &n->post[k];
        d->spec[4 + k] = (uint32_t)p->kind;
        d->spec[8 + k] = f2u(p->a);
        d->spec[12 + k] = f2u(p->b);
        if (p->kind == SPW_POST_ADD) {
            size_t o = b->plan->offsets[p->value];
            d->push[4 + k] = (uint32_t)(o / 4);
            d->rd[d->n_rd++] = (range){o, o + value_bytes(b->g, p->value)};
        }
    }
    int out = n->outputs[0];
    size_t o = b->plan->offsets[out];
    d->push[3] = (uint32_t)(o / 4);
    d->wr = (range){o, o + value_bytes(b->g, out)};
    return d;
}

static void spec(vk_disp *d, uint32_t v)
{
    if (d->n_spec < MAX_SPEC)
        d->spec[d->n_spec++] = v;
}

/* A 1-D grid over total invocations, folded into y past 65535 workgroups. */
static void grid_1d(vk_disp *d, uint64_t total)
{
    uint32_t groups = ceil_div(total ? total : 1, d->spec[0]);
    d->groups[0] = groups > MAX_GROUPS ? MAX_GROUPS : groups;
    d->groups[1] = ceil_div(groups, d->groups[0]);
    d->groups[2] = 1;
}

#define NEW(shader, wg)                          \
    vk_disp *d = new_disp(b, (shader), n, (wg)); \
    if (!d)                                      \
    return spw__error(SPW_ENOMEM, "vulkan: out of memory building a plan")

static int build_conv(build *b, const spw_node *n)
{
    const spw_graph *g = b->g;
    const spw_conv_params *p = &n->p.conv;
    const spw_value *x = &g->values[n->inputs[0]], *w = &g->values[n->inputs[1]];
    const spw_value *y = &g->values[n->outputs[0]];
    const bool tr = n->op == SPW_OP_CONV_TRANSPOSE;
    const uint32_t N = (uint32_t)x->dims[0], C = (uint32_t)x->dims[1];
    const uint32_t H = (uint32_t)x->dims[2], W = (uint32_t)x->dims[3];
    const uint32_t M = (uint32_t)y->dims[1], OH = (uint32_t)y->dims[2], OW = (uint32_t)y->dims[3];
    const uint32_t KH = (uint32_t)w->dims[2], KW = (uint32_t)w->dims[3];
    const uint32_t G = p->group > 0 ? (uint32_t)p->group : 1;
    const uint32_t cin_g = C / G, cout_g = M / G;
    const bool has_bias = n->n_inputs > 2 && n->inputs[2] >= 0;
#define ONE(v) ((v) > 0 ? (uint32_t)(v) : 1u)

    const spw_vk_conv_shape shape = {.n = N,
                                     .c = C,
                                     .h = H,
                                     .w = W,
                                     .m = M,
                                     .oh = OH,
                                     .ow = OW,
                                     .kh = KH,
                                     .kw = KW,
                                     .group = G,
                                     .sh = ONE(p->stride[0]),
                                     .sw = ONE(p->stride[1]),
                                     .dh = ONE(p->dilation[0]),
                                     .dw = ONE(p->dilation[1]),
                                     .pad_t = (uint32_t)p->pads[0],
                                     .pad_l = (uint32_t)p->pads[1],
                                     .pad_b = (uint32_t)p->pads[2],
                                     .pad_r = (uint32_t)p->pads[3],
                                     .transposed = tr};
    spw_vk_conv_choice ch;
    spw__vk_conv_choose(b->tune, &shape, &ch);
    spw__vk_tune_note(b->step, &shape);
    const bool row = ch.kernel == SPW_VK_CONV_ROW;
    const uint32_t tm = ch.tile_m, tp = ch.tile_p;
    NEW(row                                  ? (ch.wsub ? SPW_VK_SH_CONVROWS : SPW_VK_SH_CONVROW)
        : ch.kernel == SPW_VK_CONV_POINTWISE ? (ch.wsub ? SPW_VK_SH_CONV1X1S : SPW_VK_SH_CONV1X1)
                                             : SPW_VK_SH_CONV,
        ch.wg);
    /* Tiles of 4k channels read their weights as vec4s from a copy repacked
     * tile-major: [M/tm][cin_g][KH][KW][tm], the last tile padded with the
     * last channel. Pointwise convs too ([M/tm][C][tm]): 13-22% faster on the
     * encoder's 1x1 shortcuts on lavapipe. */
    const char *wp = getenv("SPW_VULKAN_WPACK");
    const bool wpack = row || ch.wsub || (!tr && tm % 4 == 0 && !(wp && !strcmp(wp, "0")));
    int rc;
    if ((rc = operand(b, d, n->inputs[0], &d->push[0])))
        return rc;
    if (wpack) {
        const float *wd = w->data;
        const size_t taps = (size_t)cin_g * KH * KW, tiles = ceil_div(M, tm);
        float *packed = spw__malloc(sizeof(float) * tiles * taps * tm);
        if (!packed)
            return spw__error(SPW_ENOMEM, "vulkan: out of memory packing weights");
        for (size_t mt = 0; mt < tiles; mt++)
            for (size_t k = 0; k < taps; k++)
                for (size_t t = 0; t < tm; t++) {
                    size_t m = SPW_MIN(mt * tm + t, (size_t)M - 1);
                    packed[(mt * taps + k) * tm + t] = wd[m * taps + k];
                }
        rc = wpush(b, packed, tiles * taps * tm, &d->push[1]);
        spw__free(packed);
    } else {
        rc = wconst(b, n->inputs[1], &d->push[1]);
    }
    if (rc)
        return rc;
    if (has_bias && (rc = wconst(b, n->inputs[2], &d->push[2])))
        return rc;
    if (row) {
        spec(d, cin_g), spec(d, H), spec(d, W), spec(d, M), spec(d, OH), spec(d, OW);
        spec(d, KH), spec(d, KW), spec(d, ONE(p->stride[0])), spec(d, ONE(p->stride[1]));
        spec(d, ONE(p->dilation[0])), spec(d, ONE(p->dilation[1]));
        spec(d, (uint32_t)p->pads[0]), spec(d, (uint32_t)p->pads[1]);
        spec(d, cout_g), spec(d, has_bias), spec(d, tm), spec(d, tp), spec(d, b->tune->subgroup);
    } else if (ch.kernel == SPW_VK_CONV_POINTWISE) {
        spec(d, C), spec(d, H), spec(d, W), spec(d, M), spec(d, OH), spec(d, OW);
        spec(d, ONE(p->stride[0])), spec(d, ONE(p->stride[1]));
        spec(d, has_bias), spec(d, tm), spec(d, tp), spec(d, wpack), spec(d, b->tune->subgroup);
    } else {
        spec(d, cin_g), spec(d, H), spec(d, W), spec(d, M), spec(d, OH), spec(d, OW);
        spec(d, KH), spec(d, KW), spec(d, ONE(p->stride[0])), spec(d, ONE(p->stride[1]));
        spec(d, ONE(p->dilation[0])), spec(d, ONE(p->dilation[1]));
        spec(d, (uint32_t)p->pads[0]), spec(d, (uint32_t)p->pads[1]);
        spec(d, cout_g), spec(d, has_bias), spec(d, tm), spec(d, tr), spec(d, tp), spec(d, wpack);
    }
    memcpy(d->groups, ch.groups, sizeof(d->groups));
    return d->groups[0] > MAX_GROUPS
               ? spw__error(SPW_EUNSUPPORTED, "vulkan: '%s' too large", n->name)
               : 0;
}

static int build_pool(build *b, const spw_node *n)
{
    const spw_pool_params *p = &n->p.pool;
    const spw_value *x = &b->g->values[n->inputs[0]], *y = &b->g->values[n->outputs[0]];
    NEW(SPW_VK_SH_POOL, b->tune->wg_1d);
    int rc = operand(b, d, n->inputs[0], &d->push[0]);
    if (rc)
        return rc;
    const uint32_t OH = (uint32_t)y->dims[2], OW = (uint32_t)y->dims[3];
    spec(d, (uint32_t)x->dims[2]), spec(d, (uint32_t)x->dims[3]), spec(d, OH), spec(d, OW);
    spec(d, (uint32_t)p->kernel[0]), spec(d, (uint32_t)p->kernel[1]);
    spec(d, ONE(p->stride[0])), spec(d, ONE(p->stride[1]));
    spec(d, ONE(p->dilation[0])), spec(d, ONE(p->dilation[1]));
    for (int i = 0; i < 4; i++)
        spec(d, (uint32_t)p->pads[i]);
    spec(d, n->op == SPW_OP_MAX_POOL), spec(d, (uint32_t)p->count_include_pad);
    d->groups[0] = ceil_div((uint64_t)OH * OW, d->spec[0]);
    d->groups[1] = (uint32_t)(x->dims[0] * x->dims[1]);
    d->groups[2] = 1;
    return d->groups[0] > MAX_GROUPS
               ? spw__error(SPW_EUNSUPPORTED, "vulkan: '%s' too large", n->name)
               : 0;
}

static int build_gpool(build *b, const spw_node *n)
{
    const spw_value *x = &b->g->values[n->inputs[0]];
    /* The shared-memory reduction halves the workgroup: keep it a power of two. */
    uint32_t wg = 1;
    while (wg * 2 <= b->tune->wg_1d)
        wg *= 2;
    NEW(SPW_VK_SH_GPOOL, wg);
    int rc = operand(b, d, n->inputs[0], &d->push[0]);
    if (rc)
        return rc;
    const uint64_t rows = (uint64_t)span(x, 0, 2);
    spec(d, (uint32_t)span(x, 2, x->ndim));
    d->push[8] = (uint32_t)rows;
    d->groups[0] = rows > MAX_GROUPS ? MAX_GROUPS : (uint32_t)(rows ? rows : 1);
    d->groups[1] = ceil_div(rows ? rows : 1, d->groups[0]);
    d->groups[2] = 1;
    return 0;
}

static int build_gemm(build *b, const spw_node *n)
{
    const spw_graph *g = b->g;
    const spw_value *a = &g->values[n->inputs[0]], *bv = &g->values[n->inputs[1]];
    const spw_value *y = &g->values[n->outputs[0]];
    NEW(SPW_VK_SH_GEMM, b->tune->wg_gemm);
    int rc;
    if ((rc = operand(b, d, n->inputs[0], &d->push[0])) ||
        (rc = operand(b, d, n->inputs[1], &d->push[1])))
        return rc;
    uint32_t M, N, K, a_si, a_sk, b_sk, b_sj;
    uint32_t has_c = 0, c_si = 0, c_sj = 0;
    float alpha = 1.0f, beta = 1.0f;
    uint32_t bd[3] = {1, 1, 1}, sa[3] = {0, 0, 0}, sb[3] = {0, 0, 0};
    if (n->op == SPW_OP_GEMM) {
        const spw_gemm_params *p = &n->p.gemm;
        M = (uint32_t)y->dims[0];
        N = (uint32_t)y->dims[1];
        K = (uint32_t)(p->trans_a ? a->dims[0] : a->dims[1]);
        a_si = p->trans_a ? 1 : K;
        a_sk = p->trans_a ? M : 1;
        b_sk = p->trans_b ? 1 : N;
        b_sj = p->trans_b ? K : 1;
        alpha = p->alpha;
        beta = p->beta;
        if (n->n_inputs > 2 && n->inputs[2] >= 0) {
            const spw_value *c = &g->values[n->inputs[2]];
            if ((rc = operand(b, d, n->inputs[2], &d->push[2])))
                return rc;
            uint32_t rows = c->ndim == 2 ? (uint32_t)c->dims[0] : 1;
            uint32_t cols = c->ndim >= 1 ? (uint32_t)c->dims[c->ndim - 1] : 1;
            has_c = 1;
            c_sj = cols == 1 ? 0 : 1;
            c_si = rows == 1 ? 0 : cols;
        }
    } else {
        M = a->ndim >= 2 ? (uint32_t)a->dims[a->ndim - 2] : 1;
        K = (uint32_t)a->dims[a->ndim - 1];
        N = bv->ndim >= 2 ? (uint32_t)bv->dims[bv->ndim - 1] : 1;
        a_si = a->ndim >= 2 ? K : 0;
        a_sk = 1;
        b_sk = bv->ndim >= 2 ? N : 1;
        b_sj = bv->ndim >= 2 ? 1 : 0;
        /* Batch axes aligned right into three slots; size 1 broadcasts. */
        int na = a->ndim > 2 ? a->ndim - 2 : 0, nb = bv->ndim > 2 ? bv->ndim - 2 : 0;
        uint32_t step_a = M * K, step_b = K * N;
        for (int i = 2, ia = na - 1, ib = nb - 1; i >= 0; i--, ia--, ib--) {
            uint32_t da = ia >= 0 ? (uint32_t)a->dims[ia] : 1;
            uint32_t db = ib >= 0 ? (uint32_t)bv->dims[ib] : 1;
            bd[i] = da > db ? da : db;
            sa[i] = da == 1 ? 0 : step_a;
            sb[i] = db == 1 ? 0 : step_b;
            step_a *= da;
            step_b *= db;
        }
        if (na > 3 || nb > 3)
            return spw__error(SPW_EUNSUPPORTED, "vulkan: '%s' has more than 3 batch axes", n->name);
    }
    spec(d, M), spec(d, N), spec(d, K), spec(d, a_si), spec(d, a_sk), spec(d, b_sk), spec(d, b_sj);
    spec(d, has_c), spec(d, c_si), spec(d, c_sj), spec(d, f2u(alpha)), spec(d, f2u(beta));
    for (int i = 0; i < 3; i++)
        spec(d, bd[i]);
    for (int i = 0; i < 3; i++)
        spec(d, sa[i]);
    for (int i = 0; i < 3; i++)
        spec(d, sb[i]);
    d->groups[0] = ceil_div(N, d->spec[0]);
    d->groups[1] = M;
    d->groups[2] = bd[0] * bd[1] * bd[2];
    return 0;
}

/* Strides that read v as broadcast to the 6-axis padded output shape. */
static void bcast_strides(const spw_value *v, int out_nd, uint32_t *s)
{
    int shift = 6 - v->ndim;
    uint32_t st = 1;
    for (int i = 5; i >= 0; i--) {
        int64_t dim = i - shift >= 0 ? v->dims[i - shift] : 1;
        s[i] = dim == 1 ? 0 : st;
        st *= (uint32_t)dim;
    }
    (void)out_nd;
}

static void pad_dims6(const spw_value *y, uint32_t *dims)
{
    int shift = 6 - y->ndim;
    for (int i = 0; i < 6; i++)
        dims[i] = i - shift >= 0 ? (uint32_t)y->dims[i - shift] : 1;
}

static int build_eltwise(build *b, const spw_node *n)
{
    const spw_graph *g = b->g;
    const spw_value *y = &g->values[n->outputs[0]];
    const uint64_t total = (uint64_t)spw__value_numel(y);
    if (!total)
        return 0;
    NEW(SPW_VK_SH_ELTWISE, b->tune->wg_1d);
    int rc = operand(b, d, n->inputs[0], &d->push[0]);
    if (rc)
        return rc;
    bool binary = n->op == SPW_OP_ADD || n->op == SPW_OP_MUL;
    if (binary && (rc = operand(b, d, n->inputs[1], &d->push[1])))
        return rc;
    uint32_t kind = 0;
    float ua = 0, ub = 0;
    switch (n->op) {
    case SPW_OP_RELU:
        kind = SPW_POST_RELU;
        break;
    case SPW_OP_CLIP:
        kind = SPW_POST_CLIP;
        ua = n->p.clip.min;
        ub = n->p.clip.max;
        break;
    case SPW_OP_LEAKY_RELU:
        kind = SPW_POST_LEAKY_RELU;
        ua = n->p.leaky.alpha;
        break;
    case SPW_OP_SIGMOID:
        kind = SPW_POST_SIGMOID;
        break;
    case SPW_OP_HARD_SWISH:
        kind = SPW_POST_HARD_SWISH;
        break;
    default:
        break;
    }
    uint32_t dims[6], sa[6], sb[6] = {0};
    pad_dims6(y, dims);
    bcast_strides(&g->values[n->inputs[0]], y->ndim, sa);
    if (binary)
        bcast_strides(&g->values[n->inputs[1]], y->ndim, sb);
    spec(d, binary ? (n->op == SPW_OP_MUL) : 2), spec(d, kind), spec(d, f2u(ua)), spec(d, f2u(ub));
    spec(d, (uint32_t)total);
    for (int i = 1; i < 6; i++)
        spec(d, dims[i]);
    for (int i = 0; i < 6; i++)
        spec(d, sa[i]);
    for (int i = 0; i < 6; i++)
        spec(d, sb[i]);
    grid_1d(d, total);
    return 0;
}

/* One strided copy: dims (6, outermost first), source and destination strides. */
static int copy_disp(build *b, const spw_node *n, int src, uint32_t dst_off, const uint32_t *dims,
                     const uint32_t *ss, const uint32_t *ds, range wr)
{
    uint64_t total = 1;
    for (int i = 0; i < 6; i++)
        total *= dims[i];
    if (!total)
        return 0;
    NEW(SPW_VK_SH_COPY, b->tune->wg_1d);
    int rc = operand(b, d, src, &d->push[0]);
    if (rc)
        return rc;
    d->push[3] = dst_off;
    d->wr = wr;
    spec(d, (uint32_t)total);
    for (int i = 1; i < 6; i++)
        spec(d, dims[i]);
    for (int i = 0; i < 6; i++)
        spec(d, ss[i]);
    for (int i = 0; i < 6; i++)
        spec(d, ds[i]);
    /* fp16 plans keep f32 tensors as halves: copy those 16 bits at a time. */
    spec(d, b->st->fp16 && b->g->values[n->outputs[0]].dtype == SPW_F32);
    grid_1d(d, total);
    return 0;
}

static int build_copy(build *b, const spw_node *n)
{
    const spw_graph *g = b->g;
    int out = n->outputs[0];
    const spw_value *y = &g->values[out];
    size_t yo = b->plan->offsets[out];
    range wr = {yo, yo + value_bytes(g, out)};
    uint32_t dims[6] = {1, 1, 1, 1, 1, 1}, ss[6] = {0}, ds[6] = {0};

    if (n->op == SPW_OP_TRANSPOSE) {
        const spw_value *x = &g->values[n->inputs[0]];
        int64_t xs[SPW_MAX_DIMS];
        int64_t s = 1;
        for (int i = x->ndim - 1; i >= 0; i--) {
            xs[i] = s;
            s *= x->dims[i];
        }
        int shift = 6 - y->ndim;
        pad_dims6(y, dims);
        uint32_t st = 1;
        for (int i = 5; i >= shift; i--) {
            ss[i] = (uint32_t)xs[n->p.transpose.perm[i - shift]];
            ds[i] = st;
            st *= dims[i];
        }
        return copy_disp(b, n, n->inputs[0], (uint32_t)(yo / 4), dims, ss, ds, wr);
    }
    if (n->op == SPW_OP_CONCAT) {
        const int axis = n->p.axis.axis;
        const uint32_t outer = (uint32_t)span(y, 0, axis);
        const uint32_t inner = (uint32_t)span(y, axis + 1, y->ndim);
        const uint32_t row = (uint32_t)y->dims[axis] * inner;
        uint32_t at = 0;
        for (int k = 0; k < n->n_inputs; k++) {
            uint32_t len = (uint32_t)g->values[n->inputs[k]].dims[axis] * inner;
            uint32_t cd[6] = {outer, 1, 1, 1, 1, len};
            uint32_t cs[6] = {len, 0, 0, 0, 0, 1}, cds[6] = {row, 0, 0, 0, 0, 1};
            int rc = copy_disp(b, n, n->inputs[k], (uint32_t)(yo / 4) + at, cd, cs, cds, wr);
            if (rc)
                return rc;
            at += len;
        }
        return 0;
    }
    /* Reshape, Flatten, Identity: one run, nothing at all when aliased. */
    if (!is_const(g, n->inputs[0]) && b->plan->offsets[n->inputs[0]] == yo)
        return 0;
    dims[0] = (uint32_t)spw__value_numel(y);
    ss[0] = ds[0] = 1;
    return copy_disp(b, n, n->inputs[0], (uint32_t)(yo / 4), dims, ss, ds, wr);
}

static int build_softmax(build *b, const spw_node *n)
{
    const spw_value *y = &b->g->values[n->outputs[0]];
    const int axis = n->p.axis.axis;
    const uint64_t outer = (uint64_t)span(y, 0, axis), inner = (uint64_t)span(y, axis + 1, y->ndim);
    NEW(SPW_VK_SH_SOFTMAX, b->tune->wg_1d);
    int rc = operand(b, d, n->inputs[0], &d->push[0]);
    if (rc)
        return rc;
    spec(d, (uint32_t)outer), spec(d, y->ndim ? (uint32_t)y->dims[axis] : 1),
        spec(d, (uint32_t)inner);
    grid_1d(d, outer * inner);
    return 0;
}

static int build_pad(build *b, const spw_node *n)
{
    const spw_value *y = &b->g->values[n->outputs[0]];
    const uint64_t total = (uint64_t)spw__value_numel(y);
    if (!total)
        return 0;
    uint32_t od[6], xd[6];
    int32_t pb[6];
    if (pad_axes(b->g, n, od, xd, pb) < 0)
        return spw__error(SPW_EUNSUPPORTED, "vulkan: '%s' pads more than 6 axes", n->name);
    NEW(SPW_VK_SH_PAD, b->tune->wg_1d);
    int rc = operand(b, d, n->inputs[0], &d->push[0]);
    if (rc)
        return rc;
    spec(d, (uint32_t)total);
    for (int i = 1; i < 6; i++)
        spec(d, od[i]);
    for (int i = 0; i < 6; i++)
        spec(d, xd[i]);
    for (int i = 0; i < 6; i++)
        spec(d, (uint32_t)pb[i]);
    spec(d, (uint32_t)n->p.pad.mode), spec(d, f2u(n->p.pad.value));
    grid_1d(d, total);
    return 0;
}

/* fp16 plans: the plan's f32 input v moves from the arena into the shadow
 * (to_half) before the first layer, or output v back after the last. */
static int build_cvt(build *b, int v, bool to_half)
{
    const spw_graph *g = b->g;
    const spw_value *val = &g->values[v];
    const size_t o = b->plan->offsets[v];
    const uint64_t total = (uint64_t)spw__value_numel(val);
    if (val->dtype != SPW_F32 || (val->flags & SPW_VALUE_CONST) || o == SPW_NO_OFFSET || !total)
        return 0;
    vk_disp *d = add_disp(b, SPW_VK_SH_CVT, b->tune->wg_1d);
    if (!d)
        return spw__error(SPW_ENOMEM, "vulkan: out of memory building a plan");
    /* Both sides sit at the same element index: one range in arena terms. */
    const range r = {o, o + value_bytes(g, v)};
    d->push[0] = d->push[3] = (uint32_t)(o / 4);
    d->rd[d->n_rd++] = r;
    d->wr = r;
    spec(d, (uint32_t)total), spec(d, to_half ? 0 : 1);
    grid_1d(d, total);
    return 0;
}

static int build_gdn(build *b, const spw_node *n)
{
    const spw_value *x = &b->g->values[n->inputs[0]];
    const uint32_t S = (uint32_t)span(x, 2, x->ndim);
    NEW(SPW_VK_SH_GDN, b->tune->wg_1d);
    int rc;
    if ((rc = operand(b, d, n->inputs[0], &d->push[0])) ||
        (rc = wconst(b, n->inputs[1], &d->push[1])) || (rc = wconst(b, n->inputs[2], &d->push[2])))
        return rc;
    spec(d, (uint32_t)x->dims[1]), spec(d, S), spec(d, (uint32_t)n->p.gdn.inverse);
    d->groups[0] = ceil_div(S, d->spec[0]);
    d->groups[1] = (uint32_t)x->dims[1];
    d->groups[2] = (uint32_t)x->dims[0];
    return d->groups[0] > MAX_GROUPS
               ? spw__error(SPW_EUNSUPPORTED, "vulkan: '%s' too large", n->name)
               : 0;
}

static int build_channel(build *b, const spw_node *n)
{
    const spw_graph *g = b->g;
    const spw_value *x = &g->values[n->inputs[0]];
    const uint64_t total = (uint64_t)spw__value_numel(x);
    if (!total)
        return 0;
    NEW(SPW_VK_SH_CHANNEL, b->tune->wg_1d);
    int rc = operand(b, d, n->inputs[0], &d->push[0]);
    if (rc)
        return rc;
    const uint32_t C = x->ndim > 1 ? (uint32_t)x->dims[1] : 1;
    uint32_t mode = n->op == SPW_OP_QUANTIZE ? 0 : n->op == SPW_OP_DEQUANTIZE ? 1 : 2;
    if (mode < 2) {
        if ((rc = wconst(b, n->inputs[1], &d->push[1])))
            return rc;
    } else {
        /* BatchNormalization folded to y = x * k + b, computed in double here. */
        const float *scale = g->values[n->inputs[1]].data, *bias = g->values[n->inputs[2]].data;
        const float *mean = g->values[n->inputs[3]].data, *var = g->values[n->inputs[4]].data;
        float *kb = spw__malloc(sizeof(float) * 2 * C);
        if (!kb)
            return spw__error(SPW_ENOMEM, "vulkan: out of memory");
        for (uint32_t c = 0; c < C; c++) {
            double k = scale[c] / sqrt((double)var[c] + n->p.bn.epsilon);
            kb[c] = (float)k;
            kb[C + c] = (float)(bias[c] - mean[c] * k);
        }
        rc = wpush(b, kb, C, &d->push[1]);
        if (!rc)
            rc = wpush(b, kb + C, C, &d->push[2]);
        spw__free(kb);
        if (rc)
            return rc;
    }
    spec(d, mode), spec(d, C), spec(d, (uint32_t)span(x, 2, x->ndim)), spec(d, (uint32_t)total);
    grid_1d(d, total);
    return 0;
}

static int build_step(build *b, const spw_node *n)
{
    switch (n->op) {
    case SPW_OP_CONV:
    case SPW_OP_CONV_TRANSPOSE:
        return build_conv(b, n);
    case SPW_OP_AVG_POOL:
    case SPW_OP_MAX_POOL:
        return build_pool(b, n);
    case SPW_OP_GLOBAL_AVG_POOL:
        return build_gpool(b, n);
    case SPW_OP_GEMM:
    case SPW_OP_MATMUL:
        return build_gemm(b, n);
    case SPW_OP_ADD:
    case SPW_OP_MUL:
        return build_eltwise(b, n);
    case SPW_OP_SOFTMAX:
        return build_softmax(b, n);
    case SPW_OP_PAD:
        return build_pad(b, n);
    case SPW_OP_GDN:
        return build_gdn(b, n);
    case SPW_OP_QUANTIZE:
    case SPW_OP_DEQUANTIZE:
    case SPW_OP_BATCH_NORM:
        return build_channel(b, n);
    default:
        if (is_unary(n->op))
            return build_eltwise(b, n);
        if (is_copy_op(n->op))
            return build_copy(b, n);
        return spw__error(SPW_EUNSUPPORTED, "vulkan: no kernel for '%s' (%s)", n->name,
                          spw__op_name(n->op));
    }
}

/* ---- pipelines, descriptors, recording --------------------------------- */

static int resolve_pipes(vk_plan *st)
{
    for (int i = 0; i < st->n_disp; i++) {
        vk_disp *d = &st->disp[i];
        int found = -1;
        for (int k = 0; k < st->n_pipes && found < 0; k++)
            if (st->pipes[k].shader == d->shader && st->pipes[k].n_spec == d->n_spec &&
                !memcmp(st->pipes[k].spec, d->spec, d->n_spec * 4))
                found = k;
        if (found < 0) {
            if (st->n_pipes == st->cap_pipes &&
                spw__grow((void **)&st->pipes, &st->cap_pipes, st->n_pipes + 1, sizeof(vk_pipe)))
                return spw__error(SPW_ENOMEM, "vulkan: out of memory");
            vk_pipe *p = &st->pipes[st->n_pipes];
            memset(p, 0, sizeof(*p));
            p->shader = d->shader;
            p->n_spec = d->n_spec;
            memcpy(p->spec, d->spec, d->n_spec * 4);
            int rc = spw__vk_pipeline(st->ctx, d->shader, d->spec, d->n_spec, &p->pipe);
            if (rc)
                return rc;
            found = st->n_pipes++;
        }
        d->pipe = found;
    }
    return 0;
}

static int make_set(vk_plan *st, spw_vk_buffer *arena)
{
    const spw_vk_fns *f = spw__vk_fns();
    spw_vk_ctx *ctx = st->ctx;
    VkDescriptorPoolSize ps = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, SPW_VK_BINDINGS};
    VkDescriptorPoolCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
        .maxSets = 1,
        .poolSizeCount = 1,
        .pPoolSizes = &ps,
    };
    int rc = spw__vk_check(f->vkCreateDescriptorPool(ctx->dev, &pci, NULL, &st->dpool),
                           "vkCreateDescriptorPool");
    if (rc)
        return rc;
    VkDescriptorSetAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
        .descriptorPool = st->dpool,
        .descriptorSetCount = 1,
        .pSetLayouts = &ctx->dsl,
    };
    if ((rc = spw__vk_check(f->vkAllocateDescriptorSets(ctx->dev, &ai, &st->set),
                            "vkAllocateDescriptorSets")))
        return rc;
    /* Binding 3 (the fp16 shadow) is only read by fp16 builds; fp32 plans
     * point it at the arena so every binding is valid. */
    VkDescriptorBufferInfo bi[SPW_VK_BINDINGS] = {
        {arena->buf, 0, VK_WHOLE_SIZE},
        {st->weights.buf, 0, VK_WHOLE_SIZE},
        {arena->buf, 0, VK_WHOLE_SIZE},
        {st->has_shadow ? st->shadow.buf : arena->buf, 0, VK_WHOLE_SIZE},
    };
    VkWriteDescriptorSet w[SPW_VK_BINDINGS];
    for (uint32_t i = 0; i < SPW_VK_BINDINGS; i++)
        w[i] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
            .dstSet = st->set,
            .dstBinding = i,
            .descriptorCount = 1,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .pBufferInfo = &bi[i],
        };
    f->vkUpdateDescriptorSets(ctx->dev, SPW_VK_BINDINGS, w, 0, NULL);
    return 0;
}

static bool overlaps(range a, range b)
{
    return a.lo < b.hi && b.lo < a.hi;
}

/* Hazard tracking between dispatches: what was written and read since the
 * last barrier. A dispatch that reads or overwrites a pending write, or
 * overwrites a pending read, waits behind a barrier; independent dispatches
 * (the two branches of a residual block) run without one. */
typedef struct pending {
    range wr[64], rd[64];
    int n_wr, n_rd;
} pending;

static bool needs_barrier(const pending *p, const vk_disp *d)
{
    if (p->n_wr >= 64 || p->n_rd >= 64 - MAX_READS)
        return true;
    for (int i = 0; i < p->n_wr; i++) {
        if (overlaps(p->wr[i], d->wr))
            return true;
        for (int k = 0; k < d->n_rd; k++)
            if (overlaps(p->wr[i], d->rd[k]))
                return true;
    }
    for (int i = 0; i < p->n_rd; i++)
        if (overlaps(p->rd[i], d->wr))
            return true;
    return false;
}

/* Ranges are arena bytes; the fp16 shadow (when there is one) is covered
 * whole: its halves sit at half those offsets. */
static void barrier(VkCommandBuffer cmd, VkBuffer buf, VkBuffer shadow, const pending *p)
{
    size_t lo = SIZE_MAX, hi = 0;
    for (int i = 0; i < p->n_wr; i++) {
        lo = SPW_MIN(lo, p->wr[i].lo);
        hi = SPW_MAX(hi, p->wr[i].hi);
    }
    for (int i = 0; i < p->n_rd; i++) {
        lo = SPW_MIN(lo, p->rd[i].lo);
        hi = SPW_MAX(hi, p->rd[i].hi);
    }
    if (hi <= lo) {
        lo = 0;
        hi = 0;
    }
    VkBufferMemoryBarrier bb[2];
    for (int i = 0; i < 2; i++)
        bb[i] = (VkBufferMemoryBarrier){
            .sType = VK_STRUCTURE_TYPE_BUFFER_MEMORY_BARRIER,
            .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
            .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT,
            .srcQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED,
            .dstQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED,
            .buffer = i ? shadow : buf,
            .offset = i == 0 && hi > lo ? lo : 0,
            .size = i == 0 && hi > lo ? hi - lo : VK_WHOLE_SIZE,
        };
    spw__vk_fns()->vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                                        VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 0, NULL,
                                        shadow != VK_NULL_HANDLE ? 2 : 1, bb, 0, NULL);
}

static int record(vk_plan *st, spw_plan *plan)
{
    const spw_vk_fns *f = spw__vk_fns();
    spw_vk_ctx *ctx = st->ctx;
    spw_vk_buffer *arena = plan->arena->impl;
    const VkBuffer shadow = st->has_shadow ? st->shadow.buf : VK_NULL_HANDLE;
    VkCommandBufferAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = ctx->pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    pthread_mutex_lock(&ctx->lock); /* the command pool is shared */
    int rc = spw__vk_check(f->vkAllocateCommandBuffers(ctx->dev, &ai, &st->cmd),
                           "vkAllocateCommandBuffers");
    if (rc) {
        pthread_mutex_unlock(&ctx->lock);
        return rc;
    }
    VkCommandBuffer cmd = st->cmd;
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    f->vkBeginCommandBuffer(cmd, &bi);
    /* Inputs arrive by host writes or transfers; the previous run's shader
     * writes must also land before this run overwrites them. */
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask =
            VK_ACCESS_HOST_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_SHADER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT,
    };
    f->vkCmdPipelineBarrier(cmd,
                            VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT |
                                VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                            VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    if (st->qpool) {
        f->vkCmdResetQueryPool(cmd, st->qpool, 0, (uint32_t)plan->n_steps + 1);
        f->vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, st->qpool, 0);
    }
    if (st->span) {
        f->vkCmdResetQueryPool(cmd, st->span, 0, 2);
        f->vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, st->span, 0);
    }
    f->vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, ctx->layout, 0, 1, &st->set, 0,
                               NULL);
    pending p;
    p.n_wr = p.n_rd = 0;
    int bound = -1, di = 0;
    for (int s = 0; s < plan->n_steps; s++) {
        /* Profiling serialises the steps so each timestamp pair brackets one layer. */
        if (st->qpool && (p.n_wr || p.n_rd)) {
            barrier(cmd, arena->buf, shadow, &p);
            p.n_wr = p.n_rd = 0;
        }
        for (; di < st->n_disp && st->disp[di].step == s; di++) {
            const vk_disp *d = &st->disp[di];
            if (needs_barrier(&p, d)) {
                barrier(cmd, arena->buf, shadow, &p);
                p.n_wr = p.n_rd = 0;
            }
            p.wr[p.n_wr++] = d->wr;
            for (int k = 0; k < d->n_rd; k++)
                p.rd[p.n_rd++] = d->rd[k];
            if (d->pipe != bound) {
                f->vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, st->pipes[d->pipe].pipe);
                bound = d->pipe;
            }
            f->vkCmdPushConstants(cmd, ctx->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0,
                                  SPW_VK_PUSH_WORDS * 4, d->push);
            f->vkCmdDispatch(cmd, d->groups[0], d->groups[1], d->groups[2]);
        }
        if (st->qpool)
            f->vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, st->qpool,
                                   (uint32_t)s + 1);
    }
    /* Results are read by the host (mapped arena) or copied out (staging). */
    VkMemoryBarrier out = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_HOST_READ_BIT | VK_ACCESS_TRANSFER_READ_BIT,
    };
    f->vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                            VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &out,
                            0, NULL, 0, NULL);
    if (st->span)
        f->vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, st->span, 1);
    rc = spw__vk_check(f->vkEndCommandBuffer(cmd), "vkEndCommandBuffer");
    pthread_mutex_unlock(&ctx->lock);
    return rc;
}

/* The plan's Vulkan objects. */
static void plan_destroy_objects(vk_plan *st, spw_vk_ctx *ctx)
{
    const spw_vk_fns *f = spw__vk_fns();
    if (st->cmd) {
        pthread_mutex_lock(&ctx->lock);
        f->vkFreeCommandBuffers(ctx->dev, ctx->pool, 1, &st->cmd);
        pthread_mutex_unlock(&ctx->lock);
        st->cmd = VK_NULL_HANDLE;
    }
    if (st->qpool)
        f->vkDestroyQueryPool(ctx->dev, st->qpool, NULL);
    if (st->span)
        f->vkDestroyQueryPool(ctx->dev, st->span, NULL);
    if (st->fence)
        f->vkDestroyFence(ctx->dev, st->fence, NULL);
    st->span = VK_NULL_HANDLE;
    st->fence = VK_NULL_HANDLE;
    if (st->dpool)
        f->vkDestroyDescriptorPool(ctx->dev, st->dpool, NULL);
    st->qpool = VK_NULL_HANDLE;
    st->dpool = VK_NULL_HANDLE;
    for (int i = 0; i < st->n_pipes; i++)
        f->vkDestroyPipeline(ctx->dev, st->pipes[i].pipe, NULL);
    st->n_pipes = 0;
    if (st->has_weights && st->wentry)
        spw__vk_weights_put(st->wshared, ctx, st->wentry);
    else if (st->has_weights)
        spw__vk_buffer_destroy(ctx, &st->weights);
    st->wentry = NULL;
    if (st->has_shadow)
        spw__vk_buffer_destroy(ctx, &st->shadow);
    st->has_weights = st->has_shadow = false;
}

static void plan_close(spw_vk_live *self, spw_vk_ctx *ctx)
{
    plan_destroy_objects((vk_plan *)self, ctx);
}

static void vk_plan_release(spw_backend *be, spw_plan *plan, void *state)
{
    (void)plan;
    vk_plan *st = state;
    if (!st)
        return;
    if (!st->live.dead) {
        plan_destroy_objects(st, be->ctx);
        if (st->held)
            ctx_drop(be->ctx, &st->live);
    }
    spw__free(st->ts);
    spw__free(st->pipes);
    spw__free(st->disp);
    spw__free(st->wdata);
    spw__free(st->woff);
    spw__free(st);
}

static int upload_weights(vk_plan *st)
{
    spw_vk_ctx *ctx = st->ctx;
    size_t bytes = (size_t)(st->n_wdata ? st->n_wdata : 4) * 4;
    if (bytes > ctx->info.max_storage_range)
        return spw__error(SPW_EUNSUPPORTED,
                          "vulkan: %zu bytes of constants exceed the device's buffer range", bytes);
    if (st->wshared) {
        int rc = spw__vk_weights_get(st->wshared, ctx, st->wdata, (size_t)st->n_wdata * 4,
                                     &st->weights, &st->wentry);
        st->has_weights = !rc;
        return rc;
    }
    bool mapped = ctx->map_arena;
    int rc = spw__vk_buffer_create(ctx, bytes, mapped, &st->weights);
    if (rc)
        return rc;
    st->has_weights = true;
    if (!st->n_wdata)
        return 0;
    if (mapped) {
        memcpy(st->weights.mem.map, st->wdata, (size_t)st->n_wdata * 4);
        return 0;
    }
    return spw__vk_staged_copy(ctx, &st->weights, 0, st->wdata, NULL, (size_t)st->n_wdata * 4,
                               true);
}

static int vk_plan_prepare(spw_backend *be, spw_plan *plan, void **state)
{
    spw_vk_ctx *ctx = be->ctx;
    const spw_graph *g = plan->graph;
    if (plan->arena_size > ctx->info.max_storage_range)
        return spw__error(SPW_EUNSUPPORTED,
                          "vulkan: arena of %zu bytes exceeds the device's %llu-byte buffer range",
                          plan->arena_size, (unsigned long long)ctx->info.max_storage_range);
    vk_plan *st = spw__calloc(1, sizeof(*st));
    if (!st)
        return spw__error(SPW_ENOMEM, "vulkan: out of memory");
    st->ctx = ctx;
    st->wshared = plan->weights_state;
    int rc;
    st->woff = spw__malloc(sizeof(uint32_t) * (size_t)(g->n_values ? g->n_values : 1));
    if (!st->woff) {
        rc = spw__error(SPW_ENOMEM, "vulkan: out of memory");
        goto fail;
    }
    for (int v = 0; v < g->n_values; v++)
        st->woff[v] = NO_WOFF;
    /* A plan without steps has nothing to compute in halves. */
    st->fp16 = ctx->use_fp16 && plan->n_steps > 0;
    if (st->fp16) {
        /* One half per 4-byte slot: half the arena's bytes. */
        size_t bytes = plan->arena_size / 2 + 4;
        if ((rc = spw__vk_buffer_create(ctx, bytes, false, &st->shadow)))
            goto fail;
        st->has_shadow = true;
    }
    build b = {plan, g, st, &ctx->tuning, 0};
    for (int i = 0; st->fp16 && i < g->n_inputs; i++)
        if ((rc = build_cvt(&b, g->inputs[i], true)))
            goto fail;
    for (int s = 0; s < plan->n_steps; s++) {
        b.step = s;
        if ((rc = build_step(&b, &g->nodes[plan->steps[s]])))
            goto fail;
    }
    for (int i = 0; st->fp16 && i < g->n_outputs; i++)
        if ((rc = build_cvt(&b, g->outputs[i], false)))
            goto fail;
    if ((rc = upload_weights(st)))
        goto fail;
    spw__free(st->wdata); /* the device copy is all that is needed now */
    st->wdata = NULL;
    st->n_wdata = st->cap_wdata = 0;
    if ((rc = resolve_pipes(st)))
        goto fail;
    spw__vk_cache_save(ctx);
    if ((rc = make_set(st, plan->arena->impl)))
        goto fail;
    if (plan->step_ns) {
        if (ctx->info.timestamp_bits) {
            VkQueryPoolCreateInfo qci = {
                .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                .queryType = VK_QUERY_TYPE_TIMESTAMP,
                .queryCount = (uint32_t)plan->n_steps + 1,
            };
            st->ts = spw__calloc((size_t)plan->n_steps + 1, sizeof(uint64_t));
            if (!st->ts) {
                rc = spw__error(SPW_ENOMEM, "vulkan: out of memory");
                goto fail;
            }
            if ((rc = spw__vk_check(
                     spw__vk_fns()->vkCreateQueryPool(ctx->dev, &qci, NULL, &st->qpool),
                     "vkCreateQueryPool")))
                goto fail;
        } else {
            SPW_LOGW("vulkan: '%s' has no timestamps; per-step times stay 0", ctx->info.name);
        }
    }
    if ((rc = spw__vk_fence_create(ctx, &st->fence)))
        goto fail;
    if (ctx->info.timestamp_bits) {
        VkQueryPoolCreateInfo sci = {
            .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
            .queryType = VK_QUERY_TYPE_TIMESTAMP,
            .queryCount = 2,
        };
        if ((rc = spw__vk_check(spw__vk_fns()->vkCreateQueryPool(ctx->dev, &sci, NULL, &st->span),
                                "vkCreateQueryPool")))
            goto fail;
    }
    if ((rc = record(st, plan)))
        goto fail;
    SPW_LOGD("vulkan: plan of %d steps: %d dispatches, %d pipelines%s", plan->n_steps, st->n_disp,
             st->n_pipes, st->fp16 ? ", fp16 storage" : "");
    st->held = true;
    ctx_hold(ctx, &st->live, plan_close);
    *state = st;
    return 0;
fail:
    vk_plan_release(be, plan, st);
    return rc;
}

static int vk_weights_create(spw_backend *be, const spw_weights *w, void **state)
{
    (void)be;
    (void)w;
    return spw__vk_weights_create((spw_vk_weights **)state);
}

static void vk_weights_release(spw_backend *be, void *state)
{
    (void)be;
    spw__vk_weights_free(state);
}

static int vk_run_plan(spw_backend *be, spw_plan *plan, void *state)
{
    const spw_vk_fns *f = spw__vk_fns();
    vk_plan *st = state;
    if (st->live.dead)
        return closed_error();
    plan->device_ns = 0;
    spw_vk_ctx *ctx = be->ctx;
    int rc = spw__vk_submit_wait(ctx, st->cmd, st->fence, &plan->run_ns[2]);
    if (rc)
        return rc;
    const uint32_t bits = ctx->info.timestamp_bits;
    const uint64_t mask = bits >= 64 ? UINT64_MAX : ((uint64_t)1 << bits) - 1;
    const double period = ctx->info.timestamp_period;
    uint64_t span[2];
    if (st->span &&
        f->vkGetQueryPoolResults(ctx->dev, st->span, 0, 2, sizeof(span), span, sizeof(uint64_t),
                                 VK_QUERY_RESULT_64_BIT) == VK_SUCCESS)
        plan->device_ns = (uint64_t)((double)((span[1] - span[0]) & mask) * period);
    if (!st->qpool)
        return 0;
    uint32_t n = (uint32_t)plan->n_steps + 1;
    rc = spw__vk_check(f->vkGetQueryPoolResults(ctx->dev, st->qpool, 0, n, n * sizeof(uint64_t),
                                                st->ts, sizeof(uint64_t),
                                                VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT),
                       "vkGetQueryPoolResults");
    if (rc)
        return rc;
    for (int s = 0; s < plan->n_steps; s++)
        plan->step_ns[s] += (uint64_t)((double)((st->ts[s + 1] - st->ts[s]) & mask) * period);
    return 0;
}

const spw_backend_ops spw__vulkan_ops = {
    .name = "vulkan",
    .layout = SPW_LAYOUT_NCHW,
    .init = vk_init,
    .fini = vk_fini,
    .supports_op = vk_supports_op,
    .buffer_alloc = vk_buffer_alloc,
    .buffer_free = vk_buffer_free,
    .buffer_upload = vk_buffer_upload,
    .buffer_download = vk_buffer_download,
    .weights_create = vk_weights_create,
    .weights_release = vk_weights_release,
    .plan_prepare = vk_plan_prepare,
    .plan_release = vk_plan_release,
    .run_plan = vk_run_plan,
    .describe = spw__vk_describe,
};

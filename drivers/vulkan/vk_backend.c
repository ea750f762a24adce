/* The Vulkan backend: registration, buffers, and plans turned into one
 * recorded command buffer (built once at prepare, replayed per run). The
 * dispatches come from the op files through the op table (vk_rows.c), their
 * pipelines from the device's table (vk_pipeline.c).
 *
 * Every dispatch binds the same descriptor set (arena, constants); operand
 * offsets travel in push constants and shapes in specialisation constants,
 * so layers of the same shape share one pipeline. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/vulkan/vk_plan.h"
#include "shaders/spw_vk_shaders.h"

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

static bool vk_supports_op(const spw_backend *be, const spw_graph *g, const spw_node *n)
{
    (void)be;
    if ((unsigned)n->op >= SPW_OP_COUNT || spw__vk_rows[n->op].kind != SPW_ROW_RUNS)
        return false;
    const spw_vk_op_row *r = &spw__vk_rows[n->op];
    if (n->n_outputs != 1 || n->n_inputs < 1 || n->inputs[0] < 0)
        return false;
    const spw_value *y = &g->values[n->outputs[0]];
    int64_t numel = spw__value_numel(y);
    if (numel < 0 || numel >= ((int64_t)1 << 31) || (y->ndim > 6 && !(r->flags & SPW_VK_X_ONLY)))
        return false;
    /* Element types: f32, except where the row allows int32 or is a 32-bit copy. */
    for (int k = 0; k < n->n_inputs; k++) {
        int v = n->inputs[k];
        if (v < 0 || ((r->flags & SPW_VK_X_ONLY) && k > 0))
            continue;
        spw_dtype t = g->values[v].dtype;
        bool ok =
            t == SPW_F32 ||
            (t == SPW_I32 && ((r->flags & SPW_VK_COPY) || ((r->i32_in >> (k < 31 ? k : 31)) & 1)));
        if (!ok)
            return false;
    }
    bool int_out = (r->flags & SPW_VK_I32_OUT) || ((r->flags & SPW_VK_COPY) && y->dtype == SPW_I32);
    if (y->dtype != (int_out ? SPW_I32 : SPW_F32))
        return false;
    if (n->n_post && (r->flags & (SPW_VK_COPY | SPW_VK_NO_POST)))
        return false;
    return !r->supports || r->supports(g, n);
}

/* ---- building the dispatch list ---------------------------------------- */

static int build_step(vk_build *b, const spw_node *n)
{
    if ((unsigned)n->op < SPW_OP_COUNT && spw__vk_rows[n->op].build)
        return spw__vk_rows[n->op].build(b, n);
    return spw__error(SPW_EUNSUPPORTED, "vulkan: no kernel for '%s' (%s)", n->name,
                      spw__op_name(n->op));
}

/* ---- pipelines, descriptors, recording --------------------------------- */

/* Every dispatch's pipeline, from the device's cache. */
static int resolve_pipes(vk_plan *st)
{
    uint64_t modules, before, after;
    spw__vk_pipes_stats(st->ctx, &modules, &before);
    for (int i = 0; i < st->n_disp; i++) {
        vk_disp *d = &st->disp[i];
        int rc = spw__vk_pipeline(st->ctx, d->shader, d->spec, d->n_spec, &d->pipe);
        if (rc)
            return rc;
    }
    spw__vk_pipes_stats(st->ctx, &modules, &after);
    st->n_new_pipes = (int)(after - before);
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

static bool overlaps(vk_range a, vk_range b)
{
    return a.lo < b.hi && b.lo < a.hi;
}

/* Hazard tracking between dispatches: what was written and read since the
 * last barrier. A dispatch that reads or overwrites a pending write, or
 * overwrites a pending read, waits behind a barrier; independent dispatches
 * (the two branches of a residual block) run without one. */
typedef struct pending {
    vk_range wr[64], rd[64];
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
    VkPipeline bound = VK_NULL_HANDLE;
    int di = 0;
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
                f->vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, d->pipe);
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
    vk_build b = {plan, g, st, &ctx->tuning, 0};
    for (int i = 0; st->fp16 && i < g->n_inputs; i++)
        if ((rc = spw__vk_build_cvt(&b, g->inputs[i], true)))
            goto fail;
    for (int s = 0; s < plan->n_steps; s++) {
        b.step = s;
        if ((rc = build_step(&b, &g->nodes[plan->steps[s]])))
            goto fail;
    }
    for (int i = 0; st->fp16 && i < g->n_outputs; i++)
        if ((rc = spw__vk_build_cvt(&b, g->outputs[i], false)))
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
    SPW_LOGD("vulkan: plan of %d steps: %d dispatches, %d new pipelines%s", plan->n_steps,
             st->n_disp, st->n_new_pipes, st->fp16 ? ", fp16 storage" : "");
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
    .op_row = spw__vk_op_row,
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

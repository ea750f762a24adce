/* Vulkan memory: buffers sub-allocated from large VkDeviceMemory blocks
 * (drivers cap the number of allocations, and each costs a kernel call),
 * host-memory import, and the staging path for device-only memory. */
#include <string.h>

#include "drivers/vulkan/vk_internal.h"

#define BLOCK_SIZE ((VkDeviceSize)64 << 20)

/* A block keeps its live ranges sorted by offset; the gaps are free. */
typedef struct span {
    VkDeviceSize offset, size;
} span;

struct spw_vk_block {
    VkDeviceMemory mem;
    VkDeviceSize size;
    uint32_t type;
    void *map;
    span *used;
    int n_used, cap_used;
    spw_vk_block *next;
};

static VkDeviceSize align_up(VkDeviceSize v, VkDeviceSize a)
{
    return (v + a - 1) / a * a;
}

/* First fit: the lowest aligned gap of a block that holds size bytes. */
static bool block_fit(spw_vk_block *b, VkDeviceSize size, VkDeviceSize align, VkDeviceSize *off,
                      int *pos)
{
    VkDeviceSize start = 0;
    for (int i = 0; i <= b->n_used; i++) {
        VkDeviceSize at = align_up(start, align);
        VkDeviceSize end = i < b->n_used ? b->used[i].offset : b->size;
        if (at + size <= end) {
            *off = at;
            *pos = i;
            return true;
        }
        if (i < b->n_used)
            start = b->used[i].offset + b->used[i].size;
    }
    return false;
}

static int block_insert(spw_vk_block *b, int pos, VkDeviceSize off, VkDeviceSize size)
{
    if (b->n_used == b->cap_used &&
        spw__grow((void **)&b->used, &b->cap_used, b->n_used + 1, sizeof(span)))
        return spw__error(SPW_ENOMEM, "vulkan: out of memory");
    memmove(&b->used[pos + 1], &b->used[pos], sizeof(span) * (size_t)(b->n_used - pos));
    b->used[pos] = (span){off, size};
    b->n_used++;
    return 0;
}

static bool host_visible(const spw_vk_ctx *ctx, uint32_t type)
{
    return ctx->memprops.memoryTypes[type].propertyFlags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT;
}

int spw__vk_alloc(spw_vk_ctx *ctx, VkMemoryRequirements req, uint32_t type, spw_vk_alloc *out)
{
    const spw_vk_fns *f = spw__vk_fns();
    if (!(req.memoryTypeBits & (1u << type)))
        return spw__error(SPW_EBACKEND, "vulkan: buffer cannot live in memory type %u", type);
    VkDeviceSize align = req.alignment ? req.alignment : 1;
    for (spw_vk_block *b = ctx->blocks; b; b = b->next) {
        VkDeviceSize off;
        int pos;
        if (b->type != type || !block_fit(b, req.size, align, &off, &pos))
            continue;
        if (block_insert(b, pos, off, req.size))
            return SPW_ENOMEM;
        *out = (spw_vk_alloc){b, off, req.size, b->map ? (char *)b->map + off : NULL};
        return 0;
    }
    spw_vk_block *b = spw__calloc(1, sizeof(*b));
    if (!b)
        return spw__error(SPW_ENOMEM, "vulkan: out of memory");
    b->size = req.size > BLOCK_SIZE ? align_up(req.size, 1 << 20) : BLOCK_SIZE;
    b->type = type;
    VkMemoryAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
        .allocationSize = b->size,
        .memoryTypeIndex = type,
    };
    int rc = spw__vk_check(f->vkAllocateMemory(ctx->dev, &ai, NULL, &b->mem), "vkAllocateMemory");
    if (rc)
        goto fail_block;
    if (host_visible(ctx, type) &&
        (rc = spw__vk_check(f->vkMapMemory(ctx->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map),
                            "vkMapMemory")))
        goto fail_mem;
    if ((rc = block_insert(b, 0, 0, req.size)))
        goto fail_mem;
    b->next = ctx->blocks;
    ctx->blocks = b;
    *out = (spw_vk_alloc){b, 0, req.size, b->map};
    return 0;
fail_mem:
    f->vkFreeMemory(ctx->dev, b->mem, NULL);
fail_block:
    spw__free(b);
    return rc;
}

/* Empty blocks are kept for the next plan: plans come and go in bursts of
 * similar size, and a block's allocation is the expensive part. */
void spw__vk_free(spw_vk_ctx *ctx, spw_vk_alloc *a)
{
    (void)ctx;
    spw_vk_block *b = a->block;
    if (!b)
        return;
    for (int i = 0; i < b->n_used; i++)
        if (b->used[i].offset == a->offset) {
            memmove(&b->used[i], &b->used[i + 1], sizeof(span) * (size_t)(b->n_used - i - 1));
            b->n_used--;
            break;
        }
    a->block = NULL;
}

void spw__vk_free_blocks(spw_vk_ctx *ctx)
{
    const spw_vk_fns *f = spw__vk_fns();
    while (ctx->blocks) {
        spw_vk_block *b = ctx->blocks;
        ctx->blocks = b->next;
        f->vkFreeMemory(ctx->dev, b->mem, NULL);
        spw__free(b->used);
        spw__free(b);
    }
}

static int make_buffer(spw_vk_ctx *ctx, VkDeviceSize size, const void *pnext, VkBuffer *out)
{
    VkBufferCreateInfo bci = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .pNext = pnext,
        .size = size,
        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                 VK_BUFFER_USAGE_TRANSFER_DST_BIT,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    return spw__vk_check(spw__vk_fns()->vkCreateBuffer(ctx->dev, &bci, NULL, out),
                         "vkCreateBuffer");
}

int spw__vk_buffer_create(spw_vk_ctx *ctx, VkDeviceSize size, bool host, spw_vk_buffer *out)
{
    const spw_vk_fns *f = spw__vk_fns();
    memset(out, 0, sizeof(*out));
    int rc = make_buffer(ctx, size, NULL, &out->buf);
    if (rc)
        return rc;
    VkMemoryRequirements req;
    f->vkGetBufferMemoryRequirements(ctx->dev, out->buf, &req);
    pthread_mutex_lock(&ctx->lock);
    rc = spw__vk_alloc(ctx, req, host ? ctx->type_host : ctx->type_device, &out->mem);
    pthread_mutex_unlock(&ctx->lock);
    if (rc)
        goto fail_buf;
    if ((rc = spw__vk_check(
             f->vkBindBufferMemory(ctx->dev, out->buf, out->mem.block->mem, out->mem.offset),
             "vkBindBufferMemory")))
        goto fail_mem;
    out->size = size;
    return 0;
fail_mem:
    pthread_mutex_lock(&ctx->lock);
    spw__vk_free(ctx, &out->mem);
    pthread_mutex_unlock(&ctx->lock);
fail_buf:
    f->vkDestroyBuffer(ctx->dev, out->buf, NULL);
    return rc;
}

/* The buffer aliases the host pages: no copy in either direction, the device
 * reads and writes them directly. host and size must be import_align aligned. */
int spw__vk_buffer_import(spw_vk_ctx *ctx, void *host, VkDeviceSize size, spw_vk_buffer *out)
{
    const spw_vk_fns *f = spw__vk_fns();
    memset(out, 0, sizeof(*out));
    if (!ctx->import_align || (uintptr_t)host % ctx->import_align || size % ctx->import_align)
        return spw__error(SPW_EUNSUPPORTED, "vulkan: host memory import not possible here");
    const VkExternalMemoryHandleTypeFlagBits ht =
        VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT;
    VkMemoryHostPointerPropertiesEXT hpp = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_HOST_POINTER_PROPERTIES_EXT};
    int rc = spw__vk_check(f->vkGetMemoryHostPointerPropertiesEXT(ctx->dev, ht, host, &hpp),
                           "vkGetMemoryHostPointerPropertiesEXT");
    if (rc)
        return rc;
    VkExternalMemoryBufferCreateInfo ebi = {
        .sType = VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_BUFFER_CREATE_INFO,
        .handleTypes = ht,
    };
    if ((rc = make_buffer(ctx, size, &ebi, &out->buf)))
        return rc;
    VkMemoryRequirements req;
    f->vkGetBufferMemoryRequirements(ctx->dev, out->buf, &req);
    uint32_t bits = req.memoryTypeBits & hpp.memoryTypeBits;
    uint32_t type = 0;
    while (type < 32 && !(bits & (1u << type)))
        type++;
    if (type == 32) {
        rc = spw__error(SPW_EUNSUPPORTED, "vulkan: no memory type accepts imported host memory");
        goto fail_buf;
    }
    VkImportMemoryHostPointerInfoEXT imp = {
        .sType = VK_STRUCTURE_TYPE_IMPORT_MEMORY_HOST_POINTER_INFO_EXT,
        .handleType = ht,
        .pHostPointer = host,
    };
    VkMemoryAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
        .pNext = &imp,
        .allocationSize = size,
        .memoryTypeIndex = type,
    };
    if ((rc = spw__vk_check(f->vkAllocateMemory(ctx->dev, &ai, NULL, &out->own_mem),
                            "vkAllocateMemory (host import)")))
        goto fail_buf;
    if ((rc = spw__vk_check(f->vkBindBufferMemory(ctx->dev, out->buf, out->own_mem, 0),
                            "vkBindBufferMemory")))
        goto fail_mem;
    out->imported = true;
    out->mem.map = host;
    out->size = size;
    return 0;
fail_mem:
    f->vkFreeMemory(ctx->dev, out->own_mem, NULL);
fail_buf:
    f->vkDestroyBuffer(ctx->dev, out->buf, NULL);
    return rc;
}

void spw__vk_buffer_destroy(spw_vk_ctx *ctx, spw_vk_buffer *b)
{
    const spw_vk_fns *f = spw__vk_fns();
    f->vkDestroyBuffer(ctx->dev, b->buf, NULL);
    if (b->imported) {
        f->vkFreeMemory(ctx->dev, b->own_mem, NULL);
    } else {
        pthread_mutex_lock(&ctx->lock);
        spw__vk_free(ctx, &b->mem);
        pthread_mutex_unlock(&ctx->lock);
    }
    memset(b, 0, sizeof(*b));
}

/* One copy through the shared staging buffer, submitted and waited for.
 * Used only where memory is not host-visible (discrete GPUs). */
int spw__vk_staged_copy(spw_vk_ctx *ctx, spw_vk_buffer *dst, VkDeviceSize off, const void *src,
                        void *dst_host, VkDeviceSize size, bool upload)
{
    const spw_vk_fns *f = spw__vk_fns();
    int rc = 0;
    pthread_mutex_lock(&ctx->lock);
    if (!ctx->has_staging || ctx->staging.size < size) {
        if (ctx->has_staging) {
            /* Destroy under the lock would self-deadlock: release by hand. */
            f->vkDestroyBuffer(ctx->dev, ctx->staging.buf, NULL);
            spw__vk_free(ctx, &ctx->staging.mem);
            ctx->has_staging = false;
        }
        pthread_mutex_unlock(&ctx->lock);
        spw_vk_buffer nb;
        if ((rc = spw__vk_buffer_create(ctx, align_up(size, 1 << 20), true, &nb)))
            return rc;
        pthread_mutex_lock(&ctx->lock);
        ctx->staging = nb;
        ctx->has_staging = true;
    }
    if (upload)
        memcpy(ctx->staging.mem.map, src, size);
    VkCommandBufferBeginInfo bi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
        .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
    };
    f->vkBeginCommandBuffer(ctx->xfer, &bi);
    VkBufferCopy region = {
        .srcOffset = upload ? 0 : off,
        .dstOffset = upload ? off : 0,
        .size = size,
    };
    if (upload)
        f->vkCmdCopyBuffer(ctx->xfer, ctx->staging.buf, dst->buf, 1, &region);
    else
        f->vkCmdCopyBuffer(ctx->xfer, dst->buf, ctx->staging.buf, 1, &region);
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_HOST_READ_BIT | VK_ACCESS_SHADER_READ_BIT,
    };
    f->vkCmdPipelineBarrier(ctx->xfer, VK_PIPELINE_STAGE_TRANSFER_BIT,
                            VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1,
                            &mb, 0, NULL, 0, NULL);
    f->vkEndCommandBuffer(ctx->xfer);
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &ctx->xfer,
    };
    rc = spw__vk_check(f->vkQueueSubmit(ctx->queue, 1, &si, ctx->fence), "vkQueueSubmit");
    if (!rc)
        rc = spw__vk_check(f->vkWaitForFences(ctx->dev, 1, &ctx->fence, VK_TRUE, UINT64_MAX),
                           "vkWaitForFences");
    f->vkResetFences(ctx->dev, 1, &ctx->fence);
    if (!rc && !upload)
        memcpy(dst_host, ctx->staging.mem.map, size);
    pthread_mutex_unlock(&ctx->lock);
    return rc;
}

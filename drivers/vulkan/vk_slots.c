/* Batches in flight on one queue.
 *
 * Every plan waits on its own fence and every arena that is not host-visible
 * copies through its own staging buffers, so the device lock covers only
 * vkQueueSubmit. A server worker owns its plans and arena (one slot): while
 * one worker waits for its batch's compute, another uploads the next batch
 * or downloads the previous one, and the queue always has work. */
#include <string.h>

#include "drivers/vulkan/vk_internal.h"

struct spw_vk_xfer {
    VkCommandPool pool; /* its own: command buffers of one pool are recorded by one thread */
    VkCommandBuffer cmd[2];
    VkFence fence[2];
    spw_vk_buffer stage[2]; /* host-visible: [0] uploads, [1] downloads */
    bool has_stage[2];
};

int spw__vk_fence_create(spw_vk_ctx *ctx, VkFence *out)
{
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    return spw__vk_check(spw__vk_fns()->vkCreateFence(ctx->dev, &fci, NULL, out), "vkCreateFence");
}

int spw__vk_submit_wait(spw_vk_ctx *ctx, VkCommandBuffer cmd, VkFence fence, uint64_t *submitted)
{
    const spw_vk_fns *f = spw__vk_fns();
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &cmd,
    };
    /* The queue needs external synchronisation; the wait does not. */
    pthread_mutex_lock(&ctx->lock);
    if (submitted)
        *submitted = spw__now_ns();
    int rc = spw__vk_check(f->vkQueueSubmit(ctx->queue, 1, &si, fence), "vkQueueSubmit");
    pthread_mutex_unlock(&ctx->lock);
    if (rc)
        return rc;
    rc = spw__vk_check(f->vkWaitForFences(ctx->dev, 1, &fence, VK_TRUE, UINT64_MAX),
                       "vkWaitForFences");
    f->vkResetFences(ctx->dev, 1, &fence);
    return rc;
}

void spw__vk_xfer_destroy(spw_vk_ctx *ctx, spw_vk_xfer *x)
{
    if (!x)
        return;
    const spw_vk_fns *f = spw__vk_fns();
    for (int i = 0; i < 2; i++) {
        if (x->has_stage[i])
            spw__vk_buffer_destroy(ctx, &x->stage[i]);
        if (x->fence[i])
            f->vkDestroyFence(ctx->dev, x->fence[i], NULL);
    }
    if (x->pool)
        f->vkDestroyCommandPool(ctx->dev, x->pool, NULL); /* frees its command buffers */
    spw__free(x);
}

int spw__vk_xfer_create(spw_vk_ctx *ctx, spw_vk_xfer **out)
{
    const spw_vk_fns *f = spw__vk_fns();
    spw_vk_xfer *x = spw__calloc(1, sizeof(*x));
    if (!x)
        return spw__error(SPW_ENOMEM, "vulkan: out of memory");
    VkCommandPoolCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = (uint32_t)ctx->info.compute_family,
    };
    int rc = spw__vk_check(f->vkCreateCommandPool(ctx->dev, &pci, NULL, &x->pool),
                           "vkCreateCommandPool");
    if (rc)
        goto fail;
    VkCommandBufferAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = x->pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 2,
    };
    if ((rc = spw__vk_check(f->vkAllocateCommandBuffers(ctx->dev, &ai, x->cmd),
                            "vkAllocateCommandBuffers")))
        goto fail;
    for (int i = 0; i < 2; i++)
        if ((rc = spw__vk_fence_create(ctx, &x->fence[i])))
            goto fail;
    *out = x;
    return 0;
fail:
    spw__vk_xfer_destroy(ctx, x);
    return rc;
}

static VkDeviceSize round_up(VkDeviceSize v, VkDeviceSize a)
{
    return (v + a - 1) / a * a;
}

int spw__vk_xfer_copy(spw_vk_ctx *ctx, spw_vk_xfer *x, spw_vk_buffer *dev, VkDeviceSize off,
                      const void *src, void *dst, VkDeviceSize size, bool upload)
{
    const spw_vk_fns *f = spw__vk_fns();
    const int i = upload ? 0 : 1;
    int rc;
    if (!x->has_stage[i] || x->stage[i].size < size) {
        if (x->has_stage[i])
            spw__vk_buffer_destroy(ctx, &x->stage[i]);
        x->has_stage[i] = false;
        /* Whole 64 KiB: the next batch of another size rarely needs a new one. */
        if ((rc = spw__vk_buffer_create(ctx, round_up(size, 1 << 16), true, &x->stage[i])))
            return rc;
        x->has_stage[i] = true;
    }
    if (upload)
        memcpy(x->stage[i].mem.map, src, size);
    VkCommandBuffer cmd = x->cmd[i];
    VkCommandBufferBeginInfo bi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
        .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
    };
    if ((rc = spw__vk_check(f->vkBeginCommandBuffer(cmd, &bi), "vkBeginCommandBuffer")))
        return rc;
    VkBufferCopy region = {
        .srcOffset = upload ? 0 : off,
        .dstOffset = upload ? off : 0,
        .size = size,
    };
    if (upload)
        f->vkCmdCopyBuffer(cmd, x->stage[i].buf, dev->buf, 1, &region);
    else
        f->vkCmdCopyBuffer(cmd, dev->buf, x->stage[i].buf, 1, &region);
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_HOST_READ_BIT | VK_ACCESS_SHADER_READ_BIT,
    };
    f->vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT,
                            VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1,
                            &mb, 0, NULL, 0, NULL);
    if ((rc = spw__vk_check(f->vkEndCommandBuffer(cmd), "vkEndCommandBuffer")) ||
        (rc = spw__vk_submit_wait(ctx, cmd, x->fence[i], NULL)))
        return rc;
    if (!upload)
        memcpy(dst, x->stage[i].mem.map, size);
    return 0;
}

/* Device peak: peak.comp (chains of FMAs) timed by the device's timestamps
 * (the host clock where it has none), grown until a run is long enough to
 * time, best of a few runs. */
#include <stdio.h>
#include <string.h>

#include "drivers/vulkan/vk_internal.h"
#include "shaders/spw_vk_shaders.h"

#define PEAK_WG 64
#define PEAK_ITERS 1024
#define PEAK_FLOP_PER_INV (8.0 * 8.0 * PEAK_ITERS) /* 8 chains of vec4 FMAs */
#define PEAK_MIN_NS 20000000ull                    /* a run this long is timed well */
#define PEAK_RUNS 3

typedef struct peak_run {
    spw_vk_ctx *ctx;
    VkCommandPool pool;
    VkCommandBuffer cmd;
    VkFence fence;
    VkQueryPool q;
    VkDescriptorPool dpool;
    VkDescriptorSet set;
    spw_vk_buffer out;
    bool has_out;
} peak_run;

static void run_free(peak_run *r)
{
    const spw_vk_fns *f = spw__vk_fns();
    spw_vk_ctx *ctx = r->ctx;
    if (r->q)
        f->vkDestroyQueryPool(ctx->dev, r->q, NULL);
    if (r->fence)
        f->vkDestroyFence(ctx->dev, r->fence, NULL);
    if (r->pool)
        f->vkDestroyCommandPool(ctx->dev, r->pool, NULL);
    if (r->dpool)
        f->vkDestroyDescriptorPool(ctx->dev, r->dpool, NULL);
    if (r->has_out)
        spw__vk_buffer_destroy(ctx, &r->out);
}

static int run_init(spw_vk_ctx *ctx, peak_run *r)
{
    const spw_vk_fns *f = spw__vk_fns();
    memset(r, 0, sizeof(*r));
    r->ctx = ctx;
    VkCommandPoolCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = (uint32_t)ctx->info.compute_family,
    };
    int rc;
    if ((rc = spw__vk_check(f->vkCreateCommandPool(ctx->dev, &pci, NULL, &r->pool),
                            "vkCreateCommandPool")))
        return rc;
    VkCommandBufferAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = r->pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    if ((rc = spw__vk_check(f->vkAllocateCommandBuffers(ctx->dev, &ai, &r->cmd),
                            "vkAllocateCommandBuffers")) ||
        (rc = spw__vk_fence_create(ctx, &r->fence)))
        return rc;
    if (ctx->info.timestamp_bits) {
        VkQueryPoolCreateInfo qci = {
            .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
            .queryType = VK_QUERY_TYPE_TIMESTAMP,
            .queryCount = 2,
        };
        if ((rc = spw__vk_check(f->vkCreateQueryPool(ctx->dev, &qci, NULL, &r->q),
                                "vkCreateQueryPool")))
            return rc;
    }
    if ((rc = spw__vk_buffer_create(ctx, 256, false, &r->out)))
        return rc;
    r->has_out = true;
    VkDescriptorPoolSize ps = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, SPW_VK_BINDINGS};
    VkDescriptorPoolCreateInfo dci = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
        .maxSets = 1,
        .poolSizeCount = 1,
        .pPoolSizes = &ps,
    };
    if ((rc = spw__vk_check(f->vkCreateDescriptorPool(ctx->dev, &dci, NULL, &r->dpool),
                            "vkCreateDescriptorPool")))
        return rc;
    VkDescriptorSetAllocateInfo sai = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
        .descriptorPool = r->dpool,
        .descriptorSetCount = 1,
        .pSetLayouts = &ctx->dsl,
    };
    if ((rc = spw__vk_check(f->vkAllocateDescriptorSets(ctx->dev, &sai, &r->set),
                            "vkAllocateDescriptorSets")))
        return rc;
    /* The shared layout has four bindings; one small buffer fills them all. */
    VkDescriptorBufferInfo bi = {r->out.buf, 0, VK_WHOLE_SIZE};
    VkWriteDescriptorSet w[SPW_VK_BINDINGS];
    for (uint32_t i = 0; i < SPW_VK_BINDINGS; i++)
        w[i] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
            .dstSet = r->set,
            .dstBinding = i,
            .descriptorCount = 1,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .pBufferInfo = &bi,
        };
    f->vkUpdateDescriptorSets(ctx->dev, SPW_VK_BINDINGS, w, 0, NULL);
    return 0;
}

/* One dispatch of gx x gy workgroups; *ns its time. */
static int run_once(peak_run *r, VkPipeline pipe, uint32_t gx, uint32_t gy, uint64_t *ns)
{
    const spw_vk_fns *f = spw__vk_fns();
    spw_vk_ctx *ctx = r->ctx;
    VkCommandBufferBeginInfo bi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
        .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
    };
    int rc = spw__vk_check(f->vkBeginCommandBuffer(r->cmd, &bi), "vkBeginCommandBuffer");
    if (rc)
        return rc;
    if (r->q) {
        f->vkCmdResetQueryPool(r->cmd, r->q, 0, 2);
        f->vkCmdWriteTimestamp(r->cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, r->q, 0);
    }
    uint32_t push[SPW_VK_PUSH_WORDS] = {0};
    f->vkCmdBindPipeline(r->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
    f->vkCmdBindDescriptorSets(r->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, ctx->layout, 0, 1, &r->set,
                               0, NULL);
    f->vkCmdPushConstants(r->cmd, ctx->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof(push), push);
    f->vkCmdDispatch(r->cmd, gx, gy, 1);
    if (r->q)
        f->vkCmdWriteTimestamp(r->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, r->q, 1);
    if ((rc = spw__vk_check(f->vkEndCommandBuffer(r->cmd), "vkEndCommandBuffer")))
        return rc;
    uint64_t t0 = spw__now_ns();
    if ((rc = spw__vk_submit_wait(ctx, r->cmd, r->fence, NULL)))
        return rc;
    *ns = spw__now_ns() - t0;
    uint64_t ts[2];
    if (r->q && f->vkGetQueryPoolResults(ctx->dev, r->q, 0, 2, sizeof(ts), ts, sizeof(uint64_t),
                                         VK_QUERY_RESULT_64_BIT) == VK_SUCCESS) {
        const uint32_t bits = ctx->info.timestamp_bits;
        const uint64_t mask = bits >= 64 ? UINT64_MAX : ((uint64_t)1 << bits) - 1;
        uint64_t dev = (uint64_t)((double)((ts[1] - ts[0]) & mask) * ctx->info.timestamp_period);
        if (dev)
            *ns = dev;
    }
    return 0;
}

static int measure(peak_run *r, int shader, double *gflops)
{
    uint32_t spec[17] = {PEAK_WG, 1, 1};
    spec[16] = PEAK_ITERS;
    VkPipeline pipe;
    int rc = spw__vk_pipeline(r->ctx, shader, spec, 17, &pipe);
    if (rc)
        return rc;
    /* Double the grid until one run takes PEAK_MIN_NS (the first run also
     * warms the pipeline up), then keep the best of PEAK_RUNS. */
    uint64_t groups = 1, ns = 0;
    for (;;) {
        uint32_t gx = (uint32_t)(groups < 65535 ? groups : 65535);
        uint32_t gy = (uint32_t)((groups + gx - 1) / gx);
        if ((rc = run_once(r, pipe, gx, gy, &ns)))
            goto out;
        if (ns >= PEAK_MIN_NS || groups >= (uint64_t)65535 * 64)
            break;
        groups *= ns ? SPW_MIN(8u, SPW_MAX(2u, (unsigned)(PEAK_MIN_NS / ns))) : 8u;
    }
    uint32_t gx = (uint32_t)(groups < 65535 ? groups : 65535);
    uint32_t gy = (uint32_t)((groups + gx - 1) / gx);
    uint64_t best = ns;
    for (int i = 0; i < PEAK_RUNS; i++) {
        if ((rc = run_once(r, pipe, gx, gy, &ns)))
            goto out;
        best = ns < best ? ns : best;
    }
    double flop = (double)gx * gy * PEAK_WG * PEAK_FLOP_PER_INV;
    *gflops = best ? flop / (double)best : 0;
out:
    return rc; /* the pipeline belongs to the device's table */
}

int spw__vk_peak(void *vctx, spw_device_peak *out)
{
    spw_vk_ctx *ctx = vctx;
    memset(out, 0, sizeof(*out));
    snprintf(out->device, sizeof(out->device), "%s", ctx->info.name);
    peak_run r;
    int rc = run_init(ctx, &r);
    if (!rc)
        rc = measure(&r, SPW_VK_SH_PEAK, &out->fp32_gflops);
    if (!rc && ctx->info.fp16_arith)
        rc = measure(&r, SPW_VK_SH_PEAK_F16, &out->fp16_gflops);
    run_free(&r);
    return rc;
}

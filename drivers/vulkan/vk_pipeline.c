/* Vulkan pipelines: created from the embedded SPIR-V with specialisation
 * constants, through a VkPipelineCache that persists on disk so a second
 * process skips the driver's shader compilation. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drivers/vulkan/vk_internal.h"
#include "shaders/spw_vk_shaders.h"

/* $SPW_VULKAN_CACHE_DIR, else $XDG_CACHE_HOME/splitwire, else ~/.cache/splitwire;
 * "" or "off" turns the file off. One file per device and driver version. */
static bool cache_dir(char *buf, size_t size)
{
    const char *dir = getenv("SPW_VULKAN_CACHE_DIR");
    if (dir)
        return *dir && strcmp(dir, "off") && snprintf(buf, size, "%s", dir) < (int)size;
    const char *xdg = getenv("XDG_CACHE_HOME");
    if (xdg && *xdg)
        return snprintf(buf, size, "%s/splitwire", xdg) < (int)size;
    const char *home = getenv("HOME");
    if (home && *home)
        return snprintf(buf, size, "%s/.cache/splitwire", home) < (int)size;
    return false;
}

static void mkdir_p(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        mkdir(path, 0755);
        *p = '/';
    }
    mkdir(path, 0755);
}

/* The header the driver writes first (VkPipelineCacheHeaderVersionOne):
 * data from another device or driver build is ignored rather than passed on. */
static bool header_ok(const spw_vk_ctx *ctx, const unsigned char *data, size_t size,
                      const uint8_t *uuid)
{
    uint32_t h[4];
    if (size < 32)
        return false;
    memcpy(h, data, sizeof(h));
    return h[0] >= 32 && h[1] == VK_PIPELINE_CACHE_HEADER_VERSION_ONE &&
           h[2] == ctx->info.vendor_id && h[3] == ctx->info.device_id &&
           !memcmp(data + 16, uuid, VK_UUID_SIZE);
}

int spw__vk_cache_open(spw_vk_ctx *ctx)
{
    const spw_vk_fns *f = spw__vk_fns();
    VkPhysicalDeviceProperties p;
    f->vkGetPhysicalDeviceProperties(ctx->phys, &p);
    void *data = NULL;
    size_t size = 0;
    char dir[400];
    ctx->cache_path[0] = '\0';
    if (cache_dir(dir, sizeof(dir))) {
        snprintf(ctx->cache_path, sizeof(ctx->cache_path), "%s/vulkan-%04x-%04x-%08x.bin", dir,
                 p.vendorID, p.deviceID, p.driverVersion);
        if (spw__read_file(ctx->cache_path, &data, &size) == 0 &&
            !header_ok(ctx, data, size, p.pipelineCacheUUID)) {
            SPW_LOGI("vulkan: ignoring stale pipeline cache %s", ctx->cache_path);
            spw__free(data);
            data = NULL;
            size = 0;
        }
        spw_error_clear();
    }
    VkPipelineCacheCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
        .initialDataSize = size,
        .pInitialData = data,
    };
    VkResult r = f->vkCreatePipelineCache(ctx->dev, &ci, NULL, &ctx->cache);
    if (r != VK_SUCCESS && data) {
        ci.initialDataSize = 0;
        ci.pInitialData = NULL;
        r = f->vkCreatePipelineCache(ctx->dev, &ci, NULL, &ctx->cache);
    }
    spw__free(data);
    ctx->cache_saved_size = size;
    return spw__vk_check(r, "vkCreatePipelineCache");
}

/* Written whole to a temporary name and renamed, so a concurrent reader never
 * sees half a file. Failures only cost the next process compile time. */
void spw__vk_cache_save(spw_vk_ctx *ctx)
{
    const spw_vk_fns *f = spw__vk_fns();
    if (!ctx->cache_path[0] || !ctx->cache)
        return;
    size_t size = 0;
    if (f->vkGetPipelineCacheData(ctx->dev, ctx->cache, &size, NULL) != VK_SUCCESS ||
        size == ctx->cache_saved_size || !size)
        return;
    void *data = spw__malloc(size);
    if (!data)
        return;
    if (f->vkGetPipelineCacheData(ctx->dev, ctx->cache, &size, data) == VK_SUCCESS) {
        char dir[512], tmp[600];
        snprintf(dir, sizeof(dir), "%s", ctx->cache_path);
        char *slash = strrchr(dir, '/');
        if (slash) {
            *slash = '\0';
            mkdir_p(dir);
        }
        snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", ctx->cache_path, (long)getpid());
        FILE *fp = fopen(tmp, "wb");
        bool ok = fp && fwrite(data, 1, size, fp) == size;
        if (fp)
            ok = !fclose(fp) && ok;
        if (ok && !rename(tmp, ctx->cache_path)) {
            ctx->cache_saved_size = size;
            SPW_LOGD("vulkan: saved %zu bytes of pipeline cache to %s", size, ctx->cache_path);
        } else {
            unlink(tmp);
            SPW_LOGD("vulkan: cannot write %s: %s", ctx->cache_path, strerror(errno));
        }
    }
    spw__free(data);
}

int spw__vk_pipeline(spw_vk_ctx *ctx, int shader, const uint32_t *spec, uint32_t n_spec,
                     VkPipeline *out)
{
    const spw_vk_fns *f = spw__vk_fns();
    const spw_vk_shader *sh = &spw__vk_shaders[shader];
    VkShaderModuleCreateInfo mci = {
        .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
        .codeSize = sh->size,
        .pCode = sh->code,
    };
    VkShaderModule mod;
    int rc =
        spw__vk_check(f->vkCreateShaderModule(ctx->dev, &mci, NULL, &mod), "vkCreateShaderModule");
    if (rc)
        return rc;
    /* Constant i has id i: ids 0-2 are the workgroup size (local_size_*_id). */
    VkSpecializationMapEntry map[64];
    if (n_spec > SPW_ARRAY_SIZE(map))
        n_spec = SPW_ARRAY_SIZE(map);
    for (uint32_t i = 0; i < n_spec; i++)
        map[i] = (VkSpecializationMapEntry){i, i * 4, 4};
    VkSpecializationInfo si = {
        .mapEntryCount = n_spec,
        .pMapEntries = map,
        .dataSize = n_spec * 4,
        .pData = spec,
    };
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage =
            {
                .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                .module = mod,
                .pName = "main",
                .pSpecializationInfo = &si,
            },
        .layout = ctx->layout,
    };
    /* The cache synchronises itself: plans may compile in several threads. */
    rc = spw__vk_check(f->vkCreateComputePipelines(ctx->dev, ctx->cache, 1, &ci, NULL, out),
                       sh->name);
    f->vkDestroyShaderModule(ctx->dev, mod, NULL);
    return rc;
}

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

static int pipes_open(spw_vk_ctx *ctx);

int spw__vk_cache_open(spw_vk_ctx *ctx)
{
    const spw_vk_fns *f = spw__vk_fns();
    int rc = pipes_open(ctx);
    if (rc)
        return rc;
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
    if ((rc = spw__vk_check(r, "vkCreatePipelineCache")))
        spw__vk_pipes_close(ctx);
    return rc;
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

/* The device's pipelines, keyed by (shader, specialisation constants):
 * open addressing on a hash of the key. Each shader's module is created on
 * first use; modules and pipelines live as long as the device, shared by
 * every plan (layers of one shape, batch sizes and workers that meet the
 * same key compile once). */
typedef struct pipe_entry {
    uint64_t hash;
    VkPipeline pipe; /* VK_NULL_HANDLE: an empty slot */
    int shader;
    uint32_t n_spec;
    uint32_t spec[SPW_VK_MAX_SPEC];
} pipe_entry;

struct spw_vk_pipes {
    pthread_mutex_t lock;
    VkShaderModule modules[SPW_VK_SH_COUNT];
    pipe_entry *slots;
    size_t cap, count; /* cap: a power of two, or 0 */
    uint64_t n_modules, n_pipelines;
};

static int pipes_open(spw_vk_ctx *ctx)
{
    spw_vk_pipes *p = spw__calloc(1, sizeof(*p));
    if (!p)
        return spw__error(SPW_ENOMEM, "vulkan: out of memory");
    if (pthread_mutex_init(&p->lock, NULL)) {
        spw__free(p);
        return spw__error(SPW_EINTERNAL, "vulkan: mutex");
    }
    ctx->pipes = p;
    return 0;
}

void spw__vk_pipes_close(spw_vk_ctx *ctx)
{
    const spw_vk_fns *f = spw__vk_fns();
    spw_vk_pipes *p = ctx->pipes;
    if (!p)
        return;
    for (size_t i = 0; i < p->cap; i++)
        if (p->slots[i].pipe)
            f->vkDestroyPipeline(ctx->dev, p->slots[i].pipe, NULL);
    for (int s = 0; s < SPW_VK_SH_COUNT; s++)
        if (p->modules[s])
            f->vkDestroyShaderModule(ctx->dev, p->modules[s], NULL);
    pthread_mutex_destroy(&p->lock);
    spw__free(p->slots);
    spw__free(p);
    ctx->pipes = NULL;
}

void spw__vk_pipes_stats(spw_vk_ctx *ctx, uint64_t *modules, uint64_t *pipelines)
{
    spw_vk_pipes *p = ctx->pipes;
    pthread_mutex_lock(&p->lock);
    *modules = p->n_modules;
    *pipelines = p->n_pipelines;
    pthread_mutex_unlock(&p->lock);
}

/* FNV-1a over the key's words. */
static uint64_t key_hash(int shader, const uint32_t *spec, uint32_t n_spec)
{
    uint64_t h = 0xcbf29ce484222325ull;
    uint32_t words[2] = {(uint32_t)shader, n_spec};
    for (int w = 0; w < 2 + (int)n_spec; w++) {
        uint32_t v = w < 2 ? words[w] : spec[w - 2];
        for (int b = 0; b < 4; b++) {
            h ^= (v >> (8 * b)) & 0xff;
            h *= 0x100000001b3ull;
        }
    }
    return h;
}

/* The slot holding the key, or the empty one where it belongs. */
static pipe_entry *slot_of(spw_vk_pipes *p, uint64_t h, int shader, const uint32_t *spec,
                           uint32_t n_spec)
{
    for (size_t i = (size_t)h & (p->cap - 1);; i = (i + 1) & (p->cap - 1)) {
        pipe_entry *e = &p->slots[i];
        if (!e->pipe || (e->hash == h && e->shader == shader && e->n_spec == n_spec &&
                         !memcmp(e->spec, spec, n_spec * 4)))
            return e;
    }
}

/* Keeps the table at most half full. */
static int reserve(spw_vk_pipes *p)
{
    if (p->cap && (p->count + 1) * 2 <= p->cap)
        return 0;
    size_t cap = p->cap ? p->cap * 2 : 64;
    pipe_entry *old = p->slots, *slots = spw__calloc(cap, sizeof(*slots));
    if (!slots)
        return spw__error(SPW_ENOMEM, "vulkan: out of memory for the pipeline table");
    size_t old_cap = p->cap;
    p->slots = slots;
    p->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].pipe)
            *slot_of(p, old[i].hash, old[i].shader, old[i].spec, old[i].n_spec) = old[i];
    spw__free(old);
    return 0;
}

static int module_of(spw_vk_ctx *ctx, int shader, VkShaderModule *out)
{
    spw_vk_pipes *p = ctx->pipes;
    if (!p->modules[shader]) {
        const spw_vk_shader *sh = &spw__vk_shaders[shader];
        VkShaderModuleCreateInfo mci = {
            .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
            .codeSize = sh->size,
            .pCode = sh->code,
        };
        int rc = spw__vk_check(
            spw__vk_fns()->vkCreateShaderModule(ctx->dev, &mci, NULL, &p->modules[shader]),
            "vkCreateShaderModule");
        if (rc)
            return rc;
        p->n_modules++;
    }
    *out = p->modules[shader];
    return 0;
}

static int create_pipeline(spw_vk_ctx *ctx, int shader, const uint32_t *spec, uint32_t n_spec,
                           VkPipeline *out)
{
    VkShaderModule mod;
    int rc = module_of(ctx, shader, &mod);
    if (rc)
        return rc;
    /* Constant i has id i: ids 0-2 are the workgroup size (local_size_*_id). */
    VkSpecializationMapEntry map[SPW_VK_MAX_SPEC];
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
    return spw__vk_check(
        spw__vk_fns()->vkCreateComputePipelines(ctx->dev, ctx->cache, 1, &ci, NULL, out),
        spw__vk_shaders[shader].name);
}

int spw__vk_pipeline(spw_vk_ctx *ctx, int shader, const uint32_t *spec, uint32_t n_spec,
                     VkPipeline *out)
{
    if (shader < 0 || shader >= SPW_VK_SH_COUNT)
        return spw__error(SPW_EINTERNAL, "vulkan: no shader %d", shader);
    if (n_spec > SPW_VK_MAX_SPEC)
        return spw__error(SPW_EINTERNAL,
                          "vulkan: %s given %u specialisation constants; at most %d are kept",
                          spw__vk_shaders[shader].name, n_spec, SPW_VK_MAX_SPEC);
    spw_vk_pipes *p = ctx->pipes;
    const uint64_t h = key_hash(shader, spec, n_spec);
    /* One lock for lookup and creation: a key another thread is compiling
     * is waited for, not compiled twice. */
    pthread_mutex_lock(&p->lock);
    int rc = reserve(p);
    pipe_entry *e = rc ? NULL : slot_of(p, h, shader, spec, n_spec);
    if (e && !e->pipe) {
        VkPipeline pipe = VK_NULL_HANDLE;
        if (!(rc = create_pipeline(ctx, shader, spec, n_spec, &pipe))) {
            e->hash = h;
            e->shader = shader;
            e->n_spec = n_spec;
            memcpy(e->spec, spec, n_spec * 4);
            e->pipe = pipe;
            p->count++;
            p->n_pipelines++;
        }
    }
    if (!rc)
        *out = e->pipe;
    pthread_mutex_unlock(&p->lock);
    return rc;
}

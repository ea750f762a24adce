/* Vulkan: the loader (dlopen), the instance, device discovery and selection,
 * and one opened device with its queue, memory types and shared layouts. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/vulkan/vk_internal.h"

static spw_vk_fns fns;
static VkInstance instance;
static int instance_rc = 1; /* 1: not tried yet */
static char instance_err[256];
static pthread_once_t instance_once = PTHREAD_ONCE_INIT;

const spw_vk_fns *spw__vk_fns(void)
{
    return &fns;
}

int spw__vk_check(VkResult r, const char *what)
{
    if (r == VK_SUCCESS)
        return 0;
    if (r == VK_ERROR_OUT_OF_HOST_MEMORY || r == VK_ERROR_OUT_OF_DEVICE_MEMORY)
        return spw__error(SPW_ENOMEM, "vulkan: %s: out of memory (VkResult %d)", what, (int)r);
    return spw__error(SPW_EBACKEND, "vulkan: %s failed (VkResult %d)", what, (int)r);
}

static bool has_ext(const VkExtensionProperties *e, uint32_t n, const char *name)
{
    for (uint32_t i = 0; i < n; i++)
        if (!strcmp(e[i].extensionName, name))
            return true;
    return false;
}

/* The handle stays open for the life of the process: the instance and the
 * backend's device outlive every plan, and unloading a driver is unsafe. */
static void open_instance(void)
{
    const char *lib = getenv("SPW_VULKAN_LOADER");
    void *h = dlopen(lib && *lib ? lib : "libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(instance_err, sizeof(instance_err), "no Vulkan loader (%s)", dlerror());
        instance_rc = SPW_ENODEV;
        return;
    }
    fns.vkGetInstanceProcAddr = (PFN_vkGetInstanceProcAddr)dlsym(h, "vkGetInstanceProcAddr");
    if (!fns.vkGetInstanceProcAddr) {
        snprintf(instance_err, sizeof(instance_err), "loader has no vkGetInstanceProcAddr");
        instance_rc = SPW_ENODEV;
        return;
    }
#define SPW__VK_LOAD_GLOBAL(name) fns.name = (PFN_##name)fns.vkGetInstanceProcAddr(NULL, #name);
    SPW_VK_GLOBAL_FNS(SPW__VK_LOAD_GLOBAL)
#undef SPW__VK_LOAD_GLOBAL
    if (!fns.vkCreateInstance || !fns.vkEnumerateInstanceExtensionProperties) {
        snprintf(instance_err, sizeof(instance_err), "loader lacks global entry points");
        instance_rc = SPW_ENODEV;
        return;
    }
    PFN_vkEnumerateInstanceVersion enum_version =
        (PFN_vkEnumerateInstanceVersion)fns.vkGetInstanceProcAddr(NULL,
                                                                  "vkEnumerateInstanceVersion");
    uint32_t version = VK_API_VERSION_1_0;
    if (enum_version)
        enum_version(&version);
    if (version < VK_API_VERSION_1_1) {
        snprintf(instance_err, sizeof(instance_err), "Vulkan 1.1 needed, loader offers %u.%u",
                 VK_API_VERSION_MAJOR(version), VK_API_VERSION_MINOR(version));
        instance_rc = SPW_ENODEV;
        return;
    }
    /* Portability enumeration lets MoltenVK-style drivers show up too. */
    uint32_t n_ext = 0;
    fns.vkEnumerateInstanceExtensionProperties(NULL, &n_ext, NULL);
    VkExtensionProperties *ext = spw__calloc(n_ext ? n_ext : 1, sizeof(*ext));
    if (!ext) {
        instance_rc = SPW_ENOMEM;
        return;
    }
    fns.vkEnumerateInstanceExtensionProperties(NULL, &n_ext, ext);
    const char *want[1];
    uint32_t n_want = 0;
    VkInstanceCreateFlags flags = 0;
    if (has_ext(ext, n_ext, VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {
        want[n_want++] = VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME;
        flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
    }
    spw__free(ext);
    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "splitwire",
        .pEngineName = "splitwire",
        .apiVersion = version >= VK_API_VERSION_1_2 ? VK_API_VERSION_1_2 : VK_API_VERSION_1_1,
    };
    VkInstanceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .flags = flags,
        .pApplicationInfo = &app,
        .enabledExtensionCount = n_want,
        .ppEnabledExtensionNames = want,
    };
    VkResult r = fns.vkCreateInstance(&ci, NULL, &instance);
    if (r != VK_SUCCESS) {
        snprintf(instance_err, sizeof(instance_err), "vkCreateInstance failed (VkResult %d)",
                 (int)r);
        instance_rc = SPW_ENODEV;
        return;
    }
#define SPW__VK_LOAD_INSTANCE(name) \
    fns.name = (PFN_##name)fns.vkGetInstanceProcAddr(instance, #name);
    SPW_VK_INSTANCE_FNS(SPW__VK_LOAD_INSTANCE)
#undef SPW__VK_LOAD_INSTANCE
    if (!fns.vkGetPhysicalDeviceProperties2 || !fns.vkGetDeviceProcAddr) {
        snprintf(instance_err, sizeof(instance_err), "instance lacks Vulkan 1.1 entry points");
        instance_rc = SPW_ENODEV;
        return;
    }
    instance_rc = 0;
}

int spw__vk_instance(VkInstance *out)
{
    pthread_once(&instance_once, open_instance);
    if (instance_rc)
        return instance_rc == SPW_ENODEV ? spw__error(SPW_ENODEV, "%s", instance_err)
                                         : spw__error(instance_rc, "vulkan: creating the instance");
    *out = instance;
    return 0;
}

const char *spw__vk_type_name(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
        return "discrete";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
        return "integrated";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
        return "virtual";
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
        return "cpu";
    default:
        return "other";
    }
}

static void describe(VkPhysicalDevice pd, int index, spw_vk_device_info *d)
{
    memset(d, 0, sizeof(*d));
    d->index = index;
    d->compute_family = -1;

    uint32_t n_ext = 0;
    fns.vkEnumerateDeviceExtensionProperties(pd, NULL, &n_ext, NULL);
    VkExtensionProperties *ext = spw__calloc(n_ext ? n_ext : 1, sizeof(*ext));
    if (ext)
        fns.vkEnumerateDeviceExtensionProperties(pd, NULL, &n_ext, ext);
    else
        n_ext = 0;
    d->ext_host_memory = has_ext(ext, n_ext, VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME);
    bool ext_drm = has_ext(ext, n_ext, VK_EXT_PHYSICAL_DEVICE_DRM_EXTENSION_NAME);
    bool ext_driver = has_ext(ext, n_ext, VK_KHR_DRIVER_PROPERTIES_EXTENSION_NAME);
    spw__free(ext);

    VkPhysicalDeviceProperties base;
    fns.vkGetPhysicalDeviceProperties(pd, &base);
    VkPhysicalDeviceSubgroupProperties sub = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceDriverProperties drv = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES, .pNext = &sub};
    VkPhysicalDeviceDrmPropertiesEXT drm = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRM_PROPERTIES_EXT};
    VkPhysicalDeviceExternalMemoryHostPropertiesEXT host = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_MEMORY_HOST_PROPERTIES_EXT};
    /* Chain only structures whose extension (or core version) is there. */
    void *chain = &sub;
    bool use_drv = ext_driver || base.apiVersion >= VK_API_VERSION_1_2;
    if (use_drv)
        chain = &drv;
    if (ext_drm) {
        drm.pNext = chain;
        chain = &drm;
    }
    if (d->ext_host_memory) {
        host.pNext = chain;
        chain = &host;
    }
    VkPhysicalDeviceProperties2 props = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                         .pNext = chain};
    fns.vkGetPhysicalDeviceProperties2(pd, &props);
    const VkPhysicalDeviceProperties *p = &props.properties;
    snprintf(d->name, sizeof(d->name), "%s", p->deviceName);
    d->type = p->deviceType;
    /* SPW_VULKAN_AS_DISCRETE=1 (tests): every device is taken for a discrete
     * GPU, so a CPU implementation runs the paths only discrete cards take:
     * device-local arena with staging copies, automatic selection, fp16
     * activations and the GPU tuning. */
    const char *as_discrete = getenv("SPW_VULKAN_AS_DISCRETE");
    if (as_discrete && !strcmp(as_discrete, "1")) {
        d->type = VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU;
        d->as_discrete = true;
    }
    d->api_version = p->apiVersion;
    d->driver_version = p->driverVersion;
    d->vendor_id = p->vendorID;
    d->device_id = p->deviceID;
    if (use_drv) {
        snprintf(d->driver_name, sizeof(d->driver_name), "%s", drv.driverName);
        snprintf(d->driver_info, sizeof(d->driver_info), "%s", drv.driverInfo);
    }
    d->subgroup_size = sub.subgroupSize;
    d->subgroup_shuffle = (sub.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                          (sub.supportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT);
    d->max_wg_invocations = p->limits.maxComputeWorkGroupInvocations;
    d->max_storage_range = p->limits.maxStorageBufferRange;
    d->timestamp_period = p->limits.timestampPeriod;
    if (ext_drm) {
        d->has_drm = true;
        d->drm_has_primary = drm.hasPrimary;
        d->drm_has_render = drm.hasRender;
        d->drm_primary_major = drm.primaryMajor;
        d->drm_primary_minor = drm.primaryMinor;
        d->drm_render_major = drm.renderMajor;
        d->drm_render_minor = drm.renderMinor;
    }

    VkPhysicalDevice16BitStorageFeatures s16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
    VkPhysicalDeviceShaderFloat16Int8Features f16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES, .pNext = &s16};
    VkPhysicalDeviceFeatures2 feats = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                       .pNext = &f16};
    fns.vkGetPhysicalDeviceFeatures2(pd, &feats);
    d->fp16_storage = s16.storageBuffer16BitAccess;
    d->fp16_arith = f16.shaderFloat16;

    VkPhysicalDeviceMemoryProperties mp;
    fns.vkGetPhysicalDeviceMemoryProperties(pd, &mp);
    d->n_heaps = mp.memoryHeapCount;
    memcpy(d->heaps, mp.memoryHeaps, sizeof(VkMemoryHeap) * mp.memoryHeapCount);
    const VkMemoryPropertyFlags uni = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT |
                                      VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                      VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    /* A discrete card's small resizable-BAR window is device-local and
     * host-visible too, but not where a whole arena belongs. */
    for (uint32_t i = 0; i < mp.memoryTypeCount; i++)
        if ((mp.memoryTypes[i].propertyFlags & uni) == uni &&
            d->type != VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU)
            d->unified = true;

    uint32_t n_fam = 0;
    fns.vkGetPhysicalDeviceQueueFamilyProperties(pd, &n_fam, NULL);
    VkQueueFamilyProperties fam[16];
    if (n_fam > 16)
        n_fam = 16;
    fns.vkGetPhysicalDeviceQueueFamilyProperties(pd, &n_fam, fam);
    /* Prefer a compute-only family (async compute on GPUs that have one). */
    for (int pass = 0; pass < 2 && d->compute_family < 0; pass++)
        for (uint32_t i = 0; i < n_fam; i++) {
            bool compute = fam[i].queueFlags & VK_QUEUE_COMPUTE_BIT;
            bool gfx = fam[i].queueFlags & VK_QUEUE_GRAPHICS_BIT;
            if (compute && (pass == 1 || !gfx)) {
                d->compute_family = (int)i;
                d->timestamp_bits = fam[i].timestampValidBits;
                break;
            }
        }
}

int spw__vk_list_devices(spw_vk_device_info **out, int *n)
{
    VkInstance inst = VK_NULL_HANDLE; /* set on success; -O3 cannot see that */
    int rc = spw__vk_instance(&inst);
    if (rc)
        return rc;
    uint32_t count = 0;
    VkResult r = fns.vkEnumeratePhysicalDevices(inst, &count, NULL);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE)
        return spw__vk_check(r, "vkEnumeratePhysicalDevices");
    VkPhysicalDevice *pds = spw__calloc(count ? count : 1, sizeof(*pds));
    spw_vk_device_info *d = spw__calloc(count ? count : 1, sizeof(*d));
    if (!pds || !d) {
        spw__free(pds);
        spw__free(d);
        return spw__error(SPW_ENOMEM, "vulkan: out of memory listing devices");
    }
    fns.vkEnumeratePhysicalDevices(inst, &count, pds);
    for (uint32_t i = 0; i < count; i++)
        describe(pds[i], (int)i, &d[i]);
    spw__free(pds);
    *out = d;
    *n = (int)count;
    return 0;
}

static int type_rank(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
        return 0;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
        return 1;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
        return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
        return 3;
    default:
        return 4;
    }
}

/* want: NULL/"" (best type first), a decimal index, a type name, or a
 * case-insensitive substring of the device name. */
int spw__vk_pick(const spw_vk_device_info *devs, int n, const char *want)
{
    int best = -1;
    if (want && *want) {
        char *end;
        long idx = strtol(want, &end, 10);
        if (!*end)
            return idx >= 0 && idx < n && devs[idx].compute_family >= 0 ? (int)idx : -1;
        for (int i = 0; i < n; i++)
            if (devs[i].compute_family >= 0 && !strcasecmp(want, spw__vk_type_name(devs[i].type)))
                return i;
        for (int i = 0; i < n; i++)
            if (devs[i].compute_family >= 0 && strcasestr(devs[i].name, want))
                return i;
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (devs[i].compute_family < 0 || devs[i].api_version < VK_API_VERSION_1_1)
            continue;
        if (best < 0 || type_rank(devs[i].type) < type_rank(devs[best].type))
            best = i;
    }
    return best;
}

/*
 * Workgroup and tile sizes per device. Defaults for now; the entries are the
 * place to record the best values `splitwire bench ops` measures per device.
 * lavapipe runs a subgroup as one SIMD row (8 lanes with AVX2) and a
 * workgroup as one CPU task, so wide workgroups amortise task overhead.
 */
void spw__vk_tuning(const spw_vk_device_info *info, spw_vk_tuning *out)
{
    out->tuned = NULL; /* the tuning file is read at device open */
    out->wg_1d = 64;
    out->wg_conv = 64;
    out->conv_tile_m = 4;
    out->conv_tile_p = 2;
    out->wg_gemm = 64;
    /* GPUs: not measured (no GPU was available); uniform weight loads are
     * cheap there, so no subgroup shuffles. */
    out->wg_row = 64;
    out->row_tile_m = 8;
    out->row_tile_p = 4;
    out->row_wsub = 0;
    out->subgroup = info->subgroup_size ? info->subgroup_size : 1;
    if (info->type == VK_PHYSICAL_DEVICE_TYPE_CPU) {
        /* Register tiles cut the per-lane gathers that dominate on a CPU. */
        out->wg_1d = 128;
        out->wg_conv = 32;
        out->conv_tile_m = 8;
        out->conv_tile_p = 8;
        /* lavapipe: every buffer load is one access per lane, uniform
         * address or not, so weights go through subgroup shuffles and wide
         * channel tiles amortise the input loads (measured with `splitwire
         * bench ops`, docs/VULKAN.md). */
        out->wg_row = 32;
        out->row_tile_m = 24;
        out->row_tile_p = 8;
        out->row_wsub = 1;
    }
    /* SPW_VULKAN_TUNING=wg_conv,tile_m,tile_p overrides the conv entry and
     * SPW_VULKAN_ROW=wg,tile_m,tile_p,wsub the row-tiled one (tile_m 0: off),
     * for measuring candidates with `splitwire bench ops`. */
    const char *e = getenv("SPW_VULKAN_TUNING");
    unsigned wg, tm, tp, ws;
    if (e && sscanf(e, "%u,%u,%u", &wg, &tm, &tp) == 3 && wg && tm && tp && tm <= 16 && tp <= 16) {
        out->wg_conv = wg;
        out->conv_tile_m = tm;
        out->conv_tile_p = tp;
    }
    e = getenv("SPW_VULKAN_ROW");
    if (e && sscanf(e, "%u,%u,%u,%u", &wg, &tm, &tp, &ws) == 4 && wg && tm % 4 == 0 && tm <= 64 &&
        tp && tp <= 32) {
        out->wg_row = wg;
        out->row_tile_m = tm;
        out->row_tile_p = tp;
        out->row_wsub = ws ? 1 : 0;
    }
    if (out->wg_1d > info->max_wg_invocations)
        out->wg_1d = info->max_wg_invocations;
    if (out->wg_conv > info->max_wg_invocations)
        out->wg_conv = info->max_wg_invocations;
    if (out->wg_gemm > info->max_wg_invocations)
        out->wg_gemm = info->max_wg_invocations;
    if (out->wg_row > info->max_wg_invocations)
        out->wg_row = info->max_wg_invocations;
    /* Shuffles need the operation and whole subgroups in every workgroup. */
    if (!info->subgroup_shuffle || out->wg_row % out->subgroup)
        out->row_wsub = 0;
}

static int find_type(const VkPhysicalDeviceMemoryProperties *mp, VkMemoryPropertyFlags want,
                     VkMemoryPropertyFlags avoid)
{
    for (uint32_t i = 0; i < mp->memoryTypeCount; i++) {
        VkMemoryPropertyFlags f = mp->memoryTypes[i].propertyFlags;
        if ((f & want) == want && !(f & avoid))
            return (int)i;
    }
    return -1;
}

static int create_layouts(spw_vk_ctx *ctx)
{
    const spw_vk_fns *f = &fns;
    VkDescriptorSetLayoutBinding b[SPW_VK_BINDINGS];
    for (uint32_t i = 0; i < SPW_VK_BINDINGS; i++)
        b[i] = (VkDescriptorSetLayoutBinding){
            .binding = i,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .descriptorCount = 1,
            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        };
    VkDescriptorSetLayoutCreateInfo dci = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .bindingCount = SPW_VK_BINDINGS,
        .pBindings = b,
    };
    int rc = spw__vk_check(f->vkCreateDescriptorSetLayout(ctx->dev, &dci, NULL, &ctx->dsl),
                           "vkCreateDescriptorSetLayout");
    if (rc)
        return rc;
    VkPushConstantRange pcr = {
        .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        .offset = 0,
        .size = SPW_VK_PUSH_WORDS * 4,
    };
    VkPipelineLayoutCreateInfo lci = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
        .setLayoutCount = 1,
        .pSetLayouts = &ctx->dsl,
        .pushConstantRangeCount = 1,
        .pPushConstantRanges = &pcr,
    };
    rc = spw__vk_check(f->vkCreatePipelineLayout(ctx->dev, &lci, NULL, &ctx->layout),
                       "vkCreatePipelineLayout");
    if (rc) {
        f->vkDestroyDescriptorSetLayout(ctx->dev, ctx->dsl, NULL);
        return rc;
    }
    return 0;
}

int spw__vk_ctx_create(int idx, spw_vk_ctx **out)
{
    VkInstance inst = VK_NULL_HANDLE; /* set on success; -O3 cannot see that */
    int rc = spw__vk_instance(&inst);
    if (rc)
        return rc;
    uint32_t count = 0;
    fns.vkEnumeratePhysicalDevices(inst, &count, NULL);
    if (idx < 0 || (uint32_t)idx >= count)
        return spw__error(SPW_ENODEV, "vulkan: no device %d", idx);
    VkPhysicalDevice *pds = spw__calloc(count, sizeof(*pds));
    spw_vk_ctx *ctx = spw__calloc(1, sizeof(*ctx));
    if (!pds || !ctx) {
        spw__free(pds);
        spw__free(ctx);
        return spw__error(SPW_ENOMEM, "vulkan: out of memory");
    }
    fns.vkEnumeratePhysicalDevices(inst, &count, pds);
    ctx->phys = pds[idx];
    spw__free(pds);
    describe(ctx->phys, idx, &ctx->info);
    spw__vk_tuning(&ctx->info, &ctx->tuning);
    fns.vkGetPhysicalDeviceMemoryProperties(ctx->phys, &ctx->memprops);
    if (ctx->info.compute_family < 0) {
        rc = spw__error(SPW_ENODEV, "vulkan: '%s' has no compute queue", ctx->info.name);
        goto fail_ctx;
    }
    /* fp16 activations (half the memory traffic) where the device has 16-bit
     * storage, except on CPU implementations, where the conversions cost more
     * than the traffic saves (docs/VULKAN.md). SPW_VULKAN_FP16=0/1 forces
     * either; forcing fp16 on a device without it is refused rather than
     * quietly running fp32. */
    const char *h = getenv("SPW_VULKAN_FP16");
    if (h && *h) {
        ctx->use_fp16 = strcmp(h, "0") != 0;
        if (ctx->use_fp16 && !ctx->info.fp16_storage) {
            rc = spw__error(SPW_ENODEV, "vulkan: SPW_VULKAN_FP16=%s but '%s' has no 16-bit storage",
                            h, ctx->info.name);
            goto fail_ctx;
        }
    } else {
        ctx->use_fp16 = ctx->info.fp16_storage && ctx->info.type != VK_PHYSICAL_DEVICE_TYPE_CPU;
    }

    const char *exts[2];
    uint32_t n_exts = 0;
    if (ctx->info.ext_host_memory) {
        exts[n_exts++] = VK_KHR_EXTERNAL_MEMORY_EXTENSION_NAME;
        exts[n_exts++] = VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME;
    }
    /* fp16 arithmetic: for the fp16 peak calibration (vk_peak.c). */
    VkPhysicalDeviceShaderFloat16Int8Features f16a = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
        .shaderFloat16 = ctx->info.fp16_arith,
    };
    VkPhysicalDevice16BitStorageFeatures s16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
        .pNext = &f16a,
        .storageBuffer16BitAccess = ctx->info.fp16_storage,
    };
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = (uint32_t)ctx->info.compute_family,
        .queueCount = 1,
        .pQueuePriorities = &prio,
    };
    VkDeviceCreateInfo dci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .pNext = &s16,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &qci,
        .enabledExtensionCount = n_exts,
        .ppEnabledExtensionNames = exts,
    };
    if ((rc =
             spw__vk_check(fns.vkCreateDevice(ctx->phys, &dci, NULL, &ctx->dev), "vkCreateDevice")))
        goto fail_ctx;
#define SPW__VK_LOAD_DEVICE(name) fns.name = (PFN_##name)fns.vkGetDeviceProcAddr(ctx->dev, #name);
    SPW_VK_DEVICE_FNS(SPW__VK_LOAD_DEVICE)
    SPW_VK_OPTIONAL_DEVICE_FNS(SPW__VK_LOAD_DEVICE)
#undef SPW__VK_LOAD_DEVICE
    if (!fns.vkQueueSubmit || !fns.vkCreateComputePipelines) {
        rc = spw__error(SPW_ENODEV, "vulkan: device entry points missing");
        goto fail_device;
    }
    fns.vkGetDeviceQueue(ctx->dev, (uint32_t)ctx->info.compute_family, 0, &ctx->queue);

    /* Memory types: device-local for arenas and weights; host-visible
     * coherent for staging. Unified devices map the arena directly. */
    const VkMemoryPropertyFlags hv =
        VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    int th = find_type(&ctx->memprops, hv | VK_MEMORY_PROPERTY_HOST_CACHED_BIT, 0);
    if (th < 0)
        th = find_type(&ctx->memprops, hv, 0);
    int td = -1;
    if (ctx->info.unified) {
        td = find_type(&ctx->memprops, hv | VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
        ctx->map_arena = td >= 0;
    }
    if (td < 0)
        td = find_type(&ctx->memprops, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
    if (td < 0)
        td = find_type(&ctx->memprops, 0, 0);
    if (th < 0 || td < 0) {
        rc = spw__error(SPW_ENODEV, "vulkan: no usable memory types on '%s'", ctx->info.name);
        goto fail_device;
    }
    ctx->type_host = (uint32_t)th;
    ctx->type_device = (uint32_t)td;
    if (ctx->info.ext_host_memory && fns.vkGetMemoryHostPointerPropertiesEXT) {
        VkPhysicalDeviceExternalMemoryHostPropertiesEXT hp = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_MEMORY_HOST_PROPERTIES_EXT};
        VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                          .pNext = &hp};
        fns.vkGetPhysicalDeviceProperties2(ctx->phys, &p2);
        ctx->import_align = hp.minImportedHostPointerAlignment;
    }

    if (pthread_mutex_init(&ctx->lock, NULL)) {
        rc = spw__error(SPW_EINTERNAL, "vulkan: mutex");
        goto fail_device;
    }
    VkCommandPoolCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = (uint32_t)ctx->info.compute_family,
    };
    if ((rc = spw__vk_check(fns.vkCreateCommandPool(ctx->dev, &pci, NULL, &ctx->pool),
                            "vkCreateCommandPool")))
        goto fail_mutex;
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    if ((rc = spw__vk_check(fns.vkCreateFence(ctx->dev, &fci, NULL, &ctx->fence), "vkCreateFence")))
        goto fail_pool;
    VkCommandBufferAllocateInfo cai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = ctx->pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    if ((rc = spw__vk_check(fns.vkAllocateCommandBuffers(ctx->dev, &cai, &ctx->xfer),
                            "vkAllocateCommandBuffers")))
        goto fail_fence;
    if ((rc = create_layouts(ctx)))
        goto fail_fence;
    if ((rc = spw__vk_cache_open(ctx)))
        goto fail_layouts;
    spw__vk_tune_open(ctx);
    *out = ctx;
    return 0;

fail_layouts:
    fns.vkDestroyPipelineLayout(ctx->dev, ctx->layout, NULL);
    fns.vkDestroyDescriptorSetLayout(ctx->dev, ctx->dsl, NULL);
fail_fence:
    fns.vkDestroyFence(ctx->dev, ctx->fence, NULL);
fail_pool:
    fns.vkDestroyCommandPool(ctx->dev, ctx->pool, NULL);
fail_mutex:
    pthread_mutex_destroy(&ctx->lock);
fail_device:
    fns.vkDestroyDevice(ctx->dev, NULL);
fail_ctx:
    spw__free(ctx);
    return rc;
}

void spw__vk_ctx_destroy(spw_vk_ctx *ctx)
{
    if (!ctx)
        return;
    fns.vkDeviceWaitIdle(ctx->dev);
    spw__vk_cache_save(ctx);
    spw__vk_tune_free(ctx->tuned);
    fns.vkDestroyPipelineCache(ctx->dev, ctx->cache, NULL);
    if (ctx->has_staging)
        spw__vk_buffer_destroy(ctx, &ctx->staging);
    spw__vk_free_blocks(ctx);
    spw__vk_pipes_close(ctx);
    fns.vkDestroyPipelineLayout(ctx->dev, ctx->layout, NULL);
    fns.vkDestroyDescriptorSetLayout(ctx->dev, ctx->dsl, NULL);
    fns.vkDestroyFence(ctx->dev, ctx->fence, NULL);
    fns.vkDestroyCommandPool(ctx->dev, ctx->pool, NULL);
    pthread_mutex_destroy(&ctx->lock);
    fns.vkDestroyDevice(ctx->dev, NULL);
    spw__free(ctx);
}

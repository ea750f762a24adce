/* Vulkan compute backend: state shared by the sources under drivers/vulkan/. Not installed.
 *
 * The loader is opened with dlopen at run time, so the library neither links
 * nor needs libvulkan; every entry point below is a function pointer filled
 * from vkGetInstanceProcAddr / vkGetDeviceProcAddr. */
#ifndef SPW_DRIVERS_VK_INTERNAL_H
#define SPW_DRIVERS_VK_INTERNAL_H

#define VK_NO_PROTOTYPES
#include <pthread.h>
#include <vulkan/vulkan.h>

#include "drivers/backend.h"

/* Entry points by level. The optional ones may stay NULL (extension absent). */
#define SPW_VK_GLOBAL_FNS(X) \
    X(vkCreateInstance)      \
    X(vkEnumerateInstanceExtensionProperties)

#define SPW_VK_INSTANCE_FNS(X)                  \
    X(vkDestroyInstance)                        \
    X(vkEnumeratePhysicalDevices)               \
    X(vkGetPhysicalDeviceProperties)            \
    X(vkGetPhysicalDeviceProperties2)           \
    X(vkGetPhysicalDeviceFeatures2)             \
    X(vkGetPhysicalDeviceMemoryProperties)      \
    X(vkGetPhysicalDeviceQueueFamilyProperties) \
    X(vkEnumerateDeviceExtensionProperties)     \
    X(vkCreateDevice)                           \
    X(vkGetDeviceProcAddr)

#define SPW_VK_DEVICE_FNS(X)         \
    X(vkDestroyDevice)               \
    X(vkGetDeviceQueue)              \
    X(vkAllocateMemory)              \
    X(vkFreeMemory)                  \
    X(vkMapMemory)                   \
    X(vkUnmapMemory)                 \
    X(vkCreateBuffer)                \
    X(vkDestroyBuffer)               \
    X(vkGetBufferMemoryRequirements) \
    X(vkBindBufferMemory)            \
    X(vkCreateShaderModule)          \
    X(vkDestroyShaderModule)         \
    X(vkCreatePipelineCache)         \
    X(vkGetPipelineCacheData)        \
    X(vkDestroyPipelineCache)        \
    X(vkCreateComputePipelines)      \
    X(vkDestroyPipeline)             \
    X(vkCreatePipelineLayout)        \
    X(vkDestroyPipelineLayout)       \
    X(vkCreateDescriptorSetLayout)   \
    X(vkDestroyDescriptorSetLayout)  \
    X(vkCreateDescriptorPool)        \
    X(vkDestroyDescriptorPool)       \
    X(vkAllocateDescriptorSets)      \
    X(vkUpdateDescriptorSets)        \
    X(vkCreateCommandPool)           \
    X(vkDestroyCommandPool)          \
    X(vkAllocateCommandBuffers)      \
    X(vkFreeCommandBuffers)          \
    X(vkBeginCommandBuffer)          \
    X(vkEndCommandBuffer)            \
    X(vkCmdBindPipeline)             \
    X(vkCmdBindDescriptorSets)       \
    X(vkCmdPushConstants)            \
    X(vkCmdDispatch)                 \
    X(vkCmdPipelineBarrier)          \
    X(vkCmdCopyBuffer)               \
    X(vkCmdResetQueryPool)           \
    X(vkCmdWriteTimestamp)           \
    X(vkCreateQueryPool)             \
    X(vkDestroyQueryPool)            \
    X(vkGetQueryPoolResults)         \
    X(vkCreateFence)                 \
    X(vkDestroyFence)                \
    X(vkResetFences)                 \
    X(vkWaitForFences)               \
    X(vkQueueSubmit)                 \
    X(vkDeviceWaitIdle)

#define SPW_VK_OPTIONAL_DEVICE_FNS(X) X(vkGetMemoryHostPointerPropertiesEXT)

typedef struct spw_vk_fns {
    PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr;
#define SPW__VK_FN_FIELD(name) PFN_##name name;
    SPW_VK_GLOBAL_FNS(SPW__VK_FN_FIELD)
    SPW_VK_INSTANCE_FNS(SPW__VK_FN_FIELD)
    SPW_VK_DEVICE_FNS(SPW__VK_FN_FIELD)
    SPW_VK_OPTIONAL_DEVICE_FNS(SPW__VK_FN_FIELD)
#undef SPW__VK_FN_FIELD
} spw_vk_fns;

/* What `splitwire device list` and the selection need to know of a device. */
typedef struct spw_vk_device_info {
    int index; /* in vkEnumeratePhysicalDevices order */
    char name[VK_MAX_PHYSICAL_DEVICE_NAME_SIZE];
    VkPhysicalDeviceType type;
    uint32_t api_version, driver_version, vendor_id, device_id;
    char driver_name[VK_MAX_DRIVER_NAME_SIZE];
    char driver_info[VK_MAX_DRIVER_INFO_SIZE];
    uint32_t subgroup_size;
    bool subgroup_shuffle; /* subgroupShuffle in compute shaders */
    bool fp16_storage;     /* storageBuffer16BitAccess */
    bool fp16_arith;       /* shaderFloat16 */
    bool ext_host_memory;
    bool has_drm; /* VK_EXT_physical_device_drm answered */
    bool drm_has_primary, drm_has_render;
    int64_t drm_primary_major, drm_primary_minor, drm_render_major, drm_render_minor;
    uint32_t n_heaps;
    VkMemoryHeap heaps[VK_MAX_MEMORY_HEAPS];
    uint32_t max_wg_invocations;
    uint64_t max_storage_range;
    bool unified;       /* a memory type is device-local and host-visible-coherent */
    bool as_discrete;   /* SPW_VULKAN_AS_DISCRETE: taken for a discrete GPU */
    int compute_family; /* -1 when the device has no compute queue */
    uint32_t timestamp_bits;
    float timestamp_period;
} spw_vk_device_info;

struct spw_vk_tuned;

/* Workgroup and tile sizes for one device; see spw__vk_tuning(). */
typedef struct spw_vk_tuning {
    uint32_t wg_1d;       /* element-wise, copies, pools */
    uint32_t wg_conv;     /* conv: output pixels per workgroup */
    uint32_t conv_tile_m; /* conv: output channels per invocation */
    uint32_t conv_tile_p; /* conv: output pixels per invocation */
    uint32_t wg_gemm;
    /* Row-tiled direct conv (convrow.comp, see vk_conv.c); row_tile_m 0 turns
     * it off (every conv then takes conv.comp / conv1x1.comp). */
    uint32_t wg_row;     /* lanes per workgroup, a multiple of the subgroup */
    uint32_t row_tile_m; /* output channels per invocation (preferred) */
    uint32_t row_tile_p; /* pixels of one output row per invocation (preferred) */
    uint32_t row_wsub;   /* 1: weights loaded once per subgroup, shuffled round */
    uint32_t subgroup;   /* the device's subgroup size */
    /* Per conv shape, row-kernel entries measured by `bench ops --tune`
     * (vk_tune.c), taking precedence over the four above; NULL: none. */
    const struct spw_vk_tuned *tuned;
} spw_vk_tuning;

/* Sub-allocation of one VkDeviceMemory block. */
typedef struct spw_vk_block spw_vk_block;
typedef struct spw_vk_alloc {
    spw_vk_block *block;
    VkDeviceSize offset, size;
    void *map; /* host address when the block is mapped, else NULL */
} spw_vk_alloc;

/* One buffer: a VkBuffer bound to a sub-allocation. */
typedef struct spw_vk_buffer {
    VkBuffer buf;
    spw_vk_alloc mem;
    bool imported;          /* memory imported from a host allocation */
    VkDeviceMemory own_mem; /* imported memory, owned by this buffer */
    void *host_copy;        /* the host allocation behind an import */
    VkDeviceSize size;
} spw_vk_buffer;

struct spw_vk_ctx;
typedef struct spw_vk_pipes spw_vk_pipes;

/* A buffer or plan that holds the device, linked into spw_vk_ctx.live. When
 * one outlives the process-exit hook, the hook calls close() to destroy its
 * Vulkan objects and marks it dead: its later release frees host memory only
 * and its later use fails, so no Vulkan call is made once the driver's own
 * exit handlers may have run (the NVIDIA driver's do). */
typedef struct spw_vk_live {
    struct spw_vk_live *prev, *next;
    void (*close)(struct spw_vk_live *self, struct spw_vk_ctx *ctx);
    bool dead;
} spw_vk_live;

typedef struct spw_vk_ctx {
    spw_vk_device_info info;
    VkPhysicalDevice phys;
    VkDevice dev;
    VkQueue queue;
    VkPhysicalDeviceMemoryProperties memprops;
    uint32_t type_device;  /* memory type for device-only buffers */
    uint32_t type_host;    /* host-visible coherent type (staging, mapped buffers) */
    bool map_arena;        /* arena buffers live in host-visible memory */
    bool use_fp16;         /* plans keep f32 activations as fp16 (SPW_VULKAN_FP16) */
    uint64_t import_align; /* minImportedHostPointerAlignment, 0 without the extension */
    spw_vk_tuning tuning;
    pthread_mutex_t lock; /* queue, allocator, staging, pipeline cache, live list */
    /* Live buffers and plans (each holds the device). The backend's fini
     * closes those still alive before it destroys the device. */
    struct spw_vk_live *live;
    spw_vk_block *blocks;
    VkCommandPool pool;
    VkFence fence;
    /* Staging for devices whose arena is not host-visible. */
    spw_vk_buffer staging;
    bool has_staging;
    VkCommandBuffer xfer;
    /* Shared by every pipeline: set 0 = {arena f32, weights f32, arena u32,
     * fp16 shadow of the arena}. */
    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkPipelineCache cache;
    struct spw_vk_pipes *pipes; /* the device's modules and pipelines (vk_pipeline.c) */
    size_t cache_saved_size;
    char cache_path[512];
    struct spw_vk_tuned *tuned; /* the tuning file's table (tuning.tuned), or NULL */
} spw_vk_ctx;

/* Storage-buffer bindings of set 0 (common.glsl). */
#define SPW_VK_BINDINGS 4

/* Push constants: 16 words, the same block in every shader (common.glsl). */
#define SPW_VK_PUSH_WORDS 16

/* The process-wide loader and instance (vk_device.c). */
const spw_vk_fns *spw__vk_fns(void);
/* Opens the loader and creates the instance once; SPW_ENODEV with a detail when absent. */
int spw__vk_instance(VkInstance *out);
/* Describes every physical device (caller frees *out with spw__free). */
int spw__vk_list_devices(spw_vk_device_info **out, int *n);
/* The index that SPW_VULKAN_DEVICE or the default preference picks, or -1. */
int spw__vk_pick(const spw_vk_device_info *devs, int n, const char *want);
const char *spw__vk_type_name(VkPhysicalDeviceType t);
void spw__vk_tuning(const spw_vk_device_info *info, spw_vk_tuning *out);
/* The backend's describe slot (vk_describe.c). */
int spw__vk_describe(spw_device_info **out, int *n);
/* Opens device idx: queue, memory types, layouts, pipeline cache. */
int spw__vk_ctx_create(int idx, spw_vk_ctx **out);
void spw__vk_ctx_destroy(spw_vk_ctx *ctx);
int spw__vk_check(VkResult r, const char *what);

/* Memory (vk_memory.c). */
int spw__vk_alloc(spw_vk_ctx *ctx, VkMemoryRequirements req, uint32_t type, spw_vk_alloc *out);
void spw__vk_free(spw_vk_ctx *ctx, spw_vk_alloc *a);
void spw__vk_free_blocks(spw_vk_ctx *ctx);
int spw__vk_buffer_create(spw_vk_ctx *ctx, VkDeviceSize size, bool host, spw_vk_buffer *out);
/* Wraps page-aligned host memory as a buffer (VK_EXT_external_memory_host). */
int spw__vk_buffer_import(spw_vk_ctx *ctx, void *host, VkDeviceSize size, spw_vk_buffer *out);
void spw__vk_buffer_destroy(spw_vk_ctx *ctx, spw_vk_buffer *b);
/* Copies through the staging buffer (device-only memory). Takes ctx->lock. */
int spw__vk_staged_copy(spw_vk_ctx *ctx, spw_vk_buffer *dst, VkDeviceSize off, const void *src,
                        void *dst_host, VkDeviceSize size, bool upload);

/* A model's uploaded constants, shared by its plans (vk_weights.c): get
 * returns a buffer holding data (bytes), the one an earlier plan uploaded
 * when the bytes are the same, and an entry to put back when the plan goes. */
typedef struct spw_vk_weights spw_vk_weights;
int spw__vk_weights_create(spw_vk_weights **out);
void spw__vk_weights_free(spw_vk_weights *w);
int spw__vk_weights_get(spw_vk_weights *w, spw_vk_ctx *ctx, const void *data, size_t bytes,
                        spw_vk_buffer *out, void **entry);
void spw__vk_weights_put(spw_vk_weights *w, spw_vk_ctx *ctx, void *entry);
/* Distinct buffers in use (tests). */
int spw__vk_weights_count(spw_vk_weights *w);

/* Convolution kernel choice (vk_conv.c). */
typedef enum spw_vk_conv_kernel {
    SPW_VK_CONV_GENERIC,   /* conv.comp: any conv, transposed too */
    SPW_VK_CONV_POINTWISE, /* conv1x1.comp */
    SPW_VK_CONV_ROW,       /* convrow.comp: row-tiled direct conv */
} spw_vk_conv_kernel;

typedef struct spw_vk_conv_shape {
    uint32_t n, c, h, w, m, oh, ow, kh, kw, group;
    uint32_t sh, sw, dh, dw, pad_t, pad_l, pad_b, pad_r;
    bool transposed;
} spw_vk_conv_shape;

typedef struct spw_vk_conv_choice {
    spw_vk_conv_kernel kernel;
    uint32_t wg;             /* lanes per workgroup (x) */
    uint32_t tile_m, tile_p; /* output channels and pixels per invocation */
    uint32_t wsub;           /* row and pointwise: weights through subgroup shuffles */
    uint32_t groups[3];      /* the dispatch */
} spw_vk_conv_choice;

/* Picks the kernel and tile for a conv of shape s under tuning t; the row
 * kernel when the shape allows it and the tuning has it on, else the
 * generic or pointwise one. SPW_VULKAN_CONV=generic turns the row kernel and
 * the shuffled pointwise weights off (the kernels as they were before them,
 * for comparisons). */
void spw__vk_conv_choose(const spw_vk_tuning *t, const spw_vk_conv_shape *s,
                         spw_vk_conv_choice *out);

/* Measured conv settings (vk_tune.c): a table of conv shapes (batch aside)
 * with the row-kernel entries of spw_vk_tuning that ran them fastest,
 * stored as text next to the pipeline cache, one file per device and
 * driver version. */
typedef struct spw_vk_tune_entry {
    uint32_t key[17]; /* c h w m kh kw group sh sw dh dw pad_t pad_l pad_b pad_r transposed 0 */
    uint32_t wg_row, row_tile_m, row_tile_p, row_wsub;
} spw_vk_tune_entry;
typedef struct spw_vk_tuned {
    int n;
    spw_vk_tune_entry *e;
} spw_vk_tuned;
void spw__vk_tune_key(const spw_vk_conv_shape *s, uint32_t key[17]);
/* The tuning t with the entry for shape s applied: *scratch when there is
 * one (or a candidate forced by a tuning run in this thread), else t. */
const spw_vk_tuning *spw__vk_tune_apply(const spw_vk_tuning *t, const spw_vk_conv_shape *s,
                                        spw_vk_tuning *scratch);
/* Reads a tuning file written for this device (info's ids and driver
 * version). A missing file is an empty table; a malformed one, or one for
 * another device, is ignored with a warning (*out NULL, returns 0). */
int spw__vk_tune_load(const char *path, const spw_vk_device_info *info, spw_vk_tuned **out);
int spw__vk_tune_save(const char *path, const spw_vk_device_info *info, const spw_vk_tuned *t);
void spw__vk_tune_free(spw_vk_tuned *t);
/* The file for ctx's device ("" when the cache directory is off). */
void spw__vk_tune_path(const spw_vk_ctx *ctx, char *buf, size_t size);
/* At device open: loads the file into ctx->tuned and ctx->tuning.tuned. */
void spw__vk_tune_open(spw_vk_ctx *ctx);
/* During a tuning run: build_conv reports each conv step's shape. */
void spw__vk_tune_note(int step, const spw_vk_conv_shape *s);

/* Pipelines and the cache file (vk_pipeline.c). */
int spw__vk_cache_open(spw_vk_ctx *ctx);
void spw__vk_cache_save(spw_vk_ctx *ctx);
/* Destroys the device's pipelines and shader modules (at device close). */
void spw__vk_pipes_close(spw_vk_ctx *ctx);

/* Specialisation constants a pipeline may take (the key's length). */
#define SPW_VK_MAX_SPEC 40

/* The device's pipeline for (shader, spec[0..n_spec)): created on first use
 * (its shader module once per device), then shared; owned by the device,
 * never destroyed by the caller. More than SPW_VK_MAX_SPEC constants is
 * SPW_EINTERNAL. Thread-safe. */
int spw__vk_pipeline(spw_vk_ctx *ctx, int shader, const uint32_t *spec, uint32_t n_spec,
                     VkPipeline *out);
/* Shader modules and pipelines created so far (tests). */
void spw__vk_pipes_stats(spw_vk_ctx *ctx, uint64_t *modules, uint64_t *pipelines);

/* Batches in flight (vk_slots.c): each plan submits with its own fence and
 * each arena copies through its own staging, so only vkQueueSubmit holds
 * ctx->lock and one worker's transfers overlap another's compute. */
int spw__vk_fence_create(spw_vk_ctx *ctx, VkFence *out);
/* Submits cmd, signalling fence, and waits for it outside the lock;
 * *submitted (may be NULL): when the queue took it (spw__now_ns). */
int spw__vk_submit_wait(spw_vk_ctx *ctx, VkCommandBuffer cmd, VkFence fence, uint64_t *submitted);
/* An arena's transfer state: its own command pool, upload and download
 * staging buffers (host-visible, grown on demand) and fences. */
typedef struct spw_vk_xfer spw_vk_xfer;
int spw__vk_xfer_create(spw_vk_ctx *ctx, spw_vk_xfer **out);
void spw__vk_xfer_destroy(spw_vk_ctx *ctx, spw_vk_xfer *x);
/* Like spw__vk_staged_copy, through x: upload copies src to dev at off,
 * download copies dev at off to dst. One thread at a time per x. */
int spw__vk_xfer_copy(spw_vk_ctx *ctx, spw_vk_xfer *x, spw_vk_buffer *dev, VkDeviceSize off,
                      const void *src, void *dst, VkDeviceSize size, bool upload);

#endif

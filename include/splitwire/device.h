/* splitwire: the machine's compute devices as the backends see them, and
 * its DRM render and /dev/accel nodes. */
#ifndef SPLITWIRE_DEVICE_H
#define SPLITWIRE_DEVICE_H

#include <stdint.h>

#include "splitwire/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum spw_device_type {
    SPW_DEVICE_OTHER = 0,
    SPW_DEVICE_INTEGRATED_GPU = 1,
    SPW_DEVICE_DISCRETE_GPU = 2,
    SPW_DEVICE_VIRTUAL_GPU = 3,
    SPW_DEVICE_CPU = 4,
} spw_device_type;

/* "integrated", "discrete", "virtual", "cpu" or "other". */
SPW_API const char *spw_device_type_name(spw_device_type type);

/* spw_device_info.features */
#define SPW_DEVICE_FP16_STORAGE 0x01u   /* 16-bit values in storage buffers */
#define SPW_DEVICE_FP16_ARITH 0x02u     /* 16-bit float arithmetic in kernels */
#define SPW_DEVICE_HOST_IMPORT 0x04u    /* runs on host memory without a copy */
#define SPW_DEVICE_UNIFIED_MEMORY 0x08u /* device memory the host can map */
#define SPW_DEVICE_COMPUTE_QUEUE 0x10u  /* can run compute work at all */
#define SPW_DEVICE_TIMESTAMPS 0x20u     /* per-layer GPU times (SPW_PLAN_PROFILE) */
#define SPW_DEVICE_SUBGROUP_SHUFFLE 0x40u
#define SPW_DEVICE_AS_DISCRETE 0x80u /* taken for a discrete GPU (SPW_VULKAN_AS_DISCRETE) */

#define SPW_DEVICE_MAX_HEAPS 16

/* The work sizes the backend chose for a device's kernels (0: not used). */
typedef struct spw_device_kernels {
    uint32_t elementwise;            /* lanes per workgroup: element-wise, copies, pools */
    uint32_t conv_lanes;             /* conv: lanes per workgroup */
    uint32_t conv_tile_channels;     /* conv: output channels per lane */
    uint32_t conv_tile_pixels;       /* conv: output pixels per lane */
    uint32_t gemm;                   /* gemm: lanes per workgroup */
    uint32_t row_conv_lanes;         /* row-tiled conv (0 channels: not used) */
    uint32_t row_conv_tile_channels; /* output channels per lane */
    uint32_t row_conv_tile_pixels;   /* pixels of one output row per lane */
    uint32_t conv_weight_shuffle;    /* 1: weights loaded once per subgroup and shuffled */
} spw_device_kernels;

typedef struct spw_device_info {
    char backend[16]; /* the backend that described it, e.g. "vulkan" */
    int index;        /* in that backend's enumeration (what it selects by) */
    char name[256];
    spw_device_type type;
    int selected; /* 1 for the device the backend runs on */
    unsigned features;
    uint32_t vendor_id, device_id;
    uint32_t api_version[3]; /* major, minor, patch of the device API (Vulkan) */
    char driver[256], driver_info[256];
    uint32_t driver_version;
    uint32_t subgroup_size;
    uint64_t memory_bytes; /* device-local memory in all */
    int n_heaps;
    struct {
        uint64_t bytes;
        int device_local;
    } heaps[SPW_DEVICE_MAX_HEAPS];
    spw_device_kernels kernels;
    /* The DRM render node the device answers to (has_drm: the driver told
     * its device number; drm_node: the matching node, "" when none). */
    int has_drm;
    int64_t drm_render_major, drm_render_minor;
    char drm_node[64];
    /* CPU devices: the SIMD extensions the kernels can use, space-separated
     * as the kernel spells them ("avx2 fma avx512f", "asimd asimddp"), the
     * online cores, and the threads a plan runs on unless told otherwise. */
    char isa[192];
    int cpu_cores;
    int threads;
} spw_device_info;

/* A DRM node (/dev/dri/renderD128, /dev/dri/card0) or accel node (/dev/accel/accel0). */
typedef struct spw_device_node {
    char path[64];
    char kind[8];                  /* "render", "primary" or "accel" */
    char driver[32];               /* kernel driver ("i915", "amdgpu", "ivpu"), "" if unknown */
    int version[3];                /* driver major, minor, patch; -1 if unknown */
    char bus[16];                  /* "pci", "platform", "usb" or "other" */
    char bus_id[96];               /* "0000:03:00.0" (PCI) or the platform device name */
    uint16_t vendor_id, device_id; /* PCI ids, 0 if unknown */
} spw_device_node;

/* A snapshot of the devices every backend built in can describe (whether
 * or not it registered: SPW_DISABLE_BACKENDS does not hide devices) and of
 * the DRM/accel nodes. Devices are not opened. */
typedef struct spw_device_list spw_device_list;

SPW_API int spw_device_list_open(spw_device_list **out);
SPW_API void spw_device_list_free(spw_device_list *list);
/* How listing backend `backend`'s devices went: 0, the status it failed
 * with (*detail says why, e.g. no Vulkan loader), or SPW_ENOENT when no
 * backend of that name that describes devices is built in. */
SPW_API int spw_device_list_status(const spw_device_list *list, const char *backend,
                                   const char **detail);
SPW_API int spw_device_count(const spw_device_list *list);
SPW_API int spw_device_get(const spw_device_list *list, int idx, spw_device_info *out);
SPW_API int spw_device_node_count(const spw_device_list *list);
SPW_API int spw_device_node_get(const spw_device_list *list, int idx, spw_device_node *out);

#ifdef __cplusplus
}
#endif
#endif

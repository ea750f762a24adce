/* The Vulkan backend's describe slot: every physical device as the public
 * spw_device_info, with the one SPW_VULKAN_DEVICE (or the default
 * preference) picks marked and the kernel sizes chosen for each. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/drm/drm.h"
#include "drivers/vulkan/vk_internal.h"

static spw_device_type device_type(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
        return SPW_DEVICE_DISCRETE_GPU;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
        return SPW_DEVICE_INTEGRATED_GPU;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
        return SPW_DEVICE_VIRTUAL_GPU;
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
        return SPW_DEVICE_CPU;
    default:
        return SPW_DEVICE_OTHER;
    }
}

static void fill(const spw_vk_device_info *v, bool selected, const spw_drm_node *nodes, int n_nodes,
                 spw_device_info *d)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->backend, sizeof(d->backend), "vulkan");
    d->index = v->index;
    snprintf(d->name, sizeof(d->name), "%s", v->name);
    d->type = device_type(v->type);
    d->selected = selected;
    d->features = (v->fp16_storage ? SPW_DEVICE_FP16_STORAGE : 0) |
                  (v->fp16_arith ? SPW_DEVICE_FP16_ARITH : 0) |
                  (v->ext_host_memory ? SPW_DEVICE_HOST_IMPORT : 0) |
                  (v->unified ? SPW_DEVICE_UNIFIED_MEMORY : 0) |
                  (v->compute_family >= 0 ? SPW_DEVICE_COMPUTE_QUEUE : 0) |
                  (v->timestamp_bits ? SPW_DEVICE_TIMESTAMPS : 0) |
                  (v->subgroup_shuffle ? SPW_DEVICE_SUBGROUP_SHUFFLE : 0) |
                  (v->as_discrete ? SPW_DEVICE_AS_DISCRETE : 0);
    d->vendor_id = v->vendor_id;
    d->device_id = v->device_id;
    d->api_version[0] = VK_API_VERSION_MAJOR(v->api_version);
    d->api_version[1] = VK_API_VERSION_MINOR(v->api_version);
    d->api_version[2] = VK_API_VERSION_PATCH(v->api_version);
    snprintf(d->driver, sizeof(d->driver), "%s", v->driver_name);
    snprintf(d->driver_info, sizeof(d->driver_info), "%s", v->driver_info);
    d->driver_version = v->driver_version;
    d->subgroup_size = v->subgroup_size;
    for (uint32_t h = 0; h < v->n_heaps && h < SPW_DEVICE_MAX_HEAPS; h++) {
        bool local = (v->heaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) != 0;
        d->heaps[h].bytes = v->heaps[h].size;
        d->heaps[h].device_local = local;
        d->memory_bytes += local ? v->heaps[h].size : 0;
        d->n_heaps++;
    }
    spw_vk_tuning t;
    spw__vk_tuning(v, &t);
    d->kernels = (spw_device_kernels){.elementwise = t.wg_1d,
                                      .conv_lanes = t.wg_conv,
                                      .conv_tile_channels = t.conv_tile_m,
                                      .conv_tile_pixels = t.conv_tile_p,
                                      .gemm = t.wg_gemm,
                                      .row_conv_lanes = t.wg_row,
                                      .row_conv_tile_channels = t.row_tile_m,
                                      .row_conv_tile_pixels = t.row_tile_p,
                                      .conv_weight_shuffle = t.row_wsub};
    d->has_drm = v->has_drm;
    d->drm_render_major = v->drm_render_major;
    d->drm_render_minor = v->drm_render_minor;
    int node = v->has_drm && v->drm_has_render
                   ? spw__drm_find(nodes, n_nodes, v->drm_render_major, v->drm_render_minor)
                   : -1;
    if (node >= 0)
        snprintf(d->drm_node, sizeof(d->drm_node), "%s", nodes[node].path);
}

int spw__vk_describe(spw_device_info **out, int *n)
{
    spw_vk_device_info *devs = NULL;
    int count = 0;
    int rc = spw__vk_list_devices(&devs, &count);
    if (rc)
        return rc;
    spw_device_info *d = spw__calloc((size_t)(count ? count : 1), sizeof(*d));
    if (!d) {
        spw__free(devs);
        return spw__error(SPW_ENOMEM, "out of memory for %d device descriptions", count);
    }
    /* Without a node list the devices are still described, unmatched. */
    spw_drm_node *nodes = NULL;
    int n_nodes = 0;
    if (spw__drm_list(&nodes, &n_nodes))
        n_nodes = 0;
    int pick = spw__vk_pick(devs, count, getenv("SPW_VULKAN_DEVICE"));
    for (int i = 0; i < count; i++)
        fill(&devs[i], i == pick, nodes, n_nodes, &d[i]);
    spw__free(nodes);
    spw__free(devs);
    *out = d;
    *n = count;
    return 0;
}

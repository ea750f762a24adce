/* DRM and accel device discovery: which kernel devices exist, their drivers
 * and bus ids, matched to Vulkan devices by device number. Not installed.
 *
 * The list comes from a source function: the system one (libdrm, opened at
 * run time, plus a scan of /dev/accel) or one a test installs to replay a
 * recorded machine. No device is an empty list, not an error. */
#ifndef SPW_DRIVERS_DRM_H
#define SPW_DRIVERS_DRM_H

#include <stdbool.h>
#include <stdint.h>

typedef enum spw_drm_bus {
    SPW_DRM_BUS_OTHER = 0,
    SPW_DRM_BUS_PCI,
    SPW_DRM_BUS_PLATFORM,
    SPW_DRM_BUS_USB,
} spw_drm_bus;

typedef struct spw_drm_node {
    char path[64];   /* /dev/dri/renderD128, /dev/dri/card0 or /dev/accel/accel0 */
    bool accel;      /* a compute accelerator node (/dev/accel), not DRM graphics */
    bool render;     /* a render node (DRM) */
    char driver[32]; /* kernel driver ("i915", "amdgpu", "ivpu"), "" if unknown */
    int version[3];  /* driver major, minor, patch; -1 if unknown */
    spw_drm_bus bus;
    char bus_id[96];               /* "0000:03:00.0" (PCI) or the platform device name */
    uint16_t vendor_id, device_id; /* PCI ids, 0 if unknown */
    int64_t major, minor;          /* device number of the node, -1 if unknown */
} spw_drm_node;

/* Fills *nodes (allocated with spw__malloc, freed by the caller with
 * spw__free) and *n. Returns 0 or a negative status. */
typedef int (*spw_drm_source)(void *user, spw_drm_node **nodes, int *n);

/* Installs a source (NULL restores the system one). For tests. */
void spw__drm_set_source(spw_drm_source fn, void *user);
int spw__drm_list(spw_drm_node **nodes, int *n);
/* Index of the node with device number major:minor, or -1. */
int spw__drm_find(const spw_drm_node *nodes, int n, int64_t major, int64_t minor);
const char *spw__drm_bus_name(spw_drm_bus bus);

#endif

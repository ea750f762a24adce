/* DRM devices through libdrm (dlopen'ed: the library never needs it) and
 * compute accelerators through /dev/accel and sysfs. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "drivers/drm/drm.h"
#include "runtime/core/internal.h"

#ifdef SPW_HAVE_LIBDRM
#include <xf86drm.h>
#endif

static int system_source(void *user, spw_drm_node **nodes, int *n);

static spw_drm_source source = system_source;
static void *source_user;

void spw__drm_set_source(spw_drm_source fn, void *user)
{
    source = fn ? fn : system_source;
    source_user = fn ? user : NULL;
}

int spw__drm_list(spw_drm_node **nodes, int *n)
{
    *nodes = NULL;
    *n = 0;
    return source(source_user, nodes, n);
}

int spw__drm_find(const spw_drm_node *nodes, int n, int64_t major, int64_t minor)
{
    for (int i = 0; i < n; i++)
        if (nodes[i].major == major && nodes[i].minor == minor)
            return i;
    return -1;
}

const char *spw__drm_bus_name(spw_drm_bus bus)
{
    switch (bus) {
    case SPW_DRM_BUS_PCI:
        return "pci";
    case SPW_DRM_BUS_PLATFORM:
        return "platform";
    case SPW_DRM_BUS_USB:
        return "usb";
    default:
        return "other";
    }
}

static int append(spw_drm_node **nodes, int *n, int *cap, const spw_drm_node *node)
{
    if (spw__grow((void **)nodes, cap, *n + 1, sizeof(**nodes)))
        return spw__error(SPW_ENOMEM, "drm: out of memory");
    (*nodes)[(*n)++] = *node;
    return 0;
}

static void node_init(spw_drm_node *d, const char *path)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->path, sizeof(d->path), "%s", path);
    d->version[0] = d->version[1] = d->version[2] = -1;
    d->major = d->minor = -1;
    struct stat st;
    if (!stat(path, &st) && S_ISCHR(st.st_mode)) {
        d->major = major(st.st_rdev);
        d->minor = minor(st.st_rdev);
    }
}

#ifdef SPW_HAVE_LIBDRM
typedef struct drm_fns {
    int (*get_devices2)(uint32_t, drmDevicePtr *, int);
    void (*free_devices)(drmDevicePtr *, int);
    drmVersionPtr (*get_version)(int);
    void (*free_version)(drmVersionPtr);
} drm_fns;

static drm_fns drm;
static bool drm_ok;
static pthread_once_t drm_once = PTHREAD_ONCE_INIT;

static void open_libdrm(void)
{
    void *h = dlopen("libdrm.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return;
    drm.get_devices2 = (int (*)(uint32_t, drmDevicePtr *, int))dlsym(h, "drmGetDevices2");
    drm.free_devices = (void (*)(drmDevicePtr *, int))dlsym(h, "drmFreeDevices");
    drm.get_version = (drmVersionPtr(*)(int))dlsym(h, "drmGetVersion");
    drm.free_version = (void (*)(drmVersionPtr))dlsym(h, "drmFreeVersion");
    drm_ok = drm.get_devices2 && drm.free_devices && drm.get_version && drm.free_version;
}

static void describe_drm(const drmDevice *dev, spw_drm_node *d)
{
    /* The render node is the one compute uses; primary only when there is none. */
    int kind = (dev->available_nodes & (1 << DRM_NODE_RENDER)) ? DRM_NODE_RENDER : DRM_NODE_PRIMARY;
    node_init(d, dev->nodes[kind] ? dev->nodes[kind] : "");
    d->render = kind == DRM_NODE_RENDER;
    if (dev->bustype == DRM_BUS_PCI && dev->businfo.pci) {
        d->bus = SPW_DRM_BUS_PCI;
        snprintf(d->bus_id, sizeof(d->bus_id), "%04x:%02x:%02x.%u", dev->businfo.pci->domain,
                 dev->businfo.pci->bus, dev->businfo.pci->dev, dev->businfo.pci->func);
        if (dev->deviceinfo.pci) {
            d->vendor_id = dev->deviceinfo.pci->vendor_id;
            d->device_id = dev->deviceinfo.pci->device_id;
        }
    } else if (dev->bustype == DRM_BUS_PLATFORM && dev->businfo.platform) {
        d->bus = SPW_DRM_BUS_PLATFORM;
        snprintf(d->bus_id, sizeof(d->bus_id), "%.95s", dev->businfo.platform->fullname);
    } else if (dev->bustype == DRM_BUS_USB) {
        d->bus = SPW_DRM_BUS_USB;
    }
    int fd = open(d->path, O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
        drmVersionPtr v = drm.get_version(fd);
        if (v) {
            snprintf(d->driver, sizeof(d->driver), "%.*s", v->name_len, v->name ? v->name : "");
            d->version[0] = v->version_major;
            d->version[1] = v->version_minor;
            d->version[2] = v->version_patchlevel;
            drm.free_version(v);
        }
        close(fd);
    }
}

static int scan_drm(spw_drm_node **nodes, int *n, int *cap)
{
    pthread_once(&drm_once, open_libdrm);
    if (!drm_ok)
        return 0;
    int count = drm.get_devices2(0, NULL, 0);
    /* -ENOENT: no /dev/dri at all (containers, CPU-only machines). */
    if (count <= 0)
        return 0;
    drmDevicePtr devs[64];
    count = drm.get_devices2(0, devs, count < 64 ? count : 64);
    if (count <= 0)
        return 0;
    int rc = 0;
    for (int i = 0; i < count && !rc; i++) {
        spw_drm_node d;
        describe_drm(devs[i], &d);
        rc = append(nodes, n, cap, &d);
    }
    drm.free_devices(devs, count);
    return rc;
}
#else
static int scan_drm(spw_drm_node **nodes, int *n, int *cap)
{
    (void)nodes, (void)n, (void)cap;
    return 0;
}
#endif

/* Reads a one-line sysfs attribute; false when absent. */
static bool sysfs_read(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool ok = fgets(buf, (int)size, f) != NULL;
    fclose(f);
    if (ok)
        buf[strcspn(buf, "\n")] = '\0';
    return ok;
}

static int scan_accel(spw_drm_node **nodes, int *n, int *cap)
{
    DIR *dir = opendir("/dev/accel");
    if (!dir)
        return 0;
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(dir))) {
        if (strncmp(e->d_name, "accel", 5))
            continue;
        char path[300], sys[300], buf[256];
        snprintf(path, sizeof(path), "/dev/accel/%s", e->d_name);
        spw_drm_node d;
        node_init(&d, path);
        d.accel = true;
        snprintf(sys, sizeof(sys), "/sys/class/accel/%s/device/driver", e->d_name);
        ssize_t len = readlink(sys, buf, sizeof(buf) - 1);
        if (len > 0) {
            buf[len] = '\0';
            const char *base = strrchr(buf, '/');
            snprintf(d.driver, sizeof(d.driver), "%.31s", base ? base + 1 : buf);
        }
        snprintf(sys, sizeof(sys), "/sys/class/accel/%s/device/vendor", e->d_name);
        if (sysfs_read(sys, buf, sizeof(buf))) {
            d.bus = SPW_DRM_BUS_PCI;
            d.vendor_id = (uint16_t)strtoul(buf, NULL, 16);
            snprintf(sys, sizeof(sys), "/sys/class/accel/%s/device/device", e->d_name);
            if (sysfs_read(sys, buf, sizeof(buf)))
                d.device_id = (uint16_t)strtoul(buf, NULL, 16);
        }
        snprintf(sys, sizeof(sys), "/sys/class/accel/%s/device", e->d_name);
        len = readlink(sys, buf, sizeof(buf) - 1);
        if (len > 0) {
            buf[len] = '\0';
            const char *base = strrchr(buf, '/');
            snprintf(d.bus_id, sizeof(d.bus_id), "%.95s", base ? base + 1 : buf);
            if (d.bus == SPW_DRM_BUS_OTHER)
                d.bus = SPW_DRM_BUS_PLATFORM;
        }
        rc = append(nodes, n, cap, &d);
    }
    closedir(dir);
    return rc;
}

static int system_source(void *user, spw_drm_node **nodes, int *n)
{
    (void)user;
    int cap = 0;
    int rc = scan_drm(nodes, n, &cap);
    if (!rc)
        rc = scan_accel(nodes, n, &cap);
    if (rc) {
        spw__free(*nodes);
        *nodes = NULL;
        *n = 0;
    }
    return rc;
}

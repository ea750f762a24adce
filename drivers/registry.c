/* Backend registry: a static table in preference order, CPU reference last.
 * A backend whose device is missing registers nothing; SPW_DISABLE_BACKENDS
 * (comma-separated names) turns backends off. Process exit finalises the
 * registered backends (an atexit hook), so device handles and memory go back
 * before the process does. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/backend.h"
#include "drivers/drm/drm.h"

static const spw_backend_ops *const candidates[] = {
#ifdef SPW_HAVE_VULKAN
    &spw__vulkan_ops,
#endif
#ifdef SPW_HAVE_XNNPACK
    &spw__cpu_fast_ops,
#endif
    &spw__cpu_ref_ops,
};

static spw_backend registered[SPW_ARRAY_SIZE(candidates)];
static int n_registered;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static bool disabled(const char *name)
{
    const char *list = getenv("SPW_DISABLE_BACKENDS");
    if (!list)
        return false;
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && !strncmp(p, name, n))
            return true;
        p += len + (end ? 1 : 0);
    }
    return false;
}

/* Runs at exit: backends in reverse order. A backend's fini leaves plans
 * still alive safe to free afterwards (Vulkan closes them, see
 * docs/VULKAN.md); lookups find nothing after. */
static void fini_registry(void)
{
    int n = n_registered;
    n_registered = 0;
    for (int i = n - 1; i >= 0; i--)
        if (registered[i].ops->fini)
            registered[i].ops->fini(&registered[i]);
}

static void init_registry(void)
{
    for (size_t i = 0; i < SPW_ARRAY_SIZE(candidates); i++) {
        const spw_backend_ops *ops = candidates[i];
        if (disabled(ops->name)) {
            SPW_LOGI("backend %s disabled by SPW_DISABLE_BACKENDS", ops->name);
            continue;
        }
        spw_backend *be = &registered[n_registered];
        memset(be, 0, sizeof(*be));
        be->ops = ops;
        int rc = ops->init ? ops->init(be) : 0;
        if (rc) {
            SPW_LOGI("backend %s not available: %s%s%s", ops->name, spw_strerror(rc),
                     spw_error_detail()[0] ? ": " : "", spw_error_detail());
            continue;
        }
        n_registered++;
    }
    /* Registered after the drivers were loaded, so it runs before their own
     * exit handlers. */
    if (n_registered && atexit(fini_registry))
        SPW_LOGW("backends will not be finalised at exit");
}

int spw__backend_count(void)
{
    pthread_once(&once, init_registry);
    return n_registered;
}

spw_backend *spw__backend_get(int idx)
{
    pthread_once(&once, init_registry);
    return idx >= 0 && idx < n_registered ? &registered[idx] : NULL;
}

spw_backend *spw__backend_find(const char *name)
{
    pthread_once(&once, init_registry);
    /* "cpu" names the most capable CPU backend registered. */
    for (int i = 0; i < n_registered; i++)
        if (!strcmp(registered[i].ops->name, name))
            return &registered[i];
    if (!strcmp(name, "cpu"))
        for (int i = 0; i < n_registered; i++)
            if (!strncmp(registered[i].ops->name, "cpu", 3))
                return &registered[i];
    return NULL;
}

/* A backend without threads of its own (be->threads 0: cpu-ref) runs
 * every plan on one, whatever it is asked for. */
static int plan_batch_of(const spw_backend *be, int threads)
{
    int t = !be->threads ? 1 : threads > 0 ? threads : be->threads;
    return t > 1 ? 0 : be->ops->plan_batch;
}

int spw__backend_plan_batch(const char *name, int threads)
{
    if (name && strcmp(name, "auto")) {
        spw_backend *be = spw__backend_find(name);
        return be ? plan_batch_of(be, threads) : 0;
    }
    int most = -1;
    for (int i = 0; i < spw__backend_count(); i++) {
        const spw_backend *be = &registered[i];
        if (be->manual_only)
            continue;
        int p = plan_batch_of(be, threads);
        if (!p)
            return 0;
        most = SPW_MAX(most, p);
    }
    return most > 0 ? most : 0;
}

int spw_backend_count(void)
{
    return spw__backend_count();
}

const char *spw_backend_name(int idx)
{
    spw_backend *be = spw__backend_get(idx);
    return be ? be->ops->name : NULL;
}

int spw_backend_automatic(int idx)
{
    spw_backend *be = spw__backend_get(idx);
    return be && !be->manual_only;
}

int spw_backend_find(const char *name)
{
    spw_backend *be = name ? spw__backend_find(name) : NULL;
    for (int i = 0; be && i < spw__backend_count(); i++)
        if (spw__backend_get(i) == be)
            return i;
    return spw__error(SPW_ENOENT, "no backend '%s'", name ? name : "(null)");
}

/* ---- device list ----------------------------------------------------------- */

struct spw_device_list {
    spw_device_info *devices;
    int n_devices;
    spw_device_node *nodes;
    int n_nodes;
    struct {
        const char *backend;
        int status;
        char detail[256];
    } described[SPW_ARRAY_SIZE(candidates)];
    int n_described;
};

const char *spw_device_type_name(spw_device_type type)
{
    switch (type) {
    case SPW_DEVICE_DISCRETE_GPU:
        return "discrete";
    case SPW_DEVICE_INTEGRATED_GPU:
        return "integrated";
    case SPW_DEVICE_VIRTUAL_GPU:
        return "virtual";
    case SPW_DEVICE_CPU:
        return "cpu";
    default:
        return "other";
    }
}

static int list_nodes(spw_device_list *l)
{
    spw_drm_node *drm = NULL;
    int n = 0;
    int rc = spw__drm_list(&drm, &n);
    if (rc)
        return rc;
    l->nodes = spw__calloc((size_t)(n ? n : 1), sizeof(*l->nodes));
    if (!l->nodes) {
        spw__free(drm);
        return spw__error(SPW_ENOMEM, "out of memory for %d device nodes", n);
    }
    for (int i = 0; i < n; i++) {
        const spw_drm_node *d = &drm[i];
        spw_device_node *o = &l->nodes[i];
        snprintf(o->path, sizeof(o->path), "%s", d->path);
        snprintf(o->kind, sizeof(o->kind), "%s",
                 d->accel    ? "accel"
                 : d->render ? "render"
                             : "primary");
        snprintf(o->driver, sizeof(o->driver), "%s", d->driver);
        memcpy(o->version, d->version, sizeof(o->version));
        snprintf(o->bus, sizeof(o->bus), "%s", spw__drm_bus_name(d->bus));
        snprintf(o->bus_id, sizeof(o->bus_id), "%s", d->bus_id);
        o->vendor_id = d->vendor_id;
        o->device_id = d->device_id;
    }
    l->n_nodes = n;
    spw__free(drm);
    return 0;
}

/* Appends one backend's devices; its failure is recorded, not returned. */
static int describe_backend(spw_device_list *l, const spw_backend_ops *ops)
{
    spw_device_info *d = NULL;
    int n = 0;
    int i = l->n_described++;
    l->described[i].backend = ops->name;
    spw_error_clear();
    int rc = ops->describe(&d, &n);
    l->described[i].status = rc;
    if (rc) {
        snprintf(l->described[i].detail, sizeof(l->described[i].detail), "%s", spw_error_detail());
        return rc == SPW_ENOMEM ? rc : 0;
    }
    spw_device_info *all = spw__realloc(l->devices, sizeof(*all) * (size_t)(l->n_devices + n + 1));
    if (!all) {
        spw__free(d);
        return spw__error(SPW_ENOMEM, "out of memory for %d devices", l->n_devices + n);
    }
    memcpy(all + l->n_devices, d, sizeof(*d) * (size_t)n);
    l->devices = all;
    l->n_devices += n;
    spw__free(d);
    return 0;
}

int spw_device_list_open(spw_device_list **out)
{
    if (!out)
        return spw__error(SPW_EINVAL, "spw_device_list_open: no output");
    *out = NULL;
    spw_device_list *l = spw__calloc(1, sizeof(*l));
    if (!l)
        return spw__error(SPW_ENOMEM, "out of memory");
    int rc = list_nodes(l);
    for (size_t i = 0; !rc && i < SPW_ARRAY_SIZE(candidates); i++)
        if (candidates[i]->describe)
            rc = describe_backend(l, candidates[i]);
    if (rc) {
        spw_device_list_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

void spw_device_list_free(spw_device_list *l)
{
    if (!l)
        return;
    spw__free(l->devices);
    spw__free(l->nodes);
    spw__free(l);
}

int spw_device_list_status(const spw_device_list *l, const char *backend, const char **detail)
{
    if (detail)
        *detail = "";
    for (int i = 0; l && backend && i < l->n_described; i++)
        if (!strcmp(l->described[i].backend, backend)) {
            if (detail)
                *detail = l->described[i].detail;
            return l->described[i].status;
        }
    return SPW_ENOENT;
}

int spw_device_count(const spw_device_list *l)
{
    return l ? l->n_devices : 0;
}

int spw_device_get(const spw_device_list *l, int idx, spw_device_info *out)
{
    if (!l || !out || idx < 0 || idx >= l->n_devices)
        return spw__error(SPW_EINVAL, "no device %d", idx);
    *out = l->devices[idx];
    return 0;
}

int spw_device_node_count(const spw_device_list *l)
{
    return l ? l->n_nodes : 0;
}

int spw_device_node_get(const spw_device_list *l, int idx, spw_device_node *out)
{
    if (!l || !out || idx < 0 || idx >= l->n_nodes)
        return spw__error(SPW_EINVAL, "no device node %d", idx);
    *out = l->nodes[idx];
    return 0;
}

int spw_backend_peak(const char *backend, spw_device_peak *out)
{
    if (!backend || !out)
        return spw__error(SPW_EINVAL, "backend_peak: NULL argument");
    spw_backend *be = spw__backend_find(backend);
    if (!be)
        return spw__error(SPW_ENOENT, "no backend '%s' here", backend);
#ifdef SPW_HAVE_VULKAN
    if (be->ops == &spw__vulkan_ops)
        return spw__vk_peak(be->ctx, out);
#endif
    return spw__error(SPW_EUNSUPPORTED, "backend '%s' has no peak calibration", backend);
}

int spw_backend_tune(const char *backend, const spw_model *model, int batch, int iters,
                     spw_tune_report *out)
{
    if (!backend || !model || !out)
        return spw__error(SPW_EINVAL, "backend_tune: NULL argument");
    spw_backend *be = spw__backend_find(backend);
    if (!be)
        return spw__error(SPW_ENOENT, "no backend '%s' here", backend);
#ifdef SPW_HAVE_VULKAN
    if (be->ops == &spw__vulkan_ops)
        return spw__vk_tune_run(be->ctx, model, batch, iters, out);
#endif
    return spw__error(SPW_EUNSUPPORTED, "backend '%s' has no tuning", backend);
}

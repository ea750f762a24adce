/* Backend registry: a static table in preference order, CPU reference last.
 * A backend whose device is missing registers nothing; SPW_DISABLE_BACKENDS
 * (comma-separated names) turns backends off. Process exit finalises the
 * registered backends (an atexit hook), so device handles and memory go back
 * before the process does. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/backend.h"

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

/* The check behind the *_fp16 ctest entries: they may skip only when the
 * Vulkan device the backend would pick really has no 16-bit storage (or
 * there is no device at all). Testing just for a Vulkan backend would also
 * skip when the backend broke; a device that has the feature must run. */
#ifndef SPW_TEST_VK_H
#define SPW_TEST_VK_H

#include <stdlib.h>

#include "runtime/core/internal.h"
#include "spw_test.h"
#ifdef SPW_HAVE_VULKAN
#include "drivers/vulkan/vk_internal.h"
#endif

/* 0 when the picked device has 16-bit storage; else prints why and returns
 * SPW_TEST_SKIPPED, for main() to return. */
static inline int spw_test_vk_fp16_storage(void)
{
#ifdef SPW_HAVE_VULKAN
    spw_vk_device_info *d = NULL;
    int n = 0;
    if (spw__vk_list_devices(&d, &n) != 0)
        return spw_test_skip_all("fp16 storage: no Vulkan here (%s)", spw_error_detail());
    int i = spw__vk_pick(d, n, getenv("SPW_VULKAN_DEVICE"));
    int rc = 0;
    if (i < 0)
        rc = spw_test_skip_all("fp16 storage: no Vulkan device");
    else if (!d[i].fp16_storage)
        rc = spw_test_skip_all("fp16 storage: '%s' has no 16-bit storage", d[i].name);
    else
        printf("fp16 storage: '%s' has it: running\n", d[i].name);
    spw__free(d);
    return rc;
#else
    return spw_test_skip_all("fp16 storage: built without Vulkan");
#endif
}

#endif

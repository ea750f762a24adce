/* DRM/accel discovery behind its source interface: a recorded machine is
 * replayed, matched by device number, and a machine without /dev/dri lists
 * nothing without failing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "drivers/drm/drm.h"
#include "runtime/core/internal.h"

/* Two GPUs and one NPU, as libdrm and /dev/accel would report them. */
static const spw_drm_node recorded[] = {
    {"/dev/dri/renderD128",
     false,
     true,
     "i915",
     {1, 6, 0},
     SPW_DRM_BUS_PCI,
     "0000:00:02.0",
     0x8086,
     0x46a6,
     226,
     128},
    {"/dev/dri/renderD129",
     false,
     true,
     "amdgpu",
     {3, 54, 0},
     SPW_DRM_BUS_PCI,
     "0000:03:00.0",
     0x1002,
     0x73ff,
     226,
     129},
    {"/dev/accel/accel0",
     true,
     false,
     "intel_vpu",
     {-1, -1, -1},
     SPW_DRM_BUS_PCI,
     "0000:00:0b.0",
     0x8086,
     0x7d1d,
     261,
     0},
};

static int replay(void *user, spw_drm_node **nodes, int *n)
{
    int *calls = user;
    (*calls)++;
    *nodes = spw__malloc(sizeof(recorded));
    if (!*nodes)
        return SPW_ENOMEM;
    memcpy(*nodes, recorded, sizeof(recorded));
    *n = (int)SPW_ARRAY_SIZE(recorded);
    return 0;
}

static void test_recorded(void **state)
{
    (void)state;
    int calls = 0;
    spw__drm_set_source(replay, &calls);
    spw_drm_node *nodes;
    int n;
    assert_int_equal(spw__drm_list(&nodes, &n), 0);
    assert_int_equal(calls, 1);
    assert_int_equal(n, 3);
    /* VK_EXT_physical_device_drm reports render 226:129 for the AMD card. */
    int i = spw__drm_find(nodes, n, 226, 129);
    assert_int_equal(i, 1);
    assert_string_equal(nodes[i].driver, "amdgpu");
    assert_int_equal(spw__drm_find(nodes, n, 226, 130), -1);
    assert_true(nodes[2].accel);
    assert_string_equal(spw__drm_bus_name(nodes[2].bus), "pci");
    spw__free(nodes);
    spw__drm_set_source(NULL, NULL);
}

static void test_system_never_fails(void **state)
{
    (void)state;
    spw_drm_node *nodes;
    int n = -1;
    /* Without /dev/dri, drmGetDevices2 answers -ENOENT: zero devices. */
    assert_int_equal(spw__drm_list(&nodes, &n), 0);
    assert_true(n >= 0);
    for (int i = 0; i < n; i++)
        assert_true(nodes[i].path[0] == '/');
    spw__free(nodes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recorded),
        cmocka_unit_test(test_system_never_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

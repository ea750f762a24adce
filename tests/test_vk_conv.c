/* Conv kernel and tile choice of the Vulkan backend (drivers/vulkan/vk_conv.c):
 * a pure function of the shape and the device's tuning entry, so no device
 * is needed. Shapes are the default encoder's and the cases the row kernel
 * must refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "spw_test.h"

#include "drivers/vulkan/vk_internal.h"

static spw_vk_tuning cpu_tuning(void)
{
    spw_vk_device_info info = {.type = VK_PHYSICAL_DEVICE_TYPE_CPU,
                               .subgroup_size = 8,
                               .subgroup_shuffle = true,
                               .max_wg_invocations = 1024};
    spw_vk_tuning t;
    spw__vk_tuning(&info, &t);
    return t;
}

static spw_vk_conv_shape conv(uint32_t c, uint32_t hw, uint32_t m, uint32_t k, uint32_t s)
{
    uint32_t pad = k / 2, o = (hw + 2 * pad - k) / s + 1;
    return (spw_vk_conv_shape){.n = 1,
                               .c = c,
                               .h = hw,
                               .w = hw,
                               .m = m,
                               .oh = o,
                               .ow = o,
                               .kh = k,
                               .kw = k,
                               .group = 1,
                               .sh = s,
                               .sw = s,
                               .dh = 1,
                               .dw = 1,
                               .pad_t = pad,
                               .pad_l = pad,
                               .pad_b = pad,
                               .pad_r = pad};
}

/* 3x3 convs take the row kernel with shuffles; the channel tile wastes
 * nothing on 48 and 64 channels; rows split into equal pixel tiles. */
static void test_row_tiles(void **state)
{
    (void)state;
    spw_vk_tuning t = cpu_tuning();
    spw_vk_conv_choice ch;
    spw_vk_conv_shape s = conv(48, 112, 48, 3, 1);
    spw__vk_conv_choose(&t, &s, &ch);
    assert_int_equal(ch.kernel, SPW_VK_CONV_ROW);
    assert_int_equal(ch.wsub, 1);
    assert_int_equal(ch.tile_m, 24);
    assert_int_equal(ch.tile_p, 8);
    assert_int_equal(ch.groups[0], (112 * 14 + ch.wg - 1) / ch.wg);
    assert_int_equal(ch.groups[1], 2);

    s = conv(48, 56, 64, 3, 1);
    spw__vk_conv_choose(&t, &s, &ch);
    assert_int_equal(ch.tile_m, 32);
    assert_int_equal(ch.groups[1], 2);

    s = conv(48, 28, 48, 3, 1); /* 28 columns: 4 tiles of 7 */
    spw__vk_conv_choose(&t, &s, &ch);
    assert_int_equal(ch.tile_p, 7);
    assert_int_equal(ch.groups[0], (28 * 4 + ch.wg - 1) / ch.wg);

    s = conv(5, 11, 7, 3, 1); /* fewer channels than any tile: one partial tile */
    spw__vk_conv_choose(&t, &s, &ch);
    assert_int_equal(ch.kernel, SPW_VK_CONV_ROW);
    assert_int_equal(ch.tile_m % 4, 0);
    assert_int_equal(ch.groups[1], 1);
}

/* Groups: the tile divides the channels per group or the row kernel is not used. */
static void test_groups(void **state)
{
    (void)state;
    spw_vk_tuning t = cpu_tuning();
    spw_vk_conv_choice ch;
    spw_vk_conv_shape s = conv(16, 9, 48, 3, 1);
    s.group = 2;
    spw__vk_conv_choose(&t, &s, &ch);
    assert_int_equal(ch.kernel, SPW_VK_CONV_ROW);
    assert_int_equal(24 % ch.tile_m, 0);

    s = conv(7, 11, 7, 3, 1); /* depthwise: one channel per group */
    s.group = 7;
    spw__vk_conv_choose(&t, &s, &ch);
    assert_int_equal(ch.kernel, SPW_VK_CONV_GENERIC);
    assert_int_equal(ch.groups[1] * ch.tile_m, 7);
}

static void test_fallbacks(void **state)
{
    (void)state;
    spw_vk_tuning t = cpu_tuning();
    spw_vk_conv_choice ch;
    spw_vk_conv_shape s = conv(48, 56, 64, 1, 2);
    spw__vk_conv_choose(&t, &s, &ch);
    assert_int_equal(ch.kernel, SPW_VK_CONV_POINTWISE);
    assert_int_equal(ch.wsub, 1);
    assert_int_equal(ch.tile_m, 32);

    s = conv(5, 7, 3, 3, 2);
    s.transposed = true;
    spw__vk_conv_choose(&t, &s, &ch);
    assert_int_equal(ch.kernel, SPW_VK_CONV_GENERIC);

    s = conv(4, 200, 8, 3, 1); /* a segment too long for registers */
    s.dw = 30;
    spw__vk_conv_choose(&t, &s, &ch);
    assert_int_equal(ch.kernel, SPW_VK_CONV_GENERIC);

    setenv("SPW_VULKAN_CONV", "generic", 1);
    s = conv(48, 112, 48, 3, 1);
    spw__vk_conv_choose(&t, &s, &ch);
    assert_int_equal(ch.kernel, SPW_VK_CONV_GENERIC);
    s = conv(48, 56, 64, 1, 2);
    spw__vk_conv_choose(&t, &s, &ch);
    assert_int_equal(ch.kernel, SPW_VK_CONV_POINTWISE);
    assert_int_equal(ch.wsub, 0);
    unsetenv("SPW_VULKAN_CONV");
}

/* No shuffle support, or workgroups that are not whole subgroups: no shuffles. */
static void test_no_shuffle(void **state)
{
    (void)state;
    spw_vk_device_info info = {.type = VK_PHYSICAL_DEVICE_TYPE_CPU,
                               .subgroup_size = 8,
                               .subgroup_shuffle = false,
                               .max_wg_invocations = 1024};
    spw_vk_tuning t;
    spw__vk_tuning(&info, &t);
    assert_int_equal(t.row_wsub, 0);
    info.subgroup_shuffle = true;
    info.subgroup_size = 64;
    spw__vk_tuning(&info, &t);
    assert_int_equal(t.row_wsub, 0);
    info.type = VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU;
    info.subgroup_size = 32;
    spw__vk_tuning(&info, &t);
    assert_int_equal(t.row_wsub, 0);
    assert_true(t.row_tile_m > 0);
}

int main(void)
{
    unsetenv("SPW_VULKAN_CONV");
    unsetenv("SPW_VULKAN_ROW");
    unsetenv("SPW_VULKAN_TUNING");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_row_tiles),
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_fallbacks),
        cmocka_unit_test(test_no_shuffle),
    };
    return spw_test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}

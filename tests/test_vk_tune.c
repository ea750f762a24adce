/* Conv tuning files (vk_tune.c) and the device peak (vk_peak.c): a table
 * written and read back, applied by the conv kernel choice; malformed files
 * and files of another device ignored with a warning; on a device, a tuning
 * run of the tiny bundle's encoder whose file is read and used and whose
 * tuned plan still matches cpu-ref; the peak calibration's answers. */
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "drivers/backend.h"
#include "drivers/vulkan/vk_internal.h"
#include "runtime/core/internal.h"
#include "spw_test.h"
#include "splitwire/splitwire.h"

#define ENCODER SPW_TEST_DATA "/vectors/bundle/tiny/encoder.onnx"

static char dir[64];

static spw_vk_device_info fake_info(void)
{
    return (spw_vk_device_info){.type = VK_PHYSICAL_DEVICE_TYPE_CPU,
                                .vendor_id = 0x10005,
                                .device_id = 0,
                                .driver_version = 0x1234,
                                .subgroup_size = 8,
                                .subgroup_shuffle = true,
                                .max_wg_invocations = 1024};
}

static spw_vk_conv_shape shape3x3(uint32_t c, uint32_t hw, uint32_t m)
{
    return (spw_vk_conv_shape){.n = 1,
                               .c = c,
                               .h = hw,
                               .w = hw,
                               .m = m,
                               .oh = hw,
                               .ow = hw,
                               .kh = 3,
                               .kw = 3,
                               .group = 1,
                               .sh = 1,
                               .sw = 1,
                               .dh = 1,
                               .dw = 1,
                               .pad_t = 1,
                               .pad_l = 1,
                               .pad_b = 1,
                               .pad_r = 1};
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Loads path with warnings on and stderr captured; returns the table and
 * whether a warning naming the file was printed. */
static spw_vk_tuned *load_capturing(const char *path, bool *warned)
{
    spw_vk_device_info info = fake_info();
    char log[128];
    snprintf(log, sizeof(log), "%s/stderr.txt", dir);
    fflush(stderr);
    int saved = dup(2), fd = open(log, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    int level = spw__log_level_cached;
    spw__log_level_cached = SPW_LOG_WARN;
    spw_vk_tuned *t = NULL;
    int rc = spw__vk_tune_load(path, &info, &t);
    spw__log_level_cached = level;
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_int_equal(rc, 0);
    void *text = NULL;
    size_t n = 0;
    assert_int_equal(spw__read_file(log, &text, &n), 0);
    char *s = spw__calloc(1, n + 1);
    memcpy(s, text, n);
    *warned = strstr(s, "ignoring tuning file") && strstr(s, path);
    spw__free(s);
    spw__free(text);
    return t;
}

static void test_roundtrip_and_use(void **state)
{
    (void)state;
    spw_vk_device_info info = fake_info();
    spw_vk_tuning t;
    spw__vk_tuning(&info, &t);
    spw_vk_conv_shape a = shape3x3(16, 20, 48), b = shape3x3(8, 12, 16), other = shape3x3(4, 9, 8);
    spw_vk_tune_entry e[2] = {{.wg_row = 16, .row_tile_m = 8, .row_tile_p = 4, .row_wsub = 0},
                              {.wg_row = 32, .row_tile_m = 0, .row_tile_p = 0, .row_wsub = 0}};
    spw__vk_tune_key(&a, e[0].key);
    spw__vk_tune_key(&b, e[1].key);
    spw_vk_tuned table = {2, e};
    char path[128];
    snprintf(path, sizeof(path), "%s/round.tune", dir);
    assert_int_equal(spw__vk_tune_save(path, &info, &table), 0);
    bool warned = true;
    spw_vk_tuned *back = load_capturing(path, &warned);
    assert_false(warned);
    assert_non_null(back);
    assert_int_equal(back->n, 2);
    assert_memory_equal(back->e, e, sizeof(e));

    spw_vk_conv_choice plain, tuned;
    spw_vk_tuning tt = t;
    tt.tuned = back;
    /* Shape a: the row kernel at the stored tiles, not the built-in ones. */
    spw__vk_conv_choose(&t, &a, &plain);
    spw__vk_conv_choose(&tt, &a, &tuned);
    assert_int_equal(tuned.kernel, SPW_VK_CONV_ROW);
    assert_int_equal(tuned.wg, 16);
    assert_int_equal(tuned.tile_m, 8);
    assert_true(tuned.tile_p <= 4);
    assert_int_equal(tuned.wsub, 0);
    assert_true(plain.tile_m != tuned.tile_m || plain.wg != tuned.wg);
    /* Shape b: the row kernel off. */
    spw__vk_conv_choose(&tt, &b, &tuned);
    assert_int_equal(tuned.kernel, SPW_VK_CONV_GENERIC);
    /* A shape the table does not hold: the built-in choice. */
    spw__vk_conv_choose(&t, &other, &plain);
    spw__vk_conv_choose(&tt, &other, &tuned);
    assert_memory_equal(&plain, &tuned, sizeof(plain));
    spw__vk_tune_free(back);

    /* No file yet: an empty table, quietly. */
    snprintf(path, sizeof(path), "%s/absent.tune", dir);
    assert_null(load_capturing(path, &warned));
    assert_false(warned);
}

static void test_corrupt_ignored(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "garbage\n",
        "splitwire-vk-tune 2 10005 0 1234\n",             /* unknown version */
        "splitwire-vk-tune 1 10de 2330 1234\n",           /* another device */
        "splitwire-vk-tune 1 10005 0 9999\n",             /* another driver */
        "splitwire-vk-tune 1 10005 0 1234\nconv 1 2 3\n", /* short line */
        "splitwire-vk-tune 1 10005 0 1234\n"              /* trailing junk */
        "conv 16 20 20 48 3 3 1 1 1 1 1 1 1 1 1 0 0 = 16 8 4 0 x\n",
        "splitwire-vk-tune 1 10005 0 1234\n" /* lanes not a whole subgroup */
        "conv 16 20 20 48 3 3 1 1 1 1 1 1 1 1 1 0 0 = 12 8 4 0\n",
        "splitwire-vk-tune 1 10005 0 1234\n" /* channel tile not a multiple of 4 */
        "conv 16 20 20 48 3 3 1 1 1 1 1 1 1 1 1 0 0 = 16 6 4 0\n",
        "", /* empty */
    };
    char path[128];
    snprintf(path, sizeof(path), "%s/bad.tune", dir);
    for (size_t i = 0; i < SPW_ARRAY_SIZE(bad); i++) {
        write_file(path, bad[i]);
        bool warned = false;
        spw_vk_tuned *t = load_capturing(path, &warned);
        if (t || !warned)
            fail_msg("case %zu: table %p, warned %d", i, (void *)t, warned);
    }
    /* Comments and blank lines are fine. */
    write_file(path, "splitwire-vk-tune 1 10005 0 1234\n# measured\n\n"
                     "conv 16 20 20 48 3 3 1 1 1 1 1 1 1 1 1 0 0 = 16 8 4 1\n");
    bool warned = true;
    spw_vk_tuned *t = load_capturing(path, &warned);
    assert_false(warned);
    assert_non_null(t);
    assert_int_equal(t->n, 1);
    spw__vk_tune_free(t);
}

static int run_encoder(const char *backend, const spw_model *m, float *in, int32_t *out)
{
    spw_plan_options o = {.backend = backend, .batch = 1};
    spw_plan *p = NULL;
    int rc = spw_plan_create(m, &o, &p);
    if (rc)
        return rc;
    spw_tensor ti, to;
    spw_plan_input(p, 0, &ti);
    spw_plan_output(p, 0, &to);
    ti.data = in;
    to.data = out;
    rc = spw_plan_run(p, &ti, 1, &to, 1);
    spw_plan_free(p);
    return rc;
}

static void test_tune_run(void **state)
{
    (void)state;
    spw_backend *be = spw__backend_find("vulkan");
    if (!be)
        spw_skip("no Vulkan backend (%s)", spw_error_detail());
    spw_model *m = NULL;
    assert_int_equal(spw_model_load(ENCODER, &m), 0);
    spw_tune_report r;
    assert_int_equal(spw_backend_tune("cpu-ref", m, 1, 1, &r), SPW_EUNSUPPORTED);
    assert_int_equal(spw_backend_tune("vulkan", m, 1, 1, &r), 0);
    printf("tuned %d shapes x %d candidates: %.3f -> %.3f ms, %d changed, %s\n", r.shapes,
           r.candidates, r.default_ms, r.tuned_ms, r.changed, r.path);
    assert_int_equal(r.shapes, 2); /* the encoder's two 3x3 convs */
    assert_true(r.candidates > 2);
    assert_true(r.tuned_ms <= r.default_ms);
    assert_non_null(strstr(r.path, dir));

    /* The file reads back as what the device now uses. */
    spw_vk_ctx *ctx = be->ctx;
    spw_vk_tuned *file = NULL;
    assert_int_equal(spw__vk_tune_load(r.path, &ctx->info, &file), 0);
    assert_non_null(file);
    assert_non_null(ctx->tuning.tuned);
    assert_int_equal(file->n, ctx->tuning.tuned->n);
    assert_memory_equal(file->e, ctx->tuning.tuned->e, sizeof(*file->e) * (size_t)file->n);
    for (int i = 0; i < file->n; i++) {
        const uint32_t *k = file->e[i].key;
        spw_vk_conv_shape s = {.n = 1,
                               .c = k[0],
                               .h = k[1],
                               .w = k[2],
                               .m = k[3],
                               .kh = k[4],
                               .kw = k[5],
                               .group = k[6],
                               .sh = k[7],
                               .sw = k[8],
                               .dh = k[9],
                               .dw = k[10],
                               .pad_t = k[11],
                               .pad_l = k[12],
                               .pad_b = k[13],
                               .pad_r = k[14],
                               .transposed = k[15]};
        s.oh = (s.h + s.pad_t + s.pad_b - s.dh * (s.kh - 1) - 1) / s.sh + 1;
        s.ow = (s.w + s.pad_l + s.pad_r - s.dw * (s.kw - 1) - 1) / s.sw + 1;
        spw_vk_tuning want = ctx->tuning;
        want.tuned = NULL;
        want.wg_row = file->e[i].wg_row;
        want.row_tile_m = file->e[i].row_tile_m;
        want.row_tile_p = file->e[i].row_tile_p;
        want.row_wsub = file->e[i].row_wsub;
        spw_vk_conv_choice a, b;
        spw__vk_conv_choose(&want, &s, &a);
        spw__vk_conv_choose(&ctx->tuning, &s, &b);
        assert_memory_equal(&a, &b, sizeof(a));
    }
    spw__vk_tune_free(file);

    /* A plan built on the tuned table computes what cpu-ref does. */
    spw_tensor ti, to;
    spw_model_input(m, 0, &ti, NULL);
    spw_model_output(m, 0, &to, NULL);
    ti.dims[0] = to.dims[0] = 1;
    size_t n_in = spw_tensor_numel(&ti), n_out = spw_tensor_numel(&to);
    float *in = malloc(n_in * sizeof(float));
    int32_t *want = calloc(n_out, sizeof(int32_t)), *got = calloc(n_out, sizeof(int32_t));
    for (size_t i = 0; i < n_in; i++)
        in[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    assert_int_equal(run_encoder("cpu-ref", m, in, want), 0);
    assert_int_equal(run_encoder("vulkan", m, in, got), 0);
    size_t same = 0;
    for (size_t i = 0; i < n_out; i++)
        same += want[i] == got[i];
    printf("tuned plan: %zu of %zu symbols equal to cpu-ref's\n", same, n_out);
    assert_true(same * 1000 >= n_out * 999);
    free(in);
    free(want);
    free(got);
    spw_model_free(m);
}

static void test_peak(void **state)
{
    (void)state;
    spw_device_peak pk;
    assert_int_equal(spw_backend_peak("no-such-backend", &pk), SPW_ENOENT);
    assert_int_equal(spw_backend_peak("cpu-ref", &pk), SPW_EUNSUPPORTED);
    spw_backend *be = spw__backend_find("vulkan");
    if (!be)
        spw_skip("no Vulkan backend (%s)", spw_error_detail());
    assert_int_equal(spw_backend_peak("vulkan", &pk), 0);
    const spw_vk_ctx *ctx = be->ctx;
    printf("%s: peak %.2f GFLOP/s fp32, %.2f fp16\n", pk.device, pk.fp32_gflops, pk.fp16_gflops);
    assert_string_equal(pk.device, ctx->info.name);
    assert_true(pk.fp32_gflops > 0 && isfinite(pk.fp32_gflops));
    assert_int_equal(pk.fp16_gflops > 0, ctx->info.fp16_arith);
}

int main(void)
{
    /* The tuning file goes next to the pipeline cache: a fresh directory. */
    snprintf(dir, sizeof(dir), "/tmp/spw-tune-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    setenv("SPW_VULKAN_CACHE_DIR", dir, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_and_use),
        cmocka_unit_test(test_corrupt_ignored),
        cmocka_unit_test(test_tune_run),
        cmocka_unit_test(test_peak),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return spw_test_exit(failed);
}

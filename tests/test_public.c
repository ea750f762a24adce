/* The public calls that tools build on: a model's summary at a batch (MACs
 * checked against the convolution formula on the summary's own shapes),
 * plan steps and their profile, backend lookup, unbinding a fixed batch,
 * the device list (DRM nodes from a replayed machine), top-k, the result
 * wire format, backbone paths, image allocation and the error detail. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <cmocka.h>

#include "drivers/drm/drm.h"
#include "runtime/core/internal.h"
#include "splitwire/splitwire.h"

#define TINYNET SPW_TEST_DATA "/vectors/bundle/models/tinynet.onnx"
#define ENCODER SPW_SOURCE_DIR "/models/sample/encoder.onnx"
#define FIXED_BATCH SPW_TEST_DATA "/vectors/ops/conv_basic.onnx" /* exported at batch 1 */

/* Conv MACs from first principles: every output element reads
 * Cin/groups * kh * kw weights. The weight's shape gives all but N*Cout*Ho*Wo. */
static int64_t conv_macs(const spw_summary *s, int layer, const spw_layer_info *l)
{
    spw_tensor w;
    const char *name;
    int is_const;
    assert_int_equal(spw_summary_layer_input(s, layer, 1, &w, &name, &is_const), 0);
    assert_true(is_const);
    assert_int_equal(w.ndim, 4);
    return spw_tensor_numel(&l->output) * w.dims[1] * w.dims[2] * w.dims[3];
}

static void summary_layers(void **state)
{
    (void)state;
    spw_model *m;
    assert_int_equal(spw_model_load(TINYNET, &m), 0);
    spw_summary *s;
    assert_int_equal(spw_model_summarize(m, 3, 0, &s), 0);
    assert_true(spw_summary_opset(s) >= 13);
    assert_int_equal(spw_summary_num_inputs(s), 1);
    spw_tensor in;
    const char *name;
    assert_int_equal(spw_summary_input(s, 0, &in, &name), 0);
    assert_int_equal(in.dims[0], 3); /* the batch is bound */
    int n = spw_summary_num_layers(s), convs = 0;
    assert_true(n > 0);
    for (int i = 0; i < n; i++) {
        spw_layer_info l;
        assert_int_equal(spw_summary_layer(s, i, &l), 0);
        assert_non_null(l.name);
        assert_int_equal(l.output.dims[0], 3);
        if (!strcmp(l.op, "Conv")) {
            assert_int_equal(l.macs, conv_macs(s, i, &l));
            convs++;
        }
    }
    assert_true(convs > 0);
    spw_layer_info l;
    assert_int_equal(spw_summary_layer(s, n, &l), SPW_EINVAL);
    spw_summary_free(s);
    assert_int_equal(spw_model_summarize(m, 0, 0, &s), SPW_EINVAL);
    spw_model_free(m);
}

/* Fusion folds activations into their producers: fewer layers, the same
 * MACs in all (the folded ops count none), and the fused ops named. */
static void summary_fused(void **state)
{
    (void)state;
    spw_model *m;
    assert_int_equal(spw_model_load(ENCODER, &m), 0);
    spw_summary *plain, *fused;
    assert_int_equal(spw_model_summarize(m, 1, 0, &plain), 0);
    assert_int_equal(spw_model_summarize(m, 1, SPW_SUMMARY_FUSED, &fused), 0);
    assert_true(spw_summary_num_layers(fused) < spw_summary_num_layers(plain));
    int64_t macs[2] = {0, 0};
    int named = 0;
    for (int k = 0; k < 2; k++) {
        const spw_summary *s = k ? fused : plain;
        for (int i = 0; i < spw_summary_num_layers(s); i++) {
            spw_layer_info l;
            assert_int_equal(spw_summary_layer(s, i, &l), 0);
            macs[k] += l.macs;
            named += k && l.fused[0] == '+';
            if (!k)
                assert_string_equal(l.fused, "");
        }
    }
    assert_true(named > 0);
    assert_true(macs[0] > 0);
    assert_true(llabs(macs[0] - macs[1]) * 100 < macs[0]);
    spw_summary_free(plain);
    spw_summary_free(fused);
    spw_model_free(m);
}

static void plan_steps_profile(void **state)
{
    (void)state;
    spw_model *m;
    assert_int_equal(spw_model_load(TINYNET, &m), 0);
    spw_plan_options o = {.backend = "cpu-ref", .batch = 1, .flags = SPW_PLAN_PROFILE};
    spw_plan *p;
    assert_int_equal(spw_plan_create(m, &o, &p), 0);
    int n = spw_plan_num_steps(p);
    assert_true(n > 0);
    assert_true(spw_plan_arena_bytes(p) > 0);
    spw_tensor in, out;
    assert_int_equal(spw_plan_input(p, 0, &in), 0);
    assert_int_equal(spw_plan_output(p, 0, &out), 0);
    in.data = calloc(1, spw_tensor_nbytes(&in));
    out.data = calloc(1, spw_tensor_nbytes(&out));
    assert_int_equal(spw_plan_run(p, &in, 1, &out, 1), 0);
    uint64_t total = 0;
    int64_t macs = 0;
    for (int i = 0; i < n; i++) {
        spw_step_info st;
        assert_int_equal(spw_plan_step(p, i, &st), 0);
        assert_non_null(st.name);
        assert_non_null(st.op);
        total += st.ns;
        macs += st.macs;
    }
    assert_true(total > 0);
    assert_true(macs > 0);
    spw_plan_profile_reset(p);
    for (int i = 0; i < n; i++) {
        spw_step_info st;
        spw_plan_step(p, i, &st);
        assert_int_equal(st.ns, 0);
    }
    spw_step_info st;
    assert_int_equal(spw_plan_step(p, n, &st), SPW_EINVAL);
    free(in.data);
    free(out.data);
    spw_plan_free(p);
    spw_model_free(m);
}

static void backend_lookup(void **state)
{
    (void)state;
    for (int i = 0; i < spw_backend_count(); i++)
        assert_int_equal(spw_backend_find(spw_backend_name(i)), i);
    int cpu = spw_backend_find("cpu");
    assert_true(cpu >= 0);
    assert_memory_equal(spw_backend_name(cpu), "cpu", 3);
    assert_int_equal(spw_backend_find("no-such-backend"), SPW_ENOENT);
    assert_int_equal(spw_backend_find(NULL), SPW_ENOENT);
}

/* A model whose batch is fixed at 1 plans at batch 4 once unbound, and
 * only before its first plan. */
static void unbind_batch(void **state)
{
    (void)state;
    spw_model *m;
    assert_int_equal(spw_model_load(FIXED_BATCH, &m), 0);
    spw_tensor in;
    assert_int_equal(spw_model_input(m, 0, &in, NULL), 0);
    assert_int_equal(in.dims[0], 1);
    assert_int_equal(spw_model_unbind_batch(m), 0);
    assert_int_equal(spw_model_input(m, 0, &in, NULL), 0);
    assert_int_equal(in.dims[0], -1);
    spw_plan_options o = {.backend = "cpu-ref", .batch = 4};
    spw_plan *p;
    assert_int_equal(spw_plan_create(m, &o, &p), 0);
    spw_tensor out;
    assert_int_equal(spw_plan_output(p, 0, &out), 0);
    assert_int_equal(out.dims[0], 4);
    assert_int_equal(spw_model_unbind_batch(m), SPW_EBUSY);
    spw_plan_free(p);
    spw_model_free(m);
}

static const spw_drm_node machine[] = {
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
    (void)user;
    *nodes = spw__malloc(sizeof(machine));
    if (!*nodes)
        return SPW_ENOMEM;
    memcpy(*nodes, machine, sizeof(machine));
    *n = 2;
    return 0;
}

static void device_list(void **state)
{
    (void)state;
    spw__drm_set_source(replay, NULL);
    spw_device_list *l;
    assert_int_equal(spw_device_list_open(&l), 0);
    assert_int_equal(spw_device_node_count(l), 2);
    spw_device_node nd;
    assert_int_equal(spw_device_node_get(l, 0, &nd), 0);
    assert_string_equal(nd.path, "/dev/dri/renderD128");
    assert_string_equal(nd.kind, "render");
    assert_string_equal(nd.bus, "pci");
    assert_int_equal(nd.version[1], 6);
    assert_int_equal(spw_device_node_get(l, 1, &nd), 0);
    assert_string_equal(nd.kind, "accel");
    assert_int_equal(nd.vendor_id, 0x8086);
    assert_int_equal(spw_device_node_get(l, 2, &nd), SPW_EINVAL);
    const char *detail;
    assert_int_equal(spw_device_list_status(l, "no-such-backend", &detail), SPW_ENOENT);
    /* Whatever this machine has: each device named, typed, one selected per backend. */
    int vk_selected = 0, cpu_ref = 0;
    for (int i = 0; i < spw_device_count(l); i++) {
        spw_device_info d;
        assert_int_equal(spw_device_get(l, i, &d), 0);
        assert_true(d.name[0] != '\0');
        assert_true(strlen(spw_device_type_name(d.type)) > 0);
        assert_true(d.n_heaps >= 0 && d.n_heaps <= SPW_DEVICE_MAX_HEAPS);
        uint64_t local = 0;
        for (int h = 0; h < d.n_heaps; h++)
            local += d.heaps[h].device_local ? d.heaps[h].bytes : 0;
        assert_true(local == d.memory_bytes);
        assert_int_equal(spw_device_list_status(l, d.backend, &detail), 0);
        if (!strcmp(d.backend, "vulkan"))
            vk_selected += d.selected;
        if (!strncmp(d.backend, "cpu-", 4)) {
            /* The host: its RAM as sysinfo tells it, the cores sysconf does. */
            struct sysinfo si;
            assert_int_equal(sysinfo(&si), 0);
            assert_int_equal(d.type, SPW_DEVICE_CPU);
            assert_int_equal(d.selected, 1);
            assert_true(d.memory_bytes == (uint64_t)si.totalram * si.mem_unit);
            assert_int_equal(d.cpu_cores, (int)sysconf(_SC_NPROCESSORS_ONLN));
            assert_true(d.threads >= 1 && d.threads <= d.cpu_cores);
            cpu_ref += !strcmp(d.backend, "cpu-ref");
            if (!strcmp(d.backend, "cpu-ref"))
                assert_int_equal(d.threads, 1);
        }
    }
    assert_true(vk_selected <= 1);
    /* cpu-ref is always built: its device is always listed, even when
     * SPW_DISABLE_BACKENDS turns it off. */
    assert_int_equal(cpu_ref, 1);
    assert_int_equal(spw_device_list_status(l, "cpu-ref", &detail), 0);
    spw_device_list_free(l);
    spw__drm_set_source(NULL, NULL);
    assert_string_equal(spw_device_type_name(SPW_DEVICE_DISCRETE_GPU), "discrete");
}

/* Softmax of {0, ln 3, ln 6}: 0.1, 0.3, 0.6. */
static void topk(void **state)
{
    (void)state;
    const float s[3] = {0.0f, logf(3.0f), logf(6.0f)};
    spw_result r = {0};
    assert_int_equal(spw_topk(s, 3, 1, 2, &r), 0);
    assert_int_equal(r.k, 2);
    assert_int_equal(r.top[0].label, 1);
    assert_int_equal(r.top[1].label, 0);
    assert_float_equal(r.top[0].prob, 0.6f, 1e-5f);
    assert_float_equal(r.top[1].prob, 0.3f, 1e-5f);
    assert_int_equal(spw_topk(s, 0, 0, 1, &r), SPW_EINVAL);
    uint32_t us;
    unsigned char junk[4] = {0};
    assert_int_equal(spw_result_unpack(junk, sizeof(junk), &r, &us), SPW_EPROTO);
}

static void small_helpers(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(spw_backbone_path("/m", "net", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/m/net.onnx");
    assert_int_equal(spw_backbone_path("/m", "net", buf, 11), SPW_ENOSPC);
    assert_int_equal(spw_backbone_path("/m", "net", buf, 12), 0);
    spw_image img = {0};
    assert_int_equal(spw_image_alloc(0, 4, &img), SPW_EINVAL);
    assert_int_equal(spw_image_alloc(5, 4, &img), 0);
    assert_int_equal(img.width, 5);
    memset(img.rgb, 7, 5 * 4 * 3);
    spw_image_release(&img);
    assert_int_equal(spw_error_set(SPW_EFORMAT, "frame %d of %s", 3, "x"), SPW_EFORMAT);
    assert_string_equal(spw_error_detail(), "frame 3 of x");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(summary_layers),
        cmocka_unit_test(summary_fused),
        cmocka_unit_test(plan_steps_profile),
        cmocka_unit_test(backend_lookup),
        cmocka_unit_test(unbind_batch),
        cmocka_unit_test(device_list),
        cmocka_unit_test(topk),
        cmocka_unit_test(small_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

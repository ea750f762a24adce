/* Process-exit teardown of the backends (drivers/registry.c): the registry's
 * atexit hook finalises every backend. A Vulkan plan still alive then is
 * closed by the hook (its device objects destroyed with the device), because
 * later exit handlers may run after the driver's own (the NVIDIA driver's
 * do, and a Vulkan call there crashes). An exit handler registered before
 * the registry existed runs after its hook: it checks that the device is
 * gone, that running the surviving plan fails with a clear error instead of
 * touching the driver, and that freeing it is safe. Run under
 * SPW_SANITIZE=ON, LeakSanitizer then sees whatever teardown forgot. Exits
 * 77 (skipped) without a Vulkan device. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/backend.h"
#include "spw_test.h"
#include "runtime/graph/plan.h"

static spw_model *model;
static spw_plan *late_plan;
static spw_backend *vk;
static float x[2 * 3 * 5 * 7], y[2 * 3 * 5 * 7];
static int failures;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                              \
        }                                                                            \
    } while (0)

static spw_tensor tensor(float *data)
{
    spw_tensor t;
    memset(&t, 0, sizeof(t));
    t.dtype = SPW_F32;
    t.ndim = 4;
    t.dims[0] = 2, t.dims[1] = 3, t.dims[2] = 5, t.dims[3] = 7;
    t.data = data;
    return t;
}

/* x -> Relu -> y */
static int make_model(void)
{
    spw_graph *g;
    if (spw__graph_create(&g))
        return -1;
    int xv = spw__graph_add_value(g, "x"), yv = spw__graph_add_value(g, "y");
    g->values[xv].dtype = SPW_F32;
    g->values[xv].ndim = 4;
    const int64_t d[4] = {2, 3, 5, 7};
    memcpy(g->values[xv].dims, d, sizeof(d));
    model = spw__calloc(1, sizeof(*model));
    if (!model || spw__graph_add_input(g, xv) ||
        spw__graph_add_node(g, SPW_OP_RELU, "relu", &xv, 1, &yv, 1) < 0 ||
        spw__graph_add_output(g, yv) || spw__graph_link(g) || spw__graph_infer_shapes(g, -1)) {
        spw__free(model);
        model = NULL;
        spw__graph_free(g);
        return -1;
    }
    model->graph = g;
    return 0;
}

static int run_once(spw_plan *plan)
{
    spw_tensor in = tensor(x), out = tensor(y);
    memset(y, 0, sizeof(y));
    if (spw_plan_run(plan, &in, 1, &out, 1))
        return -1;
    for (size_t i = 0; i < SPW_ARRAY_SIZE(x); i++)
        if (y[i] != (x[i] < 0 ? 0.0f : x[i]))
            return -1;
    return 0;
}

/* Runs after the registry's hook (registered before it). */
static void late_exit(void)
{
    if (!late_plan)
        return;
    CHECK(spw_backend_count() == 0); /* the hook ran: lookups find nothing */
    CHECK(vk->ctx == NULL);          /* ...and closed the device under the plan */
    spw_error_clear();
    CHECK(run_once(late_plan) != 0);
    CHECK(strstr(spw_error_detail(), "closed at process exit") != NULL);
    spw_plan_free(late_plan); /* host memory only */
    spw_model_free(model);
    if (failures) {
        fflush(stderr);
        _Exit(1);
    }
    printf("plan closed at exit, then refused and freed: ok\n");
}

int main(void)
{
    atexit(late_exit); /* before the registry exists, so it runs after its hook */
    vk = spw__backend_find("vulkan");
    if (!vk) {
        return spw_test_skip_all("no Vulkan device: %s", spw_error_detail());
    }
    for (size_t i = 0; i < SPW_ARRAY_SIZE(x); i++)
        x[i] = (float)((int)(i * 7 % 13) - 6) * 0.25f;
    if (make_model()) {
        fprintf(stderr, "cannot build the model: %s\n", spw_error_detail());
        return 1;
    }
    spw_plan_options o = {.backend = "vulkan"};
    /* One plan freed normally, one left for the exit handler. */
    spw_plan *plan;
    CHECK(spw_plan_create(model, &o, &plan) == 0 && run_once(plan) == 0);
    spw_plan_free(plan);
    CHECK(spw_plan_create(model, &o, &late_plan) == 0 && run_once(late_plan) == 0);
    return failures ? 1 : 0;
}

/* Every op of SPW_OP_LIST has its row in every op table
 * (docs/ADDING_AN_OP.md): the ONNX name lookup, the importer's attribute
 * table, shape inference, and each compiled-in backend, where cpu-ref (the
 * oracle) must run every op and the others must say how they take it (own
 * kernel, fallback, or an explicit "not here"). A row left out of a table
 * reads zero, SPW_ROW_MISSING, and fails here by name. docs/OPS.md and the
 * conformance vectors are checked by test_onnx and test_ops. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "spw_test.h"

#include "drivers/backend.h"
#include "runtime/graph/graph.h"
#include "runtime/onnx/onnx_internal.h"

static const spw_backend_ops *const tables[] = {
    &spw__cpu_ref_ops,
#ifdef SPW_HAVE_XNNPACK
    &spw__cpu_fast_ops,
#endif
#ifdef SPW_HAVE_VULKAN
    &spw__vulkan_ops,
#endif
};

static const char *kind_name(spw_row_kind k)
{
    switch (k) {
    case SPW_ROW_RUNS:
        return "runs";
    case SPW_ROW_FALLBACK:
        return "fallback";
    case SPW_ROW_NONE:
        return "none";
    default:
        return "missing";
    }
}

static void test_import_rows(void **state)
{
    (void)state;
    for (int op = 1; op < SPW_OP_COUNT; op++) {
        const char *name = spw__op_name((spw_op)op);
        if (!name || !*name)
            fail_msg("op %d has no name in SPW_OP_LIST", op);
        if (spw__op_lookup(spw__op_domain((spw_op)op), name) != (spw_op)op)
            fail_msg("%s: the ONNX lookup finds another op", name);
        if (!spw__onnx_has_attr_row((spw_op)op))
            fail_msg("%s: no row in the attribute table (runtime/onnx/onnx_attr.c)", name);
        if (!spw__shape_has_rule((spw_op)op))
            fail_msg("%s: no row in the shape table (runtime/graph/shape.c)", name);
    }
    /* Past the list: no row anywhere (what a forgotten row reads). */
    assert_false(spw__onnx_has_attr_row(SPW_OP_COUNT));
    assert_false(spw__shape_has_rule(SPW_OP_COUNT));
}

static void test_backend_rows(void **state)
{
    (void)state;
    for (size_t t = 0; t < SPW_ARRAY_SIZE(tables); t++) {
        const spw_backend_ops *ops = tables[t];
        if (!ops->op_row)
            fail_msg("backend %s has no op table (op_row)", ops->name);
        for (int op = 1; op < SPW_OP_COUNT; op++) {
            spw_row_kind k = ops->op_row((spw_op)op);
            if (k == SPW_ROW_MISSING)
                fail_msg("%s: no row in %s's op table", spw__op_name((spw_op)op), ops->name);
            /* The oracle runs everything with its own kernels. */
            if (ops == &spw__cpu_ref_ops && k != SPW_ROW_RUNS)
                fail_msg("%s: cpu-ref's row is '%s', not 'runs'", spw__op_name((spw_op)op),
                         kind_name(k));
        }
        assert_int_equal(ops->op_row(SPW_OP_COUNT), SPW_ROW_MISSING);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_import_rows),
        cmocka_unit_test(test_backend_rows),
    };
    return spw_test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}

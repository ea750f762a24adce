/* libFuzzer target: ONNX import, linking and shape inference on arbitrary
 * bytes. Every input must end in a clean status with nothing leaked. */
#include <stddef.h>
#include <stdint.h>

#include "runtime/onnx/onnx_import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    spw_graph *g = NULL;
    if (spw__onnx_import(data, size, &g))
        return 0;
    /* Infer twice, as loading (free batch) and planning (bound batch) do. */
    spw_graph *copy = NULL;
    if (!spw__graph_link(g) && !spw__graph_infer_shapes(g, -1) && !spw__graph_clone(g, &copy)) {
        (void)spw__graph_infer_shapes(copy, 3);
        spw__graph_free(copy);
    }
    spw__graph_free(g);
    return 0;
}

list(APPEND SPW_SOURCES
  runtime/core/status.c
  runtime/core/alloc.c
  runtime/core/tensor.c
  runtime/core/npy.c
  runtime/graph/graph.c
  runtime/graph/ops.c
  runtime/graph/shape.c
  runtime/graph/passes.c
  runtime/graph/plan.c
  runtime/graph/weights.c
  runtime/graph/model.c
  runtime/graph/summary.c
  runtime/onnx/onnx_import.c
  runtime/onnx/onnx_attr.c
  runtime/onnx/onnx_tensor.c
  runtime/image/image.c
  runtime/bundle/bundle.c
  runtime/service/half.c
  runtime/service/client.c
  runtime/service/server.c
  runtime/service/adapt.c
  runtime/service/fair.c
  runtime/service/public.c
)
include(runtime/codec/sources.cmake OPTIONAL)

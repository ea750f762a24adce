/* ONNX import: protobuf bytes -> spw_graph. Not installed. */
#ifndef SPW_ONNX_IMPORT_H
#define SPW_ONNX_IMPORT_H

#include "runtime/graph/graph.h"

/* Lowest ai.onnx opset accepted. */
#define SPW_ONNX_MIN_OPSET 13

/*
 * Parses an ONNX ModelProto and builds a graph: values for inputs, outputs and
 * initializers (raw_data or typed fields; float16/double converted to f32),
 * Constant nodes folded into constants, every node mapped to an spw_op with
 * its attributes decoded into spw_op_params. Does not link or infer shapes.
 * Errors set a detail naming the node or field.
 */
int spw__onnx_import(const void *data, size_t size, spw_graph **out);

#endif

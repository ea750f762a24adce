/* Pieces shared by the ONNX importer's files. Not installed. */
#ifndef SPW_ONNX_INTERNAL_H
#define SPW_ONNX_INTERNAL_H

#include "onnx/onnx.pb-c.h"
#include "runtime/onnx/onnx_import.h"

/* Largest single dimension accepted anywhere in a file; bigger is treated as
 * corrupt rather than as a tensor anyone could run. */
#define SPW_ONNX_MAX_DIM ((int64_t)INT32_MAX)

/* Importer state: the graph under construction and a name -> value index
 * (open addressing, -1 = empty), sized once for every name the file holds. */
typedef struct spw_onnx_importer {
    spw_graph *g;
    int *slots;
    size_t mask;
    bool splitwire_opset; /* the model imports ai.splitwire */
} spw_onnx_importer;

/* Value index for name, -1 when absent. */
int spw__onnx_find(const spw_onnx_importer *im, const char *name);

/* A decoded TensorProto: dense little-endian-independent host data, FLOAT16
 * and DOUBLE already widened/narrowed to F32. data is spw__malloc'ed. */
typedef struct spw_onnx_tensor {
    spw_dtype dtype;
    int ndim;
    int64_t dims[SPW_MAX_DIMS];
    void *data;
} spw_onnx_tensor;

/* Decodes t; `what` names it in errors ("initializer 'w'"). */
int spw__onnx_tensor_decode(const Onnx__TensorProto *t, const char *what, spw_onnx_tensor *out);

/* spw_dtype of an ONNX elem_type for graph inputs/outputs (no conversion
 * there, so DOUBLE is not accepted); SPW_DTYPE_INVALID when unsupported. */
spw_dtype spw__onnx_value_dtype(int32_t elem_type);
const char *spw__onnx_type_name(int32_t elem_type);

/* One node being imported. */
typedef struct spw_onnx_node {
    const Onnx__NodeProto *np;
    const char *name;    /* the node's name, or the name the graph will give it */
    const char *op_type; /* as written in the file */
    spw_op op;
    spw_op_params p;
    int n_keep; /* leading ONNX inputs the node keeps; later ones were folded into p */
} spw_onnx_node;

/* Decodes nd->np's attributes (and the constant inputs ONNX uses as
 * parameters) into nd->p and sets nd->n_keep. */
int spw__onnx_decode_params(const spw_onnx_importer *im, spw_onnx_node *nd);
/* Whether the attribute table has a row for op (onnx_attr.c). */
bool spw__onnx_has_attr_row(spw_op op);

/* The tensor a Constant node defines (attribute value, value_float(s) or
 * value_int(s)). */
int spw__onnx_constant_value(const spw_onnx_node *nd, spw_onnx_tensor *out);

#endif

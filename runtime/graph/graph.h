/* The in-memory graph: values (tensors), nodes (ops) and their parameters.
 * Importers (ONNX) build it; passes (shape inference, BN folding, fusion) and
 * the planner transform it. Not installed. */
#ifndef SPW_GRAPH_H
#define SPW_GRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/core/internal.h"

/*
 * Op table: enum suffix, ONNX op_type, domain ("" = ai.onnx). One list feeds
 * the enum, the name lookup and the documentation check in the tests.
 */
#define SPW_OP_LIST(X)                          \
    X(CONV, "Conv", "")                         \
    X(CONV_TRANSPOSE, "ConvTranspose", "")      \
    X(RELU, "Relu", "")                         \
    X(CLIP, "Clip", "")                         \
    X(LEAKY_RELU, "LeakyRelu", "")              \
    X(SIGMOID, "Sigmoid", "")                   \
    X(HARD_SWISH, "HardSwish", "")              \
    X(ADD, "Add", "")                           \
    X(MUL, "Mul", "")                           \
    X(CONCAT, "Concat", "")                     \
    X(GLOBAL_AVG_POOL, "GlobalAveragePool", "") \
    X(AVG_POOL, "AveragePool", "")              \
    X(MAX_POOL, "MaxPool", "")                  \
    X(GEMM, "Gemm", "")                         \
    X(MATMUL, "MatMul", "")                     \
    X(FLATTEN, "Flatten", "")                   \
    X(RESHAPE, "Reshape", "")                   \
    X(TRANSPOSE, "Transpose", "")               \
    X(BATCH_NORM, "BatchNormalization", "")     \
    X(SOFTMAX, "Softmax", "")                   \
    X(IDENTITY, "Identity", "")                 \
    X(PAD, "Pad", "")                           \
    X(GDN, "GDN", "ai.splitwire")               \
    X(QUANTIZE, "Quantize", "ai.splitwire")     \
    X(DEQUANTIZE, "Dequantize", "ai.splitwire")

typedef enum spw_op {
    SPW_OP_INVALID = 0,
#define SPW__OP_ENUM(e, name, domain) SPW_OP_##e,
    SPW_OP_LIST(SPW__OP_ENUM)
#undef SPW__OP_ENUM
        SPW_OP_COUNT
} spw_op;

#define SPW_DOMAIN_SPLITWIRE "ai.splitwire"

const char *spw__op_name(spw_op op);
const char *spw__op_domain(spw_op op);
/* Looks up (domain, op_type); "ai.onnx" and "" are the same domain. */
spw_op spw__op_lookup(const char *domain, const char *op_type);

/* ONNX auto_pad; shape inference turns SAME_* into explicit pads and sets NOTSET. */
typedef enum spw_auto_pad {
    SPW_AUTO_PAD_NOTSET = 0,
    SPW_AUTO_PAD_SAME_UPPER,
    SPW_AUTO_PAD_SAME_LOWER,
    SPW_AUTO_PAD_VALID,
} spw_auto_pad;

/* 2-D spatial parameters; pads are ONNX order: top, left, bottom, right.
 * Only 2-D spatial (4-D NCHW tensors) is supported. */
typedef struct spw_conv_params {
    int kernel[2];
    int stride[2];
    int dilation[2];
    int pads[4];
    int output_padding[2]; /* ConvTranspose only */
    int output_shape[2];   /* ConvTranspose: requested H, W (0: none); shape
                              inference turns it into pads and clears it */
    int group;
    spw_auto_pad auto_pad;
} spw_conv_params;

typedef struct spw_pool_params {
    int kernel[2];
    int stride[2];
    int dilation[2];
    int pads[4];
    int ceil_mode;
    int count_include_pad; /* AveragePool */
    spw_auto_pad auto_pad;
} spw_pool_params;

typedef struct spw_gemm_params {
    float alpha, beta;
    int trans_a, trans_b;
} spw_gemm_params;

typedef enum spw_pad_mode {
    SPW_PAD_CONSTANT = 0,
    SPW_PAD_REFLECT = 1,
    SPW_PAD_EDGE = 2,
} spw_pad_mode;

typedef struct spw_pad_params {
    spw_pad_mode mode;
    int ndim;
    int64_t pads[2 * SPW_MAX_DIMS]; /* begins for each axis, then ends */
    float value;
} spw_pad_params;

/*
 * Parameters, decoded from attributes (and constant inputs where ONNX puts
 * them there: Clip min/max, Reshape shape, Pad pads) at import, so no pass
 * or kernel parses attributes again.
 */
typedef union spw_op_params {
    spw_conv_params conv; /* CONV, CONV_TRANSPOSE */
    spw_pool_params pool; /* AVG_POOL, MAX_POOL */
    spw_gemm_params gemm; /* GEMM */
    spw_pad_params pad;   /* PAD */
    struct {
        float min, max; /* CLIP (-INF/+INF when absent) */
    } clip;
    struct {
        float alpha; /* LEAKY_RELU */
    } leaky;
    struct {
        int axis; /* CONCAT, FLATTEN, SOFTMAX; normalised to >= 0 after shape inference */
    } axis;
    struct {
        int ndim;
        int perm[SPW_MAX_DIMS]; /* TRANSPOSE */
    } transpose;
    struct {
        int ndim;
        int64_t shape[SPW_MAX_DIMS]; /* RESHAPE target as given (0 and -1 allowed) */
        int allowzero;
    } reshape;
    struct {
        float epsilon; /* BATCH_NORM */
    } bn;
    struct {
        int inverse; /* GDN: 0 = GDN (divide), 1 = inverse GDN (multiply) */
    } gdn;
} spw_op_params;

/*
 * Element-wise work fused onto a node's output, applied in order:
 * y = post[n-1](...post[0](op(x))). ADD adds another value of the same shape
 * (a residual); the activations carry their parameters.
 */
typedef enum spw_post_kind {
    SPW_POST_RELU = 1,
    SPW_POST_CLIP,       /* min(max(x, a), b); ReLU6 is CLIP(0, 6) */
    SPW_POST_LEAKY_RELU, /* a = alpha */
    SPW_POST_SIGMOID,
    SPW_POST_HARD_SWISH,
    SPW_POST_ADD, /* value = index of the addend */
} spw_post_kind;

typedef struct spw_post_op {
    spw_post_kind kind;
    float a, b;
    int value;
} spw_post_op;

#define SPW_MAX_POST 4

enum {
    SPW_VALUE_INPUT = 1u << 0,  /* graph input */
    SPW_VALUE_OUTPUT = 1u << 1, /* graph output */
    SPW_VALUE_CONST = 1u << 2,  /* initializer: data is set */
    SPW_VALUE_SHARED = 1u << 3, /* CONST whose data belongs to another graph
                                   (a model's shared weights): never freed here */
};

typedef struct spw_value {
    char *name;
    spw_dtype dtype;
    int ndim;                   /* -1 while unknown */
    int64_t dims[SPW_MAX_DIMS]; /* -1 for the free batch dim on inputs */
    unsigned flags;
    void *data;    /* CONST only: owned unless SHARED, dense, row-major, dtype as above */
    size_t nbytes; /* CONST only */
    int producer;  /* node index, or -1 */
    int n_consumers;
} spw_value;

typedef struct spw_node {
    spw_op op;
    char *name; /* never NULL: import names anonymous nodes "<op>_<index>" */
    int n_inputs;
    int *inputs; /* value indices; -1 for an omitted optional input */
    int n_outputs;
    int *outputs;
    spw_op_params p;
    int n_post;
    spw_post_op post[SPW_MAX_POST];
    bool dead; /* removed by a pass; skipped everywhere */
} spw_node;

typedef struct spw_graph {
    spw_value *values;
    int n_values, cap_values;
    spw_node *nodes;
    int n_nodes, cap_nodes;
    int *inputs; /* graph inputs (non-constant), in declaration order */
    int n_inputs, cap_inputs;
    int *outputs;
    int n_outputs, cap_outputs;
    int64_t opset;  /* ai.onnx opset the model imports */
    char *producer; /* producer_name from the file, may be NULL */
    char *name;     /* graph name, may be NULL */
} spw_graph;

int spw__graph_create(spw_graph **out);
void spw__graph_free(spw_graph *g);
/* Adds a value; returns its index (>= 0) or a negative status. Name copied. */
int spw__graph_add_value(spw_graph *g, const char *name);
/* Adds a constant value that takes ownership of data (allocated with spw__malloc). */
int spw__graph_add_const(spw_graph *g, const char *name, spw_dtype dtype, int ndim,
                         const int64_t *dims, void *data);
/* Finds a value by name; -1 when absent. A linear scan: importers that look
 * up many names keep their own index. */
int spw__graph_find_value(const spw_graph *g, const char *name);
/* Adds a node with copies of the in/out index arrays; returns its index. */
int spw__graph_add_node(spw_graph *g, spw_op op, const char *name, const int *inputs, int n_inputs,
                        const int *outputs, int n_outputs);
int spw__graph_add_input(spw_graph *g, int value);
int spw__graph_add_output(spw_graph *g, int value);
/* Recomputes producer and n_consumers from the live nodes; fails with
 * SPW_EFORMAT when a value has two producers or is used before it exists. */
int spw__graph_link(spw_graph *g);
/* Live nodes in an order where producers come before consumers. order must
 * hold g->n_nodes ints; *n receives the count. SPW_EFORMAT on a cycle. */
int spw__graph_topo_order(const spw_graph *g, int *order, int *n);

/* Number of elements of a value with known shape; -1 if unknown. */
int64_t spw__value_numel(const spw_value *v);

/*
 * Shape inference over the whole graph, given the batch to bind to a free
 * leading dim of the inputs (batch <= 0 leaves it -1 and infers with -1
 * propagated). Sets dtype/ndim/dims of every non-constant value, validates
 * attributes against shapes, and normalises negative axes. Errors name the
 * node: "node 'conv1' (Conv): ...".
 */
int spw__graph_infer_shapes(spw_graph *g, int batch);
/* Whether shape inference has a rule for op (shape.c's op table). */
bool spw__shape_has_rule(spw_op op);

/* Multiply-accumulates of one node at the inferred shapes (0 for data movement). */
int64_t spw__node_macs(const spw_graph *g, const spw_node *n);
/* Whether op's output can take fused post ops (ops.c's op table). */
bool spw__op_carries_post(spw_op op);
/* An activation node (Relu, Clip, LeakyRelu, Sigmoid, HardSwish) as the
 * post op it fuses into, with its parameters; false for any other op. */
bool spw__op_activation(const spw_node *n, spw_post_op *out);
/* Parameter count: elements of the node's constant inputs. */
int64_t spw__node_params(const spw_graph *g, const spw_node *n);

/* Passes used by the planner. Each keeps the graph's meaning. */
int spw__pass_fold_batchnorm(spw_graph *g); /* Conv + BatchNormalization -> Conv */
int spw__pass_fuse(spw_graph *g);           /* activations and residual adds into producers */
int spw__pass_drop_identity(spw_graph *g);  /* Identity / no-op Reshape aliases */

/* Deep copy, constants included. */
int spw__graph_clone(const spw_graph *g, spw_graph **out);
/* Copy whose constants point at g's data (marked SHARED): plans bind their
 * own batch on such a copy, so no weight is duplicated. g's constants must
 * outlive the copy. */
int spw__graph_share(const spw_graph *g, spw_graph **out);

#endif

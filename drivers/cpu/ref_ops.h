/* Naive CPU reference kernels: the correctness oracle for every backend.
 * Plain, readable C; double accumulation where a sum runs over many terms. */
#ifndef SPW_CPU_REF_OPS_H
#define SPW_CPU_REF_OPS_H

#include "runtime/graph/graph.h"

/*
 * One kernel per op. in[i] are views of the node's inputs (constants point at
 * their data; an omitted optional input has data == NULL and ndim == 0); out
 * is the node's single output, already sized by shape inference. All 4-D
 * activations are NCHW. Shapes and parameters were validated when the plan
 * was built, so kernels do no checking and cannot fail. Fused post ops
 * (node->post) are NOT applied here: spw__ref_apply_post does that.
 */
typedef void (*spw_ref_kernel)(const spw_node *node, const spw_tensor *in, int n_in,
                               spw_tensor *out);

/* Indexed by spw_op; NULL where the op has no reference kernel. */
extern const spw_ref_kernel spw__ref_kernels[SPW_OP_COUNT];

/* Applies node->post[] in order to out; addends[k] is the view for a
 * SPW_POST_ADD entry k (unused entries ignored). */
void spw__ref_apply_post(const spw_node *node, spw_tensor *out, const spw_tensor *addends);

#endif

/* Vulkan plan builder: Add, Mul and the unary activations. */
#include "drivers/vulkan/vk_plan.h"

/* Strides that read v as broadcast to the 6-axis padded output shape. */
static void bcast_strides(const spw_value *v, int out_nd, uint32_t *s)
{
    int shift = 6 - v->ndim;
    uint32_t st = 1;
    for (int i = 5; i >= 0; i--) {
        int64_t dim = i - shift >= 0 ? v->dims[i - shift] : 1;
        s[i] = dim == 1 ? 0 : st;
        st *= (uint32_t)dim;
    }
    (void)out_nd;
}

int spw__vk_build_eltwise(vk_build *b, const spw_node *n)
{
    const spw_graph *g = b->g;
    const spw_value *y = &g->values[n->outputs[0]];
    const uint64_t total = (uint64_t)spw__value_numel(y);
    if (!total)
        return 0;
    NEW(SPW_VK_SH_ELTWISE, b->tune->wg_1d);
    int rc = spw__vk_operand(b, d, n->inputs[0], &d->push[0]);
    if (rc)
        return rc;
    bool binary = n->op == SPW_OP_ADD || n->op == SPW_OP_MUL;
    if (binary && (rc = spw__vk_operand(b, d, n->inputs[1], &d->push[1])))
        return rc;
    /* Unary: the activation's own post-op code; binary: none. */
    spw_post_op act = {0};
    if (!binary)
        spw__op_activation(n, &act);
    const uint32_t kind = (uint32_t)act.kind;
    const float ua = act.a, ub = act.b;
    uint32_t dims[6], sa[6], sb[6] = {0};
    pad_dims6(y, dims);
    bcast_strides(&g->values[n->inputs[0]], y->ndim, sa);
    if (binary)
        bcast_strides(&g->values[n->inputs[1]], y->ndim, sb);
    spec(d, binary ? (n->op == SPW_OP_MUL) : 2), spec(d, kind), spec(d, f2u(ua)), spec(d, f2u(ub));
    spec(d, (uint32_t)total);
    for (int i = 1; i < 6; i++)
        spec(d, dims[i]);
    for (int i = 0; i < 6; i++)
        spec(d, sa[i]);
    for (int i = 0; i < 6; i++)
        spec(d, sb[i]);
    grid_1d(d, total);
    return 0;
}

bool spw__vk_supports_binary(const spw_graph *g, const spw_node *n)
{
    return n->n_inputs == 2 && n->inputs[1] >= 0 && g->values[n->inputs[1]].ndim <= 6;
}

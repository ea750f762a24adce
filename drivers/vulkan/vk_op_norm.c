/* Vulkan plan builder: Softmax, GDN and the per-channel ops (Quantize,
 * Dequantize, BatchNormalization). */
#include <math.h>

#include "drivers/vulkan/vk_plan.h"

int spw__vk_build_softmax(vk_build *b, const spw_node *n)
{
    const spw_value *y = &b->g->values[n->outputs[0]];
    const int axis = n->p.axis.axis;
    const uint64_t outer = (uint64_t)span(y, 0, axis), inner = (uint64_t)span(y, axis + 1, y->ndim);
    NEW(SPW_VK_SH_SOFTMAX, b->tune->wg_1d);
    int rc = spw__vk_operand(b, d, n->inputs[0], &d->push[0]);
    if (rc)
        return rc;
    spec(d, (uint32_t)outer), spec(d, y->ndim ? (uint32_t)y->dims[axis] : 1),
        spec(d, (uint32_t)inner);
    grid_1d(d, outer * inner);
    return 0;
}

int spw__vk_build_gdn(vk_build *b, const spw_node *n)
{
    const spw_value *x = &b->g->values[n->inputs[0]];
    const uint32_t S = (uint32_t)span(x, 2, x->ndim);
    NEW(SPW_VK_SH_GDN, b->tune->wg_1d);
    int rc;
    if ((rc = spw__vk_operand(b, d, n->inputs[0], &d->push[0])) ||
        (rc = spw__vk_wconst(b, n->inputs[1], &d->push[1])) ||
        (rc = spw__vk_wconst(b, n->inputs[2], &d->push[2])))
        return rc;
    spec(d, (uint32_t)x->dims[1]), spec(d, S), spec(d, (uint32_t)n->p.gdn.inverse);
    d->groups[0] = ceil_div(S, d->spec[0]);
    d->groups[1] = (uint32_t)x->dims[1];
    d->groups[2] = (uint32_t)x->dims[0];
    return d->groups[0] > MAX_GROUPS
               ? spw__error(SPW_EUNSUPPORTED, "vulkan: '%s' too large", n->name)
               : 0;
}

int spw__vk_build_channel(vk_build *b, const spw_node *n)
{
    const spw_graph *g = b->g;
    const spw_value *x = &g->values[n->inputs[0]];
    const uint64_t total = (uint64_t)spw__value_numel(x);
    if (!total)
        return 0;
    NEW(SPW_VK_SH_CHANNEL, b->tune->wg_1d);
    int rc = spw__vk_operand(b, d, n->inputs[0], &d->push[0]);
    if (rc)
        return rc;
    const uint32_t C = x->ndim > 1 ? (uint32_t)x->dims[1] : 1;
    uint32_t mode = n->op == SPW_OP_QUANTIZE ? 0 : n->op == SPW_OP_DEQUANTIZE ? 1 : 2;
    if (mode < 2) {
        if ((rc = spw__vk_wconst(b, n->inputs[1], &d->push[1])))
            return rc;
    } else {
        /* BatchNormalization folded to y = x * k + b, computed in double here. */
        const float *scale = g->values[n->inputs[1]].data, *bias = g->values[n->inputs[2]].data;
        const float *mean = g->values[n->inputs[3]].data, *var = g->values[n->inputs[4]].data;
        float *kb = spw__malloc(sizeof(float) * 2 * C);
        if (!kb)
            return spw__error(SPW_ENOMEM, "vulkan: out of memory");
        for (uint32_t c = 0; c < C; c++) {
            double k = scale[c] / sqrt((double)var[c] + n->p.bn.epsilon);
            kb[c] = (float)k;
            kb[C + c] = (float)(bias[c] - mean[c] * k);
        }
        rc = spw__vk_wpush(b, kb, C, &d->push[1]);
        if (!rc)
            rc = spw__vk_wpush(b, kb + C, C, &d->push[2]);
        spw__free(kb);
        if (rc)
            return rc;
    }
    spec(d, mode), spec(d, C), spec(d, (uint32_t)span(x, 2, x->ndim)), spec(d, (uint32_t)total);
    grid_1d(d, total);
    return 0;
}

bool spw__vk_supports_gdn(const spw_graph *g, const spw_node *n)
{
    const spw_value *x = &g->values[n->inputs[0]];
    return x->ndim >= 2 && !is_const(g, n->inputs[0]) && n->n_inputs == 3 &&
           is_const(g, n->inputs[1]) && is_const(g, n->inputs[2]) && x->dims[0] <= MAX_GROUPS &&
           x->dims[1] <= MAX_GROUPS;
}

bool spw__vk_supports_quant(const spw_graph *g, const spw_node *n)
{
    return n->n_inputs >= 2 && !is_const(g, n->inputs[0]) && is_const(g, n->inputs[1]);
}

bool spw__vk_supports_batch_norm(const spw_graph *g, const spw_node *n)
{
    if (n->n_inputs != 5 || is_const(g, n->inputs[0]) || g->values[n->inputs[0]].ndim < 2)
        return false;
    for (int k = 1; k < 5; k++)
        if (!is_const(g, n->inputs[k]))
            return false;
    return true;
}

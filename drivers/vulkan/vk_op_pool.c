/* Vulkan plan builder: AveragePool, MaxPool and GlobalAveragePool. */
#include "drivers/vulkan/vk_plan.h"

int spw__vk_build_pool(vk_build *b, const spw_node *n)
{
    const spw_pool_params *p = &n->p.pool;
    const spw_value *x = &b->g->values[n->inputs[0]], *y = &b->g->values[n->outputs[0]];
    NEW(SPW_VK_SH_POOL, b->tune->wg_1d);
    int rc = spw__vk_operand(b, d, n->inputs[0], &d->push[0]);
    if (rc)
        return rc;
    const uint32_t OH = (uint32_t)y->dims[2], OW = (uint32_t)y->dims[3];
    spec(d, (uint32_t)x->dims[2]), spec(d, (uint32_t)x->dims[3]), spec(d, OH), spec(d, OW);
    spec(d, (uint32_t)p->kernel[0]), spec(d, (uint32_t)p->kernel[1]);
    spec(d, ONE(p->stride[0])), spec(d, ONE(p->stride[1]));
    spec(d, ONE(p->dilation[0])), spec(d, ONE(p->dilation[1]));
    for (int i = 0; i < 4; i++)
        spec(d, (uint32_t)p->pads[i]);
    spec(d, n->op == SPW_OP_MAX_POOL), spec(d, (uint32_t)p->count_include_pad);
    d->groups[0] = ceil_div((uint64_t)OH * OW, d->spec[0]);
    d->groups[1] = (uint32_t)(x->dims[0] * x->dims[1]);
    d->groups[2] = 1;
    return d->groups[0] > MAX_GROUPS
               ? spw__error(SPW_EUNSUPPORTED, "vulkan: '%s' too large", n->name)
               : 0;
}

int spw__vk_build_gpool(vk_build *b, const spw_node *n)
{
    const spw_value *x = &b->g->values[n->inputs[0]];
    /* The shared-memory reduction halves the workgroup: keep it a power of two. */
    uint32_t wg = 1;
    while (wg * 2 <= b->tune->wg_1d)
        wg *= 2;
    NEW(SPW_VK_SH_GPOOL, wg);
    int rc = spw__vk_operand(b, d, n->inputs[0], &d->push[0]);
    if (rc)
        return rc;
    const uint64_t rows = (uint64_t)span(x, 0, 2);
    spec(d, (uint32_t)span(x, 2, x->ndim));
    d->push[8] = (uint32_t)rows;
    d->groups[0] = rows > MAX_GROUPS ? MAX_GROUPS : (uint32_t)(rows ? rows : 1);
    d->groups[1] = ceil_div(rows ? rows : 1, d->groups[0]);
    d->groups[2] = 1;
    return 0;
}

bool spw__vk_supports_pool(const spw_graph *g, const spw_node *n)
{
    const spw_value *x = &g->values[n->inputs[0]];
    return x->ndim == 4 && !is_const(g, n->inputs[0]) && x->dims[0] * x->dims[1] <= MAX_GROUPS;
}

bool spw__vk_supports_gpool(const spw_graph *g, const spw_node *n)
{
    return g->values[n->inputs[0]].ndim >= 2 && !is_const(g, n->inputs[0]);
}

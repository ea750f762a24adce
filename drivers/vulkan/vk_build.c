/* Vulkan plan builder: the helpers every op file uses (constants, operands,
 * dispatches) and the fp16 conversions around a plan. */
#include <string.h>

#include "drivers/vulkan/vk_plan.h"

/* Appends words to the constants, 16-byte aligned. */
int spw__vk_wpush(vk_build *b, const void *data, size_t words, uint32_t *off)
{
    vk_plan *st = b->st;
    size_t need = (size_t)st->n_wdata + words + 4;
    if (need > (size_t)INT32_MAX)
        return spw__error(SPW_EUNSUPPORTED, "vulkan: constants too large");
    if (spw__grow((void **)&st->wdata, &st->cap_wdata, (int)need, sizeof(float)))
        return spw__error(SPW_ENOMEM, "vulkan: out of memory packing constants");
    *off = (uint32_t)st->n_wdata;
    if (words)
        memcpy(st->wdata + st->n_wdata, data, words * 4);
    st->n_wdata += (int)words;
    while (st->n_wdata % 4)
        st->wdata[st->n_wdata++] = 0.0f;
    return 0;
}

/* Element offset of constant v in the constants buffer, packed on first use. */
int spw__vk_wconst(vk_build *b, int v, uint32_t *off)
{
    vk_plan *st = b->st;
    if (st->woff[v] == NO_WOFF) {
        const spw_value *val = &b->g->values[v];
        if (spw_dtype_size(val->dtype) != 4)
            return spw__error(SPW_EUNSUPPORTED, "vulkan: constant '%s' is not 32-bit", val->name);
        int rc = spw__vk_wpush(b, val->data, val->nbytes / 4, &st->woff[v]);
        if (rc)
            return rc;
    }
    *off = st->woff[v];
    return 0;
}

/* Operand offset in 4-byte words: arena, or constants with bit 31 set. */
int spw__vk_operand(vk_build *b, vk_disp *d, int v, uint32_t *off)
{
    if (is_const(b->g, v)) {
        int rc = spw__vk_wconst(b, v, off);
        *off |= FROM_CONSTS;
        return rc;
    }
    size_t o = b->plan->offsets[v];
    *off = (uint32_t)(o / 4);
    if (d->n_rd < MAX_READS)
        d->rd[d->n_rd++] = (vk_range){o, o + value_bytes(b->g, v)};
    return 0;
}

/* A dispatch of shader (its fp16 build in an fp16 plan) with no post ops. */
vk_disp *spw__vk_add_disp(vk_build *b, int shader, uint32_t wg_x)
{
    vk_plan *st = b->st;
    if (st->n_disp == st->cap_disp &&
        spw__grow((void **)&st->disp, &st->cap_disp, st->n_disp + 1, sizeof(vk_disp)))
        return NULL;
    vk_disp *d = &st->disp[st->n_disp++];
    memset(d, 0, sizeof(*d));
    d->shader = shader + (st->fp16 ? SH_F16 : 0);
    d->step = b->step;
    d->spec[0] = wg_x;
    d->spec[1] = 1;
    d->spec[2] = 1;
    d->n_spec = SPEC_SHAPE;
    return d;
}

vk_disp *spw__vk_new_disp(vk_build *b, int shader, const spw_node *n, uint32_t wg_x)
{
    vk_disp *d = spw__vk_add_disp(b, shader, wg_x);
    if (!d)
        return NULL;
    d->spec[3] = (uint32_t)n->n_post;
    for (int k = 0; k < n->n_post; k++) {
        const spw_post_op *p = &n->post[k];
        d->spec[4 + k] = (uint32_t)p->kind;
        d->spec[8 + k] = f2u(p->a);
        d->spec[12 + k] = f2u(p->b);
        if (p->kind == SPW_POST_ADD) {
            size_t o = b->plan->offsets[p->value];
            d->push[4 + k] = (uint32_t)(o / 4);
            d->rd[d->n_rd++] = (vk_range){o, o + value_bytes(b->g, p->value)};
        }
    }
    int out = n->outputs[0];
    size_t o = b->plan->offsets[out];
    d->push[3] = (uint32_t)(o / 4);
    d->wr = (vk_range){o, o + value_bytes(b->g, out)};
    return d;
}

/* fp16 plans: the plan's f32 input v moves from the arena into the shadow
 * (to_half) before the first layer, or output v back after the last. */
int spw__vk_build_cvt(vk_build *b, int v, bool to_half)
{
    const spw_graph *g = b->g;
    const spw_value *val = &g->values[v];
    const size_t o = b->plan->offsets[v];
    const uint64_t total = (uint64_t)spw__value_numel(val);
    if (val->dtype != SPW_F32 || (val->flags & SPW_VALUE_CONST) || o == SPW_NO_OFFSET || !total)
        return 0;
    vk_disp *d = spw__vk_add_disp(b, SPW_VK_SH_CVT, b->tune->wg_1d);
    if (!d)
        return spw__error(SPW_ENOMEM, "vulkan: out of memory building a plan");
    /* Both sides sit at the same element index: one range in arena terms. */
    const vk_range r = {o, o + value_bytes(g, v)};
    d->push[0] = d->push[3] = (uint32_t)(o / 4);
    d->rd[d->n_rd++] = r;
    d->wr = r;
    spec(d, (uint32_t)total), spec(d, to_half ? 0 : 1);
    grid_1d(d, total);
    return 0;
}

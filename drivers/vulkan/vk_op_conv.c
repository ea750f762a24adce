/* Vulkan plan builder: Conv and ConvTranspose (kernel choice in vk_conv.c). */
#include <stdlib.h>
#include <string.h>

#include "drivers/vulkan/vk_plan.h"

int spw__vk_build_conv(vk_build *b, const spw_node *n)
{
    const spw_graph *g = b->g;
    const spw_conv_params *p = &n->p.conv;
    const spw_value *x = &g->values[n->inputs[0]], *w = &g->values[n->inputs[1]];
    const spw_value *y = &g->values[n->outputs[0]];
    const bool tr = n->op == SPW_OP_CONV_TRANSPOSE;
    const uint32_t N = (uint32_t)x->dims[0], C = (uint32_t)x->dims[1];
    const uint32_t H = (uint32_t)x->dims[2], W = (uint32_t)x->dims[3];
    const uint32_t M = (uint32_t)y->dims[1], OH = (uint32_t)y->dims[2], OW = (uint32_t)y->dims[3];
    const uint32_t KH = (uint32_t)w->dims[2], KW = (uint32_t)w->dims[3];
    const uint32_t G = p->group > 0 ? (uint32_t)p->group : 1;
    const uint32_t cin_g = C / G, cout_g = M / G;
    const bool has_bias = n->n_inputs > 2 && n->inputs[2] >= 0;

    const spw_vk_conv_shape shape = {.n = N,
                                     .c = C,
                                     .h = H,
                                     .w = W,
                                     .m = M,
                                     .oh = OH,
                                     .ow = OW,
                                     .kh = KH,
                                     .kw = KW,
                                     .group = G,
                                     .sh = ONE(p->stride[0]),
                                     .sw = ONE(p->stride[1]),
                                     .dh = ONE(p->dilation[0]),
                                     .dw = ONE(p->dilation[1]),
                                     .pad_t = (uint32_t)p->pads[0],
                                     .pad_l = (uint32_t)p->pads[1],
                                     .pad_b = (uint32_t)p->pads[2],
                                     .pad_r = (uint32_t)p->pads[3],
                                     .transposed = tr};
    spw_vk_conv_choice ch;
    spw__vk_conv_choose(b->tune, &shape, &ch);
    spw__vk_tune_note(b->step, &shape);
    const bool row = ch.kernel == SPW_VK_CONV_ROW;
    const uint32_t tm = ch.tile_m, tp = ch.tile_p;
    NEW(row                                  ? (ch.wsub ? SPW_VK_SH_CONVROWS : SPW_VK_SH_CONVROW)
        : ch.kernel == SPW_VK_CONV_POINTWISE ? (ch.wsub ? SPW_VK_SH_CONV1X1S : SPW_VK_SH_CONV1X1)
                                             : SPW_VK_SH_CONV,
        ch.wg);
    /* Tiles of 4k channels read their weights as vec4s from a copy repacked
     * tile-major: [M/tm][cin_g][KH][KW][tm], the last tile padded with the
     * last channel. Pointwise convs too ([M/tm][C][tm]): 13-22% faster on the
     * encoder's 1x1 shortcuts on lavapipe. */
    const char *wp = getenv("SPW_VULKAN_WPACK");
    const bool wpack = row || ch.wsub || (!tr && tm % 4 == 0 && !(wp && !strcmp(wp, "0")));
    int rc;
    if ((rc = spw__vk_operand(b, d, n->inputs[0], &d->push[0])))
        return rc;
    if (wpack) {
        const float *wd = w->data;
        const size_t taps = (size_t)cin_g * KH * KW, tiles = ceil_div(M, tm);
        float *packed = spw__malloc(sizeof(float) * tiles * taps * tm);
        if (!packed)
            return spw__error(SPW_ENOMEM, "vulkan: out of memory packing weights");
        for (size_t mt = 0; mt < tiles; mt++)
            for (size_t k = 0; k < taps; k++)
                for (size_t t = 0; t < tm; t++) {
                    size_t m = SPW_MIN(mt * tm + t, (size_t)M - 1);
                    packed[(mt * taps + k) * tm + t] = wd[m * taps + k];
                }
        rc = spw__vk_wpush(b, packed, tiles * taps * tm, &d->push[1]);
        spw__free(packed);
    } else {
        rc = spw__vk_wconst(b, n->inputs[1], &d->push[1]);
    }
    if (rc)
        return rc;
    if (has_bias && (rc = spw__vk_wconst(b, n->inputs[2], &d->push[2])))
        return rc;
    if (row) {
        spec(d, cin_g), spec(d, H), spec(d, W), spec(d, M), spec(d, OH), spec(d, OW);
        spec(d, KH), spec(d, KW), spec(d, ONE(p->stride[0])), spec(d, ONE(p->stride[1]));
        spec(d, ONE(p->dilation[0])), spec(d, ONE(p->dilation[1]));
        spec(d, (uint32_t)p->pads[0]), spec(d, (uint32_t)p->pads[1]);
        spec(d, cout_g), spec(d, has_bias), spec(d, tm), spec(d, tp), spec(d, b->tune->subgroup);
    } else if (ch.kernel == SPW_VK_CONV_POINTWISE) {
        spec(d, C), spec(d, H), spec(d, W), spec(d, M), spec(d, OH), spec(d, OW);
        spec(d, ONE(p->stride[0])), spec(d, ONE(p->stride[1]));
        spec(d, has_bias), spec(d, tm), spec(d, tp), spec(d, wpack), spec(d, b->tune->subgroup);
    } else {
        spec(d, cin_g), spec(d, H), spec(d, W), spec(d, M), spec(d, OH), spec(d, OW);
        spec(d, KH), spec(d, KW), spec(d, ONE(p->stride[0])), spec(d, ONE(p->stride[1]));
        spec(d, ONE(p->dilation[0])), spec(d, ONE(p->dilation[1]));
        spec(d, (uint32_t)p->pads[0]), spec(d, (uint32_t)p->pads[1]);
        spec(d, cout_g), spec(d, has_bias), spec(d, tm), spec(d, tr), spec(d, tp), spec(d, wpack);
    }
    memcpy(d->groups, ch.groups, sizeof(d->groups));
    return d->groups[0] > MAX_GROUPS
               ? spw__error(SPW_EUNSUPPORTED, "vulkan: '%s' too large", n->name)
               : 0;
}

bool spw__vk_supports_conv(const spw_graph *g, const spw_node *n)
{
    const spw_value *x = &g->values[n->inputs[0]], *y = &g->values[n->outputs[0]];
    return x->ndim == 4 && !is_const(g, n->inputs[0]) && n->n_inputs >= 2 &&
           is_const(g, n->inputs[1]) && g->values[n->inputs[1]].ndim == 4 &&
           (n->n_inputs < 3 || n->inputs[2] < 0 || is_const(g, n->inputs[2])) &&
           y->dims[0] <= MAX_GROUPS && y->dims[1] <= MAX_GROUPS;
}

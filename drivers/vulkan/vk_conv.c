/* Choice of convolution kernel and tile for one Conv node. */
#include "drivers/vulkan/vk_internal.h"

#include <stdlib.h>
#include <string.h>

static uint32_t cdiv(uint32_t a, uint32_t b)
{
    return (a + b - 1) / b;
}

/* The channel tile near `pref` (a multiple of 4 within [pref/2, 4 pref/3])
 * that wastes the fewest channels on a partial last tile (the largest of
 * equals): 48 channels take 24, 64 take 32 for a preference of 24. */
static uint32_t row_tile_m(uint32_t pref, uint32_t m, uint32_t per_group, bool grouped)
{
    uint32_t lo = SPW_MAX(4u, pref / 2 / 4 * 4), hi = SPW_MAX(lo, pref * 4 / 3 / 4 * 4);
    uint32_t best = 0, best_waste = UINT32_MAX;
    for (uint32_t tm = lo; tm <= hi; tm += 4) {
        if (grouped && per_group % tm)
            continue;
        uint32_t waste = cdiv(m, tm) * tm - m;
        if (waste <= best_waste) {
            best = tm;
            best_waste = waste;
        }
    }
    return best;
}

void spw__vk_conv_choose(const spw_vk_tuning *t, const spw_vk_conv_shape *s,
                         spw_vk_conv_choice *out)
{
    memset(out, 0, sizeof(*out));
    spw_vk_tuning scratch;
    t = spw__vk_tune_apply(t, s, &scratch);
    const uint32_t G = s->group ? s->group : 1, cout_g = s->m / G;
    const bool pointwise = !s->transposed && s->kh == 1 && s->kw == 1 && G == 1 && !s->pad_t &&
                           !s->pad_l && !s->pad_b && !s->pad_r;
    const char *pick = getenv("SPW_VULKAN_CONV");
    const bool generic_only = pick && !strcmp(pick, "generic");

    /* Row-tiled direct conv: not transposed, not pointwise (conv1x1.comp has
     * no halo to share), channel tiles within a group, a segment of input
     * columns that fits in registers. */
    if (!generic_only && t->row_tile_m && !s->transposed && !pointwise) {
        uint32_t tm = row_tile_m(t->row_tile_m, s->m, cout_g, G > 1);
        uint32_t tiles = cdiv(s->ow, t->row_tile_p ? t->row_tile_p : 1);
        uint32_t tp = cdiv(s->ow, tiles); /* balanced tiles along the row */
        uint32_t seg = (tp - 1) * s->sw + (s->kw - 1) * s->dw + 1;
        if (tm && seg <= 64 && s->kh * s->kw <= 49) {
            out->kernel = SPW_VK_CONV_ROW;
            out->wg = t->wg_row;
            out->tile_m = tm;
            out->tile_p = tp;
            out->wsub = t->row_wsub;
            out->groups[0] = cdiv(s->oh * cdiv(s->ow, tp), out->wg);
            out->groups[1] = cdiv(s->m, tm);
            out->groups[2] = s->n;
            return;
        }
    }

    uint32_t tm = t->conv_tile_m, tp = t->conv_tile_p;
    if (!generic_only && pointwise && t->row_wsub && t->row_tile_m) {
        /* Shuffled weights make wide channel tiles cheap, as in the row kernel. */
        tm = row_tile_m(t->row_tile_m, s->m, s->m, false);
        out->wsub = 1;
    }
    while (!out->wsub && tm > 1 && (tm > s->m || (G > 1 && cout_g % tm)))
        tm /= 2;
    while (tp > 1 && tp > s->oh * s->ow)
        tp /= 2;
    out->kernel = pointwise ? SPW_VK_CONV_POINTWISE : SPW_VK_CONV_GENERIC;
    out->wg = t->wg_conv;
    out->tile_m = tm;
    out->tile_p = tp;
    out->groups[0] = cdiv(cdiv(s->oh * s->ow, tp), out->wg);
    out->groups[1] = cdiv(s->m, tm);
    out->groups[2] = s->n;
}

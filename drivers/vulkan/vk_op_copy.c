/* Vulkan plan builder: the copies (Reshape, Flatten, Identity, Transpose,
 * Concat) and Pad. */
#include "drivers/vulkan/vk_plan.h"

/* Pad as at most 6 axes: runs of axes that are not padded merge into one,
 * so higher ranks fit when few of their axes are padded. Fills the output
 * dims, input dims and begin pads (outermost first, leading axes 1 / 0) and
 * returns the axis count, or -1 when more than 6 remain. */
int spw__vk_pad_axes(const spw_graph *g, const spw_node *n, uint32_t *od, uint32_t *xd, int32_t *pb)
{
    const spw_value *x = &g->values[n->inputs[0]], *y = &g->values[n->outputs[0]];
    const spw_pad_params *p = &n->p.pad;
    int64_t o[SPW_MAX_DIMS], xi[SPW_MAX_DIMS], b[SPW_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < x->ndim; i++) {
        const int64_t begin = i < p->ndim ? p->pads[i] : 0;
        const int64_t end = i < p->ndim ? p->pads[p->ndim + i] : 0;
        /* Two neighbouring axes without pads read as one. */
        const bool plain = !begin && !end;
        if (plain && k > 0 && b[k - 1] == 0 && o[k - 1] == xi[k - 1]) {
            o[k - 1] *= y->dims[i];
            xi[k - 1] *= x->dims[i];
            continue;
        }
        o[k] = y->dims[i];
        xi[k] = x->dims[i];
        b[k] = begin;
        k++;
    }
    if (k > 6)
        return -1;
    for (int i = 0; i < 6; i++) {
        int src = i - (6 - k);
        if (od)
            od[i] = src >= 0 ? (uint32_t)o[src] : 1;
        if (xd)
            xd[i] = src >= 0 ? (uint32_t)xi[src] : 1;
        if (pb)
            pb[i] = src >= 0 ? (int32_t)b[src] : 0;
    }
    return k;
}

/* One strided copy: dims (6, outermost first), source and destination strides. */
static int copy_disp(vk_build *b, const spw_node *n, int src, uint32_t dst_off,
                     const uint32_t *dims, const uint32_t *ss, const uint32_t *ds, vk_range wr)
{
    uint64_t total = 1;
    for (int i = 0; i < 6; i++)
        total *= dims[i];
    if (!total)
        return 0;
    NEW(SPW_VK_SH_COPY, b->tune->wg_1d);
    int rc = spw__vk_operand(b, d, src, &d->push[0]);
    if (rc)
        return rc;
    d->push[3] = dst_off;
    d->wr = wr;
    spec(d, (uint32_t)total);
    for (int i = 1; i < 6; i++)
        spec(d, dims[i]);
    for (int i = 0; i < 6; i++)
        spec(d, ss[i]);
    for (int i = 0; i < 6; i++)
        spec(d, ds[i]);
    /* fp16 plans keep f32 tensors as halves: copy those 16 bits at a time. */
    spec(d, b->st->fp16 && b->g->values[n->outputs[0]].dtype == SPW_F32);
    grid_1d(d, total);
    return 0;
}

int spw__vk_build_copy(vk_build *b, const spw_node *n)
{
    const spw_graph *g = b->g;
    int out = n->outputs[0];
    const spw_value *y = &g->values[out];
    size_t yo = b->plan->offsets[out];
    vk_range wr = {yo, yo + value_bytes(g, out)};
    uint32_t dims[6] = {1, 1, 1, 1, 1, 1}, ss[6] = {0}, ds[6] = {0};

    if (n->op == SPW_OP_TRANSPOSE) {
        const spw_value *x = &g->values[n->inputs[0]];
        int64_t xs[SPW_MAX_DIMS];
        int64_t s = 1;
        for (int i = x->ndim - 1; i >= 0; i--) {
            xs[i] = s;
            s *= x->dims[i];
        }
        int shift = 6 - y->ndim;
        pad_dims6(y, dims);
        uint32_t st = 1;
        for (int i = 5; i >= shift; i--) {
            ss[i] = (uint32_t)xs[n->p.transpose.perm[i - shift]];
            ds[i] = st;
            st *= dims[i];
        }
        return copy_disp(b, n, n->inputs[0], (uint32_t)(yo / 4), dims, ss, ds, wr);
    }
    if (n->op == SPW_OP_CONCAT) {
        const int axis = n->p.axis.axis;
        const uint32_t outer = (uint32_t)span(y, 0, axis);
        const uint32_t inner = (uint32_t)span(y, axis + 1, y->ndim);
        const uint32_t row = (uint32_t)y->dims[axis] * inner;
        uint32_t at = 0;
        for (int k = 0; k < n->n_inputs; k++) {
            uint32_t len = (uint32_t)g->values[n->inputs[k]].dims[axis] * inner;
            uint32_t cd[6] = {outer, 1, 1, 1, 1, len};
            uint32_t cs[6] = {len, 0, 0, 0, 0, 1}, cds[6] = {row, 0, 0, 0, 0, 1};
            int rc = copy_disp(b, n, n->inputs[k], (uint32_t)(yo / 4) + at, cd, cs, cds, wr);
            if (rc)
                return rc;
            at += len;
        }
        return 0;
    }
    /* Reshape, Flatten, Identity: one run, nothing at all when aliased. */
    if (!is_const(g, n->inputs[0]) && b->plan->offsets[n->inputs[0]] == yo)
        return 0;
    dims[0] = (uint32_t)spw__value_numel(y);
    ss[0] = ds[0] = 1;
    return copy_disp(b, n, n->inputs[0], (uint32_t)(yo / 4), dims, ss, ds, wr);
}

int spw__vk_build_pad(vk_build *b, const spw_node *n)
{
    const spw_value *y = &b->g->values[n->outputs[0]];
    const uint64_t total = (uint64_t)spw__value_numel(y);
    if (!total)
        return 0;
    uint32_t od[6], xd[6];
    int32_t pb[6];
    if (spw__vk_pad_axes(b->g, n, od, xd, pb) < 0)
        return spw__error(SPW_EUNSUPPORTED, "vulkan: '%s' pads more than 6 axes", n->name);
    NEW(SPW_VK_SH_PAD, b->tune->wg_1d);
    int rc = spw__vk_operand(b, d, n->inputs[0], &d->push[0]);
    if (rc)
        return rc;
    spec(d, (uint32_t)total);
    for (int i = 1; i < 6; i++)
        spec(d, od[i]);
    for (int i = 0; i < 6; i++)
        spec(d, xd[i]);
    for (int i = 0; i < 6; i++)
        spec(d, (uint32_t)pb[i]);
    spec(d, (uint32_t)n->p.pad.mode), spec(d, f2u(n->p.pad.value));
    grid_1d(d, total);
    return 0;
}

bool spw__vk_supports_copy(const spw_graph *g, const spw_node *n)
{
    const spw_value *x = &g->values[n->inputs[0]];
    return spw_dtype_size(x->dtype) == 4 && x->ndim <= 6;
}

bool spw__vk_supports_concat(const spw_graph *g, const spw_node *n)
{
    for (int k = 0; k < n->n_inputs; k++)
        if (n->inputs[k] < 0 || spw_dtype_size(g->values[n->inputs[k]].dtype) != 4)
            return false;
    return true;
}

bool spw__vk_supports_pad(const spw_graph *g, const spw_node *n)
{
    return spw__value_numel(&g->values[n->inputs[0]]) < ((int64_t)1 << 31) &&
           spw__vk_pad_axes(g, n, NULL, NULL, NULL) >= 0;
}

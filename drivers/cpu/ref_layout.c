/* Reference data movement: Identity/Reshape/Flatten, Concat, Transpose, Pad.
 * Byte copies by element size, so any element type works. */
#include <string.h>

#include "drivers/cpu/ref_internal.h"

/* Identity, Reshape and Flatten keep the row-major order: a plain copy. The
 * planner may alias the output onto the input, hence memmove and the check. */
SPW__REF_KERNEL(spw__ref_copy)
{
    size_t bytes = (size_t)spw__ref_numel(out) * spw__ref_esize(in[0].dtype);
    if (out->data != in[0].data && bytes)
        memmove(out->data, in[0].data, bytes);
}

/* Concat along axis: for each index over the axes before it, each input
 * contributes one contiguous run of dims[axis] * (product of later axes). */
SPW__REF_KERNEL(spw__ref_concat)
{
    const int axis = node->p.axis.axis;
    const size_t es = spw__ref_esize(out->dtype);
    const int64_t outer = spw__ref_span(out, 0, axis);
    const int64_t inner = spw__ref_span(out, axis + 1, out->ndim);
    unsigned char *y = out->data;

    for (int64_t o = 0; o < outer; o++)
        for (int i = 0; i < n_in; i++) {
            size_t run = (size_t)(in[i].dims[axis] * inner) * es;
            if (!run)
                continue;
            memcpy(y, (const unsigned char *)in[i].data + (size_t)o * run, run);
            y += run;
        }
}

/* Transpose: output axis i is input axis perm[i]. */
SPW__REF_KERNEL(spw__ref_transpose)
{
    const spw_tensor *x = &in[0];
    const int nd = out->ndim;
    const size_t es = spw__ref_esize(x->dtype);
    const unsigned char *xd = x->data;
    unsigned char *yd = out->data;

    if (spw__ref_numel(out) == 0)
        return;
    int64_t xs[SPW_MAX_DIMS], step[SPW_MAX_DIMS], idx[SPW_MAX_DIMS] = {0};
    spw__ref_strides(x, xs);
    for (int i = 0; i < nd; i++)
        step[i] = xs[node->p.transpose.perm[i]];

    int64_t o = 0;
    do {
        int64_t src = 0;
        for (int i = 0; i < nd; i++)
            src += idx[i] * step[i];
        memcpy(yd + (size_t)o * es, xd + (size_t)src * es, es);
        o++;
    } while (spw__ref_next_index(idx, out->dims, nd));
}

/* Maps output coordinate i (already shifted by the begin pad) into [0, n)
 * for reflect and edge; -1 means "outside" for constant. */
static int64_t pad_source(int64_t i, int64_t n, spw_pad_mode mode)
{
    if (i >= 0 && i < n)
        return i;
    switch (mode) {
    case SPW_PAD_EDGE:
        return i < 0 ? 0 : n - 1;
    case SPW_PAD_REFLECT: {
        if (n == 1)
            return 0;
        /* Mirror without repeating the border: period 2(n-1), like numpy. */
        int64_t period = 2 * (n - 1);
        i %= period;
        if (i < 0)
            i += period;
        return i < n ? i : period - i;
    }
    default:
        return -1;
    }
}

/* Pad: begins may be negative (cropping); the output shape already holds the ends. */
SPW__REF_KERNEL(spw__ref_pad)
{
    const spw_pad_params *p = &node->p.pad;
    const spw_tensor *x = &in[0];
    const int nd = out->ndim;
    const size_t es = spw__ref_esize(x->dtype);
    const unsigned char *xd = x->data;
    unsigned char *yd = out->data;

    if (spw__ref_numel(out) == 0)
        return;

    /* The constant as one element of the tensor's type. */
    unsigned char fill[8] = {0};
    if (x->dtype == SPW_F32) {
        float f = p->value;
        memcpy(fill, &f, sizeof(f));
    } else if (x->dtype == SPW_I32) {
        int32_t v = (int32_t)p->value;
        memcpy(fill, &v, sizeof(v));
    } else if (x->dtype == SPW_I64) {
        int64_t v = (int64_t)p->value;
        memcpy(fill, &v, sizeof(v));
    }

    int64_t xs[SPW_MAX_DIMS], idx[SPW_MAX_DIMS] = {0};
    spw__ref_strides(x, xs);
    int64_t o = 0;
    do {
        int64_t src = 0;
        for (int i = 0; i < nd && src >= 0; i++) {
            int64_t begin = i < p->ndim ? p->pads[i] : 0;
            int64_t s = pad_source(idx[i] - begin, x->dims[i], p->mode);
            src = s < 0 ? -1 : src + s * xs[i];
        }
        memcpy(yd + (size_t)o * es, src < 0 ? fill : xd + (size_t)src * es, es);
        o++;
    } while (spw__ref_next_index(idx, out->dims, nd));
}

/* Reference spatial kernels: Conv, ConvTranspose and the pools, NCHW f32.
 *
 * Every output element is computed on its own by gathering the inputs that
 * reach it (also for ConvTranspose), summed in double. Slow by design: these
 * loops are the definition the fast backends are checked against. */
#include <math.h>

#include "drivers/cpu/ref_internal.h"

/* Output position o along one axis reads input o*stride - pad + k*dilation. */
static inline int64_t tap(int64_t o, int stride, int pad, int64_t k, int dilation)
{
    return o * stride - pad + k * dilation;
}

static int positive_or_one(int v)
{
    return v > 0 ? v : 1;
}

/*
 * Conv: X [N, C, H, W], W [M, C/group, kH, kW], optional B [M].
 * y[n, m, oh, ow] = B[m] + sum over the group's channels and the kernel taps
 * that land inside X (pads read as zero).
 */
SPW__REF_KERNEL(spw__ref_conv)
{
    const spw_conv_params *p = &node->p.conv;
    const spw_tensor *x = &in[0], *w = &in[1];
    const float *bias = n_in > 2 ? (const float *)in[2].data : NULL;
    const float *xd = x->data, *wd = w->data;
    float *yd = out->data;

    const int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    const int64_t M = out->dims[1], OH = out->dims[2], OW = out->dims[3];
    const int64_t KH = w->dims[2], KW = w->dims[3];
    const int64_t G = positive_or_one(p->group);
    const int64_t cin_g = C / G, cout_g = M / G;
    const int sh = positive_or_one(p->stride[0]), sw = positive_or_one(p->stride[1]);
    const int dh = positive_or_one(p->dilation[0]), dw = positive_or_one(p->dilation[1]);

    for (int64_t n = 0; n < N; n++)
        for (int64_t m = 0; m < M; m++) {
            const int64_t g = m / cout_g;
            const float *wm = wd + m * cin_g * KH * KW;
            float *ym = yd + (n * M + m) * OH * OW;
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    double acc = bias ? bias[m] : 0.0;
                    for (int64_t c = 0; c < cin_g; c++) {
                        const float *xc = xd + (n * C + g * cin_g + c) * H * W;
                        const float *wc = wm + c * KH * KW;
                        for (int64_t kh = 0; kh < KH; kh++) {
                            int64_t ih = tap(oh, sh, p->pads[0], kh, dh);
                            if (ih < 0 || ih >= H)
                                continue;
                            for (int64_t kw = 0; kw < KW; kw++) {
                                int64_t iw = tap(ow, sw, p->pads[1], kw, dw);
                                if (iw < 0 || iw >= W)
                                    continue;
                                acc += (double)xc[ih * W + iw] * wc[kh * KW + kw];
                            }
                        }
                    }
                    ym[oh * OW + ow] = (float)acc;
                }
        }
}

/*
 * ConvTranspose: X [N, C, H, W], W [C, M/group, kH, kW], optional B [M].
 * Input (ih, iw) with tap (kh, kw) lands on output ih*stride - pad + kh*dilation;
 * here each output inverts that relation to find the inputs landing on it.
 * output_padding only enlarges the output (already in out->dims): the extra
 * rows and columns get whatever inputs reach them, or just the bias.
 */
SPW__REF_KERNEL(spw__ref_conv_transpose)
{
    const spw_conv_params *p = &node->p.conv;
    const spw_tensor *x = &in[0], *w = &in[1];
    const float *bias = n_in > 2 ? (const float *)in[2].data : NULL;
    const float *xd = x->data, *wd = w->data;
    float *yd = out->data;

    const int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    const int64_t M = out->dims[1], OH = out->dims[2], OW = out->dims[3];
    const int64_t KH = w->dims[2], KW = w->dims[3];
    const int64_t G = positive_or_one(p->group);
    const int64_t cin_g = C / G, cout_g = M / G;
    const int sh = positive_or_one(p->stride[0]), sw = positive_or_one(p->stride[1]);
    const int dh = positive_or_one(p->dilation[0]), dw = positive_or_one(p->dilation[1]);

    for (int64_t n = 0; n < N; n++)
        for (int64_t m = 0; m < M; m++) {
            const int64_t g = m / cout_g, mg = m % cout_g;
            float *ym = yd + (n * M + m) * OH * OW;
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    double acc = bias ? bias[m] : 0.0;
                    for (int64_t c = 0; c < cin_g; c++) {
                        const int64_t ic = g * cin_g + c;
                        const float *xc = xd + (n * C + ic) * H * W;
                        const float *wc = wd + (ic * cout_g + mg) * KH * KW;
                        for (int64_t kh = 0; kh < KH; kh++) {
                            int64_t th = oh + p->pads[0] - kh * dh;
                            if (th < 0 || th % sh)
                                continue;
                            int64_t ih = th / sh;
                            if (ih >= H)
                                continue;
                            for (int64_t kw = 0; kw < KW; kw++) {
                                int64_t tw = ow + p->pads[1] - kw * dw;
                                if (tw < 0 || tw % sw)
                                    continue;
                                int64_t iw = tw / sw;
                                if (iw >= W)
                                    continue;
                                acc += (double)xc[ih * W + iw] * wc[kh * KW + kw];
                            }
                        }
                    }
                    ym[oh * OW + ow] = (float)acc;
                }
        }
}

/*
 * Shared walk of the pools. Taps outside X are skipped. For AveragePool with
 * count_include_pad the divisor also counts taps in the declared pads, but not
 * taps past them (which only ceil_mode creates), as PyTorch and ONNX Runtime do.
 */
static void pool2d(const spw_node *node, const spw_tensor *x, spw_tensor *out, int is_max)
{
    const spw_pool_params *p = &node->p.pool;
    const float *xd = x->data;
    float *yd = out->data;

    const int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    const int64_t OH = out->dims[2], OW = out->dims[3];
    const int64_t KH = p->kernel[0], KW = p->kernel[1];
    const int sh = positive_or_one(p->stride[0]), sw = positive_or_one(p->stride[1]);
    const int dh = positive_or_one(p->dilation[0]), dw = positive_or_one(p->dilation[1]);

    for (int64_t nc = 0; nc < N * C; nc++) {
        const float *xc = xd + nc * H * W;
        float *yc = yd + nc * OH * OW;
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                double sum = 0.0;
                float best = -INFINITY;
                int64_t valid = 0, padded = 0;
                for (int64_t kh = 0; kh < KH; kh++) {
                    int64_t ih = tap(oh, sh, p->pads[0], kh, dh);
                    int h_in = ih >= 0 && ih < H;
                    int h_pad = ih >= -p->pads[0] && ih < H + p->pads[2];
                    for (int64_t kw = 0; kw < KW; kw++) {
                        int64_t iw = tap(ow, sw, p->pads[1], kw, dw);
                        int w_in = iw >= 0 && iw < W;
                        int w_pad = iw >= -p->pads[1] && iw < W + p->pads[3];
                        if (h_pad && w_pad)
                            padded++;
                        if (!h_in || !w_in)
                            continue;
                        float v = xc[ih * W + iw];
                        valid++;
                        sum += v;
                        /* NaN wins, as in PyTorch's max pooling. */
                        if (v > best || isnan(v))
                            best = isnan(best) ? best : v;
                    }
                }
                float r;
                if (is_max) {
                    r = best;
                } else {
                    int64_t div = p->count_include_pad ? padded : valid;
                    r = div > 0 ? (float)(sum / (double)div) : 0.0f;
                }
                yc[oh * OW + ow] = r;
            }
    }
}

SPW__REF_KERNEL(spw__ref_avg_pool)
{
    pool2d(node, &in[0], out, 0);
}

SPW__REF_KERNEL(spw__ref_max_pool)
{
    pool2d(node, &in[0], out, 1);
}

/* GlobalAveragePool: mean over every axis after N and C (any rank >= 2). */
SPW__REF_KERNEL(spw__ref_global_avg_pool)
{
    const spw_tensor *x = &in[0];
    const float *xd = x->data;
    float *yd = out->data;
    const int64_t NC = spw__ref_span(x, 0, 2 < x->ndim ? 2 : x->ndim);
    const int64_t S = spw__ref_span(x, 2, x->ndim);

    for (int64_t i = 0; i < NC; i++) {
        double sum = 0.0;
        for (int64_t s = 0; s < S; s++)
            sum += xd[i * S + s];
        yd[i] = S > 0 ? (float)(sum / (double)S) : 0.0f;
    }
}

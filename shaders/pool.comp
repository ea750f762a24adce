// AveragePool and MaxPool, NCHW. Taps outside the input are skipped; with
// count_include_pad the divisor counts taps in the declared pads only (the
// reference's rule). Max lets NaN win, as PyTorch does.
#version 450
#include "common.glsl"

layout(constant_id = 16) const uint H = 1;
layout(constant_id = 17) const uint W = 1;
layout(constant_id = 18) const uint OH = 1;
layout(constant_id = 19) const uint OW = 1;
layout(constant_id = 20) const uint KH = 1;
layout(constant_id = 21) const uint KW = 1;
layout(constant_id = 22) const int SH = 1;
layout(constant_id = 23) const int SW = 1;
layout(constant_id = 24) const int DH = 1;
layout(constant_id = 25) const int DW = 1;
layout(constant_id = 26) const int PT = 0;
layout(constant_id = 27) const int PL = 0;
layout(constant_id = 28) const int PB = 0;
layout(constant_id = 29) const int PR = 0;
layout(constant_id = 30) const uint IS_MAX = 0;
layout(constant_id = 31) const uint COUNT_PAD = 0;

void main()
{
    const uint pix = gl_GlobalInvocationID.x;
    const uint nc = gl_GlobalInvocationID.y;
    if (pix >= OH * OW)
        return;
    const int oh = int(pix / OW), ow = int(pix % OW);
    const uint xc = pc.in0 + nc * H * W;
    float sum = 0.0;
    float best = uintBitsToFloat(0xff800000u); // -inf
    uint valid = 0u, padded = 0u;
    [[unroll]] for (uint kh = 0; kh < KH; kh++) {
        const int ih = oh * SH - PT + int(kh) * DH;
        const bool h_in = ih >= 0 && ih < int(H);
        const bool h_pad = ih >= -PT && ih < int(H) + PB;
        [[unroll]] for (uint kw = 0; kw < KW; kw++) {
            const int iw = ow * SW - PL + int(kw) * DW;
            const bool w_in = iw >= 0 && iw < int(W);
            const bool w_pad = iw >= -PL && iw < int(W) + PR;
            if (h_pad && w_pad)
                padded++;
            if (!h_in || !w_in)
                continue;
            const float v = LDA(xc + uint(ih) * W + uint(iw));
            valid++;
            sum += v;
            if (v > best || isnan(v))
                best = isnan(best) ? best : v;
        }
    }
    float r;
    if (IS_MAX != 0u) {
        r = best;
    } else {
        const uint div = COUNT_PAD != 0u ? padded : valid;
        r = div > 0u ? sum / float(div) : 0.0;
    }
    const uint o = nc * OH * OW + pix;
    STA(pc.out0 + o, epilogue(r, o));
}

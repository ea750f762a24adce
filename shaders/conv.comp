// Conv and ConvTranspose, NCHW, any kernel, stride, dilation, padding and
// group count, fused bias + post ops. Each invocation computes TM output
// channels of one output pixel, so every input load feeds TM multiply-adds and
// the weight loads are uniform across the workgroup. Specialised per layer:
// 3x3, strided, dilated and depthwise convs are this shader with different
// constants (the loops are unrolled for the known sizes).
#version 450
#include "common.glsl"

layout(constant_id = 16) const uint CIN = 1;    // input channels per group
layout(constant_id = 17) const uint H = 1;
layout(constant_id = 18) const uint W = 1;
layout(constant_id = 19) const uint M = 1;      // output channels
layout(constant_id = 20) const uint OH = 1;
layout(constant_id = 21) const uint OW = 1;
layout(constant_id = 22) const uint KH = 1;
layout(constant_id = 23) const uint KW = 1;
layout(constant_id = 24) const int SH = 1;
layout(constant_id = 25) const int SW = 1;
layout(constant_id = 26) const int DH = 1;
layout(constant_id = 27) const int DW = 1;
layout(constant_id = 28) const int PT = 0;
layout(constant_id = 29) const int PL = 0;
layout(constant_id = 30) const uint COUT_G = 1; // output channels per group
layout(constant_id = 31) const uint HAS_BIAS = 0;
layout(constant_id = 32) const uint TM = 1;     // divides COUT_G when groups > 1
layout(constant_id = 33) const uint TRANSPOSED = 0;

void main()
{
    const uint pix = gl_GlobalInvocationID.x;
    const uint m0 = gl_GlobalInvocationID.y * TM;
    const uint n = gl_GlobalInvocationID.z;
    if (pix >= OH * OW)
        return;
    const int oh = int(pix / OW), ow = int(pix % OW);
    const uint g = m0 / COUT_G;
    const uint C = CIN * (M / COUT_G);
    const uint xbase = pc.in0 + (n * C + g * CIN) * H * W;

    float acc[TM];
    [[unroll]] for (uint t = 0; t < TM; t++)
        acc[t] = 0.0;

    // A partial last tile reads the last channel's weights and drops the result.
    uint wrow[TM];
    [[unroll]] for (uint t = 0; t < TM; t++) {
        uint m = min(m0 + t, M - 1u);
        wrow[t] = TRANSPOSED != 0u ? (g * CIN * COUT_G + (m % COUT_G)) * KH * KW
                                   : m * CIN * KH * KW;
    }
    const uint cstride = TRANSPOSED != 0u ? COUT_G * KH * KW : KH * KW;

    for (uint c = 0; c < CIN; c++) {
        const uint xc = xbase + c * H * W;
        const uint wc = c * cstride;
        [[unroll]] for (uint kh = 0; kh < KH; kh++) {
            int ih;
            if (TRANSPOSED != 0u) {
                int th = oh + PT - int(kh) * DH;
                if (th < 0 || th % SH != 0)
                    continue;
                ih = th / SH;
            } else {
                ih = oh * SH - PT + int(kh) * DH;
            }
            if (ih < 0 || ih >= int(H))
                continue;
            [[unroll]] for (uint kw = 0; kw < KW; kw++) {
                int iw;
                if (TRANSPOSED != 0u) {
                    int tw = ow + PL - int(kw) * DW;
                    if (tw < 0 || tw % SW != 0)
                        continue;
                    iw = tw / SW;
                } else {
                    iw = ow * SW - PL + int(kw) * DW;
                }
                if (iw < 0 || iw >= int(W))
                    continue;
                const float xv = A[xc + uint(ih) * W + uint(iw)];
                const uint wk = pc.in1 + wc + kh * KW + kw;
                [[unroll]] for (uint t = 0; t < TM; t++)
                    acc[t] += xv * Wt[wk + wrow[t]];
            }
        }
    }
    [[unroll]] for (uint t = 0; t < TM; t++) {
        const uint m = m0 + t;
        if (m >= M)
            break;
        float v = acc[t];
        if (HAS_BIAS != 0u)
            v += Wt[pc.in2 + m];
        const uint o = (n * M + m) * OH * OW + pix;
        A[pc.out0 + o] = epilogue(v, o);
    }
}

// Conv and ConvTranspose, NCHW, any kernel, stride, dilation, padding and
// group count, fused bias + post ops. Each invocation computes a register
// tile of TM output channels x TP consecutive output pixels, so one input load
// feeds TM multiply-adds and one weight load feeds TP; the weight loads are
// uniform across the workgroup. Specialised per layer: 3x3, strided, dilated
// and depthwise convs are this shader with different constants (the kernel
// loops are unrolled for the known sizes).
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
layout(constant_id = 34) const uint TP = 1;     // output pixels per invocation
// 1: the host repacked the weights as [M/TM][CIN][KH][KW][TM] (TM a multiple
// of 4), so a tile's weights for one tap are TM/4 aligned vec4 loads.
layout(constant_id = 35) const uint WPACK = 0;

layout(std430, set = 0, binding = 1) readonly buffer Consts4 { vec4 Wt4[]; };

void main()
{
    const uint pix0 = gl_GlobalInvocationID.x * TP;
    const uint m0 = gl_GlobalInvocationID.y * TM;
    const uint n = gl_GlobalInvocationID.z;
    if (pix0 >= OH * OW)
        return;
    const uint g = m0 / COUT_G;
    const uint C = CIN * (M / COUT_G);
    const uint xbase = pc.in0 + (n * C + g * CIN) * H * W;

    // Where each pixel of the tile starts reading; pixels past the end repeat
    // the last one and are dropped at the store.
    int oh[TP], ow[TP];
    [[unroll]] for (uint p = 0; p < TP; p++) {
        const uint q = min(pix0 + p, OH * OW - 1u);
        oh[p] = int(q / OW);
        ow[p] = int(q % OW);
    }

    float acc[TM][TP];
    [[unroll]] for (uint t = 0; t < TM; t++)
        [[unroll]] for (uint p = 0; p < TP; p++)
            acc[t][p] = 0.0;

    // A partial last channel tile reads the last channel's weights and drops the result.
    uint wrow[TM];
    [[unroll]] for (uint t = 0; t < TM; t++) {
        uint m = min(m0 + t, M - 1u);
        wrow[t] = TRANSPOSED != 0u ? (g * CIN * COUT_G + (m % COUT_G)) * KH * KW
                                   : m * CIN * KH * KW;
    }
    const uint cstride = TRANSPOSED != 0u ? COUT_G * KH * KW : KH * KW;

    for (uint c = 0; c < CIN; c++) {
        const uint xc = xbase + c * H * W;
        const uint wc = pc.in1 + c * cstride;
        [[unroll]] for (uint kh = 0; kh < KH; kh++) {
            [[unroll]] for (uint kw = 0; kw < KW; kw++) {
                float xv[TP];
                [[unroll]] for (uint p = 0; p < TP; p++) {
                    int ih, iw;
                    bool ok;
                    if (TRANSPOSED != 0u) {
                        const int th = oh[p] + PT - int(kh) * DH;
                        const int tw = ow[p] + PL - int(kw) * DW;
                        ok = th >= 0 && tw >= 0 && th % SH == 0 && tw % SW == 0;
                        ih = th / SH;
                        iw = tw / SW;
                    } else {
                        ih = oh[p] * SH - PT + int(kh) * DH;
                        iw = ow[p] * SW - PL + int(kw) * DW;
                        ok = true;
                    }
                    ok = ok && ih >= 0 && ih < int(H) && iw >= 0 && iw < int(W);
                    xv[p] = ok ? LDA(xc + uint(ih) * W + uint(iw)) : 0.0;
                }
                if (WPACK != 0u) {
                    const uint w4 = (pc.in1 >> 2u) +
                                    ((gl_GlobalInvocationID.y * CIN + c) * KH * KW + kh * KW + kw) * (TM / 4u);
                    [[unroll]] for (uint q = 0; q < TM / 4u; q++) {
                        const vec4 wv = Wt4[w4 + q];
                        [[unroll]] for (uint i = 0; i < 4u; i++)
                            [[unroll]] for (uint p = 0; p < TP; p++)
                                acc[q * 4u + i][p] += xv[p] * wv[i];
                    }
                } else {
                    const uint wk = wc + kh * KW + kw;
                    [[unroll]] for (uint t = 0; t < TM; t++) {
                        const float wv = Wt[wk + wrow[t]];
                        [[unroll]] for (uint p = 0; p < TP; p++)
                            acc[t][p] += xv[p] * wv;
                    }
                }
            }
        }
    }
    [[unroll]] for (uint t = 0; t < TM; t++) {
        const uint m = m0 + t;
        if (m >= M)
            break;
        const float bias = HAS_BIAS != 0u ? Wt[pc.in2 + m] : 0.0;
        [[unroll]] for (uint p = 0; p < TP; p++) {
            if (pix0 + p >= OH * OW)
                break;
            const uint o = (n * M + m) * OH * OW + pix0 + p;
            STA(pc.out0 + o, epilogue(acc[t][p] + bias, o));
        }
    }
}

// Pointwise (1x1, no padding) Conv, optionally strided, groups of 1: a matrix
// product over channels. A register tile of TM output channels x TP pixels per
// invocation, no bounds checks in the inner loop.
//
// Built twice: conv1x1.comp, and conv1x1s.comp with SPW_PW_SHUFFLE (packed
// weights only), where each subgroup loads the weights of SG input channels at
// once, spread over its lanes, and hands them round with subgroupShuffle (see
// convrow.glsl for why).
#ifdef SPW_PW_SHUFFLE
#extension GL_KHR_shader_subgroup_shuffle : require
#endif
#include "common.glsl"

layout(constant_id = 16) const uint CIN = 1;
layout(constant_id = 17) const uint H = 1;
layout(constant_id = 18) const uint W = 1;
layout(constant_id = 19) const uint M = 1;
layout(constant_id = 20) const uint OH = 1;
layout(constant_id = 21) const uint OW = 1;
layout(constant_id = 22) const uint SH = 1;
layout(constant_id = 23) const uint SW = 1;
layout(constant_id = 24) const uint HAS_BIAS = 0;
layout(constant_id = 25) const uint TM = 1;
layout(constant_id = 26) const uint TP = 1;
// 1: the host repacked the weights as [M/TM][CIN][TM] (TM a multiple of 4),
// so a tile's weights for one input channel are TM/4 aligned vec4 loads.
layout(constant_id = 27) const uint WPACK = 0;
layout(constant_id = 28) const uint SG = 1; // subgroup size (shuffle build)
const uint NB = TM / 4u; // shuffle build: vec4s of weights per channel, loads per lane

layout(std430, set = 0, binding = 1) readonly buffer Consts4 { vec4 Wt4[]; };

void main()
{
    const uint pix0 = gl_GlobalInvocationID.x * TP;
    const uint m0 = gl_GlobalInvocationID.y * TM;
    const uint n = gl_GlobalInvocationID.z;
    // Lanes past the end compute the last pixel and skip the store, so every
    // lane of a subgroup reaches the shuffles.
    const bool live = pix0 < OH * OW;
    uint xp[TP];
    [[unroll]] for (uint p = 0; p < TP; p++) {
        const uint q = min(pix0 + p, OH * OW - 1u);
        xp[p] = pc.in0 + n * CIN * H * W + (q / OW) * SH * W + (q % OW) * SW;
    }
    float acc[TM][TP];
    uint wrow[TM];
    [[unroll]] for (uint t = 0; t < TM; t++) {
        [[unroll]] for (uint p = 0; p < TP; p++)
            acc[t][p] = 0.0;
        wrow[t] = pc.in1 + min(m0 + t, M - 1u) * CIN;
    }
#ifdef SPW_PW_SHUFFLE
    for (uint cb = 0; cb < CIN; cb += SG) {
        const uint wb = (pc.in1 >> 2u) + (gl_WorkGroupID.y * CIN + cb) * NB;
        const uint lim = min(CIN - cb, SG) * NB;
        vec4 wl[NB];
        [[unroll]] for (uint l = 0; l < NB; l++)
            wl[l] = Wt4[wb + min(l * SG + gl_SubgroupInvocationID, lim - 1u)];
        [[unroll]] for (uint cc = 0; cc < SG; cc++) {
            if (cb + cc >= CIN)
                break;
            float xv[TP];
            [[unroll]] for (uint p = 0; p < TP; p++)
                xv[p] = LDA(xp[p] + (cb + cc) * H * W);
            [[unroll]] for (uint q = 0; q < NB; q++) {
                const vec4 wv = subgroupShuffle(wl[(cc * NB + q) / SG], (cc * NB + q) % SG);
                [[unroll]] for (uint i = 0; i < 4u; i++)
                    [[unroll]] for (uint p = 0; p < TP; p++)
                        acc[q * 4u + i][p] += xv[p] * wv[i];
            }
        }
    }
#else
    for (uint c = 0; c < CIN; c++) {
        float xv[TP];
        [[unroll]] for (uint p = 0; p < TP; p++)
            xv[p] = LDA(xp[p] + c * H * W);
        if (WPACK != 0u) {
            const uint w4 = (pc.in1 >> 2u) + (gl_GlobalInvocationID.y * CIN + c) * (TM / 4u);
            [[unroll]] for (uint q = 0; q < TM / 4u; q++) {
                const vec4 wv = Wt4[w4 + q];
                [[unroll]] for (uint i = 0; i < 4u; i++)
                    [[unroll]] for (uint p = 0; p < TP; p++)
                        acc[q * 4u + i][p] += xv[p] * wv[i];
            }
        } else {
            [[unroll]] for (uint t = 0; t < TM; t++) {
                const float wv = Wt[wrow[t] + c];
                [[unroll]] for (uint p = 0; p < TP; p++)
                    acc[t][p] += xv[p] * wv;
            }
        }
    }
#endif
    if (!live)
        return;
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

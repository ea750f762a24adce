// Direct Conv (not transposed), NCHW, with weights repacked tile-major
// ([M/TM][CIN][KH][KW][TM], TM a multiple of 4; groups when TM divides the
// channels per group). Each invocation computes TM output channels x TP
// consecutive pixels of one output row. For each input channel and kernel row
// it loads the input row segment those pixels read once (SEG values) and
// reuses it for every kernel column, so a 3x3 stride-1 tile of 8 pixels reads
// 10 inputs per row instead of 24. The channel tile comes from the workgroup
// id, so its weight loads are uniform (one scalar load per lane group on a CPU
// implementation) and every per-lane load feeds 3 x TM multiply-adds.
// Control flow stays uniform until the store: pixels past the row end and rows
// or columns in the padding read a clamped in-range address and select 0.
//
// Built twice: convrow.comp, and convrows.comp with SPW_ROW_SHUFFLE, where
// each subgroup of SG lanes loads an input channel's weights once, spread over
// its lanes, and hands them round with subgroupShuffle (constant lane indices
// after unrolling): for implementations where a load costs one memory access
// per lane even when the address is uniform (lavapipe). Only that build
// declares the shuffle capability.
#ifdef SPW_ROW_SHUFFLE
#extension GL_KHR_shader_subgroup_shuffle : require
#endif
#include "common.glsl"

layout(constant_id = 16) const uint CIN = 1; // input channels per group
layout(constant_id = 17) const uint H = 1;
layout(constant_id = 18) const uint W = 1;
layout(constant_id = 19) const uint M = 1;
layout(constant_id = 20) const uint OH = 1;
layout(constant_id = 21) const uint OW = 1;
layout(constant_id = 22) const uint KH = 1;
layout(constant_id = 23) const uint KW = 1;
layout(constant_id = 24) const uint SH = 1;
layout(constant_id = 25) const uint SW = 1;
layout(constant_id = 26) const uint DH = 1;
layout(constant_id = 27) const uint DW = 1;
layout(constant_id = 28) const int PT = 0;
layout(constant_id = 29) const int PL = 0;
layout(constant_id = 30) const uint COUT_G = 1; // output channels per group
layout(constant_id = 31) const uint HAS_BIAS = 0;
layout(constant_id = 32) const uint TM = 4; // multiple of 4
layout(constant_id = 33) const uint TP = 1;
layout(constant_id = 34) const uint SG = 1; // subgroup size (shuffle build)

const uint TILES = (OW + TP - 1u) / TP; // pixel tiles per output row
const uint SEG = (TP - 1u) * SW + (KW - 1u) * DW + 1u;
const uint NV4 = KH * KW * (TM / 4u); // vec4s of weights per input channel
const uint NL = (NV4 + SG - 1u) / SG; // of those, loads per lane

layout(std430, set = 0, binding = 1) readonly buffer Consts4 { vec4 Wt4[]; };

void main()
{
    const uint tile = min(gl_GlobalInvocationID.x, OH * TILES - 1u);
    const bool live = gl_GlobalInvocationID.x < OH * TILES;
    const uint mt = gl_WorkGroupID.y;
    const uint n = gl_WorkGroupID.z;
    const uint oh = tile / TILES;
    const uint ow0 = (tile % TILES) * TP;
    const uint m0 = mt * TM;
    const uint g = m0 / COUT_G;
    const uint C = CIN * (M / COUT_G);
    const uint xbase = pc.in0 + (n * C + g * CIN) * H * W;

    // Input column of each segment element, clamped into the row.
    const int iw0 = int(ow0 * SW) - PL;
    uint col[SEG];
    bool cok[SEG];
    [[unroll]] for (uint j = 0; j < SEG; j++) {
        const int iw = iw0 + int(j);
        cok[j] = iw >= 0 && iw < int(W);
        col[j] = uint(clamp(iw, 0, int(W) - 1));
    }
    uint rowoff[KH];
    bool rok[KH];
    [[unroll]] for (uint kh = 0; kh < KH; kh++) {
        const int ih = int(oh * SH + kh * DH) - PT;
        rok[kh] = ih >= 0 && ih < int(H);
        rowoff[kh] = xbase + uint(clamp(ih, 0, int(H) - 1)) * W;
    }

    float acc[TM][TP];
    [[unroll]] for (uint t = 0; t < TM; t++)
        [[unroll]] for (uint p = 0; p < TP; p++)
            acc[t][p] = 0.0;

    const uint w4base = (pc.in1 >> 2u) + mt * CIN * KH * KW * (TM / 4u);
    for (uint c = 0; c < CIN; c++) {
#ifdef SPW_ROW_SHUFFLE
        vec4 wl[NL];
        [[unroll]] for (uint l = 0; l < NL; l++)
            wl[l] = Wt4[w4base + c * NV4 + min(l * SG + gl_SubgroupInvocationID, NV4 - 1u)];
#endif
        [[unroll]] for (uint kh = 0; kh < KH; kh++) {
            const uint row = rowoff[kh] + c * H * W;
            float xs[SEG];
            [[unroll]] for (uint j = 0; j < SEG; j++) {
                const float v = LDA(row + col[j]);
                xs[j] = rok[kh] && cok[j] ? v : 0.0;
            }
            [[unroll]] for (uint kw = 0; kw < KW; kw++) {
                const uint e = (kh * KW + kw) * (TM / 4u);
                [[unroll]] for (uint q = 0; q < TM / 4u; q++) {
#ifdef SPW_ROW_SHUFFLE
                    const vec4 wv = subgroupShuffle(wl[(e + q) / SG], (e + q) % SG);
#else
                    const vec4 wv = Wt4[w4base + c * NV4 + e + q];
#endif
                    [[unroll]] for (uint i = 0; i < 4u; i++)
                        [[unroll]] for (uint p = 0; p < TP; p++)
                            acc[q * 4u + i][p] += xs[p * SW + kw * DW] * wv[i];
                }
            }
        }
    }
    if (!live)
        return;
    [[unroll]] for (uint t = 0; t < TM; t++) {
        const uint m = m0 + t;
        if (m >= M)
            break;
        const float bias = HAS_BIAS != 0u ? Wt[pc.in2 + m] : 0.0;
        const uint o0 = ((n * M + m) * OH + oh) * OW + ow0;
        [[unroll]] for (uint p = 0; p < TP; p++) {
            if (ow0 + p >= OW)
                break;
            STA(pc.out0 + o0 + p, epilogue(acc[t][p] + bias, o0 + p));
        }
    }
}

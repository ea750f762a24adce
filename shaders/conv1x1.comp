// Pointwise (1x1, no padding) Conv, optionally strided, groups of 1: a matrix
// product over channels. TM output channels per invocation, no bounds checks
// in the inner loop.
#version 450
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

void main()
{
    const uint pix = gl_GlobalInvocationID.x;
    const uint m0 = gl_GlobalInvocationID.y * TM;
    const uint n = gl_GlobalInvocationID.z;
    if (pix >= OH * OW)
        return;
    const uint oh = pix / OW, ow = pix % OW;
    const uint xp = pc.in0 + n * CIN * H * W + oh * SH * W + ow * SW;

    float acc[TM];
    uint wrow[TM];
    [[unroll]] for (uint t = 0; t < TM; t++) {
        acc[t] = 0.0;
        wrow[t] = pc.in1 + min(m0 + t, M - 1u) * CIN;
    }
    for (uint c = 0; c < CIN; c++) {
        const float xv = A[xp + c * H * W];
        [[unroll]] for (uint t = 0; t < TM; t++)
            acc[t] += xv * Wt[wrow[t] + c];
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

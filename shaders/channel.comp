// Per-channel maps over [N, C, S]:
//   MODE 0 Quantize:   symbol = rint(x - median_c) as int32 (half to even,
//                      saturated, NaN -> 0), the latent quantiser. roundEven,
//                      not round: round's direction on .5 is left to the
//                      driver (Mesa's happens to be even, so tests there
//                      cannot tell the two apart)
//   MODE 1 Dequantize: y = float(symbol) + median_c
//   MODE 2 affine:     y = x * k_c + b_c (BatchNormalization, folded on the host)
#version 450
#include "common.glsl"

layout(constant_id = 16) const uint MODE = 0;
layout(constant_id = 17) const uint C = 1;
layout(constant_id = 18) const uint S = 1;
layout(constant_id = 19) const uint TOTAL = 1;

void main()
{
    const uint i = linear_id();
    if (i >= TOTAL)
        return;
    const uint c = (i / S) % C;
    if (MODE == 0u) {
        const float r = roundEven(LDA(pc.in0 + i) - Wt[pc.in1 + c]);
        int q;
        if (isnan(r))
            q = 0;
        else if (r >= 2147483648.0)
            q = 2147483647;
        else if (r < -2147483648.0)
            q = -2147483647 - 1;
        else
            q = int(r);
        AU[pc.out0 + i] = uint(q);
    } else if (MODE == 1u) {
        const float y = float(int(AU[pc.in0 + i])) + Wt[pc.in1 + c];
        STA(pc.out0 + i, epilogue(y, i));
    } else {
        const float y = LDA(pc.in0 + i) * Wt[pc.in1 + c] + Wt[pc.in2 + c];
        STA(pc.out0 + i, epilogue(y, i));
    }
}

// Strided 32-bit copy over up to 6 axes: Reshape, Flatten, Identity (one run),
// Transpose (permuted source strides) and each input of a Concat (a block of
// the output). Bits are moved, not values, so int32 tensors copy too; in the
// fp16 variant f32 tensors are halves in the shadow arena (HALF = 1).
#version 450
#include "common.glsl"

layout(constant_id = 16) const uint TOTAL = 1;
layout(constant_id = 17) const uint D1 = 1;
layout(constant_id = 18) const uint D2 = 1;
layout(constant_id = 19) const uint D3 = 1;
layout(constant_id = 20) const uint D4 = 1;
layout(constant_id = 21) const uint D5 = 1;
layout(constant_id = 22) const uint SS0 = 0; // source strides
layout(constant_id = 23) const uint SS1 = 0;
layout(constant_id = 24) const uint SS2 = 0;
layout(constant_id = 25) const uint SS3 = 0;
layout(constant_id = 26) const uint SS4 = 0;
layout(constant_id = 27) const uint SS5 = 0;
layout(constant_id = 28) const uint DS0 = 0; // destination strides
layout(constant_id = 29) const uint DS1 = 0;
layout(constant_id = 30) const uint DS2 = 0;
layout(constant_id = 31) const uint DS3 = 0;
layout(constant_id = 32) const uint DS4 = 0;
layout(constant_id = 33) const uint DS5 = 0;
layout(constant_id = 34) const uint HALF = 0;

void main()
{
    const uint o = linear_id();
    if (o >= TOTAL)
        return;
    uint r = o;
    const uint i5 = r % D5; r /= D5;
    const uint i4 = r % D4; r /= D4;
    const uint i3 = r % D3; r /= D3;
    const uint i2 = r % D2; r /= D2;
    const uint i1 = r % D1; r /= D1;
    const uint i0 = r;
    const uint s = i0 * SS0 + i1 * SS1 + i2 * SS2 + i3 * SS3 + i4 * SS4 + i5 * SS5;
    const uint d = i0 * DS0 + i1 * DS1 + i2 * DS2 + i3 * DS3 + i4 * DS4 + i5 * DS5;
#ifdef SPW_FP16
    if (HALF != 0u) {
        AH[pc.out0 + d] = (pc.in0 & FROM_CONSTS) != 0u ? float16_t(Wt[(pc.in0 & ~FROM_CONSTS) + s])
                                                      : AH[pc.in0 + s];
        return;
    }
#endif
    const uint v = (pc.in0 & FROM_CONSTS) != 0u ? floatBitsToUint(Wt[(pc.in0 & ~FROM_CONSTS) + s])
                                                : AU[pc.in0 + s];
    AU[pc.out0 + d] = v;
}

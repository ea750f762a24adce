// Element-wise ops with ONNX broadcasting (up to 6 axes after the host merged
// what it could): Add, Mul, and the unary activations. Either operand may be
// a constant.
#version 450
#include "common.glsl"

layout(constant_id = 16) const uint OP = 0; // 0 add, 1 mul, 2 unary activation
layout(constant_id = 17) const uint UK = 0; // activation kind (spw_post_kind)
layout(constant_id = 18) const float UA = 0.0;
layout(constant_id = 19) const float UB = 0.0;
layout(constant_id = 20) const uint TOTAL = 1;
layout(constant_id = 21) const uint D1 = 1; // output dims 1..5 (dim 0 is implied)
layout(constant_id = 22) const uint D2 = 1;
layout(constant_id = 23) const uint D3 = 1;
layout(constant_id = 24) const uint D4 = 1;
layout(constant_id = 25) const uint D5 = 1;
layout(constant_id = 26) const uint SA0 = 0; // operand strides per output axis, 0 = broadcast
layout(constant_id = 27) const uint SA1 = 0;
layout(constant_id = 28) const uint SA2 = 0;
layout(constant_id = 29) const uint SA3 = 0;
layout(constant_id = 30) const uint SA4 = 0;
layout(constant_id = 31) const uint SA5 = 0;
layout(constant_id = 32) const uint SB0 = 0;
layout(constant_id = 33) const uint SB1 = 0;
layout(constant_id = 34) const uint SB2 = 0;
layout(constant_id = 35) const uint SB3 = 0;
layout(constant_id = 36) const uint SB4 = 0;
layout(constant_id = 37) const uint SB5 = 0;

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
    const uint ia = i0 * SA0 + i1 * SA1 + i2 * SA2 + i3 * SA3 + i4 * SA4 + i5 * SA5;
    float y;
    if (OP == 2u) {
        y = act(UK, UA, UB, ld(pc.in0, ia));
    } else {
        const uint ib = i0 * SB0 + i1 * SB1 + i2 * SB2 + i3 * SB3 + i4 * SB4 + i5 * SB5;
        const float a = ld(pc.in0, ia), b = ld(pc.in1, ib);
        y = OP == 1u ? a * b : a + b;
    }
    STA(pc.out0 + o, epilogue(y, o));
}

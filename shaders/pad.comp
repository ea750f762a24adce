// Pad over up to 6 axes (the host merges untouched axes and drops leading
// ones): constant, reflect (mirror without repeating the edge) and edge.
// Begins may be negative (cropping); the output dims already hold the ends.
// One invocation per output element.
#version 450
#include "common.glsl"

layout(constant_id = 16) const uint TOTAL = 1;
layout(constant_id = 17) const uint D1 = 1; // output dims 1..5 (dim 0 is implied)
layout(constant_id = 18) const uint D2 = 1;
layout(constant_id = 19) const uint D3 = 1;
layout(constant_id = 20) const uint D4 = 1;
layout(constant_id = 21) const uint D5 = 1;
layout(constant_id = 22) const int X0 = 1; // input dims
layout(constant_id = 23) const int X1 = 1;
layout(constant_id = 24) const int X2 = 1;
layout(constant_id = 25) const int X3 = 1;
layout(constant_id = 26) const int X4 = 1;
layout(constant_id = 27) const int X5 = 1;
layout(constant_id = 28) const int B0 = 0; // begin pads
layout(constant_id = 29) const int B1 = 0;
layout(constant_id = 30) const int B2 = 0;
layout(constant_id = 31) const int B3 = 0;
layout(constant_id = 32) const int B4 = 0;
layout(constant_id = 33) const int B5 = 0;
layout(constant_id = 34) const uint MODE = 0; // spw_pad_mode: 0 constant, 1 reflect, 2 edge
layout(constant_id = 35) const float VALUE = 0.0;

// Output coordinate o (as an input coordinate, o - begin) mapped into
// [0, n), or -1 outside for constant. Shape inference keeps reflect pads
// below n, so one mirror suffices.
int src(int i, int n)
{
    if (i >= 0 && i < n)
        return i;
    if (MODE == 2u)
        return i < 0 ? 0 : n - 1;
    if (MODE == 1u)
        return n == 1 ? 0 : (i < 0 ? -i : 2 * (n - 1) - i);
    return -1;
}

void main()
{
    const uint o = linear_id();
    if (o >= TOTAL)
        return;
    uint r = o;
    const int i5 = src(int(r % D5) - B5, X5); r /= D5;
    const int i4 = src(int(r % D4) - B4, X4); r /= D4;
    const int i3 = src(int(r % D3) - B3, X3); r /= D3;
    const int i2 = src(int(r % D2) - B2, X2); r /= D2;
    const int i1 = src(int(r % D1) - B1, X1); r /= D1;
    const int i0 = src(int(r) - B0, X0);
    float y = VALUE;
    if (min(min(min(i0, i1), min(i2, i3)), min(i4, i5)) >= 0) {
        const uint s = ((((uint(i0) * X1 + i1) * X2 + i2) * X3 + i3) * X4 + i4) * X5 + i5;
        y = ld(pc.in0, s);
    }
    STA(pc.out0 + o, epilogue(y, o));
}

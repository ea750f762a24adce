// Softmax along one axis, shifted by the row maximum so exp() cannot
// overflow. One invocation per (outer, inner) row.
#version 450
#include "common.glsl"

layout(constant_id = 16) const uint OUTER = 1;
layout(constant_id = 17) const uint NAX = 1;
layout(constant_id = 18) const uint INNER = 1;

void main()
{
    const uint id = linear_id();
    if (id >= OUTER * INNER)
        return;
    const uint base = (id / INNER) * NAX * INNER + id % INNER;
    float mx = uintBitsToFloat(0xff800000u);
    for (uint k = 0; k < NAX; k++)
        mx = max(mx, ld(pc.in0, base + k * INNER));
    float sum = 0.0;
    for (uint k = 0; k < NAX; k++)
        sum += exp(ld(pc.in0, base + k * INNER) - mx);
    const float inv = 1.0 / sum;
    for (uint k = 0; k < NAX; k++)
        STA(pc.out0 + base + k * INNER, exp(ld(pc.in0, base + k * INNER) - mx) * inv);
}

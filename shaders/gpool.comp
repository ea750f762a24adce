// GlobalAveragePool: one workgroup per (n, c) row; the workgroup sums its
// row in shared memory so a large spatial extent still spreads over lanes.
#version 450
#include "common.glsl"

layout(constant_id = 16) const uint S = 1; // spatial elements per row

shared float part[gl_WorkGroupSize.x];

void main()
{
    const uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    const uint lane = gl_LocalInvocationID.x;
    const uint base = pc.in0 + row * S;
    float s = 0.0;
    for (uint i = lane; i < S; i += gl_WorkGroupSize.x)
        s += LDA(base + i);
    part[lane] = s;
    barrier();
    for (uint w = gl_WorkGroupSize.x / 2u; w > 0u; w >>= 1u) {
        if (lane < w)
            part[lane] += part[lane + w];
        barrier();
    }
    if (lane == 0u && row < pc.u0)
        STA(pc.out0 + row, epilogue(S > 0u ? part[0] / float(S) : 0.0, row));
}

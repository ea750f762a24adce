// GDN and inverse GDN: norm_c = sqrt(beta_c + sum_j gamma[c][j] * x_j^2),
// y_c = x_c / norm_c (or * norm_c). One invocation per (n, c, position); the
// gamma row is uniform across the workgroup.
#version 450
#include "common.glsl"

layout(constant_id = 16) const uint C = 1;
layout(constant_id = 17) const uint S = 1;
layout(constant_id = 18) const uint INVERSE = 0;

void main()
{
    const uint s = gl_GlobalInvocationID.x;
    const uint c = gl_GlobalInvocationID.y;
    const uint n = gl_GlobalInvocationID.z;
    if (s >= S)
        return;
    const uint xb = pc.in0 + n * C * S + s;
    float acc = Wt[pc.in1 + c];
    for (uint j = 0; j < C; j++) {
        const float v = LDA(xb + j * S);
        acc += Wt[pc.in2 + c * C + j] * v * v;
    }
    const float norm = sqrt(acc);
    const float v = LDA(xb + c * S);
    const uint o = (n * C + c) * S + s;
    STA(pc.out0 + o, epilogue(INVERSE != 0u ? v * norm : v / norm, o));
}

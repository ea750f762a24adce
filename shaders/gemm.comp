// Gemm (alpha * op(A) op(B) + beta * C) and batched MatMul with broadcast
// batch axes. Operand layouts arrive as element strides, so transposes and
// numpy's 1-D promotions need no copies. One output element per invocation.
#version 450
#include "common.glsl"

layout(constant_id = 16) const uint M = 1;
layout(constant_id = 17) const uint N = 1;
layout(constant_id = 18) const uint K = 1;
layout(constant_id = 19) const uint A_SI = 0;
layout(constant_id = 20) const uint A_SK = 0;
layout(constant_id = 21) const uint B_SK = 0;
layout(constant_id = 22) const uint B_SJ = 0;
layout(constant_id = 23) const uint HAS_C = 0;
layout(constant_id = 24) const uint C_SI = 0;
layout(constant_id = 25) const uint C_SJ = 0;
layout(constant_id = 26) const float ALPHA = 1.0;
layout(constant_id = 27) const float BETA = 1.0;
// Up to three broadcast batch axes (outermost first) and each operand's stride.
layout(constant_id = 28) const uint BD0 = 1;
layout(constant_id = 29) const uint BD1 = 1;
layout(constant_id = 30) const uint BD2 = 1;
layout(constant_id = 31) const uint SA0 = 0;
layout(constant_id = 32) const uint SA1 = 0;
layout(constant_id = 33) const uint SA2 = 0;
layout(constant_id = 34) const uint SB0 = 0;
layout(constant_id = 35) const uint SB1 = 0;
layout(constant_id = 36) const uint SB2 = 0;

void main()
{
    const uint j = gl_GlobalInvocationID.x;
    const uint i = gl_GlobalInvocationID.y;
    const uint b = gl_GlobalInvocationID.z;
    if (j >= N || i >= M)
        return;
    const uint b2 = b % BD2, b1 = (b / BD2) % BD1, b0 = b / (BD2 * BD1);
    const uint oa = b0 * SA0 + b1 * SA1 + b2 * SA2 + i * A_SI;
    const uint ob = b0 * SB0 + b1 * SB1 + b2 * SB2 + j * B_SJ;
    float acc = 0.0;
    for (uint k = 0; k < K; k++)
        acc += ld(pc.in0, oa + k * A_SK) * ld(pc.in1, ob + k * B_SK);
    float y = ALPHA * acc;
    if (HAS_C != 0u)
        y += BETA * ld(pc.in2, i * C_SI + j * C_SJ);
    const uint o = (b * M + i) * N + j;
    STA(pc.out0 + o, epilogue(y, o));
}

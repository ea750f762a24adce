#version 450
// Device peak calibration: independent chains of fused multiply-adds and
// nothing else, so the time is the arithmetic units' (bench ops' share of
// peak). The fp32 build computes in float; the -DSPW_FP16 build in
// float16_t (devices with shaderFloat16 only). Each invocation runs ITERS
// iterations of CHAINS vec4 FMAs: 8 * CHAINS * ITERS FLOP.
#extension GL_EXT_control_flow_attributes : require
#ifdef SPW_FP16
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define V f16vec4
#define S float16_t
#else
#define V vec4
#define S float
#endif

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(std430, set = 0, binding = 0) buffer Arena { float A[]; };
layout(push_constant) uniform Push {
    uint in0, in1, in2, out0;
    uint add0, add1, add2, add3;
    uint u0, u1, u2, u3, u4, u5, u6, u7;
} pc;

layout(constant_id = 16) const uint ITERS = 1024;
const uint CHAINS = 8;

void main()
{
    // Start values the compiler cannot know; a contraction towards 1 keeps
    // every chain finite however long it runs.
    S s = S(gl_LocalInvocationID.x) * S(0.0001);
    V x[CHAINS];
    [[unroll]] for (uint c = 0; c < CHAINS; c++)
        x[c] = V(s + S(c) * S(0.01));
    const V m = V(S(0.999)), k = V(S(0.001));
    for (uint i = 0; i < ITERS; i++) {
        [[unroll]] for (uint c = 0; c < CHAINS; c++)
            x[c] = fma(x[c], m, k);
    }
    V t = V(0);
    [[unroll]] for (uint c = 0; c < CHAINS; c++)
        t += x[c];
    float r = float(t.x + t.y + t.z + t.w);
    // Never true (the chains stay near 1), but the compiler cannot tell, so
    // the arithmetic stays; the store is the one side effect.
    if (r == -1.0)
        A[pc.out0] = r;
}

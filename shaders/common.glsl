// Shared by every compute shader: the descriptor set, the push constants and
// the fused epilogue (activations and residual adds applied before the store).
//
// Set 0: binding 0 = the plan's arena as f32, binding 1 = the plan's constants
// (weights) as f32, binding 2 = the same arena as u32 (symbols, copies).
// Offsets are in 4-byte elements; an input offset with bit 31 set points into
// the constants instead of the arena (see ld()).
//
// Built twice: as is, and with -DSPW_FP16 for devices with 16-bit storage.
// The fp16 variant keeps every f32 activation in binding 3, a shadow of the
// arena holding one half per 4-byte slot (element index unchanged), and
// computes in fp32; int32 tensors and the plan's f32 inputs and outputs stay
// in the arena itself (see cvt.comp). Shaders touch f32 activations only
// through LDA / STA / ld().
#extension GL_EXT_control_flow_attributes : require
#ifdef SPW_FP16
#extension GL_EXT_shader_16bit_storage : require
#endif

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;

layout(std430, set = 0, binding = 0) buffer Arena { float A[]; };
layout(std430, set = 0, binding = 1) readonly buffer Consts { float Wt[]; };
layout(std430, set = 0, binding = 2) buffer ArenaU { uint AU[]; };
#ifdef SPW_FP16
layout(std430, set = 0, binding = 3) buffer ArenaH { float16_t AH[]; };
#define LDA(i) float(AH[i])
#define STA(i, v) AH[i] = float16_t(v)
#else
#define LDA(i) A[i]
#define STA(i, v) A[i] = (v)
#endif

layout(push_constant) uniform Push {
    uint in0, in1, in2, out0;
    uint add0, add1, add2, add3;
    uint u0, u1, u2, u3, u4, u5, u6, u7;
} pc;

// Fused post ops, in order (ids 3-15): kinds match spw_post_kind.
layout(constant_id = 3) const uint POST_N = 0;
layout(constant_id = 4) const uint POST_K0 = 0;
layout(constant_id = 5) const uint POST_K1 = 0;
layout(constant_id = 6) const uint POST_K2 = 0;
layout(constant_id = 7) const uint POST_K3 = 0;
layout(constant_id = 8) const float POST_A0 = 0.0;
layout(constant_id = 9) const float POST_A1 = 0.0;
layout(constant_id = 10) const float POST_A2 = 0.0;
layout(constant_id = 11) const float POST_A3 = 0.0;
layout(constant_id = 12) const float POST_B0 = 0.0;
layout(constant_id = 13) const float POST_B1 = 0.0;
layout(constant_id = 14) const float POST_B2 = 0.0;
layout(constant_id = 15) const float POST_B3 = 0.0;

const uint K_RELU = 1u, K_CLIP = 2u, K_LEAKY = 3u, K_SIGMOID = 4u, K_HSWISH = 5u, K_ADD = 6u;
const uint FROM_CONSTS = 0x80000000u;

// Written as the reference writes them, so NaN passes through.
float act(uint k, float a, float b, float x)
{
    if (k == K_RELU)
        return x < 0.0 ? 0.0 : x;
    if (k == K_CLIP)
        return x < a ? a : (x > b ? b : x);
    if (k == K_LEAKY)
        return x < 0.0 ? x * a : x;
    if (k == K_SIGMOID)
        return x >= 0.0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
    if (k == K_HSWISH) {
        float t = x + 3.0;
        t = t < 0.0 ? 0.0 : (t > 6.0 ? 6.0 : t);
        return x * t / 6.0;
    }
    return x;
}

float post1(uint k, float a, float b, uint addend, float v, uint i)
{
    return k == K_ADD ? v + LDA(addend + i) : act(k, a, b, v);
}

// v is output element i of the node (linear index within its output).
float epilogue(float v, uint i)
{
    if (POST_N > 0u) v = post1(POST_K0, POST_A0, POST_B0, pc.add0, v, i);
    if (POST_N > 1u) v = post1(POST_K1, POST_A1, POST_B1, pc.add1, v, i);
    if (POST_N > 2u) v = post1(POST_K2, POST_A2, POST_B2, pc.add2, v, i);
    if (POST_N > 3u) v = post1(POST_K3, POST_A3, POST_B3, pc.add3, v, i);
    return v;
}

// An operand that may be a constant (bit 31 of its offset) or an activation.
float ld(uint off, uint i)
{
    return (off & FROM_CONSTS) != 0u ? Wt[(off & ~FROM_CONSTS) + i] : LDA(off + i);
}

// Invocation index of 1-D kernels dispatched as a 2-D grid (a dimension of
// the grid is limited to 65535 workgroups).
uint linear_id()
{
    return gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x +
           gl_GlobalInvocationID.x;
}

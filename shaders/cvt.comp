// fp16 variant only: moves the plan's f32 inputs from the arena into the
// shadow arena of halves before the first layer (DIR 0), and its f32 outputs
// back after the last (DIR 1), so plan I/O stays f32 at the API. The fp32
// build of this file is an empty kernel that is never dispatched.
#version 450
#include "common.glsl"

layout(constant_id = 16) const uint TOTAL = 1;
layout(constant_id = 17) const uint DIR = 0;

void main()
{
#ifdef SPW_FP16
    const uint i = linear_id();
    if (i >= TOTAL)
        return;
    if (DIR == 0u)
        AH[pc.out0 + i] = float16_t(A[pc.in0 + i]);
    else
        A[pc.out0 + i] = float(AH[pc.in0 + i]);
#endif
}

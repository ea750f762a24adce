// Pointwise Conv, weights handed round by subgroup shuffles (see
// conv1x1.glsl).
#version 450
#define SPW_PW_SHUFFLE
#include "conv1x1.glsl"

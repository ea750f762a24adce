// Pointwise Conv, weights read with uniform loads (see conv1x1.glsl).
#version 450
#include "conv1x1.glsl"

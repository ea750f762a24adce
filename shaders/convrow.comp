// Row-tiled direct Conv, weights read with uniform loads (see convrow.glsl).
#version 450
#include "convrow.glsl"

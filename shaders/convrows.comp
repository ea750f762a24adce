// Row-tiled direct Conv, weights handed round by subgroup shuffles (see
// convrow.glsl).
#version 450
#define SPW_ROW_SHUFFLE
#include "convrow.glsl"

/* The Vulkan backend's op table: one row per op of SPW_OP_LIST
 * (docs/ADDING_AN_OP.md). vk_supports_op applies the element-type rules a
 * row states, then the row's own shape limits; vk_plan_prepare calls its
 * builder. */
#include "drivers/vulkan/vk_plan.h"

#define RUNS(sup, bld, ...)                                              \
    {                                                                    \
        .kind = SPW_ROW_RUNS, .supports = sup, .build = bld, __VA_ARGS__ \
    }

const spw_vk_op_row spw__vk_rows[SPW_OP_COUNT] = {
    [SPW_OP_INVALID] = {.kind = SPW_ROW_NONE},
    [SPW_OP_CONV] = RUNS(spw__vk_supports_conv, spw__vk_build_conv),
    [SPW_OP_CONV_TRANSPOSE] = RUNS(spw__vk_supports_conv, spw__vk_build_conv),
    [SPW_OP_RELU] = RUNS(NULL, spw__vk_build_eltwise),
    [SPW_OP_CLIP] = RUNS(NULL, spw__vk_build_eltwise),
    [SPW_OP_LEAKY_RELU] = RUNS(NULL, spw__vk_build_eltwise),
    [SPW_OP_SIGMOID] = RUNS(NULL, spw__vk_build_eltwise),
    [SPW_OP_HARD_SWISH] = RUNS(NULL, spw__vk_build_eltwise),
    [SPW_OP_ADD] = RUNS(spw__vk_supports_binary, spw__vk_build_eltwise),
    [SPW_OP_MUL] = RUNS(spw__vk_supports_binary, spw__vk_build_eltwise),
    [SPW_OP_CONCAT] = RUNS(spw__vk_supports_concat, spw__vk_build_copy, .flags = SPW_VK_COPY),
    [SPW_OP_GLOBAL_AVG_POOL] = RUNS(spw__vk_supports_gpool, spw__vk_build_gpool),
    [SPW_OP_AVG_POOL] = RUNS(spw__vk_supports_pool, spw__vk_build_pool),
    [SPW_OP_MAX_POOL] = RUNS(spw__vk_supports_pool, spw__vk_build_pool),
    [SPW_OP_GEMM] = RUNS(spw__vk_supports_gemm, spw__vk_build_gemm),
    [SPW_OP_MATMUL] = RUNS(spw__vk_supports_matmul, spw__vk_build_gemm),
    [SPW_OP_FLATTEN] = RUNS(spw__vk_supports_copy, spw__vk_build_copy, .flags = SPW_VK_COPY),
    [SPW_OP_RESHAPE] = RUNS(spw__vk_supports_copy, spw__vk_build_copy, .flags = SPW_VK_COPY),
    [SPW_OP_TRANSPOSE] = RUNS(spw__vk_supports_copy, spw__vk_build_copy, .flags = SPW_VK_COPY),
    [SPW_OP_BATCH_NORM] = RUNS(spw__vk_supports_batch_norm, spw__vk_build_channel),
    [SPW_OP_SOFTMAX] = RUNS(NULL, spw__vk_build_softmax, .flags = SPW_VK_NO_POST),
    [SPW_OP_IDENTITY] = RUNS(spw__vk_supports_copy, spw__vk_build_copy, .flags = SPW_VK_COPY),
    [SPW_OP_PAD] = RUNS(spw__vk_supports_pad, spw__vk_build_pad, .flags = SPW_VK_X_ONLY),
    [SPW_OP_GDN] = RUNS(spw__vk_supports_gdn, spw__vk_build_gdn),
    /* Symbols: int32 levels (inputs 2 on) in, int32 symbols out. */
    [SPW_OP_QUANTIZE] = RUNS(spw__vk_supports_quant, spw__vk_build_channel,
                             .flags = SPW_VK_NO_POST | SPW_VK_I32_OUT, .i32_in = ~3u),
    [SPW_OP_DEQUANTIZE] = RUNS(spw__vk_supports_quant, spw__vk_build_channel, .i32_in = 1u),
};

spw_row_kind spw__vk_op_row(spw_op op)
{
    return (unsigned)op < SPW_OP_COUNT ? spw__vk_rows[op].kind : SPW_ROW_MISSING;
}

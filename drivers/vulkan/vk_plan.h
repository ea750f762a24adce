/* The Vulkan plan builder: a plan's dispatch list and constants, shared by the
 * backend core (vk_backend.c) and the op files (vk_op_*.c). Not installed. */
#ifndef SPW_DRIVERS_VK_PLAN_H
#define SPW_DRIVERS_VK_PLAN_H

#include <string.h>

#include "drivers/vulkan/vk_internal.h"
#include "shaders/spw_vk_shaders.h"

/* Distance from a shader's fp32 build to its fp16-storage build. */
#define SH_F16 (SPW_VK_SH_CONV_F16 - SPW_VK_SH_CONV)
#define MAX_READS 8
#define NO_WOFF UINT32_MAX
#define FROM_CONSTS 0x80000000u
/* Spec ids shared by every shader (common.glsl): 0-2 workgroup size, 3-15 post ops. */
#define SPEC_SHAPE 16
/* A grid dimension is only guaranteed up to 65535 workgroups. */
#define MAX_GROUPS 65535u

typedef struct vk_range {
    size_t lo, hi; /* bytes of the arena, [lo, hi) */
} vk_range;

typedef struct vk_disp {
    int shader;
    uint32_t spec[SPW_VK_MAX_SPEC];
    uint32_t n_spec; /* SPW_VK_MAX_SPEC + 1: a builder gave too many */
    uint32_t push[SPW_VK_PUSH_WORDS];
    uint32_t groups[3];
    VkPipeline pipe;
    int step;
    vk_range rd[MAX_READS];
    int n_rd;
    vk_range wr;
} vk_disp;

typedef struct vk_plan {
    spw_vk_live live; /* linked while prepared; dead once the exit hook closed it */
    spw_vk_ctx *ctx;
    uint32_t *woff; /* per value: element offset in the constants, or NO_WOFF */
    float *wdata;   /* constants on the host while building */
    int n_wdata, cap_wdata;
    spw_vk_buffer weights;
    bool has_weights;
    spw_vk_weights *wshared; /* the model's (plan->weights_state) */
    void *wentry;            /* weights is wshared's entry: put back, not destroyed */
    vk_disp *disp;
    int n_disp, cap_disp;
    int n_new_pipes; /* pipelines this plan was the first to need */
    VkDescriptorPool dpool;
    VkDescriptorSet set;
    VkCommandBuffer cmd;
    VkQueryPool qpool;
    uint64_t *ts;
    VkFence fence;    /* its own: plans of other workers stay in flight */
    VkQueryPool span; /* two timestamps around the whole run, or null */
    /* fp16 storage: f32 activations live in shadow, one half per 4-byte
     * arena slot at the same element index (common.glsl). */
    bool fp16;
    spw_vk_buffer shadow;
    bool has_shadow;
    bool held; /* in ctx->live (prepared successfully) */
} vk_plan;

typedef struct vk_build {
    spw_plan *plan;
    const spw_graph *g;
    vk_plan *st;
    const spw_vk_tuning *tune;
    int step;
} vk_build;

static inline bool is_const(const spw_graph *g, int v)
{
    return v >= 0 && (g->values[v].flags & SPW_VALUE_CONST);
}

static inline int64_t span(const spw_value *v, int from, int to)
{
    int64_t n = 1;
    for (int i = from; i < to && i < v->ndim; i++)
        n *= v->dims[i];
    return n;
}

static inline uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static inline uint32_t ceil_div(uint64_t a, uint64_t b)
{
    return (uint32_t)((a + b - 1) / b);
}

static inline size_t value_bytes(const spw_graph *g, int v)
{
    return (size_t)spw__value_numel(&g->values[v]) * spw_dtype_size(g->values[v].dtype);
}

/* Past SPW_VK_MAX_SPEC the count goes one over, and the plan fails at
 * spw__vk_pipeline instead of running with constants cut off. */
static inline void spec(vk_disp *d, uint32_t v)
{
    if (d->n_spec < SPW_VK_MAX_SPEC)
        d->spec[d->n_spec++] = v;
    else
        d->n_spec = SPW_VK_MAX_SPEC + 1;
}

/* A 1-D grid over total invocations, folded into y past 65535 workgroups. */
static inline void grid_1d(vk_disp *d, uint64_t total)
{
    uint32_t groups = ceil_div(total ? total : 1, d->spec[0]);
    d->groups[0] = groups > MAX_GROUPS ? MAX_GROUPS : groups;
    d->groups[1] = ceil_div(groups, d->groups[0]);
    d->groups[2] = 1;
}

static inline void pad_dims6(const spw_value *y, uint32_t *dims)
{
    int shift = 6 - y->ndim;
    for (int i = 0; i < 6; i++)
        dims[i] = i - shift >= 0 ? (uint32_t)y->dims[i - shift] : 1;
}

#define NEW(shader, wg)                                  \
    vk_disp *d = spw__vk_new_disp(b, (shader), n, (wg)); \
    if (!d)                                              \
    return spw__error(SPW_ENOMEM, "vulkan: out of memory building a plan")
#define ONE(v) ((v) > 0 ? (uint32_t)(v) : 1u)

/* Builder helpers (vk_build.c). */
int spw__vk_wpush(vk_build *b, const void *data, size_t words, uint32_t *off);
int spw__vk_wconst(vk_build *b, int v, uint32_t *off);
int spw__vk_operand(vk_build *b, vk_disp *d, int v, uint32_t *off);
vk_disp *spw__vk_add_disp(vk_build *b, int shader, uint32_t wg_x);
vk_disp *spw__vk_new_disp(vk_build *b, int shader, const spw_node *n, uint32_t wg_x);
int spw__vk_build_cvt(vk_build *b, int v, bool to_half);

/* Op builders (vk_op_*.c): append node n's dispatches. */
int spw__vk_build_conv(vk_build *b, const spw_node *n);
int spw__vk_build_pool(vk_build *b, const spw_node *n);
int spw__vk_build_gpool(vk_build *b, const spw_node *n);
int spw__vk_build_gemm(vk_build *b, const spw_node *n);
int spw__vk_build_eltwise(vk_build *b, const spw_node *n);
int spw__vk_build_copy(vk_build *b, const spw_node *n);
int spw__vk_build_pad(vk_build *b, const spw_node *n);
int spw__vk_build_softmax(vk_build *b, const spw_node *n);
int spw__vk_build_gdn(vk_build *b, const spw_node *n);
int spw__vk_build_channel(vk_build *b, const spw_node *n);
/* Shape limits of the op files, after the generic checks of a row. */
bool spw__vk_supports_conv(const spw_graph *g, const spw_node *n);
bool spw__vk_supports_pool(const spw_graph *g, const spw_node *n);
bool spw__vk_supports_gpool(const spw_graph *g, const spw_node *n);
bool spw__vk_supports_gemm(const spw_graph *g, const spw_node *n);
bool spw__vk_supports_matmul(const spw_graph *g, const spw_node *n);
bool spw__vk_supports_binary(const spw_graph *g, const spw_node *n);
bool spw__vk_supports_copy(const spw_graph *g, const spw_node *n);
bool spw__vk_supports_concat(const spw_graph *g, const spw_node *n);
bool spw__vk_supports_pad(const spw_graph *g, const spw_node *n);
bool spw__vk_supports_gdn(const spw_graph *g, const spw_node *n);
bool spw__vk_supports_quant(const spw_graph *g, const spw_node *n);
bool spw__vk_supports_batch_norm(const spw_graph *g, const spw_node *n);
int spw__vk_pad_axes(const spw_graph *g, const spw_node *n, uint32_t *od, uint32_t *xd,
                     int32_t *pb);

/* Row flags: what the generic checks of vk_supports_op let through. */
#define SPW_VK_COPY 1u    /* a copy: any 32-bit element type, no post ops */
#define SPW_VK_NO_POST 2u /* no fused post ops */
#define SPW_VK_X_ONLY 4u  /* reads input 0 alone (the rest was decoded at import), any rank */
#define SPW_VK_I32_OUT 8u /* the output is int32 */

/* One op's row (vk_rows.c). Inputs are f32 unless their bit is in i32_in;
 * supports (NULL: none) adds the op's own limits; build appends the
 * dispatches of a node. */
typedef struct spw_vk_op_row {
    spw_row_kind kind;
    unsigned flags;
    uint32_t i32_in;
    bool (*supports)(const spw_graph *g, const spw_node *n);
    int (*build)(vk_build *b, const spw_node *n);
} spw_vk_op_row;

extern const spw_vk_op_row spw__vk_rows[SPW_OP_COUNT];
spw_row_kind spw__vk_op_row(spw_op op);

#endif

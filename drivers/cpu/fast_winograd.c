/* Winograd F(2x2, 3x3) for 3x3, stride 1, pad 1 convolutions in NHWC
 * (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks").
 *
 * Each 2x2 output tile comes from a 4x4 input tile: V = B^T d B per input
 * channel, then for each of the 16 positions of the 4x4 transformed domain a
 * matrix product over channels (M_p = V_p U_p, U = G g G^T the transformed
 * filter), then Y = A^T M A. That is 16 multiplies per 4 outputs instead of
 * 36: 2.25x fewer multiply-adds than the direct convolution. The 16 products
 * are one grouped 1x1 XNNPACK convolution (16 groups) over the tiles of one
 * tile row, so the transformed data of a row (tens of KiB) stays in cache
 * between the three passes. Tile rows are the pool's tasks, handed out
 * dynamically (a thread that is descheduled does not hold up the rest); a
 * task borrows one of `threads` scratch slots, each with its own operator.
 * Bias, the output clamp and a fused residual add happen in the output
 * transform. Built with -O3 so the channel loops vectorise. */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "drivers/cpu/fast_internal.h"

#define WINO_MAX_THREADS 32 /* slots tracked in one atomic word */

typedef struct wino_thread {
    float *v;     /* [TW][16][C] transformed input of one tile row */
    float *m;     /* [TW][16][M] products */
    float *dummy; /* M floats: outputs past the right or bottom edge */
    float *tmp;   /* 16 * max(C, M) floats of transform scratch */
    xnn_operator_t gemm;
} wino_thread;

typedef struct wino {
    fast_wino_args a;
    int64_t N, C, H, W, M, TH, TW;
    const float *zero; /* max(C, M) zeros: inputs past the edge, absent bias */
    int n_threads;
    atomic_uint busy; /* bit k: slot k in use by a running task */
    wino_thread t[WINO_MAX_THREADS];
} wino;

/* Element-wise helpers over a run of channels; restrict and a plain loop let
 * the compiler vectorise each, in every ISA clone of its caller. */
#define WINO_INLINE static inline __attribute__((always_inline))

WINO_INLINE void vsub(float *restrict o, const float *restrict a, const float *restrict b,
                      int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        o[i] = a[i] - b[i];
}

WINO_INLINE void vadd(float *restrict o, const float *restrict a, const float *restrict b,
                      int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        o[i] = a[i] + b[i];
}

/* o = a + b + c and o = a - b - c */
WINO_INLINE void vadd3(float *restrict o, const float *restrict a, const float *restrict b,
                       const float *restrict c, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        o[i] = a[i] + b[i] + c[i];
}

WINO_INLINE void vsub3(float *restrict o, const float *restrict a, const float *restrict b,
                       const float *restrict c, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        o[i] = a[i] - b[i] - c[i];
}

/* AVX-512 and AVX2 clones chosen at load time; the build targets baseline x86-64.
 * Not under ThreadSanitizer: its instrumented ifunc resolvers run before the
 * sanitizer's runtime is up and crash the program at load. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__SANITIZE_THREAD__)
#define WINO_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define WINO_CLONES
#endif

/* V = B^T d B with B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], on whole
 * channel vectors; t is 16 * C floats of scratch. */
WINO_CLONES static void input_row(const wino *s, int64_t n, int64_t ty, float *restrict v,
                                  float *restrict t)
{
    const int64_t C = s->C, H = s->H, W = s->W;
    for (int64_t tx = 0; tx < s->TW; tx++) {
        const float *p[16];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) {
                int64_t iy = 2 * ty - 1 + i, ix = 2 * tx - 1 + j;
                bool in = iy >= 0 && iy < H && ix >= 0 && ix < W;
                p[i * 4 + j] = in ? s->a.x + ((n * H + iy) * W + ix) * C : s->zero;
            }
        for (int j = 0; j < 4; j++) {
            vsub(t + (0 + j) * C, p[j], p[8 + j], C);
            vadd(t + (4 + j) * C, p[4 + j], p[8 + j], C);
            vsub(t + (8 + j) * C, p[8 + j], p[4 + j], C);
            vsub(t + (12 + j) * C, p[4 + j], p[12 + j], C);
        }
        float *vt = v + tx * 16 * C;
        for (int i = 0; i < 4; i++) {
            const float *r = t + 4 * i * C;
            vsub(vt + (4 * i + 0) * C, r, r + 2 * C, C);
            vadd(vt + (4 * i + 1) * C, r + C, r + 2 * C, C);
            vsub(vt + (4 * i + 2) * C, r + 2 * C, r + C, C);
            vsub(vt + (4 * i + 3) * C, r + C, r + 3 * C, C);
        }
    }
}

static inline float clampf(float v, float lo, float hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* Y = A^T M A with A^T = [1 1 1 0; 0 1 -1 -1], then bias, clamp and the
 * residual; u is 12 * M floats of scratch. */
WINO_CLONES static void output_row(const wino *s, int64_t n, int64_t ty, const float *restrict m,
                                   float *restrict u, float *dummy)
{
    const int64_t M = s->M, H = s->H, W = s->W;
    const float *restrict bias = s->a.bias ? s->a.bias : s->zero;
    const float lo = s->a.lo, hi = s->a.hi, lo2 = s->a.lo2, hi2 = s->a.hi2;
    for (int64_t tx = 0; tx < s->TW; tx++) {
        const float *mt = m + tx * 16 * M;
        for (int j = 0; j < 4; j++) {
            vadd3(u + j * M, mt + j * M, mt + (4 + j) * M, mt + (8 + j) * M, M);
            vsub3(u + (4 + j) * M, mt + (4 + j) * M, mt + (8 + j) * M, mt + (12 + j) * M, M);
        }
        for (int k = 0; k < 4; k++) {
            int64_t oy = 2 * ty + k / 2, ox = 2 * tx + k % 2;
            bool in = oy < H && ox < W;
            int64_t off = ((n * H + oy) * W + ox) * M;
            float *restrict q = in ? s->a.y + off : dummy;
            const float *restrict r = in && s->a.residual ? s->a.residual + off : s->zero;
            const float *row = u + (k / 2) * 4 * M;
            float *restrict tmp = u + 8 * M;
            if (k % 2 == 0)
                vadd3(tmp, row, row + M, row + 2 * M, M);
            else
                vsub3(tmp, row + M, row + 2 * M, row + 3 * M, M);
            if (s->a.residual)
                for (int64_t c = 0; c < M; c++)
                    q[c] = clampf(clampf(tmp[c] + bias[c], lo, hi) + r[c], lo2, hi2);
            else
                for (int64_t c = 0; c < M; c++)
                    q[c] = clampf(tmp[c] + bias[c], lo, hi);
        }
    }
}

/* One tile row. At most n_threads tasks run at once, so a free slot exists. */
static void wino_task(void *ctx, size_t row)
{
    wino *s = ctx;
    unsigned k = 0;
    while (atomic_fetch_or_explicit(&s->busy, 1u << k, memory_order_acquire) & (1u << k))
        k = (k + 1) % (unsigned)s->n_threads;
    const wino_thread *th = &s->t[k];
    const int64_t n = (int64_t)row / s->TH, ty = (int64_t)row % s->TH;
    input_row(s, n, ty, th->v, th->tmp);
    xnn_run_operator(th->gemm, NULL);
    output_row(s, n, ty, th->m, th->tmp, th->dummy);
    atomic_fetch_and_explicit(&s->busy, ~(1u << k), memory_order_release);
}

void spw__fast_winograd_run(const fast_action *a)
{
    wino *s = a->ext; /* the plan's: a plan runs once at a time */
    pthreadpool_parallelize_1d(a->pool, wino_task, s, (size_t)(s->N * s->TH), 0);
}

static int keep_op(fast_plan *fp, xnn_operator_t op)
{
    if (spw__grow((void **)&fp->inner_ops, &fp->cap_inner_ops, fp->n_inner_ops + 1,
                  sizeof(xnn_operator_t))) {
        xnn_delete_operator(op);
        return SPW_ENOMEM;
    }
    fp->inner_ops[fp->n_inner_ops++] = op;
    return 0;
}

/* U = G g G^T, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1], in double;
 * stored [position][out][in], the grouped convolution's filter layout.
 * NULL when out of memory. */
static float *transform_filters(const float *weight, int64_t C, int64_t M)
{
    float *packed = spw__malloc(sizeof(float) * (size_t)(16 * M * C));
    if (!packed)
        return NULL;
    static const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
    for (int64_t o = 0; o < M; o++)
        for (int64_t i = 0; i < C; i++) {
            const float *g = weight + (o * C + i) * 9;
            double t[4][3];
            for (int a = 0; a < 4; a++)
                for (int k = 0; k < 3; k++)
                    t[a][k] = G[a][0] * g[k] + G[a][1] * g[3 + k] + G[a][2] * g[6 + k];
            for (int a = 0; a < 4; a++)
                for (int b = 0; b < 4; b++) {
                    double u = t[a][0] * G[b][0] + t[a][1] * G[b][1] + t[a][2] * G[b][2];
                    packed[((a * 4 + b) * M + o) * C + i] = (float)u;
                }
        }
    return packed;
}

int spw__fast_winograd_prepare(fast_plan *fp, const fast_wino_args *args, void **ext)
{
    *ext = NULL;
    const int64_t N = args->xdims[0], C = args->xdims[1], H = args->xdims[2], W = args->xdims[3],
                  M = args->cout;
    /* Thin products or tiny images do not repay the transforms. */
    if (C < 16 || M < 16 || H < 4 || W < 4 || fp->threads > WINO_MAX_THREADS)
        return 0;
    wino *s = spw__fast_block(fp, sizeof(*s));
    if (!s)
        return spw__error(SPW_ENOMEM, "cpu-fast: no memory for a Winograd convolution");
    s->a = *args;
    s->N = N;
    s->C = C;
    s->H = H;
    s->W = W;
    s->M = M;
    s->TH = (H + 1) / 2;
    s->TW = (W + 1) / 2;
    s->n_threads = SPW_MAX(1, SPW_MIN(fp->threads, WINO_MAX_THREADS));
    atomic_init(&s->busy, 0u);
    int rc = 0;
    float *packed = NULL; /* transformed filters: only when no operator can be copied */
    const int64_t key[] = {-1 /* Winograd products */, C, M, (int64_t)(intptr_t)args->weight};
    float *zero = spw__fast_block(fp, sizeof(float) * (size_t)SPW_MAX(C, M));
    if (!zero) {
        rc = SPW_ENOMEM;
        goto out;
    }
    s->zero = zero;
    for (int k = 0; k < s->n_threads; k++) {
        wino_thread *th = &s->t[k];
        th->v = spw__fast_block(fp, sizeof(float) * (size_t)(s->TW * 16 * C));
        th->m = spw__fast_block(fp, sizeof(float) * (size_t)(s->TW * 16 * M));
        th->dummy = spw__fast_block(fp, sizeof(float) * (size_t)M);
        th->tmp = spw__fast_block(fp, sizeof(float) * (size_t)(16 * SPW_MAX(C, M)));
        if (!th->v || !th->m || !th->dummy || !th->tmp) {
            rc = SPW_ENOMEM;
            goto out;
        }
        enum xnn_status st = xnn_status_success;
        xnn_operator_t op =
            args->shared_weight ? spw__fast_clone(fp->weights, key, sizeof(key)) : NULL;
        if (!op) {
            if (!packed && !(packed = transform_filters(args->weight, C, M))) {
                rc = spw__error(SPW_ENOMEM, "cpu-fast: no memory for a Winograd convolution");
                goto out;
            }
            spw__fast_capture_begin();
            st = xnn_create_convolution2d_nhwc_f32(0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 16, (size_t)C,
                                                   (size_t)M, (size_t)(16 * C), (size_t)(16 * M),
                                                   packed, NULL, -INFINITY, INFINITY, 0, &op);
            spw__fast_capture_end(fp->weights, st == xnn_status_success ? op : NULL,
                                  args->shared_weight ? key : NULL, sizeof(key));
        }
        if (st == xnn_status_success)
            st = xnn_setup_convolution2d_nhwc_f32(op, 1, 1, (size_t)s->TW, th->v, th->m, NULL);
        if (st != xnn_status_success) {
            if (op)
                xnn_delete_operator(op);
            if (st == xnn_status_out_of_memory) {
                rc = spw__error(SPW_ENOMEM, "cpu-fast: out of memory for a Winograd convolution");
                goto out;
            }
            SPW_LOGD("cpu-fast: Winograd products refused (XNNPACK status %d)", (int)st);
            goto out; /* the direct convolution takes it */
        }
        if ((rc = keep_op(fp, op)))
            goto out;
        th->gemm = op;
    }
    *ext = s;
out:
    spw__free(packed);
    return rc;
}

/* Reference matrix products: Gemm and MatMul, f32 with double accumulation. */
#include "drivers/cpu/ref_internal.h"

/*
 * Gemm: Y = alpha * op(A) @ op(B) + beta * C, A and B 2-D, op = optional
 * transpose. C (optional) broadcasts to [M, N] from a scalar, [N], [1, N],
 * [M, 1] or [M, N]: an axis of size 1 (or missing) gets stride 0.
 */
SPW__REF_KERNEL(spw__ref_gemm)
{
    const spw_gemm_params *p = &node->p.gemm;
    const spw_tensor *a = &in[0], *b = &in[1];
    const spw_tensor *c = n_in > 2 && in[2].data ? &in[2] : NULL;
    const float *ad = a->data, *bd = b->data;
    float *yd = out->data;

    const int64_t M = out->dims[0], N = out->dims[1];
    const int64_t K = p->trans_a ? a->dims[0] : a->dims[1];
    /* Element (i, k) of op(A) and (k, j) of op(B) in their stored layouts. */
    const int64_t a_si = p->trans_a ? 1 : K, a_sk = p->trans_a ? M : 1;
    const int64_t b_sk = p->trans_b ? 1 : N, b_sj = p->trans_b ? K : 1;

    int64_t c_si = 0, c_sj = 0;
    if (c) {
        int64_t c_rows = c->ndim == 2 ? c->dims[0] : 1;
        int64_t c_cols = c->ndim >= 1 ? c->dims[c->ndim - 1] : 1;
        c_sj = c_cols == 1 ? 0 : 1;
        c_si = c_rows == 1 ? 0 : c_cols;
    }
    const float *cd = c ? (const float *)c->data : NULL;

    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double acc = 0.0;
            for (int64_t k = 0; k < K; k++)
                acc += (double)ad[i * a_si + k * a_sk] * bd[k * b_sk + j * b_sj];
            double y = (double)p->alpha * acc;
            if (cd)
                y += (double)p->beta * cd[i * c_si + j * c_sj];
            yd[i * N + j] = (float)y;
        }
}

/*
 * MatMul with numpy semantics: a 1-D A is a row vector [1, K] and a 1-D B a
 * column vector [K, 1], the added axis removed from the result; leading
 * (batch) axes broadcast. The output is laid out as batch..., M, N with the
 * removed axes simply absent, so it is written in the same order either way.
 */
SPW__REF_KERNEL(spw__ref_matmul)
{
    const spw_tensor *a = &in[0], *b = &in[1];
    const float *ad = a->data, *bd = b->data;
    float *yd = out->data;

    const int64_t M = a->ndim >= 2 ? a->dims[a->ndim - 2] : 1;
    const int64_t K = a->dims[a->ndim - 1];
    const int64_t N = b->ndim >= 2 ? b->dims[b->ndim - 1] : 1;
    const int a_batch = a->ndim > 2 ? a->ndim - 2 : 0;
    const int b_batch = b->ndim > 2 ? b->ndim - 2 : 0;
    const int rank = a_batch > b_batch ? a_batch : b_batch;

    /* Broadcast batch shape and each operand's matrix stride per batch axis,
     * aligned to the right; a size-1 or missing axis repeats (stride 0). */
    int64_t dims[SPW_MAX_DIMS], sa[SPW_MAX_DIMS], sb[SPW_MAX_DIMS];
    int64_t step_a = M * K, step_b = K * N;
    for (int i = rank - 1; i >= 0; i--) {
        int ia = i - (rank - a_batch), ib = i - (rank - b_batch);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        dims[i] = da > db ? da : db;
        sa[i] = da == 1 ? 0 : step_a;
        sb[i] = db == 1 ? 0 : step_b;
        step_a *= da;
        step_b *= db;
    }

    if (spw__ref_numel(out) == 0)
        return;
    int64_t idx[SPW_MAX_DIMS] = {0};
    int64_t batch = 0;
    do {
        int64_t oa = 0, ob = 0;
        for (int i = 0; i < rank; i++) {
            oa += idx[i] * sa[i];
            ob += idx[i] * sb[i];
        }
        float *y = yd + batch * M * N;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double acc = 0.0;
                for (int64_t k = 0; k < K; k++)
                    acc += (double)ad[oa + i * K + k] * bd[ob + k * N + j];
                y[i * N + j] = (float)acc;
            }
        batch++;
    } while (spw__ref_next_index(idx, dims, rank));
}

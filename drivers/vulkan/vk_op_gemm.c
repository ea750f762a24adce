/* Vulkan plan builder: Gemm and MatMul. */
#include "drivers/vulkan/vk_plan.h"

int spw__vk_build_gemm(vk_build *b, const spw_node *n)
{
    const spw_graph *g = b->g;
    const spw_value *a = &g->values[n->inputs[0]], *bv = &g->values[n->inputs[1]];
    const spw_value *y = &g->values[n->outputs[0]];
    NEW(SPW_VK_SH_GEMM, b->tune->wg_gemm);
    int rc;
    if ((rc = spw__vk_operand(b, d, n->inputs[0], &d->push[0])) ||
        (rc = spw__vk_operand(b, d, n->inputs[1], &d->push[1])))
        return rc;
    uint32_t M, N, K, a_si, a_sk, b_sk, b_sj;
    uint32_t has_c = 0, c_si = 0, c_sj = 0;
    float alpha = 1.0f, beta = 1.0f;
    uint32_t bd[3] = {1, 1, 1}, sa[3] = {0, 0, 0}, sb[3] = {0, 0, 0};
    if (n->op == SPW_OP_GEMM) {
        const spw_gemm_params *p = &n->p.gemm;
        M = (uint32_t)y->dims[0];
        N = (uint32_t)y->dims[1];
        K = (uint32_t)(p->trans_a ? a->dims[0] : a->dims[1]);
        a_si = p->trans_a ? 1 : K;
        a_sk = p->trans_a ? M : 1;
        b_sk = p->trans_b ? 1 : N;
        b_sj = p->trans_b ? K : 1;
        alpha = p->alpha;
        beta = p->beta;
        if (n->n_inputs > 2 && n->inputs[2] >= 0) {
            const spw_value *c = &g->values[n->inputs[2]];
            if ((rc = spw__vk_operand(b, d, n->inputs[2], &d->push[2])))
                return rc;
            uint32_t rows = c->ndim == 2 ? (uint32_t)c->dims[0] : 1;
            uint32_t cols = c->ndim >= 1 ? (uint32_t)c->dims[c->ndim - 1] : 1;
            has_c = 1;
            c_sj = cols == 1 ? 0 : 1;
            c_si = rows == 1 ? 0 : cols;
        }
    } else {
        M = a->ndim >= 2 ? (uint32_t)a->dims[a->ndim - 2] : 1;
        K = (uint32_t)a->dims[a->ndim - 1];
        N = bv->ndim >= 2 ? (uint32_t)bv->dims[bv->ndim - 1] : 1;
        a_si = a->ndim >= 2 ? K : 0;
        a_sk = 1;
        b_sk = bv->ndim >= 2 ? N : 1;
        b_sj = bv->ndim >= 2 ? 1 : 0;
        /* Batch axes aligned right into three slots; size 1 broadcasts. */
        int na = a->ndim > 2 ? a->ndim - 2 : 0, nb = bv->ndim > 2 ? bv->ndim - 2 : 0;
        uint32_t step_a = M * K, step_b = K * N;
        for (int i = 2, ia = na - 1, ib = nb - 1; i >= 0; i--, ia--, ib--) {
            uint32_t da = ia >= 0 ? (uint32_t)a->dims[ia] : 1;
            uint32_t db = ib >= 0 ? (uint32_t)bv->dims[ib] : 1;
            bd[i] = da > db ? da : db;
            sa[i] = da == 1 ? 0 : step_a;
            sb[i] = db == 1 ? 0 : step_b;
            step_a *= da;
            step_b *= db;
        }
        if (na > 3 || nb > 3)
            return spw__error(SPW_EUNSUPPORTED, "vulkan: '%s' has more than 3 batch axes", n->name);
    }
    spec(d, M), spec(d, N), spec(d, K), spec(d, a_si), spec(d, a_sk), spec(d, b_sk), spec(d, b_sj);
    spec(d, has_c), spec(d, c_si), spec(d, c_sj), spec(d, f2u(alpha)), spec(d, f2u(beta));
    for (int i = 0; i < 3; i++)
        spec(d, bd[i]);
    for (int i = 0; i < 3; i++)
        spec(d, sa[i]);
    for (int i = 0; i < 3; i++)
        spec(d, sb[i]);
    d->groups[0] = ceil_div(N, d->spec[0]);
    d->groups[1] = M;
    d->groups[2] = bd[0] * bd[1] * bd[2];
    return 0;
}

bool spw__vk_supports_gemm(const spw_graph *g, const spw_node *n)
{
    const spw_value *x = &g->values[n->inputs[0]], *y = &g->values[n->outputs[0]];
    return n->n_inputs >= 2 && x->ndim == 2 && g->values[n->inputs[1]].ndim == 2 &&
           y->dims[0] <= MAX_GROUPS &&
           (n->n_inputs < 3 || n->inputs[2] < 0 || g->values[n->inputs[2]].ndim <= 2);
}

bool spw__vk_supports_matmul(const spw_graph *g, const spw_node *n)
{
    const spw_value *x = &g->values[n->inputs[0]], *b = &g->values[n->inputs[1]];
    if (n->n_inputs != 2 || x->ndim < 1 || b->ndim < 1 || x->ndim > 5 || b->ndim > 5)
        return false;
    int64_t numel = spw__value_numel(&g->values[n->outputs[0]]);
    int64_t m = x->ndim >= 2 ? x->dims[x->ndim - 2] : 1;
    int64_t cols = b->ndim >= 2 ? b->dims[b->ndim - 1] : 1;
    int64_t batches = m * cols > 0 ? numel / (m * cols) : 0;
    return m <= MAX_GROUPS && batches <= MAX_GROUPS;
}

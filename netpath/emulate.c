/* Link emulation on transmit (token-bucket rate, one-way delay, loss) and
 * fault injection on receive (loss, duplication, reordering, truncation,
 * corruption), for benchmarks and tests. Built only with SPW_NET_EMULATION;
 * without it, configurations that ask for either are refused at open. */
#include <string.h>

#include "netpath/net_internal.h"

#ifdef SPW_NET_EMULATION

static uint64_t rng_next(spw_net *n)
{
    /* xorshift64*: cheap, and good enough to pick packets. */
    n->rng ^= n->rng >> 12;
    n->rng ^= n->rng << 25;
    n->rng ^= n->rng >> 27;
    return n->rng * 0x2545f4914f6cdd1dull;
}

static bool chance(spw_net *n, double p)
{
    return p > 0 && (double)(rng_next(n) >> 11) * (1.0 / 9007199254740992.0) < p;
}

int spw__net_emulation_open(spw_net *n)
{
    const spw_net_config *c = &n->cfg;
    n->rng = c->seed ? c->seed : 0x5eed5eed5eedull;
    n->shaping = c->shape_rate_bps || c->shape_delay_us || c->shape_loss > 0;
    n->faults = c->fault_loss > 0 || c->fault_dup > 0 || c->fault_reorder > 0 ||
                c->fault_truncate > 0 || c->fault_corrupt > 0;
    if (!n->shaping)
        return 0;
    n->shq = spw__malloc(sizeof(shaped) * SHAPER_QUEUE);
    if (!n->shq)
        return spw__error(SPW_ENOMEM, "shaper queue");
    n->shape_last_ns = net_now(n);
    n->tokens = c->shape_burst_bytes ? c->shape_burst_bytes : c->mtu;
    return 0;
}

void spw__net_emulation_close(spw_net *n)
{
    if (n->held.frame)
        n->ops->buf_free(n->tctx, &n->held);
    n->held.frame = NULL;
    while (n->shq && n->shq_head != n->shq_tail)
        n->ops->buf_free(n->tctx, &n->shq[n->shq_head++ % SHAPER_QUEUE].buf);
    spw__free(n->shq);
    n->shq = NULL;
}

/* Each frame leaves when the token bucket allows and arrives one delay
 * later; until then the shaper holds a reference. */
void spw__net_shape(spw_net *n, const spw_net_addr *dst, spw_netbuf *const *bufs, int count,
                    uint64_t *arrive, uint64_t now)
{
    const spw_net_config *c = &n->cfg;
    for (int i = 0; i < count; i++) {
        if (arrive)
            arrive[i] = now;
        if (chance(n, c->shape_loss) || n->shq_tail - n->shq_head >= SHAPER_QUEUE) {
            n->stats.shaper_drops++;
            continue;
        }
        uint64_t t = SPW_MAX(now, n->shape_last_ns);
        uint64_t dep = t;
        /* Wire bytes: the frame plus IPv4/UDP and Ethernet headers. */
        double need = (double)(bufs[i]->len + SPW_NET_L2L4_LEN);
        if (c->shape_rate_bps) {
            double rate = (double)c->shape_rate_bps / 8e9; /* bytes per ns */
            double burst = c->shape_burst_bytes ? c->shape_burst_bytes : n->cfg.mtu;
            n->tokens = SPW_MIN(burst, n->tokens + (double)(t - n->shape_last_ns) * rate);
            if (n->tokens >= need) {
                n->tokens -= need;
            } else {
                dep = t + (uint64_t)((need - n->tokens) / rate);
                n->tokens = 0;
            }
        }
        n->shape_last_ns = dep;
        shaped *s = &n->shq[n->shq_tail++ % SHAPER_QUEUE];
        s->buf = *bufs[i];
        /* The queued copy goes out later; a resend of the kept original
         * before or after that must not write into the same buffer. */
        bufs[i]->sent = 1;
        n->ops->buf_ref(n->tctx, &s->buf);
        s->dst = *dst;
        s->due_ns = dep + (uint64_t)c->shape_delay_us * 1000u;
        if (arrive)
            arrive[i] = s->due_ns;
    }
}

void spw__net_shaper_release(spw_net *n, uint64_t now)
{
    while (n->shq_head != n->shq_tail) {
        shaped *s = &n->shq[n->shq_head % SHAPER_QUEUE];
        if (s->due_ns > now)
            break;
        spw_netbuf *b = &s->buf;
        spw__net_wire_tx(n, &s->dst, &b, 1);
        n->ops->buf_free(n->tctx, b);
        n->shq_head++;
    }
}

void spw__net_fault_frame(spw_net *n, spw_netbuf *b, uint64_t now)
{
    const spw_net_config *c = &n->cfg;
    if (chance(n, c->fault_loss)) {
        n->stats.fault_events++;
        n->ops->buf_free(n->tctx, b);
        return;
    }
    if (b->len && chance(n, c->fault_truncate)) {
        n->stats.fault_events++;
        b->len = (uint32_t)(rng_next(n) % b->len);
    }
    if (b->len && chance(n, c->fault_corrupt)) {
        n->stats.fault_events++;
        b->frame[rng_next(n) % b->len] ^= (uint8_t)(1u << (rng_next(n) % 8));
    }
    if (!n->held.frame && chance(n, c->fault_reorder)) {
        n->stats.fault_events++;
        n->held = *b;
        n->held_ns = now;
        return;
    }
    if (chance(n, c->fault_dup)) {
        n->stats.fault_events++;
        spw_netbuf d = *b;
        n->ops->buf_ref(n->tctx, &d);
        spw__net_on_frame(n, &d, now);
    }
    spw__net_on_frame(n, b, now);
    spw__net_fault_flush(n, now, true);
}

void spw__net_fault_flush(spw_net *n, uint64_t now, bool force)
{
    /* A held-back frame is not kept for long when nothing follows it. */
    if (n->held.frame && (force || since(now, n->held_ns) > 1000000u)) {
        spw_netbuf h = n->held;
        n->held.frame = NULL;
        spw__net_on_frame(n, &h, now);
    }
}

#else /* !SPW_NET_EMULATION */

int spw__net_emulation_open(spw_net *n)
{
    const spw_net_config *c = &n->cfg;
    if (c->shape_rate_bps || c->shape_delay_us || c->shape_loss > 0 || c->fault_loss > 0 ||
        c->fault_dup > 0 || c->fault_reorder > 0 || c->fault_truncate > 0 || c->fault_corrupt > 0)
        return spw__error(SPW_EUNSUPPORTED, "link emulation and fault injection are not built in "
                                            "(configure with -DSPW_NET_EMULATION=ON)");
    return 0;
}

void spw__net_emulation_close(spw_net *n)
{
    (void)n;
}

void spw__net_shape(spw_net *n, const spw_net_addr *dst, spw_netbuf *const *bufs, int count,
                    uint64_t *arrive, uint64_t now)
{
    (void)n, (void)dst, (void)bufs, (void)count, (void)arrive, (void)now;
}

void spw__net_shaper_release(spw_net *n, uint64_t now)
{
    (void)n, (void)now;
}

void spw__net_fault_frame(spw_net *n, spw_netbuf *b, uint64_t now)
{
    spw__net_on_frame(n, b, now);
}

void spw__net_fault_flush(spw_net *n, uint64_t now, bool force)
{
    (void)n, (void)now, (void)force;
}

#endif

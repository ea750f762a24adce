/* Link emulation on transmit (token-bucket rate, one-way delay with jitter,
 * loss) and fault injection on receive (loss, duplication, reordering,
 * truncation, corruption), for benchmarks and tests. Built only with
 * SPW_NET_EMULATION; without it, configurations that ask for either are
 * refused at open. The link parser is always built. */
#include <math.h>
#include <stdlib.h>
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
    n->shaping = c->shape_rate_bps || c->shape_delay_us || c->shape_jitter_us ||
                 c->shape_loss > 0 || c->shape_nsteps;
    n->faults = c->fault_loss > 0 || c->fault_dup > 0 || c->fault_reorder > 0 ||
                c->fault_truncate > 0 || c->fault_corrupt > 0;
    if (!n->shaping)
        return 0;
    n->shq = spw__malloc(sizeof(shaped) * SHAPER_QUEUE);
    if (!n->shq)
        return spw__error(SPW_ENOMEM, "shaper queue");
    n->shape_last_ns = net_now(n);
    n->tokens = c->shape_burst_bytes ? c->shape_burst_bytes : c->mtu;
    if (c->shape_nsteps && !c->shape_epoch_ns)
        n->cfg.shape_epoch_ns = n->shape_last_ns; /* steps count from now */
    return 0;
}

/* The link's rate at `now`: that of the last step begun, else the base. */
static uint64_t rate_at(const spw_net *n, uint64_t now)
{
    const spw_net_config *c = &n->cfg;
    uint64_t rate = c->shape_rate_bps;
    for (uint32_t i = 0; i < c->shape_nsteps && i < SPW_NET_LINK_STEPS; i++)
        if (now >= c->shape_epoch_ns + (uint64_t)c->shape_step_ms[i] * 1000000u)
            rate = c->shape_step_bps[i];
    return rate;
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
        uint64_t last_dep = n->shape_last_ns;
        uint64_t t = SPW_MAX(now, last_dep);
        uint64_t dep = t;
        /* Wire bytes: the frame plus IPv4/UDP and Ethernet headers. */
        double need = (double)(bufs[i]->len + SPW_NET_L2L4_LEN);
        uint64_t rate_bps = rate_at(n, t);
        if (rate_bps) {
            double rate = (double)rate_bps / 8e9; /* bytes per ns */
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
        /* One link keeps its order: a frame never overtakes the one before. */
        uint64_t prev_due =
            n->shq_tail != n->shq_head ? n->shq[(n->shq_tail - 1) % SHAPER_QUEUE].due_ns : 0;
        shaped *s = &n->shq[n->shq_tail++ % SHAPER_QUEUE];
        s->buf = *bufs[i];
        /* The queued copy goes out later; a resend of the kept original
         * before or after that must not write into the same buffer. */
        bufs[i]->sent = 1;
        n->ops->buf_ref(n->tctx, &s->buf);
        s->dst = *dst;
        if (now <= last_dep && prev_due) {
            /* Queued behind the frame before: the two stay as far apart as
             * the link spaced them, so jitter varies the delay from one
             * burst to the next, not within one. */
            s->due_ns = prev_due + (dep - last_dep);
        } else {
            uint64_t delay = (uint64_t)c->shape_delay_us * 1000u;
            if (c->shape_jitter_us) {
                /* Uniform in delay +- jitter (not below zero). */
                uint64_t span = 2ull * c->shape_jitter_us * 1000u + 1;
                uint64_t j = rng_next(n) % span, lo = (uint64_t)c->shape_jitter_us * 1000u;
                delay = delay + j > lo ? delay + j - lo : 0;
            }
            s->due_ns = SPW_MAX(dep + delay, prev_due);
        }
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
    if (c->shape_rate_bps || c->shape_delay_us || c->shape_jitter_us || c->shape_loss > 0 ||
        c->shape_nsteps || c->fault_loss > 0 || c->fault_dup > 0 || c->fault_reorder > 0 ||
        c->fault_truncate > 0 || c->fault_corrupt > 0)
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

/* ---- link specifications (always built) ---------------------------------- */

int spw_net_emulation_available(void)
{
#ifdef SPW_NET_EMULATION
    return 1;
#else
    return 0;
#endif
}

typedef struct link_preset {
    const char *name;
    uint64_t rate_bps;
    uint32_t delay_us, jitter_us;
} link_preset;

/* Typical uplinks: rates as deployed cells give one device, one-way delays
 * of the radio access plus a nearby server (docs/LATENCY.md). */
static const link_preset presets[] = {
    {"nbiot", 100000, 300000, 50000}, {"ltem", 1000000, 20000, 5000}, {"3g", 2000000, 50000, 10000},
    {"4g", 10000000, 20000, 5000},    {"wifi", 50000000, 3000, 1000}, {"5g", 200000000, 5000, 1000},
    {"wired", 1000000000, 100, 0},
};

/* A number and a unit suffix from units[] (scale per unit); a bare number
 * takes bare_scale. false on anything else. */
typedef struct unit {
    const char *suffix;
    double scale;
} unit;

static bool parse_quantity(const char *s, size_t len, const unit *units, double bare_scale,
                           double *out)
{
    char buf[64];
    if (!len || len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = 0;
    char *end;
    double v = strtod(buf, &end);
    if (end == buf || !isfinite(v) || v < 0)
        return false;
    if (!*end) {
        *out = v * bare_scale;
        return true;
    }
    for (const unit *u = units; u->suffix; u++)
        if (!strcmp(end, u->suffix)) {
            *out = v * u->scale;
            return true;
        }
    return false;
}

static int parse_base(const char *spec, spw_net_config *c);

int spw_net_link_parse(const char *spec, spw_net_config *c)
{
    if (!spec || !c)
        return spw__error(SPW_EINVAL, "link: NULL argument");
    static const unit rate_units[] = {{"bit", 1},    {"kbit", 1e3}, {"mbit", 1e6},
                                      {"gbit", 1e9}, {"bps", 1},    {NULL, 0}};
    static const unit time_units[] = {{"us", 1}, {"ms", 1e3}, {"s", 1e6}, {NULL, 0}};
    char base[128];
    const char *semi = strchr(spec, ';');
    size_t blen = semi ? (size_t)(semi - spec) : strlen(spec);
    if (blen >= sizeof(base))
        return spw__error(SPW_EINVAL, "link '%s': too long", spec);
    memcpy(base, spec, blen);
    base[blen] = 0;
    /* Into a copy: a bad spec changes nothing. */
    spw_net_config t = *c;
    t.shape_nsteps = 0;
    double last_ms = -1;
    for (const char *p = semi; p; p = strchr(p + 1, ';')) {
        const char *f = p + 1, *end = strchr(f, ';'), *at = strchr(f, '@');
        size_t flen = end ? (size_t)(end - f) : strlen(f);
        double rate = 0, when;
        if (!at || at >= f + flen)
            return spw__error(SPW_EINVAL, "link '%s': a step is RATE@TIME, e.g. 1mbit@10s", spec);
        if (t.shape_nsteps == SPW_NET_LINK_STEPS)
            return spw__error(SPW_EINVAL, "link '%s': more than %d steps", spec,
                              SPW_NET_LINK_STEPS);
        bool inf = at - f == 3 && !strncmp(f, "inf", 3);
        if (!inf && (!parse_quantity(f, (size_t)(at - f), rate_units, 1, &rate) || rate > 1e12))
            return spw__error(SPW_EINVAL, "link '%s': bad step rate '%.*s'", spec, (int)(at - f),
                              f);
        size_t tlen = (size_t)(f + flen - at - 1);
        if (!parse_quantity(at + 1, tlen, time_units, 1e3, &when) || when / 1e3 > 4e9 ||
            when / 1e3 <= last_ms)
            return spw__error(SPW_EINVAL, "link '%s': bad step time '%.*s' (times increase)", spec,
                              (int)tlen, at + 1);
        last_ms = when / 1e3;
        t.shape_step_ms[t.shape_nsteps] = (uint32_t)(last_ms + 0.5);
        t.shape_step_bps[t.shape_nsteps++] = inf ? 0 : (uint64_t)(rate + 0.5);
    }
    int rc = parse_base(base, &t);
    if (rc)
        return rc;
    *c = t;
    return 0;
}

static int parse_base(const char *spec, spw_net_config *c)
{
    for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++)
        if (!strcmp(spec, presets[i].name)) {
            c->shape_rate_bps = presets[i].rate_bps;
            c->shape_delay_us = presets[i].delay_us;
            c->shape_jitter_us = presets[i].jitter_us;
            c->shape_loss = 0;
            return 0;
        }
    static const unit rate_units[] = {{"bit", 1},    {"kbit", 1e3}, {"mbit", 1e6},
                                      {"gbit", 1e9}, {"bps", 1},    {NULL, 0}};
    static const unit time_units[] = {{"us", 1}, {"ms", 1e3}, {"s", 1e6}, {NULL, 0}};
    const char *field[4] = {NULL};
    size_t flen[4] = {0};
    int nf = 0;
    for (const char *p = spec;; nf++) {
        if (nf == 4)
            return spw__error(SPW_EINVAL, "link '%s': more than RATE,DELAY,JITTER,LOSS", spec);
        const char *comma = strchr(p, ',');
        field[nf] = p;
        flen[nf] = comma ? (size_t)(comma - p) : strlen(p);
        if (!comma) {
            nf++;
            break;
        }
        p = comma + 1;
    }
    if (nf < 2)
        return spw__error(SPW_EINVAL,
                          "link '%s': not a preset (nbiot ltem 3g 4g wifi 5g wired) nor "
                          "RATE,DELAY[,JITTER[,LOSS]] (e.g. 1mbit,20ms)",
                          spec);
    double rate, delay, jitter = 0, loss = 0;
    if (flen[0] == 3 && !strncmp(field[0], "inf", 3))
        rate = 0;
    else if (!parse_quantity(field[0], flen[0], rate_units, 1, &rate) || rate > 1e12)
        return spw__error(SPW_EINVAL, "link '%s': bad rate '%.*s' (e.g. 500kbit, 10mbit)", spec,
                          (int)flen[0], field[0]);
    if (!parse_quantity(field[1], flen[1], time_units, 1e3, &delay) || delay > 1e7)
        return spw__error(SPW_EINVAL, "link '%s': bad delay '%.*s' (e.g. 20ms, up to 10 s)", spec,
                          (int)flen[1], field[1]);
    if (nf > 2 && (!parse_quantity(field[2], flen[2], time_units, 1e3, &jitter) || jitter > 1e7))
        return spw__error(SPW_EINVAL, "link '%s': bad jitter '%.*s' (e.g. 5ms)", spec, (int)flen[2],
                          field[2]);
    if (nf > 3) {
        static const unit loss_units[] = {{"%", 0.01}, {NULL, 0}};
        if (!parse_quantity(field[3], flen[3], loss_units, 1, &loss) || loss > 1)
            return spw__error(SPW_EINVAL, "link '%s': bad loss '%.*s' (0 .. 1, or 0%% .. 100%%)",
                              spec, (int)flen[3], field[3]);
    }
    c->shape_rate_bps = (uint64_t)(rate + 0.5);
    c->shape_delay_us = (uint32_t)(delay + 0.5);
    c->shape_jitter_us = (uint32_t)(jitter + 0.5);
    c->shape_loss = loss;
    return 0;
}

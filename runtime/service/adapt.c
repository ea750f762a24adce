/* Rate adaptation: a path estimate fitted from the client's own requests
 * and the policy that picks a rate point for a latency objective. Pure
 * functions of their arguments (no clock, no I/O), so they are tested on
 * synthetic numbers. */
#include <math.h>

#include "runtime/service/service_internal.h"

/* Weight kept by the past at each new sample: about the last three requests
 * count, so a change of the link shows within a few requests. */
#define DECAY 0.6
/* Sizes closer than this (bytes, standard deviation) cannot separate the
 * rate from the base delay: the last rate is kept. */
#define MIN_SPREAD 64.0

void spw_path_estimate_add(spw_path_estimate *e, double bytes, double network_ms)
{
    if (!e || !isfinite(bytes) || !isfinite(network_ms) || bytes < 0 || network_ms < 0)
        return;
    e->sw = e->sw * DECAY + 1;
    e->sx = e->sx * DECAY + bytes;
    e->sy = e->sy * DECAY + network_ms;
    e->sxx = e->sxx * DECAY + bytes * bytes;
    e->sxy = e->sxy * DECAY + bytes * network_ms;
    e->samples++;
    double mx = e->sx / e->sw, my = e->sy / e->sw;
    double var = e->sxx / e->sw - mx * mx, cov = e->sxy / e->sw - mx * my;
    if (var > MIN_SPREAD * MIN_SPREAD && cov > 0) {
        double ms_per_byte = cov / var;
        e->rate_bps = 8.0 / ms_per_byte * 1000.0;
    }
    /* No request arrives faster than its bytes at the link rate: a rate
     * that says otherwise is too low (the link got faster while every
     * request had the same size, which the fit cannot see). */
    if (e->rate_bps > 0 && network_ms > 0 && bytes * 8.0 / e->rate_bps * 1000.0 > network_ms)
        e->rate_bps = bytes * 8.0 / network_ms * 1000.0;
    /* The base follows the recent mean at the rate in use (never below 0). */
    double ser = e->rate_bps > 0 ? mx * 8.0 / e->rate_bps * 1000.0 : 0;
    e->base_ms = my > ser ? my - ser : 0;
}

double spw_adapt_predict(const spw_rate_point *p, const spw_path_estimate *e)
{
    if (!p)
        return INFINITY;
    double net = 0;
    if (e && e->samples) {
        net = e->base_ms;
        if (e->rate_bps > 0)
            net += p->bytes * 8.0 / e->rate_bps * 1000.0;
    }
    return p->compute_ms + net;
}

void spw__adapt_share_compute(spw_rate_point *pts, const int64_t *macs, int n)
{
    if (!pts || !macs)
        return;
    /* The least of a group is the same before and after any of its members
     * took it, so one pass in place is enough. */
    for (int i = 0; i < n; i++) {
        if (macs[i] <= 0)
            continue;
        double least = 0;
        for (int j = 0; j < n; j++)
            if (macs[j] == macs[i] && pts[j].compute_ms > 0 &&
                (least == 0 || pts[j].compute_ms < least))
                least = pts[j].compute_ms;
        if (least > 0)
            pts[i].compute_ms = least;
    }
}

int spw_adapt_choose(const spw_rate_point *points, int n, const spw_path_estimate *e, double slo_ms)
{
    if (!points || n < 1)
        return -1;
    int best = -1, fastest = 0;
    double t_fast = INFINITY;
    for (int i = 0; i < n; i++) {
        double t = spw_adapt_predict(&points[i], e);
        if (t < t_fast) {
            t_fast = t;
            fastest = i;
        }
        if (t <= slo_ms && (best < 0 || points[i].accuracy > points[best].accuracy))
            best = i;
    }
    return best >= 0 ? best : fastest;
}

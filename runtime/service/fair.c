/* Fair admission and round-robin batch forming across peers (fair.h). */
#include "runtime/service/fair.h"

#include <string.h>

#include "runtime/core/internal.h"

bool spw__fair_admits(int held_by_peer, int held_total, int cap)
{
    return held_total < cap && held_by_peer < cap - held_total;
}

int spw__fair_init(spw_fair *f, int cap, int n_queues)
{
    memset(f, 0, sizeof(*f));
    if (cap < 1 || n_queues < 1)
        return spw__error(SPW_EINVAL, "fair queue: capacity %d, %d queues", cap, n_queues);
    f->cap = cap;
    f->n_queues = n_queues;
    f->items = spw__calloc((size_t)cap, sizeof(*f->items));
    f->peers = spw__calloc((size_t)cap, sizeof(*f->peers));
    f->ring = spw__calloc((size_t)cap, sizeof(*f->ring));
    f->queued_in = spw__calloc((size_t)n_queues, sizeof(*f->queued_in));
    f->oldest = spw__calloc((size_t)n_queues, sizeof(*f->oldest));
    if (!f->items || !f->peers || !f->ring || !f->queued_in || !f->oldest) {
        spw__fair_fini(f);
        return spw__error(SPW_ENOMEM, "fair queue of %d requests", cap);
    }
    for (int i = 0; i < cap; i++) {
        f->items[i].queue = -1;
        f->items[i].next = i + 1 < cap ? i + 1 : -1;
    }
    f->free_item = 0;
    return 0;
}

void spw__fair_fini(spw_fair *f)
{
    spw__free(f->items);
    spw__free(f->peers);
    spw__free(f->ring);
    spw__free(f->queued_in);
    spw__free(f->oldest);
    memset(f, 0, sizeof(*f));
}

/* The slot of peer `key`, or -1. A linear scan: at most cap peers, and cap is
 * a few batches. */
static int find_peer(const spw_fair *f, uint64_t key)
{
    for (int p = 0; p < f->cap; p++)
        if (f->peers[p].held && f->peers[p].key == key)
            return p;
    return -1;
}

int spw__fair_held(const spw_fair *f, uint64_t key)
{
    int p = find_peer(f, key);
    return p < 0 ? 0 : f->peers[p].held;
}

int spw__fair_push(spw_fair *f, uint64_t key, int queue, void *msg, uint64_t t_arrival)
{
    if (queue < 0 || queue >= f->n_queues)
        return SPW_EINVAL;
    int p = find_peer(f, key);
    if (!spw__fair_admits(p < 0 ? 0 : f->peers[p].held, f->held, f->cap) || f->free_item < 0)
        return SPW_EBUSY;
    if (p < 0) {
        /* held < cap, so some slot is free. */
        for (p = 0; f->peers[p].held; p++)
            ;
        f->peers[p] = (spw_fair_peer){.key = key, .head = -1, .tail = -1};
    }
    spw_fair_peer *pe = &f->peers[p];
    int i = f->free_item;
    spw_fair_item *it = &f->items[i];
    f->free_item = it->next;
    *it =
        (spw_fair_item){.msg = msg, .t_arrival = t_arrival, .peer = p, .queue = queue, .next = -1};
    if (pe->tail >= 0)
        f->items[pe->tail].next = i;
    else
        pe->head = i;
    pe->tail = i;
    if (!pe->queued++) {
        /* A peer that had nothing queued joins at the end of the round. */
        memmove(&f->ring[f->cursor + 1], &f->ring[f->cursor],
                (size_t)(f->n_ring - f->cursor) * sizeof(int));
        f->ring[f->cursor++] = p;
        f->n_ring++;
    }
    pe->held++;
    f->held++;
    f->queued++;
    f->queued_in[queue]++;
    return 0;
}

int spw__fair_pick(spw_fair *f, int max_batch, uint64_t now, uint64_t max_wait, uint64_t *wake)
{
    /* Oldest request of each queue: the heads of the peers' lists are not
     * enough (a peer's list mixes queues), so look at every queued one. */
    uint64_t *oldest = f->oldest;
    int nq = f->n_queues;
    for (int q = 0; q < nq; q++)
        oldest[q] = UINT64_MAX;
    for (int i = 0; i < f->cap && f->queued; i++) {
        const spw_fair_item *it = &f->items[i];
        if (it->queue >= 0 && it->t_arrival < oldest[it->queue])
            oldest[it->queue] = it->t_arrival;
    }
    int best = -1;
    uint64_t next = UINT64_MAX;
    for (int q = 0; q < nq; q++) {
        if (!f->queued_in[q])
            continue;
        uint64_t due = oldest[q] + max_wait < oldest[q] ? UINT64_MAX : oldest[q] + max_wait;
        if (f->queued_in[q] >= max_batch)
            due = 0;
        if (due <= now) {
            if (best < 0 || oldest[q] < oldest[best])
                best = q;
        } else if (due < next) {
            next = due;
        }
    }
    if (wake)
        *wake = best >= 0 ? now : next;
    return best;
}

/* Unlinks peer p's first request of `queue` into *out; false when it has none. */
static bool take_one(spw_fair *f, int p, int queue, spw_fair_item *out)
{
    spw_fair_peer *pe = &f->peers[p];
    int prev = -1;
    for (int i = pe->head; i >= 0; prev = i, i = f->items[i].next) {
        spw_fair_item *it = &f->items[i];
        if (it->queue != queue)
            continue;
        if (prev >= 0)
            f->items[prev].next = it->next;
        else
            pe->head = it->next;
        if (pe->tail == i)
            pe->tail = prev;
        *out = *it;
        out->next = -1;
        it->queue = -1;
        it->msg = NULL;
        it->next = f->free_item;
        f->free_item = i;
        pe->queued--;
        f->queued--;
        f->queued_in[queue]--;
        return true;
    }
    return false;
}

int spw__fair_take(spw_fair *f, int queue, int max, spw_fair_item *out)
{
    if (queue < 0 || queue >= f->n_queues)
        return 0;
    int n = 0, idle = 0;
    int pos = f->n_ring ? f->cursor % f->n_ring : 0;
    /* Until the batch is full or a whole round of peers had none. */
    while (n < max && f->n_ring && idle < f->n_ring) {
        int p = f->ring[pos];
        if (!take_one(f, p, queue, &out[n])) {
            idle++;
            pos = (pos + 1) % f->n_ring;
            continue;
        }
        n++;
        idle = 0;
        if (f->peers[p].queued) {
            pos = (pos + 1) % f->n_ring;
            continue;
        }
        /* Out of the ring; the next peer moves into pos. */
        memmove(&f->ring[pos], &f->ring[pos + 1], (size_t)(f->n_ring - pos - 1) * sizeof(int));
        f->n_ring--;
        if (pos == f->n_ring)
            pos = 0;
    }
    f->cursor = pos;
    return n;
}

void spw__fair_release(spw_fair *f, int peer)
{
    if (peer < 0 || peer >= f->cap || f->peers[peer].held <= f->peers[peer].queued)
        return; /* nothing of it was taken: a caller's mistake, not a reason to corrupt counts */
    f->peers[peer].held--;
    f->held--;
}

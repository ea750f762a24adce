/* Keyed tables of the message layer: open hashing with chains through the
 * entries, an age list (oldest first) for expiry and eviction, a free list;
 * all sized once at open. And the ring of recently completed keys. */
#include <string.h>

#include "netpath/net_internal.h"

static uint32_t key_hash(const net_key *k)
{
    uint64_t h = k->id * 0x9e3779b97f4a7c15ull;
    h ^= ((uint64_t)k->ip << 24 | (uint64_t)k->port << 8 | k->type) * 0xc2b2ae3d27d4eb4full;
    return (uint32_t)(h >> 32);
}

int spw__net_tbl_init(net_tbl *t, uint32_t cap)
{
    memset(t, 0, sizeof(*t));
    t->nbuckets = 16;
    while (t->nbuckets < cap * 2)
        t->nbuckets <<= 1;
    t->ents = spw__calloc(cap, sizeof(net_ent));
    t->buckets = spw__malloc(sizeof(int32_t) * t->nbuckets);
    if (!t->ents || !t->buckets) {
        spw__free(t->ents);
        spw__free(t->buckets);
        return spw__error(SPW_ENOMEM, "netpath table of %u entries", cap);
    }
    for (uint32_t i = 0; i < t->nbuckets; i++)
        t->buckets[i] = -1;
    for (uint32_t i = 0; i < cap; i++)
        t->ents[i].hnext = i + 1 < cap ? (int32_t)(i + 1) : -1;
    t->cap = cap;
    t->free_head = 0;
    t->oldest = t->newest = -1;
    return 0;
}

net_ent *spw__net_tbl_find(net_tbl *t, const net_key *k)
{
    for (int32_t i = t->buckets[key_hash(k) & (t->nbuckets - 1)]; i >= 0; i = t->ents[i].hnext)
        if (key_eq(&t->ents[i].key, k))
            return &t->ents[i];
    return NULL;
}

net_ent *spw__net_tbl_insert(net_tbl *t, const net_key *k)
{
    if (t->free_head < 0)
        return NULL;
    int32_t i = t->free_head;
    net_ent *e = &t->ents[i];
    t->free_head = e->hnext;
    memset(e, 0, sizeof(*e));
    e->key = *k;
    uint32_t b = key_hash(k) & (t->nbuckets - 1);
    e->hnext = t->buckets[b];
    t->buckets[b] = i;
    e->aprev = t->newest;
    e->anext = -1;
    if (t->newest >= 0)
        t->ents[t->newest].anext = i;
    else
        t->oldest = i;
    t->newest = i;
    t->used++;
    return e;
}

void spw__net_tbl_unlink(net_tbl *t, net_ent *e)
{
    int32_t i = (int32_t)(e - t->ents);
    int32_t *p = &t->buckets[key_hash(&e->key) & (t->nbuckets - 1)];
    while (*p != i)
        p = &t->ents[*p].hnext;
    *p = e->hnext;
    if (e->aprev >= 0)
        t->ents[e->aprev].anext = e->anext;
    else
        t->oldest = e->anext;
    if (e->anext >= 0)
        t->ents[e->anext].aprev = e->aprev;
    else
        t->newest = e->aprev;
    e->hnext = t->free_head;
    t->free_head = i;
    t->used--;
}

void spw__net_tbl_drain(spw_net *n, net_tbl *t)
{
    while (t->ents && t->oldest >= 0)
        spw__net_ent_release(n, t, &t->ents[t->oldest]);
    spw__free(t->ents);
    spw__free(t->buckets);
    t->ents = NULL;
    t->buckets = NULL;
}

bool spw__net_done_has(const spw_net *n, const net_key *k)
{
    for (uint32_t i = n->done_head[key_hash(k) % DONE_BUCKETS]; i; i = n->done_next[i - 1])
        if (key_eq(&n->done[i - 1], k))
            return true;
    return false;
}

void spw__net_done_add(spw_net *n, const net_key *k)
{
    uint32_t slot = n->done_pos++ % DONE_RING;
    if (n->done_bkt[slot]) {
        /* The slot's previous key leaves the chain it was linked into (its
         * bucket + 1 is kept: a purged slot no longer hashes there). */
        uint16_t *p = &n->done_head[n->done_bkt[slot] - 1];
        while (*p && *p != slot + 1)
            p = &n->done_next[*p - 1];
        if (*p)
            *p = n->done_next[slot];
    }
    uint32_t b = key_hash(k) % DONE_BUCKETS;
    n->done[slot] = *k;
    n->done_bkt[slot] = (uint16_t)(b + 1);
    n->done_next[slot] = n->done_head[b];
    n->done_head[b] = (uint16_t)(slot + 1);
}

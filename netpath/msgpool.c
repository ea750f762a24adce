/* Message objects and fragment arrays. Both come from size-class pools whose
 * blocks are recycled, so once the largest working set has been seen (itself
 * bounded by the configured limits) the data path allocates nothing. */
#include <string.h>

#include "netpath/net_internal.h"

/* Every block starts with this header; the caller's memory follows, aligned
 * for any of the structures kept in it. */
typedef struct pool_blk {
    struct pool_blk *next; /* free list of its class */
    struct pool_blk *all;  /* every block, for close */
    uint32_t cls;
    uint32_t pad;
} pool_blk;

#define POOL_MIN 64u

void *spw__net_pool_get(net_pool *p, size_t bytes)
{
    uint32_t cls = 0;
    while (cls < NETPOOL_CLASSES && ((size_t)POOL_MIN << cls) < bytes)
        cls++;
    if (cls == NETPOOL_CLASSES)
        return NULL;
    pool_blk *b = p->free[cls];
    if (b) {
        p->free[cls] = b->next;
        return b + 1;
    }
    b = spw__malloc(sizeof(pool_blk) + ((size_t)POOL_MIN << cls));
    if (!b)
        return NULL;
    b->cls = cls;
    b->all = p->all;
    p->all = b;
    p->blocks++;
    return b + 1;
}

int spw__net_pool_reserve(net_pool *p, size_t bytes, uint32_t count)
{
    /* Taken all at once (chained through their own memory), then returned:
     * the free list ends up holding count blocks of the class. */
    void *head = NULL;
    int rc = 0;
    for (uint32_t i = 0; i < count; i++) {
        void **b = spw__net_pool_get(p, SPW_MAX(bytes, sizeof(void *)));
        if (!b) {
            rc = spw__error(SPW_ENOMEM, "message pool: %u blocks of %zu bytes", count, bytes);
            break;
        }
        *b = head;
        head = b;
    }
    while (head) {
        void *next = *(void **)head;
        spw__net_pool_put(p, head);
        head = next;
    }
    return rc;
}

void spw__net_pool_put(net_pool *p, void *block)
{
    if (!block)
        return;
    pool_blk *b = (pool_blk *)block - 1;
    b->next = p->free[b->cls];
    p->free[b->cls] = b;
}

void spw__net_pool_fini(net_pool *p)
{
    for (pool_blk *b = p->all, *next; b; b = next) {
        next = b->all;
        spw__free(b);
    }
    memset(p, 0, sizeof(*p));
}

net_msg *spw__net_msg_new(spw_net *n, int nbufs)
{
    size_t sz = sizeof(net_msg) + (size_t)nbufs * (sizeof(spw_netbuf) + sizeof(spw_net_seg));
    net_msg *m = spw__net_pool_get(&n->pool, sz);
    if (!m)
        return NULL;
    memset(m, 0, sizeof(*m));
    m->nbufs = nbufs;
    m->bufs = (spw_netbuf *)(m + 1);
    m->pub.segs = (spw_net_seg *)(m->bufs + nbufs);
    m->pub.nsegs = nbufs;
    memset(m->bufs, 0, sizeof(spw_netbuf) * (size_t)nbufs);
    return m;
}

void spw__net_bufs_free(spw_net *n, spw_netbuf *b, int count)
{
    for (int i = 0; i < count; i++)
        if (b[i].frame)
            n->ops->buf_free(n->tctx, &b[i]);
}

void spw_net_msg_free(spw_net *n, spw_net_msg *pub)
{
    if (!n || !pub)
        return;
    net_msg *m = (net_msg *)pub;
    spw__net_bufs_free(n, m->bufs, m->nbufs);
    spw__net_pool_put(&n->pool, m);
}

void spw__net_ent_release(spw_net *n, net_tbl *t, net_ent *e)
{
    if (e->frags) {
        spw__net_bufs_free(n, e->frags, e->count);
        spw__net_pool_put(&n->pool, e->frags);
        e->frags = NULL;
    }
    spw__net_tbl_unlink(t, e);
}

void spw__net_ready_push(spw_net *n, spw_net_msg *m)
{
    if (n->ready_tail - n->ready_head >= n->ready_cap) {
        /* Nobody is draining: drop rather than grow. */
        n->stats.evictions++;
        spw_net_msg_free(n, m);
        return;
    }
    n->ready[n->ready_tail++ % n->ready_cap] = m;
    n->stats.rx_msgs++;
}

void spw__net_local_event(spw_net *n, const net_ent *o, int status)
{
    net_msg *m = spw__net_msg_new(n, 0);
    if (!m)
        return;
    m->pub.type = SPW_NET_ERROR;
    m->pub.request_id = o->key.id;
    m->pub.model_id = o->hdr.model_id;
    m->pub.peer = o->peer;
    m->pub.status = status;
    spw__net_ready_push(n, &m->pub);
}

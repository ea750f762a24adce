/* In-process transport: two endpoints joined back to back, for tests and
 * fuzzing. Sending copies the frame into the receiver's pool, as a wire
 * would; like a DPDK driver's copy, it is counted in driver_tx_copy_bytes. */
#include <string.h>

#include "netpath/proto.h"
#include "netpath/transport.h"

#define MEM_QUEUE 1024u

typedef struct mem_ctx {
    spw_net_bufpool pool;
    struct mem_ctx *peer;
    spw_net_addr local;
    spw_net_stats *stats;
    spw_netbuf queue[MEM_QUEUE];
    uint32_t head, tail; /* free-running */
} mem_ctx;

static int mem_open(const spw_net_config *cfg, uint32_t frame_room, uint32_t nbufs,
                    spw_net_stats *stats, void **out)
{
    mem_ctx *m = spw__calloc(1, sizeof(*m));
    if (!m)
        return spw__error(SPW_ENOMEM, "memory transport");
    int rc = 0;
    if (cfg->local && (rc = spw_net_addr_parse(cfg->local, &m->local)))
        goto fail;
    if ((rc = spw__net_bufpool_init(&m->pool, nbufs, frame_room)))
        goto fail;
    m->stats = stats;
    if (cfg->memory_pair) {
        mem_ctx *p = spw__net_transport_ctx(cfg->memory_pair);
        if (!p || p->peer) {
            spw__net_bufpool_fini(&m->pool);
            rc = spw__error(SPW_EINVAL, "memory_pair is not an unpaired memory endpoint");
            goto fail;
        }
        p->peer = m;
        m->peer = p;
    }
    *out = m;
    return 0;
fail:
    spw__free(m);
    return rc;
}

static void mem_close(void *ctx)
{
    mem_ctx *m = ctx;
    if (m->peer)
        m->peer->peer = NULL;
    while (m->head != m->tail)
        spw__net_bufpool_put(&m->pool, &m->queue[m->head++ % MEM_QUEUE]);
    spw__net_bufpool_fini(&m->pool);
    spw__free(m);
}

static int mem_buf_alloc(void *ctx, spw_netbuf *b)
{
    return spw__net_bufpool_get(&((mem_ctx *)ctx)->pool, b);
}

static void mem_buf_ref(void *ctx, spw_netbuf *b)
{
    spw__net_bufpool_ref(b);
}

static void mem_buf_free(void *ctx, spw_netbuf *b)
{
    spw__net_bufpool_put(&((mem_ctx *)ctx)->pool, b);
}

static int mem_tx_burst(void *ctx, const spw_net_addr *dst, spw_netbuf *const *bufs, int count)
{
    /* These transports copy the frame (socket, peer pool): marking it keeps
     * the rule every transport shares. */
    for (int i = 0; i < count; i++)
        bufs[i]->sent = 1;
    mem_ctx *m = ctx, *p = m->peer;
    if (!p)
        return count; /* nobody listening: the frames are lost on the wire */
    for (int i = 0; i < count; i++) {
        spw_netbuf b;
        if (p->tail - p->head >= MEM_QUEUE || spw__net_bufpool_get(&p->pool, &b))
            return i;
        memcpy(b.frame, bufs[i]->frame, bufs[i]->len);
        m->stats->driver_tx_copy_bytes += bufs[i]->len - SPW_MIN(bufs[i]->len, SPW_PROTO_HDR_LEN);
        b.len = bufs[i]->len;
        b.from = m->local;
        p->queue[p->tail++ % MEM_QUEUE] = b;
    }
    return count;
}

static int mem_rx_burst(void *ctx, spw_netbuf *bufs, int max)
{
    mem_ctx *m = ctx;
    int n = 0;
    while (n < max && m->head != m->tail)
        bufs[n++] = m->queue[m->head++ % MEM_QUEUE];
    return n;
}

static int mem_local_addr(void *ctx, spw_net_addr *out)
{
    *out = ((mem_ctx *)ctx)->local;
    return 0;
}

const spw_net_transport_ops spw__net_memory_ops = {
    .name = "memory",
    .open = mem_open,
    .close = mem_close,
    .buf_alloc = mem_buf_alloc,
    .buf_ref = mem_buf_ref,
    .buf_free = mem_buf_free,
    .tx_burst = mem_tx_burst,
    .rx_burst = mem_rx_burst,
    .local_addr = mem_local_addr,
};

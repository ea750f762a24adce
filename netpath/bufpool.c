/* Reference-counted heap blocks for the UDP and memory transports. */
#include <string.h>

#include "netpath/proto.h"
#include "netpath/transport.h"

/* Block: a 64-byte header (reference count, pool index), then the data. The
 * frame starts at FRAME_OFF so that frame + 70 lies on a 64-byte boundary. */
#define BLK_HDR 64u
#define FRAME_OFF (128u - SPW_PROTO_HDR_LEN)

typedef struct blk_hdr {
    uint32_t refs;
    uint32_t index;
} blk_hdr;

int spw__net_bufpool_init(spw_net_bufpool *bp, uint32_t nblk, uint32_t frame_room)
{
    memset(bp, 0, sizeof(*bp));
    size_t bsz = BLK_HDR + FRAME_OFF + frame_room;
    bsz = (bsz + 63u) & ~(size_t)63u;
    size_t total;
    if (!nblk || !spw__mul_ok(bsz, nblk, &total))
        return spw__error(SPW_EINVAL, "buffer pool of %u blocks", nblk);
    bp->mem = spw__aligned_alloc(64, total);
    if (!bp->mem)
        return spw__error(SPW_ENOMEM, "buffer pool of %zu bytes", total);
    bp->free_list = spw__malloc(sizeof(uint32_t) * nblk);
    if (!bp->free_list) {
        spw__aligned_free(bp->mem);
        bp->mem = NULL;
        return spw__error(SPW_ENOMEM, "buffer pool free list");
    }
    bp->nblk = nblk;
    bp->blk_size = (uint32_t)bsz;
    for (uint32_t i = 0; i < nblk; i++) {
        blk_hdr *h = (blk_hdr *)(bp->mem + (size_t)i * bsz);
        h->refs = 0;
        h->index = i;
        bp->free_list[i] = nblk - 1 - i;
    }
    bp->nfree = nblk;
    return 0;
}

void spw__net_bufpool_fini(spw_net_bufpool *bp)
{
    spw__aligned_free(bp->mem);
    spw__free(bp->free_list);
    memset(bp, 0, sizeof(*bp));
}

int spw__net_bufpool_get(spw_net_bufpool *bp, spw_netbuf *b)
{
    if (SPW_UNLIKELY(!bp->nfree))
        return SPW_EAGAIN;
    uint32_t i = bp->free_list[--bp->nfree];
    blk_hdr *h = (blk_hdr *)(bp->mem + (size_t)i * bp->blk_size);
    h->refs = 1;
    b->handle = h;
    b->frame = (uint8_t *)h + BLK_HDR + FRAME_OFF;
    b->len = 0;
    b->sent = 0;
    memset(&b->from, 0, sizeof(b->from));
    return 0;
}

uint8_t *spw__net_bufpool_frame0(const spw_netbuf *b)
{
    return (uint8_t *)b->handle + BLK_HDR + FRAME_OFF;
}

void spw__net_bufpool_ref(spw_netbuf *b)
{
    ((blk_hdr *)b->handle)->refs++;
}

void spw__net_bufpool_put(spw_net_bufpool *bp, spw_netbuf *b)
{
    blk_hdr *h = b->handle;
    if (--h->refs == 0)
        bp->free_list[bp->nfree++] = h->index;
}

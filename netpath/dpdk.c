/* DPDK transport: one ethdev port (any PMD: net_memif, net_af_packet, net_tap,
 * a physical NIC), one RX/TX queue pair of it per endpoint, busy polled.
 *
 * Frames live in mbufs: the payload is written straight into the data room
 * by the producer, the Ethernet/IPv4/UDP headers are built in the bytes in
 * front of the splitwire header, and received fragments are handed upwards
 * in the mbuf they arrived in. Nothing here copies a payload.
 *
 * Retransmission keeps a reference on the mbuf (tx_burst takes its own), so
 * the PMD's free after transmit does not recycle it. A frame is written only
 * before its first transmission: a resend gets its Ethernet/IPv4/UDP headers
 * in a fresh mbuf chained to an indirect mbuf attached to the kept one, since
 * a NIC may still be reading the first copy (or, on a port without
 * multi-segment transmit, a fresh copy of the frame). Checksums are left to
 * the device where it offers IPv4 and UDP checksum offload; without it the
 * UDP checksum is 0 (the frame has its own check).
 *
 * The EAL is initialised once per process from the configured argument
 * string and shut down when the last endpoint closes; it cannot start again
 * in the same process. Several endpoints share it only as the queue pairs of
 * one port (`queues`): the first configures and starts the port with every
 * pair and its mempools, the others attach to their pair.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <rte_dev.h>
#include <rte_devargs.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include "netpath/proto.h"
#include "netpath/transport.h"

#define NB_DESC 1024u
#define MAX_EAL_ARGS 64
#define MAX_QUEUES 16

typedef struct dpdk_ctx {
    uint16_t port;
    uint16_t queue;
    struct rte_mempool *mp;
    struct rte_mempool *hdr_mp; /* small mbufs: resend headers and indirect segments */
    bool multi_seg, csum_offload;
    bool driver_copies; /* the PMD copies every frame (counted in stats) */
    struct rte_ether_addr mac, peer_mac;
    bool peer_mac_known;
    spw_net_addr local, peer;
    uint16_t ip_id;
    uint32_t frame_room;
    spw_net_stats *stats;
} dpdk_ctx;

/* 0: never started; 1: running; 2: shut down. */
static int eal_state;
static char *eal_argbuf;

/* The port while endpoints use it: one per queue pair. Opened and closed
 * from one thread at a time (the pairs' data paths touch none of it). */
static struct {
    int users;
    uint16_t port;
    uint32_t queues;
    bool used[MAX_QUEUES];
    struct rte_mempool *mp[MAX_QUEUES], *hdr_mp[MAX_QUEUES];
    bool multi_seg, csum_offload, driver_copies;
} shared;

/* Another pair of the port already started: take its settings. */
static int attach_queue(dpdk_ctx *d, uint32_t nq, uint32_t q)
{
    if (nq != shared.queues || nq == 1)
        return spw__error(SPW_EBUSY,
                          "DPDK is already in use by another endpoint of this process "
                          "(queue pairs of one port share it only with the same queues)");
    if (shared.used[q])
        return spw__error(SPW_EBUSY, "DPDK queue pair %u is already in use", q);
    d->port = shared.port;
    d->queue = (uint16_t)q;
    d->mp = shared.mp[q];
    d->multi_seg = shared.multi_seg;
    d->csum_offload = shared.csum_offload;
    d->driver_copies = shared.driver_copies;
    rte_eth_macaddr_get(d->port, &d->mac);
    memcpy(d->local.mac, d->mac.addr_bytes, 6);
    d->hdr_mp = shared.hdr_mp[q];
    shared.used[q] = true;
    shared.users++;
    return 0;
}

/* Whether the port's driver copies every frame between mbufs and memory it
 * shares with a peer or the kernel, a copy the library cannot see: memif
 * outside zero-copy mode (a zero-copy client lends its mbufs to the server,
 * whose driver does the one copy), af_packet and tap. */
static bool driver_copies(const struct rte_eth_dev_info *info)
{
    const char *drv = info->driver_name ? info->driver_name : "";
    if (!strcmp(drv, "net_memif")) {
        const struct rte_devargs *da = info->device ? rte_dev_devargs(info->device) : NULL;
        return !(da && da->args && strstr(da->args, "zero-copy=yes"));
    }
    return !strcmp(drv, "net_af_packet") || !strcmp(drv, "net_tap");
}

static int eal_start(const char *args)
{
    if (eal_state == 2)
        return spw__error(SPW_ENODEV, "DPDK EAL was shut down in this process; it cannot restart");
    if (eal_state == 1)
        return spw__error(SPW_EBUSY, "DPDK is already in use by another endpoint of this process");
    if (!args)
        args = "";
    /* DPDK is chatty at start-up: only errors unless the arguments ask. */
    static const char prefix[] = "splitwire --log-level=error ";
    size_t len = strlen(args);
    eal_argbuf = spw__malloc(sizeof(prefix) + len + 1);
    if (!eal_argbuf)
        return spw__error(SPW_ENOMEM, "EAL arguments");
    memcpy(eal_argbuf, prefix, sizeof(prefix) - 1);
    memcpy(eal_argbuf + sizeof(prefix) - 1, args, len + 1);
    char *argv[MAX_EAL_ARGS + 1];
    int argc = 0;
    for (char *p = eal_argbuf; *p;) {
        while (*p && isspace((unsigned char)*p))
            *p++ = 0;
        if (!*p)
            break;
        if (argc == MAX_EAL_ARGS) {
            spw__free(eal_argbuf);
            eal_argbuf = NULL;
            return spw__error(SPW_EINVAL, "more than %d EAL arguments", MAX_EAL_ARGS);
        }
        argv[argc++] = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
    }
    argv[argc] = NULL;
    /* The EAL keeps pointers into argv: the buffer lives as long as the EAL. */
    if (rte_eal_init(argc, argv) < 0) {
        int err = rte_errno;
        eal_state = 2; /* a failed init cannot be retried either */
        return spw__error(SPW_ENODEV, "DPDK EAL init failed (%s); arguments: %s", rte_strerror(err),
                          args);
    }
    rte_log_set_level_pattern("pmd.*", RTE_LOG_ERR);
    eal_state = 1;
    return 0;
}

static void eal_stop(void)
{
    if (eal_state == 1) {
        rte_eal_cleanup();
        eal_state = 2;
    }
    spw__free(eal_argbuf);
    eal_argbuf = NULL;
}

static int parse_mac(const char *s, struct rte_ether_addr *out)
{
    unsigned v[6];
    char tail;
    if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
        return spw__error(SPW_EINVAL, "peer_mac '%s': expected aa:bb:cc:dd:ee:ff", s);
    for (int i = 0; i < 6; i++) {
        if (v[i] > 255)
            return spw__error(SPW_EINVAL, "peer_mac '%s': byte out of range", s);
        out->addr_bytes[i] = (uint8_t)v[i];
    }
    return 0;
}

static int dpdk_open(const spw_net_config *cfg, uint32_t frame_room, uint32_t nbufs,
                     spw_net_stats *stats, void **out)
{
    dpdk_ctx *d = spw__calloc(1, sizeof(*d));
    if (!d)
        return spw__error(SPW_ENOMEM, "dpdk transport");
    int rc = 0;
    if ((cfg->local && (rc = spw_net_addr_parse(cfg->local, &d->local))) ||
        (cfg->peer && (rc = spw_net_addr_parse(cfg->peer, &d->peer))))
        goto fail_args;
    if (cfg->peer_mac) {
        if ((rc = parse_mac(cfg->peer_mac, &d->peer_mac)))
            goto fail_args;
        d->peer_mac_known = true;
    }
    d->stats = stats;
    d->frame_room = frame_room;
    uint32_t nq = cfg->queues ? cfg->queues : 1;
    if (nq > MAX_QUEUES || cfg->queue >= nq) {
        rc = spw__error(SPW_EINVAL, "DPDK queue pair %u of %u (at most %d pairs)", cfg->queue, nq,
                        MAX_QUEUES);
        goto fail_args;
    }
    if (shared.users) {
        if ((rc = attach_queue(d, nq, cfg->queue)))
            goto fail_args;
        *out = d;
        return 0;
    }
    if ((rc = eal_start(cfg->eal_args)))
        goto fail_eal;

    if (cfg->dpdk_port) {
        if (rte_eth_dev_get_port_by_name(cfg->dpdk_port, &d->port)) {
            rc = spw__error(SPW_ENODEV, "DPDK port '%s' not found", cfg->dpdk_port);
            goto fail_port;
        }
    } else {
        uint16_t p;
        bool found = false;
        RTE_ETH_FOREACH_DEV(p)
        {
            d->port = p;
            found = true;
            break;
        }
        if (!found) {
            rc = spw__error(SPW_ENODEV, "no DPDK port (give a --vdev or a device in eal_args)");
            goto fail_port;
        }
    }
    int socket = rte_eth_dev_socket_id(d->port);
    if (socket < 0)
        socket = (int)rte_socket_id();

    /* Per pair, a mempool for the message layer's share plus both rings and
     * the caches, and small mbufs, two per resent frame (headers, indirect
     * payload): a pair's buffers never cross to another. */
    char name[RTE_MEMPOOL_NAMESIZE];
    uint32_t n_mbufs = nbufs + 2 * NB_DESC + 512;
    uint32_t room = RTE_PKTMBUF_HEADROOM + SPW_NET_L2L4_LEN + frame_room;
    room = SPW_MAX(room, (uint32_t)RTE_MBUF_DEFAULT_BUF_SIZE);
    for (uint32_t q = 0; q < nq; q++) {
        snprintf(name, sizeof(name), "spw_mp_%u_%u_%d", d->port, q, (int)getpid());
        shared.mp[q] = rte_pktmbuf_pool_create(name, n_mbufs, 256, 0, (uint16_t)room, socket);
        if (!shared.mp[q]) {
            rc = spw__error(SPW_ENOMEM, "DPDK mempool of %u mbufs: %s", n_mbufs,
                            rte_strerror(rte_errno));
            goto fail_pool;
        }
        snprintf(name, sizeof(name), "spw_hp_%u_%u_%d", d->port, q, (int)getpid());
        shared.hdr_mp[q] = rte_pktmbuf_pool_create(name, 2 * NB_DESC + 1024, 128, 0,
                                                   (uint16_t)(RTE_PKTMBUF_HEADROOM + 64), socket);
        if (!shared.hdr_mp[q]) {
            rc = spw__error(SPW_ENOMEM, "DPDK header mempool: %s", rte_strerror(rte_errno));
            goto fail_pool;
        }
    }

    struct rte_eth_conf conf;
    memset(&conf, 0, sizeof(conf));
    struct rte_eth_dev_info info;
    if (!rte_eth_dev_info_get(d->port, &info)) {
        uint64_t want = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
        d->csum_offload = (info.tx_offload_capa & want) == want;
        d->multi_seg = (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) != 0;
        d->driver_copies = driver_copies(&info);
        if (d->csum_offload)
            conf.txmode.offloads |= want;
        if (d->multi_seg)
            conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
        /* Several pairs: the device spreads flows by addresses and ports
         * where it can (every fragment of a request has the same ones). */
        uint64_t rss = info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP);
        if (nq > 1 && rss) {
            conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = rss;
        }
    }
    SPW_LOGI("DPDK port %u: checksum offload %s, multi-segment transmit %s, driver copies %s",
             d->port, d->csum_offload ? "on" : "off", d->multi_seg ? "on" : "off",
             d->driver_copies ? "every frame" : "nothing");
    int err = rte_eth_dev_configure(d->port, (uint16_t)nq, (uint16_t)nq, &conf);
    if (err) {
        rc = spw__error(SPW_ENODEV, "DPDK port %u configure: %s", d->port, rte_strerror(-err));
        goto fail_conf;
    }
    uint16_t nrx = NB_DESC, ntx = NB_DESC;
    (void)rte_eth_dev_adjust_nb_rx_tx_desc(d->port, &nrx, &ntx);
    for (uint32_t q = 0; q < nq; q++)
        if ((err = rte_eth_rx_queue_setup(d->port, (uint16_t)q, nrx, (unsigned)socket, NULL,
                                          shared.mp[q])) ||
            (err = rte_eth_tx_queue_setup(d->port, (uint16_t)q, ntx, (unsigned)socket, NULL))) {
            rc = spw__error(SPW_ENODEV, "DPDK port %u queue %u setup: %s", d->port, q,
                            rte_strerror(-err));
            goto fail_conf;
        }
    if (cfg->mtu != 1500 && (err = rte_eth_dev_set_mtu(d->port, (uint16_t)cfg->mtu)))
        SPW_LOGW("DPDK port %u: cannot set MTU %u (%s)", d->port, cfg->mtu, rte_strerror(-err));
    if ((err = rte_eth_dev_start(d->port))) {
        rc = spw__error(SPW_ENODEV, "DPDK port %u start: %s", d->port, rte_strerror(-err));
        goto fail_conf;
    }
    (void)rte_eth_promiscuous_enable(d->port);
    rte_eth_macaddr_get(d->port, &d->mac);
    memcpy(d->local.mac, d->mac.addr_bytes, 6);

    /* memif comes up when its peer connects: give it a moment, no more. A
     * memif client that found no server yet only connects again when the
     * port restarts, so restart it now and then while waiting. */
    uint64_t start = spw__now_ns(), until = start + (uint64_t)cfg->link_wait_ms * 1000000u;
    for (unsigned tick = 1;; tick++) {
        struct rte_eth_link link;
        if (!rte_eth_link_get_nowait(d->port, &link) && link.link_status)
            break;
        if (spw__now_ns() >= until) {
            SPW_LOGW("DPDK port %u: link still down after %u ms", d->port, cfg->link_wait_ms);
            break;
        }
        usleep(1000);
        if (tick % 200 == 0) {
            (void)rte_eth_dev_stop(d->port);
            if ((err = rte_eth_dev_start(d->port))) {
                rc =
                    spw__error(SPW_ENODEV, "DPDK port %u restart: %s", d->port, rte_strerror(-err));
                goto fail_conf;
            }
        }
    }
    shared.port = d->port;
    shared.queues = nq;
    shared.multi_seg = d->multi_seg;
    shared.csum_offload = d->csum_offload;
    shared.driver_copies = d->driver_copies;
    shared.users = 1;
    shared.used[cfg->queue] = true;
    d->queue = (uint16_t)cfg->queue;
    d->mp = shared.mp[cfg->queue];
    d->hdr_mp = shared.hdr_mp[cfg->queue];
    *out = d;
    return 0;

fail_conf:
    rte_eth_dev_close(d->port);
fail_pool:
    for (uint32_t q = 0; q < nq; q++) {
        rte_mempool_free(shared.hdr_mp[q]);
        rte_mempool_free(shared.mp[q]);
        shared.mp[q] = shared.hdr_mp[q] = NULL;
    }
fail_port:
    eal_stop();
fail_eal:
fail_args:
    spw__free(d);
    return rc;
}

static void dpdk_close(void *ctx)
{
    dpdk_ctx *d = ctx;
    shared.used[d->queue] = false;
    if (--shared.users == 0) {
        (void)rte_eth_dev_stop(d->port);
        (void)rte_eth_dev_close(d->port);
        for (uint32_t q = 0; q < shared.queues; q++) {
            rte_mempool_free(shared.hdr_mp[q]);
            rte_mempool_free(shared.mp[q]);
            shared.mp[q] = shared.hdr_mp[q] = NULL;
        }
        eal_stop();
    }
    spw__free(d);
}

/* Payload behind the splitwire header, as the copy counters count it. */
static inline uint64_t payload_bytes(uint32_t frame_len)
{
    return frame_len > SPW_PROTO_HDR_LEN ? frame_len - SPW_PROTO_HDR_LEN : 0;
}

static int dpdk_buf_alloc(void *ctx, spw_netbuf *b)
{
    dpdk_ctx *d = ctx;
    struct rte_mbuf *m = rte_pktmbuf_alloc(d->mp);
    if (SPW_UNLIKELY(!m))
        return SPW_EAGAIN;
    b->handle = m;
    b->frame = rte_pktmbuf_mtod(m, uint8_t *) + SPW_NET_L2L4_LEN;
    b->len = 0;
    b->sent = 0;
    memset(&b->from, 0, sizeof(b->from));
    return 0;
}

static void dpdk_buf_ref(void *ctx, spw_netbuf *b)
{
    rte_mbuf_refcnt_update(b->handle, 1);
}

static void dpdk_buf_free(void *ctx, spw_netbuf *b)
{
    rte_pktmbuf_free(b->handle);
}

/* Ethernet, IPv4 and UDP headers for payload_len bytes of frame at l2; the
 * UDP checksum is left for the caller (it depends on where the payload is). */
static struct rte_ipv4_hdr *write_l2l4(dpdk_ctx *d, uint8_t *l2, const spw_net_addr *dst,
                                       const struct rte_ether_addr *dmac, uint32_t frame_len)
{
    struct rte_ether_hdr *eth = (struct rte_ether_hdr *)l2;
    eth->dst_addr = *dmac;
    eth->src_addr = d->mac;
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->type_of_service = 0;
    ip->total_length = rte_cpu_to_be_16((uint16_t)(frame_len + SPW_NET_IP_UDP_LEN));
    ip->packet_id = rte_cpu_to_be_16(d->ip_id++);
    ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
    ip->time_to_live = 64;
    ip->next_proto_id = IPPROTO_UDP;
    ip->src_addr = rte_cpu_to_be_32(d->local.ip);
    ip->dst_addr = rte_cpu_to_be_32(dst->ip);
    ip->hdr_checksum = 0;
    struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
    udp->src_port = rte_cpu_to_be_16(d->local.port);
    udp->dst_port = rte_cpu_to_be_16(dst->port);
    udp->dgram_len = rte_cpu_to_be_16((uint16_t)(frame_len + sizeof(*udp)));
    udp->dgram_cksum = 0;
    return ip;
}

/* Checksums of the packet whose headers start m's data: by the device when
 * it offers them. Else the IPv4 header's in software, and no UDP checksum
 * (0, which IPv4 allows): summing every payload byte in software cost more
 * per frame than its CRC32C, and the frame carries its own end-to-end check
 * (CRC32C in protocol 1, the tag in protocol 2). */
static void seal(dpdk_ctx *d, struct rte_mbuf *m, struct rte_ipv4_hdr *ip)
{
    struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
    if (d->csum_offload) {
        m->l2_len = RTE_ETHER_HDR_LEN;
        m->l3_len = sizeof(*ip);
        m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_UDP_CKSUM;
        udp->dgram_cksum = rte_ipv4_phdr_cksum(ip, m->ol_flags);
        return;
    }
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    udp->dgram_cksum = 0;
}

/* A frame sent before: headers in a fresh mbuf, the frame behind them by
 * reference (an indirect mbuf), or copied where the port cannot chain. */
static struct rte_mbuf *resend_pkt(dpdk_ctx *d, const spw_netbuf *b, const spw_net_addr *dst,
                                   const struct rte_ether_addr *dmac)
{
    struct rte_mbuf *m = b->handle;
    if (!d->multi_seg) {
        struct rte_mbuf *c = rte_pktmbuf_alloc(d->mp);
        if (!c)
            return NULL;
        uint8_t *l2 = rte_pktmbuf_mtod(c, uint8_t *);
        memcpy(l2 + SPW_NET_L2L4_LEN, b->frame, b->len);
        c->data_len = (uint16_t)(b->len + SPW_NET_L2L4_LEN);
        c->pkt_len = c->data_len;
        d->stats->tx_copy_bytes += b->len;
        seal(d, c, write_l2l4(d, l2, dst, dmac, b->len));
        return c;
    }
    struct rte_mbuf *h = rte_pktmbuf_alloc(d->hdr_mp);
    struct rte_mbuf *ind = h ? rte_pktmbuf_alloc(d->hdr_mp) : NULL;
    if (!ind) {
        rte_pktmbuf_free(h);
        return NULL;
    }
    rte_pktmbuf_attach(ind, m); /* takes a reference on m */
    ind->data_off = (uint16_t)(b->frame - (uint8_t *)m->buf_addr);
    ind->data_len = (uint16_t)b->len;
    ind->pkt_len = b->len;
    uint8_t *l2 = rte_pktmbuf_mtod(h, uint8_t *);
    h->data_len = SPW_NET_L2L4_LEN;
    h->pkt_len = SPW_NET_L2L4_LEN + b->len;
    h->next = ind;
    h->nb_segs = 2;
    seal(d, h, write_l2l4(d, l2, dst, dmac, b->len));
    return h;
}

static int dpdk_tx_burst(void *ctx, const spw_net_addr *dst, spw_netbuf *const *bufs, int count)
{
    dpdk_ctx *d = ctx;
    static const uint8_t zero_mac[6];
    struct rte_ether_addr dmac;
    if (memcmp(dst->mac, zero_mac, 6))
        memcpy(dmac.addr_bytes, dst->mac, 6);
    else if (d->peer_mac_known)
        dmac = d->peer_mac;
    else
        memset(dmac.addr_bytes, 0xff, 6); /* broadcast until the peer is heard */
    struct rte_mbuf *pkts[64];
    int done = 0;
    while (done < count) {
        int n = SPW_MIN(count - done, 64), built = 0;
        for (; built < n; built++) {
            spw_netbuf *b = bufs[done + built];
            struct rte_mbuf *m = b->handle;
            if (b->sent) {
                if (!(pkts[built] = resend_pkt(d, b, dst, &dmac)))
                    break;
                continue;
            }
            /* First transmission: the headers go in front of the frame, in
             * place. The PMD frees what it sent; the caller keeps its own
             * reference. */
            uint8_t *l2 = b->frame - SPW_NET_L2L4_LEN;
            m->data_off = (uint16_t)(l2 - (uint8_t *)m->buf_addr);
            m->data_len = (uint16_t)(b->len + SPW_NET_L2L4_LEN);
            m->pkt_len = m->data_len;
            seal(d, m, write_l2l4(d, l2, dst, &dmac, b->len));
            b->sent = 1;
            rte_mbuf_refcnt_update(m, 1);
            pkts[built] = m;
        }
        uint16_t sent = built ? rte_eth_tx_burst(d->port, d->queue, pkts, (uint16_t)built) : 0;
        for (int i = 0; d->driver_copies && i < sent; i++)
            d->stats->driver_tx_copy_bytes += payload_bytes(bufs[done + i]->len);
        for (int i = sent; i < built; i++)
            rte_pktmbuf_free(pkts[i]);
        done += sent;
        if (sent < n)
            break;
    }
    return done;
}

static int dpdk_rx_burst(void *ctx, spw_netbuf *bufs, int max)
{
    dpdk_ctx *d = ctx;
    struct rte_mbuf *pkts[64];
    uint16_t got = rte_eth_rx_burst(d->port, d->queue, pkts, (uint16_t)SPW_MIN(max, 64));
    int out = 0;
    for (uint16_t i = 0; i < got; i++) {
        struct rte_mbuf *m = pkts[i];
        uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);
        uint32_t len = m->data_len;
        /* Everything below the splitwire header, checked once per packet. */
        if (m->nb_segs != 1 || len < SPW_NET_L2L4_LEN)
            goto drop;
        const struct rte_ether_hdr *eth = (const struct rte_ether_hdr *)p;
        if (eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4))
            goto ignore; /* ARP, IPv6 neighbour discovery and the like */
        const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(eth + 1);
        uint32_t ihl = (uint32_t)(ip->version_ihl & 0x0f) * 4u;
        uint32_t tot = rte_be_to_cpu_16(ip->total_length);
        if ((ip->version_ihl >> 4) != 4 || ihl < 20 || ip->next_proto_id != IPPROTO_UDP)
            goto ignore;
        if (len < RTE_ETHER_HDR_LEN + ihl + sizeof(struct rte_udp_hdr) ||
            tot > len - RTE_ETHER_HDR_LEN || tot < ihl + sizeof(struct rte_udp_hdr) ||
            (rte_be_to_cpu_16(ip->fragment_offset) &
             (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) ||
            rte_raw_cksum(ip, ihl) != 0xffff)
            goto drop;
        if (d->local.ip && rte_be_to_cpu_32(ip->dst_addr) != d->local.ip)
            goto ignore;
        const struct rte_udp_hdr *udp = (const struct rte_udp_hdr *)((const uint8_t *)ip + ihl);
        if (rte_be_to_cpu_16(udp->dst_port) != d->local.port)
            goto ignore;
        uint32_t ulen = rte_be_to_cpu_16(udp->dgram_len);
        if (ulen < sizeof(*udp) || ulen > tot - ihl)
            goto drop;
        spw_netbuf *b = &bufs[out++];
        b->handle = m;
        b->frame = (uint8_t *)(udp + 1);
        b->len = ulen - (uint32_t)sizeof(*udp);
        b->sent = 0;
        if (d->driver_copies)
            d->stats->driver_rx_copy_bytes += payload_bytes(b->len);
        b->from.ip = rte_be_to_cpu_32(ip->src_addr);
        b->from.port = rte_be_to_cpu_16(udp->src_port);
        memcpy(b->from.mac, eth->src_addr.addr_bytes, 6);
        if (!d->peer_mac_known && d->peer.ip && b->from.ip == d->peer.ip) {
            d->peer_mac = eth->src_addr;
            d->peer_mac_known = true;
        }
        continue;
    drop:
        d->stats->rx_invalid++;
    ignore:
        rte_pktmbuf_free(m);
    }
    return out;
}

static int dpdk_local_addr(void *ctx, spw_net_addr *out)
{
    *out = ((dpdk_ctx *)ctx)->local;
    return 0;
}

const spw_net_transport_ops spw__net_dpdk_ops = {
    .name = "dpdk",
    .open = dpdk_open,
    .close = dpdk_close,
    .buf_alloc = dpdk_buf_alloc,
    .buf_ref = dpdk_buf_ref,
    .buf_free = dpdk_buf_free,
    .tx_burst = dpdk_tx_burst,
    .rx_burst = dpdk_rx_burst,
    .local_addr = dpdk_local_addr,
};

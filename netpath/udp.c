/* Kernel UDP transport: one non-blocking socket, sendmmsg/recvmmsg.
 * The socket API copies every payload once each way; both copies are counted. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "netpath/proto.h"
#include "netpath/transport.h"

#define UDP_BURST 32

typedef struct udp_ctx {
    int fd;
    int kick_fd; /* eventfd: another thread ends a wait (spw_net_wake) */
    uint32_t frame_room;
    spw_net_bufpool pool;
    spw_net_stats *stats;
} udp_ctx;

static void to_sockaddr(const spw_net_addr *a, struct sockaddr_in *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = htonl(a->ip);
    sa->sin_port = htons(a->port);
}

/* A socket filter for the SO_REUSEPORT group: a byte of the datagram modulo
 * the group size picks the socket. Protocol 1 and protocol 2's handshake
 * frames: the low byte of the request id (header byte 8; little-endian), so
 * a request's fragments, ACKs, NACKs and probes all reach one process and
 * sequential ids spread round-robin. Sealed protocol 2 frames: the low byte
 * of the session id (byte 42), which the server that took the HELLO made
 * equal to the HELLO's, so a session stays with the process that holds its
 * keys. The program sees the UDP payload; a datagram too short for the
 * field, or an index past the group's current size, is left to the
 * kernel's flow hash. */
static int spread_by_request(int fd, uint32_t group)
{
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 5), /* protocol flags */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 2),
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 42), /* sealed: the session id */
        BPF_JUMP(BPF_JMP | BPF_JA, 1, 0, 0),
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 8), /* the request id */
        BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, group),
        BPF_STMT(BPF_RET | BPF_A, 0),
    };
    struct sock_fprog prog = {.len = (unsigned short)(sizeof(code) / sizeof(code[0])),
                              .filter = code};
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)))
        return spw__error(SPW_EIO, "SO_ATTACH_REUSEPORT_CBPF: %s", strerror(errno));
    return 0;
}

static int udp_open(const spw_net_config *cfg, uint32_t frame_room, uint32_t nbufs,
                    spw_net_stats *stats, void **out)
{
    spw_net_addr local = {0};
    if (cfg->local) {
        int rc = spw_net_addr_parse(cfg->local, &local);
        if (rc)
            return rc;
    }
    udp_ctx *u = spw__calloc(1, sizeof(*u));
    if (!u)
        return spw__error(SPW_ENOMEM, "udp transport");
    u->stats = stats;
    u->frame_room = frame_room;
    int rc = spw__net_bufpool_init(&u->pool, nbufs, frame_room);
    if (rc)
        goto fail_pool;
    u->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (u->fd < 0) {
        rc = spw__error(SPW_EIO, "socket: %s", strerror(errno));
        goto fail_socket;
    }
    int bufsz = 4 << 20;
    (void)setsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
    (void)setsockopt(u->fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
    int one = 1;
    if (cfg->reuseport && setsockopt(u->fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) {
        rc = spw__error(SPW_EIO, "SO_REUSEPORT: %s", strerror(errno));
        goto fail_bind;
    }
    struct sockaddr_in sa;
    to_sockaddr(&local, &sa);
    if (bind(u->fd, (struct sockaddr *)&sa, sizeof(sa))) {
        rc = spw__error(SPW_EIO, "bind %s: %s", cfg->local ? cfg->local : "0.0.0.0:0",
                        strerror(errno));
        goto fail_bind;
    }
    if (cfg->reuseport > 1 && (rc = spread_by_request(u->fd, cfg->reuseport)))
        goto fail_bind;
    u->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (u->kick_fd < 0) {
        rc = spw__error(SPW_EIO, "eventfd: %s", strerror(errno));
        goto fail_bind;
    }
    *out = u;
    return 0;

fail_bind:
    close(u->fd);
fail_socket:
    spw__net_bufpool_fini(&u->pool);
fail_pool:
    spw__free(u);
    return rc;
}

static void udp_close(void *ctx)
{
    udp_ctx *u = ctx;
    close(u->kick_fd);
    close(u->fd);
    spw__net_bufpool_fini(&u->pool);
    spw__free(u);
}

static int udp_buf_alloc(void *ctx, spw_netbuf *b)
{
    return spw__net_bufpool_get(&((udp_ctx *)ctx)->pool, b);
}

static void udp_buf_ref(void *ctx, spw_netbuf *b)
{
    spw__net_bufpool_ref(b);
}

static void udp_buf_free(void *ctx, spw_netbuf *b)
{
    spw__net_bufpool_put(&((udp_ctx *)ctx)->pool, b);
}

/* Counts a failed socket call by cause (spw_net_stats). */
static void count_errno(spw_net_stats *st, int err, bool tx)
{
    if (tx)
        st->tx_errors++;
    else
        st->rx_errors++;
    st->last_errno = err;
    switch (err) {
    case ENOBUFS:
    case ENOMEM:
        st->err_nobufs++;
        break;
    case EAGAIN:
        st->err_again++;
        break;
    case ECONNREFUSED:
        st->err_refused++;
        break;
    case ENETUNREACH:
    case EHOSTUNREACH:
    case EADDRNOTAVAIL:
        st->err_unreach++;
        break;
    case EMSGSIZE:
        st->err_msgsize++;
        break;
    case EPERM:
    case EACCES:
        st->err_perm++;
        break;
    default:
        st->err_other++;
    }
}

static int udp_tx_burst(void *ctx, const spw_net_addr *dst, spw_netbuf *const *bufs, int count)
{
    /* These transports copy the frame (socket, peer pool): marking it keeps
     * the rule every transport shares. */
    for (int i = 0; i < count; i++)
        bufs[i]->sent = 1;
    udp_ctx *u = ctx;
    struct sockaddr_in sa;
    to_sockaddr(dst, &sa);
    int done = 0;
    while (done < count) {
        struct mmsghdr mm[UDP_BURST];
        struct iovec iov[UDP_BURST];
        int n = SPW_MIN(count - done, UDP_BURST);
        for (int i = 0; i < n; i++) {
            iov[i].iov_base = bufs[done + i]->frame;
            iov[i].iov_len = bufs[done + i]->len;
            memset(&mm[i], 0, sizeof(mm[i]));
            mm[i].msg_hdr.msg_name = &sa;
            mm[i].msg_hdr.msg_namelen = sizeof(sa);
            mm[i].msg_hdr.msg_iov = &iov[i];
            mm[i].msg_hdr.msg_iovlen = 1;
        }
        int sent = sendmmsg(u->fd, mm, (unsigned)n, 0);
        if (sent <= 0) {
            if (sent < 0 && errno == EINTR)
                continue;
            if (sent < 0)
                count_errno(u->stats, errno, true);
            break;
        }
        for (int i = 0; i < sent; i++)
            u->stats->tx_copy_bytes +=
                bufs[done + i]->len - SPW_MIN(bufs[done + i]->len, SPW_PROTO_HDR_LEN);
        done += sent;
        if (sent < n)
            break;
    }
    return done;
}

static int udp_rx_burst(void *ctx, spw_netbuf *bufs, int max)
{
    udp_ctx *u = ctx;
    struct mmsghdr mm[UDP_BURST];
    struct iovec iov[UDP_BURST];
    struct sockaddr_in from[UDP_BURST];
    int n = 0;
    max = SPW_MIN(max, UDP_BURST);
    for (; n < max; n++) {
        if (spw__net_bufpool_get(&u->pool, &bufs[n]))
            break;
        iov[n].iov_base = bufs[n].frame;
        iov[n].iov_len = u->frame_room;
        memset(&mm[n], 0, sizeof(mm[n]));
        mm[n].msg_hdr.msg_name = &from[n];
        mm[n].msg_hdr.msg_namelen = sizeof(from[n]);
        mm[n].msg_hdr.msg_iov = &iov[n];
        mm[n].msg_hdr.msg_iovlen = 1;
    }
    int got = n ? recvmmsg(u->fd, mm, (unsigned)n, MSG_DONTWAIT, NULL) : 0;
    if (got < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            count_errno(u->stats, errno, false);
        got = 0;
    }
    int out = 0;
    for (int i = 0; i < got; i++) {
        /* A datagram larger than the room is cut by the kernel: drop it here. */
        if (mm[i].msg_hdr.msg_flags & MSG_TRUNC || from[i].sin_family != AF_INET) {
            u->stats->rx_invalid++;
            spw__net_bufpool_put(&u->pool, &bufs[i]);
            continue;
        }
        spw_netbuf b = bufs[i];
        b.len = mm[i].msg_len;
        b.from.ip = ntohl(from[i].sin_addr.s_addr);
        b.from.port = ntohs(from[i].sin_port);
        u->stats->rx_copy_bytes += b.len - SPW_MIN(b.len, SPW_PROTO_HDR_LEN);
        bufs[out++] = b;
    }
    for (int i = got; i < n; i++)
        spw__net_bufpool_put(&u->pool, &bufs[i]);
    return out;
}

static void udp_wait(void *ctx, int64_t timeout_us)
{
    udp_ctx *u = ctx;
    struct pollfd p[2] = {{.fd = u->fd, .events = POLLIN}, {.fd = u->kick_fd, .events = POLLIN}};
    struct timespec ts = {.tv_sec = timeout_us / 1000000, .tv_nsec = (timeout_us % 1000000) * 1000};
    if (ppoll(p, 2, &ts, NULL) > 0 && (p[1].revents & POLLIN)) {
        uint64_t v;
        (void)!read(u->kick_fd, &v, sizeof(v)); /* re-arm: the counter back to 0 */
    }
}

static void udp_kick(void *ctx)
{
    udp_ctx *u = ctx;
    uint64_t one = 1;
    (void)!write(u->kick_fd, &one, sizeof(one));
}

static int udp_local_addr(void *ctx, spw_net_addr *out)
{
    udp_ctx *u = ctx;
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    if (getsockname(u->fd, (struct sockaddr *)&sa, &len))
        return spw__error(SPW_EIO, "getsockname: %s", strerror(errno));
    memset(out, 0, sizeof(*out));
    out->ip = ntohl(sa.sin_addr.s_addr);
    out->port = ntohs(sa.sin_port);
    return 0;
}

const spw_net_transport_ops spw__net_udp_ops = {
    .name = "udp",
    .open = udp_open,
    .close = udp_close,
    .buf_alloc = udp_buf_alloc,
    .buf_ref = udp_buf_ref,
    .buf_free = udp_buf_free,
    .tx_burst = udp_tx_burst,
    .rx_burst = udp_rx_burst,
    .wait = udp_wait,
    .kick = udp_kick,
    .local_addr = udp_local_addr,
};

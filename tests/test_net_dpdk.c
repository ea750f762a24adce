/* Netpath over DPDK: two processes (forked, each with its own EAL) exchange
 * requests and results over net_memif, and over net_af_packet on a veth pair
 * joining two network namespaces the test creates; the transport alone on
 * net_ring and net_null ports resends without writing a sent mbuf. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "spw_test.h"

#include "netpath/transport.h"
#include "runtime/core/internal.h"
#include "splitwire/codec.h"
#include "splitwire/net.h"

#define NREQ 200
#define REQ_BYTES 6144u
#define RES_BYTES 64u
#define EXIT_SKIP 77

/* Set before forking: both children drop this share of what they receive,
 * so requests and answers are resent (NACK and timeout paths). */
static double child_loss;

/* Set before forking: whether each child's driver should count copies
 * (spw_net_stats.driver_*): -1 unchecked, 0 none, 1 at least every payload. */
static int cli_driver_copies = -1, srv_driver_copies = -1;

static bool driver_copies_as_expected(const spw_net_stats *s, int expect, uint64_t tx_min,
                                      uint64_t rx_min)
{
    if (expect < 0)
        return true;
    if (!expect)
        return !s->driver_tx_copy_bytes && !s->driver_rx_copy_bytes;
    return s->driver_tx_copy_bytes >= tx_min && s->driver_rx_copy_bytes >= rx_min;
}

static const char *pmd_dir(void)
{
    const char *d = getenv("SPW_DPDK_PMD_DIR");
    return d ? d : SPW_DPDK_PMD_DIR;
}

static uint8_t pattern_byte(uint64_t id, size_t i)
{
    return (uint8_t)((id * 131u + i * 7u) ^ 0x3c);
}

static uint32_t payload_crc(const spw_net_msg *m)
{
    uint32_t crc = 0;
    for (int i = 0; i < m->nsegs; i++)
        crc = spw_crc32c(crc, m->segs[i].data, m->segs[i].size);
    return crc;
}

/* Child: answers each request with 64 bytes holding the CRC of what it got,
 * until told to stop (a request with id 0) or the deadline passes. */
static int child_server(const spw_net_config *cfg)
{
    spw_net *n;
    int rc = spw_net_open(cfg, &n);
    if (rc) {
        fprintf(stderr, "server: %s: %s\n", spw_strerror(rc), spw_error_detail());
        return rc == SPW_ENODEV ? EXIT_SKIP : 1;
    }
    uint64_t deadline = spw__now_ns() + 15000000000ull, stop_at = 0;
    while (spw__now_ns() < deadline && (!stop_at || spw__now_ns() < stop_at)) {
        spw_net_msg *q[16];
        spw_net_poll(n, 1000);
        int got = spw_net_recv(n, q, 16);
        for (int i = 0; i < got; i++) {
            spw_net_msg *r;
            if (q[i]->type == SPW_NET_REQUEST && spw_net_tx_alloc(n, RES_BYTES, &r) == 0) {
                memset(r->segs[0].data, 0, RES_BYTES);
                uint32_t crc = payload_crc(q[i]);
                memcpy(r->segs[0].data, &crc, 4);
                r->type = SPW_NET_RESULT;
                r->request_id = q[i]->request_id;
                r->peer = q[i]->peer;
                spw_net_send(n, r, 0, 0, RES_BYTES);
                if (q[i]->request_id == 0 && !stop_at)
                    stop_at = spw__now_ns() + 200000000ull; /* linger for repeats */
            }
            spw_net_msg_free(n, q[i]);
        }
    }
    spw_net_stats s;
    spw_net_stats_get(n, &s);
    spw_net_close(n);
    if (s.rx_copy_bytes || s.tx_copy_bytes) {
        fprintf(stderr, "server: payload copies on the DPDK path: rx %llu tx %llu\n",
                (unsigned long long)s.rx_copy_bytes, (unsigned long long)s.tx_copy_bytes);
        return 2;
    }
    if (!driver_copies_as_expected(&s, srv_driver_copies, NREQ * (uint64_t)RES_BYTES,
                                   NREQ * (uint64_t)REQ_BYTES)) {
        fprintf(stderr, "server: driver copies tx %llu rx %llu, expected %s\n",
                (unsigned long long)s.driver_tx_copy_bytes,
                (unsigned long long)s.driver_rx_copy_bytes, srv_driver_copies ? "some" : "none");
        return 5;
    }
    return 0;
}

static int child_client(const spw_net_config *cfg)
{
    spw_net *n;
    int rc = spw_net_open(cfg, &n);
    if (rc) {
        fprintf(stderr, "client: %s: %s\n", spw_strerror(rc), spw_error_detail());
        return rc == SPW_ENODEV ? EXIT_SKIP : 1;
    }
    int ok = 0, bad = 0, timeouts = 0;
    uint64_t deadline = spw__now_ns() + 12000000000ull;
    /* Requests 1..NREQ one at a time, then id 0 tells the server to stop. */
    for (uint64_t id = 1; id <= NREQ + 1 && spw__now_ns() < deadline; id++) {
        uint64_t rid = id == NREQ + 1 ? 0 : id;
        spw_net_msg *m;
        if (spw_net_tx_alloc(n, REQ_BYTES, &m)) {
            bad++;
            break;
        }
        uint32_t crc = 0;
        size_t k = 0;
        for (int s = 0; s < m->nsegs; s++) {
            uint8_t *p = m->segs[s].data;
            for (size_t i = 0; i < m->segs[s].size; i++)
                p[i] = pattern_byte(rid, k++);
            crc = spw_crc32c(crc, p, m->segs[s].size);
        }
        m->type = SPW_NET_REQUEST;
        m->request_id = rid;
        if (spw_net_send(n, m, 0, 0, REQ_BYTES)) {
            bad++;
            break;
        }
        for (bool done = false; !done && spw__now_ns() < deadline;) {
            spw_net_msg *r;
            spw_net_poll(n, 1000);
            while (spw_net_recv(n, &r, 1) == 1) {
                if (r->request_id == rid) {
                    done = true;
                    if (r->type == SPW_NET_ERROR)
                        timeouts++;
                    else if (r->bytes == RES_BYTES && !memcmp(r->segs[0].data, &crc, 4))
                        ok++;
                    else
                        bad++;
                }
                spw_net_msg_free(n, r);
            }
        }
    }
    spw_net_stats s;
    spw_net_stats_get(n, &s);
    spw_net_close(n);
    fprintf(stderr,
            "client: ok %d wrong %d timed out %d; tx %llu pkts, rx %llu, "
            "retransmits %llu, copies tx %llu rx %llu\n",
            ok, bad, timeouts, (unsigned long long)s.tx_packets, (unsigned long long)s.rx_packets,
            (unsigned long long)s.retransmits, (unsigned long long)s.tx_copy_bytes,
            (unsigned long long)s.rx_copy_bytes);
    /* Resends chain a header mbuf to the kept one: still no payload copy. */
    if (bad || s.tx_copy_bytes || s.rx_copy_bytes)
        return 2;
    if (child_loss > 0 && !s.retransmits)
        return 4;
    if (!driver_copies_as_expected(&s, cli_driver_copies, NREQ * (uint64_t)REQ_BYTES,
                                   NREQ * (uint64_t)RES_BYTES)) {
        fprintf(stderr, "client: driver copies tx %llu rx %llu, expected %s\n",
                (unsigned long long)s.driver_tx_copy_bytes,
                (unsigned long long)s.driver_rx_copy_bytes, cli_driver_copies ? "some" : "none");
        return 5;
    }
    /* The last (stop) request may time out if the server left early. */
    return ok >= NREQ ? 0 : 3;
}

static int enter_netns(const char *ns)
{
    if (!ns)
        return 0;
    char path[128];
    snprintf(path, sizeof(path), "/run/netns/%s", ns);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET)) {
        fprintf(stderr, "setns %s: %s\n", path, strerror(errno));
        return -1;
    }
    close(fd);
    return 0;
}

static pid_t spawn(int (*fn)(const spw_net_config *), const spw_net_config *cfg, const char *ns)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int rc = enter_netns(ns) ? 1 : fn(cfg);
        fflush(NULL);
        _exit(rc); /* no atexit work of the test runner in the child */
    }
    return pid;
}

/* Waits for a child; kills it past the deadline. Returns its exit code. */
static int reap(pid_t pid, uint64_t deadline)
{
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (spw__now_ns() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return 124;
        }
        usleep(10000);
    }
}

/* Runs a server and a client child; 0 when both succeeded, EXIT_SKIP when
 * DPDK could not start, else the first failure code. */
static int run_pair(const spw_net_config *srv, const char *srv_ns, const spw_net_config *cli,
                    const char *cli_ns, const char *wait_for)
{
    pid_t s = spawn(child_server, srv, srv_ns);
    if (s < 0)
        return 1;
    /* Let the memif server create its socket before the client looks for it. */
    for (int i = 0; wait_for && i < 500 && access(wait_for, F_OK); i++)
        usleep(10000);
    pid_t c = spawn(child_client, cli, cli_ns);
    uint64_t deadline = spw__now_ns() + 18000000000ull;
    int crc = c > 0 ? reap(c, deadline) : 1;
    int src = reap(s, deadline);
    if (crc == EXIT_SKIP || src == EXIT_SKIP)
        return EXIT_SKIP;
    return crc ? crc : src;
}

static void check_pair(int rc)
{
    if (rc == EXIT_SKIP)
        spw_skip("DPDK could not start here (EAL or port failure, see above)");
    assert_int_equal(rc, 0);
}

static uint8_t server_priv[32], server_pub[32];

/* Protocol 2 between the two children (the default), or 1 when insecure. */
static void keys_for(spw_net_config *srv, spw_net_config *cli, bool insecure)
{
    if (insecure)
        return;
    assert_int_equal(spw_net_keypair(server_priv, server_pub), 0);
    srv->insecure = cli->insecure = 0;
    srv->private_key = server_priv;
    cli->server_public_key = server_pub;
}

static spw_net_config base_config(void)
{
    spw_net_config c = {0};
    c.transport = SPW_NET_DPDK;
    c.insecure = 1;
    c.link_wait_ms = 3000;
    c.rto_us = 20000;
    c.max_retries = 8;
    return c;
}

/* zero_copy: the client's memif lends its mbufs to the server (zero-copy
 * mode, which wants its memory in one file per segment list). */
static void memif_pair(double loss, bool insecure, bool zero_copy)
{
    if (!spw_net_transport_available(SPW_NET_DPDK))
        spw_skip("DPDK transport not available (PMD directory %s)", pmd_dir());
    int pid = (int)getpid();
    char sock[64], srv_args[512], cli_args[512];
    snprintf(sock, sizeof(sock), "/tmp/spw-test-memif-%d.sock", pid);
    const char *common = "--no-huge -m 512 --no-pci --no-telemetry --lcores=0@(0,1)";
    snprintf(srv_args, sizeof(srv_args),
             "%s --file-prefix spwts%d -d %s/librte_mempool_ring.so -d %s/librte_net_memif.so "
             "--vdev=net_memif0,role=server,socket=%s,socket-abstract=no",
             common, pid, pmd_dir(), pmd_dir(), sock);
    snprintf(cli_args, sizeof(cli_args),
             "%s%s --file-prefix spwtc%d -d %s/librte_mempool_ring.so "
             "-d %s/librte_net_memif.so "
             "--vdev=net_memif0,role=client,socket=%s,socket-abstract=no%s",
             common, zero_copy ? " --single-file-segments" : "", pid, pmd_dir(), pmd_dir(), sock,
             zero_copy ? ",zero-copy=yes" : "");
    spw_net_config srv = base_config(), cli = base_config();
    srv.eal_args = srv_args;
    srv.local = "127.0.98.2:9000";
    cli.eal_args = cli_args;
    cli.local = "127.0.98.1:9001";
    cli.peer = "127.0.98.2:9000";
    srv.fault_loss = cli.fault_loss = loss;
    srv.seed = 3;
    cli.seed = 4;
    keys_for(&srv, &cli, insecure);
    child_loss = loss;
    /* Copy mode copies on both sides; a zero-copy client copies nothing and
     * the server's driver makes the one copy each way. */
    cli_driver_copies = zero_copy ? 0 : 1;
    srv_driver_copies = 1;
    int rc = run_pair(&srv, NULL, &cli, NULL, sock);
    child_loss = 0;
    cli_driver_copies = srv_driver_copies = -1;
    unlink(sock);
    check_pair(rc);
}

static void test_dpdk_memif(void **state)
{
    (void)state;
    memif_pair(0, false, false);
}

static void test_dpdk_memif_v1(void **state)
{
    (void)state;
    memif_pair(0, true, false);
}

/* With loss both ways every fragment that is resent goes out again from a
 * kept mbuf: through a fresh header mbuf, never rewriting the first copy,
 * and the payloads still arrive intact. */
static void test_dpdk_memif_resend(void **state)
{
    (void)state;
    memif_pair(0.05, false, false);
}

/* The client in memif zero-copy mode, protocol 2, then protocol 1 with loss
 * (resends chain header mbufs to kept ones, which the server reads in
 * place): payloads intact, and only the server's driver copies. */
static void test_dpdk_memif_zero_copy(void **state)
{
    (void)state;
    memif_pair(0, false, true);
    memif_pair(0.05, true, true);
}

static int sh(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd);
}

static void test_dpdk_af_packet_veth(void **state)
{
    (void)state;
    if (!spw_net_transport_available(SPW_NET_DPDK))
        spw_skip("DPDK transport not available (PMD directory %s)", pmd_dir());
    if (geteuid() != 0)
        spw_skip("af_packet/veth needs root to create network namespaces");
    if (sh("ip netns list >/dev/null 2>&1"))
        spw_skip("af_packet/veth: 'ip netns' is not available");
    int pid = (int)getpid() % 100000;
    char nsa[32], nsb[32], va[16], vb[16];
    snprintf(nsa, sizeof(nsa), "spwta%d", pid);
    snprintf(nsb, sizeof(nsb), "spwtb%d", pid);
    snprintf(va, sizeof(va), "spwa%d", pid);
    snprintf(vb, sizeof(vb), "spwb%d", pid);
    int rc = sh("ip netns add %s && ip netns add %s && "
                "ip link add %s type veth peer name %s && "
                "ip link set %s netns %s && ip link set %s netns %s && "
                "ip netns exec %s sysctl -qw net.ipv6.conf.all.disable_ipv6=1 && "
                "ip netns exec %s sysctl -qw net.ipv6.conf.all.disable_ipv6=1 && "
                "ip -n %s link set %s up && ip -n %s link set %s up",
                nsa, nsb, va, vb, va, nsa, vb, nsb, nsa, nsb, nsa, va, nsb, vb);
    if (rc) {
        sh("ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null", nsa, nsb);
        spw_skip("af_packet/veth: cannot create namespaces and veth here");
    }
    char srv_args[512], cli_args[512];
    const char *common = "--no-huge -m 512 --no-pci --no-telemetry --lcores=0@(0,1)";
    snprintf(srv_args, sizeof(srv_args),
             "%s --file-prefix spwtas%d -d %s/librte_mempool_ring.so -d %s/librte_net_af_packet.so "
             "--vdev=net_af_packet0,iface=%s,qpairs=1",
             common, pid, pmd_dir(), pmd_dir(), va);
    snprintf(cli_args, sizeof(cli_args),
             "%s --file-prefix spwtac%d -d %s/librte_mempool_ring.so -d %s/librte_net_af_packet.so "
             "--vdev=net_af_packet0,iface=%s,qpairs=1",
             common, pid, pmd_dir(), pmd_dir(), vb);
    spw_net_config srv = base_config(), cli = base_config();
    srv.eal_args = srv_args;
    srv.local = "10.99.0.2:9000";
    cli.eal_args = cli_args;
    cli.local = "10.99.0.1:9001";
    cli.peer = "10.99.0.2:9000";
    keys_for(&srv, &cli, false);
    cli_driver_copies = srv_driver_copies = 1; /* the kernel's ring, both ways */
    rc = run_pair(&srv, nsa, &cli, nsb, NULL);
    cli_driver_copies = srv_driver_copies = -1;
    /* Deleting the namespaces removes the veth pair with them. */
    sh("ip netns del %s; ip netns del %s", nsa, nsb);
    check_pair(rc);
}

/* A broken EAL argument string is a clean error the caller can fall back on. */
static void test_dpdk_eal_failure(void **state)
{
    (void)state;
    if (!spw_net_transport_available(SPW_NET_DPDK))
        spw_skip("DPDK transport not available (PMD directory %s)", pmd_dir());
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* The EAL prints its whole usage text on a bad option. */
        if (!freopen("/dev/null", "w", stderr) || !freopen("/dev/null", "w", stdout))
            _exit(1);
        spw_net_config c = base_config();
        c.eal_args = "--no-huge -m 64 --no-pci --definitely-not-an-eal-option";
        spw_net *n;
        int rc = spw_net_open(&c, &n);
        bool detail = strstr(spw_error_detail(), "EAL") != NULL;
        /* A second try in the same process is refused, not crashed. */
        int rc2 = spw_net_open(&c, &n);
        _exit(rc == SPW_ENODEV && rc2 == SPW_ENODEV && detail ? 0 : 1);
    }
    assert_int_equal(reap(pid, spw__now_ns() + 10000000000ull), 0);
}

/* Child of test_dpdk_resend_never_writes_sent: the transport alone on a
 * port of PMD `pmd`. Exit 0 when every check holds, else the failing step. */
static int resend_child(const char *pmd)
{
    extern const spw_net_transport_ops spw__net_dpdk_ops;
    const spw_net_transport_ops *ops = &spw__net_dpdk_ops;
    char eal[512];
    snprintf(eal, sizeof(eal),
             "--no-huge -m 512 --no-pci --no-telemetry --lcores=0@(0,1) --file-prefix spwtn%d "
             "-d %s/librte_mempool_ring.so -d %s/librte_%s.so --vdev=%s0",
             (int)getpid(), pmd_dir(), pmd_dir(), pmd, pmd);
    spw_net_config cfg = {.transport = SPW_NET_DPDK,
                          .eal_args = eal,
                          .local = "10.98.0.1:9000",
                          .mtu = 1500,
                          .link_wait_ms = 500};
    spw_net_stats stats = {0};
    void *ctx;
    int orc = ops->open(&cfg, 1472, 256, &stats, &ctx);
    if (orc)
        return orc == SPW_ENODEV ? EXIT_SKIP : 2;
    int rc = 0;
    spw_netbuf b;
    if (ops->buf_alloc(ctx, &b))
        return 3;
    b.len = 1000;
    for (uint32_t i = 0; i < b.len; i++)
        b.frame[i] = pattern_byte(7, i);
    spw_netbuf *bp = &b;
    spw_net_addr first = {.ip = 0x0a620002, .port = 9001, .mac = {2, 0, 0, 0, 0, 1}};
    if (ops->tx_burst(ctx, &first, &bp, 1) != 1 || !b.sent) {
        rc = 4;
        goto out;
    }
    /* What the first transmission put on the wire: Ethernet, IPv4 and UDP
     * headers in front of the frame, addressed to `first`. */
    static uint8_t wire[SPW_NET_L2L4_LEN + 1000];
    const uint8_t *l2 = b.frame - SPW_NET_L2L4_LEN;
    memcpy(wire, l2, sizeof(wire));
    if (memcmp(wire, first.mac, 6) || wire[30] != 10 || wire[31] != 98 || wire[33] != 2) {
        rc = 5;
        goto out;
    }
    /* Resends to other addresses (a NACK from a moved peer, say) and to the
     * same one: the sent mbuf keeps every byte, headers included. */
    for (int i = 0; i < 16; i++) {
        spw_net_addr to = {.ip = 0x0a630000u + (uint32_t)i,
                           .port = (uint16_t)(7000 + i),
                           .mac = {2, 0, 0, 0, 1, (uint8_t)i}};
        if (ops->tx_burst(ctx, i % 2 ? &to : &first, &bp, 1) != 1) {
            rc = 6;
            goto out;
        }
        if (memcmp(wire, l2, sizeof(wire))) {
            rc = 7;
            goto out;
        }
    }
out:
    ops->buf_free(ctx, &b);
    ops->close(ctx);
    return rc;
}

/* The frame of a kept mbuf is written once, before its first transmission:
 * a resend puts its lower headers in a fresh mbuf, never in the one handed
 * to tx_burst, which a NIC may still be reading. net_ring takes chained
 * mbufs (a header mbuf before an indirect one), net_null does not (a fresh
 * copy of the frame): both resend paths. */
static void test_dpdk_resend_never_writes_sent(void **state)
{
    (void)state;
    if (!spw_net_transport_available(SPW_NET_DPDK))
        spw_skip("DPDK transport not available (PMD directory %s)", pmd_dir());
    static const char *const pmds[] = {"net_ring", "net_null"};
    for (size_t i = 0; i < SPW_ARRAY_SIZE(pmds); i++) {
        char lib[512];
        snprintf(lib, sizeof(lib), "%s/librte_%s.so", pmd_dir(), pmds[i]);
        if (access(lib, R_OK))
            spw_skip("no %s PMD in %s", pmds[i], pmd_dir());
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0)
            _exit(resend_child(pmds[i]));
        int rc = reap(pid, spw__now_ns() + 20000000000ull);
        if (rc == EXIT_SKIP)
            spw_skip("DPDK could not start a %s port here", pmds[i]);
        if (rc)
            fail_msg("%s: check %d failed", pmds[i], rc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dpdk_eal_failure),
        cmocka_unit_test(test_dpdk_memif),
        cmocka_unit_test(test_dpdk_memif_v1),
        cmocka_unit_test(test_dpdk_memif_resend),
        cmocka_unit_test(test_dpdk_memif_zero_copy),
        cmocka_unit_test(test_dpdk_af_packet_veth),
        cmocka_unit_test(test_dpdk_resend_never_writes_sent),
    };
    return spw_test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}

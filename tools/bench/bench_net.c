/* splitwire bench net: round trips of a 6 KiB request with a 64-byte reply over
 * DPDK memif (copy and client zero-copy mode), DPDK af_packet on a veth pair between two network namespaces,
 * and kernel UDP on loopback, each against an echo peer in a child process,
 * and over the memory transport within this process (the CPU cost alone),
 * each with protocol 2 (sealed frames) and protocol 1 in the same run. */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "splitwire/net.h"
#include "tools/cli/cli.h"

#define REQ_BYTES 6144u
#define RES_BYTES 64u
#define WINDOW 16
#define STOP_ID UINT64_MAX

typedef struct bench_opts {
    bool json;
    long count, warmup;
    bool dpdk, udp, pin;
    const char *only; /* run only the cases whose label contains this */
} bench_opts;

/* What a client child reports through its pipe. */
typedef struct bench_res {
    int status; /* 0 ok, 77 not available here, else failed */
    double p50, p99, p999, mean;
    double rps_serial, rps_window;
    uint64_t ok, errors;
    spw_net_stats cli, srv;
    char transport[24];
    char detail[320];
} bench_res;

static void write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            return;
        }
        c += w;
        n -= (size_t)w;
    }
}

/* ---- peers ------------------------------------------------------------- */

/* Echo peer: answers every request with 64 bytes, until the stop request. */
/* Answers a request with RES_BYTES whose first word echoes the request's
 * first word, on the session it came on. Returns whether it answered. */
static bool echo_request(spw_net *n, const spw_net_msg *q)
{
    spw_net_msg *r;
    if (q->type != SPW_NET_REQUEST || spw_net_tx_alloc(n, RES_BYTES, &r))
        return false;
    memset(r->segs[0].data, 0, RES_BYTES);
    if (q->nsegs && q->segs[0].size >= 4)
        memcpy(r->segs[0].data, q->segs[0].data, 4);
    r->type = SPW_NET_RESULT;
    r->request_id = q->request_id;
    r->peer = q->peer;
    r->session = q->session;
    spw_net_send(n, r, 0, 0, RES_BYTES);
    return true;
}

static int echo_server(const spw_net_config *cfg, int fd)
{
    spw_net *n;
    int rc = spw_net_open(cfg, &n);
    if (rc) {
        fprintf(stderr, "bench net: server: %s: %s\n", spw_strerror(rc), spw_error_detail());
        return rc == SPW_ENODEV ? 77 : 1;
    }
    uint64_t deadline = spw_cli_now_ns() + 60000000000ull, stop_at = 0;
    while (spw_cli_now_ns() < deadline && (!stop_at || spw_cli_now_ns() < stop_at)) {
        spw_net_msg *q[32];
        spw_net_poll(n, 1000);
        int got = spw_net_recv(n, q, 32);
        for (int i = 0; i < got; i++) {
            if (echo_request(n, q[i]) && q[i]->request_id == STOP_ID && !stop_at)
                stop_at = spw_cli_now_ns() + 100000000ull;
            spw_net_msg_free(n, q[i]);
        }
    }
    spw_net_stats s;
    spw_net_stats_get(n, &s);
    spw_net_close(n);
    write_all(fd, &s, sizeof(s));
    return 0;
}

static int send_req(spw_net *n, uint64_t id)
{
    spw_net_msg *m;
    int rc = spw_net_tx_alloc(n, REQ_BYTES, &m);
    if (rc)
        return rc;
    /* The producer writes straight into the transport's buffers. */
    for (int s = 0; s < m->nsegs; s++)
        memset(m->segs[s].data, (int)(id & 0xff), m->segs[s].size);
    memcpy(m->segs[0].data, &id, 4);
    m->type = SPW_NET_REQUEST;
    m->request_id = id;
    m->c = 48;
    m->h = 28;
    m->w = 28;
    return spw_net_send(n, m, 0, 0, REQ_BYTES);
}

/* Takes answers; returns how many came, checking each against its id. */
static int take_answers(spw_net *n, bench_res *res)
{
    spw_net_msg *r[32];
    int got = spw_net_recv(n, r, 32);
    for (int i = 0; i < got; i++) {
        uint32_t w = 0;
        if (r[i]->type == SPW_NET_RESULT && r[i]->bytes == RES_BYTES)
            memcpy(&w, r[i]->segs[0].data, 4);
        if (r[i]->type == SPW_NET_RESULT && w == (uint32_t)r[i]->request_id)
            res->ok++;
        else
            res->errors++;
        spw_net_msg_free(n, r[i]);
    }
    return got < 0 ? 0 : got;
}

static int bench_client(const spw_net_config *cfg, const bench_opts *o, int fd)
{
    bench_res res;
    memset(&res, 0, sizeof(res));
    spw_net *n;
    int rc = spw_net_open(cfg, &n);
    if (rc) {
        res.status = rc == SPW_ENODEV ? 77 : 1;
        snprintf(res.detail, sizeof(res.detail), "%s: %s", spw_strerror(rc), spw_error_detail());
        write_all(fd, &res, sizeof(res));
        return 0;
    }
    long total = o->warmup + o->count;
    double *lat = malloc(sizeof(double) * (size_t)o->count);
    uint64_t deadline = spw_cli_now_ns() + 30000000000ull, id = 1;
    if (!lat) {
        res.status = 1;
        goto done;
    }
    /* One request in flight: the round trip. */
    uint64_t t_start = 0;
    int send_rc = 0;
    for (long i = 0; i < total && spw_cli_now_ns() < deadline; i++) {
        if (i == o->warmup)
            t_start = spw_cli_now_ns();
        uint64_t before = res.ok + res.errors;
        uint64_t t0 = spw_cli_now_ns();
        if ((send_rc = send_req(n, id++)))
            break;
        while (res.ok + res.errors == before && spw_cli_now_ns() < deadline) {
            spw_net_poll(n, 1000);
            take_answers(n, &res);
        }
        if (i >= o->warmup)
            lat[i - o->warmup] = (double)(spw_cli_now_ns() - t0);
    }
    uint64_t t_serial = spw_cli_now_ns() - t_start;
    if (res.ok + res.errors < (uint64_t)total) {
        res.status = 1;
        spw_net_stats cs;
        spw_net_stats_get(n, &cs);
        snprintf(res.detail, sizeof(res.detail),
                 "only %llu of %ld round trips completed (client sent %llu frames, received "
                 "%llu, %llu resent, %llu dropped, %llu timed out)%s%s",
                 (unsigned long long)(res.ok + res.errors), total,
                 (unsigned long long)cs.tx_packets, (unsigned long long)cs.rx_packets,
                 (unsigned long long)cs.retransmits, (unsigned long long)cs.tx_drops,
                 (unsigned long long)cs.request_timeouts, send_rc ? "; sending failed: " : "",
                 send_rc ? spw_error_detail() : "");
        goto done;
    }
    spw_cli_stats st;
    spw_cli_stats_of(lat, (int)o->count, &st);
    res.mean = st.mean / 1000.0;
    res.p50 = spw_cli_percentile(lat, (int)o->count, 50) / 1000.0;
    res.p99 = st.p99 / 1000.0;
    res.p999 = spw_cli_percentile(lat, (int)o->count, 99.9) / 1000.0;
    res.rps_serial = (double)o->count / ((double)t_serial / 1e9);

    /* WINDOW requests in flight: throughput. */
    uint64_t base = res.ok + res.errors, t1 = spw_cli_now_ns();
    long sent = 0;
    while ((long)(res.ok + res.errors - base) < o->count && spw_cli_now_ns() < deadline) {
        while (sent < o->count && sent - (long)(res.ok + res.errors - base) < WINDOW &&
               send_req(n, id) == 0) {
            id++;
            sent++;
        }
        spw_net_poll(n, 1000);
        take_answers(n, &res);
    }
    res.rps_window = (double)(res.ok + res.errors - base) / ((double)(spw_cli_now_ns() - t1) / 1e9);
    /* Tell the echo peer to finish. */
    send_req(n, STOP_ID);
    for (uint64_t until = spw_cli_now_ns() + 200000000ull; spw_cli_now_ns() < until;) {
        spw_net_poll(n, 1000);
        take_answers(n, &res);
    }
done:
    spw_net_stats_get(n, &res.cli);
    spw_net_close(n);
    free(lat);
    write_all(fd, &res, sizeof(res));
    return 0;
}

/* Both endpoints in this process over the memory transport, polled in turn
 * on one thread: the CPU cost of a round trip (framing, sealing, copies)
 * without scheduling or a driver, immune to how busy the machine is. */
static void bench_inproc(const spw_net_config *srv_cfg, const spw_net_config *cli_cfg,
                         const bench_opts *o, bench_res *res)
{
    spw_net *s = NULL, *c = NULL;
    spw_net_config cc = *cli_cfg;
    double *lat = malloc(sizeof(double) * (size_t)o->count);
    int rc = lat ? spw_net_open(srv_cfg, &s) : SPW_ENOMEM;
    if (!rc) {
        cc.memory_pair = s;
        rc = spw_net_open(&cc, &c);
    }
    if (rc) {
        res->status = 1;
        snprintf(res->detail, sizeof(res->detail), "%s: %s", spw_strerror(rc), spw_error_detail());
        goto done;
    }
    uint64_t id = 1, t_start = 0;
    long total = o->warmup + o->count;
    for (long i = 0; i < total; i++) {
        if (i == o->warmup)
            t_start = spw_cli_now_ns();
        uint64_t before = res->ok + res->errors, t0 = spw_cli_now_ns();
        if (send_req(c, id++))
            break;
        for (int spin = 0; res->ok + res->errors == before && spin < 1000000; spin++) {
            spw_net_msg *q[32];
            spw_net_poll(s, 0);
            int got = spw_net_recv(s, q, 32);
            for (int k = 0; k < got; k++) {
                echo_request(s, q[k]);
                spw_net_msg_free(s, q[k]);
            }
            spw_net_poll(c, 0);
            take_answers(c, res);
        }
        if (i >= o->warmup)
            lat[i - o->warmup] = (double)(spw_cli_now_ns() - t0);
    }
    if (res->ok + res->errors < (uint64_t)total) {
        res->status = 1;
        snprintf(res->detail, sizeof(res->detail), "only %llu of %ld round trips completed",
                 (unsigned long long)(res->ok + res->errors), total);
        goto done;
    }
    spw_cli_stats st;
    spw_cli_stats_of(lat, (int)o->count, &st);
    res->mean = st.mean / 1000.0;
    res->p50 = spw_cli_percentile(lat, (int)o->count, 50) / 1000.0;
    res->p99 = st.p99 / 1000.0;
    res->p999 = spw_cli_percentile(lat, (int)o->count, 99.9) / 1000.0;
    res->rps_serial = (double)o->count / ((double)(spw_cli_now_ns() - t_start) / 1e9);
done:
    spw_net_stats_get(c, &res->cli);
    spw_net_stats_get(s, &res->srv);
    spw_net_close(c);
    spw_net_close(s);
    free(lat);
}

/* ---- process plumbing -------------------------------------------------- */

static int enter_netns(const char *ns)
{
    char path[128];
    snprintf(path, sizeof(path), "/run/netns/%s", ns);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET)) {
        fprintf(stderr, "bench net: setns %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

static pid_t spawn_server(const spw_net_config *cfg, const char *ns, int *rfd)
{
    int p[2];
    if (pipe(p))
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        int rc = ns && enter_netns(ns) ? 1 : echo_server(cfg, p[1]);
        _exit(rc);
    }
    close(p[1]);
    *rfd = p[0];
    return pid;
}

static pid_t spawn_client(const spw_net_config *cfg, const bench_opts *o, const char *ns, int *rfd)
{
    int p[2];
    if (pipe(p))
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        int rc = ns && enter_netns(ns) ? 1 : bench_client(cfg, o, p[1]);
        _exit(rc);
    }
    close(p[1]);
    *rfd = p[0];
    return pid;
}

/* Waits for pid until deadline, then kills it; the signal that ended it
 * on its own (0: it exited, or had to be killed). */
static int reap(pid_t pid, uint64_t deadline)
{
    int st = 0;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (spw_cli_now_ns() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return 0;
        }
        usleep(5000);
    }
    return WIFSIGNALED(st) ? WTERMSIG(st) : 0;
}

static bool read_full(int fd, void *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)p + got, n - got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            return false;
        }
        got += (size_t)r;
    }
    return true;
}

static void run_case(const char *name, const spw_net_config *srv, const char *srv_ns,
                     const spw_net_config *cli, const char *cli_ns, const char *wait_path,
                     const bench_opts *o, bench_res *res)
{
    memset(res, 0, sizeof(*res));
    snprintf(res->transport, sizeof(res->transport), "%s", name);
    int sfd = -1, cfd = -1;
    pid_t s = spawn_server(srv, srv_ns, &sfd);
    if (s < 0) {
        res->status = 1;
        snprintf(res->detail, sizeof(res->detail), "fork: %s", strerror(errno));
        return;
    }
    for (int i = 0; wait_path && i < 500 && access(wait_path, F_OK); i++)
        usleep(10000);
    pid_t c = spawn_client(cli, o, cli_ns, &cfd);
    uint64_t deadline = spw_cli_now_ns() + 90000000000ull;
    bench_res got;
    if (c > 0 && read_full(cfd, &got, sizeof(got))) {
        *res = got;
        snprintf(res->transport, sizeof(res->transport), "%s", name);
    } else {
        res->status = 1;
        snprintf(res->detail, sizeof(res->detail), "client process failed");
    }
    int csig = c > 0 ? reap(c, deadline) : 0;
    /* The server ends on the stop request; give it a moment, then insist. */
    if (!read_full(sfd, &res->srv, sizeof(res->srv)))
        memset(&res->srv, 0, sizeof(res->srv));
    int ssig = reap(s, spw_cli_now_ns() + 2000000000ull);
    /* A peer that died of a signal (DPDK's interrupt thread has been seen
     * to crash on a memif peer) is named, failed run or not. */
    size_t dl = strlen(res->detail);
    if (ssig || csig)
        snprintf(res->detail + dl, sizeof(res->detail) - dl, "%s%s died of signal %d",
                 dl ? "; " : "", ssig ? "echo peer" : "client", ssig ? ssig : csig);
    if (sfd >= 0)
        close(sfd);
    if (cfd >= 0)
        close(cfd);
}

const char *spw_cli_dpdk_pmd_dir(void)
{
    static char dir[256];
    const char *env = getenv("SPW_DPDK_PMD_DIR");
    if (env)
        return env;
    glob_t g;
    if (glob("/usr/lib/*/dpdk/pmds-*/librte_net_memif.so", 0, NULL, &g) == 0 && g.gl_pathc) {
        snprintf(dir, sizeof(dir), "%s", g.gl_pathv[0]);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = 0;
        globfree(&g);
        return dir;
    }
    return NULL;
}

/* A port the kernel just handed out (and took back) for the echo peer. */
static int free_udp_port(void)
{
    int port = 0;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    if (fd >= 0 && !bind(fd, (struct sockaddr *)&sa, sizeof(sa)) &&
        !getsockname(fd, (struct sockaddr *)&sa, &len))
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port ? port : 29000;
}

static int sh(const char *cmd)
{
    return system(cmd);
}

/* ---- output ------------------------------------------------------------ */

/* The AEAD a protocol 2 case ran with, as its client's handshakes say. */
static const char *aead_of(const bench_res *r)
{
    if (!r->cli.handshakes)
        return "none";
    return r->cli.handshakes_aes256gcm ? "aes-256-gcm" : "chacha20-poly1305";
}

static double per_req(uint64_t bytes, uint64_t reqs)
{
    return reqs ? (double)bytes / (double)reqs : 0;
}

static void print_text(const bench_res *r, int n, const bench_opts *o)
{
    printf("netpath round trip: %u-byte request, %u-byte reply, %ld round trips "
           "(after %ld warm-up), then %d in flight\n\n",
           REQ_BYTES, RES_BYTES, o->count, o->warmup, WINDOW);
    printf("%-18s %9s %9s %9s %11s %11s %18s %18s\n", "transport", "p50 us", "p99 us", "p99.9 us",
           "req/s 1", "req/s 16", "copied B/req c|s", "driver B/req c|s");
    for (int i = 0; i < n; i++) {
        if (r[i].status) {
            if (!o->only || !strstr(r[i].detail, "not selected"))
                printf("%-18s %s: %s\n", r[i].transport, r[i].status == 77 ? "skipped" : "FAILED",
                       r[i].detail);
            continue;
        }
        uint64_t reqs = r[i].ok + r[i].errors;
        printf("%-18s %9.1f %9.1f %9.1f %11.0f %11.0f %8.0f|%-8.0f  %8.0f|%-8.0f\n", r[i].transport,
               r[i].p50, r[i].p99, r[i].p999, r[i].rps_serial, r[i].rps_window,
               per_req(r[i].cli.tx_copy_bytes + r[i].cli.rx_copy_bytes, reqs),
               per_req(r[i].srv.tx_copy_bytes + r[i].srv.rx_copy_bytes, reqs),
               per_req(r[i].cli.driver_tx_copy_bytes + r[i].cli.driver_rx_copy_bytes, reqs),
               per_req(r[i].srv.driver_tx_copy_bytes + r[i].srv.driver_rx_copy_bytes, reqs));
        if (r[i].errors || r[i].cli.retransmits)
            printf("%-18s   (%llu wrong answers, %llu retransmitted fragments)\n", "",
                   (unsigned long long)r[i].errors, (unsigned long long)r[i].cli.retransmits);
    }
}

static void print_json(const bench_res *r, int n, const bench_opts *o)
{
    printf("{\"request_bytes\": %u, \"reply_bytes\": %u, \"count\": %ld, \"warmup\": %ld, "
           "\"window\": %d, \"results\": [",
           REQ_BYTES, RES_BYTES, o->count, o->warmup, WINDOW);
    for (int i = 0; i < n; i++) {
        printf("%s\n  {\"transport\": ", i ? "," : "");
        spw_cli_json_str(stdout, r[i].transport);
        if (r[i].status) {
            printf(", \"status\": \"%s\", \"detail\": ", r[i].status == 77 ? "skipped" : "failed");
            spw_cli_json_str(stdout, r[i].detail);
            printf("}");
            continue;
        }
        printf(", \"status\": \"ok\", \"aead\": \"%s\", \"p50_us\": %.2f, \"p99_us\": %.2f, "
               "\"p999_us\": %.2f, "
               "\"mean_us\": %.2f, \"rps_1_in_flight\": %.0f, \"rps_%d_in_flight\": %.0f, "
               "\"ok\": %llu, \"wrong\": %llu, \"retransmits\": %llu, "
               "\"client_tx_copy_bytes\": %llu, \"client_rx_copy_bytes\": %llu, "
               "\"server_tx_copy_bytes\": %llu, \"server_rx_copy_bytes\": %llu, "
               "\"client_driver_copy_bytes\": %llu, \"server_driver_copy_bytes\": %llu}",
               aead_of(&r[i]), r[i].p50, r[i].p99, r[i].p999, r[i].mean, r[i].rps_serial, WINDOW,
               r[i].rps_window, (unsigned long long)r[i].ok, (unsigned long long)r[i].errors,
               (unsigned long long)r[i].cli.retransmits, (unsigned long long)r[i].cli.tx_copy_bytes,
               (unsigned long long)r[i].cli.rx_copy_bytes,
               (unsigned long long)r[i].srv.tx_copy_bytes,
               (unsigned long long)r[i].srv.rx_copy_bytes,
               (unsigned long long)(r[i].cli.driver_tx_copy_bytes + r[i].cli.driver_rx_copy_bytes),
               (unsigned long long)(r[i].srv.driver_tx_copy_bytes + r[i].srv.driver_rx_copy_bytes));
    }
    printf("\n]}\n");
}

static uint8_t bench_priv[32], bench_pub[32];

/* One transport twice: protocol 2 (the client and echo peer share a key
 * pair made for the run), then protocol 1; res gets two entries. */
static void run_both(const char *name, const spw_net_config *srv, const char *srv_ns,
                     const spw_net_config *cli, const char *cli_ns, const char *sock,
                     const bench_opts *o, bench_res *res)
{
    for (int v = 0; v < 2; v++) {
        spw_net_config s = *srv, c = *cli;
        char label[24];
        snprintf(label, sizeof(label), "%s %s", name, v ? "v1" : "v2");
        if (o->only && !strstr(label, o->only)) {
            memset(&res[v], 0, sizeof(res[v]));
            snprintf(res[v].transport, sizeof(res[v].transport), "%s", label);
            res[v].status = 77;
            snprintf(res[v].detail, sizeof(res[v].detail), "not selected (--only %s)", o->only);
            continue;
        }
        if (v) {
            s.insecure = c.insecure = 1;
        } else {
            s.private_key = bench_priv;
            c.server_public_key = bench_pub;
        }
        if (sock)
            unlink(sock);
        run_case(label, &s, srv_ns, &c, cli_ns, sock, o, &res[v]);
    }
}

/* Whether --only leaves either case of transport `name` to run. */
static bool selected(const bench_opts *o, const char *name)
{
    char label[40];
    for (int v = 1; v <= 2; v++) {
        snprintf(label, sizeof(label), "%s v%d", name, v);
        if (!o->only || strstr(label, o->only))
            return true;
    }
    return false;
}

/* Copies one pair's skip reason to its second entry. */
static void skip_both(bench_res *r, const char *name, const char *detail)
{
    for (int v = 0; v < 2; v++) {
        memset(&r[v], 0, sizeof(r[v]));
        snprintf(r[v].transport, sizeof(r[v].transport), "%s %s", name, v ? "v1" : "v2");
        r[v].status = 77;
        snprintf(r[v].detail, sizeof(r[v].detail), "%s", detail);
    }
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: splitwire bench net [--json] [--count N] [--warmup N] [--no-dpdk] "
            "[--no-udp] [--only TEXT] [--pin]\n\n"
            "Round trips of a %u-byte request answered with %u bytes by an echo peer in\n"
            "a child process, over DPDK net_memif (copy mode, then the client in\n"
            "zero-copy mode), DPDK net_af_packet on a veth pair\n"
            "between two network namespaces (root only), and kernel UDP on loopback,\n"
            "each with protocol 2 (v2: sealed frames, the default) and protocol 1 (v1:\n"
            "--insecure) in the same run.\n"
            "memory-inproc: both peers in this process over the memory transport,\n"
            "polled in turn on one thread (the CPU cost of a round trip, no\n"
            "scheduling).\n"
            "--only runs just the cases whose label (as printed) contains TEXT.\n"
            "--pin keeps the DPDK server on CPU 1 and the client on CPU 0 (else both\n"
            "float over CPUs 0 and 1).\n"
            "Protocol 2 uses the AEAD the handshake agrees on (AES-256-GCM where the\n"
            "CPU has AES-NI); SPW_NET_CIPHER=chacha20-poly1305 in the environment\n"
            "measures ChaCha20-Poly1305 instead.\n"
            "DPDK runs with --no-huge; SPW_DPDK_PMD_DIR overrides the PMD directory.\n",
            REQ_BYTES, RES_BYTES);
}

int spw_cli_bench_net(int argc, char **argv)
{
    bench_opts o = {.json = false, .count = 5000, .warmup = 500, .dpdk = true, .udp = true};
    bool no_dpdk = false, no_udp = false;
    const spw_cli_opt opts[] = {
        SPW_CLI_OPT_FLAG("json", &o.json),
        SPW_CLI_OPT_LONG("count", &o.count, 10, 10000000),
        SPW_CLI_OPT_LONG("warmup", &o.warmup, 0, 10000000),
        SPW_CLI_OPT_FLAG("no-dpdk", &no_dpdk),
        SPW_CLI_OPT_FLAG("no-udp", &no_udp),
        SPW_CLI_OPT_STR("only", &o.only),
        SPW_CLI_OPT_FLAG("pin", &o.pin),
        SPW_CLI_OPT_END,
    };
    int prc = spw_cli_parse("splitwire bench net", argc, argv, opts, NULL, usage, NULL);
    if (prc >= 0)
        return prc;
    o.dpdk = !no_dpdk;
    o.udp = !no_udp;
    spw_log_set_level(SPW_LOG_ERROR);
    int krc = spw_net_keypair(bench_priv, bench_pub);
    if (krc)
        return spw_cli_fail(krc, "making a key pair");
    bench_res res[10];
    int nres = 0;
    int pid = (int)getpid() % 100000;
    const char *pmd = spw_cli_dpdk_pmd_dir();
    bool dpdk = o.dpdk && spw_net_transport_available(SPW_NET_DPDK);
    /* Both DPDK peers float over CPUs 0 and 1, or with --pin the server
     * keeps CPU 1 and the client CPU 0 (one lcore per core, as a DPDK
     * deployment runs: steadier p50s, but a peer cannot leave its core to
     * other work, so p99 grows on a shared machine). */
    const char *common_s = o.pin ? "--no-huge -m 512 --no-pci --no-telemetry --lcores=0@1"
                                 : "--no-huge -m 512 --no-pci --no-telemetry --lcores=0@(0,1)";
    const char *common_c = o.pin ? "--no-huge -m 512 --no-pci --no-telemetry --lcores=0@0"
                                 : "--no-huge -m 512 --no-pci --no-telemetry --lcores=0@(0,1)";

    spw_net_config base = {0};
    base.transport = SPW_NET_DPDK;
    base.link_wait_ms = 3000;
    if (o.dpdk) {
        /* memif twice: copy mode, then the client in zero-copy mode (its
         * mbufs shared with the server, which then copies alone; the
         * client's memory must be one file per segment list). */
        bench_res *r = NULL;
        for (int zc = 0; zc < 2; zc++) {
            const char *name = zc ? "dpdk-memif-zc" : "dpdk-memif";
            r = &res[nres];
            nres += 2;
            if (!dpdk || !pmd) {
                skip_both(r, name, !dpdk ? "built without DPDK" : "DPDK PMD directory not found");
                continue;
            }
            char sock[64], sa[1024], ca[1024];
            snprintf(sock, sizeof(sock), "/tmp/spw-bench-memif-%d.sock", pid);
            const char *fmt = "%s%s --file-prefix spwb%c%d -d %s/librte_mempool_ring.so "
                              "-d %s/librte_net_memif.so "
                              "--vdev=net_memif0,role=%s,socket=%s,socket-abstract=no%s";
            snprintf(sa, sizeof(sa), fmt, common_s, "", 's', pid, pmd, pmd, "server", sock, "");
            snprintf(ca, sizeof(ca), fmt, common_c, zc ? " --single-file-segments" : "", 'c', pid,
                     pmd, pmd, "client", sock, zc ? ",zero-copy=yes" : "");
            spw_net_config s = base, c = base;
            s.eal_args = sa;
            s.local = "127.0.98.2:9000";
            c.eal_args = ca;
            c.local = "127.0.98.1:9001";
            c.peer = "127.0.98.2:9000";
            run_both(name, &s, NULL, &c, NULL, sock, &o, r);
            unlink(sock);
        }

        r = &res[nres];
        nres += 2;
        char cmd[1024], nsa[32], nsb[32];
        snprintf(nsa, sizeof(nsa), "spwba%d", pid);
        snprintf(nsb, sizeof(nsb), "spwbb%d", pid);
        snprintf(cmd, sizeof(cmd),
                 "ip netns add %s && ip netns add %s && "
                 "ip link add spwa%d type veth peer name spwb%d && "
                 "ip link set spwa%d netns %s && ip link set spwb%d netns %s && "
                 "ip netns exec %s sysctl -qw net.ipv6.conf.all.disable_ipv6=1 && "
                 "ip netns exec %s sysctl -qw net.ipv6.conf.all.disable_ipv6=1 && "
                 "ip -n %s link set spwa%d up && ip -n %s link set spwb%d up",
                 nsa, nsb, pid, pid, pid, nsa, pid, nsb, nsa, nsb, nsa, pid, nsb, pid);
        if (!selected(&o, "dpdk-af_packet")) {
            skip_both(r, "dpdk-af_packet", "not selected (--only)");
        } else if (!dpdk || !pmd) {
            skip_both(r, "dpdk-af_packet", "DPDK not available");
        } else if (geteuid() != 0) {
            skip_both(r, "dpdk-af_packet", "needs root for network namespaces");
        } else if (sh(cmd)) {
            skip_both(r, "dpdk-af_packet", "cannot create namespaces and veth pair");
        } else {
            char sa[1024], ca[1024];
            const char *fmt = "%s --file-prefix spwb%c%d -d %s/librte_mempool_ring.so "
                              "-d %s/librte_net_af_packet.so "
                              "--vdev=net_af_packet0,iface=spw%c%d,qpairs=1";
            snprintf(sa, sizeof(sa), fmt, common_s, 'S', pid, pmd, pmd, 'a', pid);
            snprintf(ca, sizeof(ca), fmt, common_c, 'C', pid, pmd, pmd, 'b', pid);
            spw_net_config s = base, c = base;
            s.eal_args = sa;
            s.local = "10.99.0.2:9000";
            c.eal_args = ca;
            c.local = "10.99.0.1:9001";
            c.peer = "10.99.0.2:9000";
            run_both("dpdk-af_packet", &s, nsa, &c, nsb, NULL, &o, r);
        }
        snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null", nsa,
                 nsb);
        if (geteuid() == 0 && selected(&o, "dpdk-af_packet"))
            sh(cmd);
    }
    {
        /* In this process: the CPU cost per round trip, v2 then v1. */
        bench_res *r = &res[nres];
        nres += 2;
        for (int v = 0; v < 2; v++) {
            memset(&r[v], 0, sizeof(r[v]));
            snprintf(r[v].transport, sizeof(r[v].transport), "memory-inproc %s", v ? "v1" : "v2");
            if (o.only && !strstr(r[v].transport, o.only)) {
                r[v].status = 77;
                snprintf(r[v].detail, sizeof(r[v].detail), "not selected (--only %s)", o.only);
                continue;
            }
            spw_net_config s = {0}, c = {0};
            s.transport = c.transport = SPW_NET_MEMORY;
            s.local = "10.9.0.2:9000";
            c.local = "10.9.0.1:9001";
            c.peer = s.local;
            if (v) {
                s.insecure = c.insecure = 1;
            } else {
                s.private_key = bench_priv;
                c.server_public_key = bench_pub;
            }
            bench_inproc(&s, &c, &o, &r[v]);
        }
    }
    if (o.udp) {
        spw_net_config s = {0}, c = {0};
        s.transport = c.transport = SPW_NET_UDP;
        char peer[32];
        snprintf(peer, sizeof(peer), "127.0.0.1:%d", free_udp_port());
        s.local = peer;
        c.local = "127.0.0.1:0";
        c.peer = peer;
        run_both("udp-loopback", &s, NULL, &c, NULL, NULL, &o, &res[nres]);
        nres += 2;
    }
    if (o.json)
        print_json(res, nres, &o);
    else
        print_text(res, nres, &o);
    /* Pairs are adjacent: [2k] protocol 2, [2k + 1] protocol 1. */
    const bench_res *memif = NULL, *udp = NULL;
    if (!o.json)
        printf("\n");
    for (int i = 0; i + 1 < nres; i += 2) {
        const bench_res *v2 = &res[i], *v1 = &res[i + 1];
        if (v2->status || v1->status)
            continue;
        if (!strncmp(v2->transport, "dpdk-memif", 10))
            memif = v2;
        if (!strncmp(v2->transport, "udp-loopback", 12))
            udp = v2;
        if (!o.json)
            printf("%.*s: protocol 2 (sealed, %s) p50 is %.2fx protocol 1's (+%.1f us)\n",
                   (int)(strchr(v2->transport, ' ') - v2->transport), v2->transport, aead_of(v2),
                   v2->p50 / v1->p50, v2->p50 - v1->p50);
    }
    if (memif && udp && !o.json)
        printf("memif p50 is %.1fx lower than kernel UDP loopback in this run (protocol 2)\n",
               udp->p50 / memif->p50);
    int failed = 0;
    for (int i = 0; i < nres; i++)
        failed |= res[i].status && res[i].status != 77;
    return failed ? 1 : 0;
}

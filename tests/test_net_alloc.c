/* The netpath's data path allocates nothing per message once warm: message
 * objects, fragment arrays and kept outgoing messages come from recycled
 * pools, transport buffers from pools sized at open. Checked two ways at
 * once over the in-process transport and UDP loopback, protocol 1 and 2,
 * with and without loss (NACKs and retransmissions on the way):
 * - a counting allocator installed with spw_set_allocator (every allocation
 *   the library makes through its own allocator), and
 * - the linker's --wrap of malloc, calloc and realloc (tests/net.cmake), so
 *   a direct libc call anywhere in the library's code is counted too.
 * Both endpoints run on an injected clock, so timers (NACKs, resends) fire
 * at the same points of every run however loaded the machine is. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "netpath/transport.h"
#include "splitwire/net.h"

/* --wrap: the library's and this file's calls land here. */
void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);

static bool watching;
static unsigned long libc_calls, hook_calls;

void *__wrap_malloc(size_t size)
{
    libc_calls += watching;
    return __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    libc_calls += watching;
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
    libc_calls += watching;
    return __real_realloc(p, size);
}

static void *count_malloc(size_t size, void *ctx)
{
    (void)ctx;
    hook_calls += watching;
    return malloc(size);
}

static void *count_realloc(void *p, size_t size, void *ctx)
{
    (void)ctx;
    hook_calls += watching;
    return realloc(p, size);
}

static void count_free(void *p, void *ctx)
{
    (void)ctx;
    free(p);
}

static const spw_allocator counting = {count_malloc, count_realloc, count_free, NULL};

static uint64_t fake_ns = 1000000000ull;

static uint64_t fake_clock(void *ctx)
{
    (void)ctx;
    return fake_ns;
}

/* One request of `bytes` from cli, served by srv with a 64-byte answer,
 * polled until the answer is back; the clock moves 50 us a round. */
static void exchange(spw_net *cli, spw_net *srv, uint64_t id, size_t bytes)
{
    spw_net_msg *m;
    assert_int_equal(spw_net_tx_alloc(cli, bytes, &m), 0);
    for (int s = 0; s < m->nsegs; s++)
        memset(m->segs[s].data, (int)(id & 0xff), m->segs[s].size);
    m->type = SPW_NET_REQUEST;
    m->request_id = id;
    assert_int_equal(spw_net_send(cli, m, 0, 0, bytes), 0);
    for (int round = 0; round < 20000; round++) {
        spw_net_msg *got[4];
        fake_ns += 50000;
        assert_true(spw_net_poll(srv, 0) >= 0);
        int n = spw_net_recv(srv, got, 4);
        for (int i = 0; i < n; i++) {
            if (got[i]->type == SPW_NET_REQUEST) {
                /* The payload arrived intact (the first and last byte). */
                const spw_net_msg *q = got[i];
                const uint8_t *last = q->segs[q->nsegs - 1].data;
                assert_int_equal(q->bytes, bytes);
                assert_int_equal(*(const uint8_t *)q->segs[0].data, q->request_id & 0xff);
                assert_int_equal(last[q->segs[q->nsegs - 1].size - 1], q->request_id & 0xff);
                spw_net_msg *r;
                assert_int_equal(spw_net_tx_alloc(srv, 64, &r), 0);
                memset(r->segs[0].data, 0x42, 64);
                r->type = SPW_NET_RESULT;
                r->request_id = q->request_id;
                r->peer = q->peer;
                r->session = q->session;
                assert_int_equal(spw_net_send(srv, r, 0, 0, 64), 0);
            }
            spw_net_msg_free(srv, got[i]);
        }
        assert_true(spw_net_poll(cli, 0) >= 0);
        n = spw_net_recv(cli, got, 4);
        bool done = false;
        for (int i = 0; i < n; i++) {
            if (got[i]->type == SPW_NET_RESULT && got[i]->request_id == id) {
                assert_int_equal(got[i]->bytes, 64);
                done = true;
            }
            spw_net_msg_free(cli, got[i]);
        }
        if (done)
            return;
    }
    fail_msg("request %llu (%zu bytes) not answered", (unsigned long long)id, bytes);
}

typedef struct pair_opts {
    spw_net_transport transport;
    bool secure; /* protocol 2 (sealed sessions) rather than 1 */
    double loss;
} pair_opts;

static void open_pair(const pair_opts *o, spw_net **srv, spw_net **cli)
{
    static uint8_t srv_priv[32], srv_pub[32];
    spw_net_config sc = {.transport = o->transport,
                         .local = o->transport == SPW_NET_UDP ? "127.0.0.1:0" : "10.0.0.1:7878",
                         .fault_loss = o->loss,
                         .seed = 11,
                         .insecure = !o->secure};
    if (o->secure) {
        assert_int_equal(spw_net_keypair(srv_priv, srv_pub), 0);
        sc.private_key = srv_priv;
    }
    assert_int_equal(spw_net_open(&sc, srv), 0);
    char peer[32] = "10.0.0.1:7878";
    spw_net_config cc = {.transport = o->transport,
                         .local = "10.0.0.2:40000",
                         .peer = peer,
                         .fault_loss = o->loss,
                         .seed = 12,
                         .insecure = !o->secure};
    if (o->transport == SPW_NET_UDP) {
        spw_net_addr a;
        assert_int_equal(spw_net_local_addr(*srv, &a), 0);
        snprintf(peer, sizeof(peer), "127.0.0.1:%u", a.port);
        cc.local = "127.0.0.1:0";
    } else {
        cc.memory_pair = *srv;
    }
    if (o->secure)
        cc.server_public_key = srv_pub;
    assert_int_equal(spw_net_open(&cc, cli), 0);
    spw__net_set_clock(*srv, fake_clock, NULL);
    spw__net_set_clock(*cli, fake_clock, NULL);
}

static void run(const pair_opts *o)
{
    if (o->loss > 0 && !spw_net_emulation_available())
        skip();
    spw_net *srv, *cli;
    open_pair(o, &srv, &cli);
    /* Sizes from one to 40 fragments, the same cycle in both phases. */
    static const size_t sizes[] = {64, 1400, 2800, 6144, 20000, 56000, 4, 9000};
    uint64_t id = 1;
    /* Warm-up: past max_outstanding (256) answers, the server's kept
     * answers are recycled by eviction, so its pools have seen their peak
     * (with loss, a second pass lets resends reach theirs). */
    int warm = o->loss > 0 ? 640 : 320;
    for (int i = 0; i < warm; i++, id++)
        exchange(cli, srv, id, sizes[i % 8]);
    hook_calls = libc_calls = 0;
    spw_set_allocator(&counting);
    watching = true;
    for (int i = 0; i < 400; i++, id++)
        exchange(cli, srv, id, sizes[i % 8]);
    watching = false;
    spw_set_allocator(NULL);
    spw_net_stats st;
    spw_net_stats_get(cli, &st);
    if (o->loss > 0)
        assert_true(st.retransmits + st.nacks_sent + st.probes > 0);
    if (o->secure)
        assert_true(st.handshakes >= 1);
    if (hook_calls || libc_calls)
        print_message("%s v%d loss %.2f: %lu allocator calls, %lu libc calls in 400 exchanges\n",
                      spw_net_transport_name(o->transport), o->secure ? 2 : 1, o->loss, hook_calls,
                      libc_calls);
    assert_int_equal(hook_calls, 0);
    assert_int_equal(libc_calls, 0);
    spw_net_close(cli);
    spw_net_close(srv);
}

/* The counters themselves: opening an endpoint allocates, and both see it
 * (else a zero above would prove nothing). */
static void counters_see_allocations(void **state)
{
    (void)state;
    spw_net_config c = {.transport = SPW_NET_MEMORY, .local = "10.0.0.9:1", .insecure = 1};
    spw_net *n;
    hook_calls = libc_calls = 0;
    spw_set_allocator(&counting);
    watching = true;
    assert_int_equal(spw_net_open(&c, &n), 0);
    watching = false;
    spw_set_allocator(NULL);
    spw_net_close(n);
    assert_true(hook_calls > 0);
    assert_true(libc_calls >= hook_calls);
    /* The default allocator's own malloc is a libc call the wrap sees. */
    libc_calls = 0;
    watching = true;
    assert_int_equal(spw_net_open(&c, &n), 0);
    watching = false;
    spw_net_close(n);
    assert_true(libc_calls > 0);
}

#define CASE(name, tr, sec, lo)                                           \
    static void name(void **state)                                        \
    {                                                                     \
        (void)state;                                                      \
        pair_opts o = {.transport = (tr), .secure = (sec), .loss = (lo)}; \
        run(&o);                                                          \
    }

CASE(memory_v1, SPW_NET_MEMORY, false, 0)
CASE(memory_v1_loss, SPW_NET_MEMORY, false, 0.05)
CASE(memory_v2, SPW_NET_MEMORY, true, 0)
CASE(memory_v2_loss, SPW_NET_MEMORY, true, 0.05)
CASE(udp_v1, SPW_NET_UDP, false, 0)
CASE(udp_v1_loss, SPW_NET_UDP, false, 0.05)
CASE(udp_v2, SPW_NET_UDP, true, 0)
CASE(udp_v2_loss, SPW_NET_UDP, true, 0.05)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counters_see_allocations),
        cmocka_unit_test(memory_v1),
        cmocka_unit_test(memory_v1_loss),
        cmocka_unit_test(memory_v2),
        cmocka_unit_test(memory_v2_loss),
        cmocka_unit_test(udp_v1),
        cmocka_unit_test(udp_v1_loss),
        cmocka_unit_test(udp_v2),
        cmocka_unit_test(udp_v2_loss),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

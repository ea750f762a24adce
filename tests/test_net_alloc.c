/* The netpath's data path allocates nothing per message once warm: message
 * objects, fragment arrays and kept outgoing messages come from recycled
 * pools. Checked with a counting allocator over the in-process transport,
 * with and without loss (NACKs and retransmissions on the way). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "splitwire/net.h"

static unsigned long counted;

static void *count_malloc(size_t size, void *ctx)
{
    (void)ctx;
    counted++;
    return malloc(size);
}

static void *count_realloc(void *p, size_t size, void *ctx)
{
    (void)ctx;
    counted++;
    return realloc(p, size);
}

static void count_free(void *p, void *ctx)
{
    (void)ctx;
    free(p);
}

static const spw_allocator counting = {count_malloc, count_realloc, count_free, NULL};

/* One request of `bytes` from cli, served by srv with a 64-byte answer,
 * polled until the answer is back. */
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
        assert_true(spw_net_poll(srv, 100) >= 0);
        int n = spw_net_recv(srv, got, 4);
        for (int i = 0; i < n; i++) {
            if (got[i]->type == SPW_NET_REQUEST) {
                spw_net_msg *r;
                assert_int_equal(spw_net_tx_alloc(srv, 64, &r), 0);
                memset(r->segs[0].data, 0x42, 64);
                r->type = SPW_NET_RESULT;
                r->request_id = got[i]->request_id;
                r->peer = got[i]->peer;
                assert_int_equal(spw_net_send(srv, r, 0, 0, 64), 0);
            }
            spw_net_msg_free(srv, got[i]);
        }
        assert_true(spw_net_poll(cli, 100) >= 0);
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

static void run(double loss)
{
    spw_net_config sc = {.transport = SPW_NET_MEMORY,
                         .local = "10.0.0.1:7878",
                         .fault_loss = loss,
                         .seed = 11,
                         .insecure = 1};
    spw_net *srv, *cli;
    assert_int_equal(spw_net_open(&sc, &srv), 0);
    spw_net_config cc = {.transport = SPW_NET_MEMORY,
                         .local = "10.0.0.2:40000",
                         .peer = "10.0.0.1:7878",
                         .memory_pair = srv,
                         .fault_loss = loss,
                         .seed = 12,
                         .insecure = 1};
    assert_int_equal(spw_net_open(&cc, &cli), 0);
    /* Sizes from one to 40 fragments, the same cycle in both phases. */
    static const size_t sizes[] = {64, 1400, 2800, 6144, 20000, 56000, 4, 9000};
    uint64_t id = 1;
    /* Warm-up: past max_outstanding (256) answers, the server's kept
     * answers are recycled by eviction, so its pool has seen its peak. */
    for (int i = 0; i < 320; i++, id++)
        exchange(cli, srv, id, sizes[i % 8]);
    counted = 0;
    spw_set_allocator(&counting);
    for (int i = 0; i < 400; i++, id++)
        exchange(cli, srv, id, sizes[i % 8]);
    spw_set_allocator(NULL);
    spw_net_stats st;
    spw_net_stats_get(cli, &st);
    if (loss > 0)
        assert_true(st.retransmits > 0);
    /* Per message would be hundreds; a loaded machine can still stretch the
     * working set past the warm-up's peak once or twice (a new block, kept). */
    if (counted)
        print_message("%lu allocations in 400 exchanges (working set grew)\n", counted);
    assert_true(counted <= 4);
    spw_net_close(cli);
    spw_net_close(srv);
}

static void no_allocation_per_message(void **state)
{
    (void)state;
    run(0);
}

static void no_allocation_per_message_with_loss(void **state)
{
    (void)state;
    run(0.05);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_allocation_per_message),
        cmocka_unit_test(no_allocation_per_message_with_loss),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Fair admission and batch forming across peers (runtime/service/fair.c) on
 * synthetic queues: pure functions, no sockets, no clock. The admission rule
 * leaves room for a quiet peer however hard another floods, batches take the
 * peers in turn, and no request is lost or reordered within its peer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "runtime/service/fair.h"
#include "splitwire/splitwire.h"

#define FLOOD 1
#define VICTIM 2

/* Request tags: peer in the high bits, sequence number in the low. */
static void *tag(uint64_t peer, uintptr_t seq)
{
    return (void *)(uintptr_t)(peer << 16 | seq);
}
static uint64_t tag_peer(const void *t)
{
    return (uintptr_t)t >> 16;
}
static unsigned tag_seq(const void *t)
{
    return (unsigned)((uintptr_t)t & 0xffff);
}

/* Pushes from `key` until refused; returns how many were admitted. */
static int flood(spw_fair *f, uint64_t key, int queue, unsigned *seq)
{
    int n = 0;
    while (spw__fair_push(f, key, queue, tag(key, ++*seq), 0) == 0)
        n++;
    return n;
}

static void test_admission_rule(void **state)
{
    (void)state;
    /* held(peer) < cap - held(all), and never beyond cap. */
    assert_true(spw__fair_admits(0, 0, 24));
    assert_true(spw__fair_admits(11, 11, 24));
    assert_false(spw__fair_admits(12, 12, 24));
    assert_true(spw__fair_admits(0, 12, 24));
    assert_true(spw__fair_admits(5, 17, 24));
    assert_false(spw__fair_admits(6, 18, 24));
    assert_false(spw__fair_admits(0, 24, 24));
    assert_false(spw__fair_admits(0, 0, 0));
}

/* One flooder stops at half the capacity; k flooders near cap / (k + 1)
 * each; a quiet peer is still admitted, several times over. */
static void test_flooders_leave_room(void **state)
{
    (void)state;
    spw_fair f;
    assert_int_equal(spw__fair_init(&f, 24, 1), 0);
    unsigned seq = 0;
    assert_int_equal(flood(&f, FLOOD, 0, &seq), 12);
    assert_int_equal(spw__fair_push(&f, FLOOD, 0, tag(FLOOD, ++seq), 0), SPW_EBUSY);
    assert_int_equal(spw__fair_held(&f, FLOOD), 12);
    /* 12 held of 24: the victim may hold up to 5 more after its first (2v < 12). */
    assert_int_equal(flood(&f, VICTIM, 0, &seq), 6);
    assert_int_equal(f.held, 18);
    spw__fair_fini(&f);

    assert_int_equal(spw__fair_init(&f, 60, 1), 0);
    int got[3];
    /* Three flooders in turn, one request each per turn, until all refused. */
    for (int k = 0; k < 3; k++)
        got[k] = 0;
    for (bool any = true; any;) {
        any = false;
        for (int k = 0; k < 3; k++)
            if (spw__fair_push(&f, 10 + (uint64_t)k, 0, tag(10 + (uint64_t)k, ++seq), 0) == 0) {
                got[k]++;
                any = true;
            }
    }
    for (int k = 0; k < 3; k++)
        assert_in_range(got[k], 60 / 4 - 1, 60 / 4 + 1);
    assert_int_equal(spw__fair_push(&f, VICTIM, 0, tag(VICTIM, 1), 0), 0);
    spw__fair_fini(&f);
}

/* Batches take one request per peer per round and the next batch goes on
 * where the last stopped. */
static void test_round_robin_batches(void **state)
{
    (void)state;
    spw_fair f;
    assert_int_equal(spw__fair_init(&f, 64, 1), 0);
    unsigned seq[4] = {0};
    /* A, B, C push 6 each, A first. */
    for (int i = 0; i < 6; i++)
        for (uint64_t p = 1; p <= 3; p++)
            assert_int_equal(spw__fair_push(&f, p, 0, tag(p, ++seq[p]), 0), 0);
    spw_fair_item out[8];
    static const uint64_t want[][4] = {{1, 2, 3, 1}, {2, 3, 1, 2}, {3, 1, 2, 3}};
    unsigned next_seq[4] = {0};
    for (int b = 0; b < 3; b++) {
        assert_int_equal(spw__fair_take(&f, 0, 4, out), 4);
        for (int i = 0; i < 4; i++) {
            uint64_t p = tag_peer(out[i].msg);
            assert_int_equal(p, want[b][i]);
            assert_int_equal(tag_seq(out[i].msg), ++next_seq[p]); /* FIFO per peer */
        }
    }
    /* 6 left, 2 each: one batch of 8 takes them all. */
    assert_int_equal(spw__fair_take(&f, 0, 8, out), 6);
    assert_int_equal(f.queued, 0);
    assert_int_equal(f.n_ring, 0);
    assert_int_equal(spw__fair_take(&f, 0, 8, out), 0);
    spw__fair_fini(&f);
}

/* A batch is of one queue (bundle): other queues' requests stay, in order. */
static void test_queues_apart(void **state)
{
    (void)state;
    spw_fair f;
    assert_int_equal(spw__fair_init(&f, 32, 2), 0);
    unsigned seq = 0;
    for (int i = 0; i < 6; i++)
        assert_int_equal(spw__fair_push(&f, 1, i % 2, tag(1, ++seq), 0), 0);
    assert_int_equal(spw__fair_push(&f, 1, 2, tag(1, ++seq), 0), SPW_EINVAL);
    spw_fair_item out[8];
    assert_int_equal(spw__fair_take(&f, 1, 8, out), 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(out[i].queue, 1);
        assert_int_equal(tag_seq(out[i].msg), 2 + 2 * (unsigned)i);
    }
    assert_int_equal(f.queued_in[0], 3);
    assert_int_equal(f.queued_in[1], 0);
    assert_int_equal(spw__fair_take(&f, 0, 2, out), 2);
    assert_int_equal(tag_seq(out[0].msg), 1);
    assert_int_equal(tag_seq(out[1].msg), 3);
    spw__fair_fini(&f);
}

/* Which queue is due: a full one at once, a partial one after max_wait, the
 * oldest first; *wake says when the next becomes due. */
static void test_pick(void **state)
{
    (void)state;
    spw_fair f;
    assert_int_equal(spw__fair_init(&f, 32, 3), 0);
    uint64_t wake;
    assert_int_equal(spw__fair_pick(&f, 4, 100, 50, &wake), -1);
    assert_true(wake == UINT64_MAX);
    assert_int_equal(spw__fair_push(&f, 1, 2, tag(1, 1), 100), 0);
    assert_int_equal(spw__fair_push(&f, 2, 1, tag(2, 1), 120), 0);
    assert_int_equal(spw__fair_pick(&f, 4, 130, 50, &wake), -1);
    assert_true(wake == 150);
    assert_int_equal(spw__fair_pick(&f, 4, 160, 50, &wake), 2); /* only 2 is due */
    assert_true(wake == 160);
    assert_int_equal(spw__fair_pick(&f, 4, 200, 50, &wake), 2); /* both: the oldest */
    /* Queue 1 fills: due at once, though younger. */
    for (unsigned i = 2; i <= 4; i++)
        assert_int_equal(spw__fair_push(&f, 3, 1, tag(3, i), 125), 0);
    assert_int_equal(spw__fair_pick(&f, 4, 130, 50, &wake), 1);
    assert_true(wake == 130);
    spw_fair_item out[4];
    assert_int_equal(spw__fair_take(&f, 1, 4, out), 4);
    assert_int_equal(spw__fair_pick(&f, 4, 130, 50, &wake), -1);
    assert_true(wake == 150);
    spw__fair_fini(&f);
}

/* Release frees the peer's share and, at zero, its slot. */
static void test_release(void **state)
{
    (void)state;
    spw_fair f;
    assert_int_equal(spw__fair_init(&f, 8, 1), 0);
    unsigned seq = 0;
    assert_int_equal(flood(&f, 7, 0, &seq), 4);
    spw_fair_item out[8];
    assert_int_equal(spw__fair_take(&f, 0, 8, out), 4);
    /* Taken, not answered: still held, still refused. */
    assert_int_equal(spw__fair_held(&f, 7), 4);
    assert_int_equal(spw__fair_push(&f, 7, 0, tag(7, ++seq), 0), SPW_EBUSY);
    spw__fair_release(&f, out[0].peer);
    assert_int_equal(spw__fair_held(&f, 7), 3);
    for (int i = 1; i < 4; i++)
        spw__fair_release(&f, out[i].peer);
    assert_int_equal(spw__fair_held(&f, 7), 0);
    assert_int_equal(f.held, 0);
    spw__fair_release(&f, out[0].peer); /* once too often: ignored */
    assert_int_equal(f.held, 0);
    assert_int_equal(flood(&f, 8, 0, &seq), 4);
    spw__fair_fini(&f);
}

/* The server's cycle on synthetic queues: a flooder keeps as many requests
 * in as it may (and more: the excess is refused); a victim sends one request
 * at a time. Every victim request is admitted and rides in the first batch
 * formed after it arrived, while the flooder is refused many times. */
static void test_victim_waits_one_batch(void **state)
{
    (void)state;
    const int max_batch = 8, cap = 24;
    spw_fair f;
    assert_int_equal(spw__fair_init(&f, cap, 1), 0);
    unsigned seq = 0, vseq = 0;
    int refused = 0, served = 0;
    spw_fair_item running[8];
    int n_running = 0;
    for (int cycle = 0; cycle < 200; cycle++) {
        /* The worker finishes its batch; the answers release their peers. */
        for (int i = 0; i < n_running; i++)
            spw__fair_release(&f, running[i].peer);
        /* The flood tops up to its limit, and beyond. */
        for (int k = 0; k < 2 * cap; k++)
            refused += spw__fair_push(&f, FLOOD, 0, tag(FLOOD, ++seq & 0xfff), 0) == SPW_EBUSY;
        if (cycle % 3 == 0)
            assert_int_equal(spw__fair_push(&f, VICTIM, 0, tag(VICTIM, ++vseq), 0), 0);
        n_running = spw__fair_take(&f, 0, max_batch, running);
        assert_int_equal(n_running, max_batch);
        bool victim_in = false;
        for (int i = 0; i < n_running; i++)
            victim_in |= tag_peer(running[i].msg) == VICTIM;
        /* The victim's request went into the very next batch. */
        assert_true(victim_in == (cycle % 3 == 0));
        served += victim_in;
        assert_true(f.held <= cap);
    }
    assert_int_equal(served, (int)vseq);
    assert_true(refused > 200);
    spw__fair_fini(&f);
}

/* Random pushes, takes and releases from many peers: every admitted request
 * is taken exactly once, in its peer's order, and the counts add up. */
static void test_random_nothing_lost(void **state)
{
    (void)state;
    enum { CAP = 40, PEERS = 9, OPS = 20000 };
    spw_fair f;
    assert_int_equal(spw__fair_init(&f, CAP, 3), 0);
    uint32_t rng = 12345;
    unsigned pushed[PEERS + 1][3] = {{0}}, taken[PEERS + 1][3] = {{0}};
    spw_fair_item held[CAP];
    int n_held = 0, admitted = 0, out_total = 0;
    for (int op = 0; op < OPS; op++) {
        rng = rng * 1664525u + 1013904223u;
        unsigned r = rng >> 8;
        if (r % 3 == 0 && n_held) {
            int i = (int)((r >> 4) % (unsigned)n_held);
            spw__fair_release(&f, held[i].peer);
            held[i] = held[--n_held];
        } else if (r % 3 == 1) {
            int q = (int)((r >> 4) % 3);
            spw_fair_item out[8];
            int n = spw__fair_take(&f, q, 1 + (int)((r >> 6) % 8), out);
            for (int i = 0; i < n; i++) {
                uint64_t p = tag_peer(out[i].msg) >> 2;
                int oq = (int)(tag_peer(out[i].msg) & 3);
                assert_int_equal(oq, q);
                assert_int_equal(tag_seq(out[i].msg), ++taken[p][q]);
                assert_true(n_held < CAP);
                held[n_held++] = out[i];
            }
            out_total += n;
        } else {
            uint64_t p = 1 + (r >> 4) % PEERS;
            int q = (int)((r >> 9) % 3);
            if (spw__fair_push(&f, p, q, tag(p << 2 | (uint64_t)q, pushed[p][q] + 1), op) == 0) {
                pushed[p][q]++;
                admitted++;
            }
        }
        assert_int_equal(f.held, f.queued + n_held);
        assert_true(f.held <= CAP);
    }
    assert_int_equal(admitted, out_total + f.queued);
    spw__fair_fini(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_admission_rule),
        cmocka_unit_test(test_flooders_leave_room),
        cmocka_unit_test(test_round_robin_batches),
        cmocka_unit_test(test_queues_apart),
        cmocka_unit_test(test_pick),
        cmocka_unit_test(test_release),
        cmocka_unit_test(test_victim_waits_one_batch),
        cmocka_unit_test(test_random_nothing_lost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

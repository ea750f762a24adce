/* Batches in flight on Vulkan: several server halves of the committed tiny
 * bundle (one per worker, as the server keeps them) run batches from
 * concurrent threads; every batch's scores must equal the CPU reference's,
 * and the recorded stage times must show a transfer of one slot running
 * during another slot's compute. The overlap is an ordering of recorded
 * intervals, not a timing bound. Then the same through a server with
 * several workers and a client over UDP. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "drivers/backend.h"
#include "runtime/service/service_internal.h"
#include "spw_test.h"
#include "splitwire/splitwire.h"

#define BUNDLE SPW_TEST_DATA "/vectors/bundle/tiny"
#define MODELS SPW_TEST_DATA "/vectors/bundle/models"
#define SLOTS 3
#define BATCHES 6 /* per slot and round */
#define ROUNDS 4  /* at most; stops at the first round that showed an overlap */
#define MAX_B 4

typedef struct job {
    int n;
    int32_t *symbols; /* n x latent */
    float *scores;    /* n x classes, from the slot */
    spw_half_stages t;
    int rc;
} job;

typedef struct slot_arg {
    spw_half *h;
    job *jobs;
    pthread_barrier_t *start;
} slot_arg;

static spw_bundle *bundle;
static spw_codec_tables *tables;

static void *slot_main(void *p)
{
    slot_arg *a = p;
    spw_half *h = a->h;
    spw_result out[MAX_B];
    pthread_barrier_wait(a->start);
    for (int i = 0; i < BATCHES; i++) {
        job *j = &a->jobs[i];
        memcpy(h->symbols, j->symbols, (size_t)j->n * h->latent_elems * sizeof(int32_t));
        j->rc = spw__half_run(h, j->n, 5, out);
        if (!j->rc) {
            memcpy(j->scores, h->logits, (size_t)j->n * (size_t)h->classes * sizeof(float));
            j->t = h->last;
        }
    }
    return NULL;
}

static bool overlaps(const uint64_t *a, const uint64_t *b)
{
    return a[0] < b[1] && b[0] < a[1];
}

static void test_slots_match_reference(void **state)
{
    (void)state;
    spw_half *ref = NULL, *vk[SLOTS] = {0};
    assert_int_equal(spw__half_open(bundle, tables, MODELS, "cpu-ref", 1, MAX_B, 0, NULL, 0, &ref),
                     0);
    for (int s = 0; s < SLOTS; s++)
        assert_int_equal(
            spw__half_open(bundle, tables, MODELS, "vulkan", 1, MAX_B, 0, NULL, 0, &vk[s]), 0);
    const size_t lat = ref->latent_elems, cls = (size_t)ref->classes;
    job jobs[SLOTS][BATCHES];
    for (int s = 0; s < SLOTS; s++)
        for (int i = 0; i < BATCHES; i++) {
            jobs[s][i].symbols = malloc(MAX_B * lat * sizeof(int32_t));
            jobs[s][i].scores = malloc(MAX_B * cls * sizeof(float));
            assert_non_null(jobs[s][i].symbols);
            assert_non_null(jobs[s][i].scores);
        }
    unsigned seed = 12345;
    int rounds = 0, hits = 0, checked = 0;
    for (; rounds < ROUNDS && !hits; rounds++) {
        for (int s = 0; s < SLOTS; s++)
            for (int i = 0; i < BATCHES; i++) {
                job *j = &jobs[s][i];
                j->n = 1 + (s + i + rounds) % MAX_B; /* every plan size, partial batches too */
                for (size_t e = 0; e < (size_t)j->n * lat; e++) {
                    seed = seed * 1103515245u + 12345u;
                    j->symbols[e] = (int32_t)((seed >> 16) % 9) - 4;
                }
                j->rc = -1;
            }
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, SLOTS);
        pthread_t th[SLOTS];
        slot_arg args[SLOTS];
        for (int s = 0; s < SLOTS; s++) {
            args[s] = (slot_arg){vk[s], jobs[s], &start};
            assert_int_equal(pthread_create(&th[s], NULL, slot_main, &args[s]), 0);
        }
        for (int s = 0; s < SLOTS; s++)
            pthread_join(th[s], NULL);
        pthread_barrier_destroy(&start);

        spw_result out[MAX_B];
        for (int s = 0; s < SLOTS; s++)
            for (int i = 0; i < BATCHES; i++) {
                job *j = &jobs[s][i];
                assert_int_equal(j->rc, 0);
                memcpy(ref->symbols, j->symbols, (size_t)j->n * lat * sizeof(int32_t));
                assert_int_equal(spw__half_run(ref, j->n, 5, out), 0);
                for (size_t e = 0; e < (size_t)j->n * cls; e++) {
                    float want = ref->logits[e], got = j->scores[e];
                    float tol = 1e-4f * (fabsf(want) > 1 ? fabsf(want) : 1);
                    if (fabsf(got - want) > tol)
                        fail_msg("slot %d batch %d (n=%d) score %zu: %g, cpu-ref %g", s, i, j->n, e,
                                 (double)got, (double)want);
                    checked++;
                }
                /* Stages in order within a batch. */
                assert_true(j->t.up[0] <= j->t.up[1] && j->t.up[1] <= j->t.compute[0]);
                assert_true(j->t.compute[0] < j->t.compute[1]);
                assert_true(j->t.compute[1] <= j->t.down[0] && j->t.down[0] <= j->t.down[1]);
            }
        for (int a = 0; a < SLOTS; a++)
            for (int i = 0; i < BATCHES; i++)
                for (int b = 0; b < SLOTS; b++)
                    for (int k = 0; b != a && k < BATCHES; k++) {
                        const spw_half_stages *x = &jobs[a][i].t, *y = &jobs[b][k].t;
                        hits += overlaps(x->up, y->compute) || overlaps(x->down, y->compute);
                    }
    }
    printf("%d scores equal to cpu-ref's; %d transfer(s) overlapped another slot's compute "
           "after %d round(s) of %d x %d batches\n",
           checked, hits, rounds, SLOTS, BATCHES);
    assert_true(hits > 0);
    for (int s = 0; s < SLOTS; s++)
        for (int i = 0; i < BATCHES; i++) {
            free(jobs[s][i].symbols);
            free(jobs[s][i].scores);
        }
    for (int s = 0; s < SLOTS; s++)
        spw__half_close(vk[s]);
    spw__half_close(ref);
}

/* ---- the server: serve --backend vulkan with three workers ---------------- */

typedef struct server_thread {
    spw_server *srv;
    pthread_t tid;
} server_thread;

static void *serve(void *arg)
{
    spw_server_run(((server_thread *)arg)->srv);
    return NULL;
}

static spw_image make_image(int seed)
{
    spw_image img = {40, 36, malloc(40 * 36 * 3)};
    for (int i = 0; i < 40 * 36 * 3; i++)
        img.rgb[i] = (uint8_t)((i * (seed * 2 + 7) + seed * 31) % 251);
    return img;
}

/* Pipelined requests from one client against a Vulkan server with several
 * workers: every answer equal to a local cpu-ref client's, none lost, and
 * every batch in the server's per-stage profile. */
static void test_server_profile(void **state)
{
    (void)state;
    uint8_t priv[32], pub[32];
    assert_int_equal(spw_net_keypair(priv, pub), 0);
    const char *bundles[1] = {BUNDLE};
    char addr[32];
    spw_server_config sc = {.bundle_dirs = bundles,
                            .n_bundles = 1,
                            .models_dir = MODELS,
                            .backend = "vulkan",
                            .max_batch = 4,
                            .max_wait_us = 1000,
                            .workers = SLOTS};
    sc.net.transport = SPW_NET_UDP;
    sc.net.local = "127.0.0.1:0"; /* a free port; read back below */
    sc.net.private_key = priv;
    server_thread st;
    assert_int_equal(spw_server_open(&sc, &st.srv), 0);
    spw_net_addr bound;
    assert_int_equal(spw_server_local_addr(st.srv, &bound), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)bound.port);
    assert_int_equal(pthread_create(&st.tid, NULL, serve, &st), 0);

    spw_client_config rcfg = {.bundle_dir = BUNDLE, .backend = "cpu-ref", .timeout_ms = 30000};
    rcfg.net.transport = SPW_NET_UDP;
    rcfg.net.local = "127.0.0.1:0";
    rcfg.net.peer = addr;
    rcfg.net.server_public_key = pub;
    spw_client_config lcfg = {
        .bundle_dir = BUNDLE, .backend = "cpu-ref", .local = 1, .models_dir = MODELS};
    spw_client *remote, *local;
    assert_int_equal(spw_client_open(&rcfg, &remote), 0);
    assert_int_equal(spw_client_open(&lcfg, &local), 0);

    enum { N = 24 };
    spw_image imgs[N];
    uint64_t ids[N];
    spw_result res[N];
    int sent = 0, got = 0;
    for (int i = 0; i < N; i++)
        imgs[i] = make_image(i + 1);
    while (got < N) {
        while (sent < N) {
            int rc = spw_client_submit(remote, &imgs[sent], &ids[sent]);
            if (rc == SPW_EBUSY)
                break;
            assert_int_equal(rc, 0);
            sent++;
        }
        int n = spw_client_poll(remote, res + got, N - got, 30000);
        assert_true(n > 0);
        got += n;
    }
    for (int i = 0; i < N; i++) {
        int idx = -1;
        for (int j = 0; j < N; j++)
            if (ids[j] == res[i].request_id)
                idx = j;
        assert_true(idx >= 0);
        assert_int_equal(res[i].status, 0);
        spw_result lr;
        assert_int_equal(spw_client_classify(local, &imgs[idx], &lr), 0);
        for (int k = 0; k < lr.k; k++) {
            assert_int_equal(lr.top[k].label, res[i].top[k].label);
            assert_float_equal(lr.top[k].prob, res[i].top[k].prob, 1e-5);
        }
    }
    spw_server_stats ss;
    for (int wait = 0; wait < 200; wait++) {
        spw_server_get_stats(st.srv, &ss);
        if (ss.results == N)
            break;
        usleep(10000);
    }
    printf("server: %llu results in %llu batches; stages p50 upload %.3f compute %.3f download "
           "%.3f ms; %llu uploads, %llu downloads during another worker's compute\n",
           (unsigned long long)ss.results, (unsigned long long)ss.batches, ss.upload_p50,
           ss.compute_p50, ss.download_p50, (unsigned long long)ss.upload_overlaps,
           (unsigned long long)ss.download_overlaps);
    assert_int_equal(ss.results, N);
    /* The only errors are busy refusals (fair admission caps one peer's
     * share), which the client retried. */
    assert_int_equal(ss.errors, ss.busy);
    assert_int_equal(ss.staged, ss.batches);
    assert_true(ss.compute_p50 > 0);
    assert_true(ss.upload_overlaps <= ss.staged && ss.download_overlaps <= ss.staged);
    for (int i = 0; i < N; i++)
        free(imgs[i].rgb);
    spw_client_close(remote);
    spw_client_close(local);
    spw_server_stop(st.srv);
    pthread_join(st.tid, NULL);
    spw_server_close(st.srv);
}

int main(void)
{
    if (!spw__backend_find("vulkan"))
        return spw_test_skip_all("no Vulkan backend here (%s)", spw_error_detail());
    if (spw_bundle_open(BUNDLE, &bundle) || spw_bundle_load_tables(bundle, &tables)) {
        fprintf(stderr, "cannot open %s: %s\n", BUNDLE, spw_error_detail());
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slots_match_reference),
        cmocka_unit_test(test_server_profile),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    spw_codec_tables_free(tables);
    spw_bundle_close(bundle);
    return spw_test_exit(failed);
}

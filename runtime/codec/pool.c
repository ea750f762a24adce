/*
 * A small persistent worker pool: the caller posts n items and works on them
 * alongside the workers. Items are claimed from one 64-bit word holding the
 * job's generation and the next index, so a worker that wakes late cannot
 * claim an item of a job that has moved on; and the caller waits for items to
 * finish, not for workers to check in, so a worker the scheduler never ran
 * costs nothing.
 */
#include <pthread.h>

#include "runtime/codec/pool.h"

struct spw__pool {
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    pthread_t *threads;
    int nthreads;
    int stop;
    uint32_t gen; /* current job; workers wait for a change */
    spw__pool_fn fn;
    void *ctx;
    int nitems;
    uint64_t next; /* gen << 32 | next item (atomic) */
    int finished;  /* items of the current job done (atomic) */
};

static void run_items(spw__pool *p, uint32_t gen, spw__pool_fn fn, void *ctx, int n)
{
    for (;;) {
        uint64_t v = __atomic_load_n(&p->next, __ATOMIC_ACQUIRE);
        do {
            if ((uint32_t)(v >> 32) != gen || (uint32_t)v >= (uint32_t)n)
                return;
        } while (!__atomic_compare_exchange_n(&p->next, &v, v + 1, true, __ATOMIC_ACQ_REL,
                                              __ATOMIC_ACQUIRE));
        fn(ctx, (int)(uint32_t)v);
        if (__atomic_add_fetch(&p->finished, 1, __ATOMIC_ACQ_REL) == n) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

static void *worker(void *arg)
{
    spw__pool *p = arg;
    uint32_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->gen == seen)
            pthread_cond_wait(&p->wake, &p->mu);
        if (p->stop)
            break;
        seen = p->gen;
        spw__pool_fn fn = p->fn;
        void *ctx = p->ctx;
        int n = p->nitems;
        pthread_mutex_unlock(&p->mu);
        run_items(p, seen, fn, ctx, n);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int spw__pool_create(int workers, spw__pool **out)
{
    *out = NULL;
    spw__pool *p = spw__calloc(1, sizeof(*p));
    if (!p)
        return spw__error(SPW_ENOMEM, "pool: out of memory");
    int rc;
    p->threads = spw__calloc((size_t)workers, sizeof(pthread_t));
    if (!p->threads) {
        rc = spw__error(SPW_ENOMEM, "pool: out of memory");
        goto fail_threads;
    }
    if (pthread_mutex_init(&p->mu, NULL)) {
        rc = spw__error(SPW_ENOMEM, "pool: cannot create a mutex");
        goto fail_mutex;
    }
    if (pthread_cond_init(&p->wake, NULL)) {
        rc = spw__error(SPW_ENOMEM, "pool: cannot create a condition variable");
        goto fail_wake;
    }
    if (pthread_cond_init(&p->done, NULL)) {
        rc = spw__error(SPW_ENOMEM, "pool: cannot create a condition variable");
        goto fail_done;
    }
    for (; p->nthreads < workers; p->nthreads++) {
        if (pthread_create(&p->threads[p->nthreads], NULL, worker, p)) {
            rc = spw__error(SPW_ENOMEM, "pool: cannot start thread %d of %d", p->nthreads + 1,
                            workers);
            goto fail_start;
        }
    }
    *out = p;
    return 0;

fail_start:
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->done);
fail_done:
    pthread_cond_destroy(&p->wake);
fail_wake:
    pthread_mutex_destroy(&p->mu);
fail_mutex:
    spw__free(p->threads);
fail_threads:
    spw__free(p);
    return rc;
}

void spw__pool_free(spw__pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mu);
    spw__free(p->threads);
    spw__free(p);
}

void spw__pool_run(spw__pool *p, spw__pool_fn fn, void *ctx, int nitems)
{
    if (!p || nitems <= 1) {
        for (int i = 0; i < nitems; i++)
            fn(ctx, i);
        return;
    }
    pthread_mutex_lock(&p->mu);
    uint32_t gen = ++p->gen;
    if (!gen) /* 0 is every worker's initial "seen" */
        gen = ++p->gen;
    p->fn = fn;
    p->ctx = ctx;
    p->nitems = nitems;
    __atomic_store_n(&p->finished, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&p->next, (uint64_t)gen << 32, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    run_items(p, gen, fn, ctx, nitems);
    pthread_mutex_lock(&p->mu);
    while (__atomic_load_n(&p->finished, __ATOMIC_ACQUIRE) < nitems)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

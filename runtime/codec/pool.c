/* A small persistent worker pool: the caller posts n items and works on them
 * alongside the workers, so a pool of k workers runs k + 1 items at a time. */
#include <pthread.h>

#include "runtime/codec/pool.h"

struct spw__pool {
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    pthread_t *threads;
    int nthreads;
    uint64_t gen;  /* bumped per job; workers wait for a change */
    int stop;
    int active;    /* workers still inside the current job */
    spw__pool_fn fn;
    void *ctx;
    int nitems;
    int next;      /* next item to hand out (atomic) */
};

static void run_items(spw__pool *p)
{
    int i;
    while ((i = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED)) < p->nitems)
        p->fn(p->ctx, i);
}

static void *worker(void *arg)
{
    spw__pool *p = arg;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->gen == seen)
            pthread_cond_wait(&p->wake, &p->mu);
        if (p->stop)
            break;
        seen = p->gen;
        pthread_mutex_unlock(&p->mu);
        run_items(p);
        pthread_mutex_lock(&p->mu);
        if (--p->active == 0)
            pthread_cond_signal(&p->done);
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
    p->fn = fn;
    p->ctx = ctx;
    p->nitems = nitems;
    p->next = 0;
    p->active = p->nthreads;
    p->gen++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    run_items(p);
    pthread_mutex_lock(&p->mu);
    while (p->active)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

// A fixed pool of worker threads for compute kernels: the caller is thread 0, workers wait
// for the next task by spinning briefly (tasks come microseconds apart inside a forward
// pass) and then parking on a condition variable (so an idle model costs no CPU).
#include "CEffKernels.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define EFF_PAUSE() _mm_pause()
#else
#define EFF_PAUSE() ((void)0)
#endif

struct eff_pool {
    int nth;
    int spin_us;
    pthread_t *threads;
    eff_task_fn fn;
    void *ctx;
    _Atomic int generation;  // bumped once per task
    _Atomic int pending;     // workers still running the current task
    _Atomic int sleepers;    // workers parked on cv
    _Atomic int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

typedef struct { eff_pool *pool; int ith; } eff_worker_arg;

// Set while this thread runs a pool task, so a nested parallel call runs inline.
static _Thread_local int eff_in_task = 0;

int eff_pool_in_task(void) { return eff_in_task; }

static inline long long eff_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static void *eff_worker_main(void *p) {
    eff_worker_arg a = *(eff_worker_arg *)p;
    free(p);
    eff_pool *pool = a.pool;
    int seen = 0;  // generation at creation: a task posted before this thread starts still runs
    for (;;) {
        // Spin for the next task, then park.
        long long deadline = eff_now_us() + pool->spin_us;
        int gen;
        unsigned iter = 0;
        while ((gen = atomic_load_explicit(&pool->generation, memory_order_acquire)) == seen &&
               !atomic_load_explicit(&pool->stop, memory_order_relaxed)) {
            EFF_PAUSE();
            if ((++iter & 255) == 0 && eff_now_us() > deadline) {
                pthread_mutex_lock(&pool->mu);
                atomic_fetch_add(&pool->sleepers, 1);
                while ((gen = atomic_load(&pool->generation)) == seen && !atomic_load(&pool->stop))
                    pthread_cond_wait(&pool->cv, &pool->mu);
                atomic_fetch_sub(&pool->sleepers, 1);
                pthread_mutex_unlock(&pool->mu);
                break;
            }
        }
        if (atomic_load(&pool->stop)) return NULL;
        seen = gen;
        eff_in_task = 1;
        pool->fn(pool->ctx, a.ith, pool->nth);
        eff_in_task = 0;
        atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_release);
    }
}

eff_pool *eff_pool_create(int nthreads) {
    if (nthreads < 1) nthreads = 1;
    eff_pool *pool = calloc(1, sizeof(eff_pool));
    if (!pool) return NULL;
    pool->nth = nthreads;
    pool->spin_us = 1000;
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->cv, NULL);
    pool->threads = calloc((size_t)nthreads, sizeof(pthread_t));
    if (!pool->threads) { free(pool); return NULL; }
    for (int i = 1; i < nthreads; i++) {
        eff_worker_arg *a = malloc(sizeof(eff_worker_arg));
        if (!a) { pool->nth = i; eff_pool_destroy(pool); return NULL; }
        a->pool = pool;
        a->ith = i;
        if (pthread_create(&pool->threads[i], NULL, eff_worker_main, a) != 0) {
            free(a);
            pool->nth = i;
            eff_pool_destroy(pool);
            return NULL;
        }
    }
    return pool;
}

void eff_pool_destroy(eff_pool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->mu);
    atomic_store(&pool->stop, 1);
    pthread_cond_broadcast(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 1; i < pool->nth; i++) pthread_join(pool->threads[i], NULL);
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->cv);
    free(pool->threads);
    free(pool);
}

int eff_pool_threads(const eff_pool *pool) { return pool ? pool->nth : 1; }

void eff_pool_set_spin(eff_pool *pool, int spin_us) { if (pool) pool->spin_us = spin_us < 0 ? 0 : spin_us; }

void eff_pool_run(eff_pool *pool, eff_task_fn fn, void *ctx) {
    if (!pool || pool->nth == 1 || eff_in_task) { fn(ctx, 0, 1); return; }
    pool->fn = fn;
    pool->ctx = ctx;
    atomic_store_explicit(&pool->pending, pool->nth - 1, memory_order_relaxed);
    atomic_fetch_add(&pool->generation, 1);  // seq_cst: publishes fn/ctx, orders vs sleepers
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->mu);
        pthread_cond_broadcast(&pool->cv);
        pthread_mutex_unlock(&pool->mu);
    }
    eff_in_task = 1;
    fn(ctx, 0, pool->nth);
    eff_in_task = 0;
    unsigned iter = 0;
    while (atomic_load_explicit(&pool->pending, memory_order_acquire) != 0) {
        EFF_PAUSE();
        if ((++iter & 1023) == 0) sched_yield();  // a worker was descheduled: give it the core
    }
}

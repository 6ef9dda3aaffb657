// A fixed pool of worker threads for compute kernels. A task is split into chunks that the
// caller (thread 0) and the workers claim one at a time from a shared counter, so a worker
// the OS has descheduled (2 shared cores, other processes) delays at most the chunk it
// holds instead of a fixed share of the work. Idle workers spin briefly (the next kernel of
// a forward pass comes microseconds later), then park on a condition variable; the caller
// waiting for the last chunks does the same. Spin time: 100 us, EFFTERM_POOL_SPIN_US.
#include "CEffKernels.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define EFF_PAUSE() _mm_pause()
#else
#define EFF_PAUSE() ((void)0)
#endif

// work = generation (32 bits) | chunk count (16 bits) | next unclaimed chunk (16 bits):
// one atomic word, so a claim can never mix two tasks.
#define EFF_GEN(v) ((uint32_t)((v) >> 32))
#define EFF_COUNT(v) ((int)(((v) >> 16) & 0xFFFF))
#define EFF_NEXT(v) ((int)((v) & 0xFFFF))

struct eff_pool {
    int nth;
    _Atomic int spin_us;  // read by parked workers while eff_pool_set_spin may write it
    uint32_t generation;  // caller-side copy of the current generation
    pthread_t *threads;
    eff_task_fn fn;
    void *ctx;
    _Atomic uint64_t work;
    _Atomic int completed;  // chunks finished in the current task
    _Atomic int sleepers;   // workers parked on cv
    _Atomic int waiting;    // 1 while the caller is parked on done_cv
    pthread_cond_t done_cv;
    _Atomic int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

// Set while this thread runs a pool task, so a nested parallel call runs inline.
static _Thread_local int eff_in_task = 0;

int eff_pool_in_task(void) { return eff_in_task; }

static inline long long eff_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/// Claims and runs chunks of task `gen` until none are left.
static void eff_claim_chunks(eff_pool *pool, uint32_t gen) {
    uint64_t v = atomic_load(&pool->work);
    for (;;) {
        if (EFF_GEN(v) != gen || EFF_NEXT(v) >= EFF_COUNT(v)) return;
        if (!atomic_compare_exchange_weak(&pool->work, &v, v + 1)) continue;  // v reloaded
        // The claimed chunk keeps task `gen` alive (the caller waits for it), so fn and
        // ctx, written before the task was published, are this task's.
        const int n = EFF_COUNT(v);
        eff_in_task = 1;
        pool->fn(pool->ctx, EFF_NEXT(v), n);
        eff_in_task = 0;
        if (atomic_fetch_add(&pool->completed, 1) + 1 == n && atomic_load(&pool->waiting)) {
            pthread_mutex_lock(&pool->mu);  // the caller parked: wake it
            pthread_cond_broadcast(&pool->done_cv);
            pthread_mutex_unlock(&pool->mu);
        }
        v = atomic_load(&pool->work);
    }
}

typedef struct { eff_pool *pool; } eff_worker_arg;

static void *eff_worker_main(void *p) {
    eff_pool *pool = ((eff_worker_arg *)p)->pool;
    free(p);
    uint32_t seen = 0;  // generation at creation: a task posted before this thread starts still runs
    for (;;) {
        long long deadline = eff_now_us() + atomic_load_explicit(&pool->spin_us, memory_order_relaxed);
        unsigned iter = 0;
        uint32_t gen;
        while ((gen = EFF_GEN(atomic_load_explicit(&pool->work, memory_order_acquire))) == seen &&
               !atomic_load_explicit(&pool->stop, memory_order_relaxed)) {
            EFF_PAUSE();
            if ((++iter & 255) == 0 && eff_now_us() > deadline) {
                pthread_mutex_lock(&pool->mu);
                atomic_fetch_add(&pool->sleepers, 1);
                while ((gen = EFF_GEN(atomic_load(&pool->work))) == seen && !atomic_load(&pool->stop))
                    pthread_cond_wait(&pool->cv, &pool->mu);
                atomic_fetch_sub(&pool->sleepers, 1);
                pthread_mutex_unlock(&pool->mu);
                break;
            }
        }
        if (atomic_load(&pool->stop)) return NULL;
        seen = gen;
        eff_claim_chunks(pool, gen);
    }
}

eff_pool *eff_pool_create(int nthreads) {
    if (nthreads < 1) nthreads = 1;
    eff_pool *pool = calloc(1, sizeof(eff_pool));
    if (!pool) return NULL;
    pool->nth = 1;
    atomic_init(&pool->spin_us, 100);
    const char *spin = getenv("EFFTERM_POOL_SPIN_US");
    if (spin) atomic_store(&pool->spin_us, atoi(spin));
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->cv, NULL);
    pthread_cond_init(&pool->done_cv, NULL);
    pool->threads = calloc((size_t)nthreads, sizeof(pthread_t));
    if (!pool->threads) { free(pool); return NULL; }
    for (int i = 1; i < nthreads; i++) {
        eff_worker_arg *a = malloc(sizeof(eff_worker_arg));
        if (!a) { eff_pool_destroy(pool); return NULL; }
        a->pool = pool;
        if (pthread_create(&pool->threads[i], NULL, eff_worker_main, a) != 0) {
            free(a);
            eff_pool_destroy(pool);
            return NULL;
        }
        pool->nth = i + 1;
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
    pthread_cond_destroy(&pool->done_cv);
    free(pool->threads);
    free(pool);
}

int eff_pool_threads(const eff_pool *pool) { return pool ? pool->nth : 1; }

void eff_pool_set_spin(eff_pool *pool, int spin_us) {
    if (pool) atomic_store_explicit(&pool->spin_us, spin_us < 0 ? 0 : spin_us, memory_order_relaxed);
}

void eff_pool_run(eff_pool *pool, eff_task_fn fn, void *ctx, int nchunks) {
    if (nchunks <= 0) return;
    if (nchunks > 0xFFFF) nchunks = 0xFFFF;  // callers size chunks; this is a hard ceiling
    if (!pool || pool->nth == 1 || eff_in_task || nchunks == 1) {
        const int outer = eff_in_task;
        eff_in_task = 1;
        for (int c = 0; c < nchunks; c++) fn(ctx, c, nchunks);
        eff_in_task = outer;
        return;
    }
    pool->fn = fn;
    pool->ctx = ctx;
    atomic_store_explicit(&pool->completed, 0, memory_order_relaxed);
    const uint32_t gen = ++pool->generation;
    // seq_cst: publishes fn/ctx, and orders against a worker registering as a sleeper.
    atomic_store(&pool->work, ((uint64_t)gen << 32) | ((uint64_t)nchunks << 16));
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->mu);
        pthread_cond_broadcast(&pool->cv);
        pthread_mutex_unlock(&pool->mu);
    }
    eff_claim_chunks(pool, gen);
    // Wait for chunks other threads still hold: spin briefly, then park (on a busy machine
    // spinning would burn the very CPU time the descheduled worker needs).
    const long long deadline = eff_now_us() + atomic_load_explicit(&pool->spin_us, memory_order_relaxed);
    unsigned iter = 0;
    while (atomic_load_explicit(&pool->completed, memory_order_acquire) != nchunks) {
        EFF_PAUSE();
        if ((++iter & 255) == 0 && eff_now_us() > deadline) {
            pthread_mutex_lock(&pool->mu);
            atomic_store(&pool->waiting, 1);
            while (atomic_load(&pool->completed) != nchunks) pthread_cond_wait(&pool->done_cv, &pool->mu);
            atomic_store(&pool->waiting, 0);
            pthread_mutex_unlock(&pool->mu);
            break;
        }
    }
}

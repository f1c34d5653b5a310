/*
 * malloc-count: an LD_PRELOAD shim counting heap allocations, so benchmarks
 * can prove "no allocation per request" in a daemon's steady state.
 *
 *   gcc -O2 -shared -fPIC -o malloc-count.so deploy/bench/malloc-count.c -ldl
 *   LD_PRELOAD=$PWD/malloc-count.so vireo-initiator serve --stats-file ... ...
 *
 * Counts every call of malloc, calloc, realloc (and reallocarray), posix_memalign,
 * aligned_alloc, memalign, valloc and pvalloc (one relaxed atomic add each)
 * and forwards it to the next definition (glibc's). The daemon's stats
 * writer finds `vireo_malloc_count` with dlsym(RTLD_DEFAULT) and exports it
 * as vireo_process_allocations_total, and `vireo_malloc_count_thread` (the
 * calling thread's own count) as vireo_stats_allocations_total: what its own
 * writes allocated, which a reader subtracts.
 *
 * Bootstrap: dlsym(RTLD_NEXT, ...) may itself call calloc/malloc (dlerror's
 * buffer) before the real functions are known. While resolving, the calling
 * thread is served from a small static arena; free/realloc recognize arena
 * pointers and never pass them to the real allocator.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static uint64_t count;

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static void *(*real_valloc)(size_t);
static void *(*real_pvalloc)(size_t);

static __thread int resolving __attribute__((tls_model("initial-exec")));

static _Alignas(64) unsigned char arena[16384];
static size_t arena_used;

static int in_arena(const void *p) {
    return (const unsigned char *)p >= arena && (const unsigned char *)p < arena + sizeof(arena);
}

static void *arena_alloc(size_t size, size_t align) {
    if (align < 16) align = 16;
    size_t used = __atomic_load_n(&arena_used, __ATOMIC_RELAXED);
    for (;;) {
        size_t start = (used + align - 1) & ~(align - 1);
        if (start > sizeof(arena) || size > sizeof(arena) - start) return NULL;
        if (__atomic_compare_exchange_n(&arena_used, &used, start + size, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            return arena + start; /* static storage: already zeroed, never reused */
    }
}

/* The calling thread's own allocations: the stats writer subtracts its own. */
static __thread uint64_t thread_count __attribute__((tls_model("initial-exec")));

uint64_t vireo_malloc_count(void) { return __atomic_load_n(&count, __ATOMIC_RELAXED); }

uint64_t vireo_malloc_count_thread(void) { return thread_count; }

static inline void bump(void) {
    __atomic_fetch_add(&count, 1, __ATOMIC_RELAXED);
    thread_count++;
}

static void resolve(void) {
    if (real_free) return;
    resolving = 1;
    real_malloc = dlsym(RTLD_NEXT, "malloc");
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
    real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
    real_memalign = dlsym(RTLD_NEXT, "memalign");
    real_valloc = dlsym(RTLD_NEXT, "valloc");
    real_pvalloc = dlsym(RTLD_NEXT, "pvalloc");
    /* free last: it is the "resolved" flag */
    __atomic_store_n(&real_free, (void (*)(void *))dlsym(RTLD_NEXT, "free"), __ATOMIC_RELEASE);
    resolving = 0;
}

__attribute__((constructor)) static void init(void) { resolve(); }

#define ENSURE(fallback) do { if (!real_free) { if (resolving) return fallback; resolve(); } } while (0)

void *malloc(size_t size) {
    ENSURE(arena_alloc(size, 16));
    bump();
    return real_malloc(size);
}

void *calloc(size_t n, size_t size) {
    if (!real_free && resolving) {
        if (size && n > SIZE_MAX / size) { errno = ENOMEM; return NULL; }
        return arena_alloc(n * size, 16);
    }
    ENSURE(NULL);
    bump();
    return real_calloc(n, size);
}

void *realloc(void *p, size_t size) {
    if (in_arena(p)) {
        /* Move an arena block to the real heap (old size unknown: copy what fits in the arena). */
        void *q = malloc(size);
        if (q) {
            size_t avail = (size_t)(arena + sizeof(arena) - (unsigned char *)p);
            memcpy(q, p, size < avail ? size : avail);
        }
        return q;
    }
    ENSURE(NULL);
    bump();
    return real_realloc(p, size);
}

void free(void *p) {
    if (p == NULL || in_arena(p)) return;
    ENSURE();
    real_free(p);
}

void *reallocarray(void *p, size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) { errno = ENOMEM; return NULL; }
    return realloc(p, n * size); /* counted there */
}

int posix_memalign(void **out, size_t align, size_t size) {
    if (!real_free && resolving) {
        void *q = arena_alloc(size, align);
        if (!q) return ENOMEM;
        *out = q;
        return 0;
    }
    ENSURE(ENOMEM);
    bump();
    return real_posix_memalign(out, align, size);
}

void *aligned_alloc(size_t align, size_t size) {
    ENSURE(arena_alloc(size, align));
    bump();
    return real_aligned_alloc(align, size);
}

void *memalign(size_t align, size_t size) {
    ENSURE(arena_alloc(size, align));
    bump();
    return real_memalign(align, size);
}

void *valloc(size_t size) {
    ENSURE(arena_alloc(size, 4096));
    bump();
    return real_valloc(size);
}

void *pvalloc(size_t size) {
    ENSURE(arena_alloc((size + 4095) & ~(size_t)4095, 4096));
    bump();
    return real_pvalloc(size);
}

#define _GNU_SOURCE
#include "CVireoSys.h"
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

int vireo_eventfd(unsigned int initval, int nonblock_cloexec) {
    return eventfd(initval, nonblock_cloexec ? (EFD_NONBLOCK | EFD_CLOEXEC) : EFD_CLOEXEC);
}

int vireo_memfd_create(const char *name, int cloexec) {
    return memfd_create(name, cloexec ? MFD_CLOEXEC : 0);
}

int vireo_pthread_setname_self(const char *name) {
    char n[16];
    strncpy(n, name, 15);
    n[15] = 0;
    return pthread_setname_np(pthread_self(), n);
}

#define VIREO_MAX_FDS 32

ssize_t vireo_sendmsg_fds(int sock, const void *buf, size_t len, const int *fds, int nfds) {
    if (nfds < 0 || nfds > VIREO_MAX_FDS) { errno = EINVAL; return -1; }
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    union { char b[CMSG_SPACE(sizeof(int) * VIREO_MAX_FDS)]; struct cmsghdr align; } ctl;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (nfds > 0) {
        memset(&ctl, 0, sizeof ctl);
        msg.msg_control = ctl.b;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    return sendmsg(sock, &msg, MSG_NOSIGNAL);
}

ssize_t vireo_recvmsg_fds(int sock, void *buf, size_t len, int *fds, int max_fds, int *nfds, int *truncated) {
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    union { char b[CMSG_SPACE(sizeof(int) * VIREO_MAX_FDS)]; struct cmsghdr align; } ctl;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.b;
    msg.msg_controllen = sizeof ctl.b;
    *nfds = 0;
    *truncated = 0;
    ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0) return n;
    if (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) *truncated = 1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        int *p = (int *)CMSG_DATA(c);
        for (size_t i = 0; i < count; i++) {
            int fd;
            memcpy(&fd, p + i, sizeof fd);
            if (*nfds < max_fds) fds[(*nfds)++] = fd;
            else { close(fd); *truncated = 1; }
        }
    }
    return n;
}

uint64_t vireo_checksum64(const void *buf, size_t len) {
    const unsigned char *p = buf;
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t words = len / 8;
    for (size_t i = 0; i < words; i++) {
        uint64_t w;
        memcpy(&w, p + i * 8, 8);
        h = (h ^ w) * 0x100000001b3ULL;
    }
    for (size_t i = words * 8; i < len; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h ^ (uint64_t)len;
}

void vireo_fill_pattern(void *buf, size_t len, uint64_t seed) {
    unsigned char *p = buf;
    uint64_t x = seed ? seed : 0x9e3779b97f4a7c15ULL;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
        uint64_t v = x * 0x2545F4914F6CDD1DULL;
        memcpy(p + i, &v, 8);
    }
    for (; i < len; i++) { x ^= x >> 12; x ^= x << 25; x ^= x >> 27; p[i] = (unsigned char)(x * 0x2545F4914F6CDD1DULL); }
}

static int vireo_fill_sun(struct sockaddr_un *sa, const char *path) {
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof sa->sun_path) { errno = ENAMETOOLONG; return -1; }
    memcpy(sa->sun_path, path, n);
    return 0;
}

int vireo_unix_listen(const char *path, int backlog) {
    struct sockaddr_un sa;
    if (vireo_fill_sun(&sa, path) < 0) return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, backlog) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int vireo_unix_connect(const char *path) {
    struct sockaddr_un sa;
    if (vireo_fill_sun(&sa, path) < 0) return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int rc;
    do { rc = connect(fd, (struct sockaddr *)&sa, sizeof sa); } while (rc < 0 && errno == EINTR);
    if (rc < 0) { int e = errno; close(fd); errno = e; return -1; }
    return fd;
}

#include <netdb.h>
#include <netinet/in.h>

/// One numeric address (IPv4 or IPv6) and port: a TCP socket bound and listening there.
static int vireo_tcp_open(const char *host, const char *port, int backlog, int listening, int *bound) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | (listening ? AI_PASSIVE : 0);
    int g = getaddrinfo(host, port, &hints, &res);
    if (g != 0 || res == NULL) { errno = (g == EAI_SYSTEM) ? errno : EINVAL; return -1; }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) { int e = errno; freeaddrinfo(res); errno = e; return -1; }
    int rc;
    if (listening) {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        rc = bind(fd, res->ai_addr, res->ai_addrlen);
        if (rc == 0) rc = listen(fd, backlog);
        if (rc == 0 && bound) {
            struct sockaddr_storage ss;
            socklen_t len = sizeof ss;
            if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
                *bound = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                                  : ntohs(((struct sockaddr_in *)&ss)->sin_port);
            }
        }
    } else {
        do { rc = connect(fd, res->ai_addr, res->ai_addrlen); } while (rc < 0 && errno == EINTR);
    }
    int e = errno;
    freeaddrinfo(res);
    if (rc < 0) { close(fd); errno = e; return -1; }
    return fd;
}

int vireo_tcp_listen(const char *host, const char *port, int backlog, int *bound) {
    return vireo_tcp_open(host, port, backlog, 1, bound);
}

int vireo_tcp_connect(const char *host, const char *port) {
    return vireo_tcp_open(host, port, 0, 0, NULL);
}

int vireo_accept(int sock) {
    return accept4(sock, NULL, NULL, SOCK_CLOEXEC);
}

int vireo_socketpair(int fds[2]) {
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds);
}

#include <fcntl.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>

int vireo_tap_open(const char *name, int mtu) {
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) goto fail;
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) goto fail;
    if (mtu > 0) {
        ifr.ifr_mtu = mtu;
        if (ioctl(sock, SIOCSIFMTU, &ifr) < 0) { int e = errno; close(sock); errno = e; goto fail; }
    }
    if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0) { int e = errno; close(sock); errno = e; goto fail; }
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0) { int e = errno; close(sock); errno = e; goto fail; }
    close(sock);
    return fd;
fail:
    { int e = errno; close(fd); errno = e; }
    return -1;
}

#include <dlfcn.h>
#include <signal.h>
#include <time.h>

typedef uint64_t (*vireo_counter_fn)(void);
/* Per counter: (void *)1 not looked up yet; NULL not loaded. */
static void *vireo_malloc_counter_fn = (void *)1;
static void *vireo_thread_counter_fn = (void *)1;

/* Reads a counter of the preloaded malloc counter, found once with dlsym. */
static int vireo_read_counter(void **cache, const char *name, uint64_t *out) {
    void *fn = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
    if (fn == (void *)1) {
        fn = dlsym(RTLD_DEFAULT, name);
        __atomic_store_n(cache, fn, __ATOMIC_RELEASE);
    }
    if (fn == NULL) return 0;
    *out = ((vireo_counter_fn)fn)();
    return 1;
}

int vireo_process_allocations(uint64_t *out) {
    return vireo_read_counter(&vireo_malloc_counter_fn, "vireo_malloc_count", out);
}

int vireo_thread_allocations(uint64_t *out) {
    return vireo_read_counter(&vireo_thread_counter_fn, "vireo_malloc_count_thread", out);
}

int vireo_wait_signal(long timeout_ms) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    for (;;) {
        int sig;
        if (timeout_ms < 0) {
            if (sigwait(&set, &sig) == 0) return sig;
            continue;
        }
        struct timespec ts = { .tv_sec = timeout_ms / 1000, .tv_nsec = (timeout_ms % 1000) * 1000000L };
        sig = sigtimedwait(&set, NULL, &ts);
        if (sig > 0) return sig;
        if (errno == EAGAIN) return 0;
        /* EINTR: retry (the remaining time restarts; good enough for a stats interval). */
    }
}

int vireo_memfd_create_sealable(const char *name) {
    return memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
}

int vireo_seal_size(int fd) {
    return fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
}

// MARK: SIGBUS containment (see the header). The handler reads the table
// with atomic loads only and calls mmap, which is async-signal-safe in
// practice on Linux (a plain system call).

#define VIREO_SIGBUS_SLOTS 1024
static struct {
    uintptr_t base;     // 0: free
    size_t len;
    uint64_t owner;
    uint64_t faults;
} guard_slots[VIREO_SIGBUS_SLOTS];
uint64_t vireo_sigbus_guard_total;
static pthread_mutex_t guard_lock = PTHREAD_MUTEX_INITIALIZER;
static size_t guard_page_size;

static int guard_zero_map(uintptr_t addr, uintptr_t base, size_t len) {
    // Try the base page size, then the huge page sizes a hugetlbfs mapping
    // may use (a MAP_FIXED over part of a huge page fails with EINVAL).
    static const size_t sizes[] = {0, 2u << 20, 1u << 30};
    for (int i = 0; i < 3; i++) {
        size_t sz = i == 0 ? guard_page_size : sizes[i];
        uintptr_t page = addr & ~(uintptr_t)(sz - 1);
        if (page < base || page + sz > base + len) continue;
        void *p = mmap((void *)page, sz, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED) return 1;
    }
    return 0;
}

static void guard_handler(int sig, siginfo_t *si, void *ctx) {
    (void)ctx;
    int saved = errno;
    uintptr_t a = (uintptr_t)si->si_addr;
    for (int i = 0; i < VIREO_SIGBUS_SLOTS; i++) {
        uintptr_t b = __atomic_load_n(&guard_slots[i].base, __ATOMIC_ACQUIRE);
        size_t l = __atomic_load_n(&guard_slots[i].len, __ATOMIC_RELAXED);
        if (b == 0 || a < b || a - b >= l) continue;
        if (guard_zero_map(a, b, l)) {
            __atomic_fetch_add(&guard_slots[i].faults, 1, __ATOMIC_RELAXED);
            __atomic_fetch_add(&vireo_sigbus_guard_total, 1, __ATOMIC_RELEASE);
            errno = saved;
            return;   // the access is retried and now reads zeroes
        }
        break;
    }
    // Not a guarded range: the default action (the access faults again).
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, NULL);
    errno = saved;
}

int vireo_sigbus_guard_install(void) {
    static int installed;
    pthread_mutex_lock(&guard_lock);
    int rc = 0;
    if (!installed) {
        guard_page_size = (size_t)sysconf(_SC_PAGESIZE);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = guard_handler;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        rc = sigaction(SIGBUS, &sa, NULL);
        if (rc == 0) installed = 1;
    }
    pthread_mutex_unlock(&guard_lock);
    return rc;
}

int vireo_sigbus_guard_add(void *base, size_t len, uint64_t owner) {
    if (base == NULL || len == 0 || owner == 0) return -1;
    pthread_mutex_lock(&guard_lock);
    int slot = -1;
    for (int i = 0; i < VIREO_SIGBUS_SLOTS; i++) {
        if (guard_slots[i].base == 0) {
            guard_slots[i].len = len;
            guard_slots[i].owner = owner;
            guard_slots[i].faults = 0;
            __atomic_store_n(&guard_slots[i].base, (uintptr_t)base, __ATOMIC_RELEASE);
            slot = i;
            break;
        }
    }
    pthread_mutex_unlock(&guard_lock);
    return slot;
}

void vireo_sigbus_guard_remove(int slot) {
    if (slot < 0 || slot >= VIREO_SIGBUS_SLOTS) return;
    pthread_mutex_lock(&guard_lock);
    __atomic_store_n(&guard_slots[slot].base, 0, __ATOMIC_RELEASE);
    guard_slots[slot].owner = 0;
    pthread_mutex_unlock(&guard_lock);
}

uint64_t vireo_sigbus_guard_faults(uint64_t owner) {
    uint64_t n = 0;
    pthread_mutex_lock(&guard_lock);
    for (int i = 0; i < VIREO_SIGBUS_SLOTS; i++) {
        if (guard_slots[i].base != 0 && guard_slots[i].owner == owner) {
            n += __atomic_load_n(&guard_slots[i].faults, __ATOMIC_RELAXED);
        }
    }
    pthread_mutex_unlock(&guard_lock);
    return n;
}

/// sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET (a path, or "@name" for
/// the abstract namespace). 0: no socket to tell; 1: sent; -1/errno: the send failed.
int vireo_sd_notify(const char *state) {
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || path[0] == 0) return 0;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t n = strlen(path);
    if (n >= sizeof sa.sun_path) { errno = ENAMETOOLONG; return -1; }
    memcpy(sa.sun_path, path, n);
    if (sa.sun_path[0] == '@') sa.sun_path[0] = 0;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    ssize_t rc = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
    int e = errno;
    close(fd);
    if (rc < 0) { errno = e; return -1; }
    return 1;
}

#define _GNU_SOURCE
#include "CVireoSys.h"
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>

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
/* (void *)1: not looked up yet; NULL: not loaded. */
static void *vireo_malloc_counter_fn = (void *)1;

int vireo_process_allocations(uint64_t *out) {
    void *fn = __atomic_load_n(&vireo_malloc_counter_fn, __ATOMIC_ACQUIRE);
    if (fn == (void *)1) {
        fn = dlsym(RTLD_DEFAULT, "vireo_malloc_count");
        __atomic_store_n(&vireo_malloc_counter_fn, fn, __ATOMIC_RELEASE);
    }
    if (fn == NULL) return 0;
    *out = ((vireo_counter_fn)fn)();
    return 1;
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

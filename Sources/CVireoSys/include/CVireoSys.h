// Linux calls that Glibc's Swift module does not export (they need _GNU_SOURCE).
#ifndef CVIREOSYS_H
#define CVIREOSYS_H
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

int vireo_eventfd(unsigned int initval, int nonblock_cloexec);
int vireo_memfd_create(const char *name, int cloexec);
/// memfd_create with MFD_CLOEXEC | MFD_ALLOW_SEALING; then, after sizing,
/// vireo_seal_size adds F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL. -1/errno on failure.
int vireo_memfd_create_sealable(const char *name);
int vireo_seal_size(int fd);
int vireo_pthread_setname_self(const char *name);

/// sendmsg with optional SCM_RIGHTS fds. Returns bytes sent or -1/errno.
ssize_t vireo_sendmsg_fds(int sock, const void *buf, size_t len, const int *fds, int nfds);
/// recvmsg receiving up to max_fds fds via SCM_RIGHTS (MSG_CMSG_CLOEXEC).
/// *nfds receives the count; *truncated is set when MSG_CTRUNC or MSG_TRUNC occurred
/// (fds beyond max_fds are closed by this function). Returns bytes or -1/errno.
ssize_t vireo_recvmsg_fds(int sock, void *buf, size_t len, int *fds, int max_fds, int *nfds, int *truncated);


/// A 64-bit checksum of a buffer (FNV-1a over 64-bit words, tail bytes folded in).
/// In C so that verifying tens of MiB stays fast in debug builds.
uint64_t vireo_checksum64(const void *buf, size_t len);
/// Fills a buffer with a deterministic pattern derived from `seed` (xorshift64*).
void vireo_fill_pattern(void *buf, size_t len, uint64_t seed);

/// socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC) bound to `path` and listening.
/// Returns the fd or -1/errno (ENAMETOOLONG when the path does not fit sun_path).
int vireo_unix_listen(const char *path, int backlog);
/// socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC) connected to `path`. Returns fd or -1/errno.
int vireo_unix_connect(const char *path);
/// A TCP socket (close-on-exec, SO_REUSEADDR) bound to the numeric address `host` (IPv4 or
/// IPv6) and `port` ("0": any free one, written to *bound) and listening. fd or -1/errno
/// (EINVAL: not a numeric address).
int vireo_tcp_listen(const char *host, const char *port, int backlog, int *bound);
/// A TCP socket connected to the numeric `host` and `port`. fd or -1/errno.
int vireo_tcp_connect(const char *host, const char *port);
/// sd_notify(3) without libsystemd: `state` ("READY=1", "WATCHDOG=1", ...) as one datagram
/// to $NOTIFY_SOCKET. 0: not run by systemd with a notify socket; 1: sent; -1/errno: failed.
int vireo_sd_notify(const char *state);
/// accept4(..., SOCK_CLOEXEC). Returns fd or -1/errno.
int vireo_accept(int sock);
/// socketpair(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC). Returns 0 or -1/errno.
int vireo_socketpair(int fds[2]);
/// Opens /dev/net/tun as TAP interface `name` (IFF_TAP|IFF_NO_PI, non-blocking,
/// close-on-exec), sets its MTU (when mtu > 0) and brings it up.
/// Returns the fd or -1/errno (errno from the step that failed).
int vireo_tap_open(const char *name, int mtu);
/// The process's allocation count from the preloaded malloc counter
/// (deploy/bench/malloc-count.c, found once with dlsym(RTLD_DEFAULT,
/// "vireo_malloc_count")). Returns 1 and stores the count in *out when the
/// counter is loaded, 0 when it is not.
int vireo_process_allocations(uint64_t *out);
/// The calling thread's own allocation count from the same counter
/// ("vireo_malloc_count_thread"); 1 and *out when loaded, 0 when not.
int vireo_thread_allocations(uint64_t *out);
/// sigtimedwait(2) for SIGINT, SIGTERM, SIGHUP and SIGUSR1 with a timeout in
/// milliseconds (negative: wait forever). Returns the signal, 0 on timeout.
int vireo_wait_signal(long timeout_ms);
/// SIGBUS containment for mappings of files a peer controls (guest memory,
/// the front-end's inflight and log fds). A peer that shrinks such a file
/// under our mapping makes the next access fault with SIGBUS; inside a
/// guarded range the handler maps a zero page over the faulting page
/// (MAP_FIXED, anonymous) so the access completes, and counts the fault
/// against the range's owner. A SIGBUS anywhere else keeps the default action.
/// Installs the handler once (idempotent). Returns 0 or -1/errno.
int vireo_sigbus_guard_install(void);
/// Guards [base, base+len) for `owner` (a nonzero tag). Returns the slot, or -1 when the table is full.
int vireo_sigbus_guard_add(void *base, size_t len, uint64_t owner);
/// Stops guarding a slot (before the range is unmapped).
void vireo_sigbus_guard_remove(int slot);
/// Faults contained in ranges guarded for `owner` (a scan: not for hot paths).
uint64_t vireo_sigbus_guard_faults(uint64_t owner);
/// Faults contained so far, process-wide: one relaxed load, for a worker's loop.
extern uint64_t vireo_sigbus_guard_total;
/* Relaxed atomic add and load of a 64-bit counter that several threads bump (AtomicCounters). */
static inline void vireo_counter_add(uint64_t *p, uint64_t v) { __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
static inline uint64_t vireo_counter_load(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

static inline uint64_t vireo_sigbus_faults_total(void) { return __atomic_load_n(&vireo_sigbus_guard_total, __ATOMIC_RELAXED); }
#endif

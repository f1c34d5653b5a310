// A small C surface over liburing: its prep/submit/peek helpers are static
// inline and do not import into Swift, so each gets a plain function here.
#ifndef CVIREOURING_H
#define CVIREOURING_H
#include <stdint.h>
#include <stddef.h>

/// Opaque ring (a heap-allocated struct io_uring).
typedef struct vireo_uring vireo_uring;

/// Creates a ring of `entries` submission entries. Returns NULL and sets
/// *err to the positive errno on failure.
vireo_uring *vireo_uring_create(unsigned entries, int *err);
/// Unregisters any eventfd, tears the ring down and frees it.
void vireo_uring_destroy(vireo_uring *ring);
/// io_uring_register_eventfd. Returns 0 or a negative errno.
int vireo_uring_register_eventfd(vireo_uring *ring, int fd);

/// Each prep returns 0, or -EBUSY when the submission queue is full.
/// READ / WRITE, or with `fixed_index` ≥ 0 READ_FIXED / WRITE_FIXED (`buf` lies inside that fixed buffer).
int vireo_uring_prep_read(vireo_uring *ring, int fd, void *buf, unsigned len, uint64_t offset, int fixed_index,
                          uint64_t user_data);
int vireo_uring_prep_write(vireo_uring *ring, int fd, const void *buf, unsigned len, uint64_t offset, int fixed_index,
                           uint64_t user_data);
/// io_uring_register_buffers_sparse: a table of `nr` empty fixed-buffer slots. 0 or a negative errno.
int vireo_uring_register_sparse_buffers(vireo_uring *ring, unsigned nr);
/// Sets fixed-buffer slot `index` to [base, base+len) (len 0 empties it). 0 or a negative errno.
int vireo_uring_update_buffer(vireo_uring *ring, unsigned index, void *base, size_t len);
/// IORING_OP_FSYNC; `datasync` nonzero adds IORING_FSYNC_DATASYNC.
int vireo_uring_prep_fsync(vireo_uring *ring, int fd, int datasync, uint64_t user_data);
/// IORING_OP_FALLOCATE with `mode` (FALLOC_FL_* bits).
int vireo_uring_prep_fallocate(vireo_uring *ring, int fd, int mode, uint64_t offset, uint64_t len, uint64_t user_data);

/// io_uring_submit. Returns the number submitted or a negative errno.
int vireo_uring_submit(vireo_uring *ring);
/// Takes one completion without blocking: returns 1 and fills the outputs,
/// or 0 when none is ready.
int vireo_uring_take(vireo_uring *ring, uint64_t *user_data, int32_t *res);
/// Blocks until a completion is ready (tests). Returns 0 or a negative errno.
int vireo_uring_wait(vireo_uring *ring);

/// FALLOC_FL_* constants (macros in <linux/falloc.h>).
int vireo_falloc_punch_hole(void);
int vireo_falloc_keep_size(void);
int vireo_falloc_zero_range(void);
/// O_DIRECT (a _GNU_SOURCE macro).
int vireo_o_direct(void);
/// ioctl(BLKGETSIZE64). Returns 0 or -1/errno.
int vireo_blkgetsize64(int fd, uint64_t *size);
/// fallocate(2) (synchronous; tests and fallbacks). Returns 0 or -1/errno.
int vireo_fallocate(int fd, int mode, uint64_t offset, uint64_t len);
#endif

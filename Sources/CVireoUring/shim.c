#define _GNU_SOURCE
#include <sys/uio.h>
#include "CVireoUring.h"
#include <liburing.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>

struct vireo_uring { struct io_uring ring; int has_eventfd; };

vireo_uring *vireo_uring_create(unsigned entries, int *err) {
    vireo_uring *r = calloc(1, sizeof *r);
    if (!r) { *err = ENOMEM; return NULL; }
    int rc = io_uring_queue_init(entries, &r->ring, 0);
    if (rc < 0) { free(r); *err = -rc; return NULL; }
    *err = 0;
    return r;
}

void vireo_uring_destroy(vireo_uring *r) {
    if (!r) return;
    if (r->has_eventfd) io_uring_unregister_eventfd(&r->ring);
    io_uring_queue_exit(&r->ring);
    free(r);
}

int vireo_uring_register_eventfd(vireo_uring *r, int fd) {
    int rc = io_uring_register_eventfd(&r->ring, fd);
    if (rc == 0) r->has_eventfd = 1;
    return rc;
}

int vireo_uring_prep_read(vireo_uring *r, int fd, void *buf, unsigned len, uint64_t offset, int fixed_index,
                          uint64_t ud) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (!sqe) return -EBUSY;
    if (fixed_index < 0) io_uring_prep_read(sqe, fd, buf, len, offset);
    else io_uring_prep_read_fixed(sqe, fd, buf, len, offset, fixed_index);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

int vireo_uring_prep_write(vireo_uring *r, int fd, const void *buf, unsigned len, uint64_t offset, int fixed_index,
                           uint64_t ud) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (!sqe) return -EBUSY;
    if (fixed_index < 0) io_uring_prep_write(sqe, fd, buf, len, offset);
    else io_uring_prep_write_fixed(sqe, fd, buf, len, offset, fixed_index);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

int vireo_uring_register_sparse_buffers(vireo_uring *r, unsigned nr) {
    return io_uring_register_buffers_sparse(&r->ring, nr);
}

int vireo_uring_update_buffer(vireo_uring *r, unsigned index, void *base, size_t len) {
    struct iovec iov = { .iov_base = base, .iov_len = len };
    __u64 tag = 0;
    int rc = io_uring_register_buffers_update_tag(&r->ring, index, &iov, &tag, 1);
    return rc < 0 ? rc : 0;
}

int vireo_uring_prep_fsync(vireo_uring *r, int fd, int datasync, uint64_t ud) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (!sqe) return -EBUSY;
    io_uring_prep_fsync(sqe, fd, datasync ? IORING_FSYNC_DATASYNC : 0);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

int vireo_uring_prep_fallocate(vireo_uring *r, int fd, int mode, uint64_t offset, uint64_t len, uint64_t ud) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (!sqe) return -EBUSY;
    io_uring_prep_fallocate(sqe, fd, mode, (off_t)offset, (off_t)len);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

int vireo_uring_submit(vireo_uring *r) { return io_uring_submit(&r->ring); }

int vireo_uring_take(vireo_uring *r, uint64_t *ud, int32_t *res) {
    struct io_uring_cqe *cqe = NULL;
    if (io_uring_peek_cqe(&r->ring, &cqe) != 0 || !cqe) return 0;
    *ud = io_uring_cqe_get_data64(cqe);
    *res = cqe->res;
    io_uring_cqe_seen(&r->ring, cqe);
    return 1;
}

int vireo_uring_wait(vireo_uring *r) {
    struct io_uring_cqe *cqe = NULL;
    return io_uring_wait_cqe(&r->ring, &cqe);
}

int vireo_falloc_punch_hole(void) { return FALLOC_FL_PUNCH_HOLE; }
int vireo_falloc_keep_size(void) { return FALLOC_FL_KEEP_SIZE; }
int vireo_falloc_zero_range(void) { return FALLOC_FL_ZERO_RANGE; }
int vireo_o_direct(void) { return O_DIRECT; }
int vireo_blkgetsize64(int fd, uint64_t *size) { return ioctl(fd, BLKGETSIZE64, size); }
int vireo_fallocate(int fd, int mode, uint64_t offset, uint64_t len) {
    return fallocate(fd, mode, (off_t)offset, (off_t)len);
}

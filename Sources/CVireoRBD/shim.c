#include "CVireoRBD.h"
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <rados/librados.h>
#include <rbd/librbd.h>
#include <rbd/features.h>

struct vireo_rados { rados_t cluster; };
struct vireo_rbd_image {
    rados_ioctx_t io;
    rbd_image_t image;
    uint64_t watch;
    int watching;
    int update_fd;
    atomic_int updated;
};

int vireo_rados_connect(const char *conf, const char *client_name, const char *keyring,
                        const char *const *keys, const char *const *values, int count,
                        vireo_rados **out, const char **failed) {
    rados_t c;
    int r = rados_create2(&c, "ceph", client_name, 0);
    if (r < 0) { *failed = "rados_create2"; return r; }
    r = rados_conf_read_file(c, conf);
    if (r < 0) { *failed = "rados_conf_read_file"; rados_shutdown(c); return r; }
    if (keyring && (r = rados_conf_set(c, "keyring", keyring)) < 0) {
        *failed = "rados_conf_set(keyring)"; rados_shutdown(c); return r;
    }
    for (int i = 0; i < count; i++) {
        if ((r = rados_conf_set(c, keys[i], values[i])) < 0) {
            *failed = "rados_conf_set"; rados_shutdown(c); return r;
        }
    }
    r = rados_connect(c);
    if (r < 0) { *failed = "rados_connect"; rados_shutdown(c); return r; }
    vireo_rados *v = calloc(1, sizeof *v);
    if (!v) { *failed = "calloc"; rados_shutdown(c); return -ENOMEM; }
    v->cluster = c;
    *out = v;
    return 0;
}

void vireo_rados_shutdown(vireo_rados *v) {
    if (!v) return;
    rados_shutdown(v->cluster);
    free(v);
}

uint64_t vireo_rados_instance_id(vireo_rados *v) { return rados_get_instance_id(v->cluster); }

int vireo_rbd_open(vireo_rados *v, const char *pool, const char *ns, const char *image,
                   const char *snapshot, int read_only, vireo_rbd_image **out, const char **failed) {
    vireo_rbd_image *m = calloc(1, sizeof *m);
    if (!m) { *failed = "calloc"; return -ENOMEM; }
    int r = rados_ioctx_create(v->cluster, pool, &m->io);
    if (r < 0) { *failed = "rados_ioctx_create"; free(m); return r; }
    rados_ioctx_set_namespace(m->io, ns ? ns : "");
    if (snapshot || read_only) {
        r = rbd_open_read_only(m->io, image, &m->image, snapshot);
        if (r < 0) *failed = "rbd_open_read_only";
    } else {
        r = rbd_open(m->io, image, &m->image, NULL);
        if (r < 0) *failed = "rbd_open";
    }
    if (r < 0) { rados_ioctx_destroy(m->io); free(m); return r; }
    m->update_fd = -1;
    *out = m;
    return 0;
}

void vireo_rbd_close(vireo_rbd_image *m) {
    if (!m) return;
    if (m->watching) rbd_update_unwatch(m->image, m->watch);
    rbd_close(m->image);
    rados_ioctx_destroy(m->io);
    free(m);
}

int vireo_rbd_size(vireo_rbd_image *m, uint64_t *size) { return rbd_get_size(m->image, size); }

int vireo_rbd_has_exclusive_lock(vireo_rbd_image *m) {
    uint64_t f = 0;
    int r = rbd_get_features(m->image, &f);
    return r < 0 ? r : (f & RBD_FEATURE_EXCLUSIVE_LOCK) != 0;
}

int vireo_rbd_set_notification(vireo_rbd_image *m, int fd) {
    return rbd_set_image_notification(m->image, fd, EVENT_TYPE_EVENTFD);
}

static void updated(void *arg) {
    vireo_rbd_image *m = arg;
    uint64_t one = 1;
    atomic_store(&m->updated, 1);
    // A full eventfd counter is still readable: nothing is lost by a failed write.
    ssize_t n = write(m->update_fd, &one, sizeof one);
    (void)n;
}

int vireo_rbd_watch_updates(vireo_rbd_image *m, int fd) {
    if (m->watching) return -EBUSY;
    m->update_fd = fd;
    int r = rbd_update_watch(m->image, &m->watch, updated, m);
    if (r == 0) m->watching = 1;
    return r;
}

int vireo_rbd_take_updated(vireo_rbd_image *m) { return atomic_exchange(&m->updated, 0); }

// Each operation: a completion carrying the tag, then the call; a refused call
// releases its completion (librbd took nothing).
#define AIO(call)                                                           \
    rbd_completion_t c;                                                     \
    int r = rbd_aio_create_completion((void *)(uintptr_t)tag, NULL, &c);    \
    if (r < 0) return r;                                                    \
    r = (call);                                                             \
    if (r < 0) rbd_aio_release(c);                                          \
    return r < 0 ? r : 0;

int vireo_rbd_aio_read(vireo_rbd_image *m, void *buf, size_t len, uint64_t off, uint64_t tag) {
    AIO(rbd_aio_read(m->image, off, len, buf, c))
}
int vireo_rbd_aio_write(vireo_rbd_image *m, const void *buf, size_t len, uint64_t off, uint64_t tag) {
    AIO(rbd_aio_write(m->image, off, len, buf, c))
}
int vireo_rbd_aio_flush(vireo_rbd_image *m, uint64_t tag) { AIO(rbd_aio_flush(m->image, c)) }
int vireo_rbd_aio_discard(vireo_rbd_image *m, uint64_t off, uint64_t len, uint64_t tag) {
    AIO(rbd_aio_discard(m->image, off, len, c))
}
int vireo_rbd_aio_write_zeroes(vireo_rbd_image *m, uint64_t off, uint64_t len, uint64_t tag) {
    AIO(rbd_aio_write_zeroes(m->image, off, len, c, 0, 0))
}

int vireo_rbd_poll(vireo_rbd_image *m, uint64_t *tags, int64_t *results, int max) {
    rbd_completion_t done[64];
    if (max > 64) max = 64;
    int n = rbd_poll_io_events(m->image, done, max);
    if (n < 0) return n;
    for (int i = 0; i < n; i++) {
        tags[i] = (uint64_t)(uintptr_t)rbd_aio_get_arg(done[i]);
        results[i] = rbd_aio_get_return_value(done[i]);
        rbd_aio_release(done[i]);
    }
    return n;
}

// A small C surface over librados and librbd (Debian's librbd-dev): the
// cluster connection and the image are opaque structs owned by Swift types in
// VireoRBD, so no rados or rbd type leaves this module. Every call returns 0
// (or a count) or a negative errno, as librbd does.
#ifndef CVIREORBD_H
#define CVIREORBD_H
#include <stdint.h>
#include <stddef.h>

typedef struct vireo_rados vireo_rados;
typedef struct vireo_rbd_image vireo_rbd_image;

/// rados_create2 + rados_conf_read_file + rados_conf_set for each of `count`
/// key/value pairs + rados_connect. `conf` NULL: the default search path; `keyring`
/// NULL: what the configuration names. On failure returns a negative errno and
/// names the failing call in `failed` (a static string).
int vireo_rados_connect(const char *conf, const char *client_name, const char *keyring,
                        const char *const *keys, const char *const *values, int count,
                        vireo_rados **out, const char **failed);
/// rados_shutdown, then frees. Every image opened on it must be closed first.
void vireo_rados_shutdown(vireo_rados *cluster);
/// rados_get_instance_id: this client's id (how the cluster names it: client.<gid>).
uint64_t vireo_rados_instance_id(vireo_rados *cluster);

/// rados_ioctx_create(pool) + rados_ioctx_set_namespace + rbd_open (or
/// rbd_open_read_only with `snapshot` set, or when `read_only`).
int vireo_rbd_open(vireo_rados *cluster, const char *pool, const char *ns, const char *image,
                   const char *snapshot, int read_only, vireo_rbd_image **out, const char **failed);
/// rbd_update_unwatch (if watching), rbd_close, rados_ioctx_destroy, then frees.
/// No asynchronous operation may be in flight.
void vireo_rbd_close(vireo_rbd_image *image);
/// rbd_get_size.
int vireo_rbd_size(vireo_rbd_image *image, uint64_t *size);
/// Whether the image has the exclusive-lock feature: 1 yes, 0 no, or a negative errno.
int vireo_rbd_has_exclusive_lock(vireo_rbd_image *image);
/// rbd_set_image_notification(EVENT_TYPE_EVENTFD): librbd writes to `eventfd` when an
/// operation completes and queues it for vireo_rbd_poll.
int vireo_rbd_set_notification(vireo_rbd_image *image, int eventfd);
/// rbd_update_watch: librbd writes 1 to `eventfd` when the image's header changes
/// (a resize, a snapshot). Once per image.
int vireo_rbd_watch_updates(vireo_rbd_image *image, int eventfd);
/// 1 when the header changed since the last call (and clears it), else 0.
int vireo_rbd_take_updated(vireo_rbd_image *image);

/// Asynchronous operations. `tag` comes back from vireo_rbd_poll with the result.
/// READ/WRITE: `buf` must stay valid until then (librbd reads or writes it in
/// place: the target sets rbd_disable_zero_copy_writes=false).
int vireo_rbd_aio_read(vireo_rbd_image *image, void *buf, size_t len, uint64_t offset, uint64_t tag);
int vireo_rbd_aio_write(vireo_rbd_image *image, const void *buf, size_t len, uint64_t offset, uint64_t tag);
int vireo_rbd_aio_flush(vireo_rbd_image *image, uint64_t tag);
int vireo_rbd_aio_discard(vireo_rbd_image *image, uint64_t offset, uint64_t len, uint64_t tag);
int vireo_rbd_aio_write_zeroes(vireo_rbd_image *image, uint64_t offset, uint64_t len, uint64_t tag);

/// rbd_poll_io_events: up to `max` (≤ 64) completed operations, their tags in `tags`
/// and results (bytes, or a negative errno) in `results`; each completion is released.
/// Returns the count, or a negative errno.
int vireo_rbd_poll(vireo_rbd_image *image, uint64_t *tags, int64_t *results, int max);
#endif

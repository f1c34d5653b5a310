// C module for Vireo's verbs layer: the rdma-core headers plus shims for what
// the Swift importer cannot see (function-like macros and inline helpers that
// take the address of macros).
#ifndef CVIREOVERBS_H
#define CVIREOVERBS_H

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>
#include <rdma/rdma_verbs.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <netdb.h>

/// ibv_query_port is a macro over ___ibv_query_port.
int vireo_ibv_query_port(struct ibv_context *ctx, uint8_t port, struct ibv_port_attr *attr);

/// ibv_reg_mr is a macro (it picks __ibv_reg_mr or ibv_reg_mr_iova2 by flags).
struct ibv_mr *vireo_ibv_reg_mr(struct ibv_pd *pd, void *addr, size_t length, int access);

/// Registers [addr, addr+length) so that remote peers name it by `iova`
/// (e.g. the guest-physical address of a guest memory region).
struct ibv_mr *vireo_ibv_reg_mr_iova(struct ibv_pd *pd, void *addr, size_t length, uint64_t iova, int access);

/// ibv_post_send / ibv_post_recv / ibv_poll_cq / ibv_req_notify_cq are static
/// inline in verbs.h; wrapped so every caller goes through one symbol.
int vireo_ibv_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad);
/// ibv_alloc_mw / ibv_dealloc_mw are static inline: one symbol each for Swift.
struct ibv_mw *vireo_ibv_alloc_mw(struct ibv_pd *pd, enum ibv_mw_type type);
int vireo_ibv_dealloc_mw(struct ibv_mw *mw);
int vireo_ibv_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad);
int vireo_ibv_post_srq_recv(struct ibv_srq *srq, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad);
int vireo_ibv_poll_cq(struct ibv_cq *cq, int num, struct ibv_wc *wc);
int vireo_ibv_req_notify_cq(struct ibv_cq *cq, int solicited_only);

/// Fills a sockaddr_storage from a numeric or DNS host and a port.
/// Returns 0 or a getaddrinfo error code (EAI_*).
int vireo_resolve_sockaddr(const char *host, uint16_t port, struct sockaddr_storage *out, socklen_t *len);

/// Formats a sockaddr as "host:port" into buf; returns buf.
const char *vireo_format_sockaddr(const struct sockaddr *sa, char *buf, size_t len);

/// The port of an IPv4/IPv6 sockaddr in host order (0 otherwise).
uint16_t vireo_sockaddr_port(const struct sockaddr *sa);

#endif

#include "CVireoVerbs.h"
#include <stdio.h>
#include <string.h>

int vireo_ibv_query_port(struct ibv_context *ctx, uint8_t port, struct ibv_port_attr *attr) {
    return ibv_query_port(ctx, port, attr);
}

struct ibv_mr *vireo_ibv_reg_mr(struct ibv_pd *pd, void *addr, size_t length, int access) {
    return ibv_reg_mr(pd, addr, length, access);
}

struct ibv_mr *vireo_ibv_reg_mr_iova(struct ibv_pd *pd, void *addr, size_t length, uint64_t iova, int access) {
    return ibv_reg_mr_iova(pd, addr, length, iova, access);
}

int vireo_ibv_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad) {
    return ibv_post_send(qp, wr, bad);
}

struct ibv_mw *vireo_ibv_alloc_mw(struct ibv_pd *pd, enum ibv_mw_type type) {
    return ibv_alloc_mw(pd, type);
}

int vireo_ibv_dealloc_mw(struct ibv_mw *mw) {
    return ibv_dealloc_mw(mw);
}

int vireo_ibv_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad) {
    return ibv_post_recv(qp, wr, bad);
}

int vireo_ibv_post_srq_recv(struct ibv_srq *srq, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad) {
    return ibv_post_srq_recv(srq, wr, bad);
}

int vireo_ibv_poll_cq(struct ibv_cq *cq, int num, struct ibv_wc *wc) {
    return ibv_poll_cq(cq, num, wc);
}

int vireo_ibv_req_notify_cq(struct ibv_cq *cq, int solicited_only) {
    return ibv_req_notify_cq(cq, solicited_only);
}

int vireo_resolve_sockaddr(const char *host, uint16_t port, struct sockaddr_storage *out, socklen_t *len) {
    struct addrinfo hints, *res = NULL;
    char service[8];
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (host ? 0 : AI_PASSIVE);
    snprintf(service, sizeof service, "%u", (unsigned)port);
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0) return rc;
    memset(out, 0, sizeof *out);
    memcpy(out, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

const char *vireo_format_sockaddr(const struct sockaddr *sa, char *buf, size_t len) {
    char host[INET6_ADDRSTRLEN] = "?";
    uint16_t port = vireo_sockaddr_port(sa);
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, host, sizeof host);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, host, sizeof host);
    if (sa->sa_family == AF_INET6) snprintf(buf, len, "[%s]:%u", host, (unsigned)port);
    else snprintf(buf, len, "%s:%u", host, (unsigned)port);
    return buf;
}

uint16_t vireo_sockaddr_port(const struct sockaddr *sa) {
    if (sa->sa_family == AF_INET) return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}

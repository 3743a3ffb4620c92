/* open_subflow: connect over the first path, open a subflow on the second interface with
 * the draft's MPTCP_OPEN_SUB_TUPLE, list the subflows, read the new one's tuple back, then
 * exchange data both ways. Exits non-zero on any failure.
 *
 * usage: open_subflow [CONFIG [SERVER1 [LOCAL2 [SERVER2 [PORT [BYTES]]]]]] */
#define _POSIX_C_SOURCE 200809L
#include "util.h"

int main(int argc, char **argv)
{
    struct args a;
    struct xfer x = {0, 0, 0, 0};
    unsigned char buf[MPTCP_SUB_TUPLE_LEN_IN];
    struct mptcp_sub_tuple *t = (struct mptcp_sub_tuple *)buf;
    struct sockaddr_in l, r, want_l = sin_of("0.0.0.0", 0), want_r;
    struct mptcp_sub_ids *ids;
    socklen_t len;
    int fd, id, flags;
    char ls[INET_ADDRSTRLEN], rs[INET_ADDRSTRLEN];

    parse_args(argc, argv, &a, "tun0=198.18.1.2,tun1=198.18.2.2");
    if (mptun_init(a.config) < 0)
        die("mptun_init");
    fd = connect_mptcp(&a);

    id = open_established(fd, a.local2, a.server2, a.port, 0);

    ids = get_sub_ids(fd);
    print_sub_ids(ids);
    if (ids->sub_count != 2)
        fail("expected two subflows");
    free(ids);
    flags = sub_flags(fd, id);
    if (!(flags & MPTCP_SUB_SLAVE_SK) || (flags & MPTCP_SUB_LOW_PRIO))
        fail("the new subflow's flags");

    /* the tuple of the new subflow: a short buffer reports the size needed */
    memset(buf, 0, sizeof buf);
    t->id = (uint8_t)id;
    len = 1;
    if (mptun_getsockopt(fd, IPPROTO_TCP, MPTCP_GET_SUB_TUPLE, buf, &len) == 0 || errno != EINVAL
        || len != MPTCP_SUB_TUPLE_LEN_IN)
        fail("a short MPTCP_GET_SUB_TUPLE buffer did not report the size needed");
    t->id = (uint8_t)id;
    len = sizeof buf;
    if (mptun_getsockopt(fd, IPPROTO_TCP, MPTCP_GET_SUB_TUPLE, buf, &len) < 0)
        die("MPTCP_GET_SUB_TUPLE");
    if (len != MPTCP_SUB_TUPLE_LEN_IN || t->id != id || t->prio != 0)
        fail("MPTCP_GET_SUB_TUPLE result");
    memcpy(&l, t->addrs, sizeof l);
    memcpy(&r, t->addrs + sizeof l, sizeof r);
    inet_ntop(AF_INET, &l.sin_addr, ls, sizeof ls);
    inet_ntop(AF_INET, &r.sin_addr, rs, sizeof rs);
    printf("tuple id=%d local=%s:%d remote=%s:%d\n", id, ls, ntohs(l.sin_port), rs,
           ntohs(r.sin_port));
    want_l = sin_of(a.local2, 0);
    want_r = sin_of(a.server2, a.port);
    if (l.sin_family != AF_INET || l.sin_addr.s_addr != want_l.sin_addr.s_addr || l.sin_port == 0)
        fail("the subflow's local address is not the one asked for");
    if (r.sin_addr.s_addr != want_r.sin_addr.s_addr || r.sin_port != want_r.sin_port)
        fail("the subflow's remote address is not the one asked for");

    pump(fd, &x, a.bytes, a.bytes, 1);
    check_received(&x, a.bytes);

    /* connection-level counters, as Linux's MPTCP_INFO */
    {
        struct mptcp_info mi;
        socklen_t mlen = sizeof mi;
        if (mptun_getsockopt(fd, SOL_MPTCP, MPTCP_INFO, &mi, &mlen) < 0)
            die("MPTCP_INFO");
        printf("mptcp_info subflows=%u subflows_total=%u token=%08x bytes_sent=%llu "
               "bytes_acked=%llu bytes_received=%llu flags=%u\n",
               mi.mptcpi_subflows, mi.mptcpi_subflows_total, mi.mptcpi_token,
               (unsigned long long)mi.mptcpi_bytes_sent,
               (unsigned long long)mi.mptcpi_bytes_acked,
               (unsigned long long)mi.mptcpi_bytes_received, mi.mptcpi_flags);
        if (mi.mptcpi_flags & MPTCP_INFO_FLAG_FALLBACK)
            fail("MPTCP_INFO says the connection fell back");
        if (mi.mptcpi_bytes_acked < a.bytes || mi.mptcpi_bytes_sent < a.bytes)
            fail("MPTCP_INFO: fewer bytes sent/acknowledged than the transfer");
        if (mi.mptcpi_bytes_received != a.bytes)
            fail("MPTCP_INFO: bytes received differ from the transfer");
    }
    return close_and_finish(fd);
}

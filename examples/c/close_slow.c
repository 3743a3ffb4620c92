/* close_slow: open a second subflow, read every subflow's statistics (MPTUN_TCP_INFO), close the one with the
 * longest round-trip time and keep transferring on the rest. Exits non-zero on any failure.
 *
 * usage: close_slow [CONFIG [SERVER1 [LOCAL2 [SERVER2 [PORT [BYTES]]]]]]
 * The default config limits packets sent on tun1 to 10 Mbit/s, so the tun1 subflow queues and is slow. */
#define _POSIX_C_SOURCE 200809L
#include "util.h"

int main(int argc, char **argv)
{
    struct args a;
    struct xfer x = {0, 0, 0, 0};
    struct mptcp_sub_ids *ids;
    struct mptun_tcp_info ti, slow_ti;
    int fd, id, i, slow = -1, nodelay = -1;
    uint32_t slow_rtt = 0;
    unsigned char buf[MPTCP_SUB_TUPLE_LEN_IN];
    struct mptcp_sub_tuple *t = (struct mptcp_sub_tuple *)buf;
    struct sockaddr_in l;
    socklen_t len;
    char ls[INET_ADDRSTRLEN];

    parse_args(argc, argv, &a, "tun0=198.18.1.2,tun1=198.18.2.2,impair:tun1=rate=10mbit");
    if (mptun_init(a.config) < 0)
        die("mptun_init");
    fd = connect_mptcp(&a);
    id = open_established(fd, a.local2, a.server2, a.port, 0);

    /* per-subflow options work on every subflow */
    if (sub_set_int(fd, id, IPPROTO_TCP, TCP_NODELAY, 1) < 0)
        die("MPTCP_SUB_SETSOCKOPT TCP_NODELAY");
    if (sub_get_int(fd, id, IPPROTO_TCP, TCP_NODELAY, &nodelay) < 0 || nodelay != 1)
        fail("TCP_NODELAY did not read back as set");

    /* first half of the transfer, so every subflow has RTT samples */
    pump(fd, &x, a.bytes / 2, a.bytes, 0);

    ids = get_sub_ids(fd);
    print_sub_ids(ids);
    if (ids->sub_count < 2)
        fail("expected two subflows");
    for (i = 0; i < ids->sub_count; i++) {
        int sid = ids->sub_status[i].id;
        if (sub_tcp_info(fd, sid, &ti) < 0)
            die("MPTCP_SUB_GETSOCKOPT MPTUN_TCP_INFO");
        printf("  id=%d state=%d rtt=%uus rttvar=%uus cwnd=%u mss=%u data_sent=%llu "
               "data_received=%llu\n",
               sid, ti.tcpi_state, ti.tcpi_rtt, ti.tcpi_rttvar, ti.tcpi_snd_cwnd, ti.tcpi_snd_mss,
               (unsigned long long)ti.tcpi_data_sent, (unsigned long long)ti.tcpi_data_received);
        if (ti.tcpi_state != 1 || !ti.tcpi_rtt_valid)
            fail("MPTUN_TCP_INFO: subflow not established or no RTT sample");
        if (slow < 0 || ti.tcpi_rtt > slow_rtt) {
            slow = sid;
            slow_rtt = ti.tcpi_rtt;
            slow_ti = ti;
        }
    }
    free(ids);
    (void)slow_ti;

    /* which path is it? */
    memset(buf, 0, sizeof buf);
    t->id = (uint8_t)slow;
    len = sizeof buf;
    if (mptun_getsockopt(fd, IPPROTO_TCP, MPTCP_GET_SUB_TUPLE, buf, &len) < 0)
        die("MPTCP_GET_SUB_TUPLE");
    memcpy(&l, t->addrs, sizeof l);
    inet_ntop(AF_INET, &l.sin_addr, ls, sizeof ls);

    if (close_subflow(fd, slow, SHUT_RDWR) < 0)
        die("MPTCP_CLOSE_SUB_ID");
    printf("closed id=%d local=%s rtt=%uus\n", slow, ls, slow_rtt);
    if (sub_flags(fd, slow) >= 0)
        fail("the closed subflow is still listed");
    if (close_subflow(fd, slow, SHUT_RDWR) == 0 || errno != EINVAL)
        fail("closing it twice did not fail with EINVAL");

    /* the rest of the transfer goes over the remaining subflow(s) */
    pump(fd, &x, a.bytes, a.bytes, 1);
    check_received(&x, a.bytes);
    return close_and_finish(fd);
}

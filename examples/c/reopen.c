/* reopen: open a subflow from the second address, close it mid-transfer (gracefully, or with
 * MPTUN_SHUT_ABORT as when a NAT lost its mapping: set REOPEN_ABORT=1), and open a
 * replacement from the same address on a new source port. Exits non-zero on any failure.
 *
 * usage: reopen [CONFIG [SERVER1 [LOCAL2 [SERVER2 [PORT [BYTES]]]]]] */
#define _POSIX_C_SOURCE 200809L
#include "util.h"

/* The subflow's local port, from MPTCP_GET_SUB_TUPLE. */
static int local_port(int fd, int id)
{
    unsigned char buf[MPTCP_SUB_TUPLE_LEN_IN];
    struct mptcp_sub_tuple *t = (struct mptcp_sub_tuple *)buf;
    struct sockaddr_in l;
    socklen_t len = sizeof buf;
    memset(buf, 0, sizeof buf);
    t->id = (uint8_t)id;
    if (mptun_getsockopt(fd, IPPROTO_TCP, MPTCP_GET_SUB_TUPLE, buf, &len) < 0)
        die("MPTCP_GET_SUB_TUPLE");
    memcpy(&l, t->addrs, sizeof l);
    return ntohs(l.sin_port);
}

int main(int argc, char **argv)
{
    struct args a;
    struct xfer x = {0, 0, 0, 0};
    const char *abort_env = getenv("REOPEN_ABORT");
    int how = (abort_env && abort_env[0] == '1') ? MPTUN_SHUT_ABORT : SHUT_RDWR;
    int fd, first, second, p1, p2;

    parse_args(argc, argv, &a, "tun0=198.18.1.2,tun1=198.18.2.2");
    if (mptun_init(a.config) < 0)
        die("mptun_init");
    fd = connect_mptcp(&a);
    first = open_established(fd, a.local2, a.server2, a.port, 0);
    p1 = local_port(fd, first);
    printf("opened id=%d port=%d\n", first, p1);

    pump(fd, &x, a.bytes / 2, a.bytes, 0);
    if (close_subflow(fd, first, how) < 0)
        die("MPTCP_CLOSE_SUB_ID");
    second = open_established_from(fd, a.local2, p1 + 1, a.server2, a.port, 0);
    p2 = local_port(fd, second);
    printf("reopened id=%d port=%d how=%s\n", second, p2,
           how == MPTUN_SHUT_ABORT ? "abort" : "graceful");
    if (second == first)
        fail("the new subflow reused the closed one's id");
    if (p2 == p1)
        fail("the new subflow has the old source port");

    pump(fd, &x, a.bytes, a.bytes, 1);
    check_received(&x, a.bytes);
    return close_and_finish(fd);
}

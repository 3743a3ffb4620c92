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

/* Opens LOCAL:LPORT -> REMOTE:PORT (LPORT 0: any) and waits until it is established, trying
 * the next ports if the peer refuses; returns the id. */
static int open_on_port(int fd, const char *local, const char *remote, int port, int lport)
{
    int attempt;
    for (attempt = 0; attempt < 3; attempt++) {
        unsigned char buf[MPTCP_SUB_TUPLE_LEN_IN];
        struct mptcp_sub_tuple *t = (struct mptcp_sub_tuple *)buf;
        struct sockaddr_in l = sin_of(local, lport ? lport + attempt : 0),
                           r = sin_of(remote, port);
        socklen_t len = sizeof buf;
        memset(buf, 0, sizeof buf);
        memcpy(t->addrs, &l, sizeof l);
        memcpy(t->addrs + sizeof l, &r, sizeof r);
        if (mptun_getsockopt(fd, IPPROTO_TCP, MPTCP_OPEN_SUB_TUPLE, buf, &len) < 0)
            die("MPTCP_OPEN_SUB_TUPLE");
        if (wait_established(fd, t->id) == 0)
            return t->id;
        fprintf(stderr, "join attempt %d (id %d) failed\n", attempt + 1, t->id);
        sleep_ms(200);
    }
    fail("the subflow did not become established");
    return -1;
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
    first = open_on_port(fd, a.local2, a.server2, a.port, 0);
    p1 = local_port(fd, first);
    printf("opened id=%d port=%d\n", first, p1);

    pump(fd, &x, a.bytes / 2, a.bytes, 0);
    if (close_subflow(fd, first, how) < 0)
        die("MPTCP_CLOSE_SUB_ID");
    second = open_on_port(fd, a.local2, a.server2, a.port, p1 + 1);
    p2 = local_port(fd, second);
    printf("reopened id=%d port=%d how=%s\n", second, p2,
           how == MPTUN_SHUT_ABORT ? "abort" : "graceful");
    if (second == first)
        fail("the new subflow reused the closed one's id");
    if (p2 == p1)
        fail("the new subflow has the old source port");

    pump(fd, &x, a.bytes, a.bytes, 1);
    printf("sent=%llu received=%llu\n", (unsigned long long)x.sent,
           (unsigned long long)x.received);
    if (x.received != a.bytes)
        fail("did not receive everything the peer sent");
    if (mptun_close(fd) < 0)
        die("mptun_close");
    if (mptun_fini() < 0)
        die("mptun_fini");
    printf("ok\n");
    return 0;
}

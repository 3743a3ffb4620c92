/*
 * manual_pair.c - two manually driven mptun instances wired back to back in one process,
 * on a fake clock: no thread, no TUN device, no root.
 *
 * The client (198.19.0.1, 198.19.1.1) connects to the server (198.19.0.2, 198.19.1.2) with MPTCP,
 * opens a second subflow with the draft's MPTCP_OPEN_SUB_TUPLE, sends 1 MiB while the
 * server sends 256 KiB back, both check every byte, then they close. Every packet one
 * instance sends arrives at the other 5 ms later on the fake clock; when nothing is due the
 * clock jumps to the next packet arrival or timer (fakenet.h). Exit 0 and one "ok ..." line
 * on success.
 *
 *   cc -std=c99 -Iinclude examples/c/manual_pair.c -Ltarget/debug -lmptun \
 *      -Wl,-rpath,$PWD/target/debug -o manual_pair && ./manual_pair
 */
#include "mptun.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define C2S_BYTES (1024u * 1024u)
#define S2C_BYTES (256u * 1024u)

#include "fakenet.h"

/* Number of fully established subflows of fd, from the draft's MPTCP_GET_SUB_IDS. */
static int established_subflows(int fd) {
    uint32_t buf[1 + 16]; /* aligned storage: count + pad, then 16 entries of 4 bytes */
    struct mptcp_sub_ids *ids = (struct mptcp_sub_ids *)buf;
    socklen_t len = sizeof buf;
    int i, n = 0;
    if (mptun_getsockopt(fd, IPPROTO_TCP, MPTCP_GET_SUB_IDS, buf, &len) != 0)
        die("MPTCP_GET_SUB_IDS");
    for (i = 0; i < ids->sub_count; i++)
        if (ids->sub_status[i].fully_established)
            n++;
    return n;
}

static unsigned char pattern(uint32_t i, unsigned seed) {
    return (unsigned char)((i * 31u + seed) ^ (i >> 11));
}

int main(void) {
    int lfd, cfd, sfd = -1, rounds;
    struct sockaddr_in a;
    struct pollfd p;
    uint32_t c_sent = 0, s_got = 0, s_sent = 0, c_got = 0;
    int c_eof = 0, s_eof = 0, shut = 0;
    unsigned char buf[16384];
    unsigned char tuple[100]; /* the draft's manual passes 100 bytes */
    struct sockaddr_in loc, rem;
    uint8_t id2;
    socklen_t len;
    struct mptcp_info info;

    inst[0] = mptun_instance_new("c0=198.19.0.1,c1=198.19.1.1,seed=1");
    inst[1] = mptun_instance_new("s0=198.19.0.2,s1=198.19.1.2,seed=2");
    if (!inst[0] || !inst[1])
        die("mptun_instance_new");
    if (mptun_instance_new("c0=198.19.0.1,impair:c0=delay=1ms") || errno != EINVAL)
        die("impair accepted by an instance");

    lfd = mptun_instance_socket(inst[1], AF_INET, SOCK_STREAM | SOCK_NONBLOCK, IPPROTO_MPTCP);
    a = sin_of("0.0.0.0", 5201);
    if (lfd < 0 || mptun_bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        mptun_listen(lfd, 8) != 0)
        die("server socket/bind/listen");
    cfd = mptun_instance_socket(inst[0], AF_INET, SOCK_STREAM | SOCK_NONBLOCK, IPPROTO_MPTCP);
    a = sin_of("198.19.0.2", 5201);
    if (cfd < 0)
        die("client socket");
    if (mptun_connect(cfd, (struct sockaddr *)&a, sizeof a) == 0 || errno != EINPROGRESS)
        die("non-blocking connect: EINPROGRESS expected");
    /* poll on an idle instance with timeout 0 returns at once: the clock is the caller's */
    p.fd = lfd;
    p.events = POLLIN;
    if (mptun_poll(&p, 1, 0) != 0)
        die("poll before any packet");

    for (rounds = 0; sfd < 0; rounds++) {
        if (rounds > 1000)
            die("no connection after 1000 rounds");
        tick(1000);
        sfd = mptun_accept(lfd, NULL, NULL);
        if (sfd < 0 && errno != EAGAIN)
            die("accept");
    }
    p.fd = cfd;
    p.events = POLLOUT;
    if (mptun_poll(&p, 1, 0) != 1 || !(p.revents & POLLOUT))
        die("client not writable once accepted");
    if (established_subflows(cfd) != 1)
        die("one subflow expected after the handshake");

    /* a second subflow, between the second addresses, with the draft's OPEN_SUB_TUPLE */
    memset(tuple, 0, sizeof tuple);
    loc = sin_of("198.19.1.1", 0);
    rem = sin_of("198.19.1.2", 5201);
    memcpy(tuple + 2, &loc, sizeof loc);
    memcpy(tuple + 2 + sizeof loc, &rem, sizeof rem);
    len = sizeof tuple;
    if (mptun_getsockopt(cfd, IPPROTO_TCP, MPTCP_OPEN_SUB_TUPLE, tuple, &len) != 0)
        die("MPTCP_OPEN_SUB_TUPLE");
    id2 = tuple[0];
    for (rounds = 0; established_subflows(cfd) < 2; rounds++) {
        if (rounds > 1000)
            die("join not established");
        tick(1000);
    }

    /* both directions at once, non-blocking */
    for (rounds = 0; !(c_eof && s_eof); rounds++) {
        ssize_t n;
        uint32_t i;
        if (rounds > 200000)
            die("transfer did not finish");
        while (c_sent < C2S_BYTES) {
            uint32_t k = C2S_BYTES - c_sent < sizeof buf ? C2S_BYTES - c_sent : sizeof buf;
            for (i = 0; i < k; i++)
                buf[i] = pattern(c_sent + i, 1);
            n = mptun_send(cfd, buf, k, MSG_DONTWAIT);
            if (n < 0 && errno == EAGAIN)
                break;
            if (n < 0)
                die("client send");
            c_sent += (uint32_t)n;
        }
        while (s_sent < S2C_BYTES) {
            uint32_t k = S2C_BYTES - s_sent < sizeof buf ? S2C_BYTES - s_sent : sizeof buf;
            for (i = 0; i < k; i++)
                buf[i] = pattern(s_sent + i, 2);
            n = mptun_send(sfd, buf, k, MSG_DONTWAIT);
            if (n < 0 && errno == EAGAIN)
                break;
            if (n < 0)
                die("server send");
            s_sent += (uint32_t)n;
        }
        if (c_sent == C2S_BYTES && s_sent == S2C_BYTES && !shut) {
            if (mptun_shutdown(cfd, SHUT_WR) != 0 || mptun_shutdown(sfd, SHUT_WR) != 0)
                die("shutdown");
            shut = 1;
        }
        while (!s_eof && (n = mptun_recv(sfd, buf, sizeof buf, MSG_DONTWAIT)) >= 0) {
            if (n == 0) {
                s_eof = 1;
                break;
            }
            for (i = 0; i < (uint32_t)n; i++)
                if (buf[i] != pattern(s_got + i, 1))
                    die("server received a wrong byte");
            s_got += (uint32_t)n;
        }
        if (!s_eof && errno != EAGAIN)
            die("server recv");
        while (!c_eof && (n = mptun_recv(cfd, buf, sizeof buf, MSG_DONTWAIT)) >= 0) {
            if (n == 0) {
                c_eof = 1;
                break;
            }
            for (i = 0; i < (uint32_t)n; i++)
                if (buf[i] != pattern(c_got + i, 2))
                    die("client received a wrong byte");
            c_got += (uint32_t)n;
        }
        if (!c_eof && errno != EAGAIN)
            die("client recv");
        tick(1000);
    }
    if (s_got != C2S_BYTES || c_got != S2C_BYTES)
        die("byte counts differ");

    len = sizeof info;
    if (mptun_getsockopt(cfd, SOL_MPTCP, MPTCP_INFO, &info, &len) != 0)
        die("MPTCP_INFO");
    if (info.mptcpi_subflows != 1 || info.mptcpi_bytes_acked < C2S_BYTES)
        die("MPTCP_INFO: one additional subflow and every byte acknowledged expected");

    if (mptun_close(sfd) || mptun_close(cfd) || mptun_close(lfd))
        die("close");
    for (rounds = 0; rounds < 200; rounds++)
        tick(10000);
    printf("ok c2s=%u s2c=%u join_id=%u virtual_ms=%llu\n", s_got, c_got, (unsigned)id2,
           (unsigned long long)(now_us / 1000));
    if (mptun_instance_free(inst[0]) || mptun_instance_free(inst[1]))
        die("mptun_instance_free");
    fakenet_free();
    return 0;
}

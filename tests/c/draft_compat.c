/*
 * draft_compat.c - a program written against draft-hesmans-mptcp-socket's prototype
 * (names, members and calling conventions of its manual), with only the socket calls
 * renamed to mptun_*, run over two manually driven instances (examples/c/fakenet.h).
 * tests/capi_examples.rs compiles it with -std=c99 -pedantic -Werror and runs it.
 *
 * Checked: struct mptcp_sub_status's prototype bitfield members read the same bits as the
 * flag word (MPTCP_SUB_*); MPTCP_OPEN_SUB_TUPLE with the manual's optlen of 100 and the
 * family taken from the sockaddrs; MPTCP_CLOSE_SUB_ID with a zero-initialised struct where
 * only .id is set closes the subflow as the prototype did (abortively: the peer sees a
 * reset) and the data goes on over the other subflow.
 */
/* struct tcp_info of <netinet/tcp.h> is not in strict C99 (glibc shows it with
 * _DEFAULT_SOURCE, which gcc's default gnu mode sets) */
#define _DEFAULT_SOURCE 1
#include "mptun.h"
#include "fakenet.h"

#include <netinet/tcp.h>

/* the draft program's calls, renamed */
#define getsockopt mptun_getsockopt
#define send mptun_send
#define recv mptun_recv

#define CHECK(c)                                                                           \
    do {                                                                                   \
        if (!(c)) {                                                                        \
            fprintf(stderr, "draft_compat:%d: %s\n", __LINE__, #c);                       \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

/* ----- the draft program --------------------------------------------------------------- */

/* The manual's subflow listing: returns the count, fills ids/backup/slave. */
static int list_subflows(int fd, int *ids, int *fully, int *slave, int max) {
    unsigned int optlen = 42;
    int i;
    struct mptcp_sub_ids *sub_ids = malloc(optlen);
    CHECK(sub_ids != NULL);
    CHECK(getsockopt(fd, IPPROTO_TCP, MPTCP_GET_SUB_IDS, sub_ids, &optlen) == 0);
    for (i = 0; i < sub_ids->sub_count && i < max; i++) {
        struct mptcp_sub_status st = sub_ids->sub_status[i];
        ids[i] = st.id;
        fully[i] = st.fully_established;
        slave[i] = st.slave_sk;
        /* the prototype's members and mptun's flag word are the same bits */
        CHECK(st.slave_sk == !!(st.flags & MPTCP_SUB_SLAVE_SK));
        CHECK(st.fully_established == !!(st.flags & MPTCP_SUB_FULLY_ESTABLISHED));
        CHECK(st.attached == !!(st.flags & MPTCP_SUB_ATTACHED));
        CHECK(st.low_prio == !!(st.flags & MPTCP_SUB_LOW_PRIO));
        CHECK(st.pre_established == !!(st.flags & MPTCP_SUB_PRE_ESTABLISHED));
        CHECK(st.attached == 1);
    }
    i = sub_ids->sub_count;
    free(sub_ids);
    return i;
}

/* The manual's "open a subflow": a 100-byte buffer, family from the sockaddrs. */
static int open_subflow(int fd, const struct sockaddr_in *local, const struct sockaddr_in *remote) {
    unsigned int optlen = 100;
    int id;
    struct mptcp_sub_tuple *sub_tuple = malloc(optlen);
    CHECK(sub_tuple != NULL);
    memset(sub_tuple, 0, optlen);
    memcpy(&sub_tuple->addrs[0], local, sizeof *local);
    memcpy(&sub_tuple->addrs[sizeof *local], remote, sizeof *remote);
    if (getsockopt(fd, IPPROTO_TCP, MPTCP_OPEN_SUB_TUPLE, sub_tuple, &optlen) != 0) {
        free(sub_tuple);
        return -1;
    }
    id = sub_tuple->id;
    free(sub_tuple);
    return id;
}

/* The manual's "close a subflow": only the id is set. */
static int close_subflow(int fd, int id) {
    struct mptcp_close_sub_id close_id;
    unsigned int optlen = sizeof close_id;
    memset(&close_id, 0, sizeof close_id);
    close_id.id = (uint8_t)id;
    return getsockopt(fd, IPPROTO_TCP, MPTCP_CLOSE_SUB_ID, &close_id, &optlen);
}

/* ----- harness --------------------------------------------------------------------------- */

static int count_fully(int fd) {
    int ids[8], fully[8], slave[8], n, i, k = 0;
    n = list_subflows(fd, ids, fully, slave, 8);
    for (i = 0; i < n && i < 8; i++)
        k += fully[i];
    return k;
}

int main(void) {
    int lfd, cfd, sfd = -1, rounds, id2, n, i, ids[8], fully[8], slave[8];
    struct sockaddr_in a, loc, rem;
    struct mptcp_sub_status probe;
    unsigned char buf[4096];
    long got = 0, sent = 0;
    int saw_reset = 0;

    /* bit order of the prototype's bitfields on this compiler */
    memset(&probe, 0, sizeof probe);
    probe.fully_established = 1;
    CHECK(probe.flags == MPTCP_SUB_FULLY_ESTABLISHED);
    probe.flags = MPTCP_SUB_LOW_PRIO | MPTCP_SUB_SLAVE_SK;
    CHECK(probe.low_prio && probe.slave_sk && !probe.fully_established && !probe.attached);
    CHECK(sizeof probe == 4);

    inst[0] = mptun_instance_new("c0=198.19.0.1,c1=198.19.1.1,seed=3");
    inst[1] = mptun_instance_new("s0=198.19.0.2,s1=198.19.1.2,seed=4");
    CHECK(inst[0] && inst[1]);
    lfd = mptun_instance_socket(inst[1], AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    a = sin_of("0.0.0.0", 80);
    CHECK(mptun_bind(lfd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(mptun_listen(lfd, 4) == 0);
    cfd = mptun_instance_socket(inst[0], AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    a = sin_of("198.19.0.2", 80);
    CHECK(mptun_connect(cfd, (struct sockaddr *)&a, sizeof a) == -1 && errno == EINPROGRESS);
    for (rounds = 0; sfd < 0 && rounds < 1000; rounds++) {
        tick(1000);
        sfd = mptun_accept(lfd, NULL, NULL);
    }
    CHECK(sfd >= 0);

    n = list_subflows(cfd, ids, fully, slave, 8);
    CHECK(n == 1 && fully[0] == 1 && slave[0] == 0);

    loc = sin_of("198.19.1.1", 0);
    rem = sin_of("198.19.1.2", 80);
    id2 = open_subflow(cfd, &loc, &rem);
    CHECK(id2 > 0 && id2 != ids[0]);
    for (rounds = 0; count_fully(cfd) < 2 && rounds < 1000; rounds++)
        tick(1000);
    n = list_subflows(cfd, ids, fully, slave, 8);
    CHECK(n == 2);
    for (i = 0; i < n; i++)
        CHECK(fully[i] == 1 && slave[i] == (ids[i] == id2));

    /* the prototype's close: zero-initialised, only .id */
    CHECK(close_subflow(cfd, id2) == 0);
    n = list_subflows(cfd, ids, fully, slave, 8);
    CHECK(n == 1 && ids[0] != id2);
    CHECK(close_subflow(cfd, id2) == -1 && errno == EINVAL); /* no longer attached */

    /* data still flows, over the remaining subflow */
    for (rounds = 0; got < 100000 && rounds < 100000; rounds++) {
        ssize_t k;
        if (sent < 100000) {
            memset(buf, 'd', sizeof buf);
            k = send(cfd, buf, sizeof buf, MSG_DONTWAIT);
            CHECK(k > 0 || errno == EAGAIN);
            if (k > 0)
                sent += k;
        }
        while ((k = recv(sfd, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
            for (i = 0; i < k; i++)
                CHECK(buf[i] == 'd');
            got += k;
        }
        tick(1000);
    }
    CHECK(got >= 100000);

    /* TCP_INFO into Linux's struct tcp_info (<netinet/tcp.h>), through the draft's
     * MPTCP_SUB_GETSOCKOPT and on the connection: the fields a draft program reads */
    {
        struct tcp_info ti;
        struct mptcp_sub_getsockopt g;
        unsigned int tlen = sizeof ti;
        socklen_t glen = sizeof g, clen = sizeof ti;
        memset(&g, 0, sizeof g);
        memset(&ti, 0xff, sizeof ti);
        g.id = (uint8_t)ids[0];
        g.level = IPPROTO_TCP;
        g.optname = TCP_INFO;
        g.optval = (char *)&ti;
        g.optlen = &tlen;
        CHECK(getsockopt(cfd, IPPROTO_TCP, MPTCP_SUB_GETSOCKOPT, &g, &glen) == 0);
        CHECK(tlen == sizeof ti || tlen == MPTUN_LINUX_TCP_INFO_LEN);
        CHECK(ti.tcpi_state == 1 /* TCP_ESTABLISHED */);
        CHECK(ti.tcpi_snd_mss >= 536 && ti.tcpi_snd_mss <= 1460);
        CHECK(ti.tcpi_rtt > 0 && ti.tcpi_rto >= ti.tcpi_rtt);
        CHECK(ti.tcpi_snd_cwnd >= 1 && ti.tcpi_snd_cwnd < 100000); /* segments */
        memset(&ti, 0xff, sizeof ti);
        CHECK(getsockopt(cfd, IPPROTO_TCP, TCP_INFO, &ti, &clen) == 0);
        CHECK(ti.tcpi_state == 1 && ti.tcpi_snd_mss >= 536 && ti.tcpi_rtt > 0);
    }

    /* the peer saw that subflow reset (the prototype's close is abortive) */
    for (;;) {
        struct mptun_event ev[16];
        socklen_t len = sizeof ev;
        CHECK(mptun_getsockopt(sfd, SOL_MPTCP, MPTUN_GET_EVENTS, ev, &len) == 0);
        if (len == 0)
            break;
        for (i = 0; i < (int)(len / sizeof ev[0]); i++)
            if (ev[i].type == MPTUN_EVENT_SUB_CLOSED && ev[i].reason == MPTUN_REASON_RESET)
                saw_reset = 1;
    }
    CHECK(saw_reset);

    CHECK(mptun_close(cfd) == 0 && mptun_close(sfd) == 0 && mptun_close(lfd) == 0);
    CHECK(mptun_instance_free(inst[0]) == 0 && mptun_instance_free(inst[1]) == 0);
    fakenet_free();
    printf("ok draft program: join id %d opened with optlen 100, closed with only .id set\n",
           id2);
    return 0;
}

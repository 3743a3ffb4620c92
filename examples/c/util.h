/* Helpers shared by the C examples: argument defaults, subflow queries, a transfer loop.
 * Every helper prints what failed and returns -1 (or exits via die()). */
#ifndef MPTUN_EXAMPLE_UTIL_H
#define MPTUN_EXAMPLE_UTIL_H

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mptun.h"

/* Command line: CONFIG SERVER1 LOCAL2 SERVER2 PORT BYTES (each optional, in order). */
struct args {
    const char *config;
    const char *server1;
    const char *local2;
    const char *server2;
    int port;
    uint64_t bytes; /* sent each way: the peer sends as many */
};

static inline void parse_args(int argc, char **argv, struct args *a, const char *default_config)
{
    a->config = argc > 1 ? argv[1] : default_config;
    a->server1 = argc > 2 ? argv[2] : "198.18.1.1";
    a->local2 = argc > 3 ? argv[3] : "198.18.2.2";
    a->server2 = argc > 4 ? argv[4] : "198.18.2.1";
    a->port = argc > 5 ? atoi(argv[5]) : 5201;
    a->bytes = argc > 6 ? strtoull(argv[6], NULL, 10) : 1048576;
}

static inline void die(const char *what)
{
    fprintf(stderr, "FAILED: %s: %s\n", what, strerror(errno));
    exit(1);
}

static inline void fail(const char *what)
{
    fprintf(stderr, "FAILED: %s\n", what);
    exit(1);
}

static inline struct sockaddr_in sin_of(const char *ip, int port)
{
    struct sockaddr_in s;
    memset(&s, 0, sizeof s);
    s.sin_family = AF_INET;
    s.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, ip, &s.sin_addr) != 1)
        fail("bad IPv4 address");
    return s;
}

static inline void sleep_ms(long ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

/* Connects an MPTCP socket to SERVER1:PORT from the first device. */
static inline int connect_mptcp(const struct args *a)
{
    struct sockaddr_in srv = sin_of(a->server1, a->port);
    int fd = mptun_socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP);
    if (fd < 0)
        die("mptun_socket");
    if (mptun_connect(fd, (struct sockaddr *)&srv, sizeof srv) < 0)
        die("mptun_connect");
    return fd;
}

/* MPTCP_GET_SUB_IDS into a malloc'ed buffer sized by asking first (EINVAL + size). */
static inline struct mptcp_sub_ids *get_sub_ids(int fd)
{
    socklen_t len = 0;
    struct mptcp_sub_ids *ids;
    if (mptun_getsockopt(fd, IPPROTO_TCP, MPTCP_GET_SUB_IDS, NULL, &len) == 0 || errno != EINVAL)
        fail("MPTCP_GET_SUB_IDS with no buffer did not ask for a size");
    if (len < sizeof(struct mptcp_sub_ids))
        fail("MPTCP_GET_SUB_IDS reported a size smaller than its header");
    ids = malloc(len);
    if (ids == NULL)
        fail("malloc");
    if (mptun_getsockopt(fd, IPPROTO_TCP, MPTCP_GET_SUB_IDS, ids, &len) < 0)
        die("MPTCP_GET_SUB_IDS");
    if (len != sizeof(struct mptcp_sub_ids) + ids->sub_count * sizeof(struct mptcp_sub_status))
        fail("MPTCP_GET_SUB_IDS length does not match sub_count");
    return ids;
}

static inline void print_sub_ids(const struct mptcp_sub_ids *ids)
{
    int i;
    printf("subflows: %d\n", ids->sub_count);
    for (i = 0; i < ids->sub_count; i++) {
        uint16_t f = ids->sub_status[i].flags;
        printf("  id=%d%s%s%s%s\n", ids->sub_status[i].id,
               (f & MPTCP_SUB_SLAVE_SK) ? "" : " initial",
               (f & MPTCP_SUB_FULLY_ESTABLISHED) ? " established" : "",
               (f & MPTCP_SUB_PRE_ESTABLISHED) ? " pre-established" : "",
               (f & MPTCP_SUB_LOW_PRIO) ? " backup" : "");
    }
}

/* Flags of subflow id, or -1 if it is not listed. */
static inline int sub_flags(int fd, int id)
{
    struct mptcp_sub_ids *ids = get_sub_ids(fd);
    int i, r = -1;
    for (i = 0; i < ids->sub_count; i++)
        if (ids->sub_status[i].id == id)
            r = ids->sub_status[i].flags;
    free(ids);
    return r;
}

/* Opens a subflow LOCAL:LPORT -> REMOTE:PORT (LPORT 0: any); returns its id. */
static inline int open_subflow_from(int fd, const char *local, int lport, const char *remote,
                                    int port, int backup)
{
    unsigned char buf[MPTCP_SUB_TUPLE_LEN_IN];
    struct mptcp_sub_tuple *t = (struct mptcp_sub_tuple *)buf;
    struct sockaddr_in l = sin_of(local, lport), r = sin_of(remote, port);
    socklen_t len = sizeof buf;
    memset(buf, 0, sizeof buf);
    t->prio = (uint8_t)backup;
    memcpy(t->addrs, &l, sizeof l);
    memcpy(t->addrs + sizeof l, &r, sizeof r);
    if (mptun_getsockopt(fd, IPPROTO_TCP, MPTCP_OPEN_SUB_TUPLE, buf, &len) < 0)
        die("MPTCP_OPEN_SUB_TUPLE");
    return t->id;
}

/* Opens a subflow LOCAL:0 -> REMOTE:PORT; returns its id. */
static inline int open_subflow(int fd, const char *local, const char *remote, int port, int backup)
{
    return open_subflow_from(fd, local, 0, remote, port, backup);
}

/* Waits (at most 10 s) until subflow id is fully established: 0, or -1 if it closed (the
 * peer refused or reset the join) or the time ran out. */
static inline int wait_established(int fd, int id)
{
    int i;
    for (i = 0; i < 1000; i++) {
        int f = sub_flags(fd, id);
        if (f < 0)
            return -1;
        if (f & MPTCP_SUB_FULLY_ESTABLISHED)
            return 0;
        sleep_ms(10);
    }
    return -1;
}

/* Opens a subflow from LOCAL:LPORT (LPORT 0: any; else LPORT, LPORT+1... on retries) and
 * waits until it is established, trying up to three times (a peer may refuse a join, e.g.
 * Linux once its side of the connection is half-closed). */
static inline int open_established_from(int fd, const char *local, int lport,
                                        const char *remote, int port, int backup)
{
    int attempt;
    for (attempt = 1; attempt <= 3; attempt++) {
        int id = open_subflow_from(fd, local, lport ? lport + attempt - 1 : 0, remote, port,
                                   backup);
        printf("opened subflow id=%d\n", id);
        if (wait_established(fd, id) == 0)
            return id;
        fprintf(stderr, "join attempt %d (id %d) failed\n", attempt, id);
        sleep_ms(200);
    }
    fail("the new subflow did not become established");
    return -1;
}

static inline int open_established(int fd, const char *local, const char *remote, int port,
                                   int backup)
{
    return open_established_from(fd, local, 0, remote, port, backup);
}

/* Waits (at most 10 s) until the peer has sent something: the connection is then fully
 * established at both ends. */
static inline void wait_readable(int fd)
{
    struct pollfd p;
    p.fd = fd;
    p.events = POLLIN;
    p.revents = 0;
    if (mptun_poll(&p, 1, 10000) != 1 || !(p.revents & POLLIN))
        fail("the peer sent nothing within 10 s");
}

static inline int sub_tcp_info(int fd, int id, struct mptun_tcp_info *ti)
{
    struct mptcp_sub_getsockopt g;
    unsigned int len = sizeof *ti;
    socklen_t glen = sizeof g;
    memset(&g, 0, sizeof g);
    g.id = (uint8_t)id;
    g.level = SOL_MPTCP;
    g.optname = MPTUN_TCP_INFO;
    g.optval = (char *)ti;
    g.optlen = &len;
    if (mptun_getsockopt(fd, IPPROTO_TCP, MPTCP_SUB_GETSOCKOPT, &g, &glen) < 0)
        return -1;
    if (len != sizeof *ti)
        fail("MPTUN_TCP_INFO length");
    return 0;
}

static inline int sub_get_int(int fd, int id, int level, int optname, int *v)
{
    struct mptcp_sub_getsockopt g;
    unsigned int len = sizeof *v;
    socklen_t glen = sizeof g;
    memset(&g, 0, sizeof g);
    g.id = (uint8_t)id;
    g.level = level;
    g.optname = optname;
    g.optval = (char *)v;
    g.optlen = &len;
    return mptun_getsockopt(fd, IPPROTO_TCP, MPTCP_SUB_GETSOCKOPT, &g, &glen);
}

static inline int sub_set_int(int fd, int id, int level, int optname, int v)
{
    struct mptcp_sub_setsockopt s;
    memset(&s, 0, sizeof s);
    s.id = (uint8_t)id;
    s.level = level;
    s.optname = optname;
    s.optval = (char *)&v;
    s.optlen = sizeof v;
    return mptun_setsockopt(fd, IPPROTO_TCP, MPTCP_SUB_SETSOCKOPT, &s, sizeof s);
}

static inline int close_subflow(int fd, int id, int how)
{
    struct mptcp_close_sub_id c;
    socklen_t len = sizeof c;
    memset(&c, 0, sizeof c);
    c.id = (uint8_t)id;
    c.how = how;
    return mptun_getsockopt(fd, IPPROTO_TCP, MPTCP_CLOSE_SUB_ID, &c, &len);
}

/* Transfer state: bytes of the pattern (offset % 251) sent, bytes received, end of stream. */
struct xfer {
    uint64_t sent, received;
    int eof, shut;
};

/* Sends until `sent` reaches `upto` while receiving; with `finish`, then shuts down the
 * sending side and reads to the end of stream. Fails after 20 s without progress. */
static inline void pump(int fd, struct xfer *x, uint64_t upto, uint64_t total, int finish)
{
    static unsigned char out[65536], in[65536];
    int idle = 0;
    for (;;) {
        struct pollfd p;
        int n;
        if (x->sent >= total && !x->shut) {
            if (mptun_shutdown(fd, SHUT_WR) < 0)
                die("mptun_shutdown");
            x->shut = 1;
        }
        if (x->sent >= upto && (!finish || x->eof))
            return;
        p.fd = fd;
        p.events = (short)((x->eof ? 0 : POLLIN) | (x->sent < upto ? POLLOUT : 0));
        p.revents = 0;
        n = mptun_poll(&p, 1, 1000);
        if (n < 0)
            die("mptun_poll");
        if (n == 0) {
            if (++idle > 20)
                fail("no progress for 20 s");
            continue;
        }
        idle = 0;
        if (p.revents & POLLNVAL)
            fail("POLLNVAL");
        if (p.revents & POLLOUT) {
            uint64_t left = upto - x->sent;
            size_t k = left < sizeof out ? (size_t)left : sizeof out, i;
            ssize_t w;
            for (i = 0; i < k; i++)
                out[i] = (unsigned char)((x->sent + i) % 251);
            w = mptun_send(fd, out, k, MSG_DONTWAIT);
            if (w < 0 && errno != EAGAIN)
                die("mptun_send");
            if (w > 0)
                x->sent += (uint64_t)w;
        }
        if (p.revents & (POLLIN | POLLERR | POLLHUP)) {
            ssize_t r = mptun_recv(fd, in, sizeof in, MSG_DONTWAIT);
            if (r < 0 && errno != EAGAIN)
                die("mptun_recv");
            if (r == 0)
                x->eof = 1;
            if (r > 0)
                x->received += (uint64_t)r;
        }
    }
}

/* Prints the transfer's totals and fails unless all BYTES the peer sent arrived. */
static inline void check_received(const struct xfer *x, uint64_t bytes)
{
    printf("sent=%llu received=%llu\n", (unsigned long long)x->sent,
           (unsigned long long)x->received);
    if (x->received != bytes)
        fail("did not receive everything the peer sent");
}

/* Closes the connection, stops mptun and prints "ok". */
static inline int close_and_finish(int fd)
{
    if (mptun_close(fd) < 0)
        die("mptun_close");
    if (mptun_fini() < 0)
        die("mptun_fini");
    printf("ok\n");
    return 0;
}

#endif

/*
 * mptun.h - C ABI of mptun, a userspace Multipath TCP stack over TUN devices.
 *
 * The socket-like calls work on mptun descriptors: small non-negative integers of a
 * process-wide table, unrelated to kernel file descriptors (do not pass them to read(2),
 * close(2) or poll(2)). Every call returns -1 and sets errno on failure.
 *
 * The subflow operations of draft-hesmans-mptcp-socket are getsockopt/setsockopt calls at
 * level IPPROTO_TCP with the draft's option numbers and struct layouts, so a program written
 * against the draft ports by renaming the socket calls and relinking. See docs/CAPI.md.
 *
 * Pointer arguments must point to memory valid for the length given, as with the real
 * socket calls; NULL is reported as EFAULT. Output buffers are zeroed before being filled.
 *
 * C99. Link with -lmptun (and -lpthread -ldl -lm for the static library).
 */
#ifndef MPTUN_H
#define MPTUN_H

#include <stddef.h>
#include <stdint.h>
#include <poll.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ----- constants ---------------------------------------------------------------------- */

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262 /* mptun_socket protocol: MPTCP (as is 0) */
#endif
#ifndef SOL_MPTCP
#define SOL_MPTCP 284
#endif

/* The draft's operations, level IPPROTO_TCP. */
#define MPTCP_GET_SUB_IDS    66 /* getsockopt, struct mptcp_sub_ids out                */
#define MPTCP_CLOSE_SUB_ID   67 /* getsockopt, struct mptcp_close_sub_id in             */
#define MPTCP_GET_SUB_TUPLE  68 /* getsockopt, struct mptcp_sub_tuple: id in, addrs out */
#define MPTCP_OPEN_SUB_TUPLE 69 /* getsockopt, struct mptcp_sub_tuple: addrs in, id out */
#define MPTCP_SUB_GETSOCKOPT 71 /* getsockopt, struct mptcp_sub_getsockopt              */
#define MPTCP_SUB_SETSOCKOPT 72 /* setsockopt, struct mptcp_sub_setsockopt              */

/* mptun's per-subflow backup priority: level SOL_MPTCP, an int 0 or 1, through
 * MPTCP_SUB_GETSOCKOPT / MPTCP_SUB_SETSOCKOPT. Setting it sends MP_PRIO to the peer. */
#define MPTUN_SUB_BACKUP 100

/* Linux's MPTCP_INFO, level SOL_MPTCP: the connection's struct mptcp_info in Linux's
 * layout (a buffer shorter than 96 bytes: EINVAL and *optlen set to 96). Not tracked, 0:
 * the ADD_ADDR counts and limits, local address counts, the last_* times.
 * mptcpi_retransmits sums the subflows' retransmitted segments, mptcpi_bytes_retrans counts
 * reinjected bytes. EOPNOTSUPP on a plain TCP socket.
 * If <linux/mptcp.h> was included first, its definitions are used. */
#ifndef MPTCP_INFO
#define MPTUN_OWN_MPTCP_INFO_ 1
#define MPTCP_INFO 1
#define MPTCP_INFO_FLAG_FALLBACK            0x1
#define MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED 0x2
struct mptcp_info {
    uint8_t  mptcpi_subflows;        /* subflows besides the initial one */
    uint8_t  mptcpi_add_addr_signal;
    uint8_t  mptcpi_add_addr_accepted;
    uint8_t  mptcpi_subflows_max;
    uint8_t  mptcpi_add_addr_signal_max;
    uint8_t  mptcpi_add_addr_accepted_max;
    uint32_t mptcpi_flags;
    uint32_t mptcpi_token;           /* our token */
    uint64_t mptcpi_write_seq;
    uint64_t mptcpi_snd_una;
    uint64_t mptcpi_rcv_nxt;
    uint8_t  mptcpi_local_addr_used;
    uint8_t  mptcpi_local_addr_max;
    uint8_t  mptcpi_csum_enabled;
    uint32_t mptcpi_retransmits;
    uint64_t mptcpi_bytes_retrans;
    uint64_t mptcpi_bytes_sent;
    uint64_t mptcpi_bytes_received;
    uint64_t mptcpi_bytes_acked;
    uint8_t  mptcpi_subflows_total;  /* live subflows, the initial one included */
    uint8_t  reserved[3];
    uint32_t mptcpi_last_data_sent;
    uint32_t mptcpi_last_data_recv;
    uint32_t mptcpi_last_ack_recv;
};
#endif

/* mptun's connection events (the draft has none), level SOL_MPTCP, getsockopt:
 * MPTUN_GET_EVENTS drains queued events into an array of struct mptun_event; *optlen must
 * hold at least one (EINVAL and *optlen = sizeof(struct mptun_event) otherwise) and becomes
 * the bytes written, 0 when none is queued. Events queue up from connect/accept on. */
#define MPTUN_GET_EVENTS 101
#define MPTUN_EVENT_ESTABLISHED     1 /* the connection is established                    */
#define MPTUN_EVENT_FALLBACK        2 /* it fell back to plain TCP                        */
#define MPTUN_EVENT_SUB_ESTABLISHED 3 /* subflow `id` completed its handshake             */
#define MPTUN_EVENT_SUB_CLOSED      4 /* subflow `id` closed; `reason` MPTUN_REASON_*     */
#define MPTUN_EVENT_PEER_CLOSED     5 /* the peer sent DATA_FIN: no more data will come   */
#define MPTUN_EVENT_CLOSED          6 /* the connection ended; `error` an errno or 0      */
#define MPTUN_EVENT_ADDR_ANNOUNCED  7 /* ADD_ADDR: `addr_id`, `addr` (sockaddr_in/in6)    */
#define MPTUN_EVENT_ADDR_REMOVED    8 /* REMOVE_ADDR: `addr_id`                           */
#define MPTUN_EVENT_SUB_PRIORITY    9 /* MP_PRIO from the peer: subflow `id`, `backup`    */
#define MPTUN_REASON_NORMAL  0 /* FINs exchanged                    */
#define MPTUN_REASON_RESET   1 /* the peer reset it                 */
#define MPTUN_REASON_TIMEOUT 2 /* retransmissions or user timeout   */
#define MPTUN_REASON_ABORTED 3 /* we reset it                       */
struct mptun_event {
    uint16_t type;
    uint16_t reason;
    uint32_t id;
    uint8_t  addr_id;
    uint8_t  backup;
    uint16_t error;
    uint32_t reserved;
    unsigned char addr[28]; /* struct sockaddr_in or sockaddr_in6, zeros when unused */
    uint32_t reserved2;
};

/* mptun's per-connection limits, level SOL_MPTCP, getsockopt and setsockopt, Linux's
 * `ip mptcp limits` meaning: subflows = additional subflows (created or accepted),
 * add_addr_accepted = announcements used (0: echoed but ignored), announced = addresses we
 * announce. Set before connect/listen: the connection(s) made get them; set on a connected
 * socket: that connection's limits change at once. Defaults from mptun_init's
 * subflows=, add_addr_accepted=, announced= (else 8, 8, 8). optlen must be 12 (EINVAL). */
#define MPTUN_LIMITS 102
struct mptun_limits {
    uint32_t subflows;
    uint32_t add_addr_accepted;
    uint32_t announced;
};

/* Endpoints, like `ip mptcp endpoint`, for every connection and later ones (0 or -1/errno):
 * mptun_endpoint_set adds ADDR (one of mptun_init's addresses, else EADDRNOTAVAIL) or
 * changes its flags: SIGNAL announces it (ADD_ADDR; cleared: REMOVE_ADDR), BACKUP marks its
 * subflows backup (MP_PRIO), SUBFLOW and FULLMESH are Linux's `subflow` / `fullmesh` flags,
 * used by the `kernel` path manager (pm=kernel; the default fullmesh one meshes every
 * address); mptun_endpoint_del removes it (REMOVE_ADDR, subflows closed). */
#define MPTUN_ENDPOINT_SIGNAL 1u
#define MPTUN_ENDPOINT_BACKUP 2u
#define MPTUN_ENDPOINT_SUBFLOW 4u
#define MPTUN_ENDPOINT_FULLMESH 8u
int mptun_endpoint_set(const char *addr, unsigned flags);
int mptun_endpoint_del(const char *addr);

/* mptcp_close_sub_id.how: SHUT_WR or SHUT_RDWR close gracefully (FIN), MPTUN_SHUT_ABORT
 * resets the subflow at once. 0 (SHUT_RD, what a zero-initialised struct with only .id set
 * holds) does the draft prototype's close, which ignored `how`: abortive, as
 * MPTUN_SHUT_ABORT. Either way, data the subflow carried that the peer did not acknowledge
 * is sent again on the other subflows. */
#define MPTUN_SHUT_ABORT 16

/* Bits of mptcp_sub_status.flags; the same bits are the prototype's bitfield members
 * (slave_sk is bit 0 ... pre_established bit 4, GCC/Clang little-endian bitfield order). */
#define MPTCP_SUB_SLAVE_SK          0x0001 /* not the initial subflow                */
#define MPTCP_SUB_FULLY_ESTABLISHED 0x0002 /* handshake (and MP_JOIN) complete       */
#define MPTCP_SUB_ATTACHED          0x0004 /* attached to the connection (not closed) */
#define MPTCP_SUB_LOW_PRIO          0x0008 /* backup, ours or the peer's             */
#define MPTCP_SUB_PRE_ESTABLISHED   0x0010 /* MP_JOIN third ACK not yet acknowledged */

/* ----- the draft's structs (sizes and offsets checked below) ------------------------- */

/* One subflow: id, a pad byte, then at offset 2 a 16-bit word read either as `flags`
 * (MPTCP_SUB_* bits) or, as in the draft's prototype, through the bitfield members
 * `slave_sk`, `fully_established`, `attached`, `low_prio`, `pre_established` (bits 0..4 of
 * the same word). Size 4. The anonymous union/struct are C11 (a GNU extension in C99,
 * marked __extension__ so -pedantic stays quiet). */
#if defined(__GNUC__) || defined(__clang__)
#define MPTUN_EXT_ __extension__
#else
#define MPTUN_EXT_
#endif
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
    __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "mptun.h: struct mptcp_sub_status's bitfields assume a little-endian target"
#endif
struct mptcp_sub_status {
    uint8_t  id;
    uint8_t  __pad;
    MPTUN_EXT_ union {
        uint16_t flags;
        MPTUN_EXT_ struct {
            uint16_t slave_sk : 1;          /* MPTCP_SUB_SLAVE_SK          */
            uint16_t fully_established : 1; /* MPTCP_SUB_FULLY_ESTABLISHED */
            uint16_t attached : 1;          /* MPTCP_SUB_ATTACHED          */
            uint16_t low_prio : 1;          /* MPTCP_SUB_LOW_PRIO          */
            uint16_t pre_established : 1;   /* MPTCP_SUB_PRE_ESTABLISHED   */
            uint16_t __reserved : 11;
        };
    };
};

/* MPTCP_GET_SUB_IDS output: sub_count entries from offset 2. Open subflows only.
 * A buffer shorter than 2 + 4 * sub_count: EINVAL, and *optlen is set to the size needed. */
struct mptcp_sub_ids {
    uint8_t sub_count;
    uint8_t __pad;
    struct mptcp_sub_status sub_status[];
};

/* MPTCP_GET_SUB_TUPLE / MPTCP_OPEN_SUB_TUPLE: id, prio (1 = backup), then the local and the
 * remote address from offset 2 (not aligned: copy them with memcpy): two struct sockaddr_in
 * (MPTCP_SUB_TUPLE_LEN_IN bytes in all) or two struct sockaddr_in6 (MPTCP_SUB_TUPLE_LEN_IN6).
 * GET: set id; on return prio and addrs are filled (short buffer: EINVAL, size needed in
 * *optlen). OPEN: the family is the local sockaddr's (the remote one must have the same);
 * optlen must cover both addresses and may be larger (the draft's manual passes 100; the
 * bytes after them are ignored); a local port of 0 picks a free port; on return id holds
 * the new subflow's id (the SYN is sent; poll MPTCP_GET_SUB_IDS for
 * MPTCP_SUB_FULLY_ESTABLISHED). */
struct mptcp_sub_tuple {
    uint8_t id;
    uint8_t prio;
    uint8_t addrs[];
};
#define MPTCP_SUB_TUPLE_LEN_IN  (2 + 2 * 16)
#define MPTCP_SUB_TUPLE_LEN_IN6 (2 + 2 * 28)

/* MPTCP_CLOSE_SUB_ID input; optlen must be sizeof(struct mptcp_close_sub_id) (8). */
struct mptcp_close_sub_id {
    uint8_t id;
    int     how; /* SHUT_WR, SHUT_RDWR, MPTUN_SHUT_ABORT, or 0: the prototype's (abortive) */
};

/* MPTCP_SUB_GETSOCKOPT: runs getsockopt(level, optname) on subflow id. optlen of the outer
 * call must be sizeof(struct mptcp_sub_getsockopt) (32). Supported: IPPROTO_TCP TCP_NODELAY,
 * TCP_MAXSEG, TCP_USER_TIMEOUT (ms, 0 = none), TCP_INFO (Linux's struct tcp_info, see
 * MPTUN_LINUX_TCP_INFO_LEN); IPPROTO_IP IP_TOS; SOL_MPTCP MPTUN_SUB_BACKUP, MPTUN_TCP_INFO
 * (struct mptun_tcp_info). int values need *optlen >= sizeof(int); a short buffer gives
 * EINVAL with the size needed in *optlen, except TCP_INFO, which gets the first *optlen
 * bytes as from Linux. */
struct mptcp_sub_getsockopt {
    uint8_t       id;
    int           level;
    int           optname;
    char         *optval;
    unsigned int *optlen;
};

/* MPTCP_SUB_SETSOCKOPT: runs setsockopt(level, optname) on subflow id (same options but
 * TCP_INFO; int values, optlen exactly sizeof(int)). TCP_MAXSEG on an established subflow
 * only lowers the MSS it sends with. */
struct mptcp_sub_setsockopt {
    uint8_t      id;
    int          level;
    int          optname;
    char        *optval;
    unsigned int optlen;
};

/* TCP_INFO (IPPROTO_TCP) fills Linux's struct tcp_info (<linux/tcp.h>) up to tcpi_rcv_wnd:
 * tcpi_state, tcpi_rto, tcpi_snd_mss, tcpi_rcv_mss, tcpi_unacked, tcpi_pmtu, tcpi_rtt,
 * tcpi_rttvar, tcpi_snd_ssthresh and tcpi_snd_cwnd (segments, as Linux), tcpi_advmss,
 * tcpi_total_retrans, tcpi_bytes_acked, tcpi_bytes_received, tcpi_bytes_sent; other fields
 * 0. On the connection (level IPPROTO_TCP, no subflow id) it describes the first subflow not
 * closed, as Linux answers TCP_INFO on an MPTCP socket. */
#define MPTUN_LINUX_TCP_INFO_LEN 236

/* Userspace path management (Linux's userspace PM ANNOUNCE / REMOVE), level SOL_MPTCP,
 * setsockopt on a connected socket. MPTUN_ANNOUNCE announces one of mptun_init's addresses
 * under id (1..255; 0 is the initial subflow's): ADD_ADDR, retransmitted until echoed; a
 * non-zero port goes in the ADD_ADDR. EINVAL: id 0, not one of mptun's addresses, the
 * initial subflow's address, or the id used for another address; EADDRNOTAVAIL: the
 * `announced` limit is reached. MPTUN_REMOVE_ADDR (an int id) withdraws it: REMOVE_ADDR,
 * and the subflows from the address close; EINVAL if no address has that id. */
#define MPTUN_ANNOUNCE 104
struct mptun_announce {
    uint8_t id;
    uint8_t pad;
    unsigned char addr[28]; /* struct sockaddr_in (optlen 18) or sockaddr_in6 (optlen 30) */
};
#define MPTUN_REMOVE_ADDR 105

/* One subflow's statistics in mptun's own layout (SOL_MPTCP MPTUN_TCP_INFO through
 * MPTCP_SUB_GETSOCKOPT): what Linux's struct tcp_info lacks (the data-level bytes, the
 * backup flag). Times in microseconds, sizes in bytes. Size 88. */
#define MPTUN_TCP_INFO 103
struct mptun_tcp_info {
    uint8_t  tcpi_state;           /* Linux TCP_* state number: 1 ESTABLISHED ... 11 CLOSING */
    uint8_t  tcpi_backup;          /* 1: backup priority (ours)                              */
    uint8_t  tcpi_rtt_valid;       /* 1: tcpi_rtt/tcpi_rttvar hold a measurement             */
    uint8_t  tcpi_pad;
    uint32_t tcpi_snd_mss;         /* MSS we send with                                       */
    uint32_t tcpi_rcv_mss;         /* MSS the peer announced                                 */
    uint32_t tcpi_rto;             /* retransmission timeout                                 */
    uint32_t tcpi_rtt;             /* smoothed round-trip time                               */
    uint32_t tcpi_rttvar;          /* round-trip time variation                              */
    uint32_t tcpi_snd_cwnd;        /* congestion window, bytes                               */
    uint32_t tcpi_snd_ssthresh;    /* slow-start threshold, bytes                            */
    uint32_t tcpi_bytes_in_flight; /* sent, not yet acknowledged                             */
    uint32_t tcpi_pad2;
    uint64_t tcpi_bytes_sent;      /* subflow payload bytes sent, retransmissions included   */
    uint64_t tcpi_bytes_acked;     /* subflow payload bytes acknowledged                     */
    uint64_t tcpi_bytes_received;  /* subflow payload bytes received                         */
    uint64_t tcpi_data_sent;       /* connection-level data this subflow carried             */
    uint64_t tcpi_data_received;   /* connection-level data that arrived on this subflow     */
    uint64_t tcpi_total_retrans;   /* retransmitted segments                                 */
};

/* Compile-time layout checks (C99: a negative array size fails the build). */
#define MPTUN_ASSERT_(name, cond) typedef char mptun_assert_##name[(cond) ? 1 : -1]
MPTUN_ASSERT_(sub_status_size, sizeof(struct mptcp_sub_status) == 4);
MPTUN_ASSERT_(sub_status_flags, offsetof(struct mptcp_sub_status, flags) == 2);
MPTUN_ASSERT_(sub_ids_entries, offsetof(struct mptcp_sub_ids, sub_status) == 2);
MPTUN_ASSERT_(sub_tuple_addrs, offsetof(struct mptcp_sub_tuple, addrs) == 2);
MPTUN_ASSERT_(close_size, sizeof(struct mptcp_close_sub_id) == 8);
MPTUN_ASSERT_(close_how, offsetof(struct mptcp_close_sub_id, how) == 4);
MPTUN_ASSERT_(subget_size, sizeof(struct mptcp_sub_getsockopt) == 32);
MPTUN_ASSERT_(subget_optval, offsetof(struct mptcp_sub_getsockopt, optval) == 16);
MPTUN_ASSERT_(subget_optlen, offsetof(struct mptcp_sub_getsockopt, optlen) == 24);
MPTUN_ASSERT_(subset_size, sizeof(struct mptcp_sub_setsockopt) == 32);
MPTUN_ASSERT_(subset_optlen, offsetof(struct mptcp_sub_setsockopt, optlen) == 24);
MPTUN_ASSERT_(tcp_info_size, sizeof(struct mptun_tcp_info) == 88);
MPTUN_ASSERT_(tcp_info_sent, offsetof(struct mptun_tcp_info, tcpi_bytes_sent) == 40);
MPTUN_ASSERT_(event_size, sizeof(struct mptun_event) == 48);
MPTUN_ASSERT_(event_addr, offsetof(struct mptun_event, addr) == 16);
MPTUN_ASSERT_(limits_size, sizeof(struct mptun_limits) == 12);
#ifdef MPTUN_OWN_MPTCP_INFO_
MPTUN_ASSERT_(mptcp_info_size, sizeof(struct mptcp_info) == 96);
MPTUN_ASSERT_(mptcp_info_acked, offsetof(struct mptcp_info, mptcpi_bytes_acked) == 72);
MPTUN_ASSERT_(mptcp_info_total, offsetof(struct mptcp_info, mptcpi_subflows_total) == 80);
#endif

/* ----- functions ---------------------------------------------------------------------- */

/* Opens the TUN devices and starts the stack's thread. config: comma-separated
 *   DEV=ADDR           a TUN device (already created and up) and mptun's address on it
 *   pm=NAME            path manager: manual (default: the application opens subflows, as
 *                      the draft intends), fullmesh, ndiffports:N
 *   sched=NAME         scheduler;  cc=NAME  congestion control;  checksum=1  DSS checksums
 *   impair:DEV=SPEC    impair packets sent out of DEV, items joined by '+'
 *                      (e.g. impair:tun1=delay=40ms+rate=10mbit)
 *   subflows=N, add_addr_accepted=M, announced=K   default limits (MPTUN_LIMITS)
 *   add_addr_timeout=MS  ADD_ADDR retransmission timeout
 *   signal=ADDR        announce ADDR (one of the above) with ADD_ADDR from the start
 *   wscale=N (0..14), timestamps=0|1, sack=0|1     TCP options offered (7, 1, 1)
 *   seed=N             keys, ISNs and ports drawn from N (reproducible runs)
 * e.g. "tun0=198.18.1.2,tun1=198.18.2.2". Errors: EINVAL (bad config), EALREADY (running),
 * errno of opening a device (ENOENT, EPERM, EBUSY...). */
int mptun_init(const char *config);

/* Closes every descriptor, waits at most 10 s for closed connections to finish their
 * closing handshake, stops the stack. Call it before exiting. ENETDOWN if not running. */
int mptun_fini(void);

/* domain AF_INET or AF_INET6 (EAFNOSUPPORT); type SOCK_STREAM, optionally | SOCK_NONBLOCK
 * (ESOCKTNOSUPPORT); protocol 0 or IPPROTO_MPTCP for MPTCP, IPPROTO_TCP for plain TCP
 * (EPROTONOSUPPORT). ENETDOWN before mptun_init, EMFILE past 1024 descriptors. */
int mptun_socket(int domain, int type, int protocol);

/* The address must be unspecified or one of mptun's (EADDRNOTAVAIL); its port is the one
 * mptun_listen listens on; its address is the source of mptun_connect. EINVAL if bound. */
int mptun_bind(int fd, const struct sockaddr *addr, socklen_t addrlen);

/* Listens on the bound port on all of mptun's addresses (EDESTADDRREQ if no port bound,
 * EADDRINUSE, EISCONN on a connected socket). */
int mptun_listen(int fd, int backlog);

/* Next connection (EAGAIN on a SOCK_NONBLOCK listener when none waits; EINVAL if fd is not
 * listening). addr/addrlen may be NULL; the address is truncated to *addrlen. */
int mptun_accept(int fd, struct sockaddr *addr, socklen_t *addrlen);

/* mptun_accept with flags SOCK_NONBLOCK (the new descriptor is non-blocking) and SOCK_CLOEXEC
 * (accepted; mptun descriptors are not kernel descriptors); other flags: EINVAL, as Linux. */
int mptun_accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags);

/* The bound address of a fresh socket (0.0.0.0:0 / [::]:0 if unbound), a listener's bound
 * address, or a connection's local address (its initial subflow's). The address is truncated
 * to *addrlen and *addrlen set to its full size, as Linux. EFAULT if addr is NULL. */
int mptun_getsockname(int fd, struct sockaddr *addr, socklen_t *addrlen);

/* A connection's remote address (its initial subflow's); ENOTCONN otherwise. */
int mptun_getpeername(int fd, struct sockaddr *addr, socklen_t *addrlen);

/* Blocking socket: waits until the connection is established, at most 30 s (ETIMEDOUT).
 * SOCK_NONBLOCK socket: starts the handshake and fails with EINPROGRESS; mptun_poll reports
 * POLLOUT once connected, POLLERR if it failed; SO_ERROR gives the result. Calling it again:
 * EALREADY while connecting, EISCONN once connected, the failure (ECONNREFUSED, ETIMEDOUT,
 * ECONNRESET) if it failed. EINVAL on a listener. */
int mptun_connect(int fd, const struct sockaddr *addr, socklen_t addrlen);

/* flags: MSG_DONTWAIT, MSG_NOSIGNAL (mptun never raises SIGPIPE); others EOPNOTSUPP.
 * EPIPE after shutdown, ENOTCONN if not connected, EAGAIN when non-blocking and full or
 * (as Linux) while the handshake of a non-blocking connect still runs; a blocking send
 * during the handshake queues the data, which leaves once the connection is established. */
ssize_t mptun_send(int fd, const void *buf, size_t len, int flags);

/* 0 at end of stream. flags: MSG_DONTWAIT, MSG_WAITALL, MSG_PEEK (the data stays readable;
 * with MSG_WAITALL it returns what one wait brought); others EOPNOTSUPP. */
ssize_t mptun_recv(int fd, void *buf, size_t len, int flags);

/* SHUT_WR / SHUT_RDWR send the DATA_FIN after queued data; SHUT_RD does nothing. */
int mptun_shutdown(int fd, int how);

/* Releases the descriptor (EBADF if not open). A connection sends its DATA_FIN and closes
 * in the background; mptun_fini waits for it. As Linux's close(): a connection whose
 * handshake still runs is dropped (a late SYN/ACK gets a RST), and one with received data
 * the application did not read is reset (RST / MP_FASTCLOSE) instead. */
int mptun_close(int fd);

/* fcntl(2) for mptun descriptors: F_GETFL gives O_RDWR, | O_NONBLOCK if set; F_SETFL sets
 * or clears O_NONBLOCK (other bits are ignored, as Linux ignores them for sockets). Other
 * commands: EINVAL. */
int mptun_fcntl(int fd, int cmd, int arg);

/* poll(2) over mptun descriptors (negative fds are ignored, unknown ones get POLLNVAL).
 * POLLIN: data, end of stream, error, or (listener) a connection to accept; POLLOUT: send
 * buffer space, or a failed connection (with POLLERR|POLLHUP, as Linux). timeout_ms < 0 waits forever. Returns the number of ready entries. */
int mptun_poll(struct pollfd *fds, nfds_t nfds, int timeout_ms);

/* level IPPROTO_TCP: the draft's options above (on a connected descriptor: ENOTCONN
 * otherwise; EOPNOTSUPP on a plain TCP or fallen-back connection; EINVAL for an unknown
 * subflow id or a bad length; ENOPROTOOPT for an unknown option; EOVERFLOW if an id no
 * longer fits the draft's 8 bits). level SOL_SOCKET: SO_TYPE, SO_PROTOCOL,
 * SO_ERROR (the connection's failure, e.g. of a non-blocking connect; 0 if none),
 * SO_REUSEADDR (get and set, an int; it changes nothing: mptun's listen never conflicts with
 * lingering connections), SO_SNDBUF / SO_RCVBUF (an int: the connection-level send / receive
 * buffer in bytes; set before connect or listen, clamped to [4096, 2^30] and, unlike Linux,
 * not doubled; set on a connected socket: EISCONN, on a listener: EINVAL; get gives the value
 * in force). Connection level, IPPROTO_TCP: TCP_NODELAY, TCP_USER_TIMEOUT (ms)
 * (applied to every subflow; set before connect/listen: the connection's default) and
 * TCP_MAXSEG (get: the first live subflow's sending MSS; set lowers every subflow's; ENOTCONN
 * before a connection exists). */
int mptun_getsockopt(int fd, int level, int optname, void *optval, socklen_t *optlen);
int mptun_setsockopt(int fd, int level, int optname, const void *optval, socklen_t optlen);

/* ----- manually driven instances (sans-IO) -------------------------------------------------
 *
 * A stack with no thread, no TUN device and no clock of its own, for simulators (ns-3,
 * OMNeT++), event loops and test tools: the caller feeds it the IP packets it receives with
 * a timestamp, takes out the packets it sends, asks when its next timer is due and moves its
 * clock. Time is in microseconds from any epoch the caller likes and never goes backwards (an
 * earlier timestamp counts as the clock). Several instances may exist at once, next to the
 * mptun_init runtime.
 *
 * The socket calls above work on an instance's descriptors (create them with
 * mptun_instance_socket; every other call takes the descriptor alone). Their timeouts
 * (mptun_poll's, a blocking connect's 30 s) run on the instance's clock. All calls are
 * thread-safe: a call blocked on one thread (accept, a blocking connect, recv, poll) is
 * woken when another thread's mptun_instance_input or mptun_instance_advance changes the
 * stack; on a single thread use SOCK_NONBLOCK sockets, MSG_DONTWAIT and poll timeouts of 0,
 * since nothing would move the stack while the call blocks. mptun_poll takes descriptors of
 * one stack only (EINVAL otherwise). */
typedef struct mptun_instance mptun_instance;

/* config: mptun_init's syntax, where NAME=ADDR only names one of the instance's addresses
 * (no device is opened; any name will do), e.g. "if0=198.19.0.1,if1=198.19.1.1,pm=fullmesh",
 * plus seed=N (keys, ISNs and ports drawn from N: reproducible runs) and mtu=N (the link MTU
 * of every address, 576..65535, default 1500). impair: items are refused. NULL and errno
 * EINVAL (bad config) or EFAULT on failure. */
mptun_instance *mptun_instance_new(const char *config);

/* Closes the instance's descriptors, aborts its connections, makes calls still blocked on
 * its descriptors fail (EPIPE), frees it. No mptun_instance_* call on it may run
 * concurrently or follow (the pointer is freed); calls on its former descriptors fail with
 * EBADF. */
int mptun_instance_free(mptun_instance *inst);

/* One IP packet (IPv4 or IPv6, no link-layer header) received at now_us. Malformed packets
 * are counted and dropped as by the TUN runtime. EINVAL for len 0 or over 65535. */
int mptun_instance_input(mptun_instance *inst, const void *packet, size_t len, uint64_t now_us);

/* The next IP packet the instance sends, copied to buf: its length, 0 if there is none,
 * -1/EMSGSIZE if len is shorter than the packet (it is kept for the next call; packets are
 * at most the MTU, 1500 by default). Drain it after every input, advance and socket call. */
ssize_t mptun_instance_output(mptun_instance *inst, void *buf, size_t len);

/* 1 with *deadline_us set to when the next timer is due, 0 if no timer is set: call
 * mptun_instance_advance(inst, *deadline_us) then (or earlier). */
int mptun_instance_timeout(mptun_instance *inst, uint64_t *deadline_us);

/* Moves the clock to now_us and runs the timers that are due. */
int mptun_instance_advance(mptun_instance *inst, uint64_t now_us);

/* The instance's clock (0 for NULL). */
uint64_t mptun_instance_now(const mptun_instance *inst);

/* fn(arg) is called when a socket call queued a packet for mptun_instance_output, on the
 * calling thread with no lock held; it must not call into mptun (set a flag, write an
 * eventfd). fn NULL removes it. */
int mptun_instance_set_wakeup(mptun_instance *inst, void (*fn)(void *), void *arg);

/* As mptun_socket, on the instance. */
int mptun_instance_socket(mptun_instance *inst, int domain, int type, int protocol);

/* As mptun_endpoint_set / mptun_endpoint_del, on the instance's connections. */
int mptun_instance_endpoint_set(mptun_instance *inst, const char *addr, unsigned flags);
int mptun_instance_endpoint_del(mptun_instance *inst, const char *addr);

#ifdef __cplusplus
}
#endif

#endif /* MPTUN_H */

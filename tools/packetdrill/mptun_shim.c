/*
 * mptun_shim.c - packetdrill's shared-object interface over a manually driven mptun
 * instance (include/mptun.h, mptun_instance_*). Built by tests/packetdrill.rs:
 *
 *   cc -shared -fPIC -Iinclude tools/packetdrill/mptun_shim.c -Ltarget/release -lmptun \
 *      -Wl,-rpath,$PWD/target/release -lpthread -o mptun_shim.so
 *   packetdrill --so_filename=mptun_shim.so --so_flags="if0=192.168.0.1" script.pkt
 *
 * --so_flags is the instance's configuration (mptun_instance_new's syntax). packetdrill is
 * GPL; nothing of it is copied here: `struct packetdrill_interface` below is declared from
 * its documented layout (packetdrill.h) as the interface this object must fill.
 *
 * Time: a virtual clock. Every gettimeofday read moves it 1 us forward (packetdrill spins on
 * it); usleep moves it by the time asked, running the instance's timers on the way, so the
 * packets they send carry the time they were due, after giving a socket call running on
 * packetdrill's other thread (a blocking call a packet may have woken) up to 20 ms of real
 * time to finish at the current time. What the instance sends is collected
 * (with the clock's time) after every call into it and handed out by netdev_receive; when
 * nothing is queued netdev_receive gives the other threads (packetdrill runs blocking calls
 * on a second thread) 20 ms of real time, then moves the clock to the next timer; with no
 * timer left, or more than 120 s ahead, it returns a one-byte packet, which fails the
 * script instead of retrying for ever.
 *
 * Descriptors: packetdrill closes the numbers it was given with the real close(2) at
 * teardown, so each mptun descriptor is paired with a real descriptor open on /dev/null,
 * whose number the script sees.
 */
#define _GNU_SOURCE
#include "mptun.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* packetdrill's interface (packetdrill.h), member for member. */
struct packetdrill_interface {
    void *userdata;
    void (*free)(void *userdata);
    int (*socket)(void *userdata, int domain, int type, int protocol);
    int (*bind)(void *userdata, int sockfd, const struct sockaddr *addr, socklen_t addrlen);
    int (*listen)(void *userdata, int sockfd, int backlog);
    int (*accept)(void *userdata, int sockfd, struct sockaddr *addr, socklen_t *addrlen);
    int (*connect)(void *userdata, int sockfd, const struct sockaddr *addr, socklen_t addrlen);
    ssize_t (*read)(void *userdata, int fd, void *buf, size_t count);
    ssize_t (*readv)(void *userdata, int fd, const struct iovec *iov, int iovcnt);
    ssize_t (*recv)(void *userdata, int sockfd, void *buf, size_t len, int flags);
    ssize_t (*recvfrom)(void *userdata, int sockfd, void *buf, size_t len, int flags,
                        struct sockaddr *src_addr, socklen_t *addrlen);
    ssize_t (*recvmsg)(void *userdata, int sockfd, struct msghdr *msg, int flags);
    ssize_t (*write)(void *userdata, int fd, const void *buf, size_t count);
    ssize_t (*writev)(void *userdata, int fd, const struct iovec *iov, int iovcnt);
    ssize_t (*send)(void *userdata, int sockfd, const void *buf, size_t len, int flags);
    ssize_t (*sendto)(void *userdata, int sockfd, const void *buf, size_t len, int flags,
                      const struct sockaddr *dest_addr, socklen_t addrlen);
    ssize_t (*sendmsg)(void *userdata, int sockfd, const struct msghdr *msg, int flags);
    int (*fcntl)(void *userdata, int fd, int cmd, ...);
    int (*ioctl)(void *userdata, int fd, unsigned long request, ...);
    int (*close)(void *userdata, int fd);
    int (*shutdown)(void *userdata, int sockfd, int how);
    int (*getsockopt)(void *userdata, int sockfd, int level, int optname, void *optval,
                      socklen_t *optlen);
    int (*setsockopt)(void *userdata, int sockfd, int level, int optname, const void *optval,
                      socklen_t optlen);
    int (*poll)(void *userdata, struct pollfd *fds, nfds_t nfds, int timeout);
    int (*netdev_send)(void *userdata, const void *buf, size_t count);
    int (*netdev_receive)(void *userdata, void *buf, size_t *count, long long *time_usecs);
    int (*usleep)(void *userdata, useconds_t usec);
    int (*gettimeofday)(void *userdata, struct timeval *tv, struct timezone *tz);
    int (*epoll_create)(void *userdata, int size);
    int (*epoll_ctl)(void *userdata, int epfd, int op, int fd, struct epoll_event *event);
    int (*epoll_wait)(void *userdata, int epfd, struct epoll_event *events, int maxevents,
                      int timeout);
    int (*pipe)(void *userdata, int pipefd[2]);
    int (*splice)(void *userdata, int fd_in, loff_t *off_in, int fd_out, loff_t *off_out,
                  size_t len, unsigned int flags);
};

#define MAX_FD 1024
#define EPOCH_US 1600000000000000ULL /* what gettimeofday reports for clock 0 */
#define GRACE_MS 20                  /* real time given to other threads */
#define MAX_JUMP_US 120000000ULL     /* netdev_receive never waits longer */

struct outpkt {
    struct outpkt *next;
    uint64_t at;
    size_t len;
    unsigned char b[];
};

struct shim {
    mptun_instance *inst;
    pthread_mutex_t mu;         /* clock, queue, fd map */
    uint64_t clock;             /* virtual, us */
    struct outpkt *head, *tail; /* what the instance sent, oldest first */
    int map[MAX_FD];            /* real fd -> mptun fd + 1 (0: none) */
    int inflight;               /* socket calls that may block, running now */
    int trace;
};

static void lock(struct shim *s) { pthread_mutex_lock(&s->mu); }
static void unlock(struct shim *s) { pthread_mutex_unlock(&s->mu); }

/* Collects what the instance sends, stamped with the clock. Caller holds the lock. */
static void collect_locked(struct shim *s) {
    unsigned char buf[65536];
    for (;;) {
        ssize_t n = mptun_instance_output(s->inst, buf, sizeof buf);
        struct outpkt *p;
        if (n <= 0)
            return;
        p = malloc(sizeof *p + (size_t)n);
        if (!p)
            return;
        p->next = NULL;
        p->at = s->clock;
        p->len = (size_t)n;
        memcpy(p->b, buf, (size_t)n);
        if (s->tail)
            s->tail->next = p;
        else
            s->head = p;
        s->tail = p;
    }
}

static void collect(struct shim *s) {
    lock(s);
    collect_locked(s);
    unlock(s);
}

/* Moves the clock to `to`, running every timer due on the way at its own time. */
static void advance_locked(struct shim *s, uint64_t to) {
    uint64_t t;
    while (mptun_instance_timeout(s->inst, &t) == 1 && t <= to) {
        if (t > s->clock)
            s->clock = t;
        mptun_instance_advance(s->inst, s->clock);
        collect_locked(s);
        if (t < s->clock) /* a timer in the past that did not move: avoid spinning */
            break;
    }
    if (to > s->clock)
        s->clock = to;
    mptun_instance_advance(s->inst, s->clock);
    collect_locked(s);
}

static int fd_of(struct shim *s, int fd) {
    int m;
    if (fd < 0 || fd >= MAX_FD) {
        errno = EBADF;
        return -1;
    }
    lock(s);
    m = s->map[fd] - 1;
    unlock(s);
    if (m < 0)
        errno = EBADF;
    return m;
}

/* Pairs a new mptun descriptor with a real one packetdrill may close(2). */
static int new_fd(struct shim *s, int mfd) {
    int real;
    if (mfd < 0)
        return -1;
    real = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (real < 0 || real >= MAX_FD) {
        if (real >= 0)
            close(real);
        mptun_close(mfd);
        errno = EMFILE;
        return -1;
    }
    lock(s);
    s->map[real] = mfd + 1;
    unlock(s);
    return real;
}

static void real_sleep_us(long us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};
    nanosleep(&ts, NULL);
}

static void real_sleep_ms(int ms) { real_sleep_us((long)ms * 1000); }

/* Brackets the calls that may block (accept, connect, send, recv, poll). */
static void enter(struct shim *s) {
    lock(s);
    s->inflight++;
    unlock(s);
}

static void leave(struct shim *s) {
    lock(s);
    s->inflight--;
    unlock(s);
}

/* ----- socket calls ------------------------------------------------------------------------ */

#define SHIM struct shim *s = userdata
#define AFTER(call)                                                                        \
    do {                                                                                   \
        int e_ = errno;                                                                    \
        collect(s);                                                                        \
        errno = e_;                                                                        \
        return (call);                                                                     \
    } while (0)

static int sh_socket(void *userdata, int domain, int type, int protocol) {
    SHIM;
    return new_fd(s, mptun_instance_socket(s->inst, domain, type, protocol));
}

static int sh_bind(void *userdata, int fd, const struct sockaddr *a, socklen_t l) {
    SHIM;
    int m = fd_of(s, fd);
    return m < 0 ? -1 : mptun_bind(m, a, l);
}

static int sh_listen(void *userdata, int fd, int backlog) {
    SHIM;
    int m = fd_of(s, fd);
    return m < 0 ? -1 : mptun_listen(m, backlog);
}

static int sh_accept(void *userdata, int fd, struct sockaddr *a, socklen_t *l) {
    SHIM;
    int m = fd_of(s, fd), r;
    if (m < 0)
        return -1;
    enter(s);
    r = mptun_accept(m, a, l);
    leave(s);
    if (r < 0) {
        AFTER(-1);
    }
    r = new_fd(s, r);
    AFTER(r);
}

static int sh_connect(void *userdata, int fd, const struct sockaddr *a, socklen_t l) {
    SHIM;
    int m = fd_of(s, fd), r;
    if (m < 0)
        return -1;
    /* a blocking connect needs the SYN out before it waits: mptun sends it from the call,
     * and netdev_receive collects it */
    enter(s);
    r = mptun_connect(m, a, l);
    leave(s);
    AFTER(r);
}

static ssize_t sh_send(void *userdata, int fd, const void *buf, size_t len, int flags) {
    SHIM;
    int m = fd_of(s, fd);
    ssize_t r;
    if (m < 0)
        return -1;
    enter(s);
    r = mptun_send(m, buf, len, flags & ~MSG_NOSIGNAL);
    leave(s);
    AFTER(r);
}

static ssize_t sh_recv(void *userdata, int fd, void *buf, size_t len, int flags) {
    SHIM;
    int m = fd_of(s, fd);
    ssize_t r;
    if (m < 0)
        return -1;
    enter(s);
    r = mptun_recv(m, buf, len, flags);
    leave(s);
    AFTER(r); /* reading may open the window */
}

static ssize_t sh_read(void *userdata, int fd, void *buf, size_t n) {
    return sh_recv(userdata, fd, buf, n, 0);
}

static ssize_t sh_write(void *userdata, int fd, const void *buf, size_t n) {
    return sh_send(userdata, fd, buf, n, 0);
}

static ssize_t sh_recvfrom(void *userdata, int fd, void *buf, size_t len, int flags,
                           struct sockaddr *src, socklen_t *srclen) {
    if (src && srclen)
        *srclen = 0;
    return sh_recv(userdata, fd, buf, len, flags);
}

static ssize_t sh_sendto(void *userdata, int fd, const void *buf, size_t len, int flags,
                         const struct sockaddr *dst, socklen_t dstlen) {
    (void)dst;
    (void)dstlen;
    return sh_send(userdata, fd, buf, len, flags);
}

/* Gathers the iovecs into one buffer (NULL and EFAULT/ENOMEM on failure). */
static unsigned char *gather(const struct iovec *iov, int cnt, size_t *total) {
    size_t t = 0, o = 0;
    int i;
    unsigned char *b;
    if (cnt < 0 || (cnt > 0 && !iov)) {
        errno = EINVAL;
        return NULL;
    }
    for (i = 0; i < cnt; i++)
        t += iov[i].iov_len;
    b = malloc(t ? t : 1);
    if (!b) {
        errno = ENOMEM;
        return NULL;
    }
    for (i = 0; i < cnt; i++) {
        if (iov[i].iov_len)
            memcpy(b + o, iov[i].iov_base, iov[i].iov_len);
        o += iov[i].iov_len;
    }
    *total = t;
    return b;
}

static ssize_t sh_sendmsg(void *userdata, int fd, const struct msghdr *msg, int flags) {
    size_t t;
    ssize_t r;
    unsigned char *b = msg ? gather(msg->msg_iov, (int)msg->msg_iovlen, &t) : NULL;
    if (!msg)
        errno = EFAULT;
    if (!b)
        return -1;
    r = sh_send(userdata, fd, b, t, flags);
    free(b);
    return r;
}

static ssize_t sh_writev(void *userdata, int fd, const struct iovec *iov, int cnt) {
    size_t t;
    ssize_t r;
    unsigned char *b = gather(iov, cnt, &t);
    if (!b)
        return -1;
    r = sh_send(userdata, fd, b, t, 0);
    free(b);
    return r;
}

static ssize_t scatter_recv(void *userdata, int fd, const struct iovec *iov, int cnt, int flags) {
    size_t t = 0, o = 0;
    int i;
    ssize_t r;
    unsigned char *b;
    if (cnt < 0 || (cnt > 0 && !iov)) {
        errno = EINVAL;
        return -1;
    }
    for (i = 0; i < cnt; i++)
        t += iov[i].iov_len;
    b = malloc(t ? t : 1);
    if (!b) {
        errno = ENOMEM;
        return -1;
    }
    r = sh_recv(userdata, fd, b, t, flags);
    for (i = 0; r > 0 && i < cnt && o < (size_t)r; i++) {
        size_t k = iov[i].iov_len < (size_t)r - o ? iov[i].iov_len : (size_t)r - o;
        memcpy(iov[i].iov_base, b + o, k);
        o += k;
    }
    free(b);
    return r;
}

static ssize_t sh_readv(void *userdata, int fd, const struct iovec *iov, int cnt) {
    return scatter_recv(userdata, fd, iov, cnt, 0);
}

static ssize_t sh_recvmsg(void *userdata, int fd, struct msghdr *msg, int flags) {
    ssize_t r;
    if (!msg) {
        errno = EFAULT;
        return -1;
    }
    r = scatter_recv(userdata, fd, msg->msg_iov, (int)msg->msg_iovlen, flags);
    if (r >= 0) {
        msg->msg_flags = 0;
        msg->msg_controllen = 0;
        if (msg->msg_name)
            msg->msg_namelen = 0;
    }
    return r;
}

static int sh_fcntl(void *userdata, int fd, int cmd, ...) {
    SHIM;
    int m = fd_of(s, fd), arg = 0;
    va_list ap;
    if (m < 0)
        return -1;
    if (cmd == F_SETFL) {
        va_start(ap, cmd);
        arg = va_arg(ap, int);
        va_end(ap);
    }
    return mptun_fcntl(m, cmd, arg);
}

static int sh_ioctl(void *userdata, int fd, unsigned long request, ...) {
    SHIM;
    (void)request;
    if (fd_of(s, fd) < 0)
        return -1;
    errno = ENOTTY; /* mptun has no ioctls (SIOCINQ, SIOCOUTQ) */
    return -1;
}

static int sh_close(void *userdata, int fd) {
    SHIM;
    int m = fd_of(s, fd), r;
    if (m < 0)
        return -1;
    lock(s);
    s->map[fd] = 0;
    unlock(s);
    r = mptun_close(m);
    close(fd);
    AFTER(r);
}

static int sh_shutdown(void *userdata, int fd, int how) {
    SHIM;
    int m = fd_of(s, fd), r;
    if (m < 0)
        return -1;
    r = mptun_shutdown(m, how);
    AFTER(r);
}

static int sh_getsockopt(void *userdata, int fd, int level, int name, void *val, socklen_t *len) {
    SHIM;
    int m = fd_of(s, fd), r;
    if (m < 0)
        return -1;
    r = mptun_getsockopt(m, level, name, val, len);
    AFTER(r);
}

static int sh_setsockopt(void *userdata, int fd, int level, int name, const void *val,
                         socklen_t len) {
    SHIM;
    int m = fd_of(s, fd), r;
    if (m < 0)
        return -1;
    r = mptun_setsockopt(m, level, name, val, len);
    AFTER(r);
}

static int sh_poll(void *userdata, struct pollfd *fds, nfds_t n, int timeout) {
    SHIM;
    struct pollfd *m;
    nfds_t i;
    int r;
    m = calloc(n ? n : 1, sizeof *m);
    if (!m) {
        errno = ENOMEM;
        return -1;
    }
    for (i = 0; i < n; i++) {
        m[i] = fds[i];
        m[i].fd = fds[i].fd < 0 ? -1 : fd_of(s, fds[i].fd);
        if (fds[i].fd >= 0 && m[i].fd < 0)
            m[i].fd = MAX_FD * 4; /* not an mptun descriptor: POLLNVAL */
    }
    enter(s);
    r = mptun_poll(m, n, timeout);
    leave(s);
    for (i = 0; i < n; i++)
        fds[i].revents = m[i].revents;
    free(m);
    AFTER(r);
}

/* ----- packets and time --------------------------------------------------------------------- */

static int sh_netdev_send(void *userdata, const void *buf, size_t count) {
    SHIM;
    int r;
    lock(s);
    r = mptun_instance_input(s->inst, buf, count, s->clock);
    collect_locked(s);
    unlock(s);
    if (s->trace)
        fprintf(stderr, "shim: in  %zu bytes at %llu us\n", count, (unsigned long long)s->clock);
    return r;
}

static int sh_netdev_receive(void *userdata, void *buf, size_t *count, long long *time_usecs) {
    SHIM;
    int waited = 0;
    uint64_t limit;
    lock(s);
    limit = s->clock + MAX_JUMP_US;
    for (;;) {
        struct outpkt *p;
        uint64_t t;
        collect_locked(s);
        p = s->head;
        if (p) {
            s->head = p->next;
            if (!s->head)
                s->tail = NULL;
            if (p->len > *count) {
                *count = 0;
            } else {
                memcpy(buf, p->b, p->len);
                *count = p->len;
            }
            *time_usecs = (long long)(EPOCH_US + p->at);
            if (s->trace)
                fprintf(stderr, "shim: out %zu bytes at %llu us\n", p->len,
                        (unsigned long long)p->at);
            free(p);
            unlock(s);
            return 0;
        }
        if (waited < GRACE_MS) {
            /* a call on packetdrill's other thread may be about to send */
            unlock(s);
            real_sleep_ms(1);
            waited++;
            lock(s);
            continue;
        }
        if (mptun_instance_timeout(s->inst, &t) != 1 || t > limit) {
            /* nothing will ever come: a packet too short to parse fails the script */
            unsigned char *b = buf;
            if (s->trace)
                fprintf(stderr, "shim: nothing to send and no timer before +%llus\n",
                        (unsigned long long)(MAX_JUMP_US / 1000000));
            b[0] = 0x45;
            *count = 1;
            *time_usecs = (long long)(EPOCH_US + s->clock);
            unlock(s);
            return 0;
        }
        advance_locked(s, t > s->clock ? t : s->clock);
        waited = 0;
    }
}

static int sh_usleep(void *userdata, useconds_t usec) {
    SHIM;
    int i;
    /* a call on packetdrill's other thread that the last packet unblocked must finish at
     * the time it was unblocked, before the clock moves on: while such a call runs, give
     * it up to 20 ms of real time (one that stays blocked costs those 20 ms) */
    for (i = 0; i < 100; i++) {
        int busy;
        lock(s);
        busy = s->inflight > 0;
        unlock(s);
        if (!busy)
            break;
        real_sleep_us(200);
    }
    lock(s);
    advance_locked(s, s->clock + usec);
    unlock(s);
    return 0;
}

static int sh_gettimeofday(void *userdata, struct timeval *tv, struct timezone *tz) {
    SHIM;
    uint64_t t;
    (void)tz;
    lock(s);
    s->clock += 1; /* packetdrill spins on this: time must move */
    advance_locked(s, s->clock);
    t = EPOCH_US + s->clock;
    unlock(s);
    tv->tv_sec = (time_t)(t / 1000000);
    tv->tv_usec = (suseconds_t)(t % 1000000);
    return 0;
}

static int sh_epoll_create(void *userdata, int size) {
    (void)userdata;
    (void)size;
    errno = ENOSYS;
    return -1;
}

static int sh_epoll_ctl(void *userdata, int epfd, int op, int fd, struct epoll_event *ev) {
    (void)userdata;
    (void)epfd;
    (void)op;
    (void)fd;
    (void)ev;
    errno = ENOSYS;
    return -1;
}

static int sh_epoll_wait(void *userdata, int epfd, struct epoll_event *ev, int max, int t) {
    (void)userdata;
    (void)epfd;
    (void)ev;
    (void)max;
    (void)t;
    errno = ENOSYS;
    return -1;
}

static int sh_pipe(void *userdata, int fds[2]) {
    (void)userdata;
    (void)fds;
    errno = ENOSYS;
    return -1;
}

static int sh_splice(void *userdata, int in, loff_t *oin, int out, loff_t *oout, size_t len,
                     unsigned int flags) {
    (void)userdata;
    (void)in;
    (void)oin;
    (void)out;
    (void)oout;
    (void)len;
    (void)flags;
    errno = ENOSYS;
    return -1;
}

static void sh_free(void *userdata) {
    SHIM;
    struct outpkt *p;
    mptun_instance_free(s->inst);
    while ((p = s->head)) {
        s->head = p->next;
        free(p);
    }
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void packetdrill_interface_init(const char *flags, struct packetdrill_interface *ifc) {
    struct shim *s = calloc(1, sizeof *s);
    if (!s) {
        fprintf(stderr, "mptun_shim: out of memory\n");
        exit(1);
    }
    pthread_mutex_init(&s->mu, NULL);
    s->trace = getenv("MPTUN_SHIM_TRACE") != NULL;
    s->inst = mptun_instance_new(flags ? flags : "");
    if (!s->inst) {
        fprintf(stderr, "mptun_shim: mptun_instance_new(\"%s\"): %s\n", flags ? flags : "",
                strerror(errno));
        exit(1);
    }
    memset(ifc, 0, sizeof *ifc);
    ifc->userdata = s;
    ifc->free = sh_free;
    ifc->socket = sh_socket;
    ifc->bind = sh_bind;
    ifc->listen = sh_listen;
    ifc->accept = sh_accept;
    ifc->connect = sh_connect;
    ifc->read = sh_read;
    ifc->readv = sh_readv;
    ifc->recv = sh_recv;
    ifc->recvfrom = sh_recvfrom;
    ifc->recvmsg = sh_recvmsg;
    ifc->write = sh_write;
    ifc->writev = sh_writev;
    ifc->send = sh_send;
    ifc->sendto = sh_sendto;
    ifc->sendmsg = sh_sendmsg;
    ifc->fcntl = sh_fcntl;
    ifc->ioctl = sh_ioctl;
    ifc->close = sh_close;
    ifc->shutdown = sh_shutdown;
    ifc->getsockopt = sh_getsockopt;
    ifc->setsockopt = sh_setsockopt;
    ifc->poll = sh_poll;
    ifc->netdev_send = sh_netdev_send;
    ifc->netdev_receive = sh_netdev_receive;
    ifc->usleep = sh_usleep;
    ifc->gettimeofday = sh_gettimeofday;
    ifc->epoll_create = sh_epoll_create;
    ifc->epoll_ctl = sh_epoll_ctl;
    ifc->epoll_wait = sh_epoll_wait;
    ifc->pipe = sh_pipe;
    ifc->splice = sh_splice;
}

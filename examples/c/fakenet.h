/*
 * fakenet.h - a fake network and clock for two manually driven mptun instances in one
 * process (header-only, for the examples and tests): every packet one instance sends
 * arrives at the other LATENCY_US later; tick() moves the clock to the next arrival or
 * timer. Include after mptun.h; define LATENCY_US first to change the delay.
 */
#ifndef MPTUN_FAKENET_H
#define MPTUN_FAKENET_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#ifndef LATENCY_US
#define LATENCY_US 5000u
#endif

static void die(const char *what) {
    fprintf(stderr, "%s (errno %d: %s)\n", what, errno, strerror(errno));
    exit(1);
}


struct pkt {
    uint64_t at;
    int to;
    size_t len;
    unsigned char b[1500];
};

static struct pkt *q;
static size_t nq, capq;
static mptun_instance *inst[2];
static uint64_t now_us;

/* Everything `from` sends goes to the other instance after LATENCY_US. */
static void drain(int from) {
    for (;;) {
        if (nq == capq) {
            capq = capq ? 2 * capq : 1024;
            q = realloc(q, capq * sizeof *q);
            if (!q)
                die("out of memory");
        }
        ssize_t n = mptun_instance_output(inst[from], q[nq].b, sizeof q[nq].b);
        if (n < 0)
            die("mptun_instance_output");
        if (n == 0)
            return;
        q[nq].at = now_us + LATENCY_US;
        q[nq].to = 1 - from;
        q[nq].len = (size_t)n;
        nq++;
    }
}

/* Delivers the packets due, runs the timers due, collects what the instances send. */
static void step(void) {
    int i;
    size_t k, kept = 0;
    drain(0);
    drain(1);
    for (k = 0; k < nq; k++) {
        if (q[k].at <= now_us) {
            if (mptun_instance_input(inst[q[k].to], q[k].b, q[k].len, now_us) != 0)
                die("mptun_instance_input");
        } else {
            if (kept != k)
                q[kept] = q[k];
            kept++;
        }
    }
    nq = kept;
    for (i = 0; i < 2; i++)
        if (mptun_instance_advance(inst[i], now_us) != 0)
            die("mptun_instance_advance");
    drain(0);
    drain(1);
}

/* Moves the fake clock to the next arrival or timer, at most max_us ahead, and steps. */
static void tick(uint64_t max_us) {
    uint64_t next = now_us + max_us, t;
    size_t k;
    int i;
    for (k = 0; k < nq; k++)
        if (q[k].at < next)
            next = q[k].at;
    for (i = 0; i < 2; i++)
        if (mptun_instance_timeout(inst[i], &t) == 1 && t < next)
            next = t;
    if (next > now_us)
        now_us = next;
    step();
}

static struct sockaddr_in sin_of(const char *ip, uint16_t port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    if (inet_pton(AF_INET, ip, &a.sin_addr) != 1)
        die("inet_pton");
    return a;
}

static void fakenet_free(void) {
    free(q);
    q = NULL;
    nq = capq = 0;
}

#endif /* MPTUN_FAKENET_H */

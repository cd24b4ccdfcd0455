/* Unit tests of src/cid.c: the CID layout, and the steering program run
 * by the kernel on a SO_REUSEPORT group of loopback sockets. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cid.h"
#include "t.h"

T_TEST(layout)
{
    uint8_t c[CID_LEN];

    for (unsigned w = 0; w < CID_MAX_WORKERS; w++) {
        memset(c, 0xa5, sizeof(c));
        cid_set_worker(c, sizeof(c), w);
        T_EQ(cid_worker(c, sizeof(c)), w);
        /* only the worker byte is written */
        T_EQ(c[0], 0xa5);
        for (size_t i = CID_WORKER_OFF + 1; i < sizeof(c); i++)
            T_EQ(c[i], 0xa5);
    }
    T_EQ(cid_worker(c, 8), CID_NO_WORKER);
    T_EQ(cid_worker(c, 20), CID_NO_WORKER);
}

/* A long header packet: flags, version, DCID length, DCID, SCID ... */
static size_t long_pkt(uint8_t *p, uint8_t dcidlen, unsigned worker)
{
    size_t n = 0;

    p[n++] = 0xc0;
    p[n++] = 0, p[n++] = 0, p[n++] = 0, p[n++] = 1;
    p[n++] = dcidlen;
    for (unsigned i = 0; i < dcidlen; i++)
        p[n++] = (uint8_t)(0x30 + i);
    if (dcidlen > CID_WORKER_OFF)
        p[6 + CID_WORKER_OFF] = (uint8_t)worker;
    p[n++] = 8;
    for (int i = 0; i < 8; i++)
        p[n++] = 0x77;
    while (n < 1200)
        p[n++] = 0;
    return n;
}

static size_t short_pkt(uint8_t *p, unsigned worker)
{
    size_t n = 0;

    p[n++] = 0x40;
    for (unsigned i = 0; i < CID_LEN; i++)
        p[n++] = (uint8_t)(0x50 + i);
    p[1 + CID_WORKER_OFF] = (uint8_t)worker;
    while (n < 60)
        p[n++] = 0x11;
    return n;
}

T_TEST(packet)
{
    uint8_t p[1500];
    size_t n;

    n = long_pkt(p, CID_LEN, 3);
    T_EQ(cid_steer_packet(p, n), 3u);
    /* a client's first Initial: its own DCID, of another length */
    n = long_pkt(p, 8, 3);
    T_EQ(cid_steer_packet(p, n), CID_NO_WORKER);
    n = long_pkt(p, 20, 3);
    T_EQ(cid_steer_packet(p, n), CID_NO_WORKER);
    n = short_pkt(p, 5);
    T_EQ(cid_steer_packet(p, n), 5u);
    /* cut short: every length below the worker byte falls back */
    long_pkt(p, CID_LEN, 1);
    for (n = 0; n < 6 + CID_WORKER_OFF + 1; n++)
        T_EQ(cid_steer_packet(p, n), CID_NO_WORKER);
    T_EQ(cid_steer_packet(p, n), 1u);
    short_pkt(p, 1);
    for (n = 0; n < 1 + CID_WORKER_OFF + 1; n++)
        T_EQ(cid_steer_packet(p, n), CID_NO_WORKER);
    T_EQ(cid_steer_packet(p, n), 1u);
}

T_TEST(program_shape)
{
    struct sock_filter prog[CID_PROG_MAX];
    size_t n = cid_steer_prog(prog);

    T_CHECK(n > 0 && n <= CID_PROG_MAX);
    /* every jump lands inside the program */
    for (size_t i = 0; i < n; i++)
        if (BPF_CLASS(prog[i].code) == BPF_JMP &&
            BPF_OP(prog[i].code) != BPF_JA) {
            T_CHECK(i + 1 + prog[i].jt < n);
            T_CHECK(i + 1 + prog[i].jf < n);
        }
    T_EQ(BPF_CLASS(prog[n - 1].code), BPF_RET);
}

/* ---- through the kernel ---- */

#define NSOCK 4
static int group[NSOCK];
static struct sockaddr_in group_addr;

static int group_open(int attach)
{
    socklen_t len = sizeof(group_addr);
    int on = 1;

    for (int i = 0; i < NSOCK; i++) {
        group[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        if (group[i] < 0 ||
            setsockopt(group[i], SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) < 0)
            return -1;
        if (i == 0) {
            memset(&group_addr, 0, sizeof(group_addr));
            group_addr.sin_family = AF_INET;
            group_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        }
        /* bound in order: the group's index i is socket i */
        if (bind(group[i], (struct sockaddr *)&group_addr,
                 sizeof(group_addr)) < 0)
            return -1;
        if (i == 0 &&
            getsockname(group[0], (struct sockaddr *)&group_addr, &len) < 0)
            return -1;
    }
    return attach ? cid_steer_attach(group[0]) : 0;
}

static void group_close(void)
{
    for (int i = 0; i < NSOCK; i++)
        if (group[i] >= 0)
            close(group[i]);
}

/* Sends p from a fresh source port; which socket of the group got it
 * (-1: none within a second). */
static int land(const uint8_t *p, size_t n)
{
    int c = socket(AF_INET, SOCK_DGRAM, 0), got = -1;
    struct pollfd pf[NSOCK];
    uint8_t buf[2048];

    if (c < 0)
        return -1;
    if (sendto(c, p, n, 0, (struct sockaddr *)&group_addr,
               sizeof(group_addr)) != (ssize_t)n) {
        close(c);
        return -1;
    }
    for (int i = 0; i < NSOCK; i++)
        pf[i] = (struct pollfd){.fd = group[i], .events = POLLIN};
    if (poll(pf, NSOCK, 1000) > 0)
        for (int i = 0; i < NSOCK; i++)
            if (pf[i].revents & POLLIN) {
                while (recv(group[i], buf, sizeof(buf), 0) >= 0)
                    ;
                got = got < 0 ? i : 99; /* two sockets: wrong */
            }
    close(c);
    return got;
}

T_TEST(kernel_steers)
{
    uint8_t p[1500];
    size_t n;

    T_EQ(group_open(1), 0);
    for (unsigned w = 0; w < NSOCK; w++) {
        for (int k = 0; k < 8; k++) { /* 8 source ports each */
            n = long_pkt(p, CID_LEN, w);
            T_EQ(land(p, n), (int)w);
            n = short_pkt(p, w);
            T_EQ(land(p, n), (int)w);
        }
    }
    group_close();
}

/* What names no worker goes to the kernel's hash, not to socket 0: a
 * load past the end of a short packet must not end the program with 0. */
T_TEST(kernel_falls_back)
{
    uint8_t p[1500];
    int cut[NSOCK] = {0}, foreign[NSOCK] = {0}, spread_cut = 0,
        spread_foreign = 0;

    T_EQ(group_open(1), 0);
    for (int k = 0; k < 48; k++) {
        int s;

        /* too short to hold a worker byte: a long header of 1..7 bytes,
         * a short header of 1..2 */
        long_pkt(p, CID_LEN, 0);
        if (k % 2) {
            p[0] = 0x40;
            s = land(p, (size_t)(k / 2 % (1 + CID_WORKER_OFF)) + 1);
        } else {
            s = land(p, (size_t)(k / 2 % (6 + CID_WORKER_OFF)) + 1);
        }
        T_CHECK(s >= 0 && s < NSOCK);
        cut[s]++;
        /* a worker byte past the group's size, and foreign DCIDs */
        s = land(p, k % 2 ? short_pkt(p, NSOCK + (unsigned)k)
                          : long_pkt(p, 8, 0));
        T_CHECK(s >= 0 && s < NSOCK);
        foreign[s]++;
    }
    for (int i = 0; i < NSOCK; i++) {
        spread_cut += cut[i] > 0;
        spread_foreign += foreign[i] > 0;
    }
    /* 48 packets of each kind from as many source ports: the hash uses
     * every socket (all on one would mean the program answered 0) */
    T_EQ(spread_cut, NSOCK);
    T_EQ(spread_foreign, NSOCK);
    group_close();
}

/* Without the program the kernel hashes the 4-tuple: worker bytes mean
 * nothing (what tests/it/86 shows with whole connections). */
T_TEST(kernel_without_program)
{
    uint8_t p[1500];
    int wrong = 0;

    T_EQ(group_open(0), 0);
    for (int k = 0; k < 32; k++)
        wrong += land(p, short_pkt(p, 1)) != 1;
    T_CHECK(wrong > 8);
    group_close();
}

int main(void)
{
    T_RUN(layout);
    T_RUN(packet);
    T_RUN(program_shape);
    T_RUN(kernel_steers);
    T_RUN(kernel_falls_back);
    T_RUN(kernel_without_program);
    return t_failures != 0;
}

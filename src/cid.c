/* cid: see cid.h. */
#include "cid.h"

#include <sys/socket.h>

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif

/* RFC 9000 §17.2: flags (1), version (4), DCID length (1), DCID */
#define LONG_DCIDLEN_OFF 5
#define LONG_DCID_OFF 6
/* §17.3: flags (1), DCID (our length: the peer cannot say it) */
#define SHORT_DCID_OFF 1

void cid_set_worker(uint8_t *cid, size_t len, unsigned worker)
{
    if (len > CID_WORKER_OFF)
        cid[CID_WORKER_OFF] = (uint8_t)worker;
}

unsigned cid_worker(const uint8_t *cid, size_t len)
{
    return len == CID_LEN ? cid[CID_WORKER_OFF] : CID_NO_WORKER;
}

unsigned cid_steer_packet(const uint8_t *p, size_t n)
{
    if (n < 1)
        return CID_NO_WORKER;
    if (p[0] & 0x80) {
        if (n < LONG_DCID_OFF + CID_WORKER_OFF + 1 ||
            p[LONG_DCIDLEN_OFF] != CID_LEN)
            return CID_NO_WORKER;
        return p[LONG_DCID_OFF + CID_WORKER_OFF];
    }
    if (n < SHORT_DCID_OFF + CID_WORKER_OFF + 1)
        return CID_NO_WORKER;
    return p[SHORT_DCID_OFF + CID_WORKER_OFF];
}

/*
 * The kernel runs this on the UDP payload (it pulls the UDP header
 * first).  A load past the end of the packet would end a classic BPF
 * program with 0, i.e. "worker 0": every load is checked against the
 * length first, and every way out that is not a worker byte returns
 * 0xffffffff, which is past any group's size (the kernel's hash decides).
 */
size_t cid_steer_prog(struct sock_filter *prog)
{
    enum { LONG_MIN = LONG_DCID_OFF + CID_WORKER_OFF + 1,
           SHORT_MIN = SHORT_DCID_OFF + CID_WORKER_OFF + 1 };
    /* jt/jf count the instructions skipped after the jump */
    const struct sock_filter p[] = {
        /* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
        /* 1 */ BPF_STMT(BPF_MISC | BPF_TAX, 0),
        /* 2 */ BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, SHORT_MIN, 0, 10),
        /* 3 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),
        /* 4 */ BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x80, 2, 0),
        /* short header */
        /* 5 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS,
                         SHORT_DCID_OFF + CID_WORKER_OFF),
        /* 6 */ BPF_STMT(BPF_RET | BPF_A, 0),
        /* long header: long enough, and a DCID of our length */
        /* 7 */ BPF_STMT(BPF_MISC | BPF_TXA, 0),
        /* 8 */ BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, LONG_MIN, 0, 4),
        /* 9 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, LONG_DCIDLEN_OFF),
        /* 10 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, CID_LEN, 0, 2),
        /* 11 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS,
                          LONG_DCID_OFF + CID_WORKER_OFF),
        /* 12 */ BPF_STMT(BPF_RET | BPF_A, 0),
        /* 13: not ours */
        BPF_STMT(BPF_RET | BPF_K, CID_NO_WORKER),
    };
    size_t n = sizeof(p) / sizeof(p[0]);

    for (size_t i = 0; i < n; i++)
        prog[i] = p[i];
    return n;
}

int cid_steer_attach(int fd)
{
    struct sock_filter prog[CID_PROG_MAX];
    struct sock_fprog fp = {.len = (unsigned short)cid_steer_prog(prog),
                            .filter = prog};

    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fp,
                      sizeof(fp));
}

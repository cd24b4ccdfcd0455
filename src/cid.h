/*
 * cid: the layout of the connection IDs the server issues, and the
 * classic BPF program that steers each packet of a SO_REUSEPORT group to
 * the worker named in its destination connection ID (workers = N).
 *
 * A CID is CID_LEN bytes:
 *
 *   byte 0        random today; kept for QUIC-LB's first octet (config
 *                 rotation bits) should a fleet's balancer want it
 *   byte 1        the worker index (0 .. N-1)
 *   bytes 2..17   random (128 bits: nobody can guess a live CID)
 *
 * A QUIC-LB server id would go between byte 0 and the worker byte
 * (README, "Plan on paper"): CID_WORKER_OFF is the one place that says
 * where the worker byte is, for the issuer and for the BPF program alike.
 * Pure except cid_steer_attach(): no allocation, no globals.
 */
#ifndef WTRELAYD_CID_H
#define WTRELAYD_CID_H

#include <linux/filter.h>
#include <stddef.h>
#include <stdint.h>

#define CID_LEN 18
#define CID_WORKER_OFF 1
/* More worker processes than this make no sense on one machine; the
 * worker byte could name 255. */
#define CID_MAX_WORKERS 64
/* What cid_worker() and cid_steer_packet() answer for "not one of ours":
 * the kernel then falls back to its 4-tuple hash. */
#define CID_NO_WORKER 0xffffffffu

/* Writes the worker index into a CID whose other bytes are random. */
void cid_set_worker(uint8_t *cid, size_t len, unsigned worker);
/* The worker a CID of ours names; CID_NO_WORKER when it is not of our
 * length. */
unsigned cid_worker(const uint8_t *cid, size_t len);

/* What the BPF program answers for one UDP payload, in C: the worker
 * byte of the destination CID (long header: DCID length CID_LEN at byte
 * 5, DCID from byte 6; short header: DCID from byte 1), or CID_NO_WORKER
 * when the packet is too short or its DCID is not of our length.  The
 * kernel uses its hash whenever the answer is >= the group's size, so
 * this need not know N. */
unsigned cid_steer_packet(const uint8_t *p, size_t n);

/* The program (cid_steer_packet() in classic BPF) into prog; returns its
 * length (<= CID_PROG_MAX). */
#define CID_PROG_MAX 16
size_t cid_steer_prog(struct sock_filter *prog);
/* Attaches it to the SO_REUSEPORT group `fd` belongs to
 * (SO_ATTACH_REUSEPORT_CBPF).  0, or -1 with errno. */
int cid_steer_attach(int fd);

#endif

/*
 * prio: how the kernel schedules the loop thread.
 *
 * The loop sleeps until a packet comes and then has microseconds of work
 * to do; on a busy machine what delays an answer is the wait for a core,
 * not the work.  Linux's fair scheduler (EEVDF; custom slices since 6.12)
 * lets a thread ask for a shorter slice: woken, it gets an earlier
 * deadline and preempts a neighbour running long slices (a handshake
 * thread's key exchange, another process's batch job) instead of waiting
 * out the neighbour's slice, ~1.4 ms on 2 cores.  Its share of the CPU
 * does not change: that is the nice value's business.
 */
#ifndef WTRELAYD_PRIO_H
#define WTRELAYD_PRIO_H

/* The kernel's floor and ceiling for a slice (it clamps to them). */
#define PRIO_SLICE_MIN_US 100
#define PRIO_SLICE_MAX_US 100000

/* Asks for a slice of `us` microseconds for the calling thread (0: the
 * kernel's default again; a new thread inherits its creator's).  The
 * policy and nice value stay.  Returns 1 when the kernel took it, 0 when
 * it accepted the call but keeps its default (Linux before 6.12), or
 * -errno (EPERM under a seccomp filter without sched_setattr; ENOTSUP for
 * a thread outside the fair scheduler, e.g. SCHED_FIFO, left as it is). */
int prio_set_slice(unsigned us);

/* A helper thread (handshake threads): the kernel's default slice, and a
 * priority `nice_inc` steps lower than the thread has (nice at most 19;
 * raising a priority takes a privilege, lowering one does not).  0, or
 * -errno as above. */
int prio_helper_thread(unsigned nice_inc);

#endif

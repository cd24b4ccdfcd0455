/*
 * offload: a few helper threads that run jobs off the loop thread and hand
 * each one back to the loop (an ev_async), where its result is used.
 *
 * The job's owner decides what a job may touch: work() runs on a helper
 * thread and must touch nothing the loop thread uses meanwhile; done()
 * runs on the loop thread.  The mutex that moves a job between the two is
 * what orders their accesses.  Bounded: at most `depth` jobs submitted and
 * not yet handed back (offload_full()).
 */
#ifndef WTRELAYD_OFFLOAD_H
#define WTRELAYD_OFFLOAD_H

#include <ev.h>
#include <pthread.h>
#include <stddef.h>

/* Lives inside the job's own struct. */
struct offload_job {
    struct offload_job *next;
};

/* Helper thread. */
typedef void (*offload_work_fn)(struct offload_job *j);
/* Loop thread: the job is the owner's again; worked is 0 for a job that
 * offload_stop() took back before any thread ran it. */
typedef void (*offload_done_fn)(struct offload_job *j, int worked, void *arg);

#define OFFLOAD_MAX_THREADS 16

struct offload {
    struct ev_loop *loop;
    ev_async async; /* a helper thread finished a job */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t threads[OFFLOAD_MAX_THREADS];
    unsigned nthreads; /* started; 0: not running */
    int stopping;      /* under mu */
    /* under mu: submitted, not taken by a thread; worked, not handed back */
    struct offload_job *todo, **todo_tail, *done, **done_tail;
    size_t busy;  /* loop thread only: submitted and not yet handed back */
    size_t depth; /* the most busy may be */
    unsigned nice_inc; /* the threads' priority below the loop's */
    offload_work_fn work;
    offload_done_fn done_cb;
    void *arg;
};

/*
 * Starts nthreads (1 to OFFLOAD_MAX_THREADS) helper threads, nice_inc
 * nice steps below the loop thread's priority (prio.h; 0: the same), with
 * the kernel's default slice whatever the loop thread's.  Far lower (nice
 * 19, SCHED_IDLE) a thread holding the mutex the loop waits for, or a
 * lock inside GnuTLS or malloc, would wait for the CPU with the loop
 * behind it (measured: SCHED_IDLE made the flood's p99 2.9-4.0x the quiet
 * one's in 4 runs of 4 on a loaded machine); the handshake threads' nice
 * 10 (a tenth of a busy neighbour's share) made it 0.95-1.58x in 10 runs
 * of 10 with the loop's short slice, against 1.17-2.82x at the loop's own
 * priority.  0, or -1 with a message in err (nothing started).
 */
int offload_start(struct offload *o, struct ev_loop *loop, unsigned nthreads,
                  unsigned nice_inc, size_t depth, offload_work_fn work,
                  offload_done_fn done, void *arg, char *err, size_t errlen);
int offload_running(const struct offload *o);
/* No room for another job: the owner keeps it for later. */
int offload_full(const struct offload *o);
/* Queues a job for the next free helper thread (not when full). */
void offload_submit(struct offload *o, struct offload_job *j);
/*
 * Stops the threads (each ends the job it runs, if any) and joins them;
 * then every job not yet handed back is, through done(): worked or not.
 * Nothing runs off the loop thread afterwards.  A no-op when not running.
 */
void offload_stop(struct offload *o);

#endif

/* prio: see prio.h. */
#include "prio.h"

#include <errno.h>
#include <linux/sched.h> /* (not <sched.h>: its struct sched_param clashes) */
#include <linux/sched/types.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* sched_setattr on the calling thread: its policy, nice value and flags
 * as they are, but for the slice and the nice increment */
static int set(unsigned us, unsigned nice_inc)
{
    struct sched_attr a;

    if (us > PRIO_SLICE_MAX_US)
        us = PRIO_SLICE_MAX_US;
    memset(&a, 0, sizeof(a));
    if (syscall(SYS_sched_getattr, 0, &a, sizeof(a), 0) < 0)
        return -errno;
    if (a.sched_policy != SCHED_NORMAL && a.sched_policy != SCHED_BATCH)
        return -ENOTSUP;
    a.size = sizeof(a);
    a.sched_runtime = (uint64_t)us * 1000;
    a.sched_nice = a.sched_nice + (int)(nice_inc > 39 ? 39 : nice_inc);
    if (a.sched_nice > 19)
        a.sched_nice = 19;
    if (syscall(SYS_sched_setattr, 0, &a, 0) < 0)
        return -errno;
    return 0;
}

int prio_set_slice(unsigned us)
{
    struct sched_attr a;
    int rv = set(us, 0);

    if (rv < 0)
        return rv;
    memset(&a, 0, sizeof(a));
    if (syscall(SYS_sched_getattr, 0, &a, sizeof(a), 0) < 0)
        return -errno;
    /* (a kernel without custom slices reports no runtime for this policy) */
    return us == 0 || a.sched_runtime != 0;
}

int prio_helper_thread(unsigned nice_inc)
{
    return set(0, nice_inc);
}

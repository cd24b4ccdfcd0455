/* prio: see prio.h. */
#include "prio.h"

#include <errno.h>
#include <linux/sched.h> /* (not <sched.h>: its struct sched_param clashes) */
#include <linux/sched/types.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int prio_set_slice(unsigned us)
{
    struct sched_attr a;

    if (us > PRIO_SLICE_MAX_US)
        us = PRIO_SLICE_MAX_US;
    /* what the thread has now (policy, nice, flags) is written back as is */
    memset(&a, 0, sizeof(a));
    if (syscall(SYS_sched_getattr, 0, &a, sizeof(a), 0) < 0)
        return -errno;
    if (a.sched_policy != SCHED_NORMAL && a.sched_policy != SCHED_BATCH)
        return -ENOTSUP;
    a.size = sizeof(a);
    a.sched_runtime = (uint64_t)us * 1000;
    if (syscall(SYS_sched_setattr, 0, &a, 0) < 0)
        return -errno;
    memset(&a, 0, sizeof(a));
    if (syscall(SYS_sched_getattr, 0, &a, sizeof(a), 0) < 0)
        return -errno;
    /* (a kernel without custom slices reports no runtime for this policy) */
    return us == 0 || a.sched_runtime != 0;
}

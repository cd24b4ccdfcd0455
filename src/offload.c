/* offload: see offload.h. */
#include "offload.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "prio.h"

static void *thread_main(void *arg)
{
    struct offload *o = arg;

    /* a job runs long (a key exchange): the kernel's default slice, not
     * the short one the loop thread may have asked for and passed on, and
     * a lower priority than the loop's (set before the thread started) */
    (void)prio_helper_thread(o->nice_inc);
    pthread_mutex_lock(&o->mu);
    for (;;) {
        struct offload_job *j;

        while (!o->todo && !o->stopping)
            pthread_cond_wait(&o->cv, &o->mu);
        if (o->stopping)
            break;
        j = o->todo;
        if (!(o->todo = j->next))
            o->todo_tail = &o->todo;
        pthread_mutex_unlock(&o->mu);

        o->work(j);

        pthread_mutex_lock(&o->mu);
        j->next = NULL;
        *o->done_tail = j;
        o->done_tail = &j->next;
        /* libev's ev_async_send is the one call safe from any thread */
        ev_async_send(o->loop, &o->async);
    }
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

/* Hands back what the threads finished (loop thread). */
static void async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    struct offload *o = w->data;
    struct offload_job *j, *next;

    (void)loop;
    (void)revents;
    pthread_mutex_lock(&o->mu);
    j = o->done;
    o->done = NULL;
    o->done_tail = &o->done;
    pthread_mutex_unlock(&o->mu);
    for (; j; j = next) {
        next = j->next;
        o->busy--;
        o->done_cb(j, 1, o->arg);
    }
}

int offload_start(struct offload *o, struct ev_loop *loop, unsigned nthreads,
                  unsigned nice_inc, size_t depth, offload_work_fn work,
                  offload_done_fn done, void *arg, char *err, size_t errlen)
{
    sigset_t all, old;
    int rv = 0;

    memset(o, 0, sizeof(*o));
    if (nthreads < 1 || nthreads > OFFLOAD_MAX_THREADS) {
        snprintf(err, errlen, "helper threads: %u (1 to %d)", nthreads,
                 OFFLOAD_MAX_THREADS);
        return -1;
    }
    o->loop = loop;
    o->todo_tail = &o->todo;
    o->done_tail = &o->done;
    o->depth = depth ? depth : 1;
    o->nice_inc = nice_inc;
    o->work = work;
    o->done_cb = done;
    o->arg = arg;
    if (pthread_mutex_init(&o->mu, NULL) != 0) {
        snprintf(err, errlen, "helper threads: no mutex");
        return -1;
    }
    if (pthread_cond_init(&o->cv, NULL) != 0) {
        pthread_mutex_destroy(&o->mu);
        snprintf(err, errlen, "helper threads: no condition variable");
        return -1;
    }
    ev_async_init(&o->async, async_cb);
    o->async.data = o;
    ev_async_start(loop, &o->async);
    /* signals (SIGTERM, SIGHUP, ...) stay the loop thread's: a helper
     * thread inherits a mask that blocks them all */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (unsigned i = 0; i < nthreads; i++) {
        if ((rv = pthread_create(&o->threads[i], NULL, thread_main, o)) != 0)
            break;
        o->nthreads++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rv != 0) {
        snprintf(err, errlen, "helper threads: %s", strerror(rv));
        offload_stop(o);
        return -1;
    }
    return 0;
}

int offload_running(const struct offload *o)
{
    return o->nthreads > 0;
}

int offload_full(const struct offload *o)
{
    return o->busy >= o->depth;
}

void offload_submit(struct offload *o, struct offload_job *j)
{
    j->next = NULL;
    o->busy++;
    pthread_mutex_lock(&o->mu);
    *o->todo_tail = j;
    o->todo_tail = &j->next;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

void offload_stop(struct offload *o)
{
    struct offload_job *j, *next, *todo;

    if (!o->loop)
        return;
    pthread_mutex_lock(&o->mu);
    o->stopping = 1;
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
    for (unsigned i = 0; i < o->nthreads; i++)
        pthread_join(o->threads[i], NULL);
    o->nthreads = 0;
    /* alone now: what was finished, then what no thread took */
    async_cb(o->loop, &o->async, 0);
    todo = o->todo;
    o->todo = NULL;
    o->todo_tail = &o->todo;
    for (j = todo; j; j = next) {
        next = j->next;
        o->busy--;
        o->done_cb(j, 0, o->arg);
    }
    ev_async_stop(o->loop, &o->async);
    pthread_cond_destroy(&o->cv);
    pthread_mutex_destroy(&o->mu);
    o->loop = NULL;
}

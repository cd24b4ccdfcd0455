/* Unit tests of the pure parts of src/super.c: the merged metrics page
 * and the worker's environment. */
#include <stdlib.h>
#include <string.h>

#include "super.h"
#include "t.h"

static const char w0[] =
    "# HELP a_total A.\n# TYPE a_total counter\na_total 3\n"
    "# HELP b Bee.\n# TYPE b gauge\nb{route=\"/x\"} 1\nb{route=\"/y\"} 2\n"
    "# HELP h Hist.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 0.5\nh_count 1\n"
    "# HELP e Empty.\n# TYPE e counter\n";
static const char w1[] =
    "# HELP a_total A.\n# TYPE a_total counter\na_total 4\n"
    "# HELP c Only here.\n# TYPE c gauge\nc{} 9\n"
    "# HELP b Bee.\n# TYPE b gauge\nb{route=\"/x\"} 5\n";

T_TEST(merge)
{
    char *bodies[3] = {strdup(w0), NULL, strdup(w1)};
    size_t lens[3] = {strlen(w0), 0, strlen(w1)}, len = 0;
    char *m = super_metrics_merge(bodies, lens, 3, &len);
    const char *want =
        "# HELP a_total A.\n# TYPE a_total counter\n"
        "a_total{worker=\"0\"} 3\na_total{worker=\"2\"} 4\n"
        "# HELP b Bee.\n# TYPE b gauge\n"
        "b{worker=\"0\",route=\"/x\"} 1\nb{worker=\"0\",route=\"/y\"} 2\n"
        "b{worker=\"2\",route=\"/x\"} 5\n"
        "# HELP h Hist.\n# TYPE h histogram\n"
        "h_bucket{worker=\"0\",le=\"1\"} 1\nh_sum{worker=\"0\"} 0.5\n"
        "h_count{worker=\"0\"} 1\n"
        "# HELP e Empty.\n# TYPE e counter\n"
        "# HELP c Only here.\n# TYPE c gauge\nc{worker=\"2\"} 9\n";

    T_CHECK(m != NULL);
    T_EQ(len, strlen(m));
    T_STREQ(m, want);
    free(m);
    free(bodies[0]);
    free(bodies[2]);
}

T_TEST(merge_nothing)
{
    char *bodies[2] = {NULL, NULL};
    size_t lens[2] = {0, 0}, len = 99;
    char *m = super_metrics_merge(bodies, lens, 2, &len);

    T_CHECK(m != NULL);
    T_EQ(len, 0u);
    free(m);
}

/* a body cut anywhere (a worker's page is not trusted to be whole) */
T_TEST(merge_cut)
{
    for (size_t cut = 0; cut <= strlen(w0); cut++) {
        char *b = malloc(cut + 1);
        size_t len;
        char *m;

        memcpy(b, w0, cut);
        b[cut] = '\0';
        m = super_metrics_merge(&b, &cut, 1, &len);
        T_CHECK(m != NULL);
        T_EQ(strlen(m), len);
        free(m);
        free(b);
    }
}

T_TEST(worker_env)
{
    struct super_worker_env e;
    char err[256];

    unsetenv("WTRELAYD_WORKER");
    T_EQ(super_worker_env(&e, err, sizeof(err)), 0);
    setenv("WTRELAYD_WORKER", "1/2/77/5/6/7,8", 1);
    T_EQ(super_worker_env(&e, err, sizeof(err)), 1);
    T_EQ(e.index, 1u);
    T_EQ(e.n, 2u);
    T_EQ(e.ppid, 77);
    T_EQ(e.notify_fd, 5);
    T_EQ(e.ctl_fd, 6);
    T_EQ(e.nfds, 2u);
    T_EQ(e.fds[0], 7);
    T_EQ(e.fds[1], 8);
    T_CHECK(getenv("WTRELAYD_WORKER") == NULL);
    static const char *const bad[] = {
        "", "1/2/77/5/6", "2/2/77/5/6/7", "0/0/77/5/6/7", "0/65/1/5/6/7",
        "0/2/77/1/6/7", "0/2/77/5/6/7,x", "0/2/77/5/6/2", "0/2/77/5/6/7,,",
        "0/2/77/5/6/3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("WTRELAYD_WORKER", bad[i], 1);
        T_EQ(super_worker_env(&e, err, sizeof(err)), -1);
    }
    unsetenv("WTRELAYD_WORKER");
}

int main(void)
{
    T_RUN(merge);
    T_RUN(merge_nothing);
    T_RUN(merge_cut);
    T_RUN(worker_env);
    return t_failures != 0;
}

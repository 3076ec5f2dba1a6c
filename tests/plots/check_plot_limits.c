/* Figures whose size comes from the results' numbers stay bounded: a
 * results file naming expert 999999 in layer 999999 gets no heatmap of
 * 10^12 cells. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "plots/plot.h"
#include "tests/test_util.h"

static int count_files(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (d)
        closedir(d);
    return n;
}

START_TEST(no_heatmap_beyond_its_cell_limit)
{
    const char *dir = rs_test_path("huge_heatmap");
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/results.csv", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("run,trace,router,params,metric,key,layer,value\n"
          "r,t.h5,topk,k=2,load.expert_share,expert=0,0,0.5\n"
          "r,t.h5,topk,k=2,load.expert_share,expert=999999,999999,0.5\n"
          "s,t.h5,topk,k=1,load.expert_share,expert=1,1,0.25\n"
          "s,t.h5,topk,k=1,load.expert_share,expert=0,1,0.75\n",
          f);
    fclose(f);
    char plots[4200];
    snprintf(plots, sizeof plots, "%s/plots", dir);
    rs_plot_options opt = {.results_dir = dir, .output_dir = plots, .no_render = 1, .quiet = 1};
    rs_error err = {{0}};
    ck_assert_msg(rs_plot_make(&opt, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(count_files(plots, "heatmap"), 0);

    /* asked for by name, it is refused in one line */
    const char *kinds[] = {"heatmap"};
    opt.kinds = kinds;
    opt.num_kinds = 1;
    ck_assert_int_eq(rs_plot_make(&opt, &err), -1);
    ck_assert(err.msg[0] && !strchr(err.msg, '\n'));

    /* a model-sized one is drawn */
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("run,trace,router,params,metric,key,layer,value\n"
          "r,t.h5,topk,k=2,load.expert_share,expert=0,0,0.5\n"
          "r,t.h5,topk,k=2,load.expert_share,expert=255,63,0.5\n",
          f);
    fclose(f);
    opt.kinds = NULL;
    opt.num_kinds = 0;
    ck_assert_msg(rs_plot_make(&opt, &err) == 0, "%s", err.msg);
    ck_assert_int_gt(count_files(plots, "heatmap"), 0);
}
END_TEST

Suite *plot_limits_suite(void)
{
    Suite *s = suite_create("plot_limits");
    TCase *tc = tcase_create("plot_limits");
    tcase_add_test(tc, no_heatmap_beyond_its_cell_limit);
    suite_add_tcase(s, tc);
    return s;
}

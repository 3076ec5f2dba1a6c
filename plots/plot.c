/* rs_plot_make: read the results, choose the figures, write their data
 * files, scripts and captions, render them with gnuplot when it is there,
 * and say what was made. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/output_path.h"
#include "core/read_file.h"
#include "plots/plot_internal.h"

char *rs_plot_read_style(const char *path, rs_error *err)
{
    if (rs_is_directory(path)) {
        rs_fail(err, "%s: is a directory, expected a plot style file", path);
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        rs_fail(err, "%s: cannot read the plot style: %s", path, strerror(errno));
        return NULL;
    }
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (len < cap - 1)
            break;
        char *grown = realloc(buf, 2 * cap);
        if (!grown) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = grown;
        cap *= 2;
    }
    fclose(f);
    if (!buf) {
        rs_fail(err, "%s: out of memory", path);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

int rs_plot_require_metric(const rs_plot_table *t, const char *metric, const char *where, rs_error *err)
{
    for (int m = 0; m < t->results.num_metrics; m++)
        if (rs_plot_metric_matches(t->results.metrics[m].name, metric))
            return 0;
    char list[512];
    size_t used = 0;
    list[0] = '\0';
    for (int m = 0; m < t->results.num_metrics && used < 400; m++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", m ? ", " : "", t->results.metrics[m].name);
    if (used >= 400)
        snprintf(list + 400, sizeof list - 400, ", ...");
    return rs_fail(err, "%s%sno rows for metric '%s' in %s (it has: %s)", where ? where : "", where ? ": " : "",
                   metric, t->results.csv_path, list);
}

/* "bars 5, layers 5" for the kinds that made figures. Kinds asked for by
 * name that made none each say what they need; the others, when every kind
 * was tried, share one line. */
static void report(FILE *out, const rs_plot_figures *figs, const int *made, unsigned asked, const char *dir,
                   unsigned formats, int rendered)
{
    char line[1024];
    size_t used = 0;
    for (int k = 0; k < RS_PLOT_NUM_KINDS; k++)
        if (made[k])
            used += (size_t)snprintf(line + used, used < sizeof line ? sizeof line - used : 0, "%s%s %d",
                                     used ? ", " : "", rs_plot_kind_name(k), made[k]);
    char fmts[32] = "";
    size_t fu = 0;
    for (unsigned bit = 1; bit <= RS_PLOT_PDF; bit <<= 1)
        if (formats & bit)
            fu += (size_t)snprintf(fmts + fu, sizeof fmts - fu, "%s%s", fu ? ", " : "", rs_plot_format_name(bit));
    fprintf(out, "routesim: plot: %d figure%s in %s (%s)%s%s\n", figs->n, figs->n == 1 ? "" : "s", dir, line,
            rendered ? " as " : ", data and scripts only", rendered ? fmts : "");
    int every_kind = asked == ~0u, missing = 0, last = -1;
    char none[512];
    used = 0;
    for (int k = 0; k < RS_PLOT_NUM_KINDS; k++) {
        if (made[k] || !(asked & (1u << k)))
            continue;
        if (!every_kind) {
            fprintf(out, "routesim: plot: no %s figure: needs %s\n", rs_plot_kind_name(k), rs_plot_kind_needs(k));
            continue;
        }
        if (last >= 0) /* "a, b, c or d": each name is written when the next one shows whether it is the last */
            used += (size_t)snprintf(none + used, used < sizeof none ? sizeof none - used : 0, "%s%s",
                                     missing > 1 ? ", " : "", rs_plot_kind_name(last));
        last = k;
        missing++;
    }
    if (missing)
        fprintf(out, "routesim: plot: no %s%s%s figure%s: the results lack the rows %s (routesim plot --help says "
                     "what each kind needs)\n",
                none, missing > 1 ? " or " : "", rs_plot_kind_name(last), missing > 1 ? "s" : "",
                missing > 1 ? "they need" : "it needs");
}

/* Takes the figures that came out blank off the list and says which, in one line. */
static void drop_blank(rs_plot_figures *figs, const char *blank, int *made, FILE *out, int quiet)
{
    char names[1024];
    size_t used = 0;
    int n = 0, kept = 0;
    for (int i = 0; i < figs->n; i++) {
        if (!blank[i]) {
            figs->items[kept++] = figs->items[i];
            continue;
        }
        made[figs->items[i].kind]--;
        if (used < sizeof names)
            used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", n ? ", " : "", figs->items[i].stem);
        n++;
    }
    figs->n = kept;
    if (used >= sizeof names)
        snprintf(names + sizeof names - 5, 5, "...");
    if (n && !quiet)
        fprintf(out, "routesim: plot: skipped %d figure%s whose values are all zero or absent: %s\n", n,
                n == 1 ? "" : "s", names);
}

int rs_plot_make_requests(const rs_plot_table *t, const rs_plot_request *reqs, int num_reqs, int explicit_,
                          const rs_plot_target *target, int render, int quiet, rs_error *err)
{
    rs_plot_figures figs = {0};
    int made[RS_PLOT_NUM_KINDS] = {0};
    unsigned asked = 0, formats = 0;
    int rc = 0;
    for (int i = 0; rc == 0 && i < num_reqs; i++) {
        asked |= reqs[i].kinds ? reqs[i].kinds : ~0u;
        rc = rs_plot_choose(t, &reqs[i], &figs, made, err);
    }
    if (rc == 0 && figs.n == 0) {
        char why[768];
        size_t used = 0;
        why[0] = '\0';
        for (int k = 0; k < RS_PLOT_NUM_KINDS; k++)
            if (asked & (1u << k))
                used += (size_t)snprintf(why + used, used < sizeof why ? sizeof why - used : 0, "%s%s needs %s",
                                         used ? "; " : "", rs_plot_kind_name(k), rs_plot_kind_needs(k));
        if (explicit_)
            rc = rs_fail(err, "%s: nothing to plot for the kinds and metrics asked: %s", t->results.csv_path, why);
        else if (!quiet)
            fprintf(stderr, "routesim: plot: %s: nothing to plot\n", t->results.csv_path);
        rs_plot_figures_free(&figs);
        return rc;
    }
    if (rc == 0)
        rc = rs_make_dirs(target->dir, err);
    char *blank = rc == 0 ? calloc((size_t)figs.n, 1) : NULL;
    if (rc == 0 && !blank)
        rc = rs_fail(err, "out of memory");
    for (int i = 0; rc == 0 && i < figs.n; i++) {
        rc = rs_plot_kind_at(figs.items[i].kind)->write(t, &figs.items[i], target, err);
        blank[i] = rc == RS_PLOT_BLANK;
        rc = rc == RS_PLOT_BLANK ? 0 : rc;
    }
    if (rc == 0)
        drop_blank(&figs, blank, made, stderr, quiet);
    free(blank);
    if (rc == 0 && figs.n == 0 && explicit_)
        rc = rs_fail(err, "%s: nothing to plot: the figures asked for have values that are all zero or absent",
                     t->results.csv_path);
    if (rc == 0 && figs.n == 0) {
        rs_plot_figures_free(&figs);
        return 0;
    }
    char gnuplot[4096];
    int have = rc == 0 && render && rs_plot_find_gnuplot(gnuplot, sizeof gnuplot);
    for (int i = 0; rc == 0 && have && i < figs.n; i++) {
        const rs_plot_figure *fig = &figs.items[i];
        formats |= fig->formats;
        for (unsigned bit = 1; rc == 0 && bit <= RS_PLOT_PDF; bit <<= 1) {
            if (!(fig->formats & bit))
                continue;
            char warnings[1024];
            rc = rs_plot_render(gnuplot, target->dir, fig->stem, rs_plot_format_name(bit), fig->double_size, warnings,
                                sizeof warnings, err);
            if (rc == 0 && warnings[0] && !quiet)
                fprintf(stderr, "routesim: plot: gnuplot on %s/%s.gp: %s\n", target->dir, fig->stem, warnings);
        }
    }
    if (rc == 0 && render && !have)
        rs_plot_print_install_hint(stderr, target->dir, figs.items[0].stem);
    if (rc == 0 && !quiet)
        report(stderr, &figs, made, asked, target->dir, formats, have);
    rs_plot_figures_free(&figs);
    return rc;
}

int rs_plot_make(const rs_plot_options *opt, rs_error *err)
{
    char kinds_known[256];
    rs_plot_kind_list(kinds_known, sizeof kinds_known);
    unsigned formats = opt->formats ? rs_plot_parse_formats(opt->formats) : RS_PLOT_PNG;
    RS_CHECK(formats, err, "unknown format '%s' (known: png, svg, pdf; several: png,pdf)", opt->formats);
    int double_size = 0;
    if (opt->size && strcmp(opt->size, "double") == 0)
        double_size = 1;
    else
        RS_CHECK(!opt->size || strcmp(opt->size, "single") == 0, err,
                 "unknown size '%s' (known: single = 3.5 in wide, double = 7 in)", opt->size);
    unsigned kinds = 0;
    for (int i = 0; i < opt->num_kinds; i++) {
        int k = rs_plot_kind_find(opt->kinds[i]);
        RS_CHECK(k >= 0, err, "unknown kind '%s' (known: %s)", opt->kinds[i], kinds_known);
        kinds |= 1u << k;
    }
    const char *style_path = opt->style_file;
    if (!style_path && getenv("ROUTESIM_PLOT_STYLE") && getenv("ROUTESIM_PLOT_STYLE")[0])
        style_path = getenv("ROUTESIM_PLOT_STYLE");
    char *style = NULL;
    if (style_path && !(style = rs_plot_read_style(style_path, err)))
        return -1;

    rs_plot_table t;
    if (rs_plot_table_read(&t, opt->results_dir, err) != 0) {
        free(style);
        return -1;
    }
    int rc = 0;
    for (int i = 0; rc == 0 && i < opt->num_metrics; i++)
        rc = rs_plot_require_metric(&t, opt->metrics[i], NULL, err);
    int num_reqs = opt->num_metrics ? opt->num_metrics : 1;
    rs_plot_request *reqs = calloc((size_t)num_reqs, sizeof *reqs);
    if (rc == 0 && !reqs)
        rc = rs_fail(err, "out of memory");
    for (int i = 0; rc == 0 && i < num_reqs; i++)
        reqs[i] = (rs_plot_request){.kinds = kinds,
                                    .metric = opt->num_metrics ? opt->metrics[i] : NULL,
                                    .formats = formats,
                                    .double_size = double_size};
    char dir[4096];
    if (opt->output_dir)
        snprintf(dir, sizeof dir, "%s", opt->output_dir);
    else
        snprintf(dir, sizeof dir, "%s/plots", opt->results_dir);
    rs_plot_target target = {.dir = dir, .csv_path = t.results.csv_path, .style = style, .style_path = style_path};
    if (rc == 0)
        rc = rs_plot_make_requests(&t, reqs, num_reqs, opt->num_kinds > 0 || opt->num_metrics > 0, &target,
                                   !opt->no_render, opt->quiet, err);
    free(reqs);
    free(style);
    rs_plot_table_free(&t);
    return rc;
}

/* x-y figures: series of points drawn as lines (with error bars when every
 * point has an interval), as points, or as points labelled with text. The
 * layers, cache, segment, sweep and cost_quality kinds fill a chart and
 * write it here. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/number_text.h"
#include "plots/plot_internal.h"

rs_plot_series *rs_plot_chart_series(rs_plot_chart *c, const char *label, int style, rs_error *err)
{
    if (c->num_series == c->cap) {
        int cap = c->cap ? 2 * c->cap : 8;
        rs_plot_series *grown = realloc(c->series, (size_t)cap * sizeof *grown);
        if (!grown) {
            rs_fail(err, "out of memory");
            return NULL;
        }
        c->series = grown;
        c->cap = cap;
    }
    rs_plot_series *s = &c->series[c->num_series++];
    memset(s, 0, sizeof *s);
    snprintf(s->label, sizeof s->label, "%s", label);
    s->style = style;
    return s;
}

int rs_plot_series_add(rs_plot_series *s, double x, double y, double lo, double hi, rs_error *err)
{
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 16;
        rs_plot_point *grown = realloc(s->points, (size_t)cap * sizeof *grown);
        RS_CHECK(grown, err, "out of memory");
        s->points = grown;
        s->cap = cap;
    }
    rs_plot_point *p = &s->points[s->n++];
    memset(p, 0, sizeof *p);
    p->x = x;
    p->y = y;
    p->lo = lo;
    p->hi = hi;
    return 0;
}

static int compare_x(const void *a, const void *b)
{
    double x = ((const rs_plot_point *)a)->x, y = ((const rs_plot_point *)b)->x;
    return (x > y) - (x < y);
}

void rs_plot_series_sort(rs_plot_series *s)
{
    if (s->n > 1)
        qsort(s->points, (size_t)s->n, sizeof *s->points, compare_x);
}

void rs_plot_chart_free(rs_plot_chart *c)
{
    for (int i = 0; i < c->num_series; i++)
        free(c->series[i].points);
    free(c->series);
    c->series = NULL;
    c->num_series = c->cap = 0;
}

static int plottable(const rs_plot_series *s)
{
    for (int i = 0; i < s->n; i++)
        if (isfinite(s->points[i].x) && isfinite(s->points[i].y))
            return 1;
    return 0;
}

static int every_point_has_interval(const rs_plot_series *s)
{
    for (int i = 0; i < s->n; i++)
        if (!isfinite(s->points[i].lo) || !isfinite(s->points[i].hi))
            return 0;
    return s->n > 0;
}

/* "2" or "($2*100)": a data column scaled for the axis. */
static void column(FILE *f, int col, double scale)
{
    if (scale == 1)
        fprintf(f, "%d", col);
    else
        fprintf(f, "($%d*%.17g)", col, scale);
}

static int write_data(const rs_plot_chart *c, const rs_plot_figure *fig, const rs_plot_target *tg, const char *what,
                      rs_error *err)
{
    rs_plot_file pf;
    RS_TRY(rs_plot_file_open(&pf, tg, fig->stem, "dat", err));
    FILE *f = pf.f;
    rs_plot_data_header(f, tg, what);
    fprintf(f, "# x: %s\n# y: %s", c->xlabel, c->y.label);
    if (c->y.scale != 1)
        fprintf(f, " (the script multiplies y by %g)", c->y.scale);
    fputs("\n# One block per series (gnuplot: index 0, 1, ...), blocks separated by two blank lines.\n"
          "# columns: x y ci_low ci_high (nan = none); labelled points add the label and where it goes (0 right, 1 left, 2 below, 3 above, 4-7 below right, below left, above right, above left; 8-15 the same, farther)\n",
          f);
    for (int i = 0; i < c->num_series; i++) {
        const rs_plot_series *s = &c->series[i];
        fprintf(f, "%s# series %d: ", i ? "\n\n" : "\n", i);
        for (const char *p = s->label; *p; p++)
            fputc(*p == '\n' ? ' ' : *p, f);
        fputc('\n', f);
        for (int j = 0; j < s->n; j++) {
            const rs_plot_point *p = &s->points[j];
            rs_plot_data_number(f, p->x);
            fputc(' ', f);
            rs_plot_data_number(f, p->y);
            fputc(' ', f);
            rs_plot_data_number(f, p->lo);
            fputc(' ', f);
            rs_plot_data_number(f, p->hi);
            if (s->style == RS_PLOT_LABELLED_POINTS) {
                fputc(' ', f);
                rs_plot_data_string(f, p->label);
                fprintf(f, " %d", p->label_place);
            }
            fputc('\n', f);
        }
    }
    return rs_plot_file_close(&pf, err);
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* x tics at the data's distinct x values when there are few of them. */
static void write_xtics(FILE *f, const rs_plot_chart *c)
{
    double xs[13];
    int n = 0;
    for (int i = 0; i < c->num_series; i++) {
        for (int j = 0; j < c->series[i].n; j++) {
            double x = c->series[i].points[j].x;
            int seen = !isfinite(x);
            for (int k = 0; k < n && !seen; k++)
                seen = xs[k] == x;
            if (seen)
                continue;
            if (n == 12)
                return; /* many values: gnuplot's own tics read better */
            xs[n++] = x;
        }
    }
    if (n == 0)
        return;
    qsort(xs, (size_t)n, sizeof xs[0], compare_double);
    /* Labels must not touch: on the narrow (one-column) axis of about 200 pt,
     * the closest two values need room for the longest label (8 pt font). */
    if (n > 1) {
        double span = c->logx ? log(xs[n - 1] / xs[0]) : xs[n - 1] - xs[0], closest = INFINITY;
        size_t longest = 0;
        for (int k = 0; k < n; k++) {
            char text[RS_NUMBER_TEXT_MAX];
            longest = (size_t)rs_number_text(xs[k], text, sizeof text) > longest ? strlen(text) : longest;
            if (k > 0)
                closest = fmin(closest, c->logx ? log(xs[k] / xs[k - 1]) : xs[k] - xs[k - 1]);
        }
        if (!(span > 0) || closest / span * 200 < ((double)longest + 1.5) * 4.4)
            return;
    }
    /* labelled as the runs' parameters are (10, 0.001, 1e-08), not in gnuplot's own format */
    fputs("set xtics (", f);
    for (int k = 0; k < n; k++) {
        char text[RS_NUMBER_TEXT_MAX];
        rs_number_text(xs[k], text, sizeof text);
        fprintf(f, "%s\"%s\" %s", k ? ", " : "", text, text);
    }
    fputs(")\n", f);
}

/* Data-tight ranges with a margin so that no point sits on an axis; a
 * constant y gets a range around it. Returns 0 when nothing is finite. */
static int chart_ranges(const rs_plot_chart *c, rs_plot_frame *fr)
{
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int i = 0; i < c->num_series; i++) {
        for (int j = 0; j < c->series[i].n; j++) {
            const rs_plot_point *p = &c->series[i].points[j];
            if (!isfinite(p->x) || !isfinite(p->y) || (c->logx && p->x <= 0))
                continue;
            xlo = fmin(xlo, p->x);
            xhi = fmax(xhi, p->x);
            double lo = p->y, hi = p->y;
            if (c->series[i].style == RS_PLOT_LINE && isfinite(p->lo) && isfinite(p->hi)) {
                lo = fmin(lo, p->lo);
                hi = fmax(hi, p->hi);
            }
            ylo = fmin(ylo, lo * c->y.scale);
            yhi = fmax(yhi, hi * c->y.scale);
        }
    }
    if (!(xlo <= xhi) || !(ylo <= yhi))
        return 0;
    fr->logx = c->logx;
    if (c->logx) {
        double pad = xhi > xlo ? pow(xhi / xlo, 0.05) : 2;
        fr->xlo = xlo / pad;
        fr->xhi = xhi * pad;
    } else {
        double pad = xhi > xlo ? 0.04 * (xhi - xlo) : (xlo != 0 ? 0.1 * fabs(xlo) : 1);
        fr->xlo = xlo - pad;
        fr->xhi = xhi + pad;
    }
    double pad = yhi > ylo ? 0.06 * (yhi - ylo) : ylo != 0 ? 0.1 * fabs(ylo) : 1;
    /* a quantity that cannot go below zero keeps its axis at zero when it starts near it */
    fr->ylo = ylo >= 0 && ylo - pad < 0 ? 0 : ylo - pad;
    fr->yhi = yhi + pad;
    return 1;
}

/* Every finite y is zero, or none is finite: the figure would be blank. */
static int blank(const rs_plot_chart *c)
{
    for (int i = 0; i < c->num_series; i++)
        for (int j = 0; j < c->series[i].n; j++) {
            const rs_plot_point *p = &c->series[i].points[j];
            if (isfinite(p->x) && isfinite(p->y) && p->y != 0)
                return 0;
        }
    return 1;
}

/* Axis labels longer than their axis are wrapped: the x label to the plot
 * width, the y label to the plot height (one-column figure, 8 pt font:
 * about 4.4 pt a character), each centred and free to reach a little into
 * the margins. */
static void axis_label(FILE *f, const char *axis, const char *text, double length_pt, double margins_pt)
{
    char wrapped[320];
    rs_plot_wrap(text, (int)((length_pt + margins_pt) / 4.4), wrapped, sizeof wrapped);
    fprintf(f, "set %slabel ", axis);
    rs_plot_gp_lines(f, wrapped);
    fputc('\n', f);
}

static int write_script(rs_plot_chart *c, const rs_plot_figure *fig, const rs_plot_target *tg, const char *what,
                        rs_error *err)
{
    /* The key goes below the plot in as many columns as the widest title
     * allows (a character is about half the font size); the figure grows
     * by the rows beyond two so that the plot keeps its height. */
    int titled = 0, plotted = 0, rows[2] = {0, 0};
    size_t longest = 0;
    for (int i = 0; i < c->num_series; i++) {
        plotted += plottable(&c->series[i]);
        if (plottable(&c->series[i]) && c->series[i].label[0]) {
            titled++;
            longest = strlen(c->series[i].label) > longest ? strlen(c->series[i].label) : longest;
        }
    }
    int keyed = titled > 1 || (titled == 1 && plotted > 1);
    for (int wide = 0; keyed && wide < 2; wide++) {
        double width_pt = wide ? 504 : 252, char_pt = wide ? 4.95 : 4.4;
        int cols = (int)(width_pt * 0.9 / (((double)longest + 6) * char_pt));
        cols = cols < 1 ? 1 : cols > 4 ? 4 : cols;
        rows[wide] = (titled + cols - 1) / cols;
    }
    double single_height = c->single_height + (rows[0] > 2 ? (rows[0] - 2) * 0.14 : 0);
    double double_height = c->double_height + (rows[1] > 2 ? (rows[1] - 2) * 0.16 : 0);
    /* The plot area of the one-column figure, in points: the width less
     * the y axis' tics and label and the right margin; the height less the
     * x axis' tics and label, the key and the top margin. */
    rs_plot_frame frame = {0};
    frame.width_pt = 252 - 66;
    frame.height_pt = single_height * 72 - 40 - (keyed ? rows[0] * 10 + 6 : 0);
    int ranged = chart_ranges(c, &frame);
    if (ranged)
        rs_plot_place_labels(c, &frame);

    rs_plot_file pf;
    RS_TRY(rs_plot_file_open(&pf, tg, fig->stem, "gp", err));
    FILE *f = pf.f;
    rs_plot_script_preamble(f, tg, fig, what, single_height, double_height);
    axis_label(f, "x", c->xlabel, frame.width_pt, 24);
    axis_label(f, "y", c->y.label, frame.height_pt, 12); /* the top margin is narrow */
    if (c->logx) /* tics 1e-08 and 0.001 as run labels write them, not 0.00000001 */
        fprintf(f, "set logscale x %d\nset format x '%%g'\n", c->logx);
    if (c->tics_at_x)
        write_xtics(f, c);
    if (ranged)
        fprintf(f, "set xrange [%.10g:%.10g]\nset yrange [%.10g:%.10g]\n", frame.xlo, frame.xhi, frame.ylo, frame.yhi);
    fputs("set rmargin 4\n", f); /* room for the last x tic label and a wide key */
    if (keyed)
        fprintf(f,
                "set key below center horizontal Left reverse samplen 2 width ((fmt eq 'png') ? 0 : -3) height 1 "
                "maxrows ((size eq 'double') ? %d : %d)\n",
                rows[1], rows[0]);
    else
        fputs("unset key\n", f);
    rs_plot_script_overrides(f, tg);
    fputs("plot ", f);
    int first = 1, next_style = 0;
    for (int i = 0; i < c->num_series; i++) {
        const rs_plot_series *s = &c->series[i];
        int style = s->linetype ? -1 : next_style++;
        if (!plottable(s))
            continue;
        fprintf(f, "%s'%s.dat' index %d using 1:", first ? "" : ", \\\n     ", fig->stem, i);
        first = 0;
        column(f, 2, c->y.scale);
        const char *with = "linespoints";
        if (s->style == RS_PLOT_LINE && every_point_has_interval(s)) {
            fputc(':', f);
            column(f, 3, c->y.scale);
            fputc(':', f);
            column(f, 4, c->y.scale);
            with = "yerrorlines";
        } else if (s->style != RS_PLOT_LINE) {
            with = "points";
        }
        fprintf(f, " with %s", with);
        if (style >= 0)
            rs_plot_series_style(f, style);
        else
            fprintf(f, " lt %d", s->linetype);
        if (c->point_every > 1 && s->style == RS_PLOT_LINE && strcmp(with, "linespoints") == 0)
            fprintf(f, " pi %d", c->point_every);
        if (s->pointtype)
            fprintf(f, " pt %d", s->pointtype);
        if (s->pointsize > 0)
            fprintf(f, " ps %g*pscale", s->pointsize);
        if (s->label[0]) {
            fputs(" title ", f);
            rs_plot_gp_string(f, s->label);
        }
        /* labels: one clause per place in use (column 6 of the data file) */
        for (int place = 0; s->style == RS_PLOT_LABELLED_POINTS && place < RS_PLOT_LABEL_PLACES; place++) {
            int used = 0;
            for (int j = 0; j < s->n && !used; j++)
                used = s->points[j].label_place == place && s->points[j].label[0];
            if (!used)
                continue;
            double dx, dy;
            const char *align;
            rs_plot_label_offset(place, &dx, &dy, &align);
            fprintf(f, ", \\\n     '%s.dat' index %d using 1:", fig->stem, i);
            column(f, 2, c->y.scale);
            fprintf(f, ":($6 == %d ? stringcolumn(5) : '') with labels %s offset char %g, char %g "
                       "font sprintf(',%%d', fontsize - 1)",
                    place, align, dx, dy);
        }
    }
    fputc('\n', f);
    return rs_plot_file_close(&pf, err);
}

int rs_plot_chart_write(rs_plot_chart *c, const rs_plot_figure *fig, const rs_plot_target *tg, const char *what,
                        rs_error *err)
{
    if (blank(c))
        return RS_PLOT_BLANK;
    RS_TRY(write_script(c, fig, tg, what, err));
    return write_data(c, fig, tg, what, err);
}

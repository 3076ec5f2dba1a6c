/* Where text goes in a figure: long labels wrapped onto lines so that they
 * leave the plot its area, and the text beside labelled points (single
 * models in cost-quality figures) put where it crosses no line, point,
 * other text or axis. Sizes are estimates in points for the one-column
 * figure (3.5 in wide, 8 pt font), the tighter of the two sizes. */
#include <math.h>
#include <string.h>

#include "plots/plot_internal.h"

int rs_plot_wrap(const char *text, int width, char *buf, size_t size)
{
    if (size == 0)
        return 0;
    size_t len = strlen(text), used = 0;
    int lines = 1;
    width = width < 4 ? 4 : width;
    for (size_t start = 0; start < len;) {
        size_t take = len - start;
        if (take > (size_t)width) {
            /* break after the last separator that fits (one more character
             * when that is a separator: no line starts with one), else mid-word */
            take = 0;
            for (size_t i = (size_t)width + 1; i > (size_t)width / 2 && !take; i--)
                take = text[start + i - 1] == ' ' ? i : 0; /* words first: "(max/mean - 1)" stays whole */
            for (size_t i = (size_t)width + 1; i > 0 && !take; i--)
                take = strchr(",;: |/", text[start + i - 1]) ? i : 0;
            take = take ? take : (size_t)width;
        }
        if (start > 0 && used + 1 < size) {
            while (used > 0 && buf[used - 1] == ' ')
                used--; /* nor ends with one */
            buf[used++] = '\n';
            lines++;
        }
        for (size_t i = 0; i < take && used + 1 < size; i++)
            buf[used++] = text[start + i];
        start += take;
        while (start < len && text[start] == ' ')
            start++; /* no line starts with a space */
    }
    buf[used] = '\0';
    return lines;
}

/* Label offsets from the point, in character widths and heights of the
 * label font, and the text's alignment. */
static const struct {
    double dx, dy;
    int align; /* -1 right, 0 centre, 1 left: the side of the anchor the text extends to */
    const char *name;
} places[RS_PLOT_LABEL_FAR] = {
    [RS_PLOT_LABEL_RIGHT] = {0.8, 0, 1, "left"},          [RS_PLOT_LABEL_LEFT] = {-0.8, 0, -1, "right"},
    [RS_PLOT_LABEL_BELOW] = {0, -1.1, 0, "center"},       [RS_PLOT_LABEL_ABOVE] = {0, 1.1, 0, "center"},
    [RS_PLOT_LABEL_BELOW_RIGHT] = {0.6, -0.9, 1, "left"}, [RS_PLOT_LABEL_BELOW_LEFT] = {-0.6, -0.9, -1, "right"},
    [RS_PLOT_LABEL_ABOVE_RIGHT] = {0.6, 0.9, 1, "left"},  [RS_PLOT_LABEL_ABOVE_LEFT] = {-0.6, 0.9, -1, "right"},
};

/* How much farther the far places are. */
static const double far_factor = 2.2;

void rs_plot_label_offset(int place, double *dx, double *dy, const char **align)
{
    place = place >= 0 && place < RS_PLOT_LABEL_PLACES ? place : RS_PLOT_LABEL_RIGHT;
    double k = place >= RS_PLOT_LABEL_FAR ? far_factor : 1;
    *dx = places[place % RS_PLOT_LABEL_FAR].dx * k;
    *dy = places[place % RS_PLOT_LABEL_FAR].dy * k;
    *align = places[place % RS_PLOT_LABEL_FAR].name;
}

/* The label font (one point under the figure's 8 pt): a character's width
 * and a line's height in points; a point marker's half size. */
static const double char_w = 3.9, char_h = 9.0, marker = 3.5;

typedef struct box {
    double x0, y0, x1, y1;
} box;

/* A data point in points from the plot area's lower left corner. */
static void to_area(const rs_plot_frame *fr, double x, double y, double *px, double *py)
{
    double fx = fr->logx ? (log(x) - log(fr->xlo)) / (log(fr->xhi) - log(fr->xlo)) : (x - fr->xlo) / (fr->xhi - fr->xlo);
    *px = fx * fr->width_pt;
    *py = (y - fr->ylo) / (fr->yhi - fr->ylo) * fr->height_pt;
}

static box label_box(double px, double py, int place, size_t chars)
{
    double dx, dy;
    const char *name;
    rs_plot_label_offset(place, &dx, &dy, &name);
    int align = places[place % RS_PLOT_LABEL_FAR].align;
    double w = (double)chars * char_w, cx = px + dx * char_w, cy = py + dy * char_h;
    double x0 = align > 0 ? cx : align < 0 ? cx - w : cx - w / 2;
    return (box){x0, cy - char_h / 2, x0 + w, cy + char_h / 2};
}

static double overlap(box a, box b)
{
    double w = fmin(a.x1, b.x1) - fmax(a.x0, b.x0), h = fmin(a.y1, b.y1) - fmax(a.y0, b.y0);
    return w > 0 && h > 0 ? w * h : 0;
}

/* Whether the segment (ax, ay)-(bx, by) crosses the box (Liang-Barsky clipping). */
static int segment_crosses(double ax, double ay, double bx, double by, box r)
{
    double t0 = 0, t1 = 1, dx = bx - ax, dy = by - ay;
    const double p[4] = {-dx, dx, -dy, dy}, q[4] = {ax - r.x0, r.x1 - ax, ay - r.y0, r.y1 - ay};
    for (int i = 0; i < 4; i++) {
        if (p[i] == 0) {
            if (q[i] < 0)
                return 0;
            continue;
        }
        double t = q[i] / p[i];
        if (p[i] < 0)
            t0 = fmax(t0, t);
        else
            t1 = fmin(t1, t);
        if (t0 > t1)
            return 0;
    }
    return 1;
}

static int usable_point(const rs_plot_frame *fr, const rs_plot_point *p)
{
    return isfinite(p->x) && isfinite(p->y) && (!fr->logx || p->x > 0);
}

/* What a label at box b costs: text outside the plot area (it would cross
 * an axis or leave the figure) above all, then lines it crosses, points
 * and text it covers. */
static double cost(const rs_plot_chart *c, const rs_plot_frame *fr, box b, const box *placed, int num_placed, int si,
                   int pj)
{
    double out = fmax(0, -b.x0) + fmax(0, b.x1 - fr->width_pt) + fmax(0, -b.y0) + fmax(0, b.y1 - fr->height_pt);
    double total = out > 0 ? 1000 + 10 * out : 0;
    for (int i = 0; i < c->num_series; i++) {
        const rs_plot_series *s = &c->series[i];
        double qx = NAN, qy = NAN;
        for (int j = 0; j < s->n; j++) {
            if (!usable_point(fr, &s->points[j]))
                continue;
            double px, py;
            to_area(fr, s->points[j].x, s->points[j].y * c->y.scale, &px, &py);
            if (!(i == si && j == pj))
                total += 30 * (overlap(b, (box){px - marker, py - marker, px + marker, py + marker}) > 0);
            if (s->style == RS_PLOT_LINE && !isnan(qx) && segment_crosses(qx, qy, px, py, b))
                total += 50;
            qx = px;
            qy = py;
        }
    }
    for (int k = 0; k < num_placed; k++)
        total += 40 * (overlap(b, placed[k]) > 0);
    return total;
}

void rs_plot_place_labels(rs_plot_chart *c, const rs_plot_frame *fr)
{
    enum { MAX_PLACED = 256 };
    box placed[MAX_PLACED];
    int num_placed = 0;
    if (!(fr->xhi > fr->xlo) || !(fr->yhi > fr->ylo) || (fr->logx && !(fr->xlo > 0)))
        return;
    /* right and left first (they read best), then the diagonals, below and above; then all of them farther */
    static const int near[RS_PLOT_LABEL_FAR] = {
        RS_PLOT_LABEL_RIGHT,       RS_PLOT_LABEL_LEFT,       RS_PLOT_LABEL_BELOW_RIGHT, RS_PLOT_LABEL_BELOW_LEFT,
        RS_PLOT_LABEL_ABOVE_LEFT, RS_PLOT_LABEL_ABOVE_RIGHT, RS_PLOT_LABEL_BELOW,       RS_PLOT_LABEL_ABOVE,
    };
    int order[RS_PLOT_LABEL_PLACES];
    for (int o = 0; o < RS_PLOT_LABEL_FAR; o++) {
        order[o] = near[o];
        order[RS_PLOT_LABEL_FAR + o] = RS_PLOT_LABEL_FAR + near[o];
    }
    for (int i = 0; i < c->num_series; i++) {
        rs_plot_series *s = &c->series[i];
        for (int j = 0; s->style == RS_PLOT_LABELLED_POINTS && j < s->n; j++) {
            rs_plot_point *p = &s->points[j];
            p->label_place = RS_PLOT_LABEL_RIGHT;
            if (!usable_point(fr, p) || !p->label[0])
                continue;
            double px, py, best = INFINITY;
            to_area(fr, p->x, p->y * c->y.scale, &px, &py);
            box chosen = {0, 0, 0, 0};
            for (int o = 0; o < RS_PLOT_LABEL_PLACES; o++) {
                box b = label_box(px, py, order[o], strlen(p->label));
                double v = cost(c, fr, b, placed, num_placed, i, j) + 0.01 * o; /* ties: the earlier place */
                if (v < best) {
                    best = v;
                    chosen = b;
                    p->label_place = order[o];
                }
            }
            if (num_placed < MAX_PLACED)
                placed[num_placed++] = chosen;
        }
    }
}

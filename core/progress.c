#include "core/progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

double rs_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void rs_progress_start(rs_progress *p, int enabled, int64_t total, const char *label, const char *unit)
{
    if (enabled < 0)
        enabled = isatty(STDERR_FILENO) && !getenv("ROUTESIM_NO_PROGRESS");
    p->enabled = enabled;
    p->total = total;
    p->start = rs_now();
    p->last_draw = 0;
    p->label = label;
    p->unit = unit;
}

static void human(double v, char *buf, size_t size)
{
    if (v >= 1e9)
        snprintf(buf, size, "%.2fG", v / 1e9);
    else if (v >= 1e6)
        snprintf(buf, size, "%.2fM", v / 1e6);
    else if (v >= 1e3)
        snprintf(buf, size, "%.1fk", v / 1e3);
    else
        snprintf(buf, size, "%.0f", v);
}

static void draw(rs_progress *p, int64_t done, double now)
{
    double frac = p->total > 0 ? (double)done / (double)p->total : 1.0;
    double elapsed = now - p->start;
    double rate = elapsed > 0 ? (double)done / elapsed : 0;
    double eta = rate > 0 ? (double)(p->total - done) / rate : 0;
    enum { WIDTH = 30 };
    char bar[WIDTH + 1];
    int fill = (int)(frac * WIDTH);
    for (int i = 0; i < WIDTH; i++)
        bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
    bar[WIDTH] = '\0';
    char r[32];
    human(rate, r, sizeof r);
    fprintf(stderr, "\r%-16.16s [%s] %3.0f%% %s %s/s ETA %d:%02d ", p->label, bar, 100 * frac, r, p->unit,
            (int)eta / 60, (int)eta % 60);
    fflush(stderr);
    p->last_draw = now;
}

void rs_progress_update(rs_progress *p, int64_t done)
{
    if (!p->enabled)
        return;
    double now = rs_now();
    if (now - p->last_draw >= 0.1)
        draw(p, done, now);
}

void rs_progress_finish(rs_progress *p)
{
    if (!p->enabled)
        return;
    draw(p, p->total, rs_now());
    fputc('\n', stderr);
}

/* Files of a figure and the style every script shares. Scripts are
 * generated here rather than kept as templates so that one preamble styles
 * every kind and a script needs nothing but its data file. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/number_text.h"
#include "core/output_path.h"
#include "plots/plot_internal.h"

int rs_plot_file_open(rs_plot_file *pf, const rs_plot_target *tg, const char *stem, const char *ext, rs_error *err)
{
    pf->f = NULL;
    int n = snprintf(pf->path, sizeof pf->path, "%s/%s.%s", tg->dir, stem, ext);
    RS_CHECK(n > 0 && (size_t)n < sizeof pf->path, err, "%s: path too long", tg->dir);
    RS_TRY(rs_temp_path(pf->path, pf->tmp, sizeof pf->tmp, err));
    pf->f = fopen(pf->tmp, "w");
    if (!pf->f) {
        rs_temp_discard(pf->tmp);
        return rs_fail(err, "%s: cannot write (is the plots directory writable?)", pf->path);
    }
    return 0;
}

int rs_plot_file_close(rs_plot_file *pf, rs_error *err)
{
    int bad = ferror(pf->f);
    bad |= fclose(pf->f) != 0;
    pf->f = NULL;
    if (bad) {
        rs_temp_discard(pf->tmp);
        return rs_fail(err, "%s: write failed (disk full?)", pf->path);
    }
    return rs_commit_path(pf->tmp, pf->path, err);
}

void rs_plot_file_discard(rs_plot_file *pf)
{
    if (pf->f) {
        fclose(pf->f);
        rs_temp_discard(pf->tmp);
        pf->f = NULL;
    }
}

void rs_plot_gp_string(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputs("''", f);
        else if (*s == '\n' || *s == '\r' || *s == '\t')
            fputc(' ', f);
        else
            fputc(*s, f);
    }
    fputc('\'', f);
}

void rs_plot_gp_lines(FILE *f, const char *s)
{
    if (!strchr(s, '\n')) {
        rs_plot_gp_string(f, s);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '\n')
            fputs("\\n", f);
        else if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if (*s == '\r' || *s == '\t')
            fputc(' ', f);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

void rs_plot_data_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++)
        fputc(*s == '"' ? '\'' : (*s == '\n' || *s == '\r' || *s == '\t') ? ' ' : *s, f);
    fputc('"', f);
}

void rs_plot_data_number(FILE *f, double v)
{
    if (isnan(v))
        fputs("nan", f);
    else if (isinf(v))
        fputs(v > 0 ? "inf" : "-inf", f);
    else {
        char text[RS_NUMBER_TEXT_MAX];
        rs_number_text(v, text, sizeof text);
        fputs(text, f);
    }
}

void rs_plot_slug(const char *s, char *buf, size_t size)
{
    size_t n = 0;
    int last_sep = 1;
    for (; *s && n + 1 < size; s++) {
        unsigned char c = (unsigned char)*s;
        char out;
        if (isalnum(c) || c == '-')
            out = (char)c;
        else if (c == '.')
            out = '-';
        else
            out = '_';
        if ((out == '_' || out == '-') && last_sep)
            continue; /* no runs of separators, none at the start */
        last_sep = out == '_' || out == '-';
        buf[n++] = out;
    }
    while (n > 0 && (buf[n - 1] == '_' || buf[n - 1] == '-'))
        n--;
    buf[n] = '\0';
}

void rs_plot_data_header(FILE *f, const rs_plot_target *tg, const char *what)
{
    fputs("# routesim plot data: ", f);
    for (const char *p = what; *p; p++)
        fputc(*p == '\n' ? ' ' : *p, f);
    fprintf(f, "\n# from %s (numbers as there; the script scales them for its axes)\n", tg->csv_path);
}

/* Okabe & Ito's colour-blind-safe palette (yellow last: faint on white),
 * each with its own dash and point type so greyscale prints stay readable. */
static const struct {
    const char *colour, *dash;
    int point;
    double size;
} line_types[8] = {
    {"#0072B2", "1", 7, 0.95},     {"#D55E00", "2", 5, 0.9},         {"#009E73", "3", 9, 1.05},
    {"#CC79A7", "4", 13, 1.05},    {"#E69F00", "5", 11, 1.05},       {"#56B4E9", "(10,4,2,4,2,4)", 6, 0.95},
    {"#000000", "(14,6)", 4, 0.95}, {"#F0E442", "(2,5)", 8, 1.05},
};

void rs_plot_series_style(FILE *f, int index)
{
    int colour = index % 8, pattern = (index % 8 + index / 8) % 8;
    fprintf(f, " lt %d", colour + 1);
    if (pattern != colour) /* past the first eight: the same colour with another line type's dash */
        fprintf(f, " dt %s pt %d", line_types[pattern].dash, line_types[pattern].point);
}

void rs_plot_script_preamble(FILE *f, const rs_plot_target *tg, const rs_plot_figure *fig, const char *what,
                             double single_height, double double_height)
{
    unsigned first_format = fig->formats & RS_PLOT_PNG   ? RS_PLOT_PNG
                            : fig->formats & RS_PLOT_PDF ? RS_PLOT_PDF
                            : fig->formats & RS_PLOT_SVG ? RS_PLOT_SVG
                                                         : RS_PLOT_PNG;
    fputs("# routesim figure: ", f);
    for (const char *p = what; *p; p++)
        fputc(*p == '\n' ? ' ' : *p, f);
    fprintf(f,
            "\n# data: %s.dat, caption: %s.txt, results: %s\n"
            "# Render from any directory (the figure is written beside this script):\n"
            "#   gnuplot %s.gp\n"
            "#   gnuplot -e \"fmt='pdf'; size='double'\" %s.gp\n"
            "# fmt: png, svg or pdf; size: single (3.5 in wide, one column) or double (7 in, two columns).\n"
            "reset\n"
            "if (!exists(\"fmt\")) fmt = '%s'\n"
            "if (!exists(\"size\")) size = '%s'\n"
            "if (!exists(\"outfile\")) outfile = '%s.'.fmt\n\n",
            fig->stem, fig->stem, tg->csv_path, fig->stem, fig->stem, rs_plot_format_name(first_format),
            fig->double_size ? "double" : "single", fig->stem);
    fputs("# Work beside this script so that its data file is found.\n"
          "script = exists(\"ARG0\") ? ARG0 : ''\n"
          "scriptdir = ''\n"
          "do for [i = strlen(script):1:-1] {\n"
          "    if (scriptdir eq '' && script[i:i] eq '/') { scriptdir = script[1:i] }\n"
          "}\n"
          "if (scriptdir ne '') { cd scriptdir }\n\n",
          f);
    fprintf(f,
            "# Print size in inches and fonts in points in every format (the cairo terminals take a font\n"
            "# size as 96/72 points, hence their fontscale); one line-width unit is 0.5 pt, and pscale\n"
            "# makes point symbols the same size in every format.\n"
            "width = (size eq 'double') ? 7.0 : 3.5\n"
            "height = (size eq 'double') ? %.2f : %.2f\n"
            "fontsize = (size eq 'double') ? 9 : 8\n"
            "fontspec = sprintf('Helvetica,%%d', fontsize)\n"
            "dpi = 200\n"
            "if (fmt eq 'pdf') {\n"
            "    set terminal pdfcairo noenhanced color size width, height font fontspec fontscale 0.75 "
            "linewidth 1 rounded\n"
            "    pscale = 0.5\n"
            "} else { if (fmt eq 'svg') {\n"
            "    set terminal svg noenhanced size width*96, height*96 font sprintf('Helvetica,%%g', fontsize*96/72.0) "
            "linewidth 96/144.0 rounded "
            "background '#ffffff'\n"
            "    pscale = 0.45\n"
            "} else {\n"
            "    set terminal pngcairo noenhanced size width*dpi, height*dpi font fontspec fontscale dpi/96.0 "
            "linewidth dpi/144.0 rounded\n"
            "    pscale = dpi/133.0\n"
            "} }\n"
            "set output outfile\n\n",
            double_height, single_height);
    fputs("# Okabe-Ito colour-blind-safe palette; dash and point types differ too, for greyscale print.\n", f);
    for (int i = 0; i < 8; i++)
        fprintf(f, "set linetype %d lc rgb '%s' lw 2 dt %s pt %d ps %.2f*pscale\n", i + 1, line_types[i].colour,
                line_types[i].dash, line_types[i].point, line_types[i].size);
    fputs("set linetype cycle 8\n"
          "set border 3 lw 1.5\n"
          "set tics nomirror out scale 0.6\n"
          "set grid ytics lt 1 lw 1 lc rgb '#dddddd'\n"
          "set style fill solid 1.0 noborder\n"
          "set key noautotitle\n",
          f);
    fputc('\n', f);
}

void rs_plot_script_overrides(FILE *f, const rs_plot_target *tg)
{
    if (!tg->style || !tg->style[0])
        return;
    fprintf(f, "# Style overrides from %s\n", tg->style_path ? tg->style_path : "the style file");
    fputs(tg->style, f);
    if (tg->style[strlen(tg->style) - 1] != '\n')
        fputc('\n', f);
}

int rs_plot_write_caption(const rs_plot_target *tg, const rs_plot_figure *fig, const char *text, rs_error *err)
{
    rs_plot_file pf;
    RS_TRY(rs_plot_file_open(&pf, tg, fig->stem, "txt", err));
    fprintf(pf.f, "%s\n\nData: %s.dat (from %s); script: %s.gp.\n", text, fig->stem, tg->csv_path, fig->stem);
    return rs_plot_file_close(&pf, err);
}

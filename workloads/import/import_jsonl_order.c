/* The JSON-lines log put in trace order: sequences ranked (numerically when
 * every id is an integer, else by first appearance), layers ranked, rows
 * sorted, and the two things order reveals refused: a (seq, token, layer)
 * given twice, and tokens no row records. */
#include <stdio.h>
#include <stdlib.h>

#include "workloads/import/import_jsonl_internal.h"

static int compare_rows(const void *a, const void *b)
{
    const log_row *x = a, *y = b;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    if (x->position != y->position)
        return x->position < y->position ? -1 : 1;
    if (x->layer != y->layer)
        return x->layer < y->layer ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

static int same_pair(const log_row *a, const log_row *b)
{
    return a->seq == b->seq && a->position == b->position && a->layer == b->layer;
}

typedef struct keyed_seq {
    int64_t key;
    int32_t index;
} keyed_seq;

static int compare_keyed(const void *a, const void *b)
{
    int64_t x = ((const keyed_seq *)a)->key, y = ((const keyed_seq *)b)->key;
    return (x > y) - (x < y);
}

void rs_jsonl_format_seq(const import_state *st, int32_t index, char *out, size_t size)
{
    const seq_entry *e = &st->seqs[index];
    if (e->name >= 0) /* a composite id quotes its own string parts */
        snprintf(out, size, st->composite_seq ? "%s" : "\"%s\"", st->names + e->name);
    else
        snprintf(out, size, "%lld", (long long)e->number);
}

int rs_jsonl_order_rows(import_state *st, rs_error *err)
{
    st->seq_by_rank = malloc((size_t)st->num_seqs * sizeof *st->seq_by_rank);
    int32_t *rank = malloc((size_t)st->num_seqs * sizeof *rank);
    keyed_seq *keyed = malloc((size_t)st->num_seqs * sizeof *keyed);
    if (!st->seq_by_rank || !rank || !keyed) {
        free(rank);
        free(keyed);
        return rs_fail(err, "%s: out of memory", st->label);
    }
    /* Sorted by id when all are integers, else by first appearance (the table's order). */
    for (int64_t i = 0; i < st->num_seqs; i++)
        keyed[i] = (keyed_seq){st->all_numeric ? st->seqs[i].number : i, (int32_t)i};
    qsort(keyed, (size_t)st->num_seqs, sizeof *keyed, compare_keyed);
    for (int64_t r = 0; r < st->num_seqs; r++) {
        st->seq_by_rank[r] = keyed[r].index;
        rank[keyed[r].index] = (int32_t)r;
    }
    free(keyed);
    for (int64_t i = 0; i < st->num_rows; i++) {
        st->rows[i].seq = rank[st->rows[i].seq];
        st->rows[i].layer = rs_jsonl_layer_rank(st, st->rows[i].layer);
    }
    free(rank);
    qsort(st->rows, (size_t)st->num_rows, sizeof *st->rows, compare_rows);

    /* Report the duplicate met first when reading the file. */
    const log_row *dup = NULL;
    for (int64_t i = 1; i < st->num_rows; i++) {
        const log_row *a = &st->rows[i - 1], *b = &st->rows[i];
        if (same_pair(a, b) && (!dup || b->line < dup->line))
            dup = b;
    }
    if (dup) {
        /* Rows with equal keys are sorted by line, so the one before is the first. */
        char seq[96];
        rs_jsonl_format_seq(st, st->seq_by_rank[dup->seq], seq, sizeof seq);
        return rs_jsonl_fail_line(st, dup->line, "seq/token/layer", err,
                                  "seq %s, token %d, layer %d already given on line %lld", seq, dup->position,
                                  st->layers[dup->layer], (long long)dup[-1].line);
    }
    return 0;
}

/* Padding tokens with no row at all would write rows nobody logged,
 * possibly billions (a stray "token": 2000000000), so they are refused
 * unless --pad-gaps asks for -1 rows; either way their count is reported.
 * Rows are in trace order. */
int rs_jsonl_check_gaps(const import_state *st, rs_import_jsonl_report *report, rs_error *err)
{
    const log_row *first = NULL; /* the first row after the first gap */
    int64_t gaps = 0, first_from = 0;
    for (int64_t i = 0; i < st->num_rows;) {
        const log_row *r = &st->rows[i];
        int64_t expected = i > 0 && st->rows[i - 1].seq == r->seq ? (int64_t)st->rows[i - 1].position + 1 : 0;
        const log_row *earliest = r;
        for (i++; i < st->num_rows && st->rows[i].seq == r->seq && st->rows[i].position == r->position; i++)
            if (st->rows[i].line < earliest->line)
                earliest = &st->rows[i];
        if (r->position == expected)
            continue;
        report->gap_tokens += r->position - expected;
        if (gaps++ == 0) {
            first = earliest;
            first_from = expected;
        }
    }
    if (!first || st->opt->pad_gaps)
        return 0;
    char seq[96], tokens[96], more[160] = "";
    rs_jsonl_format_seq(st, st->seq_by_rank[first->seq], seq, sizeof seq);
    if (first->position - first_from == 1)
        snprintf(tokens, sizeof tokens, "token %lld has", (long long)first_from);
    else
        snprintf(tokens, sizeof tokens, "tokens %lld-%d have", (long long)first_from, first->position - 1);
    if (gaps > 1)
        snprintf(more, sizeof more, "%lld gaps, %lld tokens in all; ", (long long)gaps, (long long)report->gap_tokens);
    /* logits cannot be padded: no --pad-gaps hint then */
    const char *hint = st->opt->map.logits[0] ? "logits cannot be padded" : "--pad-gaps stores them as -1 rows";
    if (first_from == 0)
        return rs_jsonl_fail_line(st, first->line, st->opt->map.token, err, "seq %s starts at token %d: %s no row "
                                  "(%s%s)", seq, first->position, tokens, more, hint);
    return rs_jsonl_fail_line(st, first->line, st->opt->map.token, err,
                              "seq %s jumps from token %lld to token %d: %s no row (%s%s)", seq,
                              (long long)first_from - 1, first->position, tokens, more, hint);
}

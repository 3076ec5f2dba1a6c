/* Token groups of a chunk (hand-computed): sequences, batches counted from
 * the trace start, and decode steps of greedily batched sequences. */
#include <check.h>
#include <string.h>

#include "tests/test_util.h"

static void expect_groups(const rs_groups *g, const int *starts, int count, const int *tokens, int ntokens)
{
    ck_assert_int_eq(g->count, count);
    for (int i = 0; i <= count; i++)
        ck_assert_msg(g->start[i] == starts[i], "start[%d] = %d, expected %d", i, g->start[i], starts[i]);
    ck_assert_int_eq(g->start[count], ntokens);
    for (int i = 0; i < ntokens; i++)
        ck_assert_msg(g->tokens[i] == tokens[i], "tokens[%d] = %d, expected %d", i, g->tokens[i], tokens[i]);
}

START_TEST(sequence_and_batch_groups)
{
    float z[6] = {0};
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 8, 6, 1, 1, z); /* tokens 8..13 */
    const int lengths[] = {3, 0, 1, 2};     /* an empty sequence is no group */
    rs_test_chunk_sequences(&tc, lengths, 4);
    rs_test_chunk_groups(&tc, RS_GROUP_SEQUENCE, 4);
    const int seq_starts[] = {0, 3, 4, 6}, all[] = {0, 1, 2, 3, 4, 5};
    expect_groups(tc.chunk.groups[RS_GROUP_SEQUENCE], seq_starts, 3, all, 6);
    /* batches of 4 from the trace start: [8, 12) and [12, 16) clipped to 14 */
    rs_test_chunk_groups(&tc, RS_GROUP_BATCH, 4);
    const int batch_starts[] = {0, 4, 6};
    expect_groups(tc.chunk.groups[RS_GROUP_BATCH], batch_starts, 2, all, 6);
    rs_test_chunk_free(&tc);
}
END_TEST

START_TEST(step_groups_interleave_sequences)
{
    /* sequences of 3, 1 and 2 tokens with batch_tokens 4: the first two
     * (4 tokens) form a batch, the third its own. Steps: batch 1 step 0 =
     * tokens {0, 3}, step 1 = {1}, step 2 = {2}; batch 2 step 0 = {4},
     * step 1 = {5}. */
    float z[6] = {0};
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 6, 1, 1, z);
    const int lengths[] = {3, 1, 2};
    rs_test_chunk_sequences(&tc, lengths, 3);
    rs_test_chunk_groups(&tc, RS_GROUP_STEP, 4);
    const int starts[] = {0, 2, 3, 4, 5, 6}, tokens[] = {0, 3, 1, 2, 4, 5};
    expect_groups(tc.chunk.groups[RS_GROUP_STEP], starts, 5, tokens, 6);
    /* a sequence longer than the batch forms a batch alone */
    rs_test_chunk_groups(&tc, RS_GROUP_STEP, 2);
    const int starts2[] = {0, 1, 2, 3, 4, 5, 6}, tokens2[] = {0, 1, 2, 3, 4, 5};
    expect_groups(tc.chunk.groups[RS_GROUP_STEP], starts2, 6, tokens2, 6);
    rs_test_chunk_free(&tc);
}
END_TEST

Suite *groups_suite(void)
{
    Suite *s = suite_create("groups");
    TCase *tc = tcase_create("groups");
    tcase_add_test(tc, sequence_and_batch_groups);
    tcase_add_test(tc, step_groups_interleave_sequences);
    suite_add_tcase(s, tc);
    return s;
}

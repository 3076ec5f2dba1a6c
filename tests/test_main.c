/* Runs every Check suite (tests/check_*.c, listed by the Makefile), or with
 * `--shard I/N` the suites whose position in the list is I modulo N, so
 * that tests/run_shards.sh can run N processes at once. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#define RS_SUITE(name) Suite *name(void);
#include "suites.h"
#undef RS_SUITE

int main(int argc, char **argv)
{
    int shard = 0, shards = 1;
    if (argc == 3 && sscanf(argv[2], "%d/%d", &shard, &shards) == 2 && shards > 0 && shard >= 0 && shard < shards &&
        argv[1][0] == '-') {
    } else if (argc != 1) {
        fprintf(stderr, "usage: %s [--shard I/N]\n", argv[0]);
        return EXIT_FAILURE;
    }
    SRunner *runner = srunner_create(NULL);
    int position = 0;
#define RS_SUITE(name)                                                                                                 \
    if (position++ % shards == shard)                                                                                  \
        srunner_add_suite(runner, name());
#include "suites.h"
#undef RS_SUITE
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

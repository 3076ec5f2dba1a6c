/* The checks every import makes before its importer reads a byte. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "workloads/import/importer.h"
#include "workloads/trace/output_check.h"

int rs_import_input_count(const rs_import_job *job) { return job->inputs ? job->num_inputs : 1; }

const char *rs_import_input(const rs_import_job *job, int index)
{
    return job->inputs ? job->inputs[index] : job->input;
}

int rs_import_run(const rs_importer_type *type, const rs_import_job *job, rs_error *err)
{
    const int count = rs_import_input_count(job);
    RS_CHECK(count >= 1, err, "import %s: no input", type->name);
    RS_CHECK(count == 1 || (type->flags & RS_IMPORTER_MANY_INPUTS), err, "import %s: expected one input, got %d",
             type->name, count);
    for (int i = 0; i < count; i++) {
        const char *input = rs_import_input(job, i);
        struct stat st;
        int is_dir = strcmp(input, "-") != 0 && stat(input, &st) == 0 && S_ISDIR(st.st_mode);
        const unsigned dir_or_files = RS_IMPORTER_DIRECTORY | RS_IMPORTER_MANY_INPUTS;
        if ((type->flags & dir_or_files) == dir_or_files) {
            RS_CHECK(stat(input, &st) == 0 || strcmp(input, "-") == 0, err, "%s: no such file or directory (%s)",
                     input, type->input);
            RS_CHECK(!is_dir || count == 1, err, "%s: a directory among %d inputs: give one directory, or files",
                     input, count);
        } else if (type->flags & RS_IMPORTER_DIRECTORY) {
            RS_CHECK(strcmp(input, "-") != 0, err, "import %s: reads a directory, not standard input", type->name);
            RS_CHECK(stat(input, &st) == 0, err, "%s: no such directory (%s)", input, type->input);
            RS_CHECK(is_dir, err, "%s: not a directory, expected %s", input, type->input);
        } else {
            RS_CHECK(!is_dir, err, "%s: is a directory, expected %s", input, type->input);
        }
    }
    const char **inputs = malloc((size_t)count * sizeof *inputs);
    RS_CHECK(inputs, err, "out of memory");
    for (int i = 0; i < count; i++)
        inputs[i] = rs_import_input(job, i);
    rs_output_check c = {.path = job->output,
                         .kind = RS_FILE_TRACE,
                         .what = "trace",
                         .inputs = inputs,
                         .num_inputs = count,
                         .force = job->force};
    int rc = rs_output_check_path(&c, err);
    free(inputs);
    RS_TRY(rc);
    return type->run(job, err);
}

/* The checks every import makes before its importer reads a byte. */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "workloads/import/importer.h"
#include "workloads/trace/output_check.h"

int rs_import_run(const rs_importer_type *type, const rs_import_job *job, rs_error *err)
{
    struct stat st;
    int is_dir = strcmp(job->input, "-") != 0 && stat(job->input, &st) == 0 && S_ISDIR(st.st_mode);
    if (type->flags & RS_IMPORTER_DIRECTORY) {
        if (!is_dir)
            return rs_fail(err, "%s: %s, expected %s", job->input,
                           strcmp(job->input, "-") == 0 ? "standard input cannot be read here"
                           : access(job->input, F_OK) == 0 ? "not a directory" : "no such directory",
                           type->input);
    } else if (is_dir) {
        return rs_fail(err, "%s: is a directory, expected %s", job->input, type->input);
    }
    const char *inputs[] = {job->input};
    rs_output_check c = {.path = job->output,
                         .kind = RS_FILE_TRACE,
                         .what = "trace",
                         .inputs = inputs,
                         .num_inputs = 1,
                         .force = job->force};
    RS_TRY(rs_output_check_path(&c, err));
    return type->run(job, err);
}

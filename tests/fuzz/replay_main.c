/* Replays fuzz inputs without libFuzzer: `replay_NAME DIR|FILE...` calls
 * the target's LLVMFuzzerTestOneInput on every file given and every file
 * of every directory given (in name order), so `make check` reruns each
 * corpus and its reproducers under gcc's ASan/UBSan in seconds. */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional, as with libFuzzer. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* The sanitizers' hook: which input a report is about. */
void __sanitizer_set_death_callback(void (*callback)(void));

static const char *current;

static void name_input(void)
{
    if (current)
        fprintf(stderr, "replay: while running %s\n", current);
    current = NULL;
}

/* A target's own checks abort: name the input, then die as asked. */
static void on_abort(int sig)
{
    name_input();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: %s: cannot open\n", path);
        exit(1);
    }
    size_t cap = 4096, size = 0;
    uint8_t *data = malloc(cap);
    size_t got;
    while (data && (got = fread(data + size, 1, cap - size, f)) > 0) {
        size += got;
        if (size == cap)
            data = realloc(data, cap *= 2);
    }
    fclose(f);
    if (!data) {
        fprintf(stderr, "replay: %s: out of memory\n", path);
        exit(1);
    }
    /* An exact-size copy, so reads past the input's end are caught. */
    uint8_t *input = malloc(size ? size : 1);
    if (!input) {
        fprintf(stderr, "replay: %s: out of memory\n", path);
        exit(1);
    }
    memcpy(input, data, size);
    free(data);
    current = path;
    LLVMFuzzerTestOneInput(input, size);
    current = NULL;
    free(input);
}

static int visible(const struct dirent *e) { return e->d_name[0] != '.'; }

int main(int argc, char **argv)
{
    __sanitizer_set_death_callback(name_input);
    signal(SIGABRT, on_abort);
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
        return 2;
    }
    int count = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: no such file or directory\n", argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            run_file(argv[i]);
            count++;
            continue;
        }
        struct dirent **names = NULL;
        int n = scandir(argv[i], &names, visible, alphasort);
        for (int j = 0; j < n; j++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], names[j]->d_name);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                run_file(path);
                count++;
            }
            free(names[j]);
        }
        free(names);
    }
    printf("replay %s: %d inputs\n", argv[0], count);
    return 0;
}

#include "core/temp_files.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A fixed table, because the signal handler may neither allocate nor lock:
 * it reads a slot's path only while the slot's state says LIVE. */
enum { SLOTS = 64, PATH_BYTES = 4608 };
enum { FREE, FILLING, LIVE };

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the signal handler reads slot states: they must be lock-free");

static _Atomic int slot_state[SLOTS];
static char slot_path[SLOTS][PATH_BYTES];
static atomic_flag handlers_installed = ATOMIC_FLAG_INIT;
static const int cleanup_signals[] = {SIGINT, SIGTERM, SIGHUP};
enum { NUM_CLEANUP_SIGNALS = sizeof cleanup_signals / sizeof cleanup_signals[0] };

/* Only async-signal-safe calls: unlink, sigaction, raise. */
static void remove_temporaries_and_die(int sig)
{
    int saved_errno = errno;
    for (int i = 0; i < SLOTS; i++)
        if (atomic_load(&slot_state[i]) == LIVE)
            unlink(slot_path[i]);
    /* The signal again with its default action: the process dies of it, so
     * the shell and the parent see the usual exit status. It is blocked
     * while this handler runs and delivered as the handler returns. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    raise(sig);
    errno = saved_errno;
}

static void install_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = remove_temporaries_and_die;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < NUM_CLEANUP_SIGNALS; i++)
        sigaddset(&sa.sa_mask, cleanup_signals[i]);
    for (int i = 0; i < NUM_CLEANUP_SIGNALS; i++) {
        struct sigaction old;
        /* ignored (nohup) or handled by the host (Python's SIGINT): leave it */
        if (sigaction(cleanup_signals[i], NULL, &old) != 0 || (old.sa_flags & SA_SIGINFO) ||
            old.sa_handler != SIG_DFL)
            continue;
        sigaction(cleanup_signals[i], &sa, NULL);
    }
}

void rs_temp_files_add(const char *path)
{
    if (!atomic_flag_test_and_set(&handlers_installed))
        install_handlers();
    size_t len = strlen(path);
    if (len >= PATH_BYTES)
        return; /* longer than any path the writers make */
    for (int i = 0; i < SLOTS; i++)
        if (atomic_load(&slot_state[i]) == LIVE && strcmp(slot_path[i], path) == 0)
            return; /* the same output written again after a failure */
    for (int i = 0; i < SLOTS; i++) {
        int expected = FREE;
        if (atomic_compare_exchange_strong(&slot_state[i], &expected, FILLING)) {
            memcpy(slot_path[i], path, len + 1);
            atomic_store(&slot_state[i], LIVE);
            return;
        }
    }
    /* More than SLOTS outputs at once: this one is not removed on a signal,
     * but the next writer of its output removes it. */
}

void rs_temp_files_forget(const char *path)
{
    for (int i = 0; i < SLOTS; i++) {
        if (atomic_load(&slot_state[i]) == LIVE && strcmp(slot_path[i], path) == 0) {
            atomic_store(&slot_state[i], FREE);
            return;
        }
    }
}

/* The process id of a temporary name "<base>.tmp.<pid>", or 0. */
static long temp_owner(const char *name, const char *base, size_t base_len)
{
    if (strncmp(name, base, base_len) != 0 || strncmp(name + base_len, ".tmp.", 5) != 0)
        return 0;
    const char *digits = name + base_len + 5;
    if (*digits < '1' || *digits > '9')
        return 0;
    char *end = NULL;
    errno = 0;
    long pid = strtol(digits, &end, 10);
    return *end == '\0' && errno == 0 && pid <= INT_MAX ? pid : 0;
}

void rs_temp_files_remove_stale(const char *final_path)
{
    char dir[PATH_BYTES];
    const char *slash = strrchr(final_path, '/'), *base = slash ? slash + 1 : final_path;
    size_t dir_len = slash ? (size_t)(slash - final_path) : 0;
    if (dir_len >= sizeof dir || !*base)
        return;
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (dir_len == 0)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)dir_len, final_path);
    DIR *d = opendir(dir);
    if (!d)
        return;
    size_t base_len = strlen(base);
    long self = (long)getpid();
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        long pid = temp_owner(e->d_name, base, base_len);
        if (pid == 0 || pid == self)
            continue;
        /* EPERM: the process runs (as another user); only ESRCH means gone */
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char path[2 * PATH_BYTES];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

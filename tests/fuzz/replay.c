/*
 * Corpus replay: a main() that feeds files to LLVMFuzzerTestOneInput, so the
 * fuzz targets build with gcc and run in `make test` (and under ASan + UBSan
 * with SANITIZE=address,undefined) without libFuzzer.
 *
 *     replay_<name> PATH...
 *
 * Each PATH is a file or a directory whose regular files are replayed in name
 * order (not recursively). Each input is read into a buffer of exactly its
 * size, as libFuzzer would hand it over. The last line printed is
 * "replay <name>: N files replayed"; exit status 0 means every input ran,
 * anything else (a crash, a trap, a sanitizer report, an unreadable path)
 * fails the run. When an input kills the process, the file being replayed is
 * named on stderr first, so the failure can be reproduced with that file.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

/* The sanitizers' hook, present only in a sanitizer build (weak). */
void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

static const char *current; /* the file being replayed, or NULL between files */

static void say(const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void name_current(void)
{
    if (current) {
        say("replay: died on input ");
        say(current);
        say("\n");
    }
}

static void on_signal(int sig)
{
    name_current();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Names the input on a trap or abort, and on a sanitizer report; signals a
 * sanitizer already handles are left to it. */
static void install_reporters(void)
{
    static const int sigs[] = {SIGILL, SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGTRAP};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        struct sigaction old;
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL &&
            !(old.sa_flags & SA_SIGINFO))
            signal(sigs[i], on_signal);
    }
    if (__sanitizer_set_death_callback)
        __sanitizer_set_death_callback(name_current);
}

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0) {
        fprintf(stderr, "replay: %s: cannot stat\n", path);
        fclose(f);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *data = tf_xmalloc(size ? size : 1);
    size_t got = size ? fread(data, 1, size, f) : 0;
    fclose(f);
    if (got != size) {
        fprintf(stderr, "replay: %s: short read\n", path);
        free(data);
        return -1;
    }
    current = path;
    (void)LLVMFuzzerTestOneInput(data, size);
    current = NULL;
    free(data);
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Replays path (a file or the files of a directory); -1 on an I/O error. */
static int replay_path(const char *path, unsigned long *count)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (replay_file(path) != 0)
            return -1;
        (*count)++;
        return 0;
    }
    struct dirent **names = NULL;
    int n = scandir(path, &names, NULL, by_name);
    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char file[4096];
        int w = snprintf(file, sizeof file, "%s/%s", path, names[i]->d_name);
        struct stat fst;
        if (rc == 0 && w > 0 && (size_t)w < sizeof file && stat(file, &fst) == 0 &&
            S_ISREG(fst.st_mode)) {
            if (replay_file(file) != 0)
                rc = -1;
            else
                (*count)++;
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", name);
        return 2;
    }
    install_reporters();
    unsigned long count = 0;
    int rc = 0;
    for (int i = 1; i < argc; i++)
        if (replay_path(argv[i], &count) != 0)
            rc = 1;
    printf("replay %s: %lu files replayed\n", name, count);
    return rc;
}

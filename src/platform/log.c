/*
 * One JSON object per line on stderr. The line is built in memory and written
 * with one write(2), so lines from different threads never interleave.
 */
#include "tenantflow/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static tf_log_level min_level = TF_LOG_INFO;
static const char *names[] = {"debug", "info", "warn", "error"};

void tf_log_set_level(tf_log_level level)
{
    min_level = level;
}

bool tf_log_enabled(tf_log_level level)
{
    return level >= min_level;
}

void tf_log_json(tf_log_level level, const char *msg, json_t *fields)
{
    if (!tf_log_enabled(level)) {
        json_decref(fields);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[64];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    json_t *line = json_object();
    json_object_set_new(line, "ts", json_string(when));
    json_object_set_new(line, "level", json_string(names[level]));
    json_t *m = json_string(msg);
    json_object_set_new(line, "msg", m ? m : json_string("(invalid utf-8)"));
    if (fields)
        json_object_update(line, fields);
    json_decref(fields);
    char *text = json_dumps(line, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(line);
    if (!text)
        return;
    size_t n = strlen(text);
    text[n] = '\n';
    ssize_t w = write(STDERR_FILENO, text, n + 1);
    (void)w;
    free(text);
}

void tf_log(tf_log_level level, const char *fmt, ...)
{
    if (level < min_level)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tf_log_json(level, msg, NULL);
}

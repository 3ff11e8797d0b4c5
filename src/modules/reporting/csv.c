/*
 * CSV output for reports: RFC 4180 (CRLF line ends, quotes doubled, a cell
 * quoted when it holds a comma, quote, CR or LF) plus the spreadsheet rule:
 * a cell whose first character is = + - @ tab or CR is prefixed with ' so
 * no spreadsheet evaluates it as a formula. Only the output is changed; the
 * stored data never is.
 */
#include <stdlib.h>
#include <string.h>

#include "tenantflow/alloc.h"
#include "tenantflow/reporting.h"

void reporting_buf_append(reporting_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->data = tf_xrealloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static bool risky_start(char c)
{
    return c == '=' || c == '+' || c == '-' || c == '@' || c == '\t' || c == '\r';
}

void reporting_csv_cell(reporting_buf *b, const char *value)
{
    if (!value) {
        reporting_buf_append(b, "", 0);
        return;
    }
    bool neutralise = risky_start(value[0]);
    bool quote = strpbrk(value, ",\"\r\n") != NULL;
    if (quote)
        reporting_buf_append(b, "\"", 1);
    if (neutralise)
        reporting_buf_append(b, "'", 1);
    for (const char *s = value; *s; s++) {
        if (*s == '"')
            reporting_buf_append(b, "\"\"", 2);
        else
            reporting_buf_append(b, s, 1);
    }
    if (quote)
        reporting_buf_append(b, "\"", 1);
}

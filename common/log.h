/* Structured logging: one event a line, key=value pairs, to stderr.
 *
 *   log_info("conn.open", "peer=%s fd=%d", peer, fd);
 *   -> ts=2026-11-23T14:05:01.123Z level=info event=conn.open peer=127.0.0.1:5123 fd=7
 *
 * Values that may hold spaces or quotes go through log_quote() first. */
#ifndef CRM_LOG_H
#define CRM_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
/* Parses "debug", "info", "warn" or "error"; false for anything else. */
int log_parse_level(const char *name, enum log_level *out);
void log_event(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes `s` as a double-quoted value with " and \ and control bytes escaped,
 * truncated to fit `cap`. Returns `out`. */
const char *log_quote(char *out, size_t cap, const char *s);

#define log_debug(ev, ...) log_event(LOG_DEBUG, ev, __VA_ARGS__)
#define log_info(ev, ...) log_event(LOG_INFO, ev, __VA_ARGS__)
#define log_warn(ev, ...) log_event(LOG_WARN, ev, __VA_ARGS__)
#define log_error(ev, ...) log_event(LOG_ERROR, ev, __VA_ARGS__)

#endif

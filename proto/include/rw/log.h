/*
 * log.h - process-wide logging as text lines or JSON lines on stderr.
 *
 * Library code in proto/ never logs; the daemons log once at the boundary.
 * Messages must never contain secrets: callers log key ids, not keys.
 */
#ifndef RW_LOG_H
#define RW_LOG_H

enum rw_log_level { RW_LOG_DEBUG = 0, RW_LOG_INFO, RW_LOG_WARN, RW_LOG_ERROR };
enum rw_log_format { RW_LOG_TEXT = 0, RW_LOG_JSON };

/* Configure the logger: program name, format and minimum level. */
void rw_log_setup(const char *prog, enum rw_log_format fmt, enum rw_log_level min);

/* Parse "text"/"json" and "debug"/"info"/"warn"/"error". Return 0 or -EINVAL. */
int rw_log_parse_format(const char *s, enum rw_log_format *out);
int rw_log_parse_level(const char *s, enum rw_log_level *out);

/* Is this level enabled? */
int rw_log_enabled(enum rw_log_level lvl);

/*
 * Log one line. `component` is a short module name ("probe", "report"...).
 * Text:  2026-11-22T10:00:00.123Z INFO  agent probe: raylet healthy -> dead (...)
 * JSON:  {"ts":"...","level":"info","prog":"agent","component":"probe","msg":"..."}
 * Newlines and control characters in the message are escaped, so one call
 * is always one line.
 */
void rw_log(enum rw_log_level lvl, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define rw_debug(c, ...) rw_log(RW_LOG_DEBUG, c, __VA_ARGS__)
#define rw_info(c, ...) rw_log(RW_LOG_INFO, c, __VA_ARGS__)
#define rw_warn(c, ...) rw_log(RW_LOG_WARN, c, __VA_ARGS__)
#define rw_error(c, ...) rw_log(RW_LOG_ERROR, c, __VA_ARGS__)

#endif

/*
 * clock.h - the clocks and the Kubernetes time formats, in one place.
 *
 * Wall-clock time (CLOCK_REALTIME) is for what leaves the process: wire
 * timestamps checked against a replay window, status and Event times, log
 * lines. It can jump; never measure a duration with it. Durations and
 * deadlines use the monotonic clock (rw_clock_mono_ms, or the loop's
 * uv_now()/uv_hrtime()).
 *
 * Formats (all UTC, "Z"):
 *   metav1.Time       2026-12-02T22:00:00Z           rw_time_rfc3339
 *   log lines         2026-12-02T22:00:00.123Z       rw_time_rfc3339_ms
 *   metav1.MicroTime  2026-12-02T22:00:00.123456Z    rw_time_rfc3339_us
 *                     (Lease renewTime, Event eventTime/series)
 */
#ifndef RW_CLOCK_H
#define RW_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t rw_clock_wall_ms(void);

/* Microseconds since the Unix epoch (CLOCK_REALTIME), for MicroTime. */
int64_t rw_clock_wall_us(void);

/* Milliseconds of CLOCK_MONOTONIC: only differences mean anything. */
uint64_t rw_clock_mono_ms(void);

/*
 * Room for any of the formats below with its NUL, for every year up to
 * 999999 (27 characters for a four-digit year with microseconds).
 */
#define RW_RFC3339_LEN 32

/*
 * Format unix_s as "2026-12-02T22:00:00Z". Returns the length written
 * (excluding the NUL), or 0 with out = "" when the time cannot be
 * represented (gmtime fails): a caller never sends a cut timestamp.
 */
size_t rw_time_rfc3339(int64_t unix_s, char out[RW_RFC3339_LEN]);

/* The wall clock now, as rw_time_rfc3339 formats it (Kubernetes' metav1.Time). */
size_t rw_time_now_rfc3339(char out[RW_RFC3339_LEN]);

/* As rw_time_rfc3339 with milliseconds: "2026-12-02T22:00:00.123Z". */
size_t rw_time_rfc3339_ms(int64_t unix_ms, char out[RW_RFC3339_LEN]);

/* As rw_time_rfc3339 with microseconds: "2026-12-02T22:00:00.123456Z". */
size_t rw_time_rfc3339_us(int64_t unix_us, char out[RW_RFC3339_LEN]);

/*
 * Parse the len bytes at s as RFC 3339 ("2026-12-02T22:00:00Z"; 't'/'z'
 * accepted, any fraction, a "+hh:mm"/"-hh:mm" offset instead of Z) into
 * milliseconds since the epoch; digits of the fraction past the third are
 * truncated. The whole text must match. Returns 0 or -EINVAL (then *unix_ms
 * is untouched). s need not be NUL-terminated.
 */
int rw_time_parse_rfc3339_ms(const char *s, size_t len, int64_t *unix_ms);

/*
 * Parse the NUL-terminated s (as above) into whole seconds since the epoch
 * (the fraction is dropped, rounding toward the past). s may be NULL
 * (-EINVAL).
 */
int rw_time_parse_rfc3339(const char *s, int64_t *unix_s);

#endif

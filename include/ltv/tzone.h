/*
 * The time zone ingest assumes for times written without one
 * (ingest.timezone): a fixed offset ("UTC", "+05:30", "-0800") or an IANA
 * name ("Europe/Paris") read from the system's tz database (TZif files under
 * $TZDIR or /usr/share/zoneinfo, Debian's tzdata), with its daylight-saving
 * rules: the transitions the file lists, then its POSIX rule for later years.
 * The C library's local time (TZ, mktime) is not used: it is process-global
 * state, and slow per call.
 */
#ifndef LTV_TZONE_H
#define LTV_TZONE_H

#include <stdint.h>

#include "ltv/common.h"

struct tzone; /* opaque */

/*
 * Opens the zone named name. Returns NULL and sets err (naming the zone and
 * what is accepted) when it is neither a fixed offset nor a readable TZif
 * file. Free with tzone_free.
 */
struct tzone *tzone_open(const char *name, struct ltv_err *err);

/* Seconds east of UTC in effect at the UTC time t. */
int32_t tzone_offset_at(const struct tzone *tz, int64_t t);

/*
 * The UTC time of the wall-clock time `local` (seconds since the epoch as if
 * the wall clock were UTC). A wall time skipped by a spring-forward gap is
 * read with the offset before the gap; one repeated by a fall-back is the
 * first of the two (as mktime does for tm_isdst = -1 on glibc).
 */
int64_t tzone_local_to_utc(const struct tzone *tz, int64_t local);

/* Accepts NULL. */
void tzone_free(struct tzone *tz);

#endif

/*
 * trk_harness.c - host harness for the C tracker built as a firmware might build it, -ffast-math included
 * (tests/export/test_c_tracker.py).
 *
 * stdin: one window per line, "est ok" (est a double as strtod reads it, "nan" included; ok 0 or 1).
 * stdout: per window the tracked heart rate as the 16 hex digits of its double, or "none" when the tracker has
 * none (has_hr 0): the caller's test that -ffast-math cannot compile away.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sq_tracker.h"

int main(void)
{
    static sq_tracker_t trk;
    char line[128];
    sq_tracker_init(&trk);
    while (fgets(line, sizeof line, stdin) != NULL) {
        char *end;
        const double est = strtod(line, &end);
        const int ok = (int)strtol(end, NULL, 10);
        const double hr = sq_tracker_update(&trk, est, ok);
        uint64_t u;
        memcpy(&u, &hr, sizeof u);
        if (trk.has_hr) {
            printf("%016" PRIx64 "\n", u);
        } else {
            printf("none\n");
        }
    }
    return 0;
}

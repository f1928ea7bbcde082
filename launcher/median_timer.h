// Timing a repeated operation the way calibration needs it: one untimed warm-up (first-touch
// page faults, thread start-up, lazily built tables), then several timed samples, each long
// enough that the clock's resolution and one-off hiccups do not matter, and the median of
// them, which a single slow sample (another process, a page-cache flush) cannot move.
#pragma once

#include <functional>

namespace ditrun::launcher {

// Seconds one call of `run` takes: the median over timed samples after one warm-up call.
// Short calls are repeated inside a sample so the samples together last about
// `budget_seconds`; a call longer than budget / 5 is timed alone, at least 3 times.
double median_seconds_per_call(const std::function<void()>& run, double budget_seconds);

}  // namespace ditrun::launcher

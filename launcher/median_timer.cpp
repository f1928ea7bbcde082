#include "launcher/median_timer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

namespace ditrun::launcher {

namespace {

using Clock = std::chrono::steady_clock;

double time_calls(const std::function<void()>& run, int calls) {
  const auto start = Clock::now();
  for (int i = 0; i < calls; ++i) run();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

double median_seconds_per_call(const std::function<void()>& run, double budget_seconds) {
  constexpr int samples_wanted = 5, samples_at_least = 3;
  const double warm_up = time_calls(run, 1);
  const double sample_seconds = std::max(budget_seconds, 0.0) / samples_wanted;
  // The warm-up's time is an upper bound of a call (it pays the one-off costs), so the
  // samples may run somewhat longer than planned, never shorter.
  const int calls_per_sample =
      warm_up > 0 ? int(std::clamp(std::floor(sample_seconds / warm_up), 1.0, 1e6)) : 1;
  const int samples = calls_per_sample == 1 && warm_up * samples_wanted > budget_seconds ? samples_at_least
                                                                                         : samples_wanted;
  std::vector<double> per_call;
  for (int s = 0; s < samples; ++s) per_call.push_back(time_calls(run, calls_per_sample) / calls_per_sample);
  std::nth_element(per_call.begin(), per_call.begin() + samples / 2, per_call.end());
  return per_call[size_t(samples / 2)];
}

}  // namespace ditrun::launcher

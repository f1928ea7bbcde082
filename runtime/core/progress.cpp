#include "runtime/core/progress.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>

namespace ditrun {

std::string format_duration(double seconds) {
  if (seconds < 60) return fmt::format("{:.1f}s", seconds);
  const long s = long(seconds + 0.5);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
}

Progress::Progress(std::string what, std::string unit)
    : what_(std::move(what)), unit_(std::move(unit)), tty_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()), last_print_(start_) {}

Progress::~Progress() {
  if (tty_ && !finished_) std::fputc('\n', stderr);
}

void Progress::update(size_t done, size_t total, const std::string& detail) {
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double since_print = std::chrono::duration<double>(now - last_print_).count();
  const bool last = done >= total;
  if (!last && since_print < (tty_ ? 0.1 : 5.0)) return;
  last_print_ = now;
  const double rate = elapsed > 0 ? double(done) / elapsed : 0.0;
  const std::string eta = rate > 0 && !last ? format_duration(double(total - done) / rate) : "-";
  const std::string line = fmt::format("{}: {}/{} {} ({:.0f}%), {:.1f} {}/s, ETA {}{}{}", what_, done, total, unit_,
                                       total ? 100.0 * double(done) / double(total) : 100.0, rate, unit_, eta,
                                       detail.empty() ? "" : " - ", detail);
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    std::fflush(stderr);
  } else {
    spdlog::info("{}", line);
  }
}

void Progress::finish(const std::string& summary) {
  if (tty_) std::fputs("\r\033[K", stderr);
  finished_ = true;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  spdlog::info("{} in {}", summary, format_duration(elapsed));
}

}  // namespace ditrun

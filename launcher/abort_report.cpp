#include "launcher/abort_report.h"

#include <signal.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>

namespace ditrun::launcher {
namespace {

constexpr size_t kTextBytes = 4096;
constexpr size_t kMaxRanks = 1024;

// Two buffers: the coordinator writes the one the handler is not reading, then flips. The
// handler runs on the thread it interrupts, so it never sees a half-written buffer.
std::array<std::array<char, kTextBytes>, 2> g_in_flight{};
std::atomic<int> g_current{0};

struct LocalRank {
  int rank;
  pid_t pid;
};
std::array<LocalRank, kMaxRanks> g_local{};
size_t g_local_count = 0;

void put(const char* text) { (void)!::write(STDERR_FILENO, text, std::strlen(text)); }

void put_int(long value) {
  char digits[24];
  int n = 0;
  if (value == 0) digits[n++] = '0';
  while (value > 0 && n < 23) {
    digits[n++] = char('0' + value % 10);
    value /= 10;
  }
  char out[24];
  for (int i = 0; i < n; ++i) out[i] = digits[n - 1 - i];
  (void)!::write(STDERR_FILENO, out, size_t(n));
}

void on_sigterm(int) {
  put("ditrun: mpirun is ending the run (a rank died, or the run was interrupted).");
  bool any = false;
  for (size_t i = 0; i < g_local_count; ++i) {
    if (::kill(g_local[i].pid, 0) == 0 || errno != ESRCH) continue;
    put(any ? ", " : " Gone: rank ");
    if (any) put("rank ");
    put_int(g_local[i].rank);
    put(" (pid ");
    put_int(g_local[i].pid);
    put(")");
    any = true;
  }
  if (any) put(".");
  put(" Jobs in flight: ");
  put(g_in_flight[size_t(g_current.load())].data());
  put(". Finished jobs are in the ledger; run again with --resume to render the rest.\n");
  ::signal(SIGTERM, SIG_DFL);
  ::raise(SIGTERM);
}

}  // namespace

void set_jobs_in_flight(const std::string& text) {
  const int next = 1 - g_current.load();
  auto& buffer = g_in_flight[size_t(next)];
  const size_t n = std::min(text.size(), kTextBytes - 1);
  std::memcpy(buffer.data(), text.data(), n);
  buffer[n] = '\0';
  g_current.store(next);
}

void install_abort_report(const std::vector<transport::RankInfo>& ranks, const std::string& hostname) {
  g_local_count = 0;
  for (const auto& r : ranks)
    if (r.hostname == hostname && r.pid != ::getpid() && g_local_count < kMaxRanks)
      g_local[g_local_count++] = {r.rank, pid_t(r.pid)};
  set_jobs_in_flight("none");
  struct sigaction action {};
  action.sa_handler = on_sigterm;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGTERM, &action, nullptr);
}

}  // namespace ditrun::launcher

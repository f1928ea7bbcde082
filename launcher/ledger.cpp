#include "launcher/ledger.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "runtime/core/error.h"

namespace ditrun::launcher {
namespace {

using nlohmann::json;

// Times to the millisecond: finer is noise, and it keeps the lines short.
double round_ms(double s) { return std::round(s * 1000.0) / 1000.0; }

json to_json(const LedgerEntry& e) {
  json j;
  j["id"] = e.id;
  j["status"] = to_string(e.status);
  if (e.status == LedgerStatus::queued) {
    j["job"] = e.job;
    j["submitted_at"] = e.submitted_at.empty() ? iso8601_utc_now() : e.submitted_at;
    return j;
  }
  if (e.status == LedgerStatus::cancelled) {
    j["finished_at"] = e.finished_at.empty() ? iso8601_utc_now() : e.finished_at;
    return j;
  }
  if (e.status == LedgerStatus::failed) j["error"] = e.error;
  j["seconds"] = round_ms(e.seconds);
  j["steps"] = e.steps;
  j["seconds_per_step"] = e.steps > 0 ? round_ms(e.seconds / e.steps) : 0.0;
  j["outputs"] = e.outputs;
  if (!e.vae.empty()) j["vae"] = e.vae;
  j["finished_at"] = e.finished_at.empty() ? iso8601_utc_now() : e.finished_at;
  return j;
}

// The fields --resume relies on must be there with the right types; the rest is optional.
LedgerEntry from_json(const json& j) {
  if (!j.is_object()) throw std::invalid_argument("not a JSON object");
  LedgerEntry e;
  e.id = j.at("id").get<std::string>();
  const std::string status = j.at("status").get<std::string>();
  if (status == "done") e.status = LedgerStatus::done;
  else if (status == "failed") e.status = LedgerStatus::failed;
  else if (status == "queued") e.status = LedgerStatus::queued;
  else if (status == "cancelled") e.status = LedgerStatus::cancelled;
  else throw std::invalid_argument("status '" + status + "'");
  if (e.status == LedgerStatus::queued) {
    e.job = j.at("job");
    if (!e.job.is_object()) throw std::invalid_argument("queued job is not an object");
    e.submitted_at = j.value("submitted_at", "");
    return e;
  }
  e.error = j.value("error", "");
  e.seconds = j.value("seconds", 0.0);
  e.steps = j.value("steps", 0);
  e.outputs = j.value("outputs", std::vector<std::string>{});
  e.vae = j.value("vae", "");
  e.finished_at = j.value("finished_at", "");
  return e;
}

void write_all(int fd, const std::string& bytes, const std::string& path) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("{}: cannot write: {}", path, std::strerror(errno));
    done += size_t(n);
  }
}

// True if the file is non-empty and its last byte is not a newline: a line torn by a crash.
// (The descriptor is opened read-write for this pread; O_APPEND still places every write.)
bool ends_mid_line(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size == 0) return false;
  char last = '\n';
  return ::pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n';
}

// A new file's directory entry must reach the disk too, or the whole ledger can vanish.
void sync_dir(const std::string& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

std::string_view to_string(LedgerStatus status) {
  switch (status) {
    case LedgerStatus::done: return "done";
    case LedgerStatus::failed: return "failed";
    case LedgerStatus::queued: return "queued";
    case LedgerStatus::cancelled: return "cancelled";
  }
  return "failed";
}

std::string ledger_path(const std::string& dir) { return (std::filesystem::path(dir) / "ledger.jsonl").string(); }

std::string iso8601_utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

void append_ledger(const std::string& dir, const LedgerEntry& entry) {
  const std::string path = ledger_path(dir);
  const bool existed = std::filesystem::exists(path);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) fail("{}: cannot open the ledger for appending: {}", path, std::strerror(errno));
  try {
    std::string line = to_json(entry).dump() + "\n";
    if (ends_mid_line(fd)) line.insert(line.begin(), '\n');  // close a torn line; readers skip it
    write_all(fd, line, path);  // one write of a whole line: O_APPEND keeps it in one piece
    if (::fsync(fd) != 0) fail("{}: cannot sync: {}", path, std::strerror(errno));
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  if (!existed) sync_dir(dir);
}

LedgerContents read_ledger(const std::string& dir) {
  const std::string path = ledger_path(dir);
  LedgerContents out;
  if (!std::filesystem::exists(path)) return out;
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open the ledger", path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();

  int line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    const bool terminated = end != std::string::npos;
    if (!terminated) end = text.size();
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      out.entries.push_back(from_json(json::parse(line)));
    } catch (const std::exception& e) {
      // json::exception and std::invalid_argument: a line we cannot trust is not a record.
      out.warnings.push_back(terminated ? fmt::format("{}:{}: ignoring a malformed line (an earlier crash?)", path, line_no)
                                        : fmt::format("{}:{}: ignoring a truncated last line (a crash while writing?)",
                                                      path, line_no));
    }
  }
  return out;
}

std::set<std::string> completed_jobs(const std::string& dir) {
  const LedgerContents ledger = read_ledger(dir);
  for (const std::string& w : ledger.warnings) spdlog::warn("{}", w);
  std::map<std::string, const LedgerEntry*> last;
  for (const LedgerEntry& e : ledger.entries) last[e.id] = &e;
  std::set<std::string> completed;
  for (const auto& [id, e] : last) {
    if (!e->done()) continue;
    bool all_there = true;
    for (const std::string& name : e->outputs) {
      const std::filesystem::path p(name);
      if (!std::filesystem::exists(p.is_absolute() ? p : std::filesystem::path(dir) / p)) all_there = false;
    }
    if (all_there) completed.insert(id);
  }
  return completed;
}

}  // namespace ditrun::launcher

// The run ledger: DIR/ledger.jsonl records every finished job, one JSON line each,
//   {"id", "status": "done"|"failed", "error" (failed only), "seconds", "steps",
//    "seconds_per_step", "outputs": [file names in DIR], "finished_at": "2025-11-22T03:14:15Z"}
// `ditrun serve` also records the jobs it accepts, so a restarted server resumes its queue:
//   {"id", "status": "queued", "job": {the job line, paths resolved}, "submitted_at"}
//   {"id", "status": "cancelled", "finished_at"}
// A job's last line is its state; a "queued" job with no later line is still to run.
// It is the record of what a run produced and what `ditrun run --resume` may skip. Each line
// is appended with one write and fsync'd before the next job starts, so a crash loses at most
// the line being written; readers ignore such a torn line with a warning, and the next append
// first ends it with a newline so later lines stay whole.
#pragma once

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace ditrun::launcher {

enum class LedgerStatus { done, failed, queued, cancelled };
std::string_view to_string(LedgerStatus status);

struct LedgerEntry {
  std::string id;
  LedgerStatus status = LedgerStatus::failed;
  std::string error;                 // why it failed (failed only)
  double seconds = 0;                // wall time of the job
  int steps = 0;                     // sampler steps run
  std::vector<std::string> outputs;  // file names relative to DIR (absolute paths kept as given)
  std::string vae;                   // the VAE that decoded the pictures among the outputs ("": none)
  std::string finished_at;           // ISO-8601 UTC; append() fills it when empty (not for queued)
  nlohmann::json job;                // queued only: the job line as accepted
  std::string submitted_at;          // queued only; append() fills it when empty
  bool done() const { return status == LedgerStatus::done; }
};

std::string ledger_path(const std::string& dir);  // DIR/ledger.jsonl

// Appends one line for `entry` to DIR/ledger.jsonl (creating it), flushed to disk before
// returning. Fails (ditrun::Error naming the file) if it cannot be written.
void append_ledger(const std::string& dir, const LedgerEntry& entry);

struct LedgerContents {
  std::vector<LedgerEntry> entries;   // in file order
  std::vector<std::string> warnings;  // one line per ignored line ("FILE:LINE: ...")
};

// Reads DIR/ledger.jsonl; a missing file is an empty ledger. Lines that are not a valid
// entry (a torn last line after a crash, or one that a later append closed off) are skipped
// with a warning. Fails only if the file exists but cannot be read.
LedgerContents read_ledger(const std::string& dir);

// Ids whose last ledger line says "done" and whose output files all still exist in DIR:
// the jobs `--resume` skips. A later "failed" line, or a deleted output, makes a job run again.
// Logs read_ledger's warnings.
std::set<std::string> completed_jobs(const std::string& dir);

std::string iso8601_utc_now();  // "2025-11-22T03:14:15Z"

}  // namespace ditrun::launcher

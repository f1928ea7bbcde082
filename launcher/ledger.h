// The run ledger: DIR/ledger.jsonl records every finished job, one JSON line each,
//   {"id", "status": "done"|"failed", "error" (failed only), "seconds", "steps",
//    "seconds_per_step", "outputs": [file names in DIR], "finished_at": "2025-11-22T03:14:15Z"}
// It is the record of what a run produced and what `ditrun run --resume` may skip. Each line
// is appended with one write and fsync'd before the next job starts, so a crash loses at most
// the line being written; readers ignore such a torn line with a warning, and the next append
// first ends it with a newline so later lines stay whole.
#pragma once

#include <set>
#include <string>
#include <vector>

namespace ditrun::launcher {

struct LedgerEntry {
  std::string id;
  bool done = false;                 // status "done", else "failed"
  std::string error;                 // why it failed (failed only)
  double seconds = 0;                // wall time of the job
  int steps = 0;                     // sampler steps run
  std::vector<std::string> outputs;  // file names relative to DIR (absolute paths kept as given)
  std::string finished_at;           // ISO-8601 UTC; append() fills it when empty
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

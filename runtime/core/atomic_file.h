// A file that appears at its final path only when complete: data goes to a temporary file
// in the same directory, which commit() flushes, syncs and renames over the target. An
// AtomicFile destroyed without commit() removes its temporary file, so an interrupted
// writer never leaves a half-written output that looks finished.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace ditrun {

class AtomicFile {
 public:
  explicit AtomicFile(std::string final_path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(std::span<const uint8_t> bytes);
  void write(const void* data, size_t size) { write({static_cast<const uint8_t*>(data), size}); }
  void write_zeros(uint64_t count);
  uint64_t bytes_written() const { return written_; }
  void commit();
  const std::string& path() const { return final_path_; }

 private:
  std::string final_path_;
  std::string temp_path_;
  int fd_ = -1;
  uint64_t written_ = 0;
  bool committed_ = false;
};

}  // namespace ditrun

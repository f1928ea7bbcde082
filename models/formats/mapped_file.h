// A read-only memory map of a whole file. Checkpoints are mapped, never read into memory:
// the kernel pages weights in on demand and can drop them again under pressure.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace ditrun::formats {

class MappedFile {
 public:
  // Fails (ditrun::Error naming the path) if the file cannot be opened or mapped.
  explicit MappedFile(std::string path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  uint64_t size() const { return size_; }

 private:
  void release();
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace ditrun::formats

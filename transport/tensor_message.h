// What ranks say to each other above raw bytes: named f32 host tensors, named integers and a
// small JSON header (job ids, step numbers, anything descriptive), packed into one message.
//
// Wire format, little-endian, no padding (version 1):
//   "DTMS"  u32 version
//   u64 header length, header (JSON text)
//   u64 integer count, u64 tensor count
//   per integer: u32 name length, name, i64 value
//   per tensor:  u32 name length, name, u32 ndim, ndim x i64 dims, numel x f32 data
// Decoding trusts nothing: every length and count is checked against the bytes that remain
// before anything is allocated, so hostile input is an Error, never a crash or a huge
// allocation (tests/fuzz/fuzz_tensor_message.cpp keeps it so).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/core/tensor.h"
#include "transport/channel.h"

namespace ditrun::transport {

inline constexpr uint32_t kTensorMessageVersion = 1;
// Limits that keep a decoder's work proportional to its input.
inline constexpr uint32_t kTensorMessageMaxDims = 16;
inline constexpr int kTensorMessageMaxHeaderDepth = 64;

struct TensorMessage {
  nlohmann::json header = nlohmann::json::object();
  std::map<std::string, int64_t, std::less<>> ints;
  std::map<std::string, HostTensor, std::less<>> tensors;

  // Lookups that fail naming the missing entry and what the message does hold.
  const HostTensor& tensor(std::string_view name) const;
  int64_t integer(std::string_view name) const;
};

// Fails when a tensor's data does not match its shape or the header is not valid UTF-8.
std::vector<uint8_t> encode_tensor_message(const TensorMessage& message);
// `what` names the bytes in errors ("message from rank 1 tag 3").
TensorMessage decode_tensor_message(std::span<const uint8_t> bytes, std::string_view what);
// A received channel message; errors name its source and tag.
TensorMessage decode_tensor_message(const Message& message);

}  // namespace ditrun::transport

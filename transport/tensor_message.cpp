#include "transport/tensor_message.h"

#include <fmt/format.h>

#include <bit>
#include <cstring>
#include <limits>

#include "runtime/core/error.h"

namespace ditrun::transport {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the tensor message format is little-endian and is copied as is");

constexpr uint8_t kMagic[4] = {'D', 'T', 'M', 'S'};
// The smallest possible entries (one-byte name), to refuse impossible counts up front.
constexpr uint64_t kMinIntegerBytes = 4 + 1 + 8;
constexpr uint64_t kMinTensorBytes = 4 + 1 + 4;

// Names come from the other side of a channel: show them on one line, short and escaped.
std::string printable(std::string_view name) {
  std::string out;
  for (size_t i = 0; i < name.size() && i < 64; ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c >= 0x20 && c < 0x7f && c != '\'') out += char(c);
    else out += fmt::format("\\x{:02x}", c);
  }
  if (name.size() > 64) out += "...";
  return out;
}

template <class Map>
std::string names_of(const Map& map) {
  std::string out;
  for (const auto& [name, value] : map) out += (out.empty() ? "" : ", ") + printable(name);
  return out.empty() ? "nothing" : out;
}

class Writer {
 public:
  explicit Writer(size_t capacity) { out_.reserve(capacity); }
  void bytes(const void* data, size_t n) {
    const auto* p = static_cast<const uint8_t*>(data);
    out_.insert(out_.end(), p, p + n);
  }
  template <class T>
  void value(T v) { bytes(&v, sizeof v); }
  void name(const std::string& s) {
    value(uint32_t(s.size()));
    bytes(s.data(), s.size());
  }
  std::vector<uint8_t> take() { return std::move(out_); }

 private:
  std::vector<uint8_t> out_;
};

// Reads forward through untrusted bytes; every read is checked against what remains.
class Reader {
 public:
  Reader(std::span<const uint8_t> bytes, std::string_view what) : bytes_(bytes), what_(what) {}

  uint64_t remaining() const { return bytes_.size() - pos_; }

  std::span<const uint8_t> take(uint64_t n, std::string_view field) {
    if (n > remaining())
      fail("{}: {} needs {} bytes at offset {} but only {} remain (truncated or corrupt message)", what_, field, n,
           pos_, remaining());
    const auto out = bytes_.subspan(pos_, size_t(n));
    pos_ += size_t(n);
    return out;
  }
  template <class T>
  T value(std::string_view field) {
    T v;
    std::memcpy(&v, take(sizeof v, field).data(), sizeof v);
    return v;
  }
  std::string name(std::string_view field) {
    const auto length = value<uint32_t>(field);
    const auto text = take(length, field);
    if (length == 0) fail("{}: {} is empty", what_, field);
    return std::string(text.begin(), text.end());
  }
  std::string_view what() const { return what_; }

 private:
  std::span<const uint8_t> bytes_;
  std::string_view what_;
  size_t pos_ = 0;
};

void check_encodable_name(std::string_view kind, const std::string& name) {
  if (name.empty()) fail("tensor message: a {} has an empty name", kind);
  if (name.size() > std::numeric_limits<uint32_t>::max())
    fail("tensor message: {} name '{}...' is longer than 4 GiB", kind, printable(name));
}

void check_encodable_tensor(const std::string& name, const HostTensor& t) {
  check_encodable_name("tensor", name);
  if (t.shape.size() > kTensorMessageMaxDims)
    fail("tensor message: tensor '{}' has {} dims, more than {}", printable(name), t.shape.size(),
         kTensorMessageMaxDims);
  const int64_t numel = shape_numel(t.shape);
  if (numel < 0 || uint64_t(numel) != t.data.size())
    fail("tensor message: tensor '{}' has shape {} but {} values", printable(name), shape_string(t.shape),
         t.data.size());
}

nlohmann::json parse_header(std::span<const uint8_t> text, std::string_view what) {
  // Depth is limited because nesting costs the parser and every later copy of the header
  // work proportional to it, and a header is meant to be small.
  const auto limit_depth = [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
    if (depth > kTensorMessageMaxHeaderDepth)
      fail("{}: header JSON nests deeper than {} levels", what, kTensorMessageMaxHeaderDepth);
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), limit_depth);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: header is not valid JSON: {}", what, e.what());
  }
}

HostTensor read_tensor(Reader& in, const std::string& name) {
  const std::string label = fmt::format("tensor '{}'", printable(name));
  const auto ndim = in.value<uint32_t>(label + " ndim");
  if (ndim > kTensorMessageMaxDims)
    fail("{}: {} has {} dims, more than {}", in.what(), label, ndim, kTensorMessageMaxDims);
  Shape shape(ndim);
  for (auto& d : shape) {
    d = in.value<int64_t>(label + " dims");
    if (d < 0) fail("{}: {} has a negative dim {}", in.what(), label, d);
  }
  const int64_t numel = shape_numel(shape);
  if (numel < 0 || uint64_t(numel) > in.remaining() / sizeof(float))
    fail("{}: {} of shape {} needs more data than the {} bytes that remain", in.what(), label, shape_string(shape),
         in.remaining());
  const auto data = in.take(uint64_t(numel) * sizeof(float), label + " data");
  std::vector<float> values(static_cast<size_t>(numel));
  if (numel > 0) std::memcpy(values.data(), data.data(), data.size());
  return HostTensor(std::move(shape), std::move(values));
}

}  // namespace

const HostTensor& TensorMessage::tensor(std::string_view name) const {
  const auto it = tensors.find(name);
  if (it == tensors.end())
    fail("tensor message has no tensor '{}' (it holds {})", printable(name), names_of(tensors));
  return it->second;
}

int64_t TensorMessage::integer(std::string_view name) const {
  const auto it = ints.find(name);
  if (it == ints.end())
    fail("tensor message has no integer '{}' (it holds {})", printable(name), names_of(ints));
  return it->second;
}

std::vector<uint8_t> encode_tensor_message(const TensorMessage& message) {
  std::string header;
  try {
    header = message.header.dump();
  } catch (const nlohmann::json::exception& e) {
    fail("tensor message: header cannot be written as JSON: {}", e.what());
  }
  size_t total = sizeof kMagic + 4 + 8 + header.size() + 8 + 8;
  for (const auto& [name, value] : message.ints) {
    check_encodable_name("integer", name);
    total += 4 + name.size() + 8;
  }
  for (const auto& [name, t] : message.tensors) {
    check_encodable_tensor(name, t);
    total += 4 + name.size() + 4 + 8 * t.shape.size() + sizeof(float) * t.data.size();
  }

  Writer out(total);
  out.bytes(kMagic, sizeof kMagic);
  out.value(kTensorMessageVersion);
  out.value(uint64_t(header.size()));
  out.bytes(header.data(), header.size());
  out.value(uint64_t(message.ints.size()));
  out.value(uint64_t(message.tensors.size()));
  for (const auto& [name, value] : message.ints) {
    out.name(name);
    out.value(value);
  }
  for (const auto& [name, t] : message.tensors) {
    out.name(name);
    out.value(uint32_t(t.shape.size()));
    for (const int64_t d : t.shape) out.value(d);
    out.bytes(t.data.data(), sizeof(float) * t.data.size());
  }
  return out.take();
}

TensorMessage decode_tensor_message(std::span<const uint8_t> bytes, std::string_view what) {
  Reader in(bytes, what);
  const auto magic = in.take(sizeof kMagic, "the magic");
  if (std::memcmp(magic.data(), kMagic, sizeof kMagic) != 0)
    fail("{}: not a tensor message (magic bytes {:02x} {:02x} {:02x} {:02x}, expected 'DTMS')", what, magic[0],
         magic[1], magic[2], magic[3]);
  const auto version = in.value<uint32_t>("the version");
  if (version != kTensorMessageVersion)
    fail("{}: tensor message version {}, this build reads version {}", what, version, kTensorMessageVersion);

  TensorMessage message;
  const auto header_length = in.value<uint64_t>("the header length");
  message.header = parse_header(in.take(header_length, "the header"), what);

  const auto int_count = in.value<uint64_t>("the integer count");
  const auto tensor_count = in.value<uint64_t>("the tensor count");
  if (int_count > in.remaining() / kMinIntegerBytes)
    fail("{}: {} integers cannot fit in the {} bytes that remain", what, int_count, in.remaining());
  if (tensor_count > in.remaining() / kMinTensorBytes)
    fail("{}: {} tensors cannot fit in the {} bytes that remain", what, tensor_count, in.remaining());

  for (uint64_t i = 0; i < int_count; ++i) {
    std::string name = in.name(fmt::format("integer {} name", i));
    if (message.ints.contains(name)) fail("{}: integer '{}' appears twice", what, printable(name));
    const auto value = in.value<int64_t>(fmt::format("integer '{}'", printable(name)));
    message.ints.emplace(std::move(name), value);
  }
  for (uint64_t i = 0; i < tensor_count; ++i) {
    std::string name = in.name(fmt::format("tensor {} name", i));
    if (message.tensors.contains(name)) fail("{}: tensor '{}' appears twice", what, printable(name));
    HostTensor t = read_tensor(in, name);
    message.tensors.emplace(std::move(name), std::move(t));
  }
  if (in.remaining() != 0)
    fail("{}: {} bytes follow the last tensor (corrupt message or a newer format)", what, in.remaining());
  return message;
}

TensorMessage decode_tensor_message(const Message& message) {
  return decode_tensor_message(message.bytes, fmt::format("message from rank {} tag {}", message.source, message.tag));
}

}  // namespace ditrun::transport

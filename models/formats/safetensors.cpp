#include "models/formats/safetensors.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <set>
#include <nlohmann/json.hpp>

#include "runtime/core/atomic_file.h"
#include "runtime/core/error.h"

namespace ditrun::formats {

// ordered_json keeps header order, which is the order a writer laid the data out in.
using json = nlohmann::ordered_json;

namespace {

// A safetensors header is two levels deep; anything much deeper is hostile.
constexpr int kMaxJsonDepth = 8;

uint64_t load_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

int64_t json_nonneg_int(const json& v, const std::string& source, const std::string& what) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > uint64_t(INT64_MAX)) fail("{}: {} value {} is too large", source, what, u);
    return int64_t(u);
  }
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (i < 0) fail("{}: {} value {} is negative", source, what, i);
    return i;
  }
  fail("{}: {} must be a non-negative integer", source, what);
}

}  // namespace

SafetensorsIndex parse_safetensors(std::span<const uint8_t> bytes, const std::string& source) {
  if (bytes.size() < 8) fail("{}: safetensors file is {} bytes, shorter than its 8-byte header length", source, bytes.size());
  const uint64_t header_len = load_u64_le(bytes.data());
  if (header_len > kSafetensorsMaxHeaderBytes)
    fail("{}: safetensors header length {} exceeds the {} byte limit", source, header_len, kSafetensorsMaxHeaderBytes);
  if (header_len > bytes.size() - 8)
    fail("{}: safetensors header length {} runs past the end of the {}-byte file", source, header_len, bytes.size());
  const auto* hbegin = reinterpret_cast<const char*>(bytes.data() + 8);
  json header;
  std::set<std::string> top_level_keys;
  try {
    header = json::parse(hbegin, hbegin + header_len, [&](int depth, json::parse_event_t event, json& parsed) {
      if (depth > kMaxJsonDepth) throw Error("JSON nested too deeply");
      if (event == json::parse_event_t::key && depth == 1 && !top_level_keys.insert(parsed.get<std::string>()).second)
        throw Error("duplicate entry '" + parsed.get<std::string>() + "'");
      return true;
    });
  } catch (const Error& e) {
    fail("{}: safetensors header: {}", source, e.what());
  } catch (const json::exception& e) {
    fail("{}: safetensors header is not valid JSON: {}", source, e.what());
  }
  if (!header.is_object()) fail("{}: safetensors header is not a JSON object", source);

  SafetensorsIndex index;
  index.data_start = 8 + header_len;
  const uint64_t data_size = bytes.size() - index.data_start;

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) fail("{}: __metadata__ is not an object", source);
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string()) fail("{}: __metadata__ value of '{}' is not a string", source, m.key());
        index.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (!entry.is_object()) fail("{}: {} entry is not an object", source, where);
    const auto dtype_it = entry.find("dtype");
    const auto shape_it = entry.find("shape");
    const auto offsets_it = entry.find("data_offsets");
    if (dtype_it == entry.end() || !dtype_it->is_string()) fail("{}: {} has no string 'dtype'", source, where);
    if (shape_it == entry.end() || !shape_it->is_array()) fail("{}: {} has no 'shape' array", source, where);
    if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2)
      fail("{}: {} has no 'data_offsets' pair", source, where);

    TensorRecord rec;
    rec.name = name;
    const std::string dtype_name = dtype_it->get<std::string>();
    const auto dtype = dtype_from_safetensors_name(dtype_name);
    if (!dtype) fail("{}: {} has unknown dtype '{}'", source, where, dtype_name);
    rec.dtype = *dtype;
    if (shape_it->size() > 16) fail("{}: {} has {} dims, more than any model uses", source, where, shape_it->size());
    for (const json& d : *shape_it) rec.shape.push_back(json_nonneg_int(d, source, where + " shape"));
    const int64_t elems = element_count(rec.shape);
    if (elems < 0) fail("{}: {} element count overflows", source, where);
    const int64_t begin = json_nonneg_int((*offsets_it)[0], source, where + " data_offsets");
    const int64_t end = json_nonneg_int((*offsets_it)[1], source, where + " data_offsets");
    if (end < begin) fail("{}: {} data_offsets [{}, {}] end before they begin", source, where, begin, end);
    if (uint64_t(end) > data_size)
      fail("{}: {} data_offsets end {} lies past the {}-byte data section", source, where, end, data_size);
    const int64_t expect = dtype_bytes(rec.dtype, elems, source + ": " + where);
    if (end - begin != expect)
      fail("{}: {} spans {} bytes but shape {} of {} needs {}", source, where, end - begin, shape_string(rec.shape),
           dtype_name, expect);
    rec.offset = index.data_start + uint64_t(begin);
    rec.nbytes = uint64_t(end - begin);
    index.tensors.push_back(std::move(rec));
  }

  // Overlap check on a sorted copy; header order is kept for the caller. Each tensor is
  // compared with the one reaching furthest so far, not just its neighbour, so a zero-byte
  // tensor (which occupies nothing) between two overlapping ones cannot hide them.
  std::vector<const TensorRecord*> by_offset;
  by_offset.reserve(index.tensors.size());
  for (const auto& t : index.tensors)
    if (t.nbytes > 0) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorRecord* a, const TensorRecord* b) {
    return a->offset != b->offset ? a->offset < b->offset : a->nbytes < b->nbytes;
  });
  const TensorRecord* furthest = nullptr;
  for (const TensorRecord* cur : by_offset) {
    if (furthest && cur->offset < furthest->offset + furthest->nbytes)
      fail("{}: tensors '{}' and '{}' overlap in the data section", source, furthest->name, cur->name);
    if (!furthest || cur->offset + cur->nbytes > furthest->offset + furthest->nbytes) furthest = cur;
  }
  return index;
}

struct SafetensorsWriter::Impl {
  AtomicFile file;
  explicit Impl(std::string path) : file(std::move(path)) {}
};

SafetensorsWriter::SafetensorsWriter(std::string path, std::vector<SafetensorsEntry> entries,
                                     std::map<std::string, std::string> metadata)
    : entries_(std::move(entries)), impl_(nullptr) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& e : entries_) {
    const DTypeInfo& row = dtype_info(e.dtype);
    if (row.safetensors_name.empty()) fail("{}: tensor '{}': safetensors cannot hold {}", path, e.name, row.name);
    const int64_t elems = element_count(e.shape);
    if (elems < 0) fail("{}: tensor '{}': bad shape {}", path, e.name, shape_string(e.shape));
    const uint64_t size = uint64_t(dtype_bytes(e.dtype, elems, e.name));
    if (header.contains(e.name)) fail("{}: tensor '{}' declared twice", path, e.name);
    header[e.name] = {{"dtype", row.safetensors_name}, {"shape", e.shape}, {"data_offsets", {offset, offset + size}}};
    sizes_.push_back(size);
    offset += size;
  }
  std::string text = header.dump();
  // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
  text.append((8 - text.size() % 8) % 8, ' ');
  impl_ = new Impl(std::move(path));
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(text.size()) >> (8 * i));
  impl_->file.write(len, 8);
  impl_->file.write(text.data(), text.size());
}

SafetensorsWriter::~SafetensorsWriter() { delete impl_; }

void SafetensorsWriter::write_next(std::span<const uint8_t> bytes) {
  if (next_ >= entries_.size()) fail("{}: more tensors written than declared", impl_->file.path());
  if (bytes.size() != sizes_[next_])
    fail("{}: tensor '{}' needs {} bytes, got {}", impl_->file.path(), entries_[next_].name, sizes_[next_], bytes.size());
  impl_->file.write(bytes);
  ++next_;
}

void SafetensorsWriter::finish() {
  if (next_ != entries_.size())
    fail("{}: only {} of {} tensors written", impl_->file.path(), next_, entries_.size());
  impl_->file.commit();
}

}  // namespace ditrun::formats

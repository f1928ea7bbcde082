#include "models/formats/gguf.h"

#include <algorithm>
#include <cstring>
#include <set>

#include <fmt/format.h>

#include "runtime/core/atomic_file.h"
#include "runtime/core/error.h"

namespace ditrun::formats {
namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as little-endian u32

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::BOOL: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: return 8;
    case GgufType::STRING: return 8;  // at least its length field
    case GgufType::ARRAY: return 12;  // at least elem type + count
  }
  return 0;
}

bool valid_type(uint32_t t) { return t <= uint32_t(GgufType::F64); }

uint64_t align_up(uint64_t v, uint64_t a) { return v + (a - v % a) % a; }

// Bounds-checked little-endian cursor over the file. Every read names what it was reading,
// so a truncated file reports the field it ended in.
class Cursor {
 public:
  Cursor(std::span<const uint8_t> bytes, const std::string& source) : bytes_(bytes), source_(source) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return bytes_.size() - pos_; }

  template <class T>
  T read(std::string_view what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(std::string_view what) {
    const uint64_t len = read<uint64_t>(what);
    if (len > kGgufMaxStringLength) fail("{}: {} length {} exceeds the 1 GiB limit", source_, what, len);
    need(len, what);
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), size_t(len));
    pos_ += len;
    return s;
  }

  void need(uint64_t n, std::string_view what) const {
    if (n > remaining()) fail("{}: truncated: {} needs {} bytes at offset {}, {} left", source_, what, n, pos_, remaining());
  }

  const std::string& source() const { return source_; }

 private:
  std::span<const uint8_t> bytes_;
  const std::string& source_;
  uint64_t pos_ = 0;
};

GgufValue read_scalar(Cursor& c, GgufType t, const std::string& what) {
  GgufValue v;
  v.type = t;
  switch (t) {
    case GgufType::U8: v.value = uint64_t(c.read<uint8_t>(what)); break;
    case GgufType::I8: v.value = int64_t(c.read<int8_t>(what)); break;
    case GgufType::U16: v.value = uint64_t(c.read<uint16_t>(what)); break;
    case GgufType::I16: v.value = int64_t(c.read<int16_t>(what)); break;
    case GgufType::U32: v.value = uint64_t(c.read<uint32_t>(what)); break;
    case GgufType::I32: v.value = int64_t(c.read<int32_t>(what)); break;
    case GgufType::F32: v.value = double(c.read<float>(what)); break;
    case GgufType::BOOL: v.value = c.read<uint8_t>(what) != 0; break;
    case GgufType::STRING: v.value = c.read_string(what); break;
    case GgufType::U64: v.value = c.read<uint64_t>(what); break;
    case GgufType::I64: v.value = c.read<int64_t>(what); break;
    case GgufType::F64: v.value = c.read<double>(what); break;
    case GgufType::ARRAY: fail("{}: {}: nested arrays are not allowed", c.source(), what);
  }
  return v;
}

GgufValue read_value(Cursor& c, uint32_t raw_type, const std::string& what, uint64_t& array_budget) {
  if (!valid_type(raw_type)) fail("{}: {} has unknown value type {}", c.source(), what, raw_type);
  const auto type = GgufType(raw_type);
  if (type != GgufType::ARRAY) return read_scalar(c, type, what);
  const uint32_t raw_elem = c.read<uint32_t>(what + " array type");
  if (!valid_type(raw_elem)) fail("{}: {} array has unknown element type {}", c.source(), what, raw_elem);
  const auto elem = GgufType(raw_elem);
  if (elem == GgufType::ARRAY) fail("{}: {} is an array of arrays, which GGUF readers reject", c.source(), what);
  const uint64_t count = c.read<uint64_t>(what + " array count");
  if (count > kGgufMaxArrayElements) fail("{}: {} array count {} exceeds the 2^30 limit", c.source(), what, count);
  if (count > array_budget)
    fail("{}: {} array count {} exceeds what is left of the {}-element metadata budget", c.source(), what, count,
         kGgufMaxTotalArrayElements);
  array_budget -= count;
  // Each element needs at least scalar_size bytes: a forged count cannot make us allocate.
  if (count > c.remaining() / scalar_size(elem))
    fail("{}: {} array count {} needs more bytes than the {} left in the file", c.source(), what, count, c.remaining());
  std::vector<GgufValue> items;
  items.reserve(size_t(count));
  for (uint64_t i = 0; i < count; ++i) items.push_back(read_scalar(c, elem, what));
  GgufValue v;
  v.type = GgufType::ARRAY;
  v.elem_type = elem;
  v.value = std::move(items);
  return v;
}

}  // namespace

std::string_view gguf_type_name(GgufType type) {
  static constexpr std::string_view kNames[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                                "bool", "string", "array", "u64", "i64", "f64"};
  return uint32_t(type) < std::size(kNames) ? kNames[uint32_t(type)] : "?";
}

GgufValue GgufValue::i32_array(const std::vector<int64_t>& v) {
  std::vector<GgufValue> items;
  for (int64_t x : v) items.push_back({GgufType::I32, GgufType::U8, x});
  return {GgufType::ARRAY, GgufType::I32, std::move(items)};
}

GgufValue GgufValue::f32_array(const std::vector<float>& v) {
  std::vector<GgufValue> items;
  for (float x : v) items.push_back({GgufType::F32, GgufType::U8, double(x)});
  return {GgufType::ARRAY, GgufType::F32, std::move(items)};
}

GgufValue GgufValue::u8_array(std::string_view bytes) {
  std::vector<GgufValue> items;
  for (unsigned char x : bytes) items.push_back({GgufType::U8, GgufType::U8, uint64_t(x)});
  return {GgufType::ARRAY, GgufType::U8, std::move(items)};
}

GgufValue GgufValue::string_array(const std::vector<std::string>& v) {
  std::vector<GgufValue> items;
  for (const std::string& x : v) items.push_back(string(x));
  return {GgufType::ARRAY, GgufType::STRING, std::move(items)};
}

std::optional<int64_t> GgufValue::as_int() const {
  if (const auto* u = std::get_if<uint64_t>(&value)) return *u <= uint64_t(INT64_MAX) ? std::optional<int64_t>(int64_t(*u)) : std::nullopt;
  if (const auto* i = std::get_if<int64_t>(&value)) return *i;
  return std::nullopt;
}

std::optional<std::string> GgufValue::as_string() const {
  if (const auto* s = std::get_if<std::string>(&value)) return *s;
  return std::nullopt;
}

std::string GgufValue::to_display(size_t max_array_items) const {
  return std::visit(
      [&](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return v.size() > 80 ? fmt::format("\"{}...\" ({} chars)", v.substr(0, 77), v.size()) : fmt::format("\"{}\"", v);
        } else if constexpr (std::is_same_v<T, std::vector<GgufValue>>) {
          std::string out = "[";
          for (size_t i = 0; i < v.size() && i < max_array_items; ++i) out += (i ? ", " : "") + v[i].to_display(0);
          if (v.size() > max_array_items) out += fmt::format(", ... ({} items)", v.size());
          return out + "]";
        } else if constexpr (std::is_same_v<T, bool>) {
          return v ? "true" : "false";
        } else {
          return fmt::format("{}", v);
        }
      },
      value);
}

const GgufValue* GgufIndex::find(std::string_view key) const {
  for (const auto& [k, v] : metadata)
    if (k == key) return &v;
  return nullptr;
}

GgufIndex parse_gguf(std::span<const uint8_t> bytes, const std::string& source) {
  Cursor c(bytes, source);
  GgufIndex index;
  const uint32_t magic = c.read<uint32_t>("magic");
  if (magic != kGgufMagic) fail("{}: not a GGUF file (bad magic)", source);
  index.version = c.read<uint32_t>("version");
  if (index.version == 0) fail("{}: GGUF version 0 is invalid", source);
  if ((index.version & 0xFFFF) == 0)
    fail("{}: GGUF version {:#010x} is byte-swapped (a big-endian file), which is not supported", source, index.version);
  if (index.version == 1) fail("{}: GGUF version 1 is no longer supported (it used 32-bit counts)", source);
  if (index.version > 3) fail("{}: GGUF version {} is newer than the supported v3", source, index.version);
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata count");
  // Bound the counts by what the rest of the file could hold (a KV pair takes at least 13
  // bytes, a tensor info at least 24), so forged counts fail before any allocation.
  if (n_kv > c.remaining() / 13) fail("{}: metadata count {} is larger than the file could hold", source, n_kv);
  if (n_tensors > c.remaining() / 24) fail("{}: tensor count {} is larger than the file could hold", source, n_tensors);

  std::set<std::string> keys;
  uint64_t array_budget = kGgufMaxTotalArrayElements;
  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string key = c.read_string(fmt::format("metadata key #{}", i));
    if (key.empty()) fail("{}: metadata key #{} is empty", source, i);
    if (!keys.insert(key).second) fail("{}: duplicate metadata key '{}'", source, key);
    const std::string what = fmt::format("metadata '{}'", key);
    const uint32_t type = c.read<uint32_t>(what + " type");
    GgufValue value = read_value(c, type, what, array_budget);
    if (key == "general.alignment") {
      if (value.type != GgufType::U32) fail("{}: general.alignment must be u32, not {}", source, gguf_type_name(value.type));
      const uint64_t a = std::get<uint64_t>(value.value);
      if (a == 0 || (a & (a - 1)) != 0) fail("{}: general.alignment {} is not a power of two", source, a);
      index.alignment = uint32_t(a);
    }
    index.metadata.emplace_back(key, std::move(value));
  }

  std::set<std::string> names;
  std::vector<uint64_t> relative_offsets;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorRecord rec;
    rec.name = c.read_string(fmt::format("tensor #{} name", i));
    if (rec.name.empty()) fail("{}: tensor #{} has an empty name", source, i);
    if (!names.insert(rec.name).second) fail("{}: duplicate tensor name '{}'", source, rec.name);
    const std::string what = fmt::format("tensor '{}'", rec.name);
    const uint32_t n_dims = c.read<uint32_t>(what + " dim count");
    if (n_dims > kGgufMaxDims) fail("{}: {} has {} dims, more than {}", source, what, n_dims, kGgufMaxDims);
    std::vector<int64_t> ne(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) {
      ne[d] = c.read<int64_t>(what + " dims");
      if (ne[d] < 0) fail("{}: {} dim {} is negative ({})", source, what, d, ne[d]);
    }
    const uint32_t type_id = c.read<uint32_t>(what + " type");
    const auto dtype = dtype_from_gguf_id(type_id);
    if (!dtype) {
      if (gguf_id_is_removed(type_id)) fail("{}: {} uses type id {}, which ggml removed", source, what, type_id);
      fail("{}: {} has unknown type id {}", source, what, type_id);
    }
    rec.dtype = *dtype;
    const uint64_t offset = c.read<uint64_t>(what + " offset");
    rec.shape.assign(ne.rbegin(), ne.rend());  // ggml ne[0] is innermost: PyTorch order is reversed
    const int64_t elems = element_count(rec.shape);
    if (elems < 0) fail("{}: {} element count overflows", source, what);
    const DTypeInfo& row = dtype_info(rec.dtype);
    if (n_dims > 0 && ne[0] % row.block_elems != 0)
      fail("{}: {} innermost dim {} is not a multiple of the {} block size {}", source, what, ne[0], row.name, row.block_elems);
    rec.nbytes = uint64_t(dtype_bytes(rec.dtype, elems, source + ": " + what));
    if (offset % index.alignment != 0)
      fail("{}: {} offset {} is not a multiple of the alignment {}", source, what, offset, index.alignment);
    relative_offsets.push_back(offset);
    index.tensors.push_back(std::move(rec));
  }

  index.data_start = n_tensors > 0 ? align_up(c.pos(), index.alignment) : c.pos();
  if (index.data_start > bytes.size())
    fail("{}: data section starts at {} beyond the end of the {}-byte file", source, index.data_start, bytes.size());
  const uint64_t data_size = bytes.size() - index.data_start;
  for (size_t i = 0; i < index.tensors.size(); ++i) {
    TensorRecord& rec = index.tensors[i];
    const uint64_t rel = relative_offsets[i];
    if (rel > data_size || rec.nbytes > data_size - rel)
      fail("{}: tensor '{}' data [{}, +{}) runs past the {}-byte data section", source, rec.name, rel, rec.nbytes, data_size);
    rec.offset = index.data_start + rel;
  }
  // Compare each tensor with the one reaching furthest so far, not just its neighbour: a
  // zero-byte tensor (or a short one) between two overlapping tensors must not hide them.
  std::vector<const TensorRecord*> sorted;
  for (const auto& t : index.tensors)
    if (t.nbytes > 0) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  const TensorRecord* furthest = nullptr;
  for (const TensorRecord* t : sorted) {
    if (furthest && furthest->offset + furthest->nbytes > t->offset)
      fail("{}: tensors '{}' and '{}' overlap in the data section", source, furthest->name, t->name);
    if (!furthest || t->offset + t->nbytes > furthest->offset + furthest->nbytes) furthest = t;
  }
  return index;
}

// ---------------------------------------------------------------------------------------
// Writer

namespace {

class ByteSink {
 public:
  template <class T>
  void put(T v) {
    append(&v, sizeof(T));
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    append(s.data(), s.size());
  }
  void append(const void* p, size_t n) {
    const size_t at = buf.size();
    buf.resize(at + n);
    if (n) std::memcpy(buf.data() + at, p, n);
  }
  void put_scalar(const GgufValue& v, GgufType t) {
    switch (t) {
      case GgufType::U8: put<uint8_t>(uint8_t(std::get<uint64_t>(v.value))); break;
      case GgufType::I8: put<int8_t>(int8_t(std::get<int64_t>(v.value))); break;
      case GgufType::U16: put<uint16_t>(uint16_t(std::get<uint64_t>(v.value))); break;
      case GgufType::I16: put<int16_t>(int16_t(std::get<int64_t>(v.value))); break;
      case GgufType::U32: put<uint32_t>(uint32_t(std::get<uint64_t>(v.value))); break;
      case GgufType::I32: put<int32_t>(int32_t(std::get<int64_t>(v.value))); break;
      case GgufType::F32: put<float>(float(std::get<double>(v.value))); break;
      case GgufType::BOOL: put<uint8_t>(std::get<bool>(v.value) ? 1 : 0); break;
      case GgufType::STRING: put_string(std::get<std::string>(v.value)); break;
      case GgufType::U64: put<uint64_t>(std::get<uint64_t>(v.value)); break;
      case GgufType::I64: put<int64_t>(std::get<int64_t>(v.value)); break;
      case GgufType::F64: put<double>(std::get<double>(v.value)); break;
      case GgufType::ARRAY: {
        const auto& items = std::get<std::vector<GgufValue>>(v.value);
        put<uint32_t>(uint32_t(v.elem_type));
        put<uint64_t>(items.size());
        for (const auto& item : items) put_scalar(item, v.elem_type);
        break;
      }
    }
  }
  std::vector<uint8_t> buf;
};

}  // namespace

struct GgufWriter::Impl {
  AtomicFile file;
  explicit Impl(std::string path) : file(std::move(path)) {}
};

GgufWriter::GgufWriter(std::string path, std::vector<std::pair<std::string, GgufValue>> metadata,
                       std::vector<GgufEntry> entries, uint32_t alignment)
    : entries_(std::move(entries)), alignment_(alignment), impl_(nullptr) {
  if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0) fail("{}: alignment {} is not a power of two", path, alignment_);
  const bool has_alignment_key = std::any_of(metadata.begin(), metadata.end(), [](auto& kv) { return kv.first == "general.alignment"; });
  if (!has_alignment_key && alignment_ != kGgufDefaultAlignment)
    metadata.emplace_back("general.alignment", GgufValue::u32(alignment_));
  ByteSink s;
  s.put<uint32_t>(kGgufMagic);
  s.put<uint32_t>(3);
  s.put<uint64_t>(entries_.size());
  s.put<uint64_t>(metadata.size());
  for (const auto& [key, value] : metadata) {
    s.put_string(key);
    s.put<uint32_t>(uint32_t(value.type));
    s.put_scalar(value, value.type);
  }
  uint64_t offset = 0;
  std::set<std::string> names;
  for (const auto& e : entries_) {
    const DTypeInfo& row = dtype_info(e.dtype);
    if (row.gguf_id < 0) fail("{}: tensor '{}': GGUF cannot hold {}", path, e.name, row.name);
    if (!names.insert(e.name).second) fail("{}: tensor '{}' declared twice", path, e.name);
    const int64_t elems = element_count(e.shape);
    if (elems < 0) fail("{}: tensor '{}': bad shape {}", path, e.name, shape_string(e.shape));
    if (!e.shape.empty() && e.shape.back() % row.block_elems != 0)
      fail("{}: tensor '{}': innermost dim {} is not a multiple of the {} block size {}", path, e.name, e.shape.back(),
           row.name, row.block_elems);
    const uint64_t size = uint64_t(dtype_bytes(e.dtype, elems, e.name));
    s.put_string(e.name);
    s.put<uint32_t>(uint32_t(e.shape.size()));
    for (auto it = e.shape.rbegin(); it != e.shape.rend(); ++it) s.put<int64_t>(*it);
    s.put<uint32_t>(uint32_t(row.gguf_id));
    s.put<uint64_t>(offset);
    sizes_.push_back(size);
    offset += align_up(size, alignment_);
  }
  if (!entries_.empty()) s.buf.resize(align_up(s.buf.size(), alignment_), 0);
  impl_ = new Impl(std::move(path));
  impl_->file.write(s.buf);
}

GgufWriter::~GgufWriter() { delete impl_; }

void GgufWriter::write_next(std::span<const uint8_t> bytes) {
  if (next_ >= entries_.size()) fail("{}: more tensors written than declared", impl_->file.path());
  if (bytes.size() != sizes_[next_])
    fail("{}: tensor '{}' needs {} bytes, got {}", impl_->file.path(), entries_[next_].name, sizes_[next_], bytes.size());
  impl_->file.write(bytes);
  impl_->file.write_zeros(align_up(bytes.size(), alignment_) - bytes.size());
  ++next_;
}

void GgufWriter::finish() {
  if (next_ != entries_.size()) fail("{}: only {} of {} tensors written", impl_->file.path(), next_, entries_.size());
  impl_->file.commit();
}

}  // namespace ditrun::formats

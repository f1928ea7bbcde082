// Byte sizes as users write them on the command line and in allocation strings.
//
// Every unit is binary: "gb", "g" and "gib" all mean 2^30 bytes, "mb" 2^20 and so on. That is
// what DisTorch allocation strings mean ("4g"/"4gb" x 1024^3 in ComfyUI-MultiGPU's parser) and
// what ComfyUI's --reserve-vram means (GB x 1024^3), so strings users already have keep their
// size; cards sold as "24GB" also have 24564-24576 MiB, so a "24gb" budget matches the card.
// Bandwidths in partition/ are decimal (GB/s = 1e9 bytes/s), as spec sheets give them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ditrun {

inline constexpr uint64_t KiB = uint64_t{1} << 10;
inline constexpr uint64_t MiB = uint64_t{1} << 20;
inline constexpr uint64_t GiB = uint64_t{1} << 30;
inline constexpr uint64_t TiB = uint64_t{1} << 40;

// "12gb", "12GB", "512mb", "1.5g", "24GiB", "64 kib", "800000000" (a plain integer is bytes).
// Empty, negative, fractional plain bytes, unknown units and overflow give nullopt.
std::optional<uint64_t> try_parse_bytes(std::string_view text);

// As try_parse_bytes, but throws ditrun::Error "<what> 'x' is not a size (...)".
uint64_t parse_bytes(std::string_view text, std::string_view what = "size");

// "800 B", "512 MiB", "24 GiB", "31.2 GiB": the largest binary unit, at most one decimal.
std::string format_bytes(uint64_t bytes);

// "24gib", "81559mib", "1000": the largest binary unit that divides exactly, so that
// try_parse_bytes(format_bytes_exact(n)) == n. Used when writing JSON.
std::string format_bytes_exact(uint64_t bytes);

// "850 us", "12.3 ms", "1.25 s": for predictions in messages and summaries.
std::string format_seconds(double seconds);
// Job times, which run to minutes or hours: "2911 s (48.5 min)"; format_seconds below 100 s.
std::string format_job_seconds(double seconds);

// Lower-cased copy with surrounding blanks removed; shared by the spec parsers.
std::string normalize_token(std::string_view text);

}  // namespace ditrun

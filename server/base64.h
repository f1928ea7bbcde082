// Base64 (RFC 4648, standard alphabet, '=' padding) for the bytes a JSON API carries: images
// and tensors in request and response bodies. Table-driven, so tens of megabytes take
// milliseconds.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ditrun::server {

std::string base64_encode(std::string_view bytes);

// Strict: the length must be a multiple of 4, '=' only as the last one or two characters,
// and nothing outside the alphabet (no whitespace, no URL-safe '-' '_'). nullopt otherwise,
// so the caller can say which field was bad.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace ditrun::server

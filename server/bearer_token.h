// The check behind ServerOptions::bearer_token.
#pragma once

#include <string_view>

namespace ditrun::server {

// Whether an Authorization header value is "Bearer <expected>" (scheme case-insensitive,
// RFC 6750). The token comparison takes the same time wherever the first difference is,
// so response timing cannot be used to guess the token byte by byte.
bool bearer_token_matches(std::string_view authorization, std::string_view expected);

}  // namespace ditrun::server

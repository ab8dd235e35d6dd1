#pragma once

#include <string>
#include <string_view>

namespace mrtrain {

// The SHA-256 of `bytes` as 64 lowercase hex digits (OpenSSL's libcrypto). Used where bytes
// must be recognised exactly: job fingerprints, plugin libraries shipped to workers.
std::string Sha256Hex(std::string_view bytes);

}  // namespace mrtrain

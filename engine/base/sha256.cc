#include "engine/base/sha256.h"

#include <openssl/evp.h>

#include "engine/base/check.h"

namespace mrtrain {

std::string Sha256Hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  // Cannot fail short of a broken libcrypto; a wrong digest would let the wrong bytes pass for
  // the right ones, so stop rather than go on.
  MRTRAIN_CHECK(EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_sha256(), nullptr) == 1);
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < size; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0xf];
  }
  return hex;
}

}  // namespace mrtrain

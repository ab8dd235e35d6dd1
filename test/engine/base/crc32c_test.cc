#include "engine/base/crc32c.h"

#include <string>

#include <catch2/catch.hpp>

#include "engine/base/status.h"
#include "engine/base/thread_pool.h"

namespace mrtrain {
namespace {

TEST_CASE("crc32c matches the published check value and extends", "[engine]") {
  const std::string s = "123456789";
  CHECK(Crc32c(s.data(), s.size()) == 0xE3069283u);  // RFC 3720 check value
  uint32_t first = Crc32c(s.data(), 4);
  CHECK(Crc32cExtend(first, s.data() + 4, 5) == 0xE3069283u);
}

TEST_CASE("crc32c combines and splits checksums of concatenated bytes", "[engine]") {
  std::string bytes;
  for (int i = 0; i < 100000; ++i) bytes.push_back(static_cast<char>((i * 131) ^ (i >> 7)));
  for (size_t cut : {size_t{0}, size_t{1}, size_t{7}, size_t{64}, size_t{4099}, bytes.size()}) {
    INFO("cut " << cut);
    const uint32_t whole = Crc32c(bytes.data(), bytes.size());
    const uint32_t a = Crc32c(bytes.data(), cut);
    const uint32_t b = Crc32c(bytes.data() + cut, bytes.size() - cut);
    CHECK(Crc32cCombine(a, b, bytes.size() - cut) == whole);
    CHECK((whole ^ Crc32cCombine(a, 0, bytes.size() - cut)) == b);
  }
  CHECK(Crc32cCombine(Crc32c("1234", 4), Crc32c("56789", 5), 5) == 0xE3069283u);
}

// The definition, one bit at a time: what the fast paths must agree with.
uint32_t BitwiseCrc32c(const unsigned char* p, size_t n) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int b = 0; b < 8; ++b) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
  }
  return crc ^ 0xFFFFFFFFu;
}

TEST_CASE("crc32c agrees with the bitwise definition at every length and alignment", "[engine]") {
  std::string bytes(300, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 131 + 7);
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  for (size_t offset = 0; offset < 8; ++offset) {
    for (size_t n = 0; n + offset <= 280; n += 13) {
      INFO("offset " << offset << " length " << n);
      CHECK(Crc32c(p + offset, n) == BitwiseCrc32c(p + offset, n));
      const size_t half = n / 3;
      CHECK(Crc32cExtend(Crc32c(p + offset, half), p + offset + half, n - half) ==
            BitwiseCrc32c(p + offset, n));
    }
  }
}

TEST_CASE("crc32c of large buffers, checksummed as three streams, agrees with the definition",
          "[engine]") {
  // Around the three-stream threshold (3 * 4096 bytes) and past it, at lengths that leave
  // every remainder after the thirds, from every alignment, and extending a checksum.
  std::string bytes(3 * 4096 * 4 + 64, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 2654435761u) >> 13);
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  for (size_t n : {size_t{3 * 4096 - 1}, size_t{3 * 4096}, size_t{3 * 4096 + 1},
                   size_t{3 * 4096 + 23}, size_t{3 * 4096 * 4}, size_t{3 * 4096 * 4 + 47}}) {
    for (size_t offset : {size_t{0}, size_t{3}, size_t{8}}) {
      INFO("offset " << offset << " length " << n);
      CHECK(Crc32c(p + offset, n) == BitwiseCrc32c(p + offset, n));
      CHECK(Crc32cExtend(Crc32c(p + offset, 5), p + offset + 5, n - 5) ==
            BitwiseCrc32c(p + offset, n));
    }
  }
}

TEST_CASE("status carries code and context", "[engine]") {
  Status s = NotFoundError("x.csv");
  CHECK(s.WithContext("train").ToString() == "NotFound: train: x.csv");
  Result<int> r = InvalidArgumentError("bad");
  CHECK_FALSE(r.ok());
  Result<int> v = 3;
  CHECK(*v == 3);
}

TEST_CASE("thread pool runs every index exactly once", "[engine]") {
  ThreadPool pool(3);
  std::vector<int> hits(1000, 0);
  for (int rep = 0; rep < 20; ++rep) {
    pool.ParallelFor(1000, [&](int64_t i) { hits[i]++; });
  }
  for (int h : hits) CHECK(h == 20);
}

}  // namespace
}  // namespace mrtrain

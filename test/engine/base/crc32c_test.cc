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

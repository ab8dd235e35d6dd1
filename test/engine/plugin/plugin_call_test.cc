#include "engine/plugin/plugin_call.h"

#include <stdexcept>
#include <string>

#include <catch2/catch.hpp>

namespace mrtrain::plugin {
namespace {

TEST_CASE("the plugin guard turns whatever a call throws into a plugin error", "[engine]") {
  int calls = 0;
  CHECK(CallPlugin("mapper \"m\" (M in libm.so)", "Gradient", [&] { ++calls; }).ok());
  CHECK(calls == 1);

  Status thrown = CallPlugin("mapper \"m\" (M in libm.so)", "Gradient",
                             [] { throw std::invalid_argument("bad row"); });
  CHECK(thrown.code() == StatusCode::kPluginError);
  CHECK(thrown.message() == "mapper \"m\" (M in libm.so): Gradient failed: bad row");

  // Not a std::exception: caught all the same.
  Status int_thrown =
      CallPlugin("reducer \"r\" (R in libr.so)", "update of tensor \"w\" (id 0)", [] { throw 42; });
  CHECK(int_thrown.code() == StatusCode::kPluginError);
  CHECK(int_thrown.message() ==
        "reducer \"r\" (R in libr.so): update of tensor \"w\" (id 0) failed: unknown exception");

  CHECK(ThrownBy([] {}) == std::nullopt);
  CHECK(ThrownBy([] { throw std::string("text"); }) == std::string("unknown exception"));
}

}  // namespace
}  // namespace mrtrain::plugin

#include "engine/plugin/plugin_library.h"

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/base/status.h"

namespace mrtrain::plugin {
namespace {

using Settings = std::map<std::string, std::string>;

const char kExample[] = "jobs/plugins/libmrtrain_example_plugins.so";
const char kTestPlugins[] = "test/engine/plugin/libtest_plugins.so";
const char kNoEntry[] = "test/engine/plugin/libno_entry_point.so";
const char kWrongVersion[] = "test/engine/plugin/libwrong_version.so";

TEST_CASE("the example library loads and lists what it exports", "[engine]") {
  auto library = PluginLibrary::Load(kExample);
  REQUIRE(library.ok());
  CHECK((*library)->MapperNames() == std::vector<std::string>{"huber"});
  CHECK((*library)->ReducerNames() == std::vector<std::string>{"clipped_sgd"});
  CHECK((*library)->DescribeExports() ==
        "mappers: huber; reducers: clipped_sgd; combiners: block_clip");
}

TEST_CASE("loading refuses what is not a plugin of this API version", "[engine]") {
  SECTION("missing file") {
    auto r = PluginLibrary::Load("no/such/libx.so");
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kNotFound);
    CHECK(r.status().message() == "no/such/libx.so: plugin library not found");
  }
  SECTION("no entry point") {
    auto r = PluginLibrary::Load(kNoEntry);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kPluginError);
    CHECK(r.status().message() ==
          std::string(kNoEntry) +
              ": no entry point mrtrain_plugin_v1: not an mrtrain plugin (define one with "
              "MRTRAIN_PLUGIN from engine/api/plugin.h)");
  }
  SECTION("another API version") {
    auto r = PluginLibrary::Load(kWrongVersion);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kPluginError);
    CHECK(r.status().message() ==
          std::string(kWrongVersion) +
              ": built for plugin API 5, this mrtrain speaks 4; rebuild the plugin against this "
              "mrtrain's engine/api headers");
  }
  SECTION("not a shared library") {
    const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/libtext.so";
    std::ofstream(path) << "not an ELF file\n";
    auto r = PluginLibrary::Load(path);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kPluginError);
  }
}

TEST_CASE("an unknown name lists what the libraries export", "[engine]") {
  auto set = PluginSet::Load({kExample, kTestPlugins});
  REQUIRE(set.ok());
  auto r = set->CreateMapper("hubber", api::Hyperparameters());
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kNotFound);
  CHECK(r.status().message() ==
        "no plugin exports mapper 'hubber' (" + std::string(kExample) +
            " exports mappers: huber; reducers: clipped_sgd; combiners: block_clip; " +
            kTestPlugins +
            " exports mappers: thrower, flaky, bad_record, wrong_size, infinite_loss; reducers: "
            "picky, "
            "int_thrower; combiners: "
            "throwing_combiner)");
  // A reducer's name is not a mapper's.
  CHECK_FALSE(set->CreateMapper("clipped_sgd", api::Hyperparameters()).ok());
}

TEST_CASE("a factory that throws gives a plugin error naming the name, class and library",
          "[engine]") {
  auto set = PluginSet::Load({kTestPlugins});
  REQUIRE(set.ok());
  auto r = set->CreateReducer("picky", api::Hyperparameters(Settings{{"speed", "3"}}));
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kPluginError);
  CHECK(r.status().message() == "reducer \"picky\" (PickyReducer in " + std::string(kTestPlugins) +
                                    "): constructor failed: picky takes no params, got speed");
  CHECK(set->CreateReducer("picky", api::Hyperparameters()).ok());
}

TEST_CASE("objects keep their library loaded after every handle is gone", "[engine]") {
  std::unique_ptr<api::Reducer> rule;
  {
    auto library = PluginLibrary::Load(kExample);
    REQUIRE(library.ok());
    auto made =
        (*library)->CreateReducer("clipped_sgd", api::Hyperparameters(Settings{{"clip", "0.5"}}));
    REQUIRE(made.ok());
    rule = std::move(*made);
  }
  // The library's code runs after the PluginLibrary handle was dropped.
  api::UpdateContext ctx;
  ctx.learning_rate = 0.1;
  const float grad[3] = {2.0f, -0.25f, -3.0f};
  float params[3] = {1.0f, 1.0f, 1.0f};
  rule->Update(ctx, grad, params, nullptr, 3);
  CHECK(params[0] == Approx(0.95f));   // clipped to 0.5
  CHECK(params[1] == Approx(1.025f));  // within the clip
  CHECK(params[2] == Approx(1.05f));   // clipped to -0.5
  CHECK(rule->NumSlots() == 0);
}

}  // namespace
}  // namespace mrtrain::plugin

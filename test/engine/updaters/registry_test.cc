#include "engine/updaters/registry.h"

#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

namespace mrtrain::updaters {
namespace {

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

Result<std::unique_ptr<api::Reducer>> Create(const std::string& rule,
                                             std::map<std::string, std::string> values = {}) {
  return CreateBuiltinReducer(rule, api::Hyperparameters(std::move(values)));
}

TEST_CASE("registry creates every built-in rule with its slot count", "[engine]") {
  const std::vector<std::pair<std::string, int>> rules = {
      {"sgd", 0},  {"momentum", 1}, {"nesterov", 1}, {"adagrad", 1},
      {"adam", 2}, {"ftrl", 2},     {"average", 0}};
  for (const auto& [name, slots] : rules) {
    INFO(name);
    CHECK(IsBuiltinReducer(name));
    auto rule = Create(name);
    REQUIRE(rule.ok());
    CHECK((*rule)->NumSlots() == slots);
  }
  CHECK_FALSE(IsBuiltinReducer("adamw"));
  CHECK_FALSE(IsBuiltinReducer("SGD"));
}

TEST_CASE("registry passes hyperparameters to the rule", "[engine]") {
  auto rule = Create("momentum", {{"momentum", "0.5"}});
  REQUIRE(rule.ok());
  api::UpdateContext ctx;
  ctx.step = 1;
  ctx.learning_rate = 1.0;
  float w = 0.0f;
  float v = 1.0f;
  float* slots[] = {&v};
  const float g = 1.0f;
  (*rule)->Update(ctx, &g, &w, slots, 1);
  CHECK(v == 1.5f);  // 0.5 * 1 + 1; the default 0.9 would give 1.9
}

TEST_CASE("registry rejects an unknown rule listing the built-in ones", "[engine]") {
  auto rule = Create("adamw");
  REQUIRE_FALSE(rule.ok());
  CHECK(rule.status().code() == StatusCode::kInvalidArgument);
  const std::string& message = rule.status().message();
  CHECK(Contains(message, "'adamw'"));
  for (const char* name : {"sgd", "momentum", "nesterov", "adagrad", "adam", "ftrl", "average"}) {
    CHECK(Contains(message, name));
  }
}

TEST_CASE("registry rejects keys the rule does not take, naming them", "[engine]") {
  auto misspelt = Create("adam", {{"beta_1", "0.9"}});
  REQUIRE_FALSE(misspelt.ok());
  CHECK(misspelt.status().code() == StatusCode::kInvalidArgument);
  CHECK(Contains(misspelt.status().message(), "update.beta_1"));
  CHECK(Contains(misspelt.status().message(), "beta1, beta2, epsilon"));

  auto sgd = Create("sgd", {{"momentum", "0.9"}});
  REQUIRE_FALSE(sgd.ok());
  CHECK(Contains(sgd.status().message(), "update.momentum"));
}

TEST_CASE("registry rejects bad values, naming the key", "[engine]") {
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"momentum", "momentum", "fast"},
      {"momentum", "momentum", "1"},
      {"nesterov", "momentum", "-0.1"},
      {"adam", "beta1", "1.5"},
      {"adam", "beta2", "nan"},
      {"adam", "epsilon", "0"},
      {"adagrad", "epsilon", "inf"},
      {"adagrad", "initial_accumulator", "-1"},
      {"adagrad", "initial_accumulator", ""},
      {"ftrl", "beta", "-1"},
      {"ftrl", "beta", "0"},
      {"ftrl", "l1", "-0.5"},
      {"ftrl", "l2", "nan"},
  };
  for (const auto& [rule, key, value] : cases) {
    INFO(rule << " " << key << "=" << value);
    auto result = Create(rule, {{key, value}});
    REQUIRE_FALSE(result.ok());
    CHECK(result.status().code() == StatusCode::kInvalidArgument);
    CHECK(Contains(result.status().message(), "update." + key));
    CHECK(Contains(result.status().message(), "'" + value + "'"));
  }
}

TEST_CASE("registry accepts boundary values", "[engine]") {
  CHECK(Create("momentum", {{"momentum", "0"}}).ok());
  CHECK(Create("adam", {{"beta1", "0"}, {"beta2", "0.99"}, {"epsilon", "1e-7"}}).ok());
  CHECK(Create("adagrad", {{"initial_accumulator", "0"}}).ok());
  CHECK(Create("ftrl", {{"beta", "1e-6"}, {"l1", "0"}, {"l2", "0"}}).ok());
}

TEST_CASE("registry gives ftrl its own l1 and l2", "[engine]") {
  auto rule = Create("ftrl", {{"beta", "1"}, {"l1", "3"}, {"l2", "0"}});
  REQUIRE(rule.ok());
  const api::TensorSpec spec{"w", {1}, api::TensorSpec::Role::kWeight};
  api::UpdateContext ctx;
  ctx.step = 1;
  ctx.learning_rate = 0.1;
  ctx.spec = &spec;
  float w = 0.0f;
  float z = 0.0f;
  float n = 0.0f;
  float* slots[] = {&z, &n};
  const float g = 2.0f;
  (*rule)->Update(ctx, &g, &w, slots, 1);
  CHECK(z == 2.0f);
  CHECK(w == 0.0f);  // |z| = 2 <= l1 = 3; without l1 it would be -2 / 30

  auto misspelt = Create("ftrl", {{"lambda1", "1"}});
  REQUIRE_FALSE(misspelt.ok());
  CHECK(Contains(misspelt.status().message(), "update.lambda1"));
  CHECK(Contains(misspelt.status().message(), "beta, l1, l2"));
}

}  // namespace
}  // namespace mrtrain::updaters

#include "engine/models/registry.h"

#include <catch2/catch.hpp>

namespace mrtrain::models {
namespace {

api::Hyperparameters Params(std::map<std::string, std::string> values) {
  return api::Hyperparameters(std::move(values));
}

std::vector<std::string> TensorNames(api::Mapper& mapper, api::DataShape shape) {
  std::vector<std::string> names;
  for (const api::TensorSpec& spec : mapper.DescribeModel(shape)) names.push_back(spec.name);
  return names;
}

TEST_CASE("registry makes each built-in model by its type name", "[engine][models]") {
  const api::DataShape shape{5, 3, false};
  auto linear = CreateBuiltinMapper("linear", {});
  REQUIRE(linear.ok());
  CHECK(TensorNames(**linear, shape) == std::vector<std::string>{"w", "b"});
  auto logistic = CreateBuiltinMapper("logistic", {});
  REQUIRE(logistic.ok());
  CHECK(TensorNames(**logistic, shape) == std::vector<std::string>{"w", "b"});

  auto softmax = CreateBuiltinMapper("softmax", Params({{"classes", "4"}}));
  REQUIRE(softmax.ok());
  CHECK((*softmax)->DescribeModel(shape)[1].shape == std::vector<int64_t>{4});
  auto softmax_from_data = CreateBuiltinMapper("softmax", {});
  REQUIRE(softmax_from_data.ok());
  CHECK((*softmax_from_data)->DescribeModel(shape)[1].shape == std::vector<int64_t>{3});

  auto mlp = CreateBuiltinMapper("mlp", Params({{"hidden", "8,6"}}));
  REQUIRE(mlp.ok());
  const auto specs = (*mlp)->DescribeModel(shape);
  REQUIRE(specs.size() == 6);
  CHECK(specs[0].shape == std::vector<int64_t>{5, 8});
  CHECK(specs[2].shape == std::vector<int64_t>{8, 6});
  CHECK(specs[4].name == "W3");
  CHECK(specs[4].shape == std::vector<int64_t>{6, 3});
  auto mlp_classes = CreateBuiltinMapper("mlp", Params({{"hidden", "8"}, {"classes", "7"}}));
  REQUIRE(mlp_classes.ok());
  CHECK((*mlp_classes)->DescribeModel(shape)[3].shape == std::vector<int64_t>{7});

  auto fm = CreateBuiltinMapper("fm", Params({{"factors", "4"}}));
  REQUIRE(fm.ok());
  const auto fm_specs = (*fm)->DescribeModel(shape);
  REQUIRE(fm_specs.size() == 3);
  CHECK(fm_specs[0].name == "w");
  CHECK(fm_specs[1].name == "b");
  CHECK(fm_specs[2].name == "v");
  CHECK(fm_specs[2].shape == std::vector<int64_t>{5, 4});
  auto fm_default = CreateBuiltinMapper("fm", {});
  REQUIRE(fm_default.ok());
  CHECK((*fm_default)->DescribeModel(shape)[2].shape == std::vector<int64_t>{5, 8});

  for (const char* type : {"linear", "logistic", "softmax", "mlp", "fm"}) {
    CHECK(IsBuiltinMapper(type));
  }
  CHECK_FALSE(IsBuiltinMapper("svm"));
  CHECK_FALSE(IsBuiltinMapper(""));
}

TEST_CASE("registry names the built-in types for an unknown one", "[engine][models]") {
  auto result = CreateBuiltinMapper("svm", {});
  REQUIRE_FALSE(result.ok());
  CHECK(result.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(result.status().message(),
             Catch::Contains("'svm'") && Catch::Contains("linear, logistic, softmax, mlp, fm"));
}

TEST_CASE("registry rejects settings a model type does not take, naming them", "[engine][models]") {
  auto linear = CreateBuiltinMapper("linear", Params({{"classes", "3"}}));
  REQUIRE_FALSE(linear.ok());
  CHECK(linear.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(linear.status().message(),
             Catch::Contains("model.classes") && Catch::Contains("accepts none"));
  auto softmax = CreateBuiltinMapper("softmax", Params({{"hidden", "3"}}));
  REQUIRE_FALSE(softmax.ok());
  CHECK_THAT(softmax.status().message(),
             Catch::Contains("model.hidden") && Catch::Contains("accepts classes"));
  auto mlp = CreateBuiltinMapper("mlp", Params({{"hidden", "3"}, {"dropout", "0.5"}}));
  REQUIRE_FALSE(mlp.ok());
  CHECK_THAT(mlp.status().message(), Catch::Contains("model.dropout"));
}

TEST_CASE("registry reports bad setting values under model.<key>", "[engine][models]") {
  auto check = [](const std::string& type, std::map<std::string, std::string> values,
                  const std::string& expected) {
    auto result = CreateBuiltinMapper(type, Params(std::move(values)));
    REQUIRE_FALSE(result.ok());
    CHECK(result.status().code() == StatusCode::kInvalidArgument);
    CHECK_THAT(result.status().message(), Catch::Contains(expected));
  };
  check("softmax", {{"classes", "three"}}, "model.classes: 'classes' must be an integer");
  check("softmax", {{"classes", "1"}}, "model.classes must be at least 2");
  check("mlp", {{"hidden", "128,x"}}, "model.hidden: 'hidden' must be an integer, got 'x'");
  check("mlp", {{"hidden", "128,"}}, "model.hidden");
  check("mlp", {{"hidden", "0"}}, "model.hidden widths must be at least 1");
  check("mlp", {{"hidden", ""}}, "model.hidden must list at least one");
  check("mlp", {}, "model.hidden must list at least one");
  check("mlp", {{"hidden", "16"}, {"classes", "x"}}, "model.classes");
  check("fm", {{"factors", "0"}}, "model.factors must be at least 1, got 0");
  check("fm", {{"factors", "-3"}}, "model.factors must be at least 1, got -3");
  check("fm", {{"factors", "4.5"}}, "model.factors: 'factors' must be an integer, got '4.5'");
  check("fm", {{"classes", "2"}}, "model.classes is not a setting of model type 'fm'");
}

}  // namespace
}  // namespace mrtrain::models

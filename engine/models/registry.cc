#include "engine/models/registry.h"

#include <cstdint>
#include <stdexcept>
#include <utility>
#include <vector>

#include "engine/models/fm_model.h"
#include "engine/models/linear_model.h"
#include "engine/models/logistic_model.h"
#include "engine/models/mlp_model.h"
#include "engine/models/softmax_model.h"

namespace mrtrain::models {
namespace {

struct BuiltinType {
  const char* name;
  std::vector<std::string> keys;  // the settings it accepts
};

const std::vector<BuiltinType>& BuiltinTypes() {
  static const auto* types = new std::vector<BuiltinType>{
      {"linear", {}},           {"logistic", {}},
      {"softmax", {"classes"}}, {"mlp", {"hidden", "classes"}},
      {"fm", {"factors"}},
  };
  return *types;
}

const BuiltinType* FindType(const std::string& type) {
  for (const BuiltinType& builtin : BuiltinTypes()) {
    if (type == builtin.name) return &builtin;
  }
  return nullptr;
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

Status CheckKeys(const BuiltinType& type, const api::Hyperparameters& params) {
  for (const auto& [key, value] : params.values()) {
    bool known = false;
    for (const std::string& allowed : type.keys) known = known || key == allowed;
    if (known) continue;
    return InvalidArgumentError("model." + key + " is not a setting of model type '" + type.name +
                                "' (it accepts " + (type.keys.empty() ? "none" : Join(type.keys)) +
                                ")");
  }
  return Status::Ok();
}

// Runs parse(), turning the std::invalid_argument a Hyperparameters getter throws for an
// unparsable value into a status naming model.<key>.
template <typename T, typename Parse>
Result<T> ParseKey(const std::string& key, Parse parse) {
  try {
    return parse();
  } catch (const std::invalid_argument& e) {
    return InvalidArgumentError("model." + key + ": " + e.what());
  }
}

// model.classes: 0 (take it from the data) when absent, else at least 2.
Result<int64_t> ParseClasses(const api::Hyperparameters& params) {
  MRTRAIN_ASSIGN_OR_RETURN(
      int64_t classes, ParseKey<int64_t>("classes", [&] { return params.GetInt("classes", 0); }));
  if (params.Has("classes") && classes < 2) {
    return InvalidArgumentError("model.classes must be at least 2, got " +
                                params.GetString("classes", ""));
  }
  return classes;
}

Result<std::vector<int64_t>> ParseHidden(const api::Hyperparameters& params) {
  MRTRAIN_ASSIGN_OR_RETURN(
      std::vector<int64_t> hidden,
      ParseKey<std::vector<int64_t>>("hidden", [&] { return params.GetIntList("hidden"); }));
  if (hidden.empty()) {
    return InvalidArgumentError(
        "model.hidden must list at least one hidden layer width for model type 'mlp', "
        "e.g. hidden: [128]");
  }
  for (int64_t width : hidden) {
    if (width < 1) {
      return InvalidArgumentError("model.hidden widths must be at least 1, got " +
                                  std::to_string(width));
    }
  }
  return hidden;
}

// model.factors: the length k of each feature's factor vector, at least 1; 8 when absent.
Result<int64_t> ParseFactors(const api::Hyperparameters& params) {
  MRTRAIN_ASSIGN_OR_RETURN(int64_t factors, ParseKey<int64_t>("factors", [&] {
                             return params.GetInt("factors", kDefaultFmFactors);
                           }));
  if (factors < 1) {
    return InvalidArgumentError("model.factors must be at least 1, got " +
                                params.GetString("factors", ""));
  }
  return factors;
}

Result<std::unique_ptr<api::Mapper>> Create(const std::string& type,
                                            const api::Hyperparameters& params) {
  std::unique_ptr<api::Mapper> mapper;
  if (type == "linear") {
    mapper = std::make_unique<LinearModel>();
  } else if (type == "logistic") {
    mapper = std::make_unique<LogisticModel>();
  } else if (type == "softmax") {
    MRTRAIN_ASSIGN_OR_RETURN(int64_t classes, ParseClasses(params));
    mapper = std::make_unique<SoftmaxModel>(classes);
  } else if (type == "fm") {
    MRTRAIN_ASSIGN_OR_RETURN(int64_t factors, ParseFactors(params));
    mapper = std::make_unique<FmModel>(factors);
  } else {  // "mlp", as FindType has checked
    MRTRAIN_ASSIGN_OR_RETURN(std::vector<int64_t> hidden, ParseHidden(params));
    MRTRAIN_ASSIGN_OR_RETURN(int64_t classes, ParseClasses(params));
    mapper = std::make_unique<MlpModel>(std::move(hidden), classes);
  }
  return mapper;
}

}  // namespace

Result<std::unique_ptr<api::Mapper>> CreateBuiltinMapper(const std::string& type,
                                                         const api::Hyperparameters& params) {
  const BuiltinType* builtin = FindType(type);
  if (builtin == nullptr) {
    std::vector<std::string> names;
    for (const BuiltinType& t : BuiltinTypes()) names.emplace_back(t.name);
    return InvalidArgumentError("model.type '" + type + "' is not a built-in model (" +
                                Join(names) + ")");
  }
  MRTRAIN_RETURN_IF_ERROR(CheckKeys(*builtin, params));
  return Create(type, params);
}

bool IsBuiltinMapper(const std::string& type) { return FindType(type) != nullptr; }

bool ReportsAccuracy(const std::string& type, const api::DataShape& shape, int64_t correct) {
  if (shape.num_classes == 0 || type == "linear") return false;
  return IsBuiltinMapper(type) || correct > 0;
}

}  // namespace mrtrain::models

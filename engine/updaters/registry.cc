#include "engine/updaters/registry.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

#include "engine/updaters/adagrad.h"
#include "engine/updaters/adam.h"
#include "engine/updaters/average.h"
#include "engine/updaters/ftrl.h"
#include "engine/updaters/momentum.h"
#include "engine/updaters/sgd.h"

namespace mrtrain::updaters {
namespace {

using ReducerResult = Result<std::unique_ptr<api::Reducer>>;

struct BuiltinRule {
  const char* name;
  std::vector<std::string> keys;  // the hyperparameters the rule takes
  ReducerResult (*create)(const api::Hyperparameters& params);
};

// Reads update.<key> as a finite number satisfying `valid` (described by `requirement`).
Result<double> ReadNumber(const api::Hyperparameters& params, const std::string& key,
                          double fallback, bool (*valid)(double), const char* requirement) {
  const std::string text = params.GetString(key, "");
  double value = fallback;
  try {
    value = params.GetDouble(key, fallback);
  } catch (const std::invalid_argument&) {
    return InvalidArgumentError("update." + key + " must be a number, got '" + text + "'");
  }
  if (!std::isfinite(value) || !valid(value)) {
    return InvalidArgumentError("update." + key + " must be " + requirement + ", got '" + text +
                                "'");
  }
  return value;
}

// A decay rate: 1 would never forget old gradients, and more would amplify them.
Result<double> ReadDecayRate(const api::Hyperparameters& params, const std::string& key,
                             double fallback) {
  return ReadNumber(
      params, key, fallback, [](double x) { return x >= 0 && x < 1; }, "in [0, 1)");
}

Result<double> ReadPositive(const api::Hyperparameters& params, const std::string& key,
                            double fallback) {
  return ReadNumber(
      params, key, fallback, [](double x) { return x > 0; }, "a number > 0");
}

Result<double> ReadNonNegative(const api::Hyperparameters& params, const std::string& key,
                               double fallback) {
  return ReadNumber(
      params, key, fallback, [](double x) { return x >= 0; }, "a number >= 0");
}

ReducerResult CreateSgd(const api::Hyperparameters& /*params*/) {
  return std::unique_ptr<api::Reducer>(std::make_unique<SgdReducer>());
}

ReducerResult CreateAverage(const api::Hyperparameters& /*params*/) {
  return std::unique_ptr<api::Reducer>(std::make_unique<AverageReducer>());
}

Result<MomentumOptions> ReadMomentumOptions(const api::Hyperparameters& params) {
  MomentumOptions options;
  MRTRAIN_ASSIGN_OR_RETURN(options.momentum, ReadDecayRate(params, "momentum", options.momentum));
  return options;
}

ReducerResult CreateMomentum(const api::Hyperparameters& params) {
  MRTRAIN_ASSIGN_OR_RETURN(MomentumOptions options, ReadMomentumOptions(params));
  return std::unique_ptr<api::Reducer>(std::make_unique<MomentumReducer>(options));
}

ReducerResult CreateNesterov(const api::Hyperparameters& params) {
  MRTRAIN_ASSIGN_OR_RETURN(MomentumOptions options, ReadMomentumOptions(params));
  return std::unique_ptr<api::Reducer>(std::make_unique<NesterovReducer>(options));
}

ReducerResult CreateAdagrad(const api::Hyperparameters& params) {
  AdagradOptions options;
  MRTRAIN_ASSIGN_OR_RETURN(options.epsilon, ReadPositive(params, "epsilon", options.epsilon));
  MRTRAIN_ASSIGN_OR_RETURN(
      options.initial_accumulator,
      ReadNonNegative(params, "initial_accumulator", options.initial_accumulator));
  return std::unique_ptr<api::Reducer>(std::make_unique<AdagradReducer>(options));
}

ReducerResult CreateAdam(const api::Hyperparameters& params) {
  AdamOptions options;
  MRTRAIN_ASSIGN_OR_RETURN(options.beta1, ReadDecayRate(params, "beta1", options.beta1));
  MRTRAIN_ASSIGN_OR_RETURN(options.beta2, ReadDecayRate(params, "beta2", options.beta2));
  MRTRAIN_ASSIGN_OR_RETURN(options.epsilon, ReadPositive(params, "epsilon", options.epsilon));
  return std::unique_ptr<api::Reducer>(std::make_unique<AdamReducer>(options));
}

ReducerResult CreateFtrl(const api::Hyperparameters& params) {
  FtrlOptions options;
  MRTRAIN_ASSIGN_OR_RETURN(options.beta, ReadPositive(params, "beta", options.beta));
  MRTRAIN_ASSIGN_OR_RETURN(options.l1, ReadNonNegative(params, "l1", options.l1));
  MRTRAIN_ASSIGN_OR_RETURN(options.l2, ReadNonNegative(params, "l2", options.l2));
  return std::unique_ptr<api::Reducer>(std::make_unique<FtrlReducer>(options));
}

const std::vector<BuiltinRule>& BuiltinRules() {
  static const auto* const rules = new std::vector<BuiltinRule>{
      {"sgd", {}, &CreateSgd},
      {"momentum", {"momentum"}, &CreateMomentum},
      {"nesterov", {"momentum"}, &CreateNesterov},
      {"adagrad", {"epsilon", "initial_accumulator"}, &CreateAdagrad},
      {"adam", {"beta1", "beta2", "epsilon"}, &CreateAdam},
      {"ftrl", {"beta", "l1", "l2"}, &CreateFtrl},
      {"average", {}, &CreateAverage},
  };
  return *rules;
}

const BuiltinRule* FindRule(const std::string& name) {
  for (const BuiltinRule& rule : BuiltinRules()) {
    if (name == rule.name) return &rule;
  }
  return nullptr;
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

Status UnknownKeyError(const BuiltinRule& rule, const std::string& key) {
  const std::string allowed =
      rule.keys.empty() ? "it takes none" : "it takes " + JoinNames(rule.keys);
  return InvalidArgumentError("update." + key + " is not a hyperparameter of update rule '" +
                              rule.name + "' (" + allowed + ")");
}

// Rejects keys the rule does not take, so a misspelt "beta_1" fails instead of being ignored.
Status CheckKeys(const BuiltinRule& rule, const api::Hyperparameters& params) {
  for (const auto& entry : params.values()) {
    if (std::find(rule.keys.begin(), rule.keys.end(), entry.first) == rule.keys.end()) {
      return UnknownKeyError(rule, entry.first);
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<api::Reducer>> CreateBuiltinReducer(const std::string& rule,
                                                           const api::Hyperparameters& params) {
  const BuiltinRule* builtin = FindRule(rule);
  if (builtin == nullptr) {
    std::vector<std::string> names;
    for (const BuiltinRule& r : BuiltinRules()) names.emplace_back(r.name);
    return InvalidArgumentError("unknown update rule '" + rule +
                                "' (built-in rules: " + JoinNames(names) + ")");
  }
  MRTRAIN_RETURN_IF_ERROR(CheckKeys(*builtin, params));
  return builtin->create(params);
}

bool IsBuiltinReducer(const std::string& rule) { return FindRule(rule) != nullptr; }

}  // namespace mrtrain::updaters

#pragma once

#include <memory>
#include <string>

#include "engine/api/hyperparameters.h"
#include "engine/api/reducer.h"
#include "engine/base/status.h"

namespace mrtrain::updaters {

// Creates the built-in update rule named `rule`:
//
//   rule       slots  hyperparameters (default)
//   sgd        0      -
//   momentum   1      momentum (0.9)
//   nesterov   1      momentum (0.9)
//   adagrad    1      epsilon (1e-10), initial_accumulator (0.1)
//   adam       2      beta1 (0.9), beta2 (0.999), epsilon (1e-8)
//   ftrl       2      beta (1), l1 (0), l2 (0)
//   average    0      -
//
// `params` holds the rule's own keys only: the caller strips the keys the engine handles itself
// (the rule's name, learning rate, schedule, and l1, l2 except for ftrl, whose closed form
// applies them itself). Errors are kInvalidArgument: an unknown rule (the message lists the
// built-in ones); a key the rule does not take, or a value that is not a finite number or is
// out of range (momentum, beta1, beta2 in [0, 1); epsilon, beta > 0; initial_accumulator, l1,
// l2 >= 0), with the message naming update.<key>.
Result<std::unique_ptr<api::Reducer>> CreateBuiltinReducer(const std::string& rule,
                                                           const api::Hyperparameters& params);

// Whether `rule` names a built-in rule (otherwise the job must bring a plugin for it).
bool IsBuiltinReducer(const std::string& rule);

}  // namespace mrtrain::updaters

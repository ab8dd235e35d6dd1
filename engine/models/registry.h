#pragma once

#include <memory>
#include <string>

#include "engine/api/hyperparameters.h"
#include "engine/api/mapper.h"
#include "engine/base/status.h"

// The built-in models by their job-spec name (`model.type`), and the settings each accepts:
//
//   linear     least-squares regression   (no settings)
//   logistic   binary classification      (no settings)
//   softmax    multiclass classification  classes: K (>= 2; default: from the data)
//   mlp        ReLU network, softmax out  hidden: widths, e.g. [128, 64] (required, each >= 1)
//                                         classes: as for softmax
namespace mrtrain::models {

// Makes the built-in mapper of model type `type` configured by `params` (the `model:` keys
// other than `type`). Fails with kInvalidArgument, naming the offending `model.<key>`, for an
// unknown type (listing the built-in ones), a key the type does not accept, or a value that
// does not parse or is out of range.
Result<std::unique_ptr<api::Mapper>> CreateBuiltinMapper(const std::string& type,
                                                         const api::Hyperparameters& params);

// Whether `type` names a built-in model.
bool IsBuiltinMapper(const std::string& type);

}  // namespace mrtrain::models

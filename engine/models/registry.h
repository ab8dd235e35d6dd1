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
//   fm         factorization machine,     factors: k (>= 1; default kDefaultFmFactors)
//              binary classification
namespace mrtrain::models {

// Makes the built-in mapper of model type `type` configured by `params` (the `model:` keys
// other than `type`). Fails with kInvalidArgument, naming the offending `model.<key>`, for an
// unknown type (listing the built-in ones), a key the type does not accept, or a value that
// does not parse or is out of range.
Result<std::unique_ptr<api::Mapper>> CreateBuiltinMapper(const std::string& type,
                                                         const api::Hyperparameters& params);

// Whether `type` names a built-in model.
bool IsBuiltinMapper(const std::string& type);

// Whether accuracy means something for a model of job type `type` (a built-in's name, or
// "plugin:NAME") trained on data of `shape`, which has classes or real labels. Built-ins: logistic,
// softmax, mlp and fm on data with classes; linear never (it is a regression even on whole-number
// labels). A plugin does not say what it is, so it counts as a classifier when the data has
// classes and `correct` (its correct predictions so far) is above 0: a regression reports none.
// Where this is false, reports show the loss (and predict the RMSE) and leave accuracy out.
bool ReportsAccuracy(const std::string& type, const api::DataShape& shape, int64_t correct);

}  // namespace mrtrain::models

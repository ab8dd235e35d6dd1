#pragma once

// Checks of a job spec that bound what it makes the engine allocate or accept, for job_spec.cc
// only: the size of the model and the labels the model needs.

#include <cstdint>
#include <string>

#include "jobs/spec/job_spec.h"
#include "jobs/spec/yaml_reader.h"

namespace mrtrain::jobs {

// The most classes a softmax or mlp model may have, given by model.classes or inferred.
inline constexpr int64_t kMaxClasses = 65536;

// The longest factor vector an fm may have (model.factors); the model's size is checked too.
inline constexpr int64_t kMaxFmFactors = 4096;

// Tells every data set what the model needs of its labels (DatasetSpec::label_kind), so that
// the readers check each record. REQUIRES: model_type is a valid built-in type or empty.
void SetLabelRules(const std::string& model_type, JobSpec* spec);

// Reports, at `key` of the model section, a built-in model whose parameters are certain to pass
// kMaxModelParams, counting one feature unless data.train.features says more and two classes
// unless model.classes says more: what the data adds is checked when the model is built.
void CheckModelSize(SpecMap* model, const std::string& model_type, const JobSpec& spec);

}  // namespace mrtrain::jobs

#pragma once

// Checks of a job spec that bound what it makes the engine allocate or parse, for job_spec.cc
// only: strings that are not UTF-8, the size of the model, and the labels the model needs.

#include <cstdint>
#include <string>

#include <yaml-cpp/yaml.h>

#include "jobs/spec/job_spec.h"
#include "jobs/spec/yaml_reader.h"

namespace mrtrain::jobs {

// The most classes a softmax or mlp model may have, given by model.classes or inferred.
inline constexpr int64_t kMaxClasses = 65536;

// Reports every key and scalar under `node` that is not valid UTF-8 (JSON status pages and
// logs need it), naming its key path and line. `path` is node's own key path ("" at the top).
void CheckUtf8(const YAML::Node& node, const std::string& path, SpecErrors* errors);

// Tells every data set what the model needs of its labels (DatasetSpec::label_kind), so that
// the readers check each record. REQUIRES: model_type is a valid built-in type or empty.
void SetLabelRules(const std::string& model_type, JobSpec* spec);

// Reports, at `key` of the model section, a built-in model whose parameters are certain to pass
// kMaxModelParams, counting one feature unless data.train.features says more and two classes
// unless model.classes says more: what the data adds is checked when the model is built.
void CheckModelSize(SpecMap* model, const std::string& model_type, const JobSpec& spec);

}  // namespace mrtrain::jobs

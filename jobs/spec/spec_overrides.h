#pragma once

// Command-line overrides of a job spec ("--set training.epochs=3"), for job_spec.cc only.

#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "jobs/spec/yaml_reader.h"

namespace mrtrain::jobs {

// Applies each "key.path=value" to the tree in order, as if the file had said it: the value is
// parsed as YAML ("0.1", "[128,64]", "{rule: adam}"), maps along the path are created as
// needed, and a later override of the same path wins. Registers each path with `errors` so
// that errors about the values name "--set key.path" instead of a file line. A malformed
// override, a value that is not YAML, or a path through a value that is not a map is recorded
// in `errors` naming the override. REQUIRES: *root is a map or null.
void ApplyOverrides(const std::vector<std::string>& overrides, YAML::Node* root,
                    SpecErrors* errors);

}  // namespace mrtrain::jobs

#pragma once

#include <string>

#include "engine/api/hyperparameters.h"
#include "jobs/spec/job_spec.h"

// Where a key of a parsed job spec was written, so that errors found after parsing (a plugin
// refusing its params, a data file that does not open) are located like the parser's own
// (jobs/spec/SCHEMA.md): "<where>: <key path>: <what>".
namespace mrtrain::runtime {

// "job.yaml:12" (1-based line of `key_path`, e.g. "model.params.delta"), "--set key" when the
// value came from an override at or above `key_path`, or the file alone when the key is not in
// the text (a default). Thread-safe; parses spec.text again, so call it on errors only.
std::string LocateKey(const jobs::JobSpec& spec, const std::string& key_path);

// The key of `params` that `message` (what a plugin threw when given them) names as a whole word,
// as `section.params.key`, so the error points at the offending line; else `section.params`
// when there are params, or `fallback` when there are none (a missing setting).
std::string ParamsKeyIn(const std::string& message, const api::Hyperparameters& params,
                        const std::string& section, const std::string& fallback);

}  // namespace mrtrain::runtime

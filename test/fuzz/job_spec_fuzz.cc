// libFuzzer target for the job spec parser (jobs/spec): yaml-cpp, the typed getters, the
// section readers, --set overrides and the fingerprint.
//
// Input: YAML text. It is parsed whole, and when its last line holds an '=', once more with
// that line taken off and applied as an override ("key.path=value", as after --set).

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/base/check.h"
#include "engine/base/status.h"
#include "jobs/spec/job_spec.h"

namespace {

using mrtrain::Result;
using mrtrain::StatusCode;
using mrtrain::jobs::JobSpec;

bool IsLowerHex(const std::string& s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Parses and checks what every caller of ParseJobSpec relies on: an invalid spec is one
// kInvalidArgument (no exception, no other code), a valid one has passed validation and a
// deterministic fingerprint.
void ParseAndCheck(const std::string& text, const std::vector<std::string>& overrides) {
  Result<JobSpec> spec = mrtrain::jobs::ParseJobSpec(text, "fuzz.yaml", overrides);
  if (!spec.ok()) {
    MRTRAIN_CHECK(spec.status().code() == StatusCode::kInvalidArgument);
    MRTRAIN_CHECK(!spec.status().message().empty());
    return;
  }
  MRTRAIN_CHECK(!spec->train.path.empty() && spec->train.num_partitions >= 1);
  MRTRAIN_CHECK(!spec->output_dir.empty() && !spec->model_type.empty());
  MRTRAIN_CHECK(spec->epochs >= 1 && spec->block_size >= 1 && spec->reducers >= 1);
  MRTRAIN_CHECK(spec->learning_rate > 0);
  const std::string fingerprint = spec->Fingerprint();
  MRTRAIN_CHECK(fingerprint.size() == 64 && IsLowerHex(fingerprint));
  Result<JobSpec> again = mrtrain::jobs::ParseJobSpec(text, "fuzz.yaml", overrides);
  MRTRAIN_CHECK(again.ok() && again->Fingerprint() == fingerprint);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  ParseAndCheck(text, {});
  // The last line (before a final newline) is an override when it holds an '='.
  const std::string body = !text.empty() && text.back() == '\n' ? text.substr(0, size - 1) : text;
  const size_t newline = body.rfind('\n');
  const std::string last = body.substr(newline == std::string::npos ? 0 : newline + 1);
  if (last.find('=') != std::string::npos) {
    ParseAndCheck(body.substr(0, body.size() - last.size()), {last});
  }
  return 0;
}

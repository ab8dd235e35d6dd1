#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "jobs/spec/job_spec.h"
#include "runtime/job/job_setup.h"
#include "tools/mrtrain/commands.h"

namespace mrtrain::tools {
namespace {

struct ValidateFlags {
  std::string spec_path;
  std::vector<std::string> overrides;
};

int Validate(const ValidateFlags& flags) {
  auto spec = jobs::LoadJobSpec(flags.spec_path, flags.overrides);
  if (!spec.ok()) {
    std::fprintf(stderr, "%s\n", spec.status().message().c_str());
    return 2;
  }
  // Each line of the message is located (file:line, --set key or the file) already.
  Status status = runtime::ValidateJob(*spec);
  if (!status.ok()) {
    std::fprintf(stderr, "%s\n", status.message().c_str());
    return 2;
  }
  std::printf("%s: ok (job %s: model %s, rule %s, %lld epochs x %lld rounds, %lld partitions)\n",
              flags.spec_path.c_str(), spec->name.c_str(), spec->model_type.c_str(),
              spec->update_rule.c_str(), static_cast<long long>(spec->epochs),
              static_cast<long long>(spec->rounds_per_epoch),
              static_cast<long long>(spec->train.num_partitions));
  return 0;
}

}  // namespace

void AddValidateCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<ValidateFlags>();
  CLI::App* cmd = app.add_subcommand("validate", "Check a job spec without running it");
  cmd->add_option("job", flags->spec_path, "Job spec (YAML)")->required();
  cmd->add_option("--set", flags->overrides, "Override a spec key (repeatable)");
  cmd->callback([flags, exit_code] { *exit_code = Validate(*flags); });
}

}  // namespace mrtrain::tools

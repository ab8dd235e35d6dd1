#include "tools/launch/launch_env.h"

#include <cctype>
#include <charconv>
#include <optional>

namespace mrtrain::tools {
namespace {

// The variable's value as a number in [min, max], nullopt when it is not set.
Result<std::optional<int>> ReadInt(const EnvLookup& env, const char* name, int min, int max) {
  const char* value = env(name);
  if (value == nullptr) return std::optional<int>();
  const std::string text = value;
  int n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || n < min || n > max) {
    return InvalidArgumentError("$" + std::string(name) + " is \"" + text +
                                "\"; expected a whole number from " + std::to_string(min) + " to " +
                                std::to_string(max));
  }
  return std::optional<int>(n);
}

Result<LaunchRole> Role(const EnvLookup& env, const char* launcher, const char* rank_name,
                        const char* size_name) {
  constexpr int kMaxProcesses = 1 << 20;
  MRTRAIN_ASSIGN_OR_RETURN(std::optional<int> rank, ReadInt(env, rank_name, 0, kMaxProcesses));
  MRTRAIN_ASSIGN_OR_RETURN(std::optional<int> size, ReadInt(env, size_name, 1, kMaxProcesses));
  if (!size) {
    return InvalidArgumentError(std::string(launcher) + " launch: $" + rank_name + " is set but $" +
                                size_name + " is not");
  }
  if (*size < 2) {
    return InvalidArgumentError(std::string(launcher) + " launch: $" + size_name +
                                " is 1; a launch needs 2 or more processes (rank 0 is the "
                                "master, the others are workers)");
  }
  if (*rank >= *size) {
    return InvalidArgumentError(std::string(launcher) + " launch: $" + rank_name + " is " +
                                std::to_string(*rank) + ", not below $" + size_name + " (" +
                                std::to_string(*size) + ")");
  }
  LaunchRole role;
  role.launcher = launcher;
  role.rank = *rank;
  role.size = *size;
  return role;
}

}  // namespace

Result<std::string> FirstSlurmHost(const std::string& nodelist) {
  // Grammar: host[,host...], a host being a prefix with an optional bracketed range list whose
  // first entry starts with the first host's number (zero padding kept as written).
  const size_t comma = nodelist.find(',');
  const size_t bracket = nodelist.find('[');
  if (bracket == std::string::npos || (comma != std::string::npos && comma < bracket)) {
    std::string host = nodelist.substr(0, comma);
    if (host.empty()) return InvalidArgumentError("empty Slurm node list \"" + nodelist + "\"");
    return host;
  }
  size_t i = bracket + 1;
  const size_t digits_begin = i;
  while (i < nodelist.size() && std::isdigit(static_cast<unsigned char>(nodelist[i]))) ++i;
  if (bracket == 0 || i == digits_begin || i >= nodelist.size() ||
      (nodelist[i] != '-' && nodelist[i] != ',' && nodelist[i] != ']') ||
      nodelist.find(']', i) == std::string::npos) {
    return InvalidArgumentError("malformed Slurm node list \"" + nodelist +
                                "\"; expected e.g. node[01-04,07]");
  }
  return nodelist.substr(0, bracket) + nodelist.substr(digits_begin, i - digits_begin);
}

Result<LaunchRole> DetectLaunchRole(const EnvLookup& env) {
  if (env("SLURM_PROCID") != nullptr) {
    MRTRAIN_ASSIGN_OR_RETURN(LaunchRole role, Role(env, "slurm", "SLURM_PROCID", "SLURM_NTASKS"));
    // Task 0 runs on the first node of its step (Slurm's default block distribution).
    const char* nodes = env("SLURM_STEP_NODELIST");
    if (nodes == nullptr) nodes = env("SLURM_JOB_NODELIST");
    if (nodes == nullptr) {
      return InvalidArgumentError(
          "slurm launch: neither $SLURM_STEP_NODELIST nor $SLURM_JOB_NODELIST is set");
    }
    MRTRAIN_ASSIGN_OR_RETURN(role.master_host, FirstSlurmHost(nodes));
    return role;
  }
  if (env("OMPI_COMM_WORLD_RANK") != nullptr) {
    return Role(env, "openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE");
  }
  if (env("JOB_COMPLETION_INDEX") != nullptr) {
    MRTRAIN_ASSIGN_OR_RETURN(LaunchRole role,
                             Role(env, "kubernetes", "JOB_COMPLETION_INDEX", "MRTRAIN_WORLD_SIZE"));
    // An indexed Job's pod is named <job>-<index>; with a headless service as its subdomain,
    // pod 0 is reachable as <job>-0.<service>.
    const char* service = env("MRTRAIN_K8S_SERVICE");
    const char* hostname = env("HOSTNAME");
    const std::string suffix = "-" + std::to_string(role.rank);
    if (service != nullptr && hostname != nullptr) {
      const std::string host = hostname;
      if (host.size() <= suffix.size() ||
          host.compare(host.size() - suffix.size(), suffix.size(), suffix) != 0) {
        return InvalidArgumentError("kubernetes launch: $HOSTNAME \"" + host +
                                    "\" does not end with -$JOB_COMPLETION_INDEX (" + suffix +
                                    "); is the Job's completionMode Indexed?");
      }
      role.master_host = host.substr(0, host.size() - suffix.size()) + "-0." + std::string(service);
    }
    return role;
  }
  return InvalidArgumentError(
      "no launcher found: none of $SLURM_PROCID (Slurm), $OMPI_COMM_WORLD_RANK (Open MPI) and "
      "$JOB_COMPLETION_INDEX (a Kubernetes indexed Job) is set");
}

}  // namespace mrtrain::tools

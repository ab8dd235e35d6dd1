#include "runtime/job/shipped_job.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/base/log.h"
#include "engine/base/sha256.h"
#include "runtime/checkpoint/atomic_file.h"
#include "runtime/job/job_setup.h"
#include "runtime/protocol/protocol_constants.h"

namespace mrtrain::runtime {
namespace {

Result<std::string> ReadFile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return NotFoundError("plugins: " + path + ": no such library");
  }
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return IOError("plugins: " + path + ": " + ec.message());
  if (size > kMaxPluginBytes) {
    return InvalidArgumentError("plugins: " + path + " has " + std::to_string(size) +
                                " bytes; a shipped library may have at most " +
                                std::to_string(kMaxPluginBytes));
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (!in || in.bad()) return IOError("plugins: cannot read " + path);
  return bytes.str();
}

}  // namespace

Result<std::vector<ShippedPlugin>> ReadPluginsToShip(const jobs::JobSpec& spec) {
  std::vector<ShippedPlugin> out;
  for (const std::string& path : spec.plugins) {
    MRTRAIN_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
    out.push_back(ShippedPlugin{Sha256Hex(bytes), std::move(bytes)});
  }
  return out;
}

Status UseShippedPlugins(const std::vector<ShippedPlugin>& shipped, const std::string& cache_dir,
                         jobs::JobSpec* spec) {
  if (shipped.size() != spec->plugins.size()) {
    return InvalidArgumentError("plugins: " + std::to_string(shipped.size()) +
                                " libraries shipped for " + std::to_string(spec->plugins.size()) +
                                " in the spec");
  }
  std::error_code ec;
  std::filesystem::create_directories(cache_dir, ec);
  if (ec) return IOError("cannot create the plugin cache " + cache_dir + ": " + ec.message());
  for (size_t i = 0; i < shipped.size(); ++i) {
    const ShippedPlugin& p = shipped[i];
    const std::string& name = spec->plugins[i];
    if (Sha256Hex(p.bytes) != p.sha256) {
      return CorruptionError("plugins: the bytes shipped for " + name +
                             " do not hash to their SHA-256 " + p.sha256);
    }
    const std::string cached = cache_dir + "/" + p.sha256 + ".so";
    auto existing = ReadFile(cached);
    if (!existing.ok() || Sha256Hex(*existing) != p.sha256) {
      if (existing.ok()) {
        Logger("plugin")->warn("cached plugin {} does not hash to its name; replacing it",
                               cached);
      }
      MRTRAIN_RETURN_IF_ERROR(WriteFileAtomically(cached, p.bytes)
                                  .WithContext("cannot fill the plugin cache"));
    }
    spec->plugin_names.push_back(name);
    spec->plugins[i] = cached;
  }
  return Status::Ok();
}

msg::JobSpecText JobTextOf(const jobs::JobSpec& spec, const std::string& working_dir,
                           bool resume) {
  msg::JobSpecText job;
  job.yaml = spec.text;
  job.source = spec.source_path;
  job.overrides = spec.overrides;
  job.working_dir = working_dir;
  job.resume = resume ? 1 : 0;
  return job;
}

Result<msg::JobSpecText> PackJob(const jobs::JobSpec& spec, const std::string& working_dir,
                                 bool resume) {
  msg::JobSpecText job = JobTextOf(spec, working_dir, resume);
  jobs::JobSpec resolved = spec;
  ResolveRelativePaths(working_dir, &resolved);
  MRTRAIN_ASSIGN_OR_RETURN(std::vector<ShippedPlugin> plugins, ReadPluginsToShip(resolved));
  for (ShippedPlugin& p : plugins) {
    job.plugin_sha256.push_back(std::move(p.sha256));
    job.plugin_bytes.push_back(std::move(p.bytes));
  }
  return job;
}

Result<jobs::JobSpec> UnpackJob(const msg::JobSpecText& job, const std::string& plugin_cache_dir) {
  MRTRAIN_ASSIGN_OR_RETURN(jobs::JobSpec spec,
                           jobs::ParseJobSpec(job.yaml, job.source, job.overrides));
  ResolveRelativePaths(job.working_dir, &spec);
  if (job.plugin_bytes.empty()) return spec;  // local mode: the libraries are where they are
  std::vector<ShippedPlugin> shipped;
  for (size_t i = 0; i < job.plugin_bytes.size(); ++i) {
    shipped.push_back(ShippedPlugin{job.plugin_sha256[i], job.plugin_bytes[i]});
  }
  MRTRAIN_RETURN_IF_ERROR(UseShippedPlugins(shipped, plugin_cache_dir, &spec));
  return spec;
}

std::string DefaultPluginCacheDir() {
  if (const char* dir = std::getenv("MRTRAIN_PLUGIN_CACHE"); dir && *dir) return dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) {
    return std::string(xdg) + "/mrtrain/plugins";
  }
  if (const char* home = std::getenv("HOME"); home && *home) {
    return std::string(home) + "/.cache/mrtrain/plugins";
  }
  return "/tmp/mrtrain-plugins-" + std::to_string(getuid());
}

}  // namespace mrtrain::runtime

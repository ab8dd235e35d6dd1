#pragma once

#include <string>
#include <vector>

#include "engine/base/status.h"
#include "jobs/spec/job_spec.h"
#include "runtime/protocol/messages.h"

// A job as it travels from the submitter to the master and the workers (msg::JobSpecText):
// the spec's text and overrides, the submitter's working directory, and its plugin libraries.
//
// Plugin libraries travel with the job: `submit` reads them and sends their bytes with their
// SHA-256; the master and every worker keep them in a cache named by hash and load the copy
// there. So nodes need not share the submitter's files, a library rebuilt between jobs is never
// confused with the old one, and a cached file whose bytes no longer hash to its name is
// replaced, never loaded.
namespace mrtrain::runtime {

struct ShippedPlugin {
  std::string sha256;  // 64 hex digits
  std::string bytes;
};

// Reads the spec's plugin libraries (in spec order). kNotFound / kIOError name the library and
// the `plugins` key; kInvalidArgument for one over kMaxPluginBytes.
Result<std::vector<ShippedPlugin>> ReadPluginsToShip(const jobs::JobSpec& spec);

// Checks each shipped library against its SHA-256 (kCorruption naming it when they differ),
// stores it as `cache_dir`/<sha256>.so unless a file with exactly those bytes is there (written
// atomically: temporary file, fsync, rename), and points spec->plugins at the cached copies.
// kInvalidArgument when the count differs from the spec's `plugins`.
Status UseShippedPlugins(const std::vector<ShippedPlugin>& shipped, const std::string& cache_dir,
                         jobs::JobSpec* spec);

// The job without its libraries' bytes: receivers load them from the spec's paths, which is
// right where every role shares one machine's files (local mode, benchmarks).
msg::JobSpecText JobTextOf(const jobs::JobSpec& spec, const std::string& working_dir,
                           bool resume);

// The job as the submitter sends it: the spec's text and overrides, `working_dir` for relative
// paths, and its plugin libraries' bytes. Errors of ReadPluginsToShip.
Result<msg::JobSpecText> PackJob(const jobs::JobSpec& spec, const std::string& working_dir,
                                 bool resume);

// The spec every receiver works with: parsed from the text with the overrides, relative paths
// resolved against the submitter's directory, shipped plugins checked and loaded from
// `plugin_cache_dir`. Errors of ParseJobSpec and UseShippedPlugins.
Result<jobs::JobSpec> UnpackJob(const msg::JobSpecText& job, const std::string& plugin_cache_dir);

// $MRTRAIN_PLUGIN_CACHE, else $XDG_CACHE_HOME/mrtrain/plugins, else ~/.cache/mrtrain/plugins,
// else /tmp/mrtrain-plugins-<uid>.
std::string DefaultPluginCacheDir();

}  // namespace mrtrain::runtime

#pragma once

// What the multi-process tests share: the mrtrain binary run to its end, a master and workers
// that stay up across a test's jobs (every process reaped by a ProcessGroup, ports picked by the
// OS on 127.0.0.1), and a job on synthetic data.
#include <sys/types.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test/testing/temp_dir.h"
#include "tools/launch/process_group.h"

namespace mrtrain::testing {

inline constexpr char kBinary[] = "tools/mrtrain/mrtrain";

// Whether this build runs under AddressSanitizer or ThreadSanitizer: their quarantine and
// shadow memory make a process's size say nothing about the program's own memory, so tests of
// memory use skip themselves there.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
#else
inline constexpr bool kSanitized = false;
#endif
inline constexpr char kTestPlugins[] = "test/engine/plugin/libtest_plugins.so";
inline constexpr char kSecret[] = "MRTRAIN_SECRET=integration-test-secret-0123456789";

struct Output {
  int exit_code = -1;
  std::string text;  // stdout and stderr
};

// Runs the binary to its end (bounded by `timeout_sec`) with the test's secret.
Output Mrtrain(const std::string& args, int timeout_sec = 120);

class Cluster {
 public:
  // Starts a master on 127.0.0.1 with `master_flags` added.
  explicit Cluster(TempDir& dir, int min_workers = 1,
                   const std::vector<std::string>& master_flags = {});

  // Starts `n` more workers named w<i>, each with one task slot, and waits until the master
  // lists them all. `extra` flags go to each; `via`, when set, is the address they reach the
  // master at (a proxy in front of it). Returns their pids.
  std::vector<pid_t> AddWorkers(int n, const std::vector<std::string>& extra = {},
                                const std::string& via = "");

  nlohmann::json Status();
  Output Submit(const std::string& spec, const std::string& extra = "");
  // Starts `mrtrain submit` in the background, its output in `log`.
  pid_t SubmitAsync(const std::string& spec, const std::string& log,
                    const std::vector<std::string>& extra = {});

  const std::string& address() const { return address_; }
  pid_t master() const { return master_; }
  tools::ProcessGroup& group() { return group_; }
  int workers_started() const { return workers_; }

 private:
  TempDir& dir_;
  tools::ProcessGroup group_;
  pid_t master_ = 0;
  std::string address_;
  int workers_ = 0;
};

// A binary classification job on synthetic data (3000 rows, 8 features, libsvm; 5 train
// partitions, 2 test ones), written as <name>.yaml with its output in <name>/.
// `training` is the spec's training mapping.
std::string WriteJob(TempDir& dir, const std::string& name, const std::string& model,
                     const std::string& shuffle,
                     const std::string& training = "{epochs: 2, rounds_per_epoch: 6, seed: 7}");

// The bytes of <name>/model.mrt.
std::string ModelBytes(TempDir& dir, const std::string& name);

}  // namespace mrtrain::testing

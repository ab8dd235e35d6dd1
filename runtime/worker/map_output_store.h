#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/api/mapper.h"
#include "engine/base/status.h"
#include "runtime/protocol/gather_payload.h"

namespace mrtrain::runtime {

// What one map task produced for one step: its statistics and, per reducer shard, the encoded
// PushRun it sent there. Kept in memory as sent: a push's floats stay in the run they were sent
// from (GatherPayload), not copied.
struct KeptOutput {
  api::MapStats stats;
  std::vector<GatherPayload> pushes;  // [shard]
};

// The map output a worker keeps until its epoch's checkpoint commits, so that when a reducer
// shard is lost and restored from that checkpoint, the steps since are replayed by re-sending
// these pushes instead of computing them again. Up to `memory_budget_bytes` stay in memory; the
// rest is spilled to one file per task under `spill_dir`, checksummed (CRC32C) so a damaged
// file is noticed and the task computed again rather than replayed wrong. Thread-safe.
class MapOutputStore {
 public:
  MapOutputStore(size_t memory_budget_bytes, std::string spill_dir);
  ~MapOutputStore();  // removes its spill files and folder
  MapOutputStore(const MapOutputStore&) = delete;
  MapOutputStore& operator=(const MapOutputStore&) = delete;

  // Keeps the output of (step, partition), replacing an older copy. A spill that fails (disk
  // full) only means the task is computed again if it is ever replayed: logged, not an error.
  void Keep(int64_t step, int64_t partition, KeptOutput output);

  // The kept output of (step, partition); nullopt when none is kept. kCorruption when its spill
  // file is damaged (the entry is then forgotten).
  Result<std::optional<KeptOutput>> Find(int64_t step, int64_t partition);

  // Forgets (step, partition): its pushes were refused, so they must not be replayed.
  void Forget(int64_t step, int64_t partition);

  // Forgets everything up to and including `step`: a checkpoint at `step` is committed, and no
  // recovery goes back past it.
  void DropThrough(int64_t step);

  size_t memory_bytes() const;
  int64_t spilled_entries() const;

 private:
  struct Entry {
    std::optional<KeptOutput> in_memory;
    std::string spill_path;  // set when spilled
    size_t bytes = 0;
  };
  using Key = std::pair<int64_t, int64_t>;  // step, partition

  void EraseLocked(std::map<Key, Entry>::iterator it);

  const size_t memory_budget_bytes_;
  const std::string spill_dir_;

  mutable std::mutex mu_;
  std::map<Key, Entry> entries_;  // guarded by mu_
  size_t memory_bytes_ = 0;       // guarded by mu_
  bool spill_dir_made_ = false;   // guarded by mu_
  uint64_t next_spill_ = 0;       // guarded by mu_
  int64_t dropped_through_ = -1;  // the newest DropThrough; guarded by mu_
};

// A spill file: magic, statistics, the pushes with their lengths, CRC32C of all before it.
// WriteKeptOutputFile fails with kIOError naming the file (and removes what it wrote);
// ReadKeptOutputFile with kCorruption naming the file and what is wrong.
Status WriteKeptOutputFile(const std::string& path, const KeptOutput& output);
Result<KeptOutput> ReadKeptOutputFile(const std::string& path);

}  // namespace mrtrain::runtime

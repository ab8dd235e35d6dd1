#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/base/status.h"
#include "runtime/checkpoint/checkpoint.h"

namespace mrtrain::runtime {

// The checkpoints of one job in one directory: a file "ckpt-%06d.mrt" per saved epoch (the
// number is Checkpoint::epochs_done), of which the newest `keep` are kept. Temporary files of
// interrupted writes and unrelated files are ignored. Holds no open files; not thread-safe:
// one process (the master) saves into a directory, and readers elsewhere only ever see
// complete files because each is renamed into place.
class CheckpointDir {
 public:
  // REQUIRES: keep >= 1.
  CheckpointDir(std::string dir, int keep);

  // Writes `ckpt` atomically as FileName(ckpt.epochs_done), creating the directory if needed,
  // then deletes all but the newest `keep` checkpoints by epoch number (a failed deletion is
  // logged and does not fail the save). kIOError when the directory cannot be created or the
  // file cannot be written; no partial file is left under the final name.
  Status Save(const Checkpoint& ckpt);

  // The newest checkpoint that reads back. A truncated or corrupt one (kCorruption) is logged
  // as a warning naming the file and the error, and the one before it is tried. Fails with
  //   kNotFound when none is valid, listing every file tried and why;
  //   any other error of ReadCheckpointFile (kIOError, kFailedPrecondition for a newer format)
  //   as it is: falling back then would quietly resume from an older epoch.
  Result<Checkpoint> LoadLatest() const;

  // Paths of the checkpoints, oldest first by epoch number. Empty when the directory does
  // not exist or cannot be read.
  std::vector<std::string> List() const;

  // "ckpt-000003.mrt" for 3. REQUIRES: epochs_done >= 0.
  static std::string FileName(int64_t epochs_done);
  // The epoch of a name FileName made, or nullopt for any other name ("ckpt-3.mrt",
  // "ckpt-000003.mrt.tmp.42", "notes.txt").
  static std::optional<int64_t> ParseFileName(const std::string& name);

  const std::string& dir() const { return dir_; }

 private:
  // Deletes all but the newest keep_ checkpoints.
  void Prune() const;

  // Constant after construction.
  std::string dir_;
  int keep_;
};

}  // namespace mrtrain::runtime

#include "runtime/checkpoint/checkpoint_dir.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <system_error>
#include <utility>

#include "engine/base/check.h"
#include "engine/base/log.h"
#include "engine/tensor/model_layout.h"
#include "engine/tensor/model_state.h"
#include "runtime/checkpoint/shard_set_reader.h"

namespace mrtrain::runtime {
namespace {

namespace fs = std::filesystem;

constexpr char kPrefix[] = "ckpt-";
constexpr char kManifestSuffix[] = ".manifest";
constexpr char kTempInfix[] = ".tmp.";  // TempPathFor's

std::string JoinPath(const std::string& dir, const std::string& name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// "ckpt-000003": the checkpoint's shard directory, and its manifest's name without suffix.
std::string EpochName(int64_t epochs_done) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s%06" PRId64, kPrefix, epochs_done);
  return buf;
}

std::string ManifestName(int64_t epochs_done) { return EpochName(epochs_done) + kManifestSuffix; }

// "ckpt-000003/shard-00001-of-00003.mrts", relative to the checkpoint directory.
std::string ShardName(int64_t epochs_done, int shard, int num_shards) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "/shard-%05d-of-%05d.mrts", shard, num_shards);
  return EpochName(epochs_done) + buf;
}

// The epoch of a name EpochName made, or nullopt for any other name ("ckpt-3",
// "ckpt-0000003", "notes").
std::optional<int64_t> ParseEpochName(const std::string& name) {
  const size_t prefix = sizeof(kPrefix) - 1;
  constexpr size_t kMaxDigits = 18;  // stays within int64_t
  if (name.size() <= prefix || name.size() > prefix + kMaxDigits ||
      name.compare(0, prefix, kPrefix) != 0) {
    return std::nullopt;
  }
  int64_t epochs = 0;
  for (size_t i = prefix; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    epochs = epochs * 10 + (name[i] - '0');
  }
  // Only the canonical spelling counts, so one epoch never has two names.
  if (EpochName(epochs) != name) return std::nullopt;
  return epochs;
}

std::optional<int64_t> ParseManifestName(const std::string& name) {
  if (!EndsWith(name, kManifestSuffix)) return std::nullopt;
  return ParseEpochName(name.substr(0, name.size() - (sizeof(kManifestSuffix) - 1)));
}

// "<target>.tmp.<digits>" (TempPathFor) -> target.
std::optional<std::string> TempTarget(const std::string& name) {
  const size_t at = name.rfind(kTempInfix);
  if (at == std::string::npos || at == 0) return std::nullopt;
  const size_t digits = at + sizeof(kTempInfix) - 1;
  if (digits == name.size()) return std::nullopt;
  for (size_t i = digits; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
  }
  return name.substr(0, at);
}

// Deleting is tidying up: a leftover wastes disk but harms nothing, and the next commit tries
// again.
void RemoveLogged(const fs::path& path, const char* what) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) Logger("checkpoint")->warn("cannot delete {} {}: {}", what, path.string(), ec.message());
}

// Deletes the temporary files of interrupted writes in a committed shard directory.
void RemoveTempFiles(const fs::path& dir) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (TempTarget(it->path().filename().string())) {
      RemoveLogged(it->path(), "stale temporary file");
    }
  }
}

// ---- Assembling a checkpoint ----

uint64_t SaturatingMul(uint64_t a, uint64_t b) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  return a != 0 && b > kMax / a ? kMax : a * b;
}

uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
  return b > std::numeric_limits<uint64_t>::max() - a ? std::numeric_limits<uint64_t>::max()
                                                      : a + b;
}

// Checks that every shard file is there with the size the manifest records and returns their
// total size, before anything is read or allocated for them.
Result<uint64_t> CheckShardSizes(const CheckpointManifest& m, const std::vector<std::string>& paths,
                                 const std::string& manifest_path) {
  uint64_t total = 0;
  for (size_t i = 0; i < paths.size(); ++i) {
    std::error_code ec;
    const uint64_t size = fs::file_size(paths[i], ec);
    if (ec == std::errc::no_such_file_or_directory) {
      return CorruptionError(paths[i] + ": missing, but " + manifest_path + " lists it as shard " +
                             std::to_string(i));
    }
    if (ec) return IOError("cannot stat " + paths[i] + ": " + ec.message());
    if (size != m.shards[i].bytes) {
      return CorruptionError(paths[i] + ": has " + std::to_string(size) +
                             " bytes, but the manifest records " +
                             std::to_string(m.shards[i].bytes));
    }
    total = SaturatingAdd(total, size);
  }
  return total;
}

// The manifest's layout, once the shard files are known to be large enough for its
// parameters and slots: that bounds what the layout and the state allocate by bytes on disk.
Result<std::shared_ptr<const ModelLayout>> LayoutOf(const CheckpointManifest& m,
                                                    uint64_t shard_bytes,
                                                    const std::string& manifest_path) {
  uint64_t parameters = 0;
  for (const auto& spec : m.tensors) {
    if (spec.row_sparse) continue;  // only its stored rows are in the files
    uint64_t size = 1;
    for (int64_t d : spec.shape) size = SaturatingMul(size, static_cast<uint64_t>(d));
    parameters = SaturatingAdd(parameters, size);
  }
  const uint64_t floats = SaturatingMul(parameters, 1 + static_cast<uint64_t>(m.num_slots));
  if (SaturatingMul(floats, sizeof(float)) > shard_bytes) {
    return CorruptionError(manifest_path + ": the shard files have " + std::to_string(shard_bytes) +
                           " bytes, too few for " + std::to_string(parameters) +
                           " parameters and " + std::to_string(m.num_slots) + " slots");
  }
  Result<ModelLayout> layout = ModelLayout::Create(m.tensors, m.block_size);
  if (!layout.ok()) {
    return CorruptionError(manifest_path + ": invalid model layout: " + layout.status().message());
  }
  return std::make_shared<const ModelLayout>(std::move(layout).value());
}

Status CheckShardHeader(const ShardFile& s, const CheckpointManifest& m, size_t index,
                        const std::string& path, const std::string& manifest_path) {
  const auto mismatch = [&](const std::string& what, const std::string& got,
                            const std::string& want) {
    return CorruptionError(path + ": " + what + " is " + got + ", but " + manifest_path +
                           " records " + want);
  };
  const auto shard_of = [](int64_t shard, int64_t num_shards) {
    return std::to_string(shard) + " of " + std::to_string(num_shards);
  };
  if (s.epochs_done != m.epochs_done) {
    return mismatch("epochs_done", std::to_string(s.epochs_done), std::to_string(m.epochs_done));
  }
  if (s.step != m.step) return mismatch("step", std::to_string(s.step), std::to_string(m.step));
  if (s.fingerprint != m.fingerprint) {
    return mismatch("the fingerprint", "'" + s.fingerprint + "'", "'" + m.fingerprint + "'");
  }
  if (static_cast<size_t>(s.shard) != index ||
      static_cast<size_t>(s.num_shards) != m.shards.size()) {
    return mismatch("the shard", shard_of(s.shard, s.num_shards),
                    shard_of(static_cast<int64_t>(index), static_cast<int64_t>(m.shards.size())));
  }
  if (s.num_slots != m.num_slots) {
    return mismatch("num_slots", std::to_string(s.num_slots), std::to_string(m.num_slots));
  }
  return Status::Ok();
}

std::string BlockName(const ModelLayout& layout, ParamKey key) {
  return "block " + std::to_string(key.block()) + " of tensor '" +
         layout.specs()[key.tensor()].name + "'";
}

// Which shard file holds each block of a layout, so that a block held twice or by nobody is
// found. Not thread-safe.
class BlockOwners {
 public:
  explicit BlockOwners(const ModelLayout& layout) : layout_(layout) {
    int64_t blocks = 0;
    for (int t = 0; t < layout.num_tensors(); ++t) {
      first_.push_back(blocks);
      if (!layout.is_row_sparse(t)) blocks += layout.num_blocks(t);  // rows: held or not
    }
    owner_.assign(static_cast<size_t>(blocks), -1);
  }

  // The shard index holding `key` so far, or -1. REQUIRES: layout.IsValid(key).
  int64_t& owner(ParamKey key) { return owner_[first_[key.tensor()] + key.block()]; }

  // kCorruption naming the first block no shard file holds.
  Status CheckComplete(const std::string& manifest_path) const {
    const auto missing = std::find(owner_.begin(), owner_.end(), -1);
    if (missing == owner_.end()) return Status::Ok();
    const ParamKey key = layout_.keys()[static_cast<size_t>(missing - owner_.begin())];
    return CorruptionError(manifest_path + ": no shard file holds " + BlockName(layout_, key));
  }

 private:
  const ModelLayout& layout_;   // outlives this
  std::vector<int64_t> first_;  // first_[t]: the position of tensor t's block 0 in keys()
  std::vector<int64_t> owner_;  // by position in layout_.keys()
};

// Copies the blocks of shard file `index` (read from paths[index]) into `state`.
Status PlaceBlocks(const ShardFile& s, size_t index, const std::vector<std::string>& paths,
                   BlockOwners* owners, ModelState* state) {
  const ModelLayout& layout = *state->layout;
  const std::string& path = paths[index];
  size_t at = 0;
  for (ParamKey key : s.keys) {
    if (!layout.IsValid(key)) {
      return CorruptionError(path + ": holds block " + std::to_string(key.block()) + " of tensor " +
                             std::to_string(key.tensor()) + ", which the model does not have");
    }
    if (layout.is_row_sparse(static_cast<int>(key.tensor()))) {
      // A stored row: appended here, sorted and checked for repeats once every file is read.
      const size_t length = static_cast<size_t>(layout.Range(key).length);
      if (s.values.size() - at < length * (1 + state->slots.size())) {
        return CorruptionError(path + ": has " + std::to_string(s.values.size()) +
                               " values, too few for its blocks");
      }
      StoredRows& rows = state->rows[key.tensor()];
      rows.ids.push_back(static_cast<int64_t>(key.block()));
      rows.values.insert(rows.values.end(), s.values.data() + at, s.values.data() + at + length);
      at += length;
      for (auto& slot : rows.slots) {
        slot.insert(slot.end(), s.values.data() + at, s.values.data() + at + length);
        at += length;
      }
      continue;
    }
    int64_t& owner = owners->owner(key);
    if (owner >= 0) {
      return CorruptionError(path + ": holds " + BlockName(layout, key) + ", which " +
                             paths[static_cast<size_t>(owner)] + " holds too");
    }
    owner = static_cast<int64_t>(index);
    const BlockRange r = layout.Range(key);
    const size_t length = static_cast<size_t>(r.length);
    if (s.values.size() - at < length * (1 + state->slots.size())) {
      return CorruptionError(path + ": has " + std::to_string(s.values.size()) +
                             " values, too few for its blocks");
    }
    state->WriteBlock(key, s.values.data() + at);
    at += length;
    for (auto& slot : state->slots) {
      std::memcpy(slot[r.tensor].data() + r.offset, s.values.data() + at, length * sizeof(float));
      at += length;
    }
  }
  if (at == s.values.size()) return Status::Ok();
  return CorruptionError(path + ": has " + std::to_string(s.values.size()) + " values, " +
                         std::to_string(s.values.size() - at) + " more than its blocks hold");
}

// Sorts the stored rows that PlaceBlocks appended file by file by id; kCorruption naming a row
// that two shard files hold.
Status SortRows(const std::string& manifest_path, ModelState* state) {
  for (size_t t = 0; t < state->rows.size(); ++t) {
    StoredRows& rows = state->rows[t];
    const size_t n = rows.ids.size();
    std::vector<size_t> order(n);
    for (size_t i = 0; i < n; ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return rows.ids[a] < rows.ids[b]; });
    const size_t dim = n == 0 ? 0 : rows.values.size() / n;
    auto permute = [&](std::vector<float>* v) {
      std::vector<float> sorted(v->size());
      for (size_t i = 0; i < n; ++i) {
        std::copy_n(v->begin() + order[i] * dim, dim, sorted.begin() + i * dim);
      }
      *v = std::move(sorted);
    };
    std::vector<int64_t> ids(n);
    for (size_t i = 0; i < n; ++i) ids[i] = rows.ids[order[i]];
    for (size_t i = 1; i < n; ++i) {
      if (ids[i - 1] == ids[i]) {
        return CorruptionError(manifest_path + ": two shard files hold row " +
                               std::to_string(ids[i]) + " of tensor '" +
                               state->layout->specs()[t].name + "'");
      }
    }
    rows.ids = std::move(ids);
    permute(&rows.values);
    for (auto& slot : rows.slots) permute(&slot);
  }
  return Status::Ok();
}

Checkpoint CheckpointOf(const CheckpointManifest& m, std::shared_ptr<const ModelLayout> layout) {
  Checkpoint c;
  c.epochs_done = m.epochs_done;
  c.fingerprint = m.fingerprint;
  c.model_type = m.model_type;
  c.model_params = m.model_params;
  c.data_shape = m.data_shape;
  c.update_rule = m.update_rule;
  c.state = ModelState::Zeros(std::move(layout), m.num_slots);
  c.state.step = m.step;
  return c;
}

// ---- Restoring one shard ----

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// kFailedPrecondition unless manifest `m` is of a model with `layout`, cut into `num_shards`
// shards: a checkpoint of another job, whose blocks would not be the ones asked for.
Status CheckSameModel(const CheckpointManifest& m, const ModelLayout& layout, int num_shards,
                      const std::string& manifest_path) {
  const auto differs = [&](const std::string& what) {
    return FailedPreconditionError("cannot resume from " + manifest_path + ": " + what);
  };
  if (m.block_size != layout.block_size()) {
    return differs("its block size is " + std::to_string(m.block_size) + ", the job's " +
                   std::to_string(layout.block_size()));
  }
  if (m.tensors.size() != static_cast<size_t>(layout.num_tensors())) {
    return differs("its model has " + std::to_string(m.tensors.size()) + " tensors, the job's " +
                   std::to_string(layout.num_tensors()));
  }
  for (size_t t = 0; t < m.tensors.size(); ++t) {
    const api::TensorSpec& a = m.tensors[t];
    const api::TensorSpec& b = layout.specs()[t];
    if (a.name != b.name || a.shape != b.shape || a.role != b.role ||
        a.row_sparse != b.row_sparse) {
      return differs("its tensor " + std::to_string(t) + " is '" + a.name + "' " +
                     ShapeString(a.shape) + (a.row_sparse ? " row-sparse" : "") + ", the job's '" +
                     b.name + "' " + ShapeString(b.shape) + (b.row_sparse ? " row-sparse" : "") +
                     " (or their roles differ)");
    }
  }
  if (m.shards.size() != static_cast<size_t>(num_shards)) {
    return differs("it has " + std::to_string(m.shards.size()) + " shard files, the job " +
                   std::to_string(num_shards) + " reducer shards");
  }
  return Status::Ok();
}

// kCorruption naming `path` unless shard file `s` holds exactly the blocks of `layout` that
// `partitioner` gives shard `shard`, and only rows that it gives that shard, with the values
// of all of them. Its keys are ascending (ReadShardFile checked).
Status CheckShardKeys(const ShardFile& s, int shard, const ModelLayout& layout,
                      const shuffle::Partitioner& partitioner, const std::string& path) {
  const std::vector<ParamKey> owned = shuffle::KeysOfShard(partitioner, layout, shard);
  const std::string of_shard = "shard " + std::to_string(shard);
  size_t next = 0;  // the next of `owned` the file must hold
  uint64_t floats = 0;
  for (ParamKey key : s.keys) {
    if (!layout.IsValid(key)) {
      return CorruptionError(path + ": holds " + layout.DescribeKey(key) +
                             ", which the model does not have");
    }
    const bool row = layout.is_row_sparse(static_cast<int>(key.tensor()));
    if (!row && next < owned.size() && owned[next] == key) {
      ++next;
    } else if (const int owner = partitioner.ShardOf(key); owner != shard) {
      return CorruptionError(path + ": holds " + layout.DescribeKey(key) + ", which shard " +
                             std::to_string(owner) + " owns, not " + of_shard);
    } else if (!row) {
      // Owned but not the next one: both lists ascend, so that one is missing.
      return CorruptionError(path + ": lacks " + layout.DescribeKey(owned[next]) + ", which " +
                             of_shard + " owns");
    }
    floats = SaturatingAdd(floats, SaturatingMul(static_cast<uint64_t>(layout.Range(key).length),
                                                 1 + static_cast<uint64_t>(s.num_slots)));
  }
  if (next < owned.size()) {
    return CorruptionError(path + ": lacks " + layout.DescribeKey(owned[next]) + ", which " +
                           of_shard + " owns");
  }
  if (floats != s.values.size()) {
    return CorruptionError(path + ": has " + std::to_string(s.values.size()) +
                           " values, but its blocks and their slots hold " +
                           std::to_string(floats));
  }
  return Status::Ok();
}

}  // namespace

CheckpointDir::CheckpointDir(std::string dir, int keep) : dir_(std::move(dir)), keep_(keep) {
  MRTRAIN_CHECK(keep_ >= 1);
}

std::string CheckpointDir::ShardPath(int64_t epochs_done, int shard, int num_shards) const {
  MRTRAIN_DCHECK(epochs_done >= 0 && shard >= 0 && shard < num_shards);
  return JoinPath(dir_, ShardName(epochs_done, shard, num_shards));
}

std::string CheckpointDir::ManifestPath(int64_t epochs_done) const {
  MRTRAIN_DCHECK(epochs_done >= 0);
  return JoinPath(dir_, ManifestName(epochs_done));
}

Result<ShardFileInfo> CheckpointDir::WriteShard(const ShardFile& shard) const {
  const std::string name = ShardName(shard.epochs_done, shard.shard, shard.num_shards);
  MRTRAIN_ASSIGN_OR_RETURN(ShardFileInfo info, WriteShardFile(JoinPath(dir_, name), shard));
  info.name = name;
  return info;
}

Status CheckpointDir::Commit(const CheckpointManifest& manifest) {
  const int64_t epoch = manifest.epochs_done;
  const std::string path = ManifestPath(epoch);
  const int num_shards = static_cast<int>(manifest.shards.size());
  for (int i = 0; i < num_shards; ++i) {
    const std::string want = ShardName(epoch, i, num_shards);
    if (manifest.shards[i].name != want) {
      return InternalError("cannot write manifest " + path + ": shard " + std::to_string(i) +
                           " is named '" + manifest.shards[i].name + "', not '" + want + "'");
    }
  }
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return IOError("cannot create checkpoint directory " + dir_ + ": " + ec.message());
  MRTRAIN_RETURN_IF_ERROR(WriteManifestFile(path, manifest));
  Logger("checkpoint")->debug("committed {} (epoch {}, {} shard files)", path, epoch, num_shards);
  Prune(epoch);
  return Status::Ok();
}

void CheckpointDir::Prune(int64_t committed) const {
  std::vector<int64_t> epochs = ListEpochs();
  // Later manifests, left by a run that got further before it crashed, are not counted: they
  // would otherwise push out the one just committed.
  epochs.erase(std::upper_bound(epochs.begin(), epochs.end(), committed), epochs.end());
  for (size_t i = 0; i + static_cast<size_t>(keep_) < epochs.size(); ++i) {
    RemoveLogged(ManifestPath(epochs[i]), "old checkpoint manifest");
    RemoveLogged(JoinPath(dir_, EpochName(epochs[i])), "old shard directory");
  }
  RemoveLeftovers(committed);
}

void CheckpointDir::RemoveLeftovers(int64_t committed) const {
  const std::vector<int64_t> listed = ListEpochs();
  const std::set<int64_t> with_manifest(listed.begin(), listed.end());
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code type_ec;
    if (it->is_directory(type_ec)) {
      const std::optional<int64_t> epoch = ParseEpochName(name);
      if (!epoch || *epoch > committed) continue;
      if (with_manifest.count(*epoch) == 0) {
        RemoveLogged(it->path(), "shard directory without a manifest");
      } else {
        RemoveTempFiles(it->path());
      }
    } else if (const std::optional<std::string> target = TempTarget(name)) {
      const std::optional<int64_t> epoch = ParseManifestName(*target);
      if (epoch && *epoch <= committed) RemoveLogged(it->path(), "stale temporary file");
    }
  }
}

std::vector<int64_t> CheckpointDir::ListEpochs() const {
  std::vector<int64_t> epochs;
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    if (auto epoch = ParseManifestName(it->path().filename().string())) epochs.push_back(*epoch);
  }
  std::sort(epochs.begin(), epochs.end());
  return epochs;
}

Result<Checkpoint> CheckpointDir::Load(int64_t epochs_done) const {
  const std::string manifest_path = ManifestPath(epochs_done);
  MRTRAIN_ASSIGN_OR_RETURN(const CheckpointManifest m, ReadManifestFile(manifest_path));
  if (m.epochs_done != epochs_done) {
    return CorruptionError(manifest_path + ": records epoch " + std::to_string(m.epochs_done));
  }
  std::vector<std::string> paths;
  for (const auto& shard : m.shards) paths.push_back(JoinPath(dir_, shard.name));
  MRTRAIN_ASSIGN_OR_RETURN(const uint64_t shard_bytes, CheckShardSizes(m, paths, manifest_path));
  MRTRAIN_ASSIGN_OR_RETURN(auto layout, LayoutOf(m, shard_bytes, manifest_path));
  Checkpoint ckpt = CheckpointOf(m, layout);
  BlockOwners owners(*layout);
  for (size_t i = 0; i < paths.size(); ++i) {
    // One shard file at a time: memory is the state plus the largest shard file.
    MRTRAIN_ASSIGN_OR_RETURN(const ShardFile shard, ReadShardFile(paths[i], m.shards[i]));
    MRTRAIN_RETURN_IF_ERROR(CheckShardHeader(shard, m, i, paths[i], manifest_path));
    MRTRAIN_RETURN_IF_ERROR(PlaceBlocks(shard, i, paths, &owners, &ckpt.state));
  }
  MRTRAIN_RETURN_IF_ERROR(owners.CheckComplete(manifest_path));
  MRTRAIN_RETURN_IF_ERROR(SortRows(manifest_path, &ckpt.state));
  return ckpt;
}

Result<ShardFile> CheckpointDir::LoadShard(int64_t epochs_done, int shard,
                                           const ModelLayout& layout,
                                           const shuffle::Partitioner& partitioner) const {
  if (shard < 0 || shard >= partitioner.num_shards()) {
    return InvalidArgumentError("no reducer shard " + std::to_string(shard) + " of " +
                                std::to_string(partitioner.num_shards()));
  }
  const std::string manifest_path = ManifestPath(epochs_done);
  MRTRAIN_ASSIGN_OR_RETURN(const CheckpointManifest m, ReadManifestFile(manifest_path));
  if (m.epochs_done != epochs_done) {
    return CorruptionError(manifest_path + ": records epoch " + std::to_string(m.epochs_done));
  }
  MRTRAIN_RETURN_IF_ERROR(CheckSameModel(m, layout, partitioner.num_shards(), manifest_path));
  const size_t index = static_cast<size_t>(shard);
  const std::string path = JoinPath(dir_, m.shards[index].name);
  Result<ShardFile> file = ReadShardFile(path, m.shards[index]);
  if (file.status().code() == StatusCode::kNotFound) {
    return CorruptionError(path + ": missing, but " + manifest_path + " lists it as shard " +
                           std::to_string(shard));
  }
  MRTRAIN_RETURN_IF_ERROR(file.status());
  MRTRAIN_RETURN_IF_ERROR(CheckShardHeader(*file, m, index, path, manifest_path));
  MRTRAIN_RETURN_IF_ERROR(CheckShardKeys(*file, shard, layout, partitioner, path));
  return file;
}

Result<CheckpointManifest> CheckpointDir::LatestCommitted() const {
  const std::vector<int64_t> epochs = ListEpochs();
  std::string tried;
  for (auto it = epochs.rbegin(); it != epochs.rend(); ++it) {
    Result<std::unique_ptr<ShardSetReader>> judged = ShardSetReader::Open(dir_, ManifestPath(*it), *it);
    if (judged.ok()) return (*judged)->manifest();
    const Status& error = judged.status();
    // kNotFound: deleted since ListEpochs(), e.g. by a concurrent Prune(); nothing to report.
    if (error.code() != StatusCode::kCorruption && error.code() != StatusCode::kNotFound) {
      return error;
    }
    if (error.code() == StatusCode::kCorruption) {
      // The message starts with the damaged file's path.
      Logger("checkpoint")
          ->warn("skipping damaged checkpoint of epoch {}: {}; falling back to the previous one",
                 *it, error.message());
    }
    tried += (tried.empty() ? "" : "; ") + error.message();
  }
  if (epochs.empty()) return NotFoundError("no checkpoint in " + dir_);
  return NotFoundError("no valid checkpoint in " + dir_ + "; tried: " + tried);
}

}  // namespace mrtrain::runtime

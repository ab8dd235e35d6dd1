#include "shuffle/buffer/map_output_buffer.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <string>

#include "shuffle/spill/spill_run_file.h"
#include "shuffle/spill/spill_run_merger.h"

namespace mrtrain::shuffle {
namespace {

// The same run with its keys ordered by `less` (and their values moved along).
template <typename Less>
Run SortedBy(const Run& run, Less less) {
  std::vector<int64_t> order(run.num_keys());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int64_t a, int64_t b) { return less(run.keys[a], run.keys[b]); });
  Run sorted;
  sorted.keys.reserve(run.keys.size());
  sorted.offsets.reserve(run.offsets.size());
  sorted.values.reserve(run.values.size());
  for (int64_t i : order) sorted.Append(run.keys[i], run.ValuesOf(i), run.LengthOf(i));
  return sorted;
}

bool IsSorted(const Run& run) { return std::is_sorted(run.keys.begin(), run.keys.end()); }

std::string KeyName(ParamKey key) {
  return "tensor " + std::to_string(key.tensor()) + " block " + std::to_string(key.block());
}

}  // namespace

MapOutputBuffer::MapOutputBuffer(const ModelLayout* layout, const Partitioner* partitioner,
                                 int64_t budget_bytes, SpillOptions spill)
    : layout_(layout),
      partitioner_(partitioner),
      budget_bytes_(budget_bytes),
      spill_(std::move(spill)),
      runs_(partitioner->num_shards()) {
  // Reserve each shard's share of the model up front (capped by the budget): dense models
  // emit all of it, and growing a vector of that size by doubling would copy it twice more.
  // Pages reserved but never written are never touched, so sparse models pay only address
  // space.
  std::vector<int64_t> floats(runs_.size(), 0);
  for (ParamKey key : layout->keys())
    floats[partitioner->ShardOf(key)] += layout->Range(key).length;
  for (size_t s = 0; s < runs_.size(); ++s) {
    runs_[s].values.reserve(std::min<int64_t>(floats[s], budget_bytes / sizeof(float)));
  }
}

MapOutputBuffer::~MapOutputBuffer() { RemoveSpillFiles(); }

void MapOutputBuffer::ReserveKeys(size_t keys) { expected_keys_ = keys; }

void MapOutputBuffer::IndexHeldKeys() {
  ascending_ = false;
  // Held keys were emitted in ascending order: their order by key is the order first seen.
  slots_.clear();
  slots_.reserve(std::max<size_t>(expected_keys_, static_cast<size_t>(keys_seen_)));
  for (size_t s = 0; s < runs_.size(); ++s) {
    const Run& run = runs_[s];
    for (int64_t i = 0; i < run.num_keys(); ++i) {
      slots_.push_back(Slot{run.keys[i], static_cast<int>(s), run.offsets[i], 0});
    }
  }
  std::sort(slots_.begin(), slots_.end(),
            [](const Slot& a, const Slot& b) { return a.key < b.key; });
  slot_of_.Reserve(slots_.capacity());
  for (size_t i = 0; i < slots_.size(); ++i) {
    slots_[i].first_seen = static_cast<int64_t>(i);
    slot_of_.FindOrInsert(slots_[i].key.packed(), static_cast<int64_t>(i));
  }
}

Status MapOutputBuffer::Add(ParamKey key, const float* values) {
  if (!layout_->IsValid(key)) {
    return InvalidArgumentError("emitted key (" + KeyName(key) + ") is not part of the model");
  }
  const int64_t n = layout_->Range(key).length;
  // While keys come in ascending order (a mapper call's rows or blocks do) none can be held
  // already: no table is needed until one comes out of order.
  if (!ascending_ || (keys_seen_ > 0 && !(last_key_ < key))) {
    if (ascending_) IndexHeldKeys();
    const int64_t held = slot_of_.Find(key.packed());
    if (held != KeyIndex::kAbsent) {
      const Slot& slot = slots_[held];
      float* acc = runs_[slot.shard].values.data() + slot.offset;
      for (int64_t i = 0; i < n; ++i) acc[i] += values[i];
      return Status::Ok();
    }
  }
  const int64_t block_bytes = n * static_cast<int64_t>(sizeof(float));
  if (bytes_ + block_bytes > budget_bytes_) {
    if (spill_.dir.empty()) {
      return FailedPreconditionError(
          "map output would take " + std::to_string(bytes_ + block_bytes) +
          " bytes, over shuffle.buffer_bytes=" + std::to_string(budget_bytes_) + " (adding " +
          KeyName(key) + ")");
    }
    if (block_bytes > budget_bytes_) {
      return FailedPreconditionError(
          "a block of " + std::to_string(block_bytes) +
          " bytes does not fit shuffle.buffer_bytes=" + std::to_string(budget_bytes_) +
          " (adding " + KeyName(key) + ")");
    }
    MRTRAIN_RETURN_IF_ERROR(Spill());
  }
  const int shard = partitioner_->ShardOf(key);
  Run& run = runs_[shard];
  if (ascending_) {
    last_key_ = key;
    ++keys_seen_;
  } else if (spilled_first_seen_.empty() || spilled_first_seen_.count(key) == 0) {
    // A key spilled before is held as a record of its own (see the class comment).
    slot_of_.FindOrInsert(key.packed(), static_cast<int64_t>(slots_.size()));
    slots_.push_back(Slot{key, shard, static_cast<int64_t>(run.values.size()), keys_seen_++});
  }
  run.Append(key, values, n);
  bytes_ += block_bytes;
  return Status::Ok();
}

Status MapOutputBuffer::Spill() {
  struct Record {
    ParamKey key;
    int shard;
    int64_t index;
  };
  // The spilled keys' first_seen come from the slots; later keys may repeat spilled ones, so
  // they go through the table from now on.
  if (ascending_) IndexHeldKeys();
  std::vector<Record> records;
  for (size_t s = 0; s < runs_.size(); ++s) {
    for (int64_t i = 0; i < runs_[s].num_keys(); ++i) {
      records.push_back(Record{runs_[s].keys[i], static_cast<int>(s), i});
    }
  }
  // Stable: the records of one key (all in one shard's run) stay in emission order.
  std::stable_sort(records.begin(), records.end(),
                   [](const Record& a, const Record& b) { return a.key < b.key; });
  if (spilled_runs_ == 0) {
    std::error_code ec;
    std::filesystem::create_directories(spill_.dir, ec);
    if (ec) return IOError("cannot create spill folder " + spill_.dir + ": " + ec.message());
  }
  const std::string path =
      spill_.dir + "/" + spill_.name + "-" + std::to_string(spill_paths_.size()) + ".run";
  MRTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<SpillRunWriter> writer,
                           SpillRunWriter::Create(path, records.size()));
  for (const Record& r : records) {
    const Run& run = runs_[r.shard];
    MRTRAIN_RETURN_IF_ERROR(
        writer->Add(r.key, run.ValuesOf(r.index), static_cast<uint32_t>(run.LengthOf(r.index))));
  }
  MRTRAIN_RETURN_IF_ERROR(writer->Close());
  spill_paths_.push_back(path);
  ++spilled_runs_;
  spilled_bytes_ += writer->bytes_written();
  for (const Slot& slot : slots_) spilled_first_seen_.emplace(slot.key, slot.first_seen);
  slot_of_.Clear();
  slots_.clear();
  for (Run& run : runs_) {  // cleared, not freed: the next run fills the same memory
    run.keys.clear();
    run.offsets.assign(1, 0);
    run.values.clear();
  }
  bytes_ = 0;
  return Status::Ok();
}

Result<std::vector<Run>> MapOutputBuffer::MergeSpilled() {
  if (bytes_ > 0) MRTRAIN_RETURN_IF_ERROR(Spill());
  std::vector<Run> out(runs_.size());
  MRTRAIN_RETURN_IF_ERROR(MergeSpillRuns(spill_paths_, layout_->max_key_length(),
                                         [&](ParamKey key, const float* sum, int64_t n) {
                                           out[partitioner_->ShardOf(key)].Append(key, sum, n);
                                         }));
  if (!partitioner_->sorted()) {  // hash shuffle: back to the order keys were first emitted
    for (Run& run : out) {
      run = SortedBy(run, [&](ParamKey a, ParamKey b) {
        return spilled_first_seen_.at(a) < spilled_first_seen_.at(b);
      });
    }
  }
  return out;
}

void MapOutputBuffer::RemoveSpillFiles() {
  for (const std::string& path : spill_paths_) std::remove(path.c_str());
  spill_paths_.clear();
}

Result<std::vector<Run>> MapOutputBuffer::Finish() {
  Result<std::vector<Run>> out = std::vector<Run>(runs_.size());
  if (!spill_paths_.empty()) {
    out = MergeSpilled();
    RemoveSpillFiles();
  } else {
    for (size_t s = 0; s < runs_.size(); ++s) {
      // Dense models emit keys in ascending order already; sort only when they are not.
      if (partitioner_->sorted() && !IsSorted(runs_[s])) {
        (*out)[s] = SortedBy(runs_[s], [](ParamKey a, ParamKey b) { return a < b; });
      } else {
        (*out)[s] = std::move(runs_[s]);
      }
    }
  }
  for (Run& run : runs_) run = Run();
  slot_of_ = KeyIndex();
  slots_ = std::vector<Slot>();
  ascending_ = true;
  spilled_first_seen_.clear();
  bytes_ = 0;
  keys_seen_ = 0;
  return out;
}

}  // namespace mrtrain::shuffle

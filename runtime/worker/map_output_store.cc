#include "runtime/worker/map_output_store.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "engine/base/crc32c.h"
#include "engine/base/log.h"

namespace mrtrain::runtime {
namespace {

constexpr char kMagic[8] = {'M', 'R', 'K', 'E', 'P', 'T', '0', '1'};

// Reads fixed-size fields from a byte string, refusing to read past its end.
class Cursor {
 public:
  explicit Cursor(const std::string& bytes) : bytes_(bytes) {}
  template <typename T>
  bool Get(T* v) {
    if (bytes_.size() - at_ < sizeof *v) return false;
    std::memcpy(v, bytes_.data() + at_, sizeof *v);
    at_ += sizeof *v;
    return true;
  }
  bool GetBytes(uint64_t n, std::string* out) {
    if (bytes_.size() - at_ < n) return false;
    out->assign(bytes_.data() + at_, n);
    at_ += n;
    return true;
  }
  size_t left() const { return bytes_.size() - at_; }

 private:
  const std::string& bytes_;
  size_t at_ = 0;
};

size_t BytesOf(const KeptOutput& output) {
  size_t n = sizeof output.stats;
  for (const GatherPayload& p : output.pushes) n += p.size();
  return n;
}

}  // namespace

MapOutputStore::MapOutputStore(size_t memory_budget_bytes, std::string spill_dir)
    : memory_budget_bytes_(memory_budget_bytes), spill_dir_(std::move(spill_dir)) {}

MapOutputStore::~MapOutputStore() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!spill_dir_made_) return;
  std::error_code ec;
  std::filesystem::remove_all(spill_dir_, ec);
}

void MapOutputStore::EraseLocked(std::map<Key, Entry>::iterator it) {
  if (it->second.in_memory) memory_bytes_ -= it->second.bytes;
  if (!it->second.spill_path.empty()) std::remove(it->second.spill_path.c_str());
  entries_.erase(it);
}

Status WriteKeptOutputFile(const std::string& path, const KeptOutput& output) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return IOError("cannot create " + path);
  // Streamed field by field, the checksum extended as it goes: the pushes (model-sized) are
  // never copied into one buffer.
  uint32_t crc = 0;
  bool ok = true;
  auto put = [&](const void* data, size_t n) {
    if (n == 0) return;  // an empty tail may have no address: fwrite must not see null
    crc = Crc32cExtend(crc, data, n);
    ok = ok && std::fwrite(data, 1, n, f) == n;
  };
  put(kMagic, sizeof kMagic);
  put(&output.stats.loss_sum, sizeof output.stats.loss_sum);
  put(&output.stats.examples, sizeof output.stats.examples);
  put(&output.stats.correct, sizeof output.stats.correct);
  const uint64_t n = output.pushes.size();
  put(&n, sizeof n);
  for (const GatherPayload& push : output.pushes) {
    const uint64_t len = push.size();
    put(&len, sizeof len);
    put(push.head.data(), push.head.size());
    put(push.tail.data(), push.tail.size());
  }
  ok = ok && std::fwrite(&crc, 1, sizeof crc, f) == sizeof crc;
  ok = std::fclose(f) == 0 && ok;
  if (!ok) {
    std::remove(path.c_str());
    return IOError("cannot write " + path);
  }
  return Status::Ok();
}

void MapOutputStore::Keep(int64_t step, int64_t partition, KeptOutput output) {
  const Key key{step, partition};
  Entry entry;
  entry.bytes = BytesOf(output);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (memory_bytes_ + entry.bytes <= memory_budget_bytes_) {
      if (auto it = entries_.find(key); it != entries_.end()) EraseLocked(it);
      memory_bytes_ += entry.bytes;
      entry.in_memory = std::move(output);
      entries_[key] = std::move(entry);
      return;
    }
    if (!spill_dir_made_) {
      std::error_code ec;
      std::filesystem::create_directories(spill_dir_, ec);
      spill_dir_made_ = !ec;
    }
    // A fresh name for every spill: a Find reading an older copy never sees this one
    // half-written.
    entry.spill_path = spill_dir_ + "/step" + std::to_string(step) + "-partition" +
                       std::to_string(partition) + "-" + std::to_string(next_spill_++) + ".kept";
  }
  // Written outside the lock, so other tasks keep and find meanwhile.
  Status spilled = WriteKeptOutputFile(entry.spill_path, output);
  if (!spilled.ok()) {
    Logger("worker")->warn("cannot keep the map output of step {} partition {}: {}", step,
                           partition, spilled.ToString());
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (step <= dropped_through_) {  // its checkpoint committed while it was written
    std::remove(entry.spill_path.c_str());
    return;
  }
  if (auto it = entries_.find(key); it != entries_.end()) EraseLocked(it);
  entries_[key] = std::move(entry);
}

Result<std::optional<KeptOutput>> MapOutputStore::Find(int64_t step, int64_t partition) {
  std::string path;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(Key{step, partition});
    if (it == entries_.end()) return std::optional<KeptOutput>();
    if (it->second.in_memory) return std::optional<KeptOutput>(*it->second.in_memory);
    path = it->second.spill_path;
  }
  // Read outside the lock (spill files can be large); the entry may be replaced or dropped
  // meanwhile, which a failed read must not be blamed on.
  Result<KeptOutput> read = ReadKeptOutputFile(path);
  if (read.ok()) return std::optional<KeptOutput>(std::move(*read));
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(Key{step, partition});
  if (it == entries_.end()) return std::optional<KeptOutput>();  // dropped meanwhile
  if (it->second.spill_path != path) {                           // replaced meanwhile
    if (it->second.in_memory) return std::optional<KeptOutput>(*it->second.in_memory);
    return std::optional<KeptOutput>();  // the caller computes it again: always correct
  }
  EraseLocked(it);  // this copy is damaged: never replay it
  return read.status();
}

void MapOutputStore::Forget(int64_t step, int64_t partition) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = entries_.find(Key{step, partition}); it != entries_.end()) EraseLocked(it);
}

void MapOutputStore::DropThrough(int64_t step) {
  std::lock_guard<std::mutex> lock(mu_);
  dropped_through_ = std::max(dropped_through_, step);
  while (!entries_.empty() && entries_.begin()->first.first <= step) EraseLocked(entries_.begin());
}

size_t MapOutputStore::memory_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return memory_bytes_;
}

int64_t MapOutputStore::spilled_entries() const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t n = 0;
  for (const auto& [key, entry] : entries_) n += entry.spill_path.empty() ? 0 : 1;
  return n;
}

Result<KeptOutput> ReadKeptOutputFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("cannot open " + path);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto corrupt = [&](const std::string& what) {
    return CorruptionError("kept map output " + path + ": " + what);
  };
  if (bytes.size() < sizeof kMagic + sizeof(uint32_t)) return corrupt("truncated");
  uint32_t stored_crc;
  std::memcpy(&stored_crc, bytes.data() + bytes.size() - sizeof stored_crc, sizeof stored_crc);
  if (Crc32c(bytes.data(), bytes.size() - sizeof stored_crc) != stored_crc) {
    return corrupt("checksum mismatch");
  }
  if (std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) return corrupt("bad magic");
  const std::string body = bytes.substr(sizeof kMagic, bytes.size() - sizeof kMagic - 4);
  Cursor c(body);
  KeptOutput out;
  uint64_t n = 0;
  if (!c.Get(&out.stats.loss_sum) || !c.Get(&out.stats.examples) || !c.Get(&out.stats.correct) ||
      !c.Get(&n)) {
    return corrupt("truncated header");
  }
  // Each push needs at least its length field: a count beyond that is a lie, not an allocation.
  if (n > c.left() / sizeof(uint64_t)) return corrupt("push count " + std::to_string(n));
  out.pushes.resize(n);
  for (GatherPayload& p : out.pushes) {
    uint64_t len = 0;
    if (!c.Get(&len) || !c.GetBytes(len, &p.head)) return corrupt("truncated push");
  }
  if (c.left() != 0) return corrupt("trailing bytes");
  return out;
}

}  // namespace mrtrain::runtime

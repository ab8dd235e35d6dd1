#include "runtime/checkpoint/shard_set_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <system_error>
#include <utility>

#include "runtime/checkpoint/atomic_file.h"

namespace mrtrain::runtime {
namespace {

namespace fs = std::filesystem;

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "keys and floats are read as their in-memory bytes, which the format defines as "
              "little-endian");

// Keys per read, and bytes of floats per read: what each shard file costs in memory.
constexpr uint64_t kKeysPerRead = 4096;
constexpr uint64_t kValueBufferBytes = 256 << 10;

std::string JoinPath(const std::string& dir, const std::string& name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

uint64_t SaturatingMul(uint64_t a, uint64_t b) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  return a != 0 && b > kMax / a ? kMax : a * b;
}

uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
  return b > std::numeric_limits<uint64_t>::max() - a ? std::numeric_limits<uint64_t>::max()
                                                      : a + b;
}

// Reads exactly `n` bytes at `offset`; a file that ends first has shrunk since it was judged.
Status PreadFully(int fd, const std::string& path, void* out, uint64_t n, uint64_t offset) {
  auto* p = static_cast<char*>(out);
  while (n > 0) {
    const ssize_t got = pread(fd, p, n, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return ErrnoError("cannot read", path, errno);
    if (got == 0)
      return IOError("cannot read " + path + " at byte " + std::to_string(offset) +
                     ": the file shrank");
    p += got;
    n -= static_cast<uint64_t>(got);
    offset += static_cast<uint64_t>(got);
  }
  return Status::Ok();
}

// CheckpointDir::Load's first check: every shard file is there with the size the manifest
// records. Returns their total size.
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

// The manifest's layout, once the shard files are known to be large enough for its dense
// parameters and slots (as Load checks it).
Result<std::shared_ptr<const ModelLayout>> LayoutOf(const CheckpointManifest& m,
                                                    uint64_t shard_bytes,
                                                    const std::string& manifest_path) {
  uint64_t parameters = 0;
  for (const auto& spec : m.tensors) {
    if (spec.row_sparse) continue;
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

}  // namespace

// One shard file: open for pread, where its arrays are, where each tensor's keys start, and a
// read-ahead buffer over its values.
struct ShardSetReader::Shard {
  // The keys of one tensor: [first_key, end_key) in the file's key order, the first one's
  // floats at byte first_offset.
  struct Extent {
    uint32_t tensor = 0;
    uint64_t first_key = 0;
    uint64_t end_key = 0;
    uint64_t first_offset = 0;
  };

  std::string path;
  int fd = -1;
  ShardFileIndex index;
  std::vector<Extent> extents;  // ascending by tensor
  std::vector<char> buffer;     // bytes [buffer_start, buffer_start + buffer_size) of the file
  uint64_t buffer_start = 0;
  uint64_t buffer_size = 0;

  ~Shard() {
    if (fd >= 0) close(fd);
  }

  const Extent* ExtentOf(int tensor) const {
    auto it = std::lower_bound(extents.begin(), extents.end(), static_cast<uint32_t>(tensor),
                               [](const Extent& e, uint32_t t) { return e.tensor < t; });
    return it != extents.end() && it->tensor == static_cast<uint32_t>(tensor) ? &*it : nullptr;
  }

  uint64_t values_end() const { return index.values_offset + index.num_values * sizeof(float); }

  // Passes `n` bytes at `offset` (within the values) to `out`: from the buffer when it holds
  // them, refilling it from `offset` on when not; a read larger than the buffer goes through it
  // in pieces. Reads walk forward through the file, so each refill serves many small reads.
  Status Read(uint64_t offset, uint64_t n, const std::function<void(const void*, size_t)>& out) {
    if (buffer.empty()) buffer.resize(kValueBufferBytes);
    if (n > buffer.size()) {
      buffer_size = 0;
      for (uint64_t done = 0; done < n;) {
        const uint64_t piece = std::min<uint64_t>(buffer.size(), n - done);
        MRTRAIN_RETURN_IF_ERROR(PreadFully(fd, path, buffer.data(), piece, offset + done));
        out(buffer.data(), piece);
        done += piece;
      }
      return Status::Ok();
    }
    if (offset < buffer_start || offset + n > buffer_start + buffer_size) {
      buffer_start = offset;
      buffer_size = std::min<uint64_t>(buffer.size(), values_end() - offset);
      Status read = PreadFully(fd, path, buffer.data(), buffer_size, offset);
      if (!read.ok()) {
        buffer_size = 0;
        return read;
      }
    }
    out(buffer.data() + (offset - buffer_start), n);
    return Status::Ok();
  }
};

// Walks keys [first, end) of one shard file, kKeysPerRead at a time.
class ShardSetReader::KeyCursor {
 public:
  KeyCursor(const Shard& shard, uint64_t first, uint64_t end)
      : shard_(shard), next_(first), end_(end) {}

  bool done() const { return at_ == chunk_.size() && next_ == end_; }

  // The next key. REQUIRES: !done().
  Status Next(ParamKey* key) {
    if (at_ == chunk_.size()) {
      const uint64_t n = std::min(kKeysPerRead, end_ - next_);
      chunk_.resize(n);
      MRTRAIN_RETURN_IF_ERROR(PreadFully(shard_.fd, shard_.path, chunk_.data(), n * 8,
                                         shard_.index.keys_offset + next_ * 8));
      next_ += n;
      at_ = 0;
    }
    *key = ParamKey::FromPacked(chunk_[at_++]);
    return Status::Ok();
  }

 private:
  const Shard& shard_;
  uint64_t next_;  // the next key to read from the file
  uint64_t end_;
  std::vector<uint64_t> chunk_;
  size_t at_ = 0;
};

ShardSetReader::~ShardSetReader() = default;

Result<std::unique_ptr<ShardSetReader>> ShardSetReader::Open(const std::string& dir,
                                                             const std::string& manifest_path,
                                                             int64_t epochs_done) {
  std::unique_ptr<ShardSetReader> r(new ShardSetReader());
  r->manifest_path_ = manifest_path;
  MRTRAIN_ASSIGN_OR_RETURN(r->manifest_, ReadManifestFile(manifest_path));
  const CheckpointManifest& m = r->manifest_;
  if (m.epochs_done != epochs_done) {
    return CorruptionError(manifest_path + ": records epoch " + std::to_string(m.epochs_done));
  }
  std::vector<std::string> paths;
  for (const auto& shard : m.shards) paths.push_back(JoinPath(dir, shard.name));
  MRTRAIN_ASSIGN_OR_RETURN(const uint64_t shard_bytes, CheckShardSizes(m, paths, manifest_path));
  MRTRAIN_ASSIGN_OR_RETURN(r->layout_, LayoutOf(m, shard_bytes, manifest_path));
  const ModelLayout& layout = *r->layout_;
  int64_t blocks = 0;
  for (int t = 0; t < layout.num_tensors(); ++t) {
    r->first_block_.push_back(blocks);
    if (!layout.is_row_sparse(t)) blocks += layout.num_blocks(t);  // rows: held or not
  }
  // The shard file holding each dense block so far, or -1: a block held twice or by nobody is
  // found as Load finds it.
  std::vector<int32_t> owners(static_cast<size_t>(blocks), -1);
  for (size_t i = 0; i < paths.size(); ++i) {
    auto shard = std::make_unique<Shard>();
    shard->path = paths[i];
    MRTRAIN_ASSIGN_OR_RETURN(shard->index, IndexShardFile(paths[i], m.shards[i]));
    MRTRAIN_RETURN_IF_ERROR(CheckShardHeader(shard->index.header, m, i, paths[i], manifest_path));
    shard->fd = open(paths[i].c_str(), O_RDONLY | O_CLOEXEC);
    if (shard->fd < 0) return ErrnoError("cannot open", paths[i], errno);
    r->shards_.push_back(std::move(shard));
    MRTRAIN_RETURN_IF_ERROR(r->ScanKeys(i, &owners));
  }
  const auto missing = std::find(owners.begin(), owners.end(), -1);
  if (missing != owners.end()) {
    const ParamKey key = layout.keys()[static_cast<size_t>(missing - owners.begin())];
    return CorruptionError(manifest_path + ": no shard file holds " + BlockName(layout, key));
  }
  return r;
}

// Load's PlaceBlocks without placing anything: every key is in the layout, no dense block is in
// an earlier file, and the values hold exactly the floats the keys need. Notes where each
// tensor's keys start.
Status ShardSetReader::ScanKeys(size_t index, std::vector<int32_t>* owners) {
  Shard& shard = *shards_[index];
  const ModelLayout& layout = *layout_;
  const uint64_t values = shard.index.num_values;
  const uint64_t parts = 1 + static_cast<uint64_t>(manifest_.num_slots);
  const auto too_few = [&] {
    return CorruptionError(shard.path + ": has " + std::to_string(values) +
                           " values, too few for its blocks");
  };
  uint64_t at = 0;  // floats of the values used so far
  KeyCursor keys(shard, 0, shard.index.num_keys);
  for (uint64_t i = 0; !keys.done(); ++i) {
    ParamKey key;
    MRTRAIN_RETURN_IF_ERROR(keys.Next(&key));
    if (!layout.IsValid(key)) {
      return CorruptionError(shard.path + ": holds block " + std::to_string(key.block()) +
                             " of tensor " + std::to_string(key.tensor()) +
                             ", which the model does not have");
    }
    if (!layout.is_row_sparse(static_cast<int>(key.tensor()))) {
      int32_t& owner = (*owners)[first_block_[key.tensor()] + key.block()];
      if (owner >= 0) {
        return CorruptionError(shard.path + ": holds " + BlockName(layout, key) + ", which " +
                               shards_[static_cast<size_t>(owner)]->path + " holds too");
      }
      owner = static_cast<int32_t>(index);
    }
    const uint64_t length = static_cast<uint64_t>(layout.Range(key).length);
    if (values - at < length * parts) return too_few();
    if (shard.extents.empty() || shard.extents.back().tensor != key.tensor()) {
      if (!shard.extents.empty()) shard.extents.back().end_key = i;
      shard.extents.push_back({key.tensor(), i, 0, shard.index.values_offset + at * 4});
    }
    at += length * parts;
  }
  if (!shard.extents.empty()) shard.extents.back().end_key = shard.index.num_keys;
  if (at == values) return Status::Ok();
  return CorruptionError(shard.path + ": has " + std::to_string(values) + " values, " +
                         std::to_string(values - at) + " more than its blocks hold");
}

uint64_t ShardSetReader::StoredRows(int tensor) const {
  uint64_t rows = 0;
  for (const auto& shard : shards_) {
    if (const Shard::Extent* e = shard->ExtentOf(tensor)) rows += e->end_key - e->first_key;
  }
  return rows;
}

Status ShardSetReader::ForEachKey(int tensor, const std::function<Status(const Entry&)>& visit) {
  const ModelLayout& layout = *layout_;
  const uint64_t parts = 1 + static_cast<uint64_t>(manifest_.num_slots);
  // One cursor per shard file holding keys of the tensor, with its current key.
  struct Head {
    std::unique_ptr<KeyCursor> keys;
    Entry entry;
    bool valid = false;
  };
  std::vector<Head> heads;
  const auto advance = [&](Head* head) -> Status {
    if (head->valid) {
      head->entry.offset += static_cast<uint64_t>(head->entry.length) * parts * sizeof(float);
    }
    head->valid = !head->keys->done();
    if (!head->valid) return Status::Ok();
    MRTRAIN_RETURN_IF_ERROR(head->keys->Next(&head->entry.key));
    head->entry.length = layout.Range(head->entry.key).length;
    return Status::Ok();
  };
  for (size_t s = 0; s < shards_.size(); ++s) {
    const Shard::Extent* e = shards_[s]->ExtentOf(tensor);
    if (e == nullptr) continue;
    Head& head = heads.emplace_back();
    head.keys = std::make_unique<KeyCursor>(*shards_[s], e->first_key, e->end_key);
    head.entry.shard = static_cast<int>(s);
    head.entry.offset = e->first_offset;
    MRTRAIN_RETURN_IF_ERROR(advance(&head));
  }
  // The smallest head first, ties in shard order (google/leveldb table/merger.cc FindSmallest):
  // the shard files are few, so a linear scan beats a heap.
  bool have_previous = false;
  ParamKey previous;
  while (true) {
    Head* smallest = nullptr;
    for (Head& head : heads) {
      if (head.valid && (smallest == nullptr || head.entry.key < smallest->entry.key)) {
        smallest = &head;
      }
    }
    if (smallest == nullptr) return Status::Ok();
    if (have_previous && previous == smallest->entry.key) {
      return CorruptionError(manifest_path_ + ": two shard files hold row " +
                             std::to_string(previous.block()) + " of tensor '" +
                             layout.specs()[tensor].name + "'");
    }
    MRTRAIN_RETURN_IF_ERROR(visit(smallest->entry));
    previous = smallest->entry.key;
    have_previous = true;
    MRTRAIN_RETURN_IF_ERROR(advance(smallest));
  }
}

Status ShardSetReader::ReadPart(const Entry& entry, int part,
                                const std::function<void(const void* bytes, size_t n)>& out) {
  const uint64_t bytes = static_cast<uint64_t>(entry.length) * sizeof(float);
  return shards_[static_cast<size_t>(entry.shard)]->Read(
      entry.offset + static_cast<uint64_t>(part) * bytes, bytes, out);
}

}  // namespace mrtrain::runtime

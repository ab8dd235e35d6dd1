#include "runtime/checkpoint/shard_file.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <system_error>
#include <utility>

#include "engine/base/check.h"
#include "engine/tensor/model_layout.h"
#include "runtime/checkpoint/checkpoint_decoder.h"
#include "runtime/checkpoint/checkpoint_format.h"

namespace mrtrain::runtime {
namespace {

using checkpoint_format::kManifestFile;
using checkpoint_format::kMinShardEntryBytes;
using checkpoint_format::kMinSpecBytes;

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "values are written and read as their in-memory bytes, which the format defines "
              "as little-endian floats");

constexpr uint32_t kMaxInt32 = std::numeric_limits<int32_t>::max();

// ---- Shard files ----

// A shard file that would not read back as itself is a caller's bug: refuse to write it.
Status CheckShardFile(const ShardFile& s) {
  if (s.epochs_done < 0) return InternalError("negative epochs_done");
  if (s.step < 0) return InternalError("negative step");
  if (s.num_shards < 1 || s.shard < 0 || s.shard >= s.num_shards) {
    return InternalError("shard " + std::to_string(s.shard) + " of " +
                         std::to_string(s.num_shards));
  }
  if (s.num_slots < 0) return InternalError("negative num_slots");
  if (!FitsU32(s.fingerprint.size()) || !FitsU32(s.keys.size())) {
    return InternalError("the fingerprint or the key count exceeds 4 GiB");
  }
  for (size_t i = 1; i < s.keys.size(); ++i) {
    if (!(s.keys[i - 1] < s.keys[i])) return InternalError("keys out of order or repeated");
  }
  return Status::Ok();
}

void EncodeShardFile(const ShardFile& s, ChecksummedWriter* w) {
  w->PutI64(s.epochs_done);
  w->PutI64(s.step);
  w->PutU32(static_cast<uint32_t>(s.shard));
  w->PutU32(static_cast<uint32_t>(s.num_shards));
  w->PutString(s.fingerprint);
  w->PutU32(static_cast<uint32_t>(s.num_slots));
  w->PutU32(static_cast<uint32_t>(s.keys.size()));
  for (ParamKey key : s.keys) w->PutU64(key.packed());
  w->PutU64(s.values.size());
  w->PutFloats(s.values);
}

// A u32 that must fit an int32_t.
Status DecodeInt32(BoundedReader* r, const std::string& what, int32_t* out) {
  const uint64_t at = r->position();
  uint32_t v = 0;
  MRTRAIN_RETURN_IF_ERROR(r->U32(&v, what));
  if (v > kMaxInt32) {
    return r->Error(what + " at byte " + std::to_string(at) + " is " + std::to_string(v) +
                    ", more than the limit of " + std::to_string(kMaxInt32));
  }
  *out = static_cast<int32_t>(v);
  return Status::Ok();
}

Status DecodeShardIndex(BoundedReader* r, ShardFile* s) {
  const uint64_t at = r->position();
  MRTRAIN_RETURN_IF_ERROR(DecodeInt32(r, "shard", &s->shard));
  MRTRAIN_RETURN_IF_ERROR(DecodeInt32(r, "num_shards", &s->num_shards));
  if (s->shard < s->num_shards) return Status::Ok();
  return r->Error("the shard index at byte " + std::to_string(at) + " is " +
                  std::to_string(s->shard) + " of " + std::to_string(s->num_shards));
}

// The key array, checked strictly ascending; `add` sees each key in order. Read in chunks, so
// a reader that keeps no keys (IndexShardFile) needs no memory in proportion to them.
Status DecodeKeys(BoundedReader* r, const std::function<void(uint32_t count)>& reserve,
                  const std::function<void(ParamKey)>& add) {
  uint32_t count = 0;
  MRTRAIN_RETURN_IF_ERROR(r->U32(&count, "the key count"));
  MRTRAIN_RETURN_IF_ERROR(r->CheckCount(count, sizeof(uint64_t), "keys"));
  if (reserve) reserve(count);
  constexpr uint32_t kChunk = 8192;
  std::vector<uint8_t> buf(std::min(kChunk, count) * sizeof(uint64_t));
  ParamKey previous;
  for (uint32_t first = 0; first < count; first += kChunk) {
    const uint32_t n = std::min(kChunk, count - first);
    const uint64_t at = r->position();
    MRTRAIN_RETURN_IF_ERROR(r->Bytes(buf.data(), uint64_t{n} * sizeof(uint64_t), "keys"));
    for (uint32_t j = 0; j < n; ++j) {
      const ParamKey key = ParamKey::FromPacked(DecodeLittleEndian(buf.data() + 8 * j, 8));
      const uint32_t i = first + j;
      if (i > 0 && !(previous < key)) {
        return r->Error("key " + std::to_string(i) + " at byte " + std::to_string(at + 8 * j) +
                        " is out of order or repeated");
      }
      add(key);
      previous = key;
    }
  }
  return Status::Ok();
}

// Every field before the keys.
Status DecodeShardHeader(BoundedReader* r, ShardFile* s) {
  MRTRAIN_RETURN_IF_ERROR(r->NonNegative(&s->epochs_done, "epochs_done"));
  MRTRAIN_RETURN_IF_ERROR(r->NonNegative(&s->step, "step"));
  MRTRAIN_RETURN_IF_ERROR(DecodeShardIndex(r, s));
  MRTRAIN_RETURN_IF_ERROR(r->String(&s->fingerprint, "fingerprint"));
  return DecodeInt32(r, "num_slots", &s->num_slots);
}

Status DecodeShardBody(BoundedReader* r, ShardFile* s) {
  MRTRAIN_RETURN_IF_ERROR(DecodeShardHeader(r, s));
  MRTRAIN_RETURN_IF_ERROR(DecodeKeys(
      r, [&](uint32_t count) { s->keys.reserve(count); },
      [&](ParamKey key) { s->keys.push_back(key); }));
  uint64_t count = 0;
  MRTRAIN_RETURN_IF_ERROR(r->U64(&count, "the value count"));
  return r->Floats(&s->values, count, "values");
}

// The same checks as DecodeShardBody, noting where the arrays are instead of reading them.
Status IndexShardBody(BoundedReader* r, ShardFileIndex* index) {
  MRTRAIN_RETURN_IF_ERROR(DecodeShardHeader(r, &index->header));
  index->keys_offset = r->position() + sizeof(uint32_t);
  MRTRAIN_RETURN_IF_ERROR(DecodeKeys(r, {}, [&](ParamKey) { ++index->num_keys; }));
  MRTRAIN_RETURN_IF_ERROR(r->U64(&index->num_values, "the value count"));
  index->values_offset = r->position();
  return r->SkipFloats(index->num_values, "values");
}

Status CheckExpected(const FramedInput& in, const ShardFileInfo& expected) {
  if (in.size != expected.bytes) {
    return CorruptionError(in.path + ": has " + std::to_string(in.size) +
                           " bytes, but the manifest records " + std::to_string(expected.bytes));
  }
  // With the size as recorded but the trailer not intact, decoding says what is wrong.
  if (!in.intact || in.stored_crc == expected.crc32c) return Status::Ok();
  return CorruptionError(in.path + ": its CRC32C is " + Hex32(in.stored_crc) +
                         ", but the manifest records " + Hex32(expected.crc32c));
}

Result<ShardFile> ReadShard(const std::string& path, const ShardFileInfo* expected) {
  MRTRAIN_ASSIGN_OR_RETURN(const FramedInput in,
                           OpenFramedFile(path, checkpoint_format::kShardFile));
  if (expected != nullptr) MRTRAIN_RETURN_IF_ERROR(CheckExpected(in, *expected));
  BoundedReader body = in.Body();
  ShardFile shard;
  MRTRAIN_RETURN_IF_ERROR(DecodeShardBody(&body, &shard));
  MRTRAIN_RETURN_IF_ERROR(FinishBody(&body, in));
  return shard;
}

// ---- Manifests ----

// Relative, and staying inside the directory it is relative to: no empty, "." or ".."
// components, and no NUL, which would cut the name short in every system call.
bool IsContainedName(const std::string& name) {
  if (name.empty() || name.find('\0') != std::string::npos) return false;
  size_t start = 0;
  while (true) {
    const size_t slash = std::min(name.find('/', start), name.size());
    const std::string part = name.substr(start, slash - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (slash == name.size()) return true;
    start = slash + 1;
  }
}

JobHeader HeaderOf(const CheckpointManifest& m) {
  JobHeader h;
  h.epochs_done = m.epochs_done;
  h.step = m.step;
  h.fingerprint = m.fingerprint;
  h.model_type = m.model_type;
  h.update_rule = m.update_rule;
  h.model_params = m.model_params;
  h.data_shape = m.data_shape;
  h.block_size = m.block_size;
  return h;
}

Status CheckSpecs(const std::vector<api::TensorSpec>& specs) {
  if (specs.empty() || specs.size() > ParamKey::kMaxTensors) {
    return InternalError(std::to_string(specs.size()) + " tensors");
  }
  for (const auto& spec : specs) {
    if (!FitsU32(spec.name.size()) || !FitsU32(spec.shape.size())) {
      return InternalError("a tensor name or rank exceeds 4 GiB");
    }
    for (int64_t d : spec.shape) {
      if (d < 1) {
        return InternalError("tensor '" + spec.name + "' has dimension " + std::to_string(d));
      }
    }
  }
  return Status::Ok();
}

Status CheckShardEntries(const std::vector<ShardFileInfo>& shards) {
  if (shards.empty() || !FitsU32(shards.size())) {
    return InternalError(std::to_string(shards.size()) + " shard files");
  }
  for (const auto& shard : shards) {
    if (!FitsU32(shard.name.size()) || !IsContainedName(shard.name)) {
      return InternalError("shard file name '" + shard.name + "' is not a relative path inside " +
                           "the checkpoint directory");
    }
  }
  return Status::Ok();
}

void EncodeManifestBody(const JobHeader& header, const CheckpointManifest& m,
                        ChecksummedWriter* w) {
  EncodeJobHeader(header, w);
  w->PutU32(static_cast<uint32_t>(m.num_slots));
  w->PutU32(static_cast<uint32_t>(m.tensors.size()));
  for (const auto& spec : m.tensors) EncodeSpec(spec, w);
  w->PutU32(static_cast<uint32_t>(m.shards.size()));
  for (const auto& shard : m.shards) {
    w->PutString(shard.name);
    w->PutU64(shard.bytes);
    w->PutU32(shard.crc32c);
  }
}

Status DecodeManifestSpecs(BoundedReader* r, std::vector<api::TensorSpec>* specs) {
  const uint64_t at = r->position();
  uint32_t count = 0;
  MRTRAIN_RETURN_IF_ERROR(r->U32(&count, "the tensor count"));
  if (count < 1 || count > ParamKey::kMaxTensors) {
    return r->Error("the tensor count at byte " + std::to_string(at) + " is " +
                    std::to_string(count) + ", not between 1 and " +
                    std::to_string(ParamKey::kMaxTensors));
  }
  MRTRAIN_RETURN_IF_ERROR(r->CheckCount(count, kMinSpecBytes, "tensors"));
  for (uint32_t t = 0; t < count; ++t) {
    // Grown one at a time: memory follows the bytes actually read.
    specs->emplace_back();
    uint64_t size = 0;  // unused: the shard files hold the data
    MRTRAIN_RETURN_IF_ERROR(DecodeSpec(r, t, &specs->back(), &size));
  }
  return Status::Ok();
}

Status DecodeShardEntries(BoundedReader* r, std::vector<ShardFileInfo>* shards) {
  const uint64_t at = r->position();
  uint32_t count = 0;
  MRTRAIN_RETURN_IF_ERROR(r->U32(&count, "the shard count"));
  if (count < 1) return r->Error("the shard count at byte " + std::to_string(at) + " is 0");
  MRTRAIN_RETURN_IF_ERROR(r->CheckCount(count, kMinShardEntryBytes, "shard files"));
  for (uint32_t i = 0; i < count; ++i) {
    ShardFileInfo& shard = shards->emplace_back();
    const std::string what = "shard file " + std::to_string(i);
    const uint64_t name_at = r->position();
    MRTRAIN_RETURN_IF_ERROR(r->String(&shard.name, "the name of " + what));
    if (!IsContainedName(shard.name)) {
      return r->Error("the name of " + what + " at byte " + std::to_string(name_at) +
                      " is not a relative path inside the checkpoint directory");
    }
    MRTRAIN_RETURN_IF_ERROR(r->U64(&shard.bytes, "the size of " + what));
    MRTRAIN_RETURN_IF_ERROR(r->U32(&shard.crc32c, "the CRC of " + what));
  }
  return Status::Ok();
}

Status DecodeManifestBody(BoundedReader* r, CheckpointManifest* m) {
  JobHeader h;
  MRTRAIN_RETURN_IF_ERROR(DecodeJobHeader(r, &h));
  m->epochs_done = h.epochs_done;
  m->step = h.step;
  m->fingerprint = std::move(h.fingerprint);
  m->model_type = std::move(h.model_type);
  m->update_rule = std::move(h.update_rule);
  m->model_params = std::move(h.model_params);
  m->data_shape = h.data_shape;
  m->block_size = h.block_size;
  MRTRAIN_RETURN_IF_ERROR(DecodeInt32(r, "num_slots", &m->num_slots));
  MRTRAIN_RETURN_IF_ERROR(DecodeManifestSpecs(r, &m->tensors));
  return DecodeShardEntries(r, &m->shards);
}

}  // namespace

ShardFile MakeShardFile(const ModelState& state, std::vector<ParamKey> keys, int64_t epochs_done,
                        int32_t shard, int32_t num_shards, std::string fingerprint) {
  const ModelLayout& layout = *state.layout;
  std::sort(keys.begin(), keys.end());
  size_t floats = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    MRTRAIN_CHECK(layout.IsValid(keys[i]));
    MRTRAIN_CHECK(i == 0 || keys[i - 1] < keys[i]);
    floats += static_cast<size_t>(layout.Range(keys[i]).length) * (1 + state.slots.size());
  }
  ShardFile s;
  s.epochs_done = epochs_done;
  s.step = state.step;
  s.shard = shard;
  s.num_shards = num_shards;
  s.fingerprint = std::move(fingerprint);
  s.num_slots = static_cast<int32_t>(state.slots.size());
  s.values.resize(floats);
  float* out = s.values.data();
  for (ParamKey key : keys) {
    const BlockRange r = layout.Range(key);
    state.ReadBlock(key, out);
    out += r.length;
    for (const auto& slot : state.slots) {
      std::memcpy(out, slot[r.tensor].data() + r.offset, r.length * sizeof(float));
      out += r.length;
    }
  }
  s.keys = std::move(keys);
  return s;
}

Result<ShardFileInfo> WriteShardFile(
    const std::string& path, const ShardFile& shard,
    const std::function<void(const std::string& tmp)>& before_commit) {
  MRTRAIN_RETURN_IF_ERROR(CheckShardFile(shard).WithContext("cannot write shard file " + path));
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  // Several hosts may create the same directory at once; create_directories treats one that
  // already exists as success.
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) return IOError("cannot create directory " + parent.string() + ": " + ec.message());
  MRTRAIN_ASSIGN_OR_RETURN(
      const WrittenFile written,
      WriteFramedFile(
          path, checkpoint_format::kShardFile,
          [&](ChecksummedWriter* w) { EncodeShardFile(shard, w); }, before_commit));
  return ShardFileInfo{path, written.bytes, written.crc};
}

Result<ShardFile> ReadShardFile(const std::string& path) { return ReadShard(path, nullptr); }

Result<ShardFileIndex> IndexShardFile(const std::string& path, const ShardFileInfo& expected) {
  MRTRAIN_ASSIGN_OR_RETURN(const FramedInput in,
                           OpenFramedFile(path, checkpoint_format::kShardFile));
  MRTRAIN_RETURN_IF_ERROR(CheckExpected(in, expected));
  BoundedReader body = in.Body();
  ShardFileIndex index;
  MRTRAIN_RETURN_IF_ERROR(IndexShardBody(&body, &index));
  MRTRAIN_RETURN_IF_ERROR(FinishBody(&body, in));
  return index;
}

Result<ShardFile> ReadShardFile(const std::string& path, const ShardFileInfo& expected) {
  return ReadShard(path, &expected);
}

Status WriteManifestFile(const std::string& path, const CheckpointManifest& manifest) {
  const std::string context = "cannot write manifest " + path;
  const JobHeader header = HeaderOf(manifest);
  MRTRAIN_RETURN_IF_ERROR(CheckJobHeader(header).WithContext(context));
  if (manifest.num_slots < 0) return InternalError("negative num_slots").WithContext(context);
  MRTRAIN_RETURN_IF_ERROR(CheckSpecs(manifest.tensors).WithContext(context));
  MRTRAIN_RETURN_IF_ERROR(CheckShardEntries(manifest.shards).WithContext(context));
  const bool row_sparse = std::any_of(manifest.tensors.begin(), manifest.tensors.end(),
                                      [](const api::TensorSpec& spec) { return spec.row_sparse; });
  return WriteFramedFile(path, checkpoint_format::KindFor(kManifestFile, row_sparse),
                         [&](ChecksummedWriter* w) { EncodeManifestBody(header, manifest, w); })
      .status();
}

Result<CheckpointManifest> ReadManifestFile(const std::string& path) {
  MRTRAIN_ASSIGN_OR_RETURN(const FramedInput in, OpenFramedFile(path, kManifestFile));
  BoundedReader body = in.Body();
  CheckpointManifest manifest;
  MRTRAIN_RETURN_IF_ERROR(DecodeManifestBody(&body, &manifest));
  MRTRAIN_RETURN_IF_ERROR(FinishBody(&body, in));
  return manifest;
}

}  // namespace mrtrain::runtime

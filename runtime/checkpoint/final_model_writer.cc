#include "runtime/checkpoint/final_model_writer.h"

#include <cstdio>
#include <memory>
#include <utility>
#include <vector>

#include "runtime/checkpoint/atomic_file.h"
#include "runtime/checkpoint/checkpoint_decoder.h"
#include "runtime/checkpoint/checkpoint_format.h"
#include "runtime/checkpoint/model_file_reader.h"
#include "runtime/checkpoint/npy_format.h"
#include "runtime/checkpoint/npz_writer.h"
#include "runtime/checkpoint/shard_set_reader.h"

namespace mrtrain::runtime {
namespace {

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

// Streams the body of the checkpoint file (FORMAT.md: header, tensor table, slots) from the
// shard files, in the order EncodeArrays writes a whole state. Stops at the first write error
// (kIOError naming `tmp`) rather than reading on for nothing.
class BodyEncoder {
 public:
  BodyEncoder(ShardSetReader* shards, ChecksummedWriter* w, std::string tmp)
      : shards_(*shards), w_(*w), tmp_(std::move(tmp)) {}

  Status Encode() {
    EncodeJobHeader(HeaderOf(shards_.manifest()), &w_);
    const auto& specs = shards_.layout()->specs();
    w_.PutU32(static_cast<uint32_t>(specs.size()));
    for (size_t t = 0; t < specs.size(); ++t) {
      const int tensor = static_cast<int>(t);
      EncodeSpec(specs[t], &w_);
      if (specs[t].row_sparse) {
        w_.PutU64(shards_.StoredRows(tensor));
        MRTRAIN_RETURN_IF_ERROR(shards_.ForEachKey(tensor, [&](const ShardSetReader::Entry& e) {
          w_.PutI64(static_cast<int64_t>(e.key.block()));
          return WriteError();
        }));
      }
      MRTRAIN_RETURN_IF_ERROR(CopyPart(tensor, 0));
    }
    const int num_slots = shards_.manifest().num_slots;
    w_.PutU32(static_cast<uint32_t>(num_slots));
    for (int k = 0; k < num_slots; ++k) {
      for (size_t t = 0; t < specs.size(); ++t) {
        MRTRAIN_RETURN_IF_ERROR(CopyPart(static_cast<int>(t), 1 + k));
      }
    }
    return WriteError();
  }

 private:
  Status WriteError() const {
    return w_.error() == 0 ? Status::Ok() : ErrnoError("cannot write", tmp_, w_.error());
  }

  // Part `part` (0: parameters, 1 + k: slot k) of every key of `tensor`, in key order: a dense
  // tensor's floats in order, or a row-sparse one's rows in id order.
  Status CopyPart(int tensor, int part) {
    return shards_.ForEachKey(tensor, [&](const ShardSetReader::Entry& e) {
      MRTRAIN_RETURN_IF_ERROR(
          shards_.ReadPart(e, part, [&](const void* bytes, size_t n) { w_.PutBytes(bytes, n); }));
      return WriteError();
    });
  }

  ShardSetReader& shards_;
  ChecksummedWriter& w_;
  const std::string tmp_;
};

Status WriteModelTemp(ShardSetReader* shards, const std::string& tmp) {
  const CheckpointManifest& m = shards->manifest();
  const std::string context = "cannot write checkpoint " + tmp;
  MRTRAIN_RETURN_IF_ERROR(CheckJobHeader(HeaderOf(m)).WithContext(context));
  const auto kind = checkpoint_format::KindFor(checkpoint_format::kCheckpointFile,
                                               shards->layout()->has_row_sparse());
  return WriteFramedTempFile(
             tmp, kind, [&](ChecksummedWriter* w) { return BodyEncoder(shards, w, tmp).Encode(); })
      .status();
}

// A member whose data are `bytes` bytes of the model file at `offset`.
NpzMember FromFile(const ModelFileReader& model, std::string name, std::string header,
                   uint64_t offset, uint64_t bytes) {
  NpzMember member{std::move(name), std::move(header), bytes, {}};
  member.read = [&model, offset](uint64_t at, void* out, size_t n) {
    return model.ReadBytes(offset + at, out, n);
  };
  return member;
}

// The members WriteNpz makes of the state, each read from the checkpoint file `model` (whose
// arrays have the .npy data's bytes: little-endian floats and ids, row-major).
Result<std::vector<NpzMember>> MembersOf(const ModelFileReader& model) {
  std::vector<NpzMember> members;
  const auto& specs = model.header().state.layout->specs();
  for (size_t t = 0; t < specs.size(); ++t) {
    const CheckpointArrays::Tensor& a = model.arrays(static_cast<int>(t));
    const std::string context = "cannot export tensor '" + specs[t].name + "'";
    if (!specs[t].row_sparse) {
      Result<std::string> header = NpyHeaderF32(specs[t].shape);
      if (!header.ok()) return header.status().WithContext(context);
      members.push_back(FromFile(model, specs[t].name + ".npy", std::move(header).value(),
                                 a.data_offset, static_cast<uint64_t>(specs[t].size()) * 4));
      continue;
    }
    const int64_t n = static_cast<int64_t>(a.num_rows);
    Result<std::string> ids = NpyHeaderOf("<i8", {n});
    Result<std::string> values = NpyHeaderF32({n, specs[t].row_dim()});
    if (!ids.ok()) return ids.status().WithContext(context);
    if (!values.ok()) return values.status().WithContext(context);
    members.push_back(FromFile(model, specs[t].name + ".ids.npy", std::move(ids).value(),
                               a.ids_offset, a.num_rows * sizeof(int64_t)));
    members.push_back(FromFile(model, specs[t].name + ".values.npy", std::move(values).value(),
                               a.data_offset,
                               a.num_rows * static_cast<uint64_t>(specs[t].row_dim()) * 4));
  }
  return members;
}

// Both files complete under temporary names, then committed. Returns the first error.
Status WriteBoth(const CheckpointDir& checkpoints, int64_t epochs_done, const std::string& mrt_tmp,
                 const std::string& mrt_path, const std::string& npz_path) {
  MRTRAIN_ASSIGN_OR_RETURN(
      std::unique_ptr<ShardSetReader> shards,
      ShardSetReader::Open(checkpoints.dir(), checkpoints.ManifestPath(epochs_done), epochs_done));
  MRTRAIN_RETURN_IF_ERROR(WriteModelTemp(shards.get(), mrt_tmp));
  shards.reset();  // closes the shard files
  // Read back through the reader predict uses: the checksum and every field are checked again
  // before anything is committed.
  MRTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<ModelFileReader> model, ModelFileReader::Open(mrt_tmp));
  MRTRAIN_ASSIGN_OR_RETURN(const std::vector<NpzMember> members, MembersOf(*model));
  MRTRAIN_RETURN_IF_ERROR(WriteNpzMembers(npz_path, members));
  return CommitTempFile(mrt_tmp, mrt_path);
}

}  // namespace

Status WriteFinalModel(const CheckpointDir& checkpoints, int64_t epochs_done,
                       const std::string& mrt_path, const std::string& npz_path) {
  const std::string mrt_tmp = TempPathFor(mrt_path);
  Status written = WriteBoth(checkpoints, epochs_done, mrt_tmp, mrt_path, npz_path);
  if (!written.ok()) std::remove(mrt_tmp.c_str());
  return written;
}

}  // namespace mrtrain::runtime

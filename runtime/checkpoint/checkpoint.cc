#include "runtime/checkpoint/checkpoint.h"

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "engine/base/crc32c.h"
#include "engine/tensor/model_layout.h"
#include "engine/tensor/param_key.h"
#include "runtime/checkpoint/checkpoint_decoder.h"
#include "runtime/checkpoint/checkpoint_format.h"

namespace mrtrain::runtime {
namespace {

using checkpoint_format::kCheckpointFile;
using checkpoint_format::kMinTensorBytes;

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "tensors are written and read as their in-memory bytes, which the format defines "
              "as little-endian floats");

JobHeader HeaderOf(const Checkpoint& c) {
  JobHeader h;
  h.epochs_done = c.epochs_done;
  h.step = c.state.step;
  h.fingerprint = c.fingerprint;
  h.model_type = c.model_type;
  h.update_rule = c.update_rule;
  h.model_params = c.model_params;
  h.data_shape = c.data_shape;
  h.block_size = c.state.layout->block_size();
  return h;
}

// The stored rows of row-sparse tensor t: ids strictly ascending and in range, values and every
// slot ids.size() * dim floats.
Status CheckRows(const ModelState& s, size_t t) {
  const api::TensorSpec& spec = s.layout->specs()[t];
  if (s.rows.size() != s.layout->specs().size()) return InternalError("the state has no rows");
  const StoredRows& rows = s.rows[t];
  const size_t want = rows.ids.size() * static_cast<size_t>(spec.row_dim());
  bool fits = rows.values.size() == want && rows.slots.size() == s.slots.size();
  for (const auto& slot : rows.slots) fits = fits && slot.size() == want;
  for (size_t i = 0; i < rows.ids.size(); ++i) {
    fits = fits && rows.ids[i] >= 0 && rows.ids[i] < spec.shape[0] &&
           (i == 0 || rows.ids[i - 1] < rows.ids[i]);
  }
  if (fits) return Status::Ok();
  return InternalError("the stored rows of row-sparse tensor '" + spec.name +
                       "' are not ascending, in range and of its dim");
}

// A checkpoint that would not read back as itself is a caller's bug: refuse to write it.
Status CheckArrays(const ModelState& s) {
  const auto& specs = s.layout->specs();
  if (s.tensors.size() != specs.size()) {
    return InternalError("the state has " + std::to_string(s.tensors.size()) +
                         " tensors but its layout " + std::to_string(specs.size()));
  }
  if (!FitsU32(s.slots.size())) return InternalError("too many slots");
  for (size_t t = 0; t < specs.size(); ++t) {
    if (!FitsU32(specs[t].name.size())) return InternalError("a tensor name exceeds 4 GiB");
    if (specs[t].row_sparse) {
      MRTRAIN_RETURN_IF_ERROR(CheckRows(s, t));
      continue;
    }
    const uint64_t want = static_cast<uint64_t>(specs[t].size());
    if (s.tensors[t].size() != want) {
      return InternalError("tensor '" + specs[t].name + "' has " +
                           std::to_string(s.tensors[t].size()) + " floats; its shape needs " +
                           std::to_string(want));
    }
    for (size_t k = 0; k < s.slots.size(); ++k) {
      if (s.slots[k].size() != specs.size() || s.slots[k][t].size() != want) {
        return InternalError("slot " + std::to_string(k) + " does not match tensor '" +
                             specs[t].name + "'");
      }
    }
  }
  return Status::Ok();
}

void EncodeArrays(const ModelState& s, ChecksummedWriter* w) {
  const auto& specs = s.layout->specs();
  w->PutU32(static_cast<uint32_t>(specs.size()));
  for (size_t t = 0; t < specs.size(); ++t) {
    EncodeSpec(specs[t], w);
    if (!specs[t].row_sparse) {
      w->PutFloats(s.tensors[t]);
      continue;
    }
    // A row-sparse tensor: its stored rows, as a count, the ids and their values.
    w->PutU64(s.rows[t].ids.size());
    for (int64_t id : s.rows[t].ids) w->PutI64(id);
    w->PutFloats(s.rows[t].values);
  }
  w->PutU32(static_cast<uint32_t>(s.slots.size()));
  for (size_t k = 0; k < s.slots.size(); ++k) {
    for (size_t t = 0; t < specs.size(); ++t) {
      w->PutFloats(specs[t].row_sparse ? s.rows[t].slots[k] : s.slots[k][t]);
    }
  }
}

// The stored rows of row-sparse tensor `spec` (after its spec): count, ids, values. With
// `where` set the arrays are checked (ids in chunks) and skipped, their offsets noted there.
Status DecodeRows(BoundedReader* r, const api::TensorSpec& spec, StoredRows* rows,
                  CheckpointArrays::Tensor* where) {
  const std::string what = "the rows of row-sparse tensor '" + spec.name + "'";
  uint64_t count = 0;
  MRTRAIN_RETURN_IF_ERROR(r->U64(&count, "the row count of " + what));
  const uint64_t dim = static_cast<uint64_t>(spec.shape[1]);
  MRTRAIN_RETURN_IF_ERROR(r->CheckCount(count, 8 + 4 * dim, what));
  if (where != nullptr) {
    where->num_rows = count;
    where->ids_offset = r->position();
  } else {
    rows->ids.resize(count);
  }
  constexpr uint64_t kChunk = 8192;
  int64_t ids[kChunk];
  int64_t previous = -1;
  for (uint64_t first = 0; first < count; first += kChunk) {
    const uint64_t n = std::min(kChunk, count - first);
    int64_t* chunk = where != nullptr ? ids : rows->ids.data() + first;
    MRTRAIN_RETURN_IF_ERROR(r->Bytes(chunk, n * sizeof(int64_t), "the row ids of " + what));
    for (uint64_t i = 0; i < n; ++i) {
      if (chunk[i] < 0 || chunk[i] >= spec.shape[0] || (first + i > 0 && previous >= chunk[i])) {
        return r->Error(what + ": row id " + std::to_string(chunk[i]) +
                        " is out of range or out of order");
      }
      previous = chunk[i];
    }
  }
  if (where == nullptr) return r->Floats(&rows->values, count * dim, what);
  where->data_offset = r->position();
  return r->SkipFloats(count * dim, what);
}

Status DecodeTensors(BoundedReader* r, std::vector<api::TensorSpec>* specs,
                     std::vector<std::vector<float>>* tensors, std::vector<StoredRows>* rows,
                     CheckpointArrays* where) {
  uint32_t count = 0;
  MRTRAIN_RETURN_IF_ERROR(r->U32(&count, "the tensor count"));
  if (count > ParamKey::kMaxTensors) {
    return r->Error("the tensor count " + std::to_string(count) + " exceeds the limit of " +
                    std::to_string(ParamKey::kMaxTensors));
  }
  MRTRAIN_RETURN_IF_ERROR(r->CheckCount(count, kMinTensorBytes, "tensors"));
  for (uint32_t t = 0; t < count; ++t) {
    // Grown one tensor at a time: memory follows the bytes actually read.
    specs->emplace_back();
    tensors->emplace_back();
    rows->emplace_back();
    CheckpointArrays::Tensor* at = nullptr;
    if (where != nullptr) at = &where->tensors.emplace_back();
    uint64_t size = 0;
    MRTRAIN_RETURN_IF_ERROR(DecodeSpec(r, t, &specs->back(), &size));
    if (specs->back().row_sparse) {
      MRTRAIN_RETURN_IF_ERROR(DecodeRows(r, specs->back(), &rows->back(), at));
      continue;
    }
    const std::string what = "tensor '" + specs->back().name + "'";
    if (at == nullptr) {
      MRTRAIN_RETURN_IF_ERROR(r->Floats(&tensors->back(), size, what));
      continue;
    }
    at->data_offset = r->position();
    MRTRAIN_RETURN_IF_ERROR(r->SkipFloats(size, what));
  }
  return Status::Ok();
}

Status DecodeSlots(BoundedReader* r, ModelState* state, const CheckpointArrays* where) {
  uint32_t count = 0;
  MRTRAIN_RETURN_IF_ERROR(r->U32(&count, "the slot count"));
  const auto& specs = state->layout->specs();
  // Bounds the count by the file size (at least one float per slot: a model of row-sparse
  // tensors only may have no dense parameter).
  const uint64_t slot_bytes =
      std::max<uint64_t>(1, static_cast<uint64_t>(state->layout->num_parameters())) * 4;
  MRTRAIN_RETURN_IF_ERROR(r->CheckCount(count, slot_bytes, "slots"));
  if (where == nullptr) {
    state->slots.assign(count, std::vector<std::vector<float>>(specs.size()));
    for (StoredRows& rows : state->rows) rows.slots.assign(count, {});
  }
  for (uint32_t k = 0; k < count; ++k) {
    for (size_t t = 0; t < specs.size(); ++t) {
      const std::string what = "slot " + std::to_string(k) + " of tensor '" + specs[t].name + "'";
      const uint64_t n = specs[t].row_sparse ? (where != nullptr ? where->tensors[t].num_rows
                                                                 : state->rows[t].ids.size()) *
                                                   static_cast<uint64_t>(specs[t].shape[1])
                                             : static_cast<uint64_t>(specs[t].size());
      if (where != nullptr) {
        MRTRAIN_RETURN_IF_ERROR(r->SkipFloats(n, what));
      } else if (specs[t].row_sparse) {
        MRTRAIN_RETURN_IF_ERROR(r->Floats(&state->rows[t].slots[k], n, what));
      } else {
        MRTRAIN_RETURN_IF_ERROR(r->Floats(&state->slots[k][t], n, what));
      }
    }
  }
  return Status::Ok();
}

// Decodes header, tensor table and slots into `c`, rebuilding the layout with
// ModelLayout::Create so that the specs are validated like any other. With `where` set the
// arrays are skipped (c's tensors, slots and rows stay empty) and their offsets noted there.
Status DecodeBody(BoundedReader* r, Checkpoint* c, CheckpointArrays* where) {
  JobHeader h;
  MRTRAIN_RETURN_IF_ERROR(DecodeJobHeader(r, &h));
  c->epochs_done = h.epochs_done;
  c->state.step = h.step;
  c->fingerprint = std::move(h.fingerprint);
  c->model_type = std::move(h.model_type);
  c->update_rule = std::move(h.update_rule);
  c->model_params = std::move(h.model_params);
  c->data_shape = h.data_shape;
  std::vector<api::TensorSpec> specs;
  std::vector<std::vector<float>> tensors;
  std::vector<StoredRows> rows;
  MRTRAIN_RETURN_IF_ERROR(DecodeTensors(r, &specs, &tensors, &rows, where));
  Result<ModelLayout> layout = ModelLayout::Create(std::move(specs), h.block_size);
  if (!layout.ok()) return r->Error("invalid model layout: " + layout.status().message());
  c->state.layout = std::make_shared<const ModelLayout>(std::move(layout).value());
  c->state.tensors = std::move(tensors);
  c->state.rows = std::move(rows);
  return DecodeSlots(r, &c->state, where);
}

Result<Checkpoint> ReadCheckpoint(const std::string& path, CheckpointArrays* where) {
  MRTRAIN_ASSIGN_OR_RETURN(const FramedInput in, OpenFramedFile(path, kCheckpointFile));
  BoundedReader body = in.Body();
  Checkpoint ckpt;
  MRTRAIN_RETURN_IF_ERROR(DecodeBody(&body, &ckpt, where));
  MRTRAIN_RETURN_IF_ERROR(FinishBody(&body, in));
  if (where != nullptr) {
    where->file_bytes = in.size;
    // The trailer's CRC covers every byte before it; extended over its own 4 bytes it is the
    // CRC of the whole file.
    uint8_t stored[4];
    for (int i = 0; i < 4; ++i) stored[i] = static_cast<uint8_t>(in.stored_crc >> (8 * i));
    where->file_crc32c = Crc32cExtend(in.stored_crc, stored, sizeof(stored));
  }
  return ckpt;
}

}  // namespace

Status WriteCheckpointFile(const std::string& path, const Checkpoint& ckpt) {
  const std::string context = "cannot write checkpoint " + path;
  if (ckpt.state.layout == nullptr)
    return InternalError("the state has no layout").WithContext(context);
  const JobHeader header = HeaderOf(ckpt);
  MRTRAIN_RETURN_IF_ERROR(CheckJobHeader(header).WithContext(context));
  MRTRAIN_RETURN_IF_ERROR(CheckArrays(ckpt.state).WithContext(context));
  return WriteFramedFile(
             path, checkpoint_format::KindFor(kCheckpointFile, ckpt.state.layout->has_row_sparse()),
             [&](ChecksummedWriter* w) {
               EncodeJobHeader(header, w);
               EncodeArrays(ckpt.state, w);
             })
      .status();
}

Result<Checkpoint> ReadCheckpointFile(const std::string& path) {
  return ReadCheckpoint(path, nullptr);
}

Result<Checkpoint> IndexCheckpointFile(const std::string& path, CheckpointArrays* arrays) {
  *arrays = CheckpointArrays();
  return ReadCheckpoint(path, arrays);
}

}  // namespace mrtrain::runtime

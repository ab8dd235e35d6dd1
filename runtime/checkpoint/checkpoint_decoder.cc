#include "runtime/checkpoint/checkpoint_decoder.h"

#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>
#include <utility>

#include "engine/tensor/model_layout.h"
#include "engine/tensor/param_key.h"
#include "runtime/checkpoint/checkpoint_format.h"

namespace mrtrain::runtime {
namespace {

using checkpoint_format::kMaxBlockSize;
using checkpoint_format::kMinHyperparameterBytes;
using checkpoint_format::kMinTensorBytes;
using checkpoint_format::kRoleBias;
using checkpoint_format::kRoleWeight;

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "tensors are read as their in-memory bytes, which the format defines as "
              "little-endian floats");

// The largest float count whose byte size still fits in 63 bits.
constexpr uint64_t kMaxFloats = static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / 4;

std::string Quoted(const std::string& name) { return "'" + name + "'"; }

}  // namespace

uint64_t DecodeLittleEndian(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

BoundedReader::BoundedReader(FILE* file, std::string name, uint64_t position, uint64_t limit,
                             uint64_t file_size, bool truncated)
    : file_(file),
      name_(std::move(name)),
      position_(position),
      limit_(limit),
      file_size_(file_size),
      truncated_(truncated) {}

Status BoundedReader::Error(const std::string& message) const {
  return CorruptionError(name_ + ": " + message);
}

Status BoundedReader::Short(uint64_t n, const std::string& what) const {
  if (truncated_) {
    return Error("truncated at byte " + std::to_string(file_size_) + ": expected " +
                 std::to_string(n) + " bytes of " + what + " at byte " + std::to_string(position_));
  }
  // The trailer is intact and the checksum matched, so the writer itself was wrong.
  return Error("bad length at byte " + std::to_string(position_) + ": " + what + " needs " +
               std::to_string(n) + " bytes but only " + std::to_string(remaining()) +
               " remain before the trailer");
}

Status BoundedReader::CheckCount(uint64_t count, uint64_t min_bytes,
                                 const std::string& what) const {
  if (min_bytes == 0 || count <= remaining() / min_bytes) return Status::Ok();
  const std::string claim = std::to_string(count) + " " + what + " of at least " +
                            std::to_string(min_bytes) + " bytes each";
  if (truncated_) {
    return Error("truncated at byte " + std::to_string(file_size_) + ": expected " + claim +
                 " at byte " + std::to_string(position_) + ", but only " +
                 std::to_string(remaining()) + " bytes remain");
  }
  return Error("bad count at byte " + std::to_string(position_) + ": " + claim +
               " cannot fit in the " + std::to_string(remaining()) + " bytes before the trailer");
}

Status BoundedReader::Bytes(void* out, uint64_t n, const std::string& what) {
  if (n > remaining()) return Short(n, what);
  if (n > 0 && std::fread(out, 1, n, file_) != n) {
    const std::string reason = std::ferror(file_) ? std::strerror(errno) : "the file shrank";
    return IOError(name_ + ": cannot read " + what + " at byte " + std::to_string(position_) +
                   ": " + reason);
  }
  position_ += n;
  return Status::Ok();
}

Status BoundedReader::U8(uint8_t* out, const std::string& what) { return Bytes(out, 1, what); }

Status BoundedReader::U32(uint32_t* out, const std::string& what) {
  uint8_t buf[4];
  MRTRAIN_RETURN_IF_ERROR(Bytes(buf, 4, what));
  *out = static_cast<uint32_t>(DecodeLittleEndian(buf, 4));
  return Status::Ok();
}

Status BoundedReader::U64(uint64_t* out, const std::string& what) {
  uint8_t buf[8];
  MRTRAIN_RETURN_IF_ERROR(Bytes(buf, 8, what));
  *out = DecodeLittleEndian(buf, 8);
  return Status::Ok();
}

Status BoundedReader::I64(int64_t* out, const std::string& what) {
  uint64_t v = 0;
  MRTRAIN_RETURN_IF_ERROR(U64(&v, what));
  *out = static_cast<int64_t>(v);
  return Status::Ok();
}

Status BoundedReader::String(std::string* out, const std::string& what) {
  uint32_t length = 0;
  MRTRAIN_RETURN_IF_ERROR(U32(&length, "the length of " + what));
  if (length > remaining()) return Short(length, what);
  out->resize(length);
  return Bytes(out->data(), length, what);
}

Status BoundedReader::Floats(std::vector<float>* out, uint64_t count, const std::string& what) {
  if (count > kMaxFloats || count * sizeof(float) > remaining()) {
    return Short(count > kMaxFloats ? std::numeric_limits<uint64_t>::max() : count * 4, what);
  }
  out->resize(count);
  return Bytes(out->data(), count * sizeof(float), what);
}

namespace {

Status DecodeNonNegative(BoundedReader* r, const std::string& what, int64_t* out) {
  const uint64_t at = r->position();
  MRTRAIN_RETURN_IF_ERROR(r->I64(out, what));
  if (*out >= 0) return Status::Ok();
  return r->Error(what + " at byte " + std::to_string(at) + " is negative (" +
                  std::to_string(*out) + ")");
}

Status DecodeHyperparameters(BoundedReader* r, api::Hyperparameters* out) {
  uint32_t count = 0;
  MRTRAIN_RETURN_IF_ERROR(r->U32(&count, "the hyperparameter count"));
  MRTRAIN_RETURN_IF_ERROR(r->CheckCount(count, kMinHyperparameterBytes, "hyperparameters"));
  std::string previous;
  for (uint32_t i = 0; i < count; ++i) {
    std::string key, value;
    MRTRAIN_RETURN_IF_ERROR(r->String(&key, "the name of hyperparameter " + std::to_string(i)));
    MRTRAIN_RETURN_IF_ERROR(r->String(&value, "the value of hyperparameter " + Quoted(key)));
    // The writer iterates a std::map, so keys ascend; anything else would not re-encode to
    // the same bytes.
    if (i > 0 && !(previous < key)) {
      return r->Error("hyperparameter " + Quoted(key) + " is out of order or repeated");
    }
    out->Set(key, value);
    previous = std::move(key);
  }
  return Status::Ok();
}

Status DecodeDataShape(BoundedReader* r, api::DataShape* out) {
  MRTRAIN_RETURN_IF_ERROR(DecodeNonNegative(r, "num_features", &out->num_features));
  MRTRAIN_RETURN_IF_ERROR(DecodeNonNegative(r, "num_classes", &out->num_classes));
  uint8_t is_sparse = 0;
  MRTRAIN_RETURN_IF_ERROR(r->U8(&is_sparse, "is_sparse"));
  if (is_sparse > 1) return r->Error("is_sparse is " + std::to_string(is_sparse) + ", not 0 or 1");
  out->is_sparse = is_sparse == 1;
  return Status::Ok();
}

Status DecodeHeader(BoundedReader* r, Checkpoint* c, int64_t* block_size) {
  MRTRAIN_RETURN_IF_ERROR(DecodeNonNegative(r, "epochs_done", &c->epochs_done));
  MRTRAIN_RETURN_IF_ERROR(DecodeNonNegative(r, "step", &c->state.step));
  MRTRAIN_RETURN_IF_ERROR(r->String(&c->fingerprint, "fingerprint"));
  MRTRAIN_RETURN_IF_ERROR(r->String(&c->model_type, "model_type"));
  MRTRAIN_RETURN_IF_ERROR(r->String(&c->update_rule, "update_rule"));
  MRTRAIN_RETURN_IF_ERROR(DecodeHyperparameters(r, &c->model_params));
  MRTRAIN_RETURN_IF_ERROR(DecodeDataShape(r, &c->data_shape));
  const uint64_t at = r->position();
  MRTRAIN_RETURN_IF_ERROR(r->I64(block_size, "block_size"));
  // ModelLayout::Create judges the rest, but its arithmetic needs the upper bound first.
  if (*block_size <= kMaxBlockSize) return Status::Ok();
  return r->Error("block_size at byte " + std::to_string(at) + " is " +
                  std::to_string(*block_size) + ", more than the limit of " +
                  std::to_string(kMaxBlockSize));
}

// Reads rank and dims and returns the element count, or an error when a dimension is not
// positive or the product cannot be the size of an array in a file.
Status DecodeShape(BoundedReader* r, const std::string& what, api::TensorSpec* spec,
                   uint64_t* size) {
  uint32_t rank = 0;
  MRTRAIN_RETURN_IF_ERROR(r->U32(&rank, "the rank of " + what));
  MRTRAIN_RETURN_IF_ERROR(r->CheckCount(rank, sizeof(int64_t), "dimensions of " + what));
  spec->shape.resize(rank);
  *size = 1;
  for (int64_t& d : spec->shape) {
    MRTRAIN_RETURN_IF_ERROR(r->I64(&d, "a dimension of " + what));
    if (d < 1) return r->Error(what + " has dimension " + std::to_string(d));
    const uint64_t ud = static_cast<uint64_t>(d);
    // Saturate: Floats() reports a count past kMaxFloats as not fitting.
    *size = *size > kMaxFloats / ud ? kMaxFloats + 1 : *size * ud;
  }
  return Status::Ok();
}

Status DecodeTensor(BoundedReader* r, size_t index, api::TensorSpec* spec,
                    std::vector<float>* data) {
  MRTRAIN_RETURN_IF_ERROR(r->String(&spec->name, "the name of tensor " + std::to_string(index)));
  const std::string what = "tensor " + Quoted(spec->name);
  uint8_t role = 0;
  MRTRAIN_RETURN_IF_ERROR(r->U8(&role, "the role of " + what));
  if (role != kRoleWeight && role != kRoleBias) {
    return r->Error(what + " has unknown role " + std::to_string(role));
  }
  spec->role = role == kRoleBias ? api::TensorSpec::Role::kBias : api::TensorSpec::Role::kWeight;
  uint64_t size = 0;
  MRTRAIN_RETURN_IF_ERROR(DecodeShape(r, what, spec, &size));
  return r->Floats(data, size, what);
}

Status DecodeTensors(BoundedReader* r, std::vector<api::TensorSpec>* specs,
                     std::vector<std::vector<float>>* tensors) {
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
    MRTRAIN_RETURN_IF_ERROR(DecodeTensor(r, t, &specs->back(), &tensors->back()));
  }
  return Status::Ok();
}

Status DecodeSlots(BoundedReader* r, ModelState* state) {
  uint32_t count = 0;
  MRTRAIN_RETURN_IF_ERROR(r->U32(&count, "the slot count"));
  const auto& specs = state->layout->specs();
  // num_parameters() >= 1 for any valid layout, so this bounds the count by the file size.
  const uint64_t slot_bytes = static_cast<uint64_t>(state->layout->num_parameters()) * 4;
  MRTRAIN_RETURN_IF_ERROR(r->CheckCount(count, slot_bytes, "slots"));
  state->slots.assign(count, std::vector<std::vector<float>>(specs.size()));
  for (uint32_t k = 0; k < count; ++k) {
    for (size_t t = 0; t < specs.size(); ++t) {
      const std::string what = "slot " + std::to_string(k) + " of tensor " + Quoted(specs[t].name);
      MRTRAIN_RETURN_IF_ERROR(
          r->Floats(&state->slots[k][t], static_cast<uint64_t>(specs[t].size()), what));
    }
  }
  return Status::Ok();
}

}  // namespace

Status DecodeBody(BoundedReader* r, Checkpoint* c) {
  int64_t block_size = 0;
  MRTRAIN_RETURN_IF_ERROR(DecodeHeader(r, c, &block_size));
  std::vector<api::TensorSpec> specs;
  std::vector<std::vector<float>> tensors;
  MRTRAIN_RETURN_IF_ERROR(DecodeTensors(r, &specs, &tensors));
  Result<ModelLayout> layout = ModelLayout::Create(std::move(specs), block_size);
  if (!layout.ok()) return r->Error("invalid model layout: " + layout.status().message());
  c->state.layout = std::make_shared<const ModelLayout>(std::move(layout).value());
  c->state.tensors = std::move(tensors);
  return DecodeSlots(r, &c->state);
}

}  // namespace mrtrain::runtime

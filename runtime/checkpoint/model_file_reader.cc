#include "runtime/checkpoint/model_file_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "runtime/checkpoint/atomic_file.h"

namespace mrtrain::runtime {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "ids and floats are read as their in-memory bytes, which the format defines as "
              "little-endian");

}  // namespace

Result<std::unique_ptr<ModelFileReader>> ModelFileReader::Open(const std::string& path) {
  std::unique_ptr<ModelFileReader> r(new ModelFileReader());
  r->path_ = path;
  MRTRAIN_ASSIGN_OR_RETURN(r->header_, IndexCheckpointFile(path, &r->arrays_));
  r->fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (r->fd_ < 0) return ErrnoError("cannot open", path, errno);
  if (!r->header_.state.layout->has_row_sparse()) return r;
  // Rows are looked up where they lie: the kernel pages in what the lookups touch, and those
  // clean pages of the file can be dropped again under memory pressure.
  r->map_size_ = static_cast<size_t>(r->arrays_.file_bytes);
  void* map = mmap(nullptr, r->map_size_, PROT_READ, MAP_PRIVATE, r->fd_, 0);
  if (map == MAP_FAILED) return ErrnoError("cannot map", path, errno);
  r->map_ = static_cast<const uint8_t*>(map);
  return r;
}

ModelFileReader::~ModelFileReader() {
  if (map_ != nullptr) munmap(const_cast<uint8_t*>(map_), map_size_);
  if (fd_ >= 0) close(fd_);
}

Status ModelFileReader::ReadBytes(uint64_t offset, void* out, size_t n) const {
  auto* p = static_cast<char*>(out);
  while (n > 0) {
    const ssize_t got = pread(fd_, p, n, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return ErrnoError("cannot read", path_, errno);
    if (got == 0) {
      return IOError("cannot read " + path_ + " at byte " + std::to_string(offset) +
                     ": the file shrank");
    }
    p += got;
    n -= static_cast<size_t>(got);
    offset += static_cast<uint64_t>(got);
  }
  return Status::Ok();
}

Status ModelFileReader::ReadDense(int tensor, std::vector<float>* out) const {
  out->resize(static_cast<size_t>(header_.state.layout->specs()[tensor].size()));
  return ReadBytes(arrays_.tensors[tensor].data_offset, out->data(), out->size() * sizeof(float));
}

bool ModelFileReader::FindRow(int tensor, int64_t id, float* out) const {
  const CheckpointArrays::Tensor& a = arrays_.tensors[tensor];
  const uint8_t* ids = map_ + a.ids_offset;
  // The ids are sorted (checked by Open) but not aligned: read each with memcpy.
  const auto id_at = [ids](uint64_t i) {
    int64_t v;
    std::memcpy(&v, ids + i * sizeof(int64_t), sizeof(v));
    return v;
  };
  uint64_t lo = 0, hi = a.num_rows;
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    if (id_at(mid) < id) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo == a.num_rows || id_at(lo) != id) return false;
  const size_t dim = static_cast<size_t>(header_.state.layout->specs()[tensor].row_dim());
  std::memcpy(out, map_ + a.data_offset + lo * dim * sizeof(float), dim * sizeof(float));
  return true;
}

}  // namespace mrtrain::runtime

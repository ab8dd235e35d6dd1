#include "engine/data/shard_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <vector>

#include "engine/base/crc32c.h"
#include "engine/data/shard_format.h"

namespace mrtrain::data {
namespace {

Status ErrnoError(const std::string& action, const std::string& path, int err) {
  return IOError(action + " " + path + ": " + std::strerror(err));
}

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// The body's arrays in section order (shard_format.h).
std::vector<std::string_view> Sections(const PartitionData& d) {
  auto bytes = [](const auto& v) {
    return std::string_view(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(v[0]));
  };
  if (!d.is_sparse) return {bytes(d.labels), bytes(d.dense)};
  return {bytes(d.labels), bytes(d.row_offsets), bytes(d.cols), bytes(d.values)};
}

ShardHeader HeaderFor(const ShardIdentity& id, const PartitionData& d,
                      const std::vector<std::string_view>& sections) {
  ShardHeader h;
  h.partition = id.partition;
  h.num_partitions = id.num_partitions;
  h.spec = id.spec;
  h.num_rows = d.num_rows;
  h.num_cols = d.num_cols;
  h.layout = d.is_sparse ? ShardLayout::kCsr : ShardLayout::kDense;
  h.nnz = static_cast<int64_t>(d.values.size());
  h.skipped_records = d.skipped_records;
  h.skipped_samples = d.skipped_samples;
  h.sources = d.sources;
  for (std::string_view s : sections)
    h.sections.push_back({0, static_cast<int64_t>(s.size()), Crc32c(s.data(), s.size())});
  // The offsets depend on the header's length, which does not depend on their values.
  int64_t at =
      AlignShardOffset(kShardPreambleBytes + static_cast<int64_t>(EncodeShardHeader(h).size()) + 4);
  for (ShardSection& s : h.sections) {
    s.offset = at;
    at = AlignShardOffset(at + s.bytes);
  }
  return h;
}

class FdWriter {
 public:
  FdWriter(int fd, const std::string& path) : fd_(fd), path_(path) {}

  Status Write(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoError("cannot write", path_, errno);
      bytes.remove_prefix(static_cast<size_t>(n));
      at_ += n;
    }
    return Status::Ok();
  }
  Status PadTo(int64_t offset) {
    static constexpr char kZeros[kShardAlignment] = {};
    return Write(std::string_view(kZeros, static_cast<size_t>(offset - at_)));
  }

 private:
  int fd_;
  const std::string& path_;
  int64_t at_ = 0;
};

Status WriteAll(int fd, const std::string& tmp, const ShardHeader& h,
                const std::vector<std::string_view>& sections) {
  const std::string header = EncodeShardHeader(h);
  const uint32_t version = kShardVersion;
  const uint32_t header_len = static_cast<uint32_t>(header.size());
  const uint32_t header_crc = Crc32c(header.data(), header.size());
  FdWriter w(fd, tmp);
  MRTRAIN_RETURN_IF_ERROR(w.Write(std::string_view(kShardMagic, sizeof(kShardMagic))));
  MRTRAIN_RETURN_IF_ERROR(w.Write({reinterpret_cast<const char*>(&version), 4}));
  MRTRAIN_RETURN_IF_ERROR(w.Write({reinterpret_cast<const char*>(&header_len), 4}));
  MRTRAIN_RETURN_IF_ERROR(w.Write(header));
  MRTRAIN_RETURN_IF_ERROR(w.Write({reinterpret_cast<const char*>(&header_crc), 4}));
  for (size_t i = 0; i < sections.size(); ++i) {
    MRTRAIN_RETURN_IF_ERROR(w.PadTo(h.sections[i].offset));
    MRTRAIN_RETURN_IF_ERROR(w.Write(sections[i]));
  }
  if (::fsync(fd) != 0) return ErrnoError("cannot fsync", tmp, errno);
  return Status::Ok();
}

Status Commit(const std::string& tmp, const std::string& path) {
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return ErrnoError("cannot rename " + tmp + " to", path, errno);
  }
  const std::string dir = DirectoryOf(path);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open the folder of", path, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoError("wrote " + path + " but cannot fsync its folder", dir, err);
  return Status::Ok();
}

}  // namespace

std::string ShardTempPath(const std::string& path) {
  const size_t slash = path.rfind('/');
  const size_t name_at = slash == std::string::npos ? 0 : slash + 1;
  return path.substr(0, name_at) + "." + path.substr(name_at) + ".tmp." +
         std::to_string(::getpid());
}

Status WriteShard(const std::string& path, const ShardIdentity& identity,
                  const PartitionData& data) {
  const std::vector<std::string_view> sections = Sections(data);
  const ShardHeader header = HeaderFor(identity, data, sections);
  const std::string tmp = ShardTempPath(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("cannot create", tmp, errno);
  Status status = WriteAll(fd, tmp, header, sections);
  if (::close(fd) != 0 && status.ok()) status = ErrnoError("cannot close", tmp, errno);
  if (status.ok()) status = Commit(tmp, path);
  if (!status.ok()) std::remove(tmp.c_str());
  return status;
}

}  // namespace mrtrain::data

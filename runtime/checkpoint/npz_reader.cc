#include "runtime/checkpoint/npz_reader.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

#include <zip.h>

#include "runtime/checkpoint/npy_format.h"

namespace mrtrain::runtime {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "'<f4' data are copied as they are into floats");

// Deflate cannot expand data by more than about 1032:1, so a member claiming more than that
// over its compressed size is lying, and its claim must not size an allocation.
constexpr uint64_t kMaxExpansion = 1032;
constexpr char kSuffix[] = ".npy";

struct ArchiveCloser {
  void operator()(zip_t* archive) const { zip_discard(archive); }  // read-only: nothing to save
};
struct MemberCloser {
  void operator()(zip_file_t* member) const { zip_fclose(member); }
};

Result<std::unique_ptr<zip_t, ArchiveCloser>> OpenArchive(const std::string& path, uint64_t* size) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return NotFoundError(path + ": no such file");
    return IOError("cannot stat " + path + ": " + std::strerror(errno));
  }
  *size = static_cast<uint64_t>(st.st_size);
  int code = 0;
  zip_t* archive = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code);
  if (archive != nullptr) return std::unique_ptr<zip_t, ArchiveCloser>(archive);
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  const std::string reason = zip_error_strerror(&error);
  zip_error_fini(&error);
  if (code == ZIP_ER_OPEN || code == ZIP_ER_READ) {
    return IOError("cannot read " + path + ": " + reason);
  }
  return CorruptionError(path + ": not a valid .npz archive: " + reason);
}

// Checks what the central directory says about a member before its size is trusted.
Status CheckMemberSize(const zip_stat_t& st, uint64_t archive_size, const std::string& what) {
  constexpr zip_uint64_t kNeeded =
      ZIP_STAT_NAME | ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD;
  if ((st.valid & kNeeded) != kNeeded) return CorruptionError(what + ": incomplete zip entry");
  const bool plausible = st.comp_size <= archive_size &&
                         (st.comp_method == ZIP_CM_STORE ? st.size == st.comp_size
                                                         : st.size / kMaxExpansion <= st.comp_size);
  if (plausible) return Status::Ok();
  return CorruptionError(what + ": implausible size " + std::to_string(st.size) + " for " +
                         std::to_string(st.comp_size) + " stored bytes");
}

// The member's bytes, all of them: reading on to end of file makes libzip check its CRC-32.
Result<std::vector<uint8_t>> ReadMemberBytes(zip_t* archive, zip_uint64_t index, uint64_t size,
                                             const std::string& what) {
  std::unique_ptr<zip_file_t, MemberCloser> member(zip_fopen_index(archive, index, 0));
  if (member == nullptr) return CorruptionError(what + ": " + zip_strerror(archive));
  std::vector<uint8_t> bytes(size);
  uint8_t extra = 0;
  if (zip_fread(member.get(), bytes.data(), size) != static_cast<zip_int64_t>(size) ||
      zip_fread(member.get(), &extra, 1) != 0) {
    return CorruptionError(what + ": " + zip_file_strerror(member.get()));
  }
  return bytes;
}

Result<NpyArray> ReadMember(zip_t* archive, zip_uint64_t index, uint64_t archive_size,
                            const std::string& path) {
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_stat_index(archive, index, 0, &st) != 0) {
    return CorruptionError(path + ": " + zip_strerror(archive));
  }
  const std::string name = st.name != nullptr ? st.name : "";
  const std::string what = path + ": member '" + name + "'";
  const size_t suffix = sizeof(kSuffix) - 1;
  if (name.size() <= suffix || name.compare(name.size() - suffix, suffix, kSuffix) != 0) {
    return CorruptionError(what + " is not an .npy array");
  }
  MRTRAIN_RETURN_IF_ERROR(CheckMemberSize(st, archive_size, what));
  MRTRAIN_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes,
                           ReadMemberBytes(archive, index, st.size, what));
  MRTRAIN_ASSIGN_OR_RETURN(NpyHeader header, ParseNpyHeaderF32(bytes.data(), bytes.size(), what));
  const uint64_t data_bytes = bytes.size() - header.header_size;
  if (data_bytes != header.num_elements * sizeof(float)) {
    return CorruptionError(what + ": holds " + std::to_string(data_bytes) +
                           " bytes of data but its shape needs " +
                           std::to_string(header.num_elements * sizeof(float)));
  }
  NpyArray array;
  array.name = name.substr(0, name.size() - suffix);
  array.shape = std::move(header.shape);
  array.data.resize(header.num_elements);
  std::memcpy(array.data.data(), bytes.data() + header.header_size, data_bytes);
  return array;
}

}  // namespace

Result<std::vector<NpyArray>> ReadNpz(const std::string& path) {
  uint64_t archive_size = 0;
  MRTRAIN_ASSIGN_OR_RETURN(auto archive, OpenArchive(path, &archive_size));
  const zip_int64_t count = zip_get_num_entries(archive.get(), 0);
  if (count < 0) return CorruptionError(path + ": " + zip_strerror(archive.get()));
  std::vector<NpyArray> arrays;
  for (zip_int64_t i = 0; i < count; ++i) {
    MRTRAIN_ASSIGN_OR_RETURN(NpyArray array, ReadMember(archive.get(), i, archive_size, path));
    arrays.push_back(std::move(array));
  }
  return arrays;
}

}  // namespace mrtrain::runtime

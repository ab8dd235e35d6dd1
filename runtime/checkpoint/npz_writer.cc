#include "runtime/checkpoint/npz_writer.h"

#include <cstdio>
#include <ctime>
#include <vector>

#include <zip.h>

#include "runtime/checkpoint/atomic_file.h"
#include "runtime/checkpoint/npy_format.h"

namespace mrtrain::runtime {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "tensors are stored as their in-memory bytes under the dtype '<f4'");

// 2000-01-01 00:00:00 UTC for every member, so an archive depends on the model alone and
// identical runs give identical files.
constexpr time_t kMemberTime = 946684800;

Status CheckTensors(const ModelState& state) {
  if (state.layout == nullptr) return InternalError("the state has no layout");
  const auto& specs = state.layout->specs();
  if (state.tensors.size() != specs.size()) {
    return InternalError("the state has " + std::to_string(state.tensors.size()) +
                         " tensors but its layout " + std::to_string(specs.size()));
  }
  for (size_t t = 0; t < specs.size(); ++t) {
    if (specs[t].row_sparse) {
      if (state.rows.size() != specs.size() ||
          state.rows[t].values.size() !=
              state.rows[t].ids.size() * static_cast<uint64_t>(specs[t].row_dim())) {
        return InternalError("the rows of tensor '" + specs[t].name + "' do not match its dim");
      }
      continue;
    }
    if (state.tensors[t].size() != static_cast<uint64_t>(specs[t].size())) {
      return InternalError("tensor '" + specs[t].name + "' does not match its shape");
    }
  }
  return Status::Ok();
}

// One .npy member of the archive: its name, header and data, all borrowed.
struct Member {
  std::string name;
  std::string header;
  const void* data;
  size_t bytes;
};

// The members for `state`: NAME.npy for a dense tensor; NAME.ids.npy (int64 [n]) and
// NAME.values.npy (float32 [n, dim]) for the stored rows of a row-sparse one.
Result<std::vector<Member>> MembersOf(const ModelState& state) {
  std::vector<Member> members;
  const auto& specs = state.layout->specs();
  for (size_t t = 0; t < specs.size(); ++t) {
    const std::string context = "cannot export tensor '" + specs[t].name + "'";
    if (!specs[t].row_sparse) {
      Result<std::string> header = NpyHeaderF32(specs[t].shape);
      if (!header.ok()) return header.status().WithContext(context);
      members.push_back({specs[t].name + ".npy", std::move(header).value(), state.tensors[t].data(),
                         state.tensors[t].size() * sizeof(float)});
      continue;
    }
    const StoredRows& rows = state.rows[t];
    const int64_t n = static_cast<int64_t>(rows.ids.size());
    Result<std::string> ids = NpyHeaderOf("<i8", {n});
    Result<std::string> values = NpyHeaderF32({n, specs[t].row_dim()});
    if (!ids.ok()) return ids.status().WithContext(context);
    if (!values.ok()) return values.status().WithContext(context);
    members.push_back({specs[t].name + ".ids.npy", std::move(ids).value(), rows.ids.data(),
                       rows.ids.size() * sizeof(int64_t)});
    members.push_back({specs[t].name + ".values.npy", std::move(values).value(), rows.values.data(),
                       rows.values.size() * sizeof(float)});
  }
  return members;
}

std::string ZipErrorText(int code) {
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  std::string text = zip_error_strerror(&error);
  zip_error_fini(&error);
  return text;
}

// Adds member `name` made of `header` then `data` without copying either: both are
// borrowed and must outlive zip_close().
Status AddMember(zip_t* archive, const Member& member) {
  const std::string& name = member.name;
  // libzip takes non-const pointers but only reads buffers it does not own (freep = 0).
  zip_buffer_fragment_t fragments[2] = {
      {reinterpret_cast<zip_uint8_t*>(const_cast<char*>(member.header.data())),
       member.header.size()},
      {static_cast<zip_uint8_t*>(const_cast<void*>(member.data)), member.bytes},
  };
  zip_source_t* source = zip_source_buffer_fragment(archive, fragments, 2, 0);
  if (source == nullptr) return IOError("cannot add " + name + ": " + zip_strerror(archive));
  const zip_int64_t index = zip_file_add(archive, name.c_str(), source, ZIP_FL_ENC_UTF_8);
  if (index < 0) {
    zip_source_free(source);  // still ours when zip_file_add fails
    return IOError("cannot add " + name + ": " + zip_strerror(archive));
  }
  const auto i = static_cast<zip_uint64_t>(index);
  if (zip_set_file_compression(archive, i, ZIP_CM_STORE, 0) != 0 ||
      zip_file_set_mtime(archive, i, kMemberTime, 0) != 0) {
    return IOError("cannot set up " + name + ": " + zip_strerror(archive));
  }
  return Status::Ok();
}

// Writes the archive to `tmp` and fsyncs it. Leaves removing `tmp` on failure to the caller.
Status WriteArchive(const std::string& tmp, const std::vector<Member>& members) {
  int code = 0;
  zip_t* archive = zip_open(tmp.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code);
  if (archive == nullptr) return IOError("cannot create " + tmp + ": " + ZipErrorText(code));
  for (const Member& member : members) {
    Status added = AddMember(archive, member);
    if (!added.ok()) {
      zip_discard(archive);
      return added.WithContext("cannot write " + tmp);
    }
  }
  // zip_close writes everything; on failure the archive stays open and must be discarded.
  if (zip_close(archive) != 0) {
    const std::string reason = zip_strerror(archive);
    zip_discard(archive);
    return IOError("cannot write " + tmp + ": " + reason);
  }
  return FsyncPath(tmp);
}

}  // namespace

Status WriteNpz(const std::string& path, const ModelState& state) {
  MRTRAIN_RETURN_IF_ERROR(CheckTensors(state).WithContext("cannot export " + path));
  MRTRAIN_ASSIGN_OR_RETURN(const std::vector<Member> members, MembersOf(state));
  const std::string tmp = TempPathFor(path);
  Status written = WriteArchive(tmp, members);
  if (!written.ok()) {
    std::remove(tmp.c_str());
    return written;
  }
  return CommitTempFile(tmp, path);
}

}  // namespace mrtrain::runtime

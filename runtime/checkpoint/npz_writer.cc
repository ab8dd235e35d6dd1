#include "runtime/checkpoint/npz_writer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <utility>
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

// A member whose data are `bytes` bytes at `data`, borrowed.
NpzMember InMemory(std::string name, std::string header, const void* data, size_t bytes) {
  NpzMember member{std::move(name), std::move(header), bytes, {}};
  member.read = [data](uint64_t offset, void* out, size_t n) {
    std::memcpy(out, static_cast<const char*>(data) + offset, n);
    return Status::Ok();
  };
  return member;
}

// The members for `state`: NAME.npy for a dense tensor; NAME.ids.npy (int64 [n]) and
// NAME.values.npy (float32 [n, dim]) for the stored rows of a row-sparse one.
Result<std::vector<NpzMember>> MembersOf(const ModelState& state) {
  std::vector<NpzMember> members;
  const auto& specs = state.layout->specs();
  for (size_t t = 0; t < specs.size(); ++t) {
    const std::string context = "cannot export tensor '" + specs[t].name + "'";
    if (!specs[t].row_sparse) {
      Result<std::string> header = NpyHeaderF32(specs[t].shape);
      if (!header.ok()) return header.status().WithContext(context);
      members.push_back(InMemory(specs[t].name + ".npy", std::move(header).value(),
                                 state.tensors[t].data(), state.tensors[t].size() * sizeof(float)));
      continue;
    }
    const StoredRows& rows = state.rows[t];
    const int64_t n = static_cast<int64_t>(rows.ids.size());
    Result<std::string> ids = NpyHeaderOf("<i8", {n});
    Result<std::string> values = NpyHeaderF32({n, specs[t].row_dim()});
    if (!ids.ok()) return ids.status().WithContext(context);
    if (!values.ok()) return values.status().WithContext(context);
    members.push_back(InMemory(specs[t].name + ".ids.npy", std::move(ids).value(), rows.ids.data(),
                               rows.ids.size() * sizeof(int64_t)));
    members.push_back(InMemory(specs[t].name + ".values.npy", std::move(values).value(),
                               rows.values.data(), rows.values.size() * sizeof(float)));
  }
  return members;
}

// What libzip's callback reads one member through: its header, then its data by `read`. The
// first error of `read` is kept for WriteNpzMembers to return instead of libzip's summary.
struct MemberSource {
  const NpzMember* member = nullptr;
  uint64_t position = 0;  // in header + data
  Status failed;
  zip_error_t error;
};

zip_int64_t ReadMember(MemberSource* s, void* data, zip_uint64_t len) {
  const NpzMember& m = *s->member;
  const uint64_t total = m.header.size() + m.bytes;
  const uint64_t n = std::min<uint64_t>(len, total - s->position);
  auto* out = static_cast<char*>(data);
  for (uint64_t done = 0; done < n;) {
    const uint64_t at = s->position + done;
    if (at < m.header.size()) {
      const uint64_t piece = std::min<uint64_t>(n - done, m.header.size() - at);
      std::memcpy(out + done, m.header.data() + at, piece);
      done += piece;
      continue;
    }
    Status read = m.read(at - m.header.size(), out + done, n - done);
    if (!read.ok()) {
      s->failed = read;
      zip_error_set(&s->error, ZIP_ER_READ, EIO);
      return -1;
    }
    done = n;
  }
  s->position += n;
  return static_cast<zip_int64_t>(n);
}

// A source that reports what zip_source_buffer reports (size, stored, not encrypted), so an
// archive of the same members has the same bytes however its data are fetched.
zip_int64_t MemberCallback(void* userdata, void* data, zip_uint64_t len, zip_source_cmd_t cmd) {
  auto* s = static_cast<MemberSource*>(userdata);
  switch (cmd) {
    case ZIP_SOURCE_OPEN:
      s->position = 0;
      return 0;
    case ZIP_SOURCE_READ:
      return ReadMember(s, data, len);
    case ZIP_SOURCE_CLOSE:
    case ZIP_SOURCE_FREE:
      return 0;
    case ZIP_SOURCE_STAT: {
      auto* st = static_cast<zip_stat_t*>(data);
      zip_stat_init(st);
      st->mtime = kMemberTime;
      st->size = s->member->header.size() + s->member->bytes;
      st->comp_size = st->size;
      st->comp_method = ZIP_CM_STORE;
      st->encryption_method = ZIP_EM_NONE;
      st->valid = ZIP_STAT_MTIME | ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD |
                  ZIP_STAT_ENCRYPTION_METHOD;
      return sizeof(*st);
    }
    case ZIP_SOURCE_ERROR:
      return zip_error_to_data(&s->error, data, len);
    case ZIP_SOURCE_SUPPORTS:
      return zip_source_make_command_bitmap(ZIP_SOURCE_OPEN, ZIP_SOURCE_READ, ZIP_SOURCE_CLOSE,
                                            ZIP_SOURCE_STAT, ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE, -1);
    default:
      zip_error_set(&s->error, ZIP_ER_OPNOTSUPP, 0);
      return -1;
  }
}

std::string ZipErrorText(int code) {
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  std::string text = zip_error_strerror(&error);
  zip_error_fini(&error);
  return text;
}

// Adds the member read through `source`, which must outlive zip_close().
Status AddMember(zip_t* archive, MemberSource* source) {
  const std::string& name = source->member->name;
  zip_source_t* zs = zip_source_function(archive, MemberCallback, source);
  if (zs == nullptr) return IOError("cannot add " + name + ": " + zip_strerror(archive));
  const zip_int64_t index = zip_file_add(archive, name.c_str(), zs, ZIP_FL_ENC_UTF_8);
  if (index < 0) {
    zip_source_free(zs);  // still ours when zip_file_add fails
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
Status WriteArchive(const std::string& tmp, const std::vector<NpzMember>& members) {
  std::vector<MemberSource> sources(members.size());
  for (size_t i = 0; i < members.size(); ++i) {
    sources[i].member = &members[i];
    zip_error_init(&sources[i].error);
  }
  const auto fini = [&] {
    for (MemberSource& s : sources) zip_error_fini(&s.error);
  };
  int code = 0;
  zip_t* archive = zip_open(tmp.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code);
  if (archive == nullptr) {
    fini();
    return IOError("cannot create " + tmp + ": " + ZipErrorText(code));
  }
  for (MemberSource& source : sources) {
    Status added = AddMember(archive, &source);
    if (!added.ok()) {
      zip_discard(archive);
      fini();
      return added.WithContext("cannot write " + tmp);
    }
  }
  // zip_close writes everything; on failure the archive stays open and must be discarded.
  if (zip_close(archive) != 0) {
    const std::string reason = zip_strerror(archive);
    zip_discard(archive);
    for (const MemberSource& s : sources) {
      if (!s.failed.ok()) {
        const Status failed = s.failed;
        fini();
        return failed;
      }
    }
    fini();
    return IOError("cannot write " + tmp + ": " + reason);
  }
  fini();
  return FsyncPath(tmp);
}

Status WriteMembersAtomically(const std::string& path, const std::vector<NpzMember>& members) {
  const std::string tmp = TempPathFor(path);
  Status written = WriteArchive(tmp, members);
  if (!written.ok()) {
    std::remove(tmp.c_str());
    return written;
  }
  return CommitTempFile(tmp, path);
}

}  // namespace

Status WriteNpz(const std::string& path, const ModelState& state) {
  MRTRAIN_RETURN_IF_ERROR(CheckTensors(state).WithContext("cannot export " + path));
  MRTRAIN_ASSIGN_OR_RETURN(const std::vector<NpzMember> members, MembersOf(state));
  return WriteMembersAtomically(path, members);
}

Status WriteNpzMembers(const std::string& path, const std::vector<NpzMember>& members) {
  return WriteMembersAtomically(path, members);
}

}  // namespace mrtrain::runtime

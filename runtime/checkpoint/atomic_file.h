#pragma once

#include <string>
#include <string_view>

#include "engine/base/status.h"

namespace mrtrain::runtime {

// The pieces of "write a temporary file, fsync it, rename it over the target, fsync the
// directory" that the checkpoint and the .npz writers share. After a crash at any point the
// target holds either its old content or the complete new file, never a part of it.

// "<path>.tmp.<pid>": unique per process, in the target's directory so the rename stays
// within one file system.
std::string TempPathFor(const std::string& path);

// kIOError "<action> <path>: <strerror(err)>".
Status ErrnoError(const std::string& action, const std::string& path, int err);

// Opens `path`, fsyncs it and closes it. For files written by a library that does not hand
// out its descriptor (libzip). kIOError on failure.
Status FsyncPath(const std::string& path);

// Renames `tmp` over `path`, then fsyncs the directory so the rename itself is durable.
// On a failed rename `tmp` is removed. kIOError names `path` and the OS's reason; when only
// the directory fsync fails the new file is already complete under `path`.
Status CommitTempFile(const std::string& tmp, const std::string& path);

// All of the above for a file whose bytes are at hand: writes them to TempPathFor(path), fsyncs
// it and commits it. kIOError naming the file; the temporary file is removed on failure.
Status WriteFileAtomically(const std::string& path, std::string_view bytes);

}  // namespace mrtrain::runtime

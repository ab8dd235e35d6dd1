#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/status.h"
#include "engine/data/byte_source.h"

namespace mrtrain::data {

// Reads the lines (records) of a text file that start in a byte range of it, straight from a
// buffer with memchr; no iostream. A line starts at offset 0 or right after a '\n'; it ends
// before the next '\n' or at the end of the file, so it may extend past the range's end. Lines
// are returned without "\n" or "\r\n". Not thread-safe.
//
//   file:   ...xx\nAAAA\nBBBB|BB\nCCC|C\nDD
//   range:                  [begin   end)
//   lines:                   BBBBBB, CCCC  (AAAA started before begin, DD at or after end)
class LineReader {
 public:
  static constexpr int64_t kToEnd = std::numeric_limits<int64_t>::max();

  // Opens `path` (gunzipped if .gz) to read the lines starting in [begin, end) of its
  // (decompressed) bytes, none longer than max_line_bytes (MaxLineBytes in dataset.h, a quarter
  // of max_decoded_mb). Fails like ByteSource::Open.
  static Result<std::unique_ptr<LineReader>> Open(const std::string& path, int64_t max_line_bytes,
                                                  int64_t begin = 0, int64_t end = kToEnd);

  // Sets *line (valid until the next call) and *offset (where the line starts in the file) to
  // the next line and returns true, or returns false after the last one. kInvalidArgument
  // naming the file, the line and the limit for a line longer than max_line_bytes, found before
  // the buffer passes the limit.
  Result<bool> Next(std::string_view* line, int64_t* offset);

 private:
  LineReader(std::unique_ptr<ByteSource> source, int64_t start, bool skip_first, int64_t end,
             size_t buffer_bytes, size_t max_line_bytes);

  // Moves the unread bytes to the front of the buffer and reads more after them. Returns
  // false at the end of the file.
  Result<bool> Refill();

  // Fails for the line starting at buf_offset_, which fills a buffer of max_line_bytes_.
  Status LineTooLong() const;

  std::unique_ptr<ByteSource> source_;
  int64_t end_;
  size_t max_line_bytes_;
  bool skip_first_;    // the first line read started before `begin`: drop it
  bool eof_ = false;   // the source has no more bytes
  bool done_ = false;  // Next returned false
  std::vector<char> buf_;
  size_t head_ = 0;         // first unread byte in buf_
  size_t tail_ = 0;         // one past the last byte read into buf_
  int64_t buf_offset_ = 0;  // file offset of buf_[0]
};

// The 1-based number of the line holding byte `offset` of `path`: 1 + the number of '\n'
// before it. Reads the file from its start, so call it only to report an error.
Result<int64_t> LineNumberAt(const std::string& path, int64_t offset);

}  // namespace mrtrain::data

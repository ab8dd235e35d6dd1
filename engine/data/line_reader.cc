#include "engine/data/line_reader.h"

#include <algorithm>
#include <cstring>

namespace mrtrain::data {
namespace {

constexpr size_t kChunkBytes = 1 << 20;
constexpr size_t kMinBufferBytes = 1 << 12;

// The first buffer for reading `readable` bytes: a chunk, or for less than that the smallest
// power of two that holds them, so that a small partition costs no more than it holds. Powers
// of two.
size_t FirstBufferBytes(int64_t readable) {
  size_t bytes = kMinBufferBytes;
  while (bytes < kChunkBytes && static_cast<int64_t>(bytes) < readable) bytes *= 2;
  return bytes;
}

}  // namespace

Result<std::unique_ptr<LineReader>> LineReader::Open(const std::string& path,
                                                     int64_t max_line_bytes, int64_t begin,
                                                     int64_t end) {
  // To know whether a line starts exactly at `begin`, look at the byte before it: reading from
  // begin - 1 and dropping everything up to and including the first '\n' leaves exactly the
  // lines that start at or after `begin`.
  const int64_t start = begin > 0 ? begin - 1 : 0;
  MRTRAIN_ASSIGN_OR_RETURN(auto source, ByteSource::Open(path, start));
  // A plain file's size also bounds what can be read; a gzip file's is unknown until read.
  int64_t readable = end - start;
  if (!IsGzipPath(path)) {
    MRTRAIN_ASSIGN_OR_RETURN(int64_t size, FileSize(path));
    readable = std::min(readable, size - start);
  }
  const size_t max_line = static_cast<size_t>(std::max<int64_t>(1, max_line_bytes));
  return std::unique_ptr<LineReader>(new LineReader(std::move(source), start, begin > 0, end,
                                                    std::min(FirstBufferBytes(readable), max_line),
                                                    max_line));
}

LineReader::LineReader(std::unique_ptr<ByteSource> source, int64_t start, bool skip_first,
                       int64_t end, size_t buffer_bytes, size_t max_line_bytes)
    : source_(std::move(source)),
      end_(end),
      max_line_bytes_(max_line_bytes),
      skip_first_(skip_first),
      buf_(buffer_bytes),
      buf_offset_(start) {}

Result<bool> LineReader::Next(std::string_view* line, int64_t* offset) {
  while (!done_) {
    const char* begin = buf_.data() + head_;
    const void* nl = std::memchr(begin, '\n', tail_ - head_);
    if (nl != nullptr || (eof_ && head_ < tail_)) {
      const char* stop = nl ? static_cast<const char*>(nl) : buf_.data() + tail_;
      const int64_t line_offset = buf_offset_ + static_cast<int64_t>(head_);
      head_ = stop - buf_.data() + (nl ? 1 : 0);
      if (skip_first_) {
        skip_first_ = false;
        continue;
      }
      if (line_offset >= end_) break;
      size_t len = stop - begin;
      if (len > 0 && begin[len - 1] == '\r') --len;
      *line = std::string_view(begin, len);
      *offset = line_offset;
      return true;
    }
    if (eof_ || (!skip_first_ && buf_offset_ + static_cast<int64_t>(head_) >= end_)) break;
    MRTRAIN_ASSIGN_OR_RETURN(bool more, Refill());
    if (!more) eof_ = true;
  }
  done_ = true;
  return false;
}

Result<bool> LineReader::Refill() {
  if (head_ > 0) {
    std::memmove(buf_.data(), buf_.data() + head_, tail_ - head_);
    tail_ -= head_;
    buf_offset_ += static_cast<int64_t>(head_);
    head_ = 0;
  }
  if (tail_ == buf_.size()) {
    // One line fills the buffer: grow it, up to the limit.
    if (buf_.size() >= max_line_bytes_) return LineTooLong();
    buf_.resize(std::min(buf_.size() * 2, max_line_bytes_));
  }
  MRTRAIN_ASSIGN_OR_RETURN(size_t got, source_->Read(buf_.data() + tail_, buf_.size() - tail_));
  tail_ += got;
  return got > 0;
}

Status LineReader::LineTooLong() const {
  std::string where = source_->path() + ":";
  Result<int64_t> line = LineNumberAt(source_->path(), buf_offset_);
  where += line.ok() ? std::to_string(*line) : "byte " + std::to_string(buf_offset_);
  return InvalidArgumentError(where + ": a line longer than " + std::to_string(max_line_bytes_) +
                              " bytes, the limit (a quarter of max_decoded_mb); is this a text "
                              "file?");
}

Result<int64_t> LineNumberAt(const std::string& path, int64_t offset) {
  MRTRAIN_ASSIGN_OR_RETURN(auto source, ByteSource::Open(path));
  std::vector<char> buf(FirstBufferBytes(offset));
  int64_t line = 1;
  int64_t pos = 0;
  while (pos < offset) {
    size_t want = static_cast<size_t>(std::min<int64_t>(offset - pos, buf.size()));
    MRTRAIN_ASSIGN_OR_RETURN(size_t got, source->Read(buf.data(), want));
    if (got == 0) break;
    line += std::count(buf.data(), buf.data() + got, '\n');
    pos += static_cast<int64_t>(got);
  }
  return line;
}

}  // namespace mrtrain::data

#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "engine/base/status.h"
#include "engine/tensor/param_key.h"

namespace mrtrain::shuffle {

// Writes one spill run (FORMAT.md): records of (key, values), keys ascending, equal keys kept
// in the order they are added. The file is private to the map task that writes it and is read
// back by the same process, so it is not fsynced. Not thread-safe.
class SpillRunWriter {
 public:
  // Creates `path` for a run of exactly `num_records` records. kIOError naming the file.
  static Result<std::unique_ptr<SpillRunWriter>> Create(const std::string& path,
                                                        uint64_t num_records);
  ~SpillRunWriter();  // removes the file unless Close() succeeded
  SpillRunWriter(const SpillRunWriter&) = delete;
  SpillRunWriter& operator=(const SpillRunWriter&) = delete;

  // Appends a record. REQUIRES: key >= the previous key; fewer than num_records added.
  // kIOError naming the file and offset (a full disk); the writer is then unusable.
  Status Add(ParamKey key, const float* values, uint32_t length);

  // Flushes and closes. kIOError naming the file when a write failed or the record count is
  // not the one promised; the file is removed then.
  Status Close();

  int64_t bytes_written() const { return offset_; }

 private:
  SpillRunWriter(std::string path, std::FILE* file, uint64_t num_records);
  Status Put(const void* data, size_t n);

  const std::string path_;
  std::FILE* file_;
  const uint64_t num_records_;
  uint64_t added_ = 0;
  int64_t offset_ = 0;
  bool closed_ = false;
};

// Reads a spill run written by SpillRunWriter, one record at a time, checking every record's
// checksum, that keys do not descend and that the file holds exactly the promised records.
// Every error is kCorruption (kNotFound when the file cannot be opened) naming the file and
// the byte offset of the damage. Not thread-safe.
class SpillRunReader {
 public:
  // `max_length`: the most floats a record may hold (the model's block size), so a damaged
  // length field is refused instead of allocated.
  static Result<std::unique_ptr<SpillRunReader>> Open(const std::string& path, int64_t max_length);
  ~SpillRunReader();
  SpillRunReader(const SpillRunReader&) = delete;
  SpillRunReader& operator=(const SpillRunReader&) = delete;

  // Reads the next record: true when there is one (key(), values(), length() describe it
  // until the next call), false after the last.
  Result<bool> Next();

  ParamKey key() const { return key_; }
  const float* values() const { return values_.data(); }
  int64_t length() const { return length_; }
  const std::string& path() const { return path_; }

 private:
  SpillRunReader(std::string path, std::FILE* file, int64_t max_length);
  Status ReadHeader();
  bool Get(void* data, size_t n);
  Status Corrupt(int64_t offset, const std::string& what) const;

  const std::string path_;
  std::FILE* file_;
  const int64_t max_length_;
  uint64_t num_records_ = 0;
  uint64_t read_ = 0;
  int64_t offset_ = 0;
  ParamKey key_;
  int64_t length_ = 0;
  std::vector<float> values_;
};

}  // namespace mrtrain::shuffle

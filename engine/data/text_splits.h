#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/base/status.h"

namespace mrtrain::data {

// Cuts the bytes of a list of text files, laid end to end in list order, into num_partitions
// equal global ranges [T*p/P, T*(p+1)/P), where T is the total size. A record belongs to the
// range holding its first byte, so a partition may span files and every record lands in
// exactly one partition, whatever P. Records never span files.
//
//   a.csv (10 bytes)     b.csv (6 bytes)       P = 4, T = 16
//   [0 .. 4)[4 .. 8)[8 .. 10)[0 .. 2)[2 .. 6)
//   |  p0   |  p1   |     p2         |  p3  |
//
// gzip files are not split: gzip has no random access, so reading the k-th of P ranges would
// decompress k/P of the file and loading all partitions would cost O(P) decompressions. A .gz
// file is one unit, weighted by its compressed size, owned whole by the partition whose range
// holds its first byte (as Hadoop and Spark treat gzip input). Use several .gz files, or plain
// files, to spread compressed data over partitions. Immutable; thread-safe.
class TextSplits {
 public:
  // The part of one file a partition owns: records starting in [begin, end).
  struct Piece {
    int64_t file = 0;  // index into the file list
    int64_t begin = 0;
    int64_t end = 0;  // LineReader::kToEnd for a whole gzip file
  };

  // Measures the files (kNotFound, kIOError). REQUIRES: num_partitions >= 1.
  static Result<TextSplits> Create(const std::vector<std::string>& files, int64_t num_partitions);

  // From known sizes; `whole[i]` marks files that cannot be split.
  TextSplits(const std::vector<int64_t>& sizes, const std::vector<bool>& whole,
             int64_t num_partitions);

  // The pieces of partition p, in file order. Empty when no record can start in it.
  const std::vector<Piece>& pieces(int64_t p) const { return pieces_[p]; }

  // "a.csv bytes [4, 8)", "a.csv bytes [8, 10), b.csv bytes [0, 2)", "c.csv.gz (whole)".
  std::string Describe(int64_t p, const std::vector<std::string>& files) const;

 private:
  std::vector<std::vector<Piece>> pieces_;
};

}  // namespace mrtrain::data

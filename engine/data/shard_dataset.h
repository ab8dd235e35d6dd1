#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/base/status.h"
#include "engine/data/dataset.h"

namespace mrtrain::data {

// Opens a set of shard files (`format: shards`), as `mrtrain convert` wrote them: one file per
// partition of the conversion, each holding that partition's rows exactly as the source's
// reader gave them, so training on the set gives the same model bytes as on the source.
//
// Open reads every file's header: kFailedPrecondition when two files come from different
// conversions (their specs or partition counts differ; the message names both files and both
// specs) or from another format version, when a partition is missing or held twice, or when
// spec.num_partitions differs from the conversion's (naming both counts); kCorruption naming
// the file and byte offset for a damaged header or a file of the wrong length.
//
// LoadPartition maps its file (mmap) and copies the checked arrays out, without parsing:
// kCorruption names the file and the byte range of a section whose checksum fails. The rows'
// labels are checked against spec.label_kind (the job's model may differ from the one the
// conversion knew): a label that breaks it fails naming the row's source line or record.
//
// BorrowPartition (cache: disk) maps the file and serves the rows in place, copying nothing;
// the mapping goes with the partition's last copy. It checks the body as LoadPartition does,
// with the same errors, on the first borrow of each version of a file (FileIdentity,
// shard_reader.h: a file replaced or written since is checked again before it is served), so a
// job reads each file's checksums once rather than every round. A file truncated in place while
// a task reads its mapping stops the worker with SIGBUS, as any mapped file would.
Result<std::unique_ptr<Dataset>> OpenShardDataset(const DatasetSpec& spec,
                                                  std::vector<std::string> files);

}  // namespace mrtrain::data

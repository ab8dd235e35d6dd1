#pragma once

#include "engine/base/status.h"
#include "engine/data/dataset.h"
#include "engine/data/shard_format.h"

namespace mrtrain::data {

// The fields of a dataset spec that decide its partitions' rows, as a shard records them:
// format, path, partitions, on_bad_record, header, label_column, delimiter, features,
// zero_based, labels, scale, max_decoded_mb and label_rule, in that order.
SpecFields SourceSpecFields(const DatasetSpec& spec);

// The spec of the source a shard set at `shards.path` was converted from, as recorded in its
// first file's header: what a job on the shards is a job on (JobSpec::Fingerprint), so a model
// trained on shards has the bytes of one trained on their source. Fails like Dataset::Open on
// a missing or damaged file, kCorruption for a header whose fields do not parse.
// REQUIRES: shards.format == DataFormat::kShards.
Result<DatasetSpec> ReadShardSourceSpec(const DatasetSpec& shards);

}  // namespace mrtrain::data

#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/base/status.h"
#include "engine/data/dataset.h"

namespace mrtrain::data {

// Opens a csv dataset of numbers (grammar in FORMAT.md): one record per line, fields separated by
// spec.delimiter. One column is the label (spec.label_column: a 0-based index, negative from the
// end, or a header name; an index wins over a name that looks like one); all others are features,
// in file order, giving dense rows. With spec.csv_header the first line of every file is a header,
// and all files must have the same header. Every row must have as many columns as the header, or
// without one as most of the dataset's first 100 non-blank rows (the earliest count on a tie), so
// that one malformed first row cannot make every other row a bad record. Fields may carry
// surrounding spaces or double quotes, but a quoted field cannot hold the delimiter or a newline.
// Blank lines are skipped; a UTF-8 byte order mark is ignored. Feature values are multiplied by
// spec.scale when it is set. Error messages count lines and columns from 1.
//
// Open reads the first line (or the first 100) to learn the columns: kInvalidArgument when no file
// has a line or the label column is not there.
Result<std::unique_ptr<Dataset>> OpenCsvDataset(const DatasetSpec& spec,
                                                std::vector<std::string> files);

}  // namespace mrtrain::data

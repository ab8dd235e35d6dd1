// Writes the sparse synthetic data sets of tools/data/sparse_synthetic.h:
//
//   bazel run --config=opt //tools/data:generate -- hashed --rows 1000000 --bits 20 --out train.svm
//   bazel run --config=opt //tools/data:generate -- hashed --rows 100000 --bits 20 --stream 1
//       --out test.svm
//   bazel run --config=opt //tools/data:generate -- criteo --rows 10000000 --hash-bits 24
//       --out train.tsv
//
// Issue 11's sparse set, as `bench --only sparse_accuracy --full` makes it, adds
// --weight-scale 0.8: liblinear-train -s 0 then reaches 66.6% test accuracy (66.7% in the issue);
// with the default 0.5 each id's ~40 rows carry too little signal and it stops at 61.6%.
//
// The same --seed with another --stream gives more rows of the same truth (a test set).
// Relative --out paths are relative to where `bazel run` was called.
#include <cstdio>
#include <cstdlib>
#include <string>

#include <CLI/CLI.hpp>

#include "engine/base/status.h"
#include "tools/data/sparse_synthetic.h"

namespace {

// bazel run starts the binary in its runfiles folder; the caller's folder is in this variable.
std::string OutputPath(const std::string& out) {
  const char* cwd = std::getenv("BUILD_WORKING_DIRECTORY");
  if (out.empty() || out[0] == '/' || cwd == nullptr) return out;
  return std::string(cwd) + "/" + out;
}

int Report(const mrtrain::Status& status, int64_t rows, const std::string& path) {
  if (!status.ok()) {
    std::fprintf(stderr, "generate: %s\n", status.ToString().c_str());
    return 1;
  }
  std::printf("wrote %lld rows to %s\n", static_cast<long long>(rows), path.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Sparse synthetic data with known true weights"};
  app.require_subcommand(1);
  std::string out;

  mrtrain::tools::HashedBinarySpec hashed;
  CLI::App* h = app.add_subcommand("hashed", "binary features hashed into 2^bits ids (libsvm)");
  h->add_option("--out", out, "The libsvm file to write")->required();
  h->add_option("--rows", hashed.rows, "Rows");
  h->add_option("--bits", hashed.bits, "Ids in [0, 2^bits); read with features: 2^bits");
  h->add_option("--active", hashed.active, "Mean active features per row");
  h->add_option("--weight-scale", hashed.weight_scale, "True weights in [-s, s)");
  h->add_option("--factors", hashed.factors, "Length of true factor vectors (0: no pairs)");
  h->add_option("--factor-scale", hashed.factor_scale, "True factor entries in [-s, s)");
  h->add_option("--seed", hashed.seed, "Decides the truth");
  h->add_option("--stream", hashed.stream, "Decides the rows (another one for a test set)");

  mrtrain::tools::CriteoSyntheticSpec criteo;
  CLI::App* c = app.add_subcommand("criteo", "a Criteo-style click log (format: criteo)");
  c->add_option("--out", out, "The TSV file to write")->required();
  c->add_option("--rows", criteo.rows, "Rows");
  c->add_option("--hash-bits", criteo.hash_bits, "The job's data.*.hash_bits");
  c->add_option("--weight-scale", criteo.weight_scale, "True weights in [-s, s)");
  c->add_option("--bias", criteo.bias, "True bias (sets the click rate)");
  c->add_option("--seed", criteo.seed, "Decides the truth");
  c->add_option("--stream", criteo.stream, "Decides the rows (another one for a test set)");

  CLI11_PARSE(app, argc, argv);
  const std::string path = OutputPath(out);
  if (h->parsed()) {
    return Report(mrtrain::tools::WriteHashedBinaryLibsvm(path, hashed), hashed.rows, path);
  }
  return Report(mrtrain::tools::WriteCriteoSynthetic(path, criteo), criteo.rows, path);
}

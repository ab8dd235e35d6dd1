#pragma once

#include <optional>
#include <string>

#include "engine/base/status.h"

// The sparse accuracy benchmark's baseline: Debian's liblinear-tools (`liblinear-train -s 0`,
// L2-regularised logistic regression) on the same libsvm files, run as a subprocess.
namespace mrtrain::bench {

struct LiblinearRun {
  double train_sec = 0;  // liblinear-train's wall time, parsing the file included
  double test_accuracy = 0;
};

// Whether liblinear-train and liblinear-predict are on the PATH.
bool LiblinearInstalled();

// Trains `liblinear-train -s 0` on `train` into `model` and scores `test` with
// liblinear-predict. kInternal naming the command when either fails or prints no accuracy.
Result<LiblinearRun> RunLiblinear(const std::string& train, const std::string& test,
                                  const std::string& model);

// The accuracy (a fraction) in liblinear-predict's output ("Accuracy = 66.563% (66563/100000)");
// nothing when the output has no such line.
std::optional<double> ParseLiblinearAccuracy(const std::string& output);

}  // namespace mrtrain::bench

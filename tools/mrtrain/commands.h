#pragma once

#include <CLI/CLI.hpp>

namespace mrtrain::tools {

// Each command registers its subcommand and flags on the app, and returns the exit code when
// it ran. Logic lives in the libraries they call, so tests reach it without a process.
void AddRunCommand(CLI::App& app, int* exit_code);
void AddValidateCommand(CLI::App& app, int* exit_code);
void AddPredictCommand(CLI::App& app, int* exit_code);
void AddConvertCommand(CLI::App& app, int* exit_code);
// master, worker, submit and status.
void AddClusterCommands(CLI::App& app, int* exit_code);
// launch: one process of a Slurm, Open MPI or Kubernetes launch.
void AddLaunchCommand(CLI::App& app, int* exit_code);

}  // namespace mrtrain::tools

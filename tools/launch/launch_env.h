#pragma once

#include <functional>
#include <string>

#include "engine/base/status.h"

// Which process of a cluster launch this one is, read from the variables that Slurm, Open MPI
// and a Kubernetes indexed Job set for every process they start. Pure: the environment comes in
// as a lookup, so every launcher is tested with a faked one.
namespace mrtrain::tools {

// Returns a variable's value, or nullptr when it is not set (as std::getenv).
using EnvLookup = std::function<const char*(const char*)>;

struct LaunchRole {
  std::string launcher;  // "slurm", "openmpi" or "kubernetes"
  int rank = 0;          // 0: the master (it submits the job); the others are workers
  int size = 1;          // processes in the launch, the master included
  // The host the master runs on, when the launcher tells it (Slurm's first node of the step,
  // Kubernetes' pod of index 0 under its headless service); empty otherwise.
  std::string master_host;
};

// Reads the role. The first launcher whose rank variable is set wins, in the order Slurm
// (SLURM_PROCID, SLURM_NTASKS, SLURM_STEP_NODELIST or SLURM_JOB_NODELIST), Open MPI
// (OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE), Kubernetes (JOB_COMPLETION_INDEX; the size from
// MRTRAIN_WORLD_SIZE, which the manifest sets to the Job's completions; the master's host is
// <HOSTNAME without its -INDEX suffix>-0.<MRTRAIN_K8S_SERVICE> when that service is set).
// kInvalidArgument naming the variable when one is missing or malformed (not a number, rank
// not below size, a size under 2: a launch needs a master and a worker), or when none of the
// launchers' variables is set.
Result<LaunchRole> DetectLaunchRole(const EnvLookup& env);

// The first host of a Slurm node list: "node[07-09,12],gpu1" -> "node07", "a,b" -> "a".
// kInvalidArgument for an empty or malformed list.
Result<std::string> FirstSlurmHost(const std::string& nodelist);

}  // namespace mrtrain::tools

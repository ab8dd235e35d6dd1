#include "tools/launch/launch_env.h"

#include <map>
#include <string>

#include <catch2/catch.hpp>

namespace mrtrain::tools {
namespace {

// A faked environment.
EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

TEST_CASE("a Slurm task learns its rank, size and the first node of its step", "[launch]") {
  auto role = DetectLaunchRole(Env({{"SLURM_PROCID", "2"},
                                    {"SLURM_NTASKS", "4"},
                                    {"SLURM_STEP_NODELIST", "cn[007-009,012],gpu1"},
                                    {"SLURM_JOB_NODELIST", "other[1-9]"}}));
  REQUIRE(role.ok());
  CHECK(role->launcher == "slurm");
  CHECK(role->rank == 2);
  CHECK(role->size == 4);
  CHECK(role->master_host == "cn007");
  // Without a step's list, the job's.
  role = DetectLaunchRole(
      Env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_JOB_NODELIST", "a1,b2"}}));
  REQUIRE(role.ok());
  CHECK(role->master_host == "a1");
}

TEST_CASE("Slurm node lists: first host, or a clear error", "[launch]") {
  CHECK(*FirstSlurmHost("node[01-04]") == "node01");
  CHECK(*FirstSlurmHost("node[3,5]") == "node3");
  CHECK(*FirstSlurmHost("rack2-n[10]") == "rack2-n10");
  CHECK(*FirstSlurmHost("single") == "single");
  CHECK(*FirstSlurmHost("x,y[1-2]") == "x");
  for (const char* bad : {"", "[1-2]", "node[", "node[a-b]", "node[1-2"}) {
    INFO(bad);
    auto host = FirstSlurmHost(bad);
    REQUIRE_FALSE(host.ok());
    CHECK(host.status().code() == StatusCode::kInvalidArgument);
    CHECK(host.status().message().find("Slurm node list") != std::string::npos);
  }
}

TEST_CASE("an Open MPI rank learns rank and size, not the master's host", "[launch]") {
  auto role = DetectLaunchRole(Env({{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "3"}}));
  REQUIRE(role.ok());
  CHECK(role->launcher == "openmpi");
  CHECK(role->rank == 1);
  CHECK(role->size == 3);
  CHECK(role->master_host.empty());
}

TEST_CASE("a Kubernetes indexed Job's pod finds pod 0 under its headless service", "[launch]") {
  auto role = DetectLaunchRole(Env({{"JOB_COMPLETION_INDEX", "3"},
                                    {"MRTRAIN_WORLD_SIZE", "5"},
                                    {"HOSTNAME", "train-fmnist-3"},
                                    {"MRTRAIN_K8S_SERVICE", "train-svc"}}));
  REQUIRE(role.ok());
  CHECK(role->launcher == "kubernetes");
  CHECK(role->rank == 3);
  CHECK(role->master_host == "train-fmnist-0.train-svc");
  auto bad = DetectLaunchRole(Env({{"JOB_COMPLETION_INDEX", "3"},
                                   {"MRTRAIN_WORLD_SIZE", "5"},
                                   {"HOSTNAME", "train-fmnist-x7"},
                                   {"MRTRAIN_K8S_SERVICE", "train-svc"}}));
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("does not end with -$JOB_COMPLETION_INDEX (-3)") !=
        std::string::npos);
}

TEST_CASE("a missing or malformed launch variable is named", "[launch]") {
  auto expect_error = [](std::map<std::string, std::string> vars, const std::string& text) {
    auto role = DetectLaunchRole(Env(std::move(vars)));
    REQUIRE_FALSE(role.ok());
    CHECK(role.status().code() == StatusCode::kInvalidArgument);
    INFO(role.status().message());
    CHECK(role.status().message().find(text) != std::string::npos);
  };
  expect_error({}, "no launcher found");
  expect_error({{"OMPI_COMM_WORLD_RANK", "1"}}, "$OMPI_COMM_WORLD_SIZE is not");
  expect_error({{"OMPI_COMM_WORLD_RANK", "1x"}, {"OMPI_COMM_WORLD_SIZE", "3"}},
               "$OMPI_COMM_WORLD_RANK is \"1x\"; expected a whole number");
  expect_error({{"OMPI_COMM_WORLD_RANK", "3"}, {"OMPI_COMM_WORLD_SIZE", "3"}},
               "is 3, not below $OMPI_COMM_WORLD_SIZE (3)");
  expect_error({{"OMPI_COMM_WORLD_RANK", "0"}, {"OMPI_COMM_WORLD_SIZE", "1"}},
               "a launch needs 2 or more processes");
  expect_error({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}}, "$SLURM_JOB_NODELIST");
  expect_error({{"JOB_COMPLETION_INDEX", "0"}}, "$MRTRAIN_WORLD_SIZE is not");
}

}  // namespace
}  // namespace mrtrain::tools

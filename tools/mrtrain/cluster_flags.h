#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "engine/base/status.h"
#include "runtime/transport/tcp_transport.h"

// Flags and environment every cluster command shares: the cluster secret and the master's
// address.
namespace mrtrain::tools {

// The variable the secret may come in when there is no --secret-file.
inline constexpr char kSecretEnv[] = "MRTRAIN_SECRET";
// The master's port when MASTER_ADDR comes without MASTER_PORT.
inline constexpr int kDefaultMasterPort = 7070;

struct ClusterFlags {
  std::string secret_file;
  bool insecure = false;
  int64_t max_pending_connections = runtime::kDefaultMaxPendingConnections;
};
void AddClusterFlags(CLI::App* cmd, ClusterFlags* flags);
// The flags of commands that listen (master, worker): --max-pending-connections.
void AddListenFlags(CLI::App* cmd, ClusterFlags* flags);

// A TCP transport with the handshake the flags ask for: the secret from --secret-file or
// $MRTRAIN_SECRET; without either it refuses to start unless --insecure was given.
Result<std::unique_ptr<runtime::Transport>> MakeClusterTransport(const ClusterFlags& flags);

// `flag` when set, else $MASTER_ADDR with $MASTER_PORT (default kDefaultMasterPort), the
// variables torchrun, Slurm scripts and Kubernetes operators already set. kInvalidArgument
// when neither is there.
Result<std::string> MasterAddress(const std::string& flag);

// True for "127.x.x.x:port", "localhost:port" and "[::1]:port".
bool IsLoopback(const std::string& address);

}  // namespace mrtrain::tools

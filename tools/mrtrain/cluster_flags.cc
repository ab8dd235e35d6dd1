#include "tools/mrtrain/cluster_flags.h"

#include <cstdlib>
#include <string>

#include "runtime/protocol/handshake.h"

namespace mrtrain::tools {

void AddClusterFlags(CLI::App* cmd, ClusterFlags* flags) {
  cmd->add_option("--secret-file", flags->secret_file,
                  std::string("File holding the cluster secret (chmod 600); else $") + kSecretEnv);
  cmd->add_flag("--insecure", flags->insecure,
                "Run without a cluster secret (only the protocol version is checked)");
}

void AddListenFlags(CLI::App* cmd, ClusterFlags* flags) {
  cmd->add_option("--max-pending-connections", flags->max_pending_connections,
                  "Connections still in their handshake at most (default " +
                      std::to_string(runtime::kDefaultMaxPendingConnections) +
                      "; each costs under 8 KiB); more are closed at once")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
}

Result<std::unique_ptr<runtime::Transport>> MakeClusterTransport(const ClusterFlags& flags) {
  runtime::TcpOptions options;
  options.max_pending_connections = static_cast<size_t>(flags.max_pending_connections);
  auto secret = runtime::LoadClusterSecret(flags.secret_file, kSecretEnv);
  if (secret.ok()) {
    options.handshake.secret = std::move(*secret);
  } else if (secret.status().code() == StatusCode::kNotFound && flags.insecure) {
    options.handshake.insecure = true;
  } else if (secret.status().code() == StatusCode::kNotFound) {
    return InvalidArgumentError(std::string("no cluster secret: give --secret-file FILE or set $") +
                                kSecretEnv + " (the same on every node), or --insecure");
  } else {
    return secret.status();
  }
  return runtime::MakeTcpTransport(options);
}

Result<std::string> MasterAddress(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* host = std::getenv("MASTER_ADDR");
  if (!host || !*host) {
    return InvalidArgumentError("no master: give --master HOST:PORT or set MASTER_ADDR");
  }
  const char* port = std::getenv("MASTER_PORT");
  return std::string(host) + ":" +
         (port && *port ? std::string(port) : std::to_string(kDefaultMasterPort));
}

bool IsLoopback(const std::string& address) {
  return address.rfind("127.", 0) == 0 || address.rfind("localhost:", 0) == 0 ||
         address.rfind("[::1]:", 0) == 0;
}

}  // namespace mrtrain::tools

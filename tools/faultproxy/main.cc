// mrtrain-faultproxy: a TCP proxy that injects network faults, for tests driven from a shell or a
// harness. Prints "listening on ADDR" once ready, takes control lines on stdin (see
// control_command.h) and runs until SIGINT or SIGTERM.
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>

#include "engine/base/log.h"
#include "tools/faultproxy/control_command.h"
#include "tools/faultproxy/fault_proxy.h"

namespace {

constexpr int kControlPollMs = 100;

// Reads control lines from stdin until it closes or `stop` is set, answering each on stdout.
// Polls so that the caller can join it within kControlPollMs of setting `stop`.
void ServeControlLines(mrtrain::tools::FaultProxy* proxy, const std::atomic<bool>* stop) {
  std::string pending;
  char buf[4096];
  while (!*stop) {
    pollfd in{STDIN_FILENO, POLLIN, 0};
    int ready = poll(&in, 1, kControlPollMs);
    if (ready <= 0) continue;  // timeout, or EINTR
    ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
    if (n <= 0) return;  // stdin closed: keep proxying, stop listening for commands
    pending.append(buf, static_cast<size_t>(n));
    for (size_t eol; (eol = pending.find('\n')) != std::string::npos;) {
      std::string line = pending.substr(0, eol);
      pending.erase(0, eol + 1);
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      mrtrain::Result<std::string> reply = mrtrain::tools::ApplyControlLine(line, proxy);
      if (reply.ok()) {
        std::printf("%s\n", reply->c_str());
      } else {
        std::printf("error: %s\n", reply.status().message().c_str());
      }
      std::fflush(stdout);
    }
  }
}

struct Flags {
  std::string listen = "127.0.0.1:0";
  std::string target;
  std::string mode = "pass";
  std::string direction = "both";
  uint64_t delay_ms = 0;
  uint64_t after_bytes = 0;
  uint64_t frame = 0;
  std::string log_level = "info";
};

// The number --mode takes, from the flag that carries it for that mode.
std::optional<uint64_t> ModeNumber(const CLI::App& app, const Flags& flags) {
  if (flags.mode == "delay" && app.count("--delay-ms") > 0) return flags.delay_ms;
  if (flags.mode == "drop") return flags.after_bytes;
  if ((flags.mode == "duplicate" || flags.mode == "reorder") && app.count("--frame") > 0) {
    return flags.frame;
  }
  return std::nullopt;
}

int Run(const CLI::App& app, const Flags& flags) {
  mrtrain::SetLogLevel(flags.log_level);
  if (flags.mode == "delay" && app.count("--delay-ms") == 0) {
    std::fprintf(stderr, "mrtrain-faultproxy: --mode delay needs --delay-ms\n");
    return 2;
  }
  auto mode = mrtrain::tools::ModeFromName(flags.mode, ModeNumber(app, flags));
  auto direction = mrtrain::tools::DirectionFromName(flags.direction);
  for (const mrtrain::Status& status : {mode.status(), direction.status()}) {
    if (status.ok()) continue;
    std::fprintf(stderr, "mrtrain-faultproxy: %s\n", status.message().c_str());
    return 2;
  }
  // Block the stop signals before any thread starts, so every thread inherits the mask and only
  // sigwait() below takes them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  mrtrain::tools::FaultProxy proxy(flags.target);
  proxy.SetMode(*mode, *direction);
  mrtrain::Result<std::string> address = proxy.Start(flags.listen);
  if (!address.ok()) {
    std::fprintf(stderr, "mrtrain-faultproxy: %s\n", address.status().ToString().c_str());
    return 1;
  }
  std::printf("listening on %s\n", address->c_str());
  std::fflush(stdout);

  std::atomic<bool> stop{false};
  std::thread control(ServeControlLines, &proxy, &stop);
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  stop = true;
  control.join();
  proxy.Stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mrtrain-faultproxy: a TCP proxy that injects network faults, for tests"};
  Flags flags;
  app.add_option("--listen", flags.listen, "host:port to listen on; port 0 lets the OS pick")
      ->capture_default_str();
  app.add_option("--target", flags.target, "host:port to forward every connection to")->required();
  app.add_option("--mode", flags.mode, "the fault to start with")
      ->check(CLI::IsMember({"pass", "delay", "blackhole", "drop", "duplicate", "reorder"}))
      ->capture_default_str();
  app.add_option("--direction", flags.direction, "which stream --mode applies to")
      ->check(CLI::IsMember({"both", "c2s", "s2c"}))
      ->capture_default_str();
  app.add_option("--delay-ms", flags.delay_ms, "delay: milliseconds added to each chunk");
  app.add_option("--after-bytes", flags.after_bytes, "drop: bytes forwarded before the reset");
  app.add_option("--frame", flags.frame,
                 "duplicate, reorder: only this frame (pair), counted from 0; default all");
  app.add_option("--log-level", flags.log_level, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->capture_default_str();
  app.footer(
      "Control lines on stdin, each answered on stdout:\n"
      "  mode NAME [N] [both|c2s|s2c]   e.g. mode blackhole, mode delay 200 s2c, mode drop 30\n"
      "  cut                            reset every open connection\n"
      "  stats                          print the counters");
  try {
    app.parse(argc, argv);
    return Run(app, flags);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mrtrain-faultproxy: %s\n", e.what());
    return 1;
  }
}

#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

// Tests that start real binaries: a child process with its output in a file, bounded waits.
namespace mrtrain::testing {

class ChildProcess {
 public:
  using Clock = std::chrono::steady_clock;
  // The wait status and how long the exit took from the start of the wait.
  using Exit = std::pair<int, Clock::duration>;

  // Starts argv[0] (a path) with `argv`, stdout and stderr to the file `log`, and the variables
  // `env` ("NAME=value") added to this process's environment.
  ChildProcess(std::vector<std::string> argv, const std::string& log,
               const std::vector<std::string>& env = {});
  // Kills (SIGKILL) and reaps the child if it still runs.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Sends `signo` and waits up to 10 s for the exit; nullopt if it did not exit.
  std::optional<Exit> SignalAndWait(int signo);
  // Waits up to `bound` for the child to exit by itself; nullopt if it did not.
  std::optional<Exit> WaitForExit(Clock::duration bound);
  void Kill();

 private:
  pid_t pid_ = -1;
};

// Waits up to `bound` for `text` to appear in the file at `path`.
bool WaitForText(const std::string& path, const std::string& text,
                 std::chrono::seconds bound = std::chrono::seconds(30));

// A loopback port nobody listens on (bound, then released).
int FreeLoopbackPort();

}  // namespace mrtrain::testing

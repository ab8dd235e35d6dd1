#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/base/status.h"

namespace mrtrain::tools {

// While alive, catches SIGINT and SIGTERM and only records which one arrived, so the process
// does not die with its children still running: the caller's wait loops notice and stop the
// children themselves. The handler stores into a lock-free atomic and does nothing else
// (async-signal-safe). Handlers use SA_RESTART, so no other code sees EINTR because of them.
//
// Usage in a parent such as `mrtrain run --workers N`:
//
//   ScopedSignalForwarding forwarding;  // first, so it outlives the group
//   ProcessGroup group(&forwarding);
//   ... Spawn, WaitForFile ...           // return kAborted soon after Ctrl-C
//   while (forwarding.received_signal() == 0 && !group.Poll(master)) { ... bounded work ... }
//   Status stopped = group.StopAll(grace);
//   if (int sig = forwarding.received_signal()) return 128 + sig;  // exit as a shell would
//
// Declared before the group, the forwarding is destroyed after it, so a second Ctrl-C during
// ~ProcessGroup cannot kill the parent before its children are reaped.
//
// Signal dispositions are process-wide, so at most one instance may exist at a time (checked).
// The destructor restores the handlers that were installed before. received_signal() is
// thread-safe; construction and destruction are not (make them on the main thread).
class ScopedSignalForwarding {
 public:
  ScopedSignalForwarding();
  ~ScopedSignalForwarding();
  ScopedSignalForwarding(const ScopedSignalForwarding&) = delete;
  ScopedSignalForwarding& operator=(const ScopedSignalForwarding&) = delete;

  // 0 until SIGINT or SIGTERM arrives after construction, then the latest such signal number.
  int received_signal() const;

 private:
  // The actions installed before, restored by the destructor.
  struct sigaction previous_int_;
  struct sigaction previous_term_;
};

// Starts child processes and owns them until they are reaped: the destructor stops every child
// still running (StopAll) so none outlives the group, and every one it started is reaped, so
// none is left a zombie. Every wait is bounded by a timeout.
//
// Children share the parent's process group (a terminal's Ctrl-C reaches them too) and get
// PR_SET_PDEATHSIG(SIGTERM), so they die if the parent dies without running its destructors.
// Only the children themselves are signalled, not processes they start in turn.
//
// Exit codes: a child that exits returns its status (0..255); a child killed by a signal
// returns 128 + the signal number, as a shell reports it. Describe() tells the two apart
// ("exited with status 137" vs "killed by signal 9 (Killed)").
//
// REQUIRES, process-wide: SIGCHLD is not ignored and nothing else waits for these children
// (waitpid(-1, ...)), or their exit status would be lost; Spawn checks the first.
//
// Thread-compatible: one thread at a time may call its methods (even Poll reaps and so
// mutates). Spawn must run on a thread that outlives the children, such as the main thread:
// the kernel sends the death signal when the thread that forked exits, not the process.
class ProcessGroup {
 public:
  // `interrupt`, when not null, makes Wait and WaitForFile return kAborted once it has
  // received a signal. It is borrowed and must outlive the group.
  explicit ProcessGroup(const ScopedSignalForwarding* interrupt = nullptr);
  // StopAll(kDestructorGrace); a failure is logged.
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  static constexpr std::chrono::milliseconds kDestructorGrace{3000};

  // Starts argv[0] (a path: PATH is not searched) with arguments argv, the parent's
  // environment plus `extra_env` ("KEY=VALUE", overriding an inherited KEY), and stdout and
  // stderr appended to `log_path` (created with mode 0644) or, when it is empty, inherited.
  // Stdin and file descriptors without FD_CLOEXEC are inherited.
  // Fails with kInvalidArgument for an empty argv or an extra_env entry without '=',
  // kFailedPrecondition when SIGCHLD is ignored, kIOError when the log cannot be opened, and
  // kIOError naming argv[0] when fork or exec fails (the half-started child is reaped).
  Result<pid_t> Spawn(const std::vector<std::string>& argv,
                      const std::vector<std::string>& extra_env, const std::string& log_path);

  // Polls every few milliseconds until `path` exists and is non-empty, and returns its
  // content. The child must create the file atomically (write a temporary file, then rename
  // it), or a partial write may be returned. Fails with
  //   kUnavailable when child `must_stay_alive` exits before the file appears: the message
  //     names the child, its exit status or signal and the last lines of its log, if any;
  //   kDeadlineExceeded after `timeout`;
  //   kAborted once the interrupt received a signal.
  // REQUIRES: must_stay_alive came from Spawn on this group.
  Result<std::string> WaitForFile(const std::string& path, std::chrono::milliseconds timeout,
                                  pid_t must_stay_alive);

  // The child's exit code if it has exited (reaping it), nullopt while it runs. Repeated calls
  // after the exit return the same code. REQUIRES: pid came from Spawn on this group.
  std::optional<int> Poll(pid_t pid);

  // Waits up to `timeout` for the child to exit and returns its exit code. Fails with
  // kDeadlineExceeded (the child keeps running) or kAborted once the interrupt received a
  // signal. REQUIRES: pid came from Spawn on this group.
  Result<int> Wait(pid_t pid, std::chrono::milliseconds timeout);

  // Sends SIGTERM to every child still running, waits up to `grace` for them to exit, then
  // sends SIGKILL to the rest and reaps them. Children that need SIGKILL are logged as
  // warnings. Fails with kIOError if a signal cannot be sent, or kDeadlineExceeded if a child
  // has not exited a few seconds after SIGKILL (stuck in the kernel); it then stays in the
  // group and a later call retries. Does not watch the interrupt. Calling it again is cheap.
  Status StopAll(std::chrono::milliseconds grace);

  // "pid 42 (/bin/sh -c exit 3) exited with status 3", "... killed by signal 9 (Killed)" or
  // "... is running", as last seen by Poll, Wait, WaitForFile or StopAll.
  // REQUIRES: pid came from Spawn on this group.
  std::string Describe(pid_t pid) const;

 private:
  struct Child {
    std::vector<std::string> argv;
    std::string log_path;
    std::optional<int> wait_status;  // as from waitpid(); set once reaped
  };

  Child& Find(pid_t pid);
  const Child& Find(pid_t pid) const;
  // Reaps the child if it has exited; returns whether it has.
  bool Reap(pid_t pid, Child& child);
  // Reaps what has exited; returns whether every child has.
  bool ReapAll();
  // Sends `signo` to every child not yet reaped.
  Status SignalLive(int signo);
  // Polls ReapAll until it succeeds or `timeout` passes; returns whether it succeeded.
  bool WaitAll(std::chrono::milliseconds timeout);
  // kAborted when the interrupt has received a signal, ok otherwise.
  Status CheckInterrupt() const;

  // Constant after construction.
  const ScopedSignalForwarding* const interrupt_;

  // Every child spawned, reaped ones included, so their exit codes can still be asked for.
  // A reaped pid is never signalled again: the OS may have given it to another process.
  std::map<pid_t, Child> children_;
};

}  // namespace mrtrain::tools

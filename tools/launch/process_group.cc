#include "tools/launch/process_group.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <fstream>
#include <iterator>
#include <thread>
#include <utility>

#include "engine/base/check.h"
#include "engine/base/log.h"

namespace mrtrain::tools {
namespace {

using Clock = std::chrono::steady_clock;

// How often wait loops look at children and files: short next to the waits callers ask for
// (hundreds of milliseconds and up), long enough to cost nothing.
constexpr std::chrono::milliseconds kPollInterval{5};
// How long StopAll waits for children to go after SIGKILL, which cannot be caught: only a
// process stuck in the kernel (uninterruptible sleep) takes longer.
constexpr std::chrono::milliseconds kKillTimeout{3000};
// How much of a child's log an error quotes: enough for the error it died of.
constexpr size_t kLogTailLines = 10;
constexpr std::streamoff kLogTailBytes = 4096;
// Command lines in messages are cut here; the pid identifies the child anyway.
constexpr size_t kMaxLabelChars = 80;

// Written by the signal handler, so it must be lock-free to be async-signal-safe.
std::atomic<int> g_received_signal{0};
static_assert(std::atomic<int>::is_always_lock_free);
std::atomic<bool> g_forwarding_installed{false};

void RecordSignal(int signo) { g_received_signal.store(signo); }

std::string Millis(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

std::string SignalName(int signo) {
  const char* description = sigdescr_np(signo);  // thread-safe, unlike strsignal()
  return "signal " + std::to_string(signo) + " (" + (description ? description : "unknown") + ")";
}

// We never wait with WUNTRACED, so a status is either an exit or a death by signal.
int ExitCode(int wait_status) {
  return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
}

std::string DescribeWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) return "exited with status " + std::to_string(ExitCode(wait_status));
  std::string text = "killed by " + SignalName(WTERMSIG(wait_status));
  if (WCOREDUMP(wait_status)) text += ", core dumped";
  return text;
}

// "pid 42 (/bin/sh -c exit 3)".
std::string Label(pid_t pid, const std::vector<std::string>& argv) {
  std::string command;
  for (const std::string& arg : argv) command += (command.empty() ? "" : " ") + arg;
  if (command.size() > kMaxLabelChars) command = command.substr(0, kMaxLabelChars - 3) + "...";
  return "pid " + std::to_string(pid) + " (" + command + ")";
}

// The whole file, or nullopt while it is missing or empty.
std::optional<std::string> ReadNonEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (content.empty()) return std::nullopt;
  return content;
}

// The last kLogTailLines lines of a log, read from at most its last kLogTailBytes.
std::string LogTail(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  const std::streamoff size = in ? std::streamoff(in.tellg()) : 0;
  const std::streamoff start = std::max<std::streamoff>(0, size - kLogTailBytes);
  in.seekg(start);
  std::deque<std::string> lines;
  std::string line;
  if (start > 0) std::getline(in, line);  // skip the cut first line
  while (std::getline(in, line)) {
    lines.push_back(line);
    if (lines.size() > kLogTailLines) lines.pop_front();
  }
  std::string tail;
  for (const std::string& l : lines) tail += "\n  " + l;
  return tail.empty() ? " (empty)" : tail;
}

// Closes the descriptor it holds when destroyed.
class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() { Reset(); }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;

  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// The parent's environment with extra_env ("KEY=VALUE") replacing entries of the same KEY.
std::vector<std::string> ChildEnvironment(const std::vector<std::string>& extra_env) {
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string inherited(*entry);
    const std::string key = inherited.substr(0, inherited.find('=') + 1);  // "KEY="
    const bool replaced = std::any_of(extra_env.begin(), extra_env.end(), [&](const auto& e) {
      return e.compare(0, key.size(), key) == 0;
    });
    if (!replaced) env.push_back(inherited);
  }
  env.insert(env.end(), extra_env.begin(), extra_env.end());
  return env;
}

// execve() wants null-terminated arrays of char*; they point into `strings`.
std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (std::string& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

// Everything the child needs between fork and exec, prepared by the parent: after fork in a
// multi-threaded process the child may only make async-signal-safe calls (no allocation).
struct ChildPlan {
  pid_t parent;
  char** argv;
  char** envp;
  int log_fd;     // -1: inherit stdout and stderr
  int report_fd;  // write end of a close-on-exec pipe: EOF in the parent means exec worked
};

// What the child reports through ChildPlan::report_fd when it cannot exec.
enum ChildStep : int { kDeathSignal, kRedirect, kExec };
const char* const kChildStepNames[] = {"prctl(PR_SET_PDEATHSIG)", "redirect output to the log",
                                       "execve"};
struct ChildFailure {
  int step;
  int error;
};

[[noreturn]] void ReportAndExit(const ChildPlan& plan, ChildStep step) {
  const ChildFailure failure{step, errno};
  // If the parent's end is gone there is no one left to tell.
  [[maybe_unused]] const ssize_t written = write(plan.report_fd, &failure, sizeof failure);
  _exit(127);
}

// The child starts with the parent's handlers and every signal blocked (see ForkExec). The
// handlers go back to the default before signals are unblocked, so a signal arriving before
// exec cannot run the parent's code (ScopedSignalForwarding's, say) in the child. Ignored
// signals stay ignored, as exec would leave them, except SIGINT and SIGTERM: StopAll and the
// death signal rely on SIGTERM ending the child.
void ResetSignals() {
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  sigemptyset(&default_action.sa_mask);
  for (int signo = 1; signo < NSIG; ++signo) {
    struct sigaction current {};
    if (sigaction(signo, nullptr, &current) != 0) continue;  // a number libc reserves
    const bool ignored = !(current.sa_flags & SA_SIGINFO) && current.sa_handler == SIG_IGN;
    if (!ignored || signo == SIGINT || signo == SIGTERM) sigaction(signo, &default_action, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

[[noreturn]] void RunChild(const ChildPlan& plan) {
  if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) ReportAndExit(plan, kDeathSignal);
  // A parent that died before prctl() sends no signal, and the child now has a new parent.
  if (getppid() != plan.parent) _exit(128 + SIGTERM);  // as if the death signal had come
  ResetSignals();
  if (plan.log_fd >= 0 &&
      (dup2(plan.log_fd, STDOUT_FILENO) < 0 || dup2(plan.log_fd, STDERR_FILENO) < 0)) {
    ReportAndExit(plan, kRedirect);
  }
  execve(plan.argv[0], plan.argv, plan.envp);
  ReportAndExit(plan, kExec);
}

// Forks and execs plan.argv, returning the child's pid once exec has succeeded.
Result<pid_t> ForkExec(ChildPlan plan) {
  const std::string program = plan.argv[0];
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) {
    const int error = errno;
    return IOError("pipe for " + program + ": " + strerror(error));
  }
  ScopedFd report_read(report[0]);
  ScopedFd report_write(report[1]);
  plan.report_fd = report_write.get();
  plan.parent = getpid();
  // Signals stay blocked in the child until RunChild has reset the inherited handlers.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  const pid_t pid = fork();
  if (pid == 0) RunChild(plan);
  const int fork_error = errno;
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (pid < 0) return IOError("fork for " + program + ": " + strerror(fork_error));
  report_write.Reset();  // else the read below would never see EOF
  ChildFailure failure{};
  ssize_t n;
  do {
    n = read(report_read.get(), &failure, sizeof failure);
  } while (n < 0 && errno == EINTR);
  if (n != sizeof failure) return pid;  // EOF: exec closed the pipe
  // The child is exiting right after its report, so this wait is short.
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  return IOError("cannot start " + program + ": " + kChildStepNames[failure.step] + ": " +
                 strerror(failure.error));
}

// With SIGCHLD ignored the kernel reaps children itself and waitpid() loses their status.
Status CheckChildrenReapable() {
  struct sigaction current {};
  sigaction(SIGCHLD, nullptr, &current);
  if (current.sa_handler == SIG_IGN || (current.sa_flags & SA_NOCLDWAIT)) {
    return FailedPreconditionError(
        "SIGCHLD is ignored, so child processes could not be waited for");
  }
  return Status::Ok();
}

}  // namespace

ScopedSignalForwarding::ScopedSignalForwarding() {
  MRTRAIN_CHECK(!g_forwarding_installed.exchange(true));  // handlers are process-wide
  g_received_signal.store(0);
  struct sigaction action {};
  action.sa_handler = RecordSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  // sigaction() fails only for invalid signal numbers.
  const int int_result = sigaction(SIGINT, &action, &previous_int_);
  const int term_result = sigaction(SIGTERM, &action, &previous_term_);
  MRTRAIN_CHECK(int_result == 0 && term_result == 0);
}

ScopedSignalForwarding::~ScopedSignalForwarding() {
  sigaction(SIGINT, &previous_int_, nullptr);
  sigaction(SIGTERM, &previous_term_, nullptr);
  g_forwarding_installed.store(false);
}

int ScopedSignalForwarding::received_signal() const { return g_received_signal.load(); }

ProcessGroup::ProcessGroup(const ScopedSignalForwarding* interrupt) : interrupt_(interrupt) {}

ProcessGroup::~ProcessGroup() {
  Status status = StopAll(kDestructorGrace);
  if (!status.ok()) Logger("launch")->warn("stopping child processes: {}", status.ToString());
}

Result<pid_t> ProcessGroup::Spawn(const std::vector<std::string>& argv,
                                  const std::vector<std::string>& extra_env,
                                  const std::string& log_path) {
  if (argv.empty()) return InvalidArgumentError("cannot start a process: empty argv");
  for (const std::string& entry : extra_env) {
    if (entry.find('=') == std::string::npos || entry[0] == '=') {
      return InvalidArgumentError("cannot start " + argv[0] + ": environment entry '" + entry +
                                  "' is not KEY=VALUE");
    }
  }
  MRTRAIN_RETURN_IF_ERROR(CheckChildrenReapable());
  // Close-on-exec: the child gets it only through dup2() onto stdout and stderr.
  ScopedFd log(log_path.empty()
                   ? -1
                   : open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!log_path.empty() && log.get() < 0) {
    const int error = errno;
    return IOError("cannot open log " + log_path + " for " + argv[0] + ": " + strerror(error));
  }
  std::vector<std::string> args = argv;
  std::vector<std::string> env = ChildEnvironment(extra_env);
  std::vector<char*> arg_pointers = CStrings(args);
  std::vector<char*> env_pointers = CStrings(env);
  ChildPlan plan{};
  plan.argv = arg_pointers.data();
  plan.envp = env_pointers.data();
  plan.log_fd = log.get();
  MRTRAIN_ASSIGN_OR_RETURN(const pid_t pid, ForkExec(plan));
  children_[pid] = Child{argv, log_path, std::nullopt};
  return pid;
}

Result<std::string> ProcessGroup::WaitForFile(const std::string& path,
                                              std::chrono::milliseconds timeout,
                                              pid_t must_stay_alive) {
  Child& child = Find(must_stay_alive);
  const auto deadline = Clock::now() + timeout;
  while (true) {
    // The child before the file: one that writes the file and then exits still succeeds.
    const bool exited = Reap(must_stay_alive, child);
    if (std::optional<std::string> content = ReadNonEmpty(path)) return *std::move(content);
    if (exited) {
      std::string message = Describe(must_stay_alive) + " before writing " + path;
      if (!child.log_path.empty())
        message += "; last lines of " + child.log_path + ":" + LogTail(child.log_path);
      return Status(StatusCode::kUnavailable, message);
    }
    MRTRAIN_RETURN_IF_ERROR(CheckInterrupt());
    if (Clock::now() >= deadline) {
      return Status(StatusCode::kDeadlineExceeded, path + " did not appear within " +
                                                       Millis(timeout) + " while " +
                                                       Describe(must_stay_alive));
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

std::optional<int> ProcessGroup::Poll(pid_t pid) {
  Child& child = Find(pid);
  if (!Reap(pid, child)) return std::nullopt;
  return ExitCode(*child.wait_status);
}

Result<int> ProcessGroup::Wait(pid_t pid, std::chrono::milliseconds timeout) {
  Child& child = Find(pid);
  const auto deadline = Clock::now() + timeout;
  while (!Reap(pid, child)) {
    MRTRAIN_RETURN_IF_ERROR(CheckInterrupt());
    if (Clock::now() >= deadline) {
      return Status(StatusCode::kDeadlineExceeded,
                    Describe(pid) + " after waiting " + Millis(timeout) + " for it to exit");
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  return ExitCode(*child.wait_status);
}

Status ProcessGroup::StopAll(std::chrono::milliseconds grace) {
  Status status = SignalLive(SIGTERM);
  if (WaitAll(grace)) return status;
  for (const auto& [pid, child] : children_) {
    if (child.wait_status) continue;
    Logger("launch")->warn("{} still running {} after SIGTERM; sending SIGKILL",
                           Label(pid, child.argv), Millis(grace));
  }
  Status killed = SignalLive(SIGKILL);
  if (status.ok()) status = killed;
  if (WaitAll(kKillTimeout)) return status;
  std::string stuck;
  for (const auto& [pid, child] : children_) {
    if (!child.wait_status) stuck += (stuck.empty() ? "" : ", ") + Label(pid, child.argv);
  }
  return Status(StatusCode::kDeadlineExceeded,
                "still running " + Millis(kKillTimeout) + " after SIGKILL: " + stuck);
}

std::string ProcessGroup::Describe(pid_t pid) const {
  const Child& child = Find(pid);
  return Label(pid, child.argv) + " " +
         (child.wait_status ? DescribeWaitStatus(*child.wait_status) : "is running");
}

ProcessGroup::Child& ProcessGroup::Find(pid_t pid) {
  auto it = children_.find(pid);
  MRTRAIN_CHECK(it != children_.end());  // the caller passed a pid this group did not start
  return it->second;
}

const ProcessGroup::Child& ProcessGroup::Find(pid_t pid) const {
  auto it = children_.find(pid);
  MRTRAIN_CHECK(it != children_.end());  // the caller passed a pid this group did not start
  return it->second;
}

bool ProcessGroup::Reap(pid_t pid, Child& child) {
  if (child.wait_status) return true;
  int wait_status = 0;
  const pid_t reaped = waitpid(pid, &wait_status, WNOHANG);  // WNOHANG: never blocks, no EINTR
  // ECHILD: something else reaped our child, which the class comment rules out.
  MRTRAIN_CHECK(reaped >= 0);
  if (reaped == 0) return false;
  child.wait_status = wait_status;
  return true;
}

bool ProcessGroup::ReapAll() {
  bool all = true;
  for (auto& [pid, child] : children_) all = Reap(pid, child) && all;
  return all;
}

Status ProcessGroup::SignalLive(int signo) {
  Status status;
  for (const auto& [pid, child] : children_) {
    if (child.wait_status || kill(pid, signo) == 0) continue;
    const int error = errno;
    if (status.ok()) {
      status = IOError("cannot send " + SignalName(signo) + " to " + Label(pid, child.argv) + ": " +
                       strerror(error));
    }
  }
  return status;
}

bool ProcessGroup::WaitAll(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!ReapAll()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(kPollInterval);
  }
  return true;
}

Status ProcessGroup::CheckInterrupt() const {
  const int signo = interrupt_ != nullptr ? interrupt_->received_signal() : 0;
  if (signo == 0) return Status::Ok();
  return Status(StatusCode::kAborted, "interrupted by " + SignalName(signo));
}

}  // namespace mrtrain::tools

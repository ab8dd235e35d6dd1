// ProcessGroup and ScopedSignalForwarding against real /bin/sh children. Every wait is bounded
// and every child is reaped; the tests check both, since a leak would outlive the test.
#include "tools/launch/process_group.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "engine/base/status.h"
#include "test/testing/temp_dir.h"

namespace mrtrain::tools {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::TempDir;

std::vector<std::string> Sh(const std::string& script) { return {"/bin/sh", "-c", script}; }

// A script fragment that writes `content` to `path` as the master writes its address file:
// a temporary file, then rename.
std::string WriteAtomically(const std::string& content, const std::string& path) {
  return "printf '%s' '" + content + "' > " + path + ".tmp && mv " + path + ".tmp " + path;
}

std::chrono::milliseconds Since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// True once `pid` is no child of ours any more: reaped, so not a zombie either.
bool Reaped(pid_t pid) { return waitpid(pid, nullptr, WNOHANG) == -1 && errno == ECHILD; }

TEST_CASE("WaitForFile returns what a child writes atomically after a delay", "[tools]") {
  TempDir dir;
  ProcessGroup group;
  const std::string file = dir.File("address");
  auto pid = group.Spawn(
      Sh("sleep 0.2; " + WriteAtomically("127.0.0.1:4242", file) + " && exec sleep 30"), {}, "");
  REQUIRE(pid.ok());
  const auto start = Clock::now();
  auto content = group.WaitForFile(file, 5s, *pid);
  INFO(content.status().ToString());
  REQUIRE(content.ok());
  CHECK(*content == "127.0.0.1:4242");
  CHECK(Since(start) >= 150ms);
  CHECK(!group.Poll(*pid).has_value());  // writing the file did not end it
}

TEST_CASE("a child gets the parent's environment with extra_env overriding it", "[tools]") {
  TempDir dir;
  REQUIRE(setenv("MRTRAIN_TEST_KEPT", "inherited", 1) == 0);
  REQUIRE(setenv("MRTRAIN_TEST_REPLACED", "inherited", 1) == 0);
  ProcessGroup group;
  const std::string file = dir.File("env");
  auto pid = group.Spawn(Sh("printf '%s %s %s' \"$MRTRAIN_TEST_KEPT\" \"$MRTRAIN_TEST_REPLACED\" "
                            "\"$MRTRAIN_TEST_NEW\" > " +
                            file + ".tmp && mv " + file + ".tmp " + file),
                         {"MRTRAIN_TEST_REPLACED=extra", "MRTRAIN_TEST_NEW=a=b"}, "");
  REQUIRE(pid.ok());
  auto content = group.WaitForFile(file, 5s, *pid);
  INFO(content.status().ToString());
  REQUIRE(content.ok());
  CHECK(*content == "inherited extra a=b");
  unsetenv("MRTRAIN_TEST_KEPT");
  unsetenv("MRTRAIN_TEST_REPLACED");
}

TEST_CASE("WaitForFile fails early, naming the exit status and the log tail, if the child exits",
          "[tools]") {
  TempDir dir;
  const std::string log = dir.Write("master.log", "previous run\n");
  ProcessGroup group;
  auto pid = group.Spawn(Sh("i=0; while [ $i -lt 30 ]; do echo line$i; i=$((i+1)); done; "
                            "echo 'bind 127.0.0.1:0: permission denied' >&2; exit 3"),
                         {}, log);
  REQUIRE(pid.ok());
  const auto start = Clock::now();
  auto content = group.WaitForFile(dir.File("address"), 5s, *pid);
  REQUIRE(!content.ok());
  CHECK(Since(start) < 2s);
  const Status& status = content.status();
  INFO(status.ToString());
  CHECK(status.code() == StatusCode::kUnavailable);
  const std::string& message = status.message();
  CHECK(Contains(message, "pid " + std::to_string(*pid) + " (/bin/sh -c"));
  CHECK(Contains(message, "exited with status 3 before writing " + dir.File("address")));
  CHECK(Contains(message, "last lines of " + log));
  CHECK(Contains(message, "bind 127.0.0.1:0: permission denied"));
  CHECK(Contains(message, "line29"));
  CHECK(!Contains(message, "line19"));  // only the tail
  CHECK(group.Poll(*pid) == 3);
  // The log was appended to, with stdout and stderr both in it.
  const std::string written = TempDir::Read(log);
  CHECK(written.rfind("previous run\nline0\n", 0) == 0);
  CHECK(Contains(written, "line29\nbind 127.0.0.1:0: permission denied\n"));
}

TEST_CASE("WaitForFile gives up after its timeout while the child runs", "[tools]") {
  TempDir dir;
  ProcessGroup group;
  auto pid = group.Spawn(Sh("exec sleep 30"), {}, "");
  REQUIRE(pid.ok());
  const auto start = Clock::now();
  auto content = group.WaitForFile(dir.File("address"), 100ms, *pid);
  CHECK(Since(start) >= 100ms);
  CHECK(Since(start) < 2s);
  REQUIRE(!content.ok());
  INFO(content.status().ToString());
  CHECK(content.status().code() == StatusCode::kDeadlineExceeded);
  CHECK(Contains(content.status().message(), "did not appear within 100 ms"));
  CHECK(Contains(content.status().message(), "is running"));
}

TEST_CASE("StopAll kills a child that ignores SIGTERM once the grace period is over", "[tools]") {
  TempDir dir;
  ProcessGroup group;
  // `exec` makes the pid the sleeping process itself, which inherits the ignored SIGTERM.
  const std::string ready = dir.File("ready");
  auto stubborn = group.Spawn(
      Sh("trap '' TERM; " + WriteAtomically("ready", ready) + " && exec sleep 30"), {}, "");
  auto polite = group.Spawn(Sh("exec sleep 30"), {}, "");
  REQUIRE(stubborn.ok());
  REQUIRE(polite.ok());
  REQUIRE(group.WaitForFile(ready, 5s, *stubborn).ok());  // the trap is set
  const auto start = Clock::now();
  Status status = group.StopAll(300ms);
  CHECK(status.ok());
  CHECK(Since(start) >= 300ms);
  CHECK(Since(start) < 2300ms);
  CHECK(group.Poll(*stubborn) == 128 + SIGKILL);
  CHECK(Contains(group.Describe(*stubborn), "killed by signal 9 (Killed)"));
  CHECK(group.Poll(*polite) == 128 + SIGTERM);
  CHECK(Contains(group.Describe(*polite), "killed by signal 15 (Terminated)"));
  CHECK(Reaped(*stubborn));
  CHECK(Reaped(*polite));
  CHECK(group.StopAll(300ms).ok());  // nothing left to stop
}

TEST_CASE("the destructor stops and reaps every child", "[tools]") {
  pid_t sleeper = 0;
  pid_t exited = 0;
  const auto start = Clock::now();
  {
    ProcessGroup group;
    auto a = group.Spawn(Sh("exec sleep 30"), {}, "");
    auto b = group.Spawn(Sh("exit 0"), {}, "");  // a zombie until someone reaps it
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    sleeper = *a;
    exited = *b;
  }
  CHECK(Since(start) < 2s);
  CHECK(Reaped(sleeper));
  CHECK(Reaped(exited));
}

TEST_CASE("Wait times out on a running child and returns the exit code of one that exits",
          "[tools]") {
  ProcessGroup group;
  auto sleeper = group.Spawn(Sh("exec sleep 30"), {}, "");
  auto quick = group.Spawn(Sh("sleep 0.1; exit 7"), {}, "");
  REQUIRE(sleeper.ok());
  REQUIRE(quick.ok());
  const auto start = Clock::now();
  auto timed_out = group.Wait(*sleeper, 100ms);
  CHECK(Since(start) >= 100ms);
  CHECK(Since(start) < 2s);
  REQUIRE(!timed_out.ok());
  CHECK(timed_out.status().code() == StatusCode::kDeadlineExceeded);
  CHECK(!group.Poll(*sleeper).has_value());
  auto code = group.Wait(*quick, 5s);
  REQUIRE(code.ok());
  CHECK(*code == 7);
  CHECK(Contains(group.Describe(*quick), "exited with status 7"));
  auto again = group.Wait(*quick, 0ms);
  REQUIRE(again.ok());
  CHECK(*again == 7);
}

TEST_CASE("a child killed by signal 9 is told apart from one that exits with 137", "[tools]") {
  ProcessGroup group;
  auto killed = group.Spawn(Sh("exec sleep 30"), {}, "");
  auto exited = group.Spawn(Sh("exit 137"), {}, "");
  REQUIRE(killed.ok());
  REQUIRE(exited.ok());
  REQUIRE(kill(*killed, SIGKILL) == 0);
  auto code = group.Wait(*killed, 5s);
  REQUIRE(code.ok());
  CHECK(*code == 128 + 9);
  CHECK(Contains(group.Describe(*killed), "killed by signal 9 (Killed)"));
  auto exit_code = group.Wait(*exited, 5s);
  REQUIRE(exit_code.ok());
  CHECK(*exit_code == 137);
  CHECK(Contains(group.Describe(*exited), "exited with status 137"));
}

volatile sig_atomic_t g_previous_handler_calls = 0;
void CountCall(int) { g_previous_handler_calls = g_previous_handler_calls + 1; }

TEST_CASE("ScopedSignalForwarding records SIGTERM and SIGINT and restores the old handlers",
          "[tools]") {
  struct sigaction counting {};
  counting.sa_handler = CountCall;
  sigemptyset(&counting.sa_mask);
  struct sigaction original_term {};
  struct sigaction original_int {};
  REQUIRE(sigaction(SIGTERM, &counting, &original_term) == 0);
  REQUIRE(sigaction(SIGINT, &counting, &original_int) == 0);
  g_previous_handler_calls = 0;
  {
    ScopedSignalForwarding forwarding;
    CHECK(forwarding.received_signal() == 0);
    REQUIRE(raise(SIGTERM) == 0);  // handled before raise() returns
    CHECK(forwarding.received_signal() == SIGTERM);
    REQUIRE(raise(SIGINT) == 0);
    CHECK(forwarding.received_signal() == SIGINT);
    CHECK(g_previous_handler_calls == 0);
  }
  REQUIRE(raise(SIGTERM) == 0);
  REQUIRE(raise(SIGINT) == 0);
  CHECK(g_previous_handler_calls == 2);
  sigaction(SIGTERM, &original_term, nullptr);
  sigaction(SIGINT, &original_int, nullptr);
}

TEST_CASE("after a forwarded signal, waits return kAborted so the caller can stop children",
          "[tools]") {
  TempDir dir;
  ScopedSignalForwarding forwarding;
  ProcessGroup group(&forwarding);
  auto pid = group.Spawn(Sh("exec sleep 30"), {}, "");
  REQUIRE(pid.ok());
  REQUIRE(raise(SIGINT) == 0);  // as a Ctrl-C would
  const auto start = Clock::now();
  auto content = group.WaitForFile(dir.File("address"), 5s, *pid);
  REQUIRE(!content.ok());
  CHECK(content.status().code() == StatusCode::kAborted);
  CHECK(Contains(content.status().message(), "interrupted by signal 2 (Interrupt)"));
  auto code = group.Wait(*pid, 5s);
  REQUIRE(!code.ok());
  CHECK(code.status().code() == StatusCode::kAborted);
  CHECK(Since(start) < 1s);
  CHECK(group.StopAll(1s).ok());
  CHECK(group.Poll(*pid) == 128 + SIGTERM);
}

TEST_CASE("Spawn reports what keeps a child from starting", "[tools]") {
  TempDir dir;
  ProcessGroup group;
  SECTION("a program that does not exist") {
    auto pid = group.Spawn({"/nonexistent/mrtrain", "master"}, {}, "");
    REQUIRE(!pid.ok());
    INFO(pid.status().ToString());
    CHECK(pid.status().code() == StatusCode::kIOError);
    CHECK(Contains(pid.status().message(), "/nonexistent/mrtrain"));
    CHECK(Contains(pid.status().message(), "No such file or directory"));
    CHECK((waitpid(-1, nullptr, WNOHANG) == -1 && errno == ECHILD));  // the failed child reaped
  }
  SECTION("a log that cannot be opened") {
    auto pid = group.Spawn(Sh("exit 0"), {}, dir.File("missing/master.log"));
    REQUIRE(!pid.ok());
    CHECK(pid.status().code() == StatusCode::kIOError);
    CHECK(Contains(pid.status().message(), dir.File("missing/master.log")));
  }
  SECTION("an environment entry without '='") {
    auto pid = group.Spawn(Sh("exit 0"), {"MRTRAIN_TEST"}, "");
    REQUIRE(!pid.ok());
    CHECK(pid.status().code() == StatusCode::kInvalidArgument);
    CHECK(Contains(pid.status().message(), "'MRTRAIN_TEST'"));
  }
  SECTION("an empty argv") {
    auto pid = group.Spawn({}, {}, "");
    REQUIRE(!pid.ok());
    CHECK(pid.status().code() == StatusCode::kInvalidArgument);
  }
  SECTION("SIGCHLD ignored, which would lose exit statuses") {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    struct sigaction original {};
    REQUIRE(sigaction(SIGCHLD, &ignore, &original) == 0);
    auto pid = group.Spawn(Sh("exit 0"), {}, "");
    sigaction(SIGCHLD, &original, nullptr);
    REQUIRE(!pid.ok());
    CHECK(pid.status().code() == StatusCode::kFailedPrecondition);
  }
}

// Polls waitpid() for up to `timeout`; the wait status, or -1 if `pid` is still running.
int WaitStatusWithin(pid_t pid, std::chrono::milliseconds timeout) {
  const auto start = Clock::now();
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (Since(start) >= timeout) return -1;
    std::this_thread::sleep_for(5ms);
  }
  return status;
}

TEST_CASE("a child gets SIGTERM when its parent is killed without cleaning up", "[tools]") {
  TempDir dir;
  // Orphans are re-parented to this process, so the test can reap the grandchild it watches.
  REQUIRE(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  const std::string pid_file = dir.File("child.pid");
  const pid_t parent = fork();
  REQUIRE(parent >= 0);
  if (parent == 0) {
    // The parent to be killed: starts a child, says which, and waits for SIGKILL.
    ProcessGroup group;
    auto child = group.Spawn(Sh("exec sleep 30"), {}, "");
    if (!child.ok()) _exit(1);
    std::ofstream(pid_file + ".tmp") << *child;
    if (std::rename((pid_file + ".tmp").c_str(), pid_file.c_str()) != 0) _exit(1);
    sleep(30);
    _exit(0);
  }
  const auto start = Clock::now();
  std::string child_pid;
  while ((child_pid = TempDir::Read(pid_file)).empty() && Since(start) < 5s) {
    std::this_thread::sleep_for(5ms);
  }
  REQUIRE(kill(parent, SIGKILL) == 0);
  REQUIRE(WaitStatusWithin(parent, 5s) != -1);
  REQUIRE(!child_pid.empty());
  const pid_t child = std::stoi(child_pid);
  const int status = WaitStatusWithin(child, 5s);
  if (status == -1) {  // the death signal never came: clean up, then fail
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
  }
  prctl(PR_SET_CHILD_SUBREAPER, 0);
  REQUIRE(status != -1);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGTERM);
}

}  // namespace
}  // namespace mrtrain::tools

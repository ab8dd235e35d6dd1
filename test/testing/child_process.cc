#include "test/testing/child_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

#include <catch2/catch.hpp>

#include "test/testing/temp_dir.h"

namespace mrtrain::testing {

using namespace std::chrono_literals;

ChildProcess::ChildProcess(std::vector<std::string> argv, const std::string& log,
                           const std::vector<std::string>& env) {
  pid_ = fork();
  REQUIRE(pid_ >= 0);
  if (pid_ == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 1);
    dup2(fd, 2);
    for (const std::string& var : env) putenv(const_cast<char*>(var.c_str()));
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) Kill();
}

std::optional<ChildProcess::Exit> ChildProcess::SignalAndWait(int signo) {
  REQUIRE(kill(pid_, signo) == 0);
  return WaitForExit(10s);
}

std::optional<ChildProcess::Exit> ChildProcess::WaitForExit(Clock::duration bound) {
  const auto start = Clock::now();
  while (Clock::now() - start < bound) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return Exit(status, Clock::now() - start);
    }
    std::this_thread::sleep_for(5ms);
  }
  return std::nullopt;
}

void ChildProcess::Kill() {
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

bool WaitForText(const std::string& path, const std::string& text, std::chrono::seconds bound) {
  for (auto start = ChildProcess::Clock::now(); ChildProcess::Clock::now() - start < bound;
       std::this_thread::sleep_for(20ms)) {
    if (TempDir::Read(path).find(text) != std::string::npos) return true;
  }
  return false;
}

int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace mrtrain::testing

// The floor uses Boost.Asio outside runtime/transport, which the style keeps Asio to: the floor
// must not go through the transport it is the floor for, and plain blocking Asio sockets make
// the same system calls the transport's sockets do, without its framing and queues.
#include "tools/bench/loopback_floor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "engine/base/check.h"

namespace mrtrain::bench {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

Status SocketError(const std::string& what, const error_code& ec) {
  return IOError("loopback floor: " + what + ": " + ec.message());
}

bool OnlyThread() {
  auto tasks = std::filesystem::directory_iterator("/proc/self/task");
  return std::distance(begin(tasks), end(tasks)) == 1;
}

[[noreturn]] void RunChild(int announce_fd, pid_t parent, const PeerProcess::Serve& serve) {
  // The parent may die (a crash, ^C) while the child waits for it; take the child down too.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);
  bool announced = false;
  auto announce = [&](const std::string& address) {
    MRTRAIN_CHECK(!announced);
    announced = true;
    std::string line = address + "\n";
    bool written =
        write(announce_fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    close(announce_fd);
    if (!written) _exit(1);
  };
  int rc = serve(announce);
  std::fflush(nullptr);
  _exit(rc);
}

// Reads the child's one line, or nothing if it exits first.
std::string ReadAnnouncement(int fd) {
  std::string line;
  char c;
  for (;;) {
    ssize_t n = read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || c == '\n') return line;
    line.push_back(c);
  }
}

uint16_t PortOf(const std::string& address) {
  return static_cast<uint16_t>(std::stoul(address.substr(address.rfind(':') + 1)));
}

// The child: accepts one connection, reads and discards `bytes`, replies one byte.
int ServeFloor(const std::function<void(const std::string&)>& announce,
               const LoopbackFloorOptions& options) {
  asio::io_context io;
  tcp::acceptor acceptor(io);
  tcp::endpoint any_port(asio::ip::make_address_v4("127.0.0.1"), 0);
  error_code ec;
  acceptor.open(any_port.protocol(), ec);
  if (!ec) acceptor.bind(any_port, ec);
  if (!ec) acceptor.listen(1, ec);
  tcp::endpoint bound = acceptor.local_endpoint(ec);
  if (ec) return 1;
  announce("127.0.0.1:" + std::to_string(bound.port()));
  tcp::socket socket(io);
  acceptor.accept(socket, ec);
  if (ec) return 1;
  socket.set_option(tcp::no_delay(true), ec);
  std::vector<char> buffer(static_cast<size_t>(options.write_bytes));
  for (int64_t got = 0; got < options.bytes;) {
    got += static_cast<int64_t>(socket.read_some(asio::buffer(buffer), ec));
    if (ec) return 1;
  }
  const char reply = 1;
  asio::write(socket, asio::buffer(&reply, 1), ec);
  return ec ? 1 : 0;
}

Result<double> MeasureOnce(const LoopbackFloorOptions& options, const std::vector<char>& data) {
  MRTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<PeerProcess> receiver,
                           PeerProcess::Start([&options](const auto& announce) {
                             return ServeFloor(announce, options);
                           }));
  asio::io_context io;
  tcp::socket socket(io);
  error_code ec;
  socket.connect(tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), PortOf(receiver->address())),
                 ec);
  if (ec) return SocketError("connect to " + receiver->address(), ec);
  socket.set_option(tcp::no_delay(true), ec);

  auto start = std::chrono::steady_clock::now();
  for (int64_t sent = 0; sent < options.bytes;) {
    size_t n = static_cast<size_t>(std::min<int64_t>(options.bytes - sent, options.write_bytes));
    sent += static_cast<int64_t>(asio::write(socket, asio::buffer(data.data(), n), ec));
    if (ec) return SocketError("write", ec);
  }
  char reply;
  asio::read(socket, asio::buffer(&reply, 1), ec);
  if (ec) return SocketError("read the reply", ec);
  std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - start;

  socket.close(ec);
  MRTRAIN_RETURN_IF_ERROR(receiver->Wait());
  return static_cast<double>(options.bytes) / seconds.count() / 1e9;
}

}  // namespace

Result<std::unique_ptr<PeerProcess>> PeerProcess::Start(Serve serve) {
  MRTRAIN_CHECK(OnlyThread());
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return IOError(std::string("pipe: ") + std::strerror(errno));
  // Unflushed stdio output would otherwise be printed by both processes.
  std::fflush(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(fds[0]);
    close(fds[1]);
    return IOError(std::string("fork: ") + std::strerror(err));
  }
  if (pid == 0) {
    close(fds[0]);
    RunChild(fds[1], parent, serve);
  }
  close(fds[1]);
  std::string address = ReadAnnouncement(fds[0]);
  close(fds[0]);
  std::unique_ptr<PeerProcess> peer(new PeerProcess(pid, address));
  if (address.empty()) {
    Status exited = peer->Wait();
    return Status(StatusCode::kUnavailable,
                  "the receiver process exited without announcing its address" +
                      (exited.ok() ? std::string() : ": " + exited.message()));
  }
  return peer;
}

PeerProcess::~PeerProcess() {
  if (pid_ < 0) return;
  kill(pid_, SIGKILL);
  // Killed on purpose: its exit status says only that.
  static_cast<void>(Wait());
}

Status PeerProcess::Wait() {
  int status = 0;
  pid_t reaped;
  do {
    reaped = waitpid(pid_, &status, 0);
  } while (reaped < 0 && errno == EINTR);
  const pid_t pid = pid_;
  pid_ = -1;
  if (reaped < 0) return InternalError("waitpid: " + std::string(std::strerror(errno)));
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::Ok();
  return InternalError("receiver process " + std::to_string(pid) +
                       (WIFSIGNALED(status)
                            ? " was killed by signal " + std::to_string(WTERMSIG(status))
                            : " exited with " + std::to_string(WEXITSTATUS(status))));
}

double LoopbackFloor::best() const {
  return gbps.empty() ? 0 : *std::max_element(gbps.begin(), gbps.end());
}

Result<LoopbackFloor> MeasureLoopbackFloor(const LoopbackFloorOptions& options) {
  if (options.bytes <= 0 || options.write_bytes <= 0 || options.repeats <= 0) {
    return InvalidArgumentError("loopback floor: bytes, write size and repeats must be positive");
  }
  // Filled once, before any timing, so no page faults land inside a measurement.
  const std::vector<char> data(static_cast<size_t>(options.write_bytes), 'x');
  LoopbackFloor floor;
  for (int i = 0; i < options.repeats; ++i) {
    MRTRAIN_ASSIGN_OR_RETURN(double gbps, MeasureOnce(options, data));
    floor.gbps.push_back(gbps);
  }
  return floor;
}

}  // namespace mrtrain::bench

#include "runtime/transport/in_process_transport.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "engine/base/check.h"
#include "engine/base/log.h"
#include "runtime/protocol/frame.h"
#include "runtime/transport/send_budget.h"

namespace mrtrain::runtime {
namespace {

constexpr char kScheme[] = "inproc://";
using Clock = std::chrono::steady_clock;

class InProcessConnection;

// What the transport and its connections share. Connections hold it weakly, so one kept by a
// caller after the transport is gone refuses to send and touches nothing. Thread-safe.
class Core {
 public:
  explicit Core(const InProcessOptions& options) : options_(options) {}

  const InProcessOptions& options() const { return options_; }
  bool InDispatcher() const { return std::this_thread::get_id() == dispatcher_id_; }
  void set_dispatcher_id(std::thread::id id) { dispatcher_id_ = id; }

  // Queues `task` for the dispatcher; false (and `task` dropped) once stopping.
  bool Post(std::function<void()> task);
  bool AddTimer(Clock::time_point due, std::function<void()> task);
  // Asks the dispatcher to stop; true the first time.
  bool RequestStop();

  Result<std::string> AddListener(std::string name, ConnectionHandler handler);
  // The handler of a listener, or nullptr. Dispatcher thread only (copy taken under the lock).
  std::unique_ptr<ConnectionHandler> FindListener(const std::string& name);

  // Dispatcher thread only.
  void Run();
  void AddLive(const std::shared_ptr<InProcessConnection>& c) { live_.insert(c); }
  void RemoveLive(const std::shared_ptr<InProcessConnection>& c) { live_.erase(c); }

 private:
  void Shutdown();

  // Constant after construction (the dispatcher id is set before any task can run).
  const InProcessOptions options_;
  std::thread::id dispatcher_id_;

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;                         // guarded by mu_
  std::multimap<Clock::time_point, std::function<void()>> timers_;  // guarded by mu_
  std::map<std::string, ConnectionHandler> listeners_;              // guarded by mu_
  uint64_t next_auto_name_ = 0;                                     // guarded by mu_
  bool stopping_ = false;                                           // guarded by mu_

  // Dispatcher thread only: every opened, not yet closed connection.
  std::set<std::shared_ptr<InProcessConnection>> live_;
};

// One end of an in-process connection; its peer is the other end.
class InProcessConnection : public Connection,
                            public std::enable_shared_from_this<InProcessConnection> {
 public:
  InProcessConnection(std::weak_ptr<Core> core, ConnectionHandler handler, std::string peer)
      : core_(std::move(core)),
        handler_(std::move(handler)),
        peer_(std::move(peer)),
        options_(core_.lock()->options()),
        budget_(options_.limits.send_budget_bytes, options_.limits.send_timeout) {}

  Status Send(MessageType type, std::string payload) override;
  Status SendGather(MessageType type, GatherPayload payload) override;
  std::shared_ptr<const void> TakeDeliveredMessage() override {
    return std::move(delivered_message_);
  }
  void Close() override;
  const std::string& peer() const override { return peer_; }

  // Dispatcher thread only, before the connection is handed out.
  void Link(const std::shared_ptr<InProcessConnection>& other) {
    other_ = other;
    peer_takes_messages_ = other->handler_.takes_messages;
  }
  // Dispatcher thread only.
  void Open();
  void Deliver(uint16_t type, std::string bytes, std::shared_ptr<const void> message);
  void Finish(const Status& why);
  void CloseBoth(const Status& mine, const Status& theirs);

 private:
  Result<Frame> Unframe(uint16_t type, std::string bytes) const;
  // Queues bytes or a message (`bytes` accounted) for the peer.
  Status Post(MessageType type, std::string wire, std::shared_ptr<const void> message,
              size_t bytes);

  // Constant after construction.
  const std::weak_ptr<Core> core_;
  const ConnectionHandler handler_;
  const std::string peer_;
  const InProcessOptions options_;

  SendBudget budget_;                 // bytes sent by this end and not yet delivered
  std::atomic<bool> closing_{false};  // Close() called, or finished
  bool peer_takes_messages_ = false;  // set by Link(), before any Send

  // Dispatcher thread only.
  std::weak_ptr<InProcessConnection> other_;
  bool opened_ = false;
  bool finished_ = false;
  std::shared_ptr<const void> delivered_message_;  // while on_message runs
};

bool Core::Post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    tasks_.push_back(std::move(task));
  }
  wake_.notify_one();
  return true;
}

bool Core::AddTimer(Clock::time_point due, std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    timers_.emplace(due, std::move(task));
  }
  wake_.notify_one();
  return true;
}

bool Core::RequestStop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    stopping_ = true;
  }
  wake_.notify_one();
  return true;
}

Result<std::string> Core::AddListener(std::string name, ConnectionHandler handler) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return FailedPreconditionError("in-process transport is stopped");
  if (name.empty()) name = "auto-" + std::to_string(++next_auto_name_);
  if (!listeners_.emplace(name, std::move(handler)).second) {
    return Status(StatusCode::kUnavailable, std::string(kScheme) + name + " is already in use");
  }
  return std::string(kScheme) + name;
}

std::unique_ptr<ConnectionHandler> Core::FindListener(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = listeners_.find(name);
  if (it == listeners_.end()) return nullptr;
  return std::make_unique<ConnectionHandler>(it->second);
}

void Core::Run() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      while (!stopping_ && tasks_.empty()) {
        if (!timers_.empty() && timers_.begin()->first <= Clock::now()) {
          tasks_.push_back(std::move(timers_.begin()->second));
          timers_.erase(timers_.begin());
        } else if (timers_.empty()) {
          wake_.wait(lock);
        } else {
          wake_.wait_until(lock, timers_.begin()->first);
        }
      }
      if (stopping_) break;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    try {
      task();
    } catch (const std::exception& e) {
      Logger("transport")->error("a posted function threw: {}", e.what());
    } catch (...) {
      Logger("transport")->error("a posted function threw");
    }
  }
  Shutdown();
}

void Core::Shutdown() {
  std::deque<std::function<void()>> tasks;
  std::multimap<Clock::time_point, std::function<void()>> timers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks.swap(tasks_);
    timers.swap(timers_);
    listeners_.clear();
  }
  tasks.clear();  // dropped unrun, outside the lock: they may hold connections
  timers.clear();
  auto live = live_;
  for (const auto& c : live) c->Finish(Status(StatusCode::kUnavailable, "transport stopped"));
  live_.clear();
}

Status InProcessConnection::Send(MessageType type, std::string payload) {
  if (payload.size() > options_.limits.max_frame_payload_bytes) {
    return InvalidArgumentError("cannot send " + MessageTypeName(static_cast<uint16_t>(type)) +
                                " of " + std::to_string(payload.size()) + " bytes to " + peer_ +
                                ": over the frame limit of " +
                                std::to_string(options_.limits.max_frame_payload_bytes));
  }
  const size_t bytes = payload.size() + kFrameHeaderBytes;
  std::string wire = options_.check_frames ? EncodeFrame(static_cast<uint16_t>(type), payload)
                                           : std::move(payload);
  return Post(type, std::move(wire), nullptr, bytes);
}

Status InProcessConnection::SendGather(MessageType type, GatherPayload payload) {
  // The message itself when the peer takes one and frames are not being checked: nothing is
  // encoded, copied or checksummed on the way (within one process the bytes would only be
  // decoded back into the same message). Else the bytes, joined.
  if (!payload.message || !peer_takes_messages_ || options_.check_frames) {
    return Send(type, payload.Join());
  }
  if (payload.size() > options_.limits.max_frame_payload_bytes) {
    return Send(type, payload.Join());  // refused there, with its message
  }
  const size_t bytes = payload.size() + kFrameHeaderBytes;
  return Post(type, std::string(), std::move(payload.message), bytes);
}

Status InProcessConnection::Post(MessageType type, std::string wire,
                                 std::shared_ptr<const void> message, size_t bytes) {
  std::shared_ptr<Core> core = core_.lock();
  if (closing_ || !core) {
    return Status(StatusCode::kUnavailable, "connection to " + peer_ + " is closed");
  }
  MRTRAIN_RETURN_IF_ERROR(budget_.Acquire(bytes, !core->InDispatcher(), peer_));
  auto t = static_cast<uint16_t>(type);
  bool posted = core->Post([self = shared_from_this(), t, bytes, wire = std::move(wire),
                            message = std::move(message)]() mutable {
    self->budget_.Release(bytes);
    if (auto other = self->other_.lock()) other->Deliver(t, std::move(wire), std::move(message));
  });
  if (!posted) {
    budget_.Release(bytes);
    return Status(StatusCode::kUnavailable, "connection to " + peer_ + ": transport stopped");
  }
  return Status::Ok();
}

void InProcessConnection::Close() {
  if (closing_.exchange(true)) return;
  if (std::shared_ptr<Core> core = core_.lock()) {
    // Queued behind the frames already sent, so the peer gets them first. If the transport is
    // stopping, its shutdown finishes this connection instead.
    core->Post([self = shared_from_this()] {
      self->CloseBoth(Status::Ok(), Status(StatusCode::kUnavailable, "peer closed the connection"));
    });
  }
}

void InProcessConnection::Open() {
  opened_ = true;
  if (!handler_.on_open) return;
  try {
    handler_.on_open(shared_from_this());
  } catch (...) {
    Logger("transport")->error("on_open for {} threw; closing the connection", peer_);
    CloseBoth(InternalError("on_open threw"), Status(StatusCode::kUnavailable, "peer failed"));
  }
}

Result<Frame> InProcessConnection::Unframe(uint16_t type, std::string bytes) const {
  if (!options_.check_frames) return Frame{type, std::move(bytes)};
  FrameDecoder decoder(options_.limits.max_frame_payload_bytes);
  decoder.Feed(bytes);
  MRTRAIN_ASSIGN_OR_RETURN(std::optional<Frame> frame, decoder.Next());
  if (!frame || decoder.buffered_bytes() != 0) {
    return CorruptionError("in-process frame is not exactly one frame");
  }
  return std::move(*frame);
}

void InProcessConnection::Deliver(uint16_t type, std::string bytes,
                                  std::shared_ptr<const void> message) {
  if (finished_ || closing_) return;
  Result<Frame> frame = message ? Frame{type, std::string()} : Unframe(type, std::move(bytes));
  if (!frame.ok()) {
    Logger("transport")->error("in-process connection {}: {}", peer_, frame.status().ToString());
    return CloseBoth(frame.status(), Status(StatusCode::kUnavailable, "peer closed"));
  }
  // Only on_message sees it, and its last owner may be the receiver: not kept past the call.
  delivered_message_ = std::move(message);
  struct Forget {
    std::shared_ptr<const void>* message;
    ~Forget() { message->reset(); }
  } forget{&delivered_message_};
  try {
    handler_.on_message(shared_from_this(), static_cast<MessageType>(frame->type),
                        std::move(frame->payload));
  } catch (const std::exception& e) {
    Logger("transport")
        ->error("on_message for {} threw: {}; closing the connection", peer_, e.what());
    CloseBoth(InternalError(std::string("on_message threw: ") + e.what()),
              Status(StatusCode::kUnavailable, "peer failed"));
  } catch (...) {
    Logger("transport")->error("on_message for {} threw; closing the connection", peer_);
    CloseBoth(InternalError("on_message threw"), Status(StatusCode::kUnavailable, "peer failed"));
  }
}

void InProcessConnection::CloseBoth(const Status& mine, const Status& theirs) {
  auto other = other_.lock();
  Finish(mine);
  if (other) other->Finish(theirs);
}

void InProcessConnection::Finish(const Status& why) {
  if (finished_) return;
  finished_ = true;
  closing_ = true;
  budget_.Close();
  auto self = shared_from_this();
  if (auto core = core_.lock()) core->RemoveLive(self);
  if (!opened_ || !handler_.on_closed) return;
  try {
    handler_.on_closed(self, why);
  } catch (...) {
    Logger("transport")->error("on_closed for {} threw", peer_);
  }
}

class InProcessTransport : public Transport {
 public:
  explicit InProcessTransport(const InProcessOptions& options)
      : core_(std::make_shared<Core>(options)) {
    thread_ = std::thread([core = core_] { core->Run(); });
    core_->set_dispatcher_id(thread_.get_id());
  }

  ~InProcessTransport() override {
    MRTRAIN_CHECK(!InTransportThread());
    Stop();
    if (thread_.joinable()) thread_.join();
  }

  Result<std::string> Listen(const std::string& address, ConnectionHandler handler) override {
    MRTRAIN_ASSIGN_OR_RETURN(std::string name, ParseAddress(address));
    return core_->AddListener(std::move(name), std::move(handler));
  }

  void Connect(const std::string& address, ConnectionHandler handler,
               ConnectCallback done) override;

  void Post(std::function<void()> fn) override { core_->Post(std::move(fn)); }

  TimerHandle RunAfter(std::chrono::milliseconds delay, std::function<void()> fn) override {
    TimerHandle handle(std::move(fn));
    core_->AddTimer(Clock::now() + delay, [handle] { handle.Fire(); });
    return handle;
  }

  bool InTransportThread() const override { return core_->InDispatcher(); }

  void Stop() override {
    core_->RequestStop();
    if (!InTransportThread() && thread_.joinable()) thread_.join();
  }

 private:
  static Result<std::string> ParseAddress(const std::string& address) {
    if (address.compare(0, sizeof(kScheme) - 1, kScheme) != 0) {
      return InvalidArgumentError("in-process address \"" + address +
                                  "\" does not start with inproc://");
    }
    return address.substr(sizeof(kScheme) - 1);
  }

  std::shared_ptr<Core> core_;
  std::thread thread_;
  uint64_t next_client_ = 0;  // only read and written on the dispatcher thread
};

void InProcessTransport::Connect(const std::string& address, ConnectionHandler handler,
                                 ConnectCallback done) {
  Result<std::string> name = ParseAddress(address);
  auto task = [this, address, name, handler = std::move(handler), done]() mutable {
    if (!name.ok()) return done(name.status());
    std::unique_ptr<ConnectionHandler> server_handler = core_->FindListener(*name);
    if (!server_handler) {
      return done(Status(StatusCode::kUnavailable, "nothing listens at " + address));
    }
    auto client = std::make_shared<InProcessConnection>(core_, std::move(handler), address);
    auto server = std::make_shared<InProcessConnection>(
        core_, std::move(*server_handler),
        address + " (client " + std::to_string(++next_client_) + ")");
    client->Link(server);
    server->Link(client);
    core_->AddLive(client);
    core_->AddLive(server);
    server->Open();
    client->Open();
    done(std::shared_ptr<Connection>(client));
  };
  if (!core_->Post(std::move(task))) {
    done(FailedPreconditionError("cannot connect to " + address + ": transport is stopped"));
  }
}

}  // namespace

std::unique_ptr<Transport> MakeInProcessTransport(const InProcessOptions& options) {
  return std::make_unique<InProcessTransport>(options);
}

}  // namespace mrtrain::runtime

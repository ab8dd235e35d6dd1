#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "runtime/transport/transport.h"

namespace mrtrain::runtime::testing {

// A Transport whose accepted connections' Send() of one message type waits at a gate until the
// test opens it: a peer that does not read, for which Connection::Send blocks once the
// connection is over its budget. Everything else goes to the wrapped transport; connections
// made with Connect() are not gated. Thread-safe.
class GatedTransport : public Transport {
 public:
  explicit GatedTransport(std::unique_ptr<Transport> inner)
      : inner_(std::move(inner)), gate_(std::make_shared<Gate>()) {}

  // Later sends of `type` on accepted connections wait until Open().
  void Close(MessageType type) {
    std::lock_guard<std::mutex> lock(gate_->mu);
    gate_->type = type;
    gate_->open = false;
  }
  void Open() {
    {
      std::lock_guard<std::mutex> lock(gate_->mu);
      gate_->open = true;
    }
    gate_->cv.notify_all();
  }
  // Sends waiting at the gate now.
  int waiting() const {
    std::lock_guard<std::mutex> lock(gate_->mu);
    return gate_->waiting;
  }

  Result<std::string> Listen(const std::string& address, ConnectionHandler handler) override {
    return inner_->Listen(address, Wrap(std::move(handler)));
  }
  void Connect(const std::string& address, ConnectionHandler handler,
               ConnectCallback done) override {
    inner_->Connect(address, std::move(handler), std::move(done));
  }
  void Post(std::function<void()> fn) override { inner_->Post(std::move(fn)); }
  TimerHandle RunAfter(std::chrono::milliseconds delay, std::function<void()> fn) override {
    return inner_->RunAfter(delay, std::move(fn));
  }
  bool InTransportThread() const override { return inner_->InTransportThread(); }
  void Stop() override {
    Open();  // nothing may wait at the gate for ever
    inner_->Stop();
  }

 private:
  struct Gate {
    mutable std::mutex mu;
    std::condition_variable cv;
    MessageType type = MessageType::kHeartbeat;
    bool open = true;
    int waiting = 0;
    // The wrapper of each live accepted connection, so the handler sees one object per
    // connection.
    std::map<const Connection*, std::shared_ptr<Connection>> wrappers;
  };

  class GatedConnection : public Connection {
   public:
    GatedConnection(std::shared_ptr<Connection> inner, std::shared_ptr<Gate> gate)
        : inner_(std::move(inner)), gate_(std::move(gate)) {}
    Status Send(MessageType type, std::string payload) override {
      {
        std::unique_lock<std::mutex> lock(gate_->mu);
        if (!gate_->open && type == gate_->type) {
          ++gate_->waiting;
          gate_->cv.wait(lock, [&] { return gate_->open; });
          --gate_->waiting;
        }
      }
      return inner_->Send(type, std::move(payload));
    }
    void Close() override { inner_->Close(); }
    const std::string& peer() const override { return inner_->peer(); }

   private:
    const std::shared_ptr<Connection> inner_;
    const std::shared_ptr<Gate> gate_;
  };

  ConnectionHandler Wrap(ConnectionHandler handler) {
    auto gate = gate_;
    auto wrapped = [gate](const std::shared_ptr<Connection>& c) {
      std::lock_guard<std::mutex> lock(gate->mu);
      std::shared_ptr<Connection>& w = gate->wrappers[c.get()];
      if (!w) w = std::make_shared<GatedConnection>(c, gate);
      return w;
    };
    ConnectionHandler h;
    if (handler.on_open) {
      h.on_open = [wrapped, on_open = handler.on_open](const std::shared_ptr<Connection>& c) {
        on_open(wrapped(c));
      };
    }
    h.on_message = [wrapped, on_message = handler.on_message](
                       const std::shared_ptr<Connection>& c, MessageType type,
                       std::string payload) { on_message(wrapped(c), type, std::move(payload)); };
    h.on_closed = [gate, wrapped, on_closed = handler.on_closed](
                      const std::shared_ptr<Connection>& c, const Status& status) {
      std::shared_ptr<Connection> w = wrapped(c);
      if (on_closed) on_closed(w, status);
      std::lock_guard<std::mutex> lock(gate->mu);
      gate->wrappers.erase(c.get());
    };
    return h;
  }

  const std::unique_ptr<Transport> inner_;
  const std::shared_ptr<Gate> gate_;
};

}  // namespace mrtrain::runtime::testing

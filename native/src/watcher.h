// An fd polled on the Node event loop (uv_poll, no extra threads) that hands values to
// a JS callback. It keeps itself alive until close() from JS, which is safe to call
// from inside the callback and more than once.
#pragma once

#include <napi.h>
#include <uv.h>

#include <memory>

namespace nf {

class FdWatcher {
 public:
  FdWatcher(Napi::Env env, Napi::Function callback, const char* name);
  virtual ~FdWatcher() = default;

  // Starts polling; throws "verb object: cause" on failure (the watcher is then freed).
  // Returns the JS handle { close() }.
  Napi::Object Start(int fd, const std::string& what);

 protected:
  // The fd is readable; runs inside a HandleScope on the JS thread.
  virtual void OnReadable() = 0;
  // The poll reported an error (POLLERR: libuv has stopped polling). Returns whether to
  // poll on, once the subclass has cleared the condition; by default the watcher stays stopped.
  virtual bool OnPollError() { return false; }
  // Frees what the subclass owns; the poll is stopped and no callback is running.
  virtual void Release() = 0;
  // Calls the JS callback with one value; false once closed or if the callback threw.
  bool Deliver(Napi::Value value);
  bool closed() const { return closed_; }
  Napi::Env env_;

 private:
  struct Token {
    FdWatcher* watcher;
  };
  static void OnPoll(uv_poll_t* handle, int status, int events);
  void Close();
  void Finish();

  uv_poll_t poll_;
  Napi::FunctionReference callback_;
  Napi::AsyncContext context_;
  std::shared_ptr<Token> token_;
  bool closed_ = false;
  bool in_callback_ = false;
};

}  // namespace nf

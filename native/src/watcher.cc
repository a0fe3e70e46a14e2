#include "watcher.h"

#include "errors.h"

namespace nf {

FdWatcher::FdWatcher(Napi::Env env, Napi::Function callback, const char* name)
    : env_(env), callback_(Napi::Persistent(callback)), context_(env, name), token_(std::make_shared<Token>(Token{this})) {
  poll_.data = this;
}

Napi::Object FdWatcher::Start(int fd, const std::string& what) {
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env_, &loop);
  int err = uv_poll_init(loop, &poll_, fd);
  if (err != 0) {
    Release();
    Napi::Env env = env_;
    delete this;
    Throw(env, what, -err, "uv_poll_init");
  }
  err = uv_poll_start(&poll_, UV_READABLE, OnPoll);
  if (err != 0) {
    Napi::Env env = env_;
    closed_ = true;
    Finish();  // the handle is registered with the loop: free it through uv_close
    Throw(env, what, -err, "uv_poll_start");
  }
  std::shared_ptr<Token> token = token_;
  Napi::Object handle = Napi::Object::New(env_);
  handle.Set("close", Napi::Function::New(
                          env_,
                          [token](const Napi::CallbackInfo& info) {
                            if (token->watcher) token->watcher->Close();
                            return info.Env().Undefined();
                          },
                          "close"));
  return handle;
}

void FdWatcher::OnPoll(uv_poll_t* handle, int status, int events) {
  auto* self = static_cast<FdWatcher*>(handle->data);
  if (self->closed_) return;
  Napi::HandleScope scope(self->env_);
  self->in_callback_ = true;
  if (status >= 0) {
    self->OnReadable();
  } else if (self->OnPollError() && !self->closed_ && uv_poll_start(&self->poll_, UV_READABLE, OnPoll) != 0) {
    self->closed_ = true;  // cannot poll again: nothing more will come
  }
  self->in_callback_ = false;
  if (self->closed_) self->Finish();
}

bool FdWatcher::Deliver(Napi::Value value) {
  if (closed_) return false;
  try {
    callback_.MakeCallback(env_.Global(), {value}, context_);
  } catch (const Napi::Error& e) {
    // Nobody up the stack can catch it: report it as Node does for any async callback.
    napi_fatal_exception(env_, e.Value());
    return false;
  }
  return !closed_;
}

void FdWatcher::Close() {
  if (closed_) return;
  closed_ = true;
  token_->watcher = nullptr;
  uv_poll_stop(&poll_);
  if (!in_callback_) Finish();
}

void FdWatcher::Finish() {
  Release();
  callback_.Reset();
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), [](uv_handle_t* h) { delete static_cast<FdWatcher*>(h->data); });
}

}  // namespace nf

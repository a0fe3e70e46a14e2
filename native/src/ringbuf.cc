// BPF ring buffer consumer on the event loop: ring_buffer__consume() when its epoll fd
// is readable; each sample is copied into a Buffer during the callback.
#include <bpf/libbpf.h>
#include <errno.h>

#include <string>

#include "errors.h"
#include "modules.h"
#include "watcher.h"

namespace nf {
namespace {

class RingBufWatcher : public FdWatcher {
 public:
  RingBufWatcher(Napi::Env env, Napi::Function cb) : FdWatcher(env, cb, "netfence:ringbuf") {}

  // Creates the libbpf consumer and starts polling; throws on failure.
  static Napi::Object Open(Napi::Env env, int map_fd, Napi::Function cb) {
    std::string what = "open ring buffer of map fd " + std::to_string(map_fd);
    auto* self = new RingBufWatcher(env, cb);
    self->rb_ = ring_buffer__new(map_fd, OnSample, self, nullptr);
    if (!self->rb_) {
      int err = errno;
      delete self;
      Throw(env, what, err, "ring_buffer__new");
    }
    return self->Start(ring_buffer__epoll_fd(self->rb_), what);
  }

 private:
  static int OnSample(void* ctx, void* data, size_t size) {
    auto* self = static_cast<RingBufWatcher*>(ctx);
    auto sample = Napi::Buffer<uint8_t>::Copy(self->env_, static_cast<uint8_t*>(data), size);
    return self->Deliver(sample) ? 0 : -ECANCELED;  // closed or threw: stop consuming
  }

  void OnReadable() override { ring_buffer__consume(rb_); }

  void Release() override {
    ring_buffer__free(rb_);
    rb_ = nullptr;
  }

  ring_buffer* rb_ = nullptr;
};

Napi::Value RingBufferOpen(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "ringBufferOpen");
  Napi::Function cb = ArgFunction(info, 1, "ringBufferOpen", "onSample");
  return RingBufWatcher::Open(info.Env(), fd, cb);
}

}  // namespace

void InitRingBuf(Napi::Env env, Napi::Object exports) {
  ExportAll(env, exports, {{"ringBufferOpen", RingBufferOpen}});
}

}  // namespace nf

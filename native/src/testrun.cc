// BPF_PROG_TEST_RUN: run a loaded program on a packet (and context) in the kernel; and
// the kernel's run-time statistics of programs on real traffic (BPF_ENABLE_STATS).
#include <bpf/bpf.h>

#include <string>

#include "bpfinfo.h"
#include "errors.h"
#include "modules.h"

namespace nf {
namespace {

Napi::Value ProgTestRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "progTestRun");
  Napi::Object opts = ArgObject(info, 1, "progTestRun", "opts");
  Napi::Value data_v = opts.Get("data");
  if (!data_v.IsBuffer()) ThrowArg(env, "progTestRun", "opts.data must be a Buffer");
  auto data = data_v.As<Napi::Buffer<uint8_t>>();

  Napi::Buffer<uint8_t> ctx_in;
  bool has_ctx = opts.Has("ctx") && !opts.Get("ctx").IsUndefined();
  if (has_ctx) {
    if (!opts.Get("ctx").IsBuffer()) ThrowArg(env, "progTestRun", "opts.ctx must be a Buffer");
    ctx_in = opts.Get("ctx").As<Napi::Buffer<uint8_t>>();
  }
  uint32_t data_out_size = data.Length() + 256;
  OptU32(opts, "dataOutSize", "progTestRun", &data_out_size);
  uint32_t ctx_out_size = has_ctx ? ctx_in.Length() : 0;
  OptU32(opts, "ctxOutSize", "progTestRun", &ctx_out_size);
  uint32_t repeat = 1;
  OptU32(opts, "repeat", "progTestRun", &repeat);

  std::string data_out(data_out_size, '\0');
  std::string ctx_out(ctx_out_size, '\0');
  LIBBPF_OPTS(bpf_test_run_opts, ro, .data_in = data.Data(), .data_out = data_out.data(),
              .data_size_in = static_cast<uint32_t>(data.Length()), .data_size_out = data_out_size,
              .ctx_in = has_ctx ? ctx_in.Data() : nullptr, .ctx_out = ctx_out_size ? ctx_out.data() : nullptr,
              .ctx_size_in = has_ctx ? static_cast<uint32_t>(ctx_in.Length()) : 0u, .ctx_size_out = ctx_out_size,
              .repeat = static_cast<int>(repeat));
  Check(env, bpf_prog_test_run_opts(fd, &ro), "test run program fd " + std::to_string(fd), "bpf_prog_test_run_opts");

  Napi::Object out = Napi::Object::New(env);
  out.Set("retval", ro.retval);
  out.Set("data", Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<uint8_t*>(data_out.data()),
                                             std::min<size_t>(ro.data_size_out, data_out_size)));
  if (ctx_out_size)
    out.Set("ctx", Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<uint8_t*>(ctx_out.data()),
                                              std::min<size_t>(ro.ctx_size_out, ctx_out_size)));
  out.Set("duration", ro.duration);
  return out;
}

// The kernel counts program runs and their time while some fd from BPF_ENABLE_STATS is
// open (closeFd ends it); a sysctl-free switch that ends with the process.
Napi::Value EnableRunStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Napi::Number::New(env, Check(env, bpf_enable_stats(BPF_STATS_RUN_TIME), "enable bpf run stats", "bpf_enable_stats"));
}

Napi::Value ProgRunStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id = ArgU32(info, 0, "progRunStats", "id");
  std::string what = "read run stats of program " + std::to_string(id);
  Fd prog{Check(env, bpf_prog_get_fd_by_id(id), what, "bpf_prog_get_fd_by_id")};
  auto pi = InfoOf<bpf_prog_info>(env, prog.fd, what);
  Napi::Object out = Napi::Object::New(env);
  out.Set("runCnt", Napi::Number::New(env, static_cast<double>(pi.run_cnt)));
  out.Set("runTimeNs", Napi::Number::New(env, static_cast<double>(pi.run_time_ns)));
  return out;
}

}  // namespace

void InitTestRun(Napi::Env env, Napi::Object exports) {
  ExportAll(env, exports, {{"progTestRun", ProgTestRun}, {"enableRunStats", EnableRunStats}, {"progRunStats", ProgRunStats}});
}

}  // namespace nf

// Error reporting shared by every part of the addon: JS Errors that read
// "verb object: cause" and carry code (errno name), errno and syscall.
#pragma once

#include <napi.h>

#include <string>

namespace nf {

// Kernel-internal "not supported" (ENOTSUPP) leaks out of some bpf() commands.
constexpr int kENOTSUPP = 524;

std::string ErrnoName(int err);
std::string ErrnoText(int err);

// Builds the error; callers throw it (or add properties first).
Napi::Error MakeError(Napi::Env env, const std::string& what, int err, const std::string& syscall,
                      const std::string& cause = "");

[[noreturn]] void Throw(Napi::Env env, const std::string& what, int err, const std::string& syscall,
                        const std::string& cause = "");

// libbpf convention: negative errno on failure. Returns ret when it is >= 0.
inline int Check(Napi::Env env, int ret, const std::string& what, const char* syscall) {
  if (ret < 0) Throw(env, what, -ret, syscall);
  return ret;
}

// Bad argument from JS: EINVAL naming the API function and the field.
[[noreturn]] void ThrowArg(Napi::Env env, const std::string& fn, const std::string& problem);

// Argument readers that throw ThrowArg errors naming fn and field.
uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* field);
int ArgFd(const Napi::CallbackInfo& info, size_t i, const char* fn);
std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* field);
Napi::Buffer<uint8_t> ArgBuffer(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* field);
Napi::Function ArgFunction(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* field);
Napi::Object ArgObject(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* field);

// Optional object properties (absent or undefined -> fallback).
bool OptU32(Napi::Object o, const char* key, const char* fn, uint32_t* out);
bool OptI32(Napi::Object o, const char* key, const char* fn, int32_t* out);
bool OptString(Napi::Object o, const char* key, const char* fn, std::string* out);
bool OptBool(Napi::Object o, const char* key, const char* fn, bool fallback);

}  // namespace nf

#include "errors.h"

#include <string.h>

namespace nf {

std::string ErrnoName(int err) {
  if (err == kENOTSUPP) return "ENOTSUPP";
  const char* name = strerrorname_np(err);
  return name ? name : "E" + std::to_string(err);
}

std::string ErrnoText(int err) {
  if (err == kENOTSUPP) return "Operation not supported";
  return strerror(err);
}

Napi::Error MakeError(Napi::Env env, const std::string& what, int err, const std::string& syscall,
                      const std::string& cause) {
  Napi::Error e = Napi::Error::New(env, what + ": " + (cause.empty() ? ErrnoText(err) : cause));
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

void Throw(Napi::Env env, const std::string& what, int err, const std::string& syscall, const std::string& cause) {
  throw MakeError(env, what, err, syscall, cause);
}

void ThrowArg(Napi::Env env, const std::string& fn, const std::string& problem) {
  Throw(env, fn + " arguments", EINVAL, fn, problem);
}

uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* field) {
  if (info.Length() <= i || !info[i].IsNumber()) ThrowArg(info.Env(), fn, std::string(field) + " must be a number");
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (v < 0 || v > 4294967295.0 || v != static_cast<double>(static_cast<uint64_t>(v)))
    ThrowArg(info.Env(), fn, std::string(field) + " must be an unsigned 32-bit integer");
  return static_cast<uint32_t>(v);
}

int ArgFd(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  if (info.Length() <= i || !info[i].IsNumber()) ThrowArg(info.Env(), fn, "fd must be a number");
  return info[i].As<Napi::Number>().Int32Value();
}

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* field) {
  if (info.Length() <= i || !info[i].IsString()) ThrowArg(info.Env(), fn, std::string(field) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

Napi::Buffer<uint8_t> ArgBuffer(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* field) {
  if (info.Length() <= i || !info[i].IsBuffer()) ThrowArg(info.Env(), fn, std::string(field) + " must be a Buffer");
  return info[i].As<Napi::Buffer<uint8_t>>();
}

Napi::Function ArgFunction(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* field) {
  if (info.Length() <= i || !info[i].IsFunction()) ThrowArg(info.Env(), fn, std::string(field) + " must be a function");
  return info[i].As<Napi::Function>();
}

Napi::Object ArgObject(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* field) {
  if (info.Length() <= i || info[i].IsUndefined()) return Napi::Object::New(info.Env());
  if (!info[i].IsObject()) ThrowArg(info.Env(), fn, std::string(field) + " must be an object");
  return info[i].As<Napi::Object>();
}

static bool Present(Napi::Object o, const char* key) {
  if (!o.Has(key)) return false;
  Napi::Value v = o.Get(key);
  return !v.IsUndefined() && !v.IsNull();
}

bool OptU32(Napi::Object o, const char* key, const char* fn, uint32_t* out) {
  if (!Present(o, key)) return false;
  Napi::Value v = o.Get(key);
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (d < 0 || d > 4294967295.0 || d != static_cast<double>(static_cast<uint64_t>(d)))
    ThrowArg(o.Env(), fn, std::string(key) + " must be an unsigned 32-bit integer");
  *out = static_cast<uint32_t>(d);
  return true;
}

bool OptI32(Napi::Object o, const char* key, const char* fn, int32_t* out) {
  if (!Present(o, key)) return false;
  Napi::Value v = o.Get(key);
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : 0.5;
  if (d < -2147483648.0 || d > 2147483647.0 || d != static_cast<double>(static_cast<int64_t>(d)))
    ThrowArg(o.Env(), fn, std::string(key) + " must be a signed 32-bit integer");
  *out = static_cast<int32_t>(d);
  return true;
}

bool OptString(Napi::Object o, const char* key, const char* fn, std::string* out) {
  if (!Present(o, key)) return false;
  Napi::Value v = o.Get(key);
  if (!v.IsString()) ThrowArg(o.Env(), fn, std::string(key) + " must be a string");
  *out = v.As<Napi::String>().Utf8Value();
  return true;
}

bool OptBool(Napi::Object o, const char* key, const char* fn, bool fallback) {
  if (!Present(o, key)) return fallback;
  Napi::Value v = o.Get(key);
  if (!v.IsBoolean()) ThrowArg(o.Env(), fn, std::string(key) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

}  // namespace nf

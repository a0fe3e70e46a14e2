// Each concern registers its functions on the addon's exports.
#pragma once

#include <napi.h>

#include <initializer_list>

namespace nf {

// One function of the addon: exports[name], a JS function of that name.
struct Export {
  const char* name;
  Napi::Function::Callback fn;
};

inline void ExportAll(Napi::Env env, Napi::Object exports, std::initializer_list<Export> fns) {
  for (const Export& e : fns) exports.Set(e.name, Napi::Function::New(env, e.fn, e.name));
}

void InitObject(Napi::Env env, Napi::Object exports);
void InitMaps(Napi::Env env, Napi::Object exports);
void InitAttach(Napi::Env env, Napi::Object exports);
void InitTestRun(Napi::Env env, Napi::Object exports);
void InitRingBuf(Napi::Env env, Napi::Object exports);
void InitLinks(Napi::Env env, Napi::Object exports);
void InitNeigh(Napi::Env env, Napi::Object exports);
void InitRouting(Napi::Env env, Napi::Object exports);
void InitNetns(Napi::Env env, Napi::Object exports);
void InitProcess(Napi::Env env, Napi::Object exports);
void InitGateway(Napi::Env env, Napi::Object exports);

}  // namespace nf

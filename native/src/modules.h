// Each concern registers its functions on the addon's exports.
#pragma once

#include <napi.h>

namespace nf {

void InitObject(Napi::Env env, Napi::Object exports);
void InitMaps(Napi::Env env, Napi::Object exports);
void InitAttach(Napi::Env env, Napi::Object exports);
void InitTestRun(Napi::Env env, Napi::Object exports);
void InitRingBuf(Napi::Env env, Napi::Object exports);
void InitLinks(Napi::Env env, Napi::Object exports);
void InitRouting(Napi::Env env, Napi::Object exports);
void InitNetns(Napi::Env env, Napi::Object exports);

}  // namespace nf

// netfence_native: thin node-addon-api bindings over libbpf and libnl-route.
#include "modules.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  nf::InitObject(env, exports);
  nf::InitMaps(env, exports);
  nf::InitAttach(env, exports);
  nf::InitTestRun(env, exports);
  nf::InitRingBuf(env, exports);
  nf::InitLinks(env, exports);
  nf::InitNeigh(env, exports);
  nf::InitRouting(env, exports);
  nf::InitNetns(env, exports);
  nf::InitProcess(env, exports);
  nf::InitGateway(env, exports);
  return exports;
}

NODE_API_MODULE(netfence_native, Init)

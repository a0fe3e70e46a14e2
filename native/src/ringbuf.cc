#include "modules.h"
namespace nf { void InitRingBuf(Napi::Env, Napi::Object) {} }

#include "modules.h"
namespace nf { void InitRouting(Napi::Env, Napi::Object) {} }

#include "modules.h"
namespace nf { void InitAttach(Napi::Env, Napi::Object) {} }

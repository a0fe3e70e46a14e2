#include "modules.h"
namespace nf { void InitLinks(Napi::Env, Napi::Object) {} }

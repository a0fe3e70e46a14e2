// netfence's clsact filter, as attach.cc places it and the link watcher recognises it.
#pragma once

#include <cstdint>

namespace nf {

// Handle "NF", priority 1 so that it runs before any other tc user's filter at a higher
// number (a filter ahead of ours could end a packet's classification before policy sees
// it). Agents before this one used priority "NF": such a filter is removed once ours is
// in place.
constexpr uint32_t kTcHandle = 0x4e46;
constexpr uint32_t kTcPriority = 1;
constexpr uint32_t kLegacyTcPriority = 0x4e46;
// A second copy of ours, there only while ours moves ahead of a filter added after it.
constexpr uint32_t kTcSpareHandle = 0x4e47;

}  // namespace nf

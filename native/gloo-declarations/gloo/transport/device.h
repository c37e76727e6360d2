// Declarations only (see native/gloo-declarations/README.md): held through smart pointers by ProcessGroupGloo.
#pragma once

namespace gloo::transport {

class Device;
class UnboundBuffer;

}  // namespace gloo::transport

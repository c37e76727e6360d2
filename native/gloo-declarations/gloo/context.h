// Declaration only (see native/gloo-declarations/README.md): libtorch's copy of gloo defines it.
#pragma once

#include <chrono>

namespace gloo {

class Context {
 public:
  void setTimeout(std::chrono::milliseconds timeout);
};

}  // namespace gloo

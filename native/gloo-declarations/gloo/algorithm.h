// Included by ProcessGroupGloo.hpp; nothing of it is used there (see native/gloo-declarations/README.md).
#pragma once

#include "gloo/context.h"

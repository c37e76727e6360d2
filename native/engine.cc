// The native half of the tensor engine: a thin, boring bridge from Node-API to libtorch.
//
// Why a generic dispatcher call path instead of one binding per operator:
//   Every ATen operator is registered with the c10 dispatcher under a schema such as
//   "aten::conv2d(Tensor input, Tensor weight, Tensor? bias=None, SymInt[2] stride=1, ...) -> Tensor".
//   We look an operator up once by (name, overload), keep its handle, and on every call turn the JS
//   arguments into IValues guided by the schema's argument types, call the boxed kernel, and turn the
//   returned IValues back into JS values. The dispatcher runs the same kernels PyTorch runs, autograd and
//   autocast included (they are dispatch keys), so one ~50-line conversion covers hundreds of operators
//   and their gradients, and adding an operator to the TypeScript API needs no C++ at all. Argument
//   defaults also come from the schema, so TypeScript may leave trailing arguments out.
//   What cannot go through the dispatcher (tensor lifetime, data transfer, autograd entry points, RNG
//   generators, threads, autocast state, build information, process groups across processes) has a small
//   explicit function below.
//
// Tensors live in a per-environment slot table; JavaScript holds integer handles. A handle is freed
// explicitly (scopes, `using`, dispose) so native memory never waits for the JS garbage collector; a
// FinalizationRegistry on the JS side is only a backstop. Every environment (the main thread and each
// worker_threads Worker) has its own table, so the addon is context-aware.
//
// All libtorch errors are caught and rethrown as JS errors carrying libtorch's message (without the C++
// backtrace); nothing here may terminate the process.

#include <node_api.h>

#include <ATen/ATen.h>
#include <ATen/DeviceAccelerator.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>  // -DUSE_C10D_GLOO, native/gloo-declarations
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <torch/version.h>

#include <dlfcn.h>

#include <cstring>
#include <functional>
#include <sstream>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#ifndef HDB_LIBTORCH_DIR
#define HDB_LIBTORCH_DIR "unknown"
#endif

namespace {

// A process group of the distributed section (see "distributed" below) and the timeout its messages name.
struct DistGroup {
  c10::intrusive_ptr<c10d::ProcessGroup> group;
  int64_t timeoutMs = 0;
};

struct Engine {
  std::vector<at::Tensor> slots;
  std::vector<int32_t> freeSlots;
  int64_t live = 0;
  std::vector<c10::OperatorHandle> ops;
  std::unordered_map<std::string, int32_t> opIds;
  std::vector<at::Generator> generators;
  std::vector<DistGroup> groups;  // destroyed ones stay as empty slots, so ids are never reused
};

// ---- small Node-API helpers -------------------------------------------------------------------------

struct JsError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A collective or the rendezvous failed (a peer died, a timeout): thrown as code HDB_DISTRIBUTED.
struct DistError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

#define NAPI_OK(call)                                            \
  do {                                                           \
    if ((call) != napi_ok) throw JsError("Node-API call failed: " #call); \
  } while (0)

Engine& engineOf(napi_env env) {
  void* data = nullptr;
  NAPI_OK(napi_get_instance_data(env, &data));
  return *static_cast<Engine*>(data);
}

napi_valuetype typeOf(napi_env env, napi_value v) {
  napi_valuetype t;
  NAPI_OK(napi_typeof(env, v, &t));
  return t;
}

bool isNullish(napi_env env, napi_value v) {
  auto t = typeOf(env, v);
  return t == napi_undefined || t == napi_null;
}

double getNumber(napi_env env, napi_value v, const char* what) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) throw JsError(std::string("expected a number for ") + what);
  return d;
}

int64_t getInt(napi_env env, napi_value v, const char* what) {
  if (typeOf(env, v) == napi_bigint) {
    int64_t i;
    bool lossless;
    NAPI_OK(napi_get_value_bigint_int64(env, v, &i, &lossless));
    return i;
  }
  double d = getNumber(env, v, what);
  if (d != static_cast<double>(static_cast<int64_t>(d))) {
    throw JsError(std::string("expected an integer for ") + what + ", got " + std::to_string(d));
  }
  return static_cast<int64_t>(d);
}

bool getBool(napi_env env, napi_value v, const char* what) {
  bool b;
  if (napi_get_value_bool(env, v, &b) != napi_ok) throw JsError(std::string("expected a boolean for ") + what);
  return b;
}

std::string getString(napi_env env, napi_value v, const char* what) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, nullptr, 0, &len) != napi_ok) {
    throw JsError(std::string("expected a string for ") + what);
  }
  std::string s(len, '\0');
  NAPI_OK(napi_get_value_string_utf8(env, v, s.data(), len + 1, &len));
  return s;
}

uint32_t arrayLength(napi_env env, napi_value v, const char* what) {
  bool isArray;
  NAPI_OK(napi_is_array(env, v, &isArray));
  if (!isArray) throw JsError(std::string("expected an array for ") + what);
  uint32_t n;
  NAPI_OK(napi_get_array_length(env, v, &n));
  return n;
}

napi_value element(napi_env env, napi_value arr, uint32_t i) {
  napi_value e;
  NAPI_OK(napi_get_element(env, arr, i, &e));
  return e;
}

napi_value number(napi_env env, double d) {
  napi_value v;
  NAPI_OK(napi_create_double(env, d, &v));
  return v;
}

napi_value boolean(napi_env env, bool b) {
  napi_value v;
  NAPI_OK(napi_get_boolean(env, b, &v));
  return v;
}

napi_value string(napi_env env, const std::string& s) {
  napi_value v;
  NAPI_OK(napi_create_string_utf8(env, s.data(), s.size(), &v));
  return v;
}

napi_value null(napi_env env) {
  napi_value v;
  NAPI_OK(napi_get_null(env, &v));
  return v;
}

napi_value undefined(napi_env env) {
  napi_value v;
  NAPI_OK(napi_get_undefined(env, &v));
  return v;
}

napi_value newArray(napi_env env, size_t n) {
  napi_value v;
  NAPI_OK(napi_create_array_with_length(env, n, &v));
  return v;
}

void setElement(napi_env env, napi_value arr, uint32_t i, napi_value v) { NAPI_OK(napi_set_element(env, arr, i, v)); }

void setProperty(napi_env env, napi_value obj, const char* key, napi_value v) {
  NAPI_OK(napi_set_named_property(env, obj, key, v));
}

napi_value intList(napi_env env, c10::IntArrayRef values) {
  napi_value arr = newArray(env, values.size());
  for (size_t i = 0; i < values.size(); ++i) setElement(env, arr, i, number(env, static_cast<double>(values[i])));
  return arr;
}

// Arguments of a call, read once.
struct Args {
  napi_env env;
  std::vector<napi_value> v;
  Args(napi_env e, napi_callback_info info) : env(e) {
    // One Node-API call for the common case (at most 16 arguments), a second only for longer calls.
    size_t argc = 16;
    v.resize(argc);
    NAPI_OK(napi_get_cb_info(env, info, &argc, v.data(), nullptr, nullptr));
    if (argc > 16) {
      v.resize(argc);
      NAPI_OK(napi_get_cb_info(env, info, &argc, v.data(), nullptr, nullptr));
    }
    v.resize(argc);
  }
  napi_value operator[](size_t i) const {
    if (i >= v.size()) throw JsError("missing argument " + std::to_string(i));
    return v[i];
  }
  size_t size() const { return v.size(); }
};

// ---- the tensor slot table --------------------------------------------------------------------------

int32_t put(napi_env env, at::Tensor t) {
  Engine& e = engineOf(env);
  int32_t id;
  if (!e.freeSlots.empty()) {
    id = e.freeSlots.back();
    e.freeSlots.pop_back();
    e.slots[id] = std::move(t);
  } else {
    id = static_cast<int32_t>(e.slots.size());
    e.slots.push_back(std::move(t));
  }
  e.live++;
  return id;
}

const at::Tensor& tensorAt(napi_env env, napi_value v) {
  Engine& e = engineOf(env);
  int32_t id;
  if (napi_get_value_int32(env, v, &id) != napi_ok) throw JsError("expected a tensor handle");
  if (id < 0 || static_cast<size_t>(id) >= e.slots.size() || !e.slots[id].defined()) {
    throw JsError("tensor handle " + std::to_string(id) + " is invalid or was already disposed");
  }
  return e.slots[id];
}

napi_value tensorValue(napi_env env, at::Tensor t) {
  if (!t.defined()) return null(env);
  return number(env, put(env, std::move(t)));
}

// ---- JS value -> IValue, guided by the schema's argument type --------------------------------------

c10::IValue toIValue(napi_env env, napi_value v, const c10::TypePtr& type, std::optional<int32_t> fixedLength,
                     const std::string& name);

c10::Scalar toScalar(napi_env env, napi_value v, const std::string& name) {
  auto t = typeOf(env, v);
  if (t == napi_boolean) return c10::Scalar(getBool(env, v, name.c_str()));
  if (t == napi_bigint) return c10::Scalar(getInt(env, v, name.c_str()));
  double d = getNumber(env, v, name.c_str());
  // Integer-valued JS numbers become integer scalars, so `intTensor + 2` stays an integer tensor as in
  // PyTorch; for floating tensors the value is identical either way.
  if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9007199254740992.0) {
    return c10::Scalar(static_cast<int64_t>(d));
  }
  return c10::Scalar(d);
}

c10::IValue toIValue(napi_env env, napi_value v, const c10::TypePtr& type, std::optional<int32_t> fixedLength,
                     const std::string& name) {
  using K = c10::TypeKind;
  switch (type->kind()) {
    case K::OptionalType:
      if (isNullish(env, v)) return c10::IValue();
      return toIValue(env, v, type->castRaw<c10::OptionalType>()->getElementType(), fixedLength, name);
    case K::TensorType:
      return tensorAt(env, v);
    case K::IntType:
    case K::SymIntType:
      return getInt(env, v, name.c_str());
    case K::FloatType:
    case K::SymFloatType:
      return getNumber(env, v, name.c_str());
    case K::BoolType:
    case K::SymBoolType:
      return getBool(env, v, name.c_str());
    case K::NumberType:
      return toScalar(env, v, name);
    case K::StringType:
      return getString(env, v, name.c_str());
    case K::DeviceObjType:
      return c10::Device(getString(env, v, name.c_str()));
    case K::GeneratorType: {
      Engine& e = engineOf(env);
      int64_t id = getInt(env, v, name.c_str());
      if (id < 0 || static_cast<size_t>(id) >= e.generators.size()) throw JsError("invalid generator for " + name);
      return e.generators[id];
    }
    case K::ListType: {
      const auto& elem = type->castRaw<c10::ListType>()->getElementType();
      const auto ek = elem->kind();
      bool isArray;
      NAPI_OK(napi_is_array(env, v, &isArray));
      if (!isArray) {
        // `int[2] stride=1` accepts a single int, broadcast to the fixed length (as in PyTorch).
        if ((ek == K::IntType || ek == K::SymIntType) && typeOf(env, v) == napi_number) {
          return std::vector<int64_t>(fixedLength.value_or(1), getInt(env, v, name.c_str()));
        }
        throw JsError("expected an array for " + name);
      }
      uint32_t n = arrayLength(env, v, name.c_str());
      if (ek == K::IntType || ek == K::SymIntType) {
        std::vector<int64_t> out(n);
        for (uint32_t i = 0; i < n; ++i) out[i] = getInt(env, element(env, v, i), name.c_str());
        return out;
      }
      if (ek == K::FloatType) {
        std::vector<double> out(n);
        for (uint32_t i = 0; i < n; ++i) out[i] = getNumber(env, element(env, v, i), name.c_str());
        return out;
      }
      if (ek == K::BoolType) {
        c10::List<bool> out;
        for (uint32_t i = 0; i < n; ++i) out.push_back(getBool(env, element(env, v, i), name.c_str()));
        return out;
      }
      if (ek == K::TensorType) {
        std::vector<at::Tensor> out;
        out.reserve(n);
        for (uint32_t i = 0; i < n; ++i) out.push_back(tensorAt(env, element(env, v, i)));
        return out;
      }
      if (ek == K::OptionalType &&
          elem->castRaw<c10::OptionalType>()->getElementType()->kind() == K::TensorType) {
        c10::List<std::optional<at::Tensor>> out;
        for (uint32_t i = 0; i < n; ++i) {
          napi_value e = element(env, v, i);
          out.push_back(isNullish(env, e) ? std::optional<at::Tensor>() : std::optional<at::Tensor>(tensorAt(env, e)));
        }
        return out;
      }
      break;
    }
    default:
      break;
  }
  throw JsError("argument '" + name + "' has schema type " + type->str() + ", which the engine cannot pass yet");
}

napi_value fromIValue(napi_env env, const c10::IValue& v) {
  if (v.isTensor()) return tensorValue(env, v.toTensor());
  if (v.isNone()) return null(env);
  if (v.isInt()) return number(env, static_cast<double>(v.toInt()));
  if (v.isDouble()) return number(env, v.toDouble());
  if (v.isBool()) return boolean(env, v.toBool());
  if (v.isString()) return string(env, v.toStringRef());
  if (v.isScalar()) {
    auto s = v.toScalar();
    return s.isBoolean() ? boolean(env, s.toBool()) : number(env, s.toDouble());
  }
  if (v.isTensorList()) {
    auto list = v.toTensorVector();
    napi_value arr = newArray(env, list.size());
    for (size_t i = 0; i < list.size(); ++i) setElement(env, arr, i, tensorValue(env, list[i]));
    return arr;
  }
  if (v.isIntList()) return intList(env, v.toIntVector());
  if (v.isTuple() || v.isList()) {
    std::vector<c10::IValue> items;
    if (v.isTuple()) {
      for (const auto& e : v.toTupleRef().elements()) items.push_back(e);
    } else {
      for (const auto& e : v.toListRef()) items.push_back(e);
    }
    napi_value arr = newArray(env, items.size());
    for (size_t i = 0; i < items.size(); ++i) setElement(env, arr, i, fromIValue(env, items[i]));
    return arr;
  }
  throw JsError("the engine cannot return a value of type " + v.tagKind() + " yet");
}

// ---- exported functions ------------------------------------------------------------------------------

using Fn = napi_value (*)(napi_env, const Args&);

template <Fn F>
napi_value guarded(napi_env env, napi_callback_info info) {
  try {
    Args args(env, info);
    return F(env, args);
  } catch (const c10::Error& e) {
    napi_throw_error(env, "LIBTORCH", e.what_without_backtrace());
  } catch (const JsError& e) {
    napi_throw_type_error(env, "HDB_ENGINE_ARGUMENT", e.what());
  } catch (const DistError& e) {
    napi_throw_error(env, "HDB_DISTRIBUTED", e.what());
  } catch (const std::exception& e) {
    napi_throw_error(env, "LIBTORCH", e.what());
  } catch (...) {
    napi_throw_error(env, "LIBTORCH", "unknown native error");
  }
  return nullptr;
}

// opFind(name, overload) -> op id, or -1 when this libtorch has no such operator.
napi_value OpFind(napi_env env, const Args& a) {
  std::string name = getString(env, a[0], "operator name");
  std::string overload = getString(env, a[1], "overload name");
  Engine& e = engineOf(env);
  std::string key = name + "." + overload;
  auto it = e.opIds.find(key);
  if (it != e.opIds.end()) return number(env, it->second);
  auto handle = c10::Dispatcher::singleton().findSchema({name, overload});
  if (!handle) return number(env, -1);
  int32_t id = static_cast<int32_t>(e.ops.size());
  e.ops.push_back(*handle);
  e.opIds[key] = id;
  return number(env, id);
}

napi_value OpSchema(napi_env env, const Args& a) {
  Engine& e = engineOf(env);
  int64_t id = getInt(env, a[0], "op id");
  if (id < 0 || static_cast<size_t>(id) >= e.ops.size()) throw JsError("invalid op id");
  std::ostringstream s;
  s << e.ops[id].schema();
  return string(env, s.str());
}

// call(opId, wantResult, ...args): positional arguments in schema order; missing or undefined ones take
// the schema's default.
napi_value Call(napi_env env, const Args& a) {
  Engine& e = engineOf(env);
  int64_t id = getInt(env, a[0], "op id");
  if (id < 0 || static_cast<size_t>(id) >= e.ops.size()) throw JsError("invalid op id");
  const c10::OperatorHandle& op = e.ops[id];
  bool wantResult = getBool(env, a[1], "wantResult");
  const auto& schema = op.schema();
  const auto& params = schema.arguments();
  const size_t given = a.size() - 2;
  if (given > params.size()) {
    throw JsError(schema.name() + " takes " + std::to_string(params.size()) + " arguments, got " +
                  std::to_string(given));
  }
  torch::jit::Stack stack;
  stack.reserve(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& p = params[i];
    if (i < given && typeOf(env, a[i + 2]) != napi_undefined) {
      stack.push_back(toIValue(env, a[i + 2], p.type(), p.N(), p.name()));
    } else if (p.default_value()) {
      stack.push_back(*p.default_value());
    } else {
      throw JsError(schema.name() + ": required argument '" + p.name() + "' is missing");
    }
  }
  try {
    op.callBoxed(&stack);
  } catch (const c10::Error& err) {
    throw std::runtime_error(schema.name() + ": " + err.what_without_backtrace());
  }
  if (!wantResult) return undefined(env);
  if (stack.size() == 1) return fromIValue(env, stack[0]);
  napi_value arr = newArray(env, stack.size());
  for (size_t i = 0; i < stack.size(); ++i) setElement(env, arr, i, fromIValue(env, stack[i]));
  return arr;
}

std::vector<int64_t> shapeArg(napi_env env, napi_value v) {
  uint32_t n = arrayLength(env, v, "shape");
  std::vector<int64_t> shape(n);
  for (uint32_t i = 0; i < n; ++i) {
    shape[i] = getInt(env, element(env, v, i), "shape");
    if (shape[i] < 0) throw JsError("shape entries must be >= 0, got " + std::to_string(shape[i]));
  }
  return shape;
}

c10::ScalarType dtypeArg(napi_env env, napi_value v) {
  int64_t code = getInt(env, v, "dtype");
  if (code < 0 || code >= static_cast<int64_t>(c10::ScalarType::NumOptions)) throw JsError("invalid dtype code");
  return static_cast<c10::ScalarType>(code);
}

// fromBytes(bytes: ArrayBufferView | ArrayBuffer, dtype, shape) -> handle. One copy into a new CPU tensor.
napi_value FromBytes(napi_env env, const Args& a) {
  void* data = nullptr;
  size_t length = 0;
  bool isTyped = false, isDataView = false, isBuffer = false;
  napi_is_typedarray(env, a[0], &isTyped);
  napi_is_dataview(env, a[0], &isDataView);
  napi_is_arraybuffer(env, a[0], &isBuffer);
  if (isTyped) {
    napi_typedarray_type type;
    size_t elements, offset;
    napi_value ab;
    NAPI_OK(napi_get_typedarray_info(env, a[0], &type, &elements, &data, &ab, &offset));
    size_t elementSize = 1;
    switch (type) {
      case napi_int16_array: case napi_uint16_array: elementSize = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: elementSize = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: elementSize = 8; break;
      default: elementSize = 1;
    }
    length = elements * elementSize;
  } else if (isDataView) {
    napi_value ab;
    size_t offset;
    NAPI_OK(napi_get_dataview_info(env, a[0], &length, &data, &ab, &offset));
  } else if (isBuffer) {
    NAPI_OK(napi_get_arraybuffer_info(env, a[0], &data, &length));
  } else {
    throw JsError("fromBytes expects an ArrayBuffer or a typed array");
  }
  auto dtype = dtypeArg(env, a[1]);
  auto shape = shapeArg(env, a[2]);
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtype));
  if (static_cast<size_t>(t.nbytes()) != length) {
    throw JsError("fromBytes: shape and dtype need " + std::to_string(t.nbytes()) + " bytes, got " +
                  std::to_string(length));
  }
  if (length > 0) std::memcpy(t.data_ptr(), data, length);
  return tensorValue(env, t);
}

// toBytes(handle) -> ArrayBuffer holding a copy of the tensor's elements (moved to CPU, contiguous).
napi_value ToBytes(napi_env env, const Args& a) {
  at::Tensor t = tensorAt(env, a[0]).detach().to(at::kCPU).contiguous();
  void* out;
  napi_value ab;
  NAPI_OK(napi_create_arraybuffer(env, t.nbytes(), &out, &ab));
  if (t.nbytes() > 0) std::memcpy(out, t.data_ptr(), t.nbytes());
  return ab;
}

// memoryView(handle) -> ArrayBuffer over the tensor's own memory (CPU, contiguous). The buffer keeps the
// storage alive until it is garbage collected. Used to read files straight into tensors with no extra copy.
napi_value MemoryView(napi_env env, const Args& a) {
  const at::Tensor& t = tensorAt(env, a[0]);
  if (!t.device().is_cpu() || !t.is_contiguous()) throw JsError("memoryView needs a contiguous CPU tensor");
  napi_value ab;
  if (t.nbytes() == 0) {
    void* unused;
    NAPI_OK(napi_create_arraybuffer(env, 0, &unused, &ab));
    return ab;
  }
  auto* keep = new at::Tensor(t);
  napi_status status = napi_create_external_arraybuffer(
      env, t.data_ptr(), t.nbytes(),
      [](napi_env env, void*, void* hint) {
        auto* held = static_cast<at::Tensor*>(hint);
        int64_t unused;
        napi_adjust_external_memory(env, -static_cast<int64_t>(held->nbytes()), &unused);
        delete held;
      },
      keep, &ab);
  if (status != napi_ok) {
    delete keep;
    throw JsError("memoryView: external buffers are not allowed in this runtime");
  }
  // Tell V8 how much native memory this small JS object pins, so the garbage collector collects it in time.
  int64_t unused;
  napi_adjust_external_memory(env, static_cast<int64_t>(t.nbytes()), &unused);
  return ab;
}

napi_value Free(napi_env env, const Args& a) {
  Engine& e = engineOf(env);
  int32_t id;
  NAPI_OK(napi_get_value_int32(env, a[0], &id));
  if (id >= 0 && static_cast<size_t>(id) < e.slots.size() && e.slots[id].defined()) {
    e.slots[id] = at::Tensor();
    e.freeSlots.push_back(id);
    e.live--;
  }
  return undefined(env);
}

// info(handle) -> [dtypeCode, device, shape, requiresGrad]
napi_value Info(napi_env env, const Args& a) {
  const at::Tensor& t = tensorAt(env, a[0]);
  napi_value arr = newArray(env, 4);
  setElement(env, arr, 0, number(env, static_cast<double>(t.scalar_type())));
  setElement(env, arr, 1, string(env, t.device().str()));
  setElement(env, arr, 2, intList(env, t.sizes()));
  setElement(env, arr, 3, boolean(env, t.requires_grad()));
  return arr;
}

napi_value Shape(napi_env env, const Args& a) { return intList(env, tensorAt(env, a[0]).sizes()); }

napi_value RequiresGrad(napi_env env, const Args& a) { return boolean(env, tensorAt(env, a[0]).requires_grad()); }

napi_value SetRequiresGrad(napi_env env, const Args& a) {
  at::Tensor t = tensorAt(env, a[0]);
  t.set_requires_grad(getBool(env, a[1], "requiresGrad"));
  return undefined(env);
}

napi_value IsLeaf(napi_env env, const Args& a) { return boolean(env, tensorAt(env, a[0]).is_leaf()); }

napi_value GradFn(napi_env env, const Args& a) {
  const auto& fn = tensorAt(env, a[0]).grad_fn();
  return fn ? string(env, fn->name()) : null(env);
}

napi_value GetGrad(napi_env env, const Args& a) { return tensorValue(env, tensorAt(env, a[0]).grad()); }

napi_value SetGrad(napi_env env, const Args& a) {
  at::Tensor t = tensorAt(env, a[0]);
  t.mutable_grad() = isNullish(env, a[1]) ? at::Tensor() : tensorAt(env, a[1]);
  return undefined(env);
}

std::vector<at::Tensor> tensorList(napi_env env, napi_value v, const char* what, bool allowNull) {
  uint32_t n = arrayLength(env, v, what);
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    napi_value e = element(env, v, i);
    if (allowNull && isNullish(env, e)) {
      out.emplace_back();
    } else {
      out.push_back(tensorAt(env, e));
    }
  }
  return out;
}

// backward(outputs, gradOutputs (null entries allowed), retainGraph, createGraph)
napi_value Backward(napi_env env, const Args& a) {
  auto outputs = tensorList(env, a[0], "outputs", false);
  auto grads = tensorList(env, a[1], "gradOutputs", true);
  std::optional<bool> retain;
  if (!isNullish(env, a[2])) retain = getBool(env, a[2], "retainGraph");
  bool create = getBool(env, a[3], "createGraph");
  torch::autograd::backward(outputs, grads, retain, create);
  return undefined(env);
}

// grad(outputs, inputs, gradOutputs, retainGraph, createGraph, allowUnused) -> (handle | null)[]
napi_value Grad(napi_env env, const Args& a) {
  auto outputs = tensorList(env, a[0], "outputs", false);
  auto inputs = tensorList(env, a[1], "inputs", false);
  auto grads = tensorList(env, a[2], "gradOutputs", true);
  std::optional<bool> retain;
  if (!isNullish(env, a[3])) retain = getBool(env, a[3], "retainGraph");
  bool create = getBool(env, a[4], "createGraph");
  bool allowUnused = getBool(env, a[5], "allowUnused");
  auto result = torch::autograd::grad(outputs, inputs, grads, retain, create, allowUnused);
  napi_value arr = newArray(env, result.size());
  for (size_t i = 0; i < result.size(); ++i) setElement(env, arr, i, tensorValue(env, result[i]));
  return arr;
}

napi_value GradEnabled(napi_env env, const Args&) { return boolean(env, c10::GradMode::is_enabled()); }

napi_value SetGradEnabled(napi_env env, const Args& a) {
  bool previous = c10::GradMode::is_enabled();
  c10::GradMode::set_enabled(getBool(env, a[0], "enabled"));
  return boolean(env, previous);
}

uint64_t seedArg(napi_env env, napi_value v) {
  if (typeOf(env, v) == napi_bigint) {
    uint64_t s;
    bool lossless;
    NAPI_OK(napi_get_value_bigint_uint64(env, v, &s, &lossless));
    return s;
  }
  double d = getNumber(env, v, "seed");
  if (d < 0 || d != std::floor(d) || d > 9007199254740991.0) {
    throw JsError("seed must be a non-negative integer (use a BigInt above 2^53), got " + std::to_string(d));
  }
  return static_cast<uint64_t>(d);
}

// manualSeed(seed): as torch.manual_seed, seeds the default CPU generator and every CUDA device's.
napi_value ManualSeed(napi_env env, const Args& a) {
  uint64_t seed = seedArg(env, a[0]);
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(seed);
  }
  const auto& cuda = at::detail::getCUDAHooks();
  if (cuda.hasCUDA()) {
    for (c10::DeviceIndex i = 0; i < cuda.deviceCount(); ++i) {
      auto gen = cuda.getDefaultGenerator(i);
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_current_seed(seed);
    }
  }
  return undefined(env);
}

// generatorNew(device, seed) -> generator id. A private generator that does not touch the global one.
napi_value GeneratorNew(napi_env env, const Args& a) {
  c10::Device device(getString(env, a[0], "device"));
  uint64_t seed = seedArg(env, a[1]);
  at::Generator gen;
  if (device.is_cpu()) {
    gen = at::detail::createCPUGenerator(seed);
  } else if (device.is_cuda()) {
    gen = at::detail::getCUDAHooks().getNewGenerator(device.has_index() ? device.index() : 0);
    gen.set_current_seed(seed);
  } else {
    throw JsError("generators are supported on cpu and cuda, not " + device.str());
  }
  Engine& e = engineOf(env);
  e.generators.push_back(gen);
  return number(env, static_cast<double>(e.generators.size() - 1));
}

at::Generator& generatorAt(napi_env env, napi_value v) {
  Engine& e = engineOf(env);
  int64_t id = getInt(env, v, "generator");
  if (id < 0 || static_cast<size_t>(id) >= e.generators.size()) throw JsError("invalid generator id");
  return e.generators[id];
}

napi_value GeneratorSetSeed(napi_env env, const Args& a) {
  auto& gen = generatorAt(env, a[0]);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_current_seed(seedArg(env, a[1]));
  return undefined(env);
}

// generatorState(id | -1 for the default CPU generator) -> uint8 tensor handle (for checkpoints).
napi_value GeneratorGetState(napi_env env, const Args& a) {
  int64_t id = getInt(env, a[0], "generator");
  at::Generator gen = id < 0 ? at::detail::getDefaultCPUGenerator() : generatorAt(env, a[0]);
  std::lock_guard<std::mutex> lock(gen.mutex());
  return tensorValue(env, gen.get_state());
}

napi_value GeneratorSetState(napi_env env, const Args& a) {
  int64_t id = getInt(env, a[0], "generator");
  at::Generator gen = id < 0 ? at::detail::getDefaultCPUGenerator() : generatorAt(env, a[0]);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(tensorAt(env, a[1]));
  return undefined(env);
}

napi_value SetNumThreads(napi_env env, const Args& a) {
  int64_t n = getInt(env, a[0], "threads");
  if (n < 1) throw JsError("setNumThreads needs at least 1 thread, got " + std::to_string(n));
  at::set_num_threads(static_cast<int>(n));
  return undefined(env);
}

napi_value GetNumThreads(napi_env env, const Args&) { return number(env, at::get_num_threads()); }

// memory() -> { tensors, bytes }: live handles of this environment and the bytes of their distinct storages.
napi_value Memory(napi_env env, const Args&) {
  Engine& e = engineOf(env);
  std::unordered_set<const void*> seen;
  double bytes = 0;
  for (const auto& t : e.slots) {
    if (!t.defined() || !t.has_storage()) continue;
    const void* key = t.storage().unsafeGetStorageImpl();
    if (seen.insert(key).second) bytes += static_cast<double>(t.storage().nbytes());
  }
  napi_value obj;
  NAPI_OK(napi_create_object(env, &obj));
  setProperty(env, obj, "tensors", number(env, static_cast<double>(e.live)));
  setProperty(env, obj, "bytes", number(env, bytes));
  return obj;
}

// autocastSet(deviceType, enabled, dtypeCode) -> previous [enabled, dtypeCode]. Entering a region increments
// the nesting and leaving the outermost one clears the cast cache, as torch.autocast does.
napi_value AutocastSet(napi_env env, const Args& a) {
  c10::DeviceType type = c10::Device(getString(env, a[0], "device type")).type();
  bool enabled = getBool(env, a[1], "enabled");
  auto dtype = dtypeArg(env, a[2]);
  napi_value previous = newArray(env, 2);
  setElement(env, previous, 0, boolean(env, at::autocast::is_autocast_enabled(type)));
  setElement(env, previous, 1, number(env, static_cast<double>(at::autocast::get_autocast_dtype(type))));
  at::autocast::set_autocast_enabled(type, enabled);
  at::autocast::set_autocast_dtype(type, dtype);
  return previous;
}

napi_value AutocastNest(napi_env env, const Args& a) {
  if (getBool(env, a[0], "enter")) {
    at::autocast::increment_nesting();
  } else if (at::autocast::decrement_nesting() == 0) {
    at::autocast::clear_cache();
  }
  return undefined(env);
}

napi_value Devices(napi_env env, const Args&) {
  napi_value obj;
  NAPI_OK(napi_create_object(env, &obj));
  const auto& cuda = at::detail::getCUDAHooks();
  bool hasCuda = cuda.hasCUDA();
  setProperty(env, obj, "cuda", number(env, hasCuda ? cuda.deviceCount() : 0));
  setProperty(env, obj, "mps", boolean(env, at::hasMPS()));
  return obj;
}

napi_value Synchronize(napi_env env, const Args& a) {
  c10::Device device(getString(env, a[0], "device"));
  if (device.is_cuda()) at::detail::getCUDAHooks().deviceSynchronize(device.has_index() ? device.index() : 0);
  return undefined(env);
}

// deviceMemory(device, reset) -> the caching allocator's counters for an accelerator device, as
// torch.cuda.memory_stats() reports them (allocated = held by live tensors, reserved = taken from the device by
// the cache), current and peak, in bytes; `reset` then clears the peaks (torch.cuda.reset_peak_memory_stats).
// Uses the device-generic allocator interface, so no CUDA header is needed and a CPU build reports an error.
napi_value DeviceMemory(napi_env env, const Args& a) {
  c10::Device device(getString(env, a[0], "device"));
  bool reset = getBool(env, a[1], "reset");
  if (device.is_cpu()) throw JsError("deviceMemory: the CPU has no caching allocator; ask for an accelerator device such as cuda:0");
  if (device.is_cuda() && !at::detail::getCUDAHooks().hasCUDA()) throw JsError("deviceMemory: this libtorch has no CUDA device");
  c10::DeviceIndex index = device.has_index() ? device.index() : 0;
  at::globalContext().lazyInitDevice(device.type());  // the allocator's per-device state exists only after this
  auto* allocator = c10::getDeviceAllocator(device.type());
  const auto stats = allocator->getDeviceStats(index);
  const auto all = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
  napi_value obj;
  NAPI_OK(napi_create_object(env, &obj));
  setProperty(env, obj, "allocated", number(env, static_cast<double>(stats.allocated_bytes[all].current)));
  setProperty(env, obj, "peakAllocated", number(env, static_cast<double>(stats.allocated_bytes[all].peak)));
  setProperty(env, obj, "reserved", number(env, static_cast<double>(stats.reserved_bytes[all].current)));
  setProperty(env, obj, "peakReserved", number(env, static_cast<double>(stats.reserved_bytes[all].peak)));
  if (reset) allocator->resetPeakStats(index);
  return obj;
}

// emptyCache(device) -> returns the cached, unused blocks of an accelerator device to it (torch.cuda.empty_cache).
napi_value EmptyCache(napi_env env, const Args& a) {
  c10::Device device(getString(env, a[0], "device"));
  if (device.is_cpu()) return undefined(env);
  if (device.is_cuda() && !at::detail::getCUDAHooks().hasCUDA()) return undefined(env);
  at::globalContext().lazyInitDevice(device.type());
  c10::getDeviceAllocator(device.type())->emptyCache();
  return undefined(env);
}

// ---- distributed: collectives across processes on libtorch's c10d -------------------------------------
//
// Data parallel over processes, made of the pieces torch.distributed is made of underneath (no sockets and no
// reductions of our own): a c10d::TCPStore on MASTER_ADDR:MASTER_PORT for the rendezvous (hosted by rank 0, or by
// torchrun's agent), and a c10d::ProcessGroup whose CPU tensors go to c10d::ProcessGroupGloo and, in a build with
// NCCL, whose CUDA tensors go to c10d::ProcessGroupNCCL ("cpu:gloo,cuda:nccl", torch.distributed's default). The
// collectives are the group's dispatcher ops (c10d::allreduce_, broadcast_, barrier), waited for here because the
// training loop is synchronous. A peer that died makes Gloo fail at once (connection reset); one that stops
// answering makes it fail at the group's timeout. Either becomes an HDB_DISTRIBUTED error naming the operation,
// this rank and the timeout, instead of a hang.
//
// Tensors are packed per dtype and device into flat buckets of at most 25 MiB (DDP's default bucket size), so a
// model's hundreds of gradients take a few collectives rather than hundreds, and the results are copied back in
// place under no-grad (parameters are leaves that require grad). Every rank must pass the same list of tensors.

constexpr int64_t kBucketBytes = int64_t{25} << 20;

DistGroup& groupAt(napi_env env, napi_value v) {
  Engine& e = engineOf(env);
  int64_t id = getInt(env, v, "process group");
  if (id < 0 || static_cast<size_t>(id) >= e.groups.size() || !e.groups[id].group) {
    throw JsError("process group " + std::to_string(id) + " is invalid or was destroyed");
  }
  return e.groups[id];
}

std::string rankOf(int64_t rank, int64_t size) { return "rank " + std::to_string(rank) + " of " + std::to_string(size); }

std::string countOf(size_t n, const std::string& noun) { return std::to_string(n) + " " + noun + (n == 1 ? "" : "s"); }

std::string seconds(int64_t ms) {
  std::ostringstream s;
  s << static_cast<double>(ms) / 1000.0 << " s";
  return s.str();
}

// Starts a collective and waits for it; c10d's failure becomes a DistError naming what, where and the timeout.
void runCollective(const DistGroup& g, const std::string& what, const std::function<c10::intrusive_ptr<c10d::Work>()>& start) {
  std::string reason;
  try {
    start()->wait();
    return;
  } catch (const c10::Error& e) {
    reason = e.what_without_backtrace();
  } catch (const std::exception& e) {
    reason = e.what();
  }
  throw DistError(what + " failed on " + rankOf(g.group->getRank(), g.group->getSize()) + ": " + reason +
                  " (another rank has died, or has not reached the same collective within the group's " +
                  seconds(g.timeoutMs) + " timeout)");
}

// Runs `run` on the tensors in buckets: tensors of one dtype and device, in the given order, packed flat up to
// kBucketBytes (a larger one alone); a lone contiguous tensor goes as it is. Results are copied back in place.
void bucketed(const std::vector<at::Tensor>& tensors, const std::function<void(at::Tensor&)>& run) {
  c10::NoGradGuard noGrad;
  std::vector<bool> taken(tensors.size(), false);
  for (size_t first = 0; first < tensors.size(); ++first) {
    if (taken[first] || tensors[first].numel() == 0) continue;
    const at::Tensor& head = tensors[first];
    std::vector<size_t> members;
    int64_t bytes = 0;
    for (size_t i = first; i < tensors.size(); ++i) {
      const at::Tensor& t = tensors[i];
      if (taken[i] || t.numel() == 0 || t.scalar_type() != head.scalar_type() || t.device() != head.device()) continue;
      const int64_t size = t.numel() * static_cast<int64_t>(t.element_size());
      if (!members.empty() && bytes + size > kBucketBytes) break;
      members.push_back(i);
      taken[i] = true;
      bytes += size;
    }
    if (members.size() == 1 && head.is_contiguous()) {
      at::Tensor alone = head;
      run(alone);
      continue;
    }
    std::vector<at::Tensor> flat;
    flat.reserve(members.size());
    for (size_t i : members) flat.push_back(tensors[i].reshape({-1}));
    at::Tensor bucket = at::cat(flat);
    run(bucket);
    int64_t offset = 0;
    for (size_t i : members) {
      at::Tensor t = tensors[i];
      t.copy_(bucket.narrow(0, offset, t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  }
}

// Gloo's devices as torch.distributed chooses them: "interface:eth0,eth1" (GLOO_SOCKET_IFNAME), "host:<address>"
// (bind that address, e.g. loopback when every rank is on this machine), or "default" (this host's name, else
// loopback).
std::vector<std::shared_ptr<::gloo::transport::Device>> glooDevices(const std::string& spec) {
  std::vector<std::shared_ptr<::gloo::transport::Device>> devices;
  if (spec.rfind("interface:", 0) == 0) {
    std::stringstream names(spec.substr(10));
    for (std::string name; std::getline(names, name, ',');) {
      if (!name.empty()) devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
    }
  } else if (spec.rfind("host:", 0) == 0) {
    devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(spec.substr(5)));
  } else if (spec == "default") {
    devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  if (devices.empty()) throw JsError("no Gloo device in '" + spec + "' (interface:<names>, host:<address> or default)");
  return devices;
}

// distInit(masterAddr, masterPort, rank, worldSize, timeoutMs, isServer, storePrefix, glooDevice, cudaDevice)
// -> group id. Blocks until every rank has joined (or the timeout). cudaDevice < 0: no NCCL backend.
napi_value DistInit(napi_env env, const Args& a) {
  const std::string addr = getString(env, a[0], "masterAddr");
  const int64_t port = getInt(env, a[1], "masterPort");
  const int64_t rank = getInt(env, a[2], "rank");
  const int64_t size = getInt(env, a[3], "worldSize");
  const int64_t timeoutMs = getInt(env, a[4], "timeoutMs");
  const bool isServer = getBool(env, a[5], "isServer");
  const std::string prefix = getString(env, a[6], "storePrefix");
  const std::string glooDevice = getString(env, a[7], "glooDevice");
  const int64_t cuda = getInt(env, a[8], "cudaDevice");
  if (size < 1 || rank < 0 || rank >= size) throw JsError("rank " + std::to_string(rank) + " is not in a world of " + std::to_string(size));
  if (port < 1 || port > 65535) throw JsError("masterPort must be in 1..65535, got " + std::to_string(port));
  if (timeoutMs < 1) throw JsError("the timeout must be positive, got " + std::to_string(timeoutMs) + " ms");
  const std::chrono::milliseconds timeout(timeoutMs);
  const std::string who = rankOf(rank, size);
  auto failed = [&](const std::string& step, const std::string& reason) {
    return DistError(who + ": " + step + " failed within the " + seconds(timeoutMs) + " timeout: " + reason);
  };
  c10::intrusive_ptr<c10d::Store> store;
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(port);
    options.isServer = isServer;
    options.numWorkers = static_cast<size_t>(size);
    options.waitWorkers = true;
    options.timeout = timeout;
    store = c10::make_intrusive<c10d::TCPStore>(addr, options);
  } catch (const c10::Error& e) {
    throw failed("the rendezvous at " + addr + ":" + std::to_string(port), e.what_without_backtrace());
  }
  if (!prefix.empty()) store = c10::make_intrusive<c10d::PrefixStore>(prefix, store);
  auto group = c10::make_intrusive<c10d::ProcessGroup>(store, static_cast<int>(rank), static_cast<int>(size));
  try {
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    options->devices = glooDevices(glooDevice);
    auto gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(c10::make_intrusive<c10d::PrefixStore>("gloo/", store),
                                                            static_cast<int>(rank), static_cast<int>(size), options);
    group->setBackend(c10::DeviceType::CPU, c10d::ProcessGroup::BackendType::GLOO, gloo);
    group->setDefaultBackend(c10d::ProcessGroup::BackendType::GLOO);
  } catch (const c10::Error& e) {
    throw failed("connecting Gloo to the other ranks", e.what_without_backtrace());
  }
  if (cuda >= 0) {
#ifdef USE_C10D_NCCL
    try {
      group->setBoundDeviceId(c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(cuda)));
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      auto nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(c10::make_intrusive<c10d::PrefixStore>("nccl/", store),
                                                              static_cast<int>(rank), static_cast<int>(size), options);
      group->setBackend(c10::DeviceType::CUDA, c10d::ProcessGroup::BackendType::NCCL, nccl);
    } catch (const c10::Error& e) {
      throw failed("starting NCCL on cuda:" + std::to_string(cuda), e.what_without_backtrace());
    }
#else
    throw JsError("this addon was built without NCCL, so CUDA tensors cannot be reduced across processes: rebuild it "
                  "against a CUDA libtorch with NCCL's headers (src/engine/native/build.ts), or keep the tensors on the CPU");
#endif
  }
  Engine& e = engineOf(env);
  e.groups.push_back({group, timeoutMs});
  return number(env, static_cast<double>(e.groups.size() - 1));
}

// distAllReduce(group, tensors, op): in place; op "sum" | "product" | "min" | "max". A mean is a sum divided by
// the world size on the JS side, as DDP does (Gloo has no AVG).
napi_value DistAllReduce(napi_env env, const Args& a) {
  const DistGroup& g = groupAt(env, a[0]);
  const auto tensors = tensorList(env, a[1], "tensors", false);
  const std::string name = getString(env, a[2], "reduce op");
  static const std::unordered_map<std::string, c10d::ReduceOp::RedOpType> ops = {
      {"sum", c10d::ReduceOp::SUM}, {"product", c10d::ReduceOp::PRODUCT}, {"min", c10d::ReduceOp::MIN}, {"max", c10d::ReduceOp::MAX}};
  auto op = ops.find(name);
  if (op == ops.end()) throw JsError("unknown reduce op '" + name + "' (sum, product, min or max)");
  c10d::AllreduceOptions options;
  options.reduceOp = op->second;
  const std::string what = "allreduce (" + name + ") of " + countOf(tensors.size(), "tensor");
  bucketed(tensors, [&](at::Tensor& bucket) {
    std::vector<at::Tensor> one{bucket};
    runCollective(g, what, [&] { return g.group->allreduce(one, options); });
  });
  return undefined(env);
}

// distBroadcast(group, tensors, root): in place, root's values to every rank.
napi_value DistBroadcast(napi_env env, const Args& a) {
  const DistGroup& g = groupAt(env, a[0]);
  const auto tensors = tensorList(env, a[1], "tensors", false);
  const int64_t root = getInt(env, a[2], "root");
  if (root < 0 || root >= g.group->getSize()) throw JsError("broadcast root " + std::to_string(root) + " is not a rank of " + std::to_string(g.group->getSize()));
  c10d::BroadcastOptions options;
  options.rootRank = root;
  const std::string what = "broadcast from rank " + std::to_string(root) + " of " + countOf(tensors.size(), "tensor");
  bucketed(tensors, [&](at::Tensor& bucket) {
    std::vector<at::Tensor> one{bucket};
    runCollective(g, what, [&] { return g.group->broadcast(one, options); });
  });
  return undefined(env);
}

napi_value DistBarrier(napi_env env, const Args& a) {
  const DistGroup& g = groupAt(env, a[0]);
  runCollective(g, "barrier", [&] { return g.group->barrier(); });
  return undefined(env);
}

// distDestroy(group): drops the group (its backends stop their threads and close their connections). Idempotent.
napi_value DistDestroy(napi_env env, const Args& a) {
  Engine& e = engineOf(env);
  int64_t id = getInt(env, a[0], "process group");
  if (id >= 0 && static_cast<size_t>(id) < e.groups.size()) e.groups[id].group.reset();
  return undefined(env);
}

// buildInfo() -> what this addon was compiled against and which libtorch it actually loaded.
napi_value BuildInfo(napi_env env, const Args&) {
  napi_value obj;
  NAPI_OK(napi_create_object(env, &obj));
  setProperty(env, obj, "torchVersion", string(env, TORCH_VERSION));
  setProperty(env, obj, "libtorchDir", string(env, HDB_LIBTORCH_DIR));
  setProperty(env, obj, "cxx11Abi", boolean(env, _GLIBCXX_USE_CXX11_ABI == 1));
  Dl_info dl;
  std::string loaded = "unknown";
  if (dladdr(reinterpret_cast<void*>(&at::detail::getDefaultCPUGenerator), &dl) && dl.dli_fname) loaded = dl.dli_fname;
  setProperty(env, obj, "loadedLibrary", string(env, loaded));
  std::vector<std::string> backends{"gloo"};
#ifdef USE_C10D_NCCL
  backends.push_back("nccl");
#endif
  napi_value distributed = newArray(env, backends.size());
  for (size_t i = 0; i < backends.size(); ++i) setElement(env, distributed, i, string(env, backends[i]));
  setProperty(env, obj, "distributedBackends", distributed);
  return obj;
}

}  // namespace

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  auto* engine = new Engine();
  napi_set_instance_data(
      env, engine, [](napi_env, void* data, void*) { delete static_cast<Engine*>(data); }, nullptr);
  struct Entry {
    const char* name;
    napi_callback fn;
  };
  const Entry entries[] = {
      {"opFind", guarded<OpFind>},
      {"opSchema", guarded<OpSchema>},
      {"call", guarded<Call>},
      {"fromBytes", guarded<FromBytes>},
      {"toBytes", guarded<ToBytes>},
      {"memoryView", guarded<MemoryView>},
      {"free", guarded<Free>},
      {"info", guarded<Info>},
      {"shape", guarded<Shape>},
      {"requiresGrad", guarded<RequiresGrad>},
      {"setRequiresGrad", guarded<SetRequiresGrad>},
      {"isLeaf", guarded<IsLeaf>},
      {"gradFn", guarded<GradFn>},
      {"getGrad", guarded<GetGrad>},
      {"setGrad", guarded<SetGrad>},
      {"backward", guarded<Backward>},
      {"grad", guarded<Grad>},
      {"gradEnabled", guarded<GradEnabled>},
      {"setGradEnabled", guarded<SetGradEnabled>},
      {"manualSeed", guarded<ManualSeed>},
      {"generatorNew", guarded<GeneratorNew>},
      {"generatorSetSeed", guarded<GeneratorSetSeed>},
      {"generatorGetState", guarded<GeneratorGetState>},
      {"generatorSetState", guarded<GeneratorSetState>},
      {"setNumThreads", guarded<SetNumThreads>},
      {"getNumThreads", guarded<GetNumThreads>},
      {"memory", guarded<Memory>},
      {"autocastSet", guarded<AutocastSet>},
      {"autocastNest", guarded<AutocastNest>},
      {"devices", guarded<Devices>},
      {"synchronize", guarded<Synchronize>},
      {"deviceMemory", guarded<DeviceMemory>},
      {"emptyCache", guarded<EmptyCache>},
      {"buildInfo", guarded<BuildInfo>},
      {"distInit", guarded<DistInit>},
      {"distAllReduce", guarded<DistAllReduce>},
      {"distBroadcast", guarded<DistBroadcast>},
      {"distBarrier", guarded<DistBarrier>},
      {"distDestroy", guarded<DistDestroy>},
  };
  for (const auto& entry : entries) {
    napi_value fn;
    if (napi_create_function(env, entry.name, NAPI_AUTO_LENGTH, entry.fn, nullptr, &fn) != napi_ok) return nullptr;
    if (napi_set_named_property(env, exports, entry.name, fn) != napi_ok) return nullptr;
  }
  return exports;
}

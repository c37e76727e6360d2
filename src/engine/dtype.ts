/** Element types, named as in PyTorch, and their codes in libtorch's c10::ScalarType enum. */

export type DType = "uint8" | "int8" | "int16" | "int32" | "int64" | "float16" | "float32" | "float64" | "bool" | "bfloat16";

const codes: Record<DType, number> = {
  uint8: 0, int8: 1, int16: 2, int32: 3, int64: 4, float16: 5, float32: 6, float64: 7, bool: 11, bfloat16: 15,
};
const byCode = new Map<number, DType>(Object.entries(codes).map(([name, code]) => [code, name as DType]));

export const dtypeBytes: Record<DType, number> = {
  uint8: 1, int8: 1, int16: 2, int32: 4, int64: 8, float16: 2, float32: 4, float64: 8, bool: 1, bfloat16: 2,
};

export function dtypeCode(dtype: DType): number {
  const code = codes[dtype];
  if (code === undefined) throw new TypeError(`unknown dtype '${String(dtype)}'; expected one of ${Object.keys(codes).join(", ")}`);
  return code;
}

export function dtypeFromCode(code: number): DType {
  const dtype = byCode.get(code);
  if (!dtype) throw new TypeError(`libtorch dtype code ${code} has no name in this engine`);
  return dtype;
}

export function isFloatingDType(dtype: DType): boolean {
  return dtype === "float16" || dtype === "float32" || dtype === "float64" || dtype === "bfloat16";
}

/** The typed array that holds a dtype's elements in JavaScript (16-bit floats are read as float32). */
export type TypedArray = Float32Array | Float64Array | Int32Array | Int16Array | Int8Array | Uint8Array | BigInt64Array;

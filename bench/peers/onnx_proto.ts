/**
 * A minimal ONNX model writer: just enough protobuf (onnx.proto3 field
 * numbers) to build small single-graph models in memory for onnxruntime,
 * without a protobuf dependency. Writes ModelProto, GraphProto, NodeProto
 * with int attributes, and ValueInfoProto for dense tensors.
 */

/** TensorProto.DataType values. */
export const OnnxType = { float: 1, int32: 6, int64: 7, float16: 10, bfloat16: 16 } as const;
export type OnnxElement = (typeof OnnxType)[keyof typeof OnnxType];

export interface OnnxValue {
  name: string;
  type: OnnxElement;
  /** Fixed sizes, or names for symbolic dimensions. */
  shape: (number | string)[];
}

export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  /** Integer attributes (e.g. axis). */
  attributes?: Record<string, number>;
}

export interface OnnxGraph {
  nodes: OnnxNode[];
  inputs: OnnxValue[];
  outputs: OnnxValue[];
  /** Default-domain opset version. */
  opset: number;
}

const encoder = new TextEncoder();

/** Protobuf wire format: varints, length-delimited fields, nested messages. */
class Writer {
  private bytes: number[] = [];

  varint(value: number | bigint): this {
    // Two's complement for negatives, as protobuf encodes int64.
    let v = BigInt.asUintN(64, BigInt(value));
    do {
      const low = Number(v & 0x7fn);
      v >>= 7n;
      this.bytes.push(v ? low | 0x80 : low);
    } while (v);
    return this;
  }

  /** A varint field (wire type 0). */
  int(field: number, value: number): this {
    return this.varint(field << 3).varint(value);
  }

  /** A length-delimited field (wire type 2): bytes, string or message. */
  bytesField(field: number, data: Uint8Array): this {
    this.varint((field << 3) | 2).varint(data.length);
    for (const b of data) this.bytes.push(b);
    return this;
  }

  string(field: number, text: string): this {
    return this.bytesField(field, encoder.encode(text));
  }

  message(field: number, build: (w: Writer) => void): this {
    const inner = new Writer();
    build(inner);
    return this.bytesField(field, inner.finish());
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

// Field numbers from onnx.proto3.
const ATTRIBUTE_INT = 2;

function valueInfo(w: Writer, v: OnnxValue): void {
  w.string(1, v.name); // ValueInfoProto.name
  w.message(2, (type) => // ValueInfoProto.type: TypeProto
    type.message(1, (tensor) => { // TypeProto.tensor_type
      tensor.int(1, v.type); // elem_type
      tensor.message(2, (shape) => { // TensorShapeProto
        for (const d of v.shape)
          shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
      });
    }));
}

function node(w: Writer, n: OnnxNode, index: number): void {
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, `${n.op.toLowerCase()}_${index}`);
  w.string(4, n.op);
  for (const [name, value] of Object.entries(n.attributes ?? {}))
    w.message(5, (a) => a.string(1, name).int(3, value).int(20, ATTRIBUTE_INT));
}

/** Serializes a ModelProto holding `graph` (IR version 8). */
export function onnxModel(graph: OnnxGraph): Uint8Array {
  const w = new Writer();
  w.int(1, 8); // ir_version
  w.string(2, 'rlhf-kernels bench'); // producer_name
  w.message(7, (g) => { // graph
    graph.nodes.forEach((n, i) => g.message(1, (m) => node(m, n, i)));
    g.string(2, 'peer');
    for (const v of graph.inputs) g.message(11, (m) => valueInfo(m, v));
    for (const v of graph.outputs) g.message(12, (m) => valueInfo(m, v));
  });
  w.message(8, (o) => o.string(1, '').int(2, graph.opset)); // opset_import
  return w.finish();
}

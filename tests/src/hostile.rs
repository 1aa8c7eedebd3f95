//! Hostile ONNX models, written as raw protobuf, for the tests of every program that reads a
//! member's model: shapes a recursive parser overflows its stack on, or allocates a hundred
//! times their size for. They cannot be built as a tree and encoded: the encoder recurses as deep
//! as the parser.

/// A protobuf varint.
pub fn varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A field's tag.
pub fn tag(field: u32, wire: u8) -> Vec<u8> {
    let mut out = Vec::new();
    varint(u64::from(field) << 3 | u64::from(wire), &mut out);
    out
}

/// A length-delimited field.
pub fn message(field: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = tag(field, 2);
    varint(payload.len() as u64, &mut out);
    out.extend_from_slice(payload);
    out
}

/// A varint field.
pub fn number(field: u32, value: u64) -> Vec<u8> {
    let mut out = tag(field, 0);
    varint(value, &mut out);
    out
}

/// `inner` wrapped `levels` times in the chain of `fields` (outermost first), written in linear
/// time: each level's prefix is its tag and the length of what it wraps.
pub fn nested(inner: Vec<u8>, fields: &[u32], levels: usize) -> Vec<u8> {
    let mut prefixes = Vec::with_capacity(levels * fields.len());
    let mut length = inner.len() as u64;
    for _ in 0..levels {
        for field in fields.iter().rev() {
            let mut prefix = tag(*field, 2);
            varint(length, &mut prefix);
            length += prefix.len() as u64;
            prefixes.push(prefix);
        }
    }
    let mut out = Vec::with_capacity(length as usize);
    for prefix in prefixes.iter().rev() {
        out.extend_from_slice(prefix);
    }
    out.extend_from_slice(&inner);
    out
}

/// A model around `graph`'s fields.
pub fn model_of(graph: &[u8]) -> Vec<u8> {
    let opset = message(8, &number(2, 17));
    [number(1, 8), opset, message(7, graph)].concat()
}

/// One `Relu` from `x` to `y`.
pub fn relu() -> Vec<u8> {
    [message(1, b"x"), message(2, b"y"), message(4, b"Relu")].concat()
}

/// A float tensor type of shape `[?, 4]`.
pub fn float_tensor_type() -> Vec<u8> {
    let dims = [message(1, &message(2, b"batch")), message(1, &number(1, 4))].concat();
    message(1, &[number(1, 1), message(2, &dims)].concat())
}

/// Input `x` typed as a sequence of sequences … of tensors, `levels` deep.
pub fn deep_type(levels: usize) -> Vec<u8> {
    // TypeProto.sequence_type (4) → Sequence.elem_type (1) → TypeProto …
    let typed = nested(float_tensor_type(), &[4, 1], levels);
    let input = [message(1, b"x"), message(2, &typed)].concat();
    let output = [message(1, b"y"), message(2, &float_tensor_type())].concat();
    model_of(&[message(1, &relu()), message(11, &input), message(12, &output)].concat())
}

/// `If` nodes whose branch is an `If` node whose branch …, `levels` deep.
pub fn deep_subgraphs(levels: usize) -> Vec<u8> {
    // Graph.node (1) → Node.attribute (5) → Attribute.g (6) → Graph …
    let graph = nested(message(1, &relu()), &[1, 5, 6], levels);
    model_of(&graph)
}

/// `count` empty nodes: two bytes each in the file, a whole node each once parsed.
pub fn empty_nodes(count: usize) -> Vec<u8> {
    model_of(&[0x0a, 0x00].repeat(count))
}

/// One `Relu` whose input `x` has `dims` dimensions of size 1: a signature as long as the model.
pub fn wide_input(dims: usize) -> Vec<u8> {
    let shape = message(1, &number(1, 1)).repeat(dims);
    let typed = message(1, &[number(1, 1), message(2, &shape)].concat());
    let input = [message(1, b"x"), message(2, &typed)].concat();
    let output = [message(1, b"y"), message(2, &float_tensor_type())].concat();
    model_of(&[message(1, &relu()), message(11, &input), message(12, &output)].concat())
}

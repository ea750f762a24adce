"""Minimal reader for TensorFlow Lite flatbuffers.

Only the flatbuffers *runtime* (python3-flatbuffers) is used: tables are read
by their vtable slots as laid out in TensorFlow Lite's schema.fbs, so no
generated `tflite` package is needed.  A field with index i lives in vtable
slot 4 + 2*i.  Only what an importer of a plain CNN needs is exposed.
"""

import numpy as np
from flatbuffers import encode, number_types as N
from flatbuffers.table import Table


def _slot(i):
    return 4 + 2 * i


# TensorType (schema.fbs) -> numpy dtype
TENSOR_TYPES = {
    0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64,
    6: np.bool_, 7: np.int16, 9: np.int8,
}

# BuiltinOperator values the importer understands (schema.fbs numbering).
OP_ADD = 0
OP_AVERAGE_POOL_2D = 1
OP_CONCATENATION = 2
OP_CONV_2D = 3
OP_DEPTHWISE_CONV_2D = 4
OP_DEQUANTIZE = 6
OP_FULLY_CONNECTED = 9
OP_MAX_POOL_2D = 17
OP_RELU = 19
OP_RELU6 = 21
OP_RESHAPE = 22
OP_SOFTMAX = 25
OP_SQUEEZE = 43
OP_QUANTIZE = 114
OP_MEAN = 40

OP_NAMES = {
    OP_ADD: "ADD", OP_AVERAGE_POOL_2D: "AVERAGE_POOL_2D",
    OP_CONCATENATION: "CONCATENATION", OP_CONV_2D: "CONV_2D",
    OP_DEPTHWISE_CONV_2D: "DEPTHWISE_CONV_2D", OP_DEQUANTIZE: "DEQUANTIZE",
    OP_FULLY_CONNECTED: "FULLY_CONNECTED", OP_MAX_POOL_2D: "MAX_POOL_2D",
    OP_RELU: "RELU", OP_RELU6: "RELU6", OP_RESHAPE: "RESHAPE",
    OP_SOFTMAX: "SOFTMAX", OP_SQUEEZE: "SQUEEZE", OP_QUANTIZE: "QUANTIZE",
    OP_MEAN: "MEAN",
}

# Padding and ActivationFunctionType enums.
PAD_SAME, PAD_VALID = 0, 1
ACT_NONE, ACT_RELU, ACT_RELU_N1_TO_1, ACT_RELU6 = 0, 1, 2, 3


class _T:
    """A flatbuffer table with typed slot accessors."""

    def __init__(self, buf, pos):
        self.t = Table(buf, pos)

    def _off(self, i):
        return self.t.Offset(_slot(i))

    def has(self, i):
        return self._off(i) != 0

    def scalar(self, i, flags, default):
        o = self._off(i)
        return self.t.Get(flags, self.t.Pos + o) if o else default

    def int8(self, i, default=0):
        return self.scalar(i, N.Int8Flags, default)

    def uint8(self, i, default=0):
        return self.scalar(i, N.Uint8Flags, default)

    def int32(self, i, default=0):
        return self.scalar(i, N.Int32Flags, default)

    def uint32(self, i, default=0):
        return self.scalar(i, N.Uint32Flags, default)

    def float32(self, i, default=0.0):
        return self.scalar(i, N.Float32Flags, default)

    def string(self, i):
        o = self._off(i)
        return self.t.String(self.t.Pos + o).decode("utf-8") if o else None

    def vector(self, i, flags):
        """A vector of scalars as a numpy array (empty when absent)."""
        o = self._off(i)
        if not o:
            return np.zeros(0, dtype=N.to_numpy_type(flags))
        return np.array(self.t.GetVectorAsNumpy(flags, o))

    def table(self, i):
        o = self._off(i)
        if not o:
            return None
        return _T(self.t.Bytes, self.t.Indirect(self.t.Pos + o))

    def tables(self, i):
        """A vector of tables."""
        o = self._off(i)
        if not o:
            return []
        n = self.t.VectorLen(o)
        start = self.t.Vector(o)
        return [_T(self.t.Bytes, self.t.Indirect(start + 4 * k)) for k in range(n)]


class Tensor:
    def __init__(self, index, tab, model):
        # Tensor: 0 shape, 1 type, 2 buffer, 3 name, 4 quantization
        self.index = index
        self.shape = tuple(int(v) for v in tab.vector(0, N.Int32Flags))
        self.type = tab.int8(1, 0)
        self.dtype = TENSOR_TYPES.get(self.type)
        self.buffer = tab.uint32(2, 0)
        self.name = tab.string(3) or "t%d" % index
        q = tab.table(4)
        # QuantizationParameters: 0 min, 1 max, 2 scale, 3 zero_point,
        # 4/5 details union, 6 quantized_dimension
        if q is not None:
            self.scale = q.vector(2, N.Float32Flags).astype(np.float64)
            self.zero_point = q.vector(3, N.Int64Flags)
            self.qdim = q.int32(6, 0)
            self.qmin = q.vector(0, N.Float32Flags)
            self.qmax = q.vector(1, N.Float32Flags)
        else:
            self.scale = np.zeros(0)
            self.zero_point = np.zeros(0, dtype=np.int64)
            self.qdim = 0
            self.qmin = self.qmax = np.zeros(0, dtype=np.float32)
        self._model = model

    @property
    def quantized(self):
        return self.scale.size > 0 and self.dtype in (np.uint8, np.int8, np.int32, np.int16)

    def raw(self):
        """The constant contents (None for an activation tensor)."""
        data = self._model.buffer_data(self.buffer)
        if data is None or len(data) == 0:
            return None
        return np.frombuffer(data, dtype=self.dtype).reshape(self.shape)

    def dequantized(self):
        """Constant contents as float32: real = scale * (q - zero_point),
        per tensor or per channel along `qdim`."""
        q = self.raw()
        if q is None:
            return None
        if not self.quantized:
            return q.astype(np.float32)
        scale = self.scale
        zp = self.zero_point if self.zero_point.size else np.zeros_like(scale, dtype=np.int64)
        if scale.size == 1:
            return ((q.astype(np.float64) - float(zp[0])) * scale[0]).astype(np.float32)
        bshape = [1] * q.ndim
        bshape[self.qdim] = scale.size
        return ((q.astype(np.float64) - zp.reshape(bshape)) * scale.reshape(bshape)).astype(np.float32)

    def __repr__(self):
        return "Tensor(%d %s %s %s)" % (self.index, self.name, self.shape, self.dtype)


class Operator:
    def __init__(self, tab, opcodes):
        # Operator: 0 opcode_index, 1 inputs, 2 outputs,
        #           3 builtin_options_type, 4 builtin_options
        self.opcode = opcodes[tab.uint32(0, 0)]
        self.inputs = [int(v) for v in tab.vector(1, N.Int32Flags)]
        self.outputs = [int(v) for v in tab.vector(2, N.Int32Flags)]
        self.options_type = tab.uint8(3, 0)
        self.options = tab.table(4)

    @property
    def name(self):
        return OP_NAMES.get(self.opcode, "BUILTIN_%d" % self.opcode)


def conv_options(op):
    """Conv2DOptions: 0 padding, 1 stride_w, 2 stride_h, 3 activation,
    4 dilation_w, 5 dilation_h."""
    o = op.options
    return dict(padding=o.int8(0, PAD_SAME), stride=(o.int32(2, 1), o.int32(1, 1)),
                act=o.int8(3, ACT_NONE), dilation=(o.int32(5, 1), o.int32(4, 1)))


def depthwise_options(op):
    """DepthwiseConv2DOptions: 0 padding, 1 stride_w, 2 stride_h,
    3 depth_multiplier, 4 activation, 5 dilation_w, 6 dilation_h."""
    o = op.options
    return dict(padding=o.int8(0, PAD_SAME), stride=(o.int32(2, 1), o.int32(1, 1)),
                depth_multiplier=o.int32(3, 1), act=o.int8(4, ACT_NONE),
                dilation=(o.int32(6, 1), o.int32(5, 1)))


def pool_options(op):
    """Pool2DOptions: 0 padding, 1 stride_w, 2 stride_h, 3 filter_width,
    4 filter_height, 5 activation."""
    o = op.options
    return dict(padding=o.int8(0, PAD_SAME), stride=(o.int32(2, 1), o.int32(1, 1)),
                kernel=(o.int32(4, 1), o.int32(3, 1)), act=o.int8(5, ACT_NONE))


def add_options(op):
    """AddOptions: 0 activation."""
    o = op.options
    return dict(act=o.int8(0, ACT_NONE) if o is not None else ACT_NONE)


def reshape_options(op):
    """ReshapeOptions: 0 new_shape."""
    o = op.options
    if o is None:
        return dict(new_shape=None)
    return dict(new_shape=[int(v) for v in o.vector(0, N.Int32Flags)])


class Model:
    """A parsed .tflite file: the first subgraph's tensors and operators."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self.buf = bytearray(f.read())
        if bytes(self.buf[4:8]) != b"TFL3":
            raise ValueError("%s: not a TFLite flatbuffer (identifier %r)" % (path, bytes(self.buf[4:8])))
        root = encode.Get(N.UOffsetTFlags.packer_type, self.buf, 0)
        m = _T(self.buf, root)
        # Model: 0 version, 1 operator_codes, 2 subgraphs, 3 description, 4 buffers
        self.version = m.uint32(0, 0)
        self.description = m.string(3)
        self.opcodes = []
        for oc in m.tables(1):
            # OperatorCode: 0 deprecated_builtin_code (int8), 1 custom_code,
            # 2 version, 3 builtin_code (int32, newer files).  Newer writers
            # put 127 in the deprecated field when the code does not fit.
            dep = oc.int8(0, 0)
            code = oc.int32(3, 0)
            self.opcodes.append(max(dep, code))
        self._buffers = m.tables(4)
        subgraphs = m.tables(2)
        if len(subgraphs) != 1:
            raise ValueError("expected exactly one subgraph, found %d" % len(subgraphs))
        sg = subgraphs[0]
        # SubGraph: 0 tensors, 1 inputs, 2 outputs, 3 operators, 4 name
        self.tensors = [Tensor(i, t, self) for i, t in enumerate(sg.tables(0))]
        self.inputs = [int(v) for v in sg.vector(1, N.Int32Flags)]
        self.outputs = [int(v) for v in sg.vector(2, N.Int32Flags)]
        self.operators = [Operator(t, self.opcodes) for t in sg.tables(3)]

    def buffer_data(self, index):
        # Buffer: 0 data ([ubyte])
        if index >= len(self._buffers):
            return None
        b = self._buffers[index]
        o = b._off(0)
        if not o:
            return None
        n = b.t.VectorLen(o)
        start = b.t.Vector(o)
        return bytes(self.buf[start:start + n])

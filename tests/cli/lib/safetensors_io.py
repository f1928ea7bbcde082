"""Safetensors files for the command-line tests' Python checks, with the standard library only."""
import json
import struct


def raw_tensors(path):
    """{name: (dtype, shape, raw bytes)} of every tensor, in file order."""
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        s, e = t["data_offsets"]
        out[name] = (t["dtype"], t["shape"], data[8 + n + s:8 + n + e])
    return out


def values(raw, dtype):
    """The numbers of F32, I64 or BF16 bytes."""
    if dtype == "BF16":
        return [struct.unpack("<f", b"\0\0" + raw[i:i + 2])[0] for i in range(0, len(raw), 2)]
    fmt = {"F32": "f", "I64": "q"}[dtype]
    return list(struct.unpack("<%d%s" % (len(raw) // struct.calcsize(fmt), fmt), raw))


def read(path):
    """{name: (shape, values)} of every tensor."""
    return {name: (shape, values(raw, dtype)) for name, (dtype, shape, raw) in raw_tensors(path).items()}


def write_f32(path, tensors):
    """Writes {name: (shape, raw F32 bytes)}."""
    header, blobs, offset = {}, [], 0
    for name, (shape, raw) in tensors.items():
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header).encode()
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))

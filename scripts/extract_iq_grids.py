#!/usr/bin/env python3
"""Writes the IQ lattice codebooks of the GGUF format as data files.

The IQ2/IQ3/IQ1 types index tables that are part of the format's definition; ggml publishes
them in ggml-common.h. This reads such a header and writes one file per table under
runtime/core/codecs/iq_grids/: a `//` line naming where the numbers came from, then the
numbers, comma-separated, so the file can be #included inside an array initializer (host
arrays in iq_codebooks.cpp, __device__ arrays in the CUDA kernels).

  scripts/extract_iq_grids.py path/to/ggml-common.h --origin "ggml-org/ggml src/ggml-common.h <commit>"
"""
import argparse
import pathlib
import re
import sys

# name -> (element type, count) the decoders expect.
TABLES = {
    "iq2xxs_grid": ("uint64_t", 256),
    "iq2xs_grid": ("uint64_t", 512),
    "iq2s_grid": ("uint64_t", 1024),
    "iq3xxs_grid": ("uint32_t", 256),
    "iq3s_grid": ("uint32_t", 512),
    "iq1s_grid": ("uint64_t", 2048),
    "ksigns_iq2xs": ("uint8_t", 128),
}
PER_LINE = {"uint64_t": 4, "uint32_t": 8, "uint8_t": 16}


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def defines(text):
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^\s*#define\s+(\w+)\s+(\S+)", text, re.M)}


def tables(text, macros):
    """Every GGML_TABLE_BEGIN(type, name, size) ... GGML_TABLE_END() block: name -> (type, size, values)."""
    out = {}
    pattern = re.compile(r"^\s*GGML_TABLE_BEGIN\(\s*(\w+)\s*,\s*(\w+)\s*,\s*(\w+)\s*\)(.*?)GGML_TABLE_END\(\)", re.S | re.M)
    for m in pattern.finditer(text):
        ctype, name, size, body = m.groups()
        size = int(macros.get(size, size), 0)
        values = [int(tok, 0) for tok in re.findall(r"0[xX][0-9a-fA-F]+|\d+", body)]
        if name in out and out[name][2] != values:
            sys.exit(f"{name}: defined twice with different values")
        out[name] = (ctype, size, values)
    return out


def literal(value, ctype):
    if ctype == "uint8_t":
        return str(value)
    return f"0x{value:0{16 if ctype == 'uint64_t' else 8}x}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("header", type=pathlib.Path, help="ggml-common.h")
    ap.add_argument("--origin", required=True, help="repository, path and commit the header came from")
    ap.add_argument("--out", type=pathlib.Path,
                    default=pathlib.Path(__file__).resolve().parent.parent / "runtime/core/codecs/iq_grids")
    args = ap.parse_args()

    text = strip_comments(args.header.read_text())
    macros = defines(text)
    found = tables(text, macros)

    # Decoders compute kmask_iq2xs (bit j) rather than read it, and use one delta for IQ1_S
    # and IQ1_M: check the header agrees.
    if found.get("kmask_iq2xs", (None, None, None))[2] != [1 << j for j in range(8)]:
        sys.exit("kmask_iq2xs is not 1, 2, 4, ..., 128")
    delta = macros.get("IQ1S_DELTA")
    if delta is None or macros.get("IQ1M_DELTA") != delta:
        sys.exit("IQ1S_DELTA / IQ1M_DELTA missing or different")

    args.out.mkdir(parents=True, exist_ok=True)
    header = f"// From {args.origin}\n"
    for name, (ctype, count) in TABLES.items():
        if name not in found:
            sys.exit(f"{name}: not in {args.header}")
        got_type, size, values = found[name]
        if got_type != ctype or size != count or len(values) != count:
            sys.exit(f"{name}: expected {count} x {ctype}, found {len(values)} x {got_type} (declared {size})")
        bits = {"uint8_t": 8, "uint32_t": 32, "uint64_t": 64}[ctype]
        if any(v >> bits for v in values):
            sys.exit(f"{name}: a value does not fit {ctype}")
        n = PER_LINE[ctype]
        lines = [", ".join(literal(v, ctype) for v in values[i:i + n]) + "," for i in range(0, count, n)]
        (args.out / f"{name}.inc").write_text(header + "\n".join(lines) + "\n")
    (args.out / "iq1s_delta.inc").write_text(header + delta + "\n")
    print(f"wrote {len(TABLES) + 1} files to {args.out}")


if __name__ == "__main__":
    main()

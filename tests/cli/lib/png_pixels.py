"""Compares the pixels of two PNGs that ditrun wrote: `python3 png_pixels.py A.png B.png [W H]`.
The image data (IHDR and the inflated IDAT stream) must be equal; text chunks (a render's
parameters) may differ. With W and H, A must be that size. Standard library only."""
import struct
import sys
import zlib


def chunks(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG"
    pos, out = 8, {}
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        out.setdefault(kind, []).append(data[pos + 8:pos + 8 + n])
        pos += 12 + n
    return out


def main():
    a, b = chunks(sys.argv[1]), chunks(sys.argv[2])
    width, height = struct.unpack(">II", a[b"IHDR"][0][:8])
    if len(sys.argv) == 5 and (width, height) != (int(sys.argv[3]), int(sys.argv[4])):
        sys.exit(f"{sys.argv[1]}: {width}x{height}, expected {sys.argv[3]}x{sys.argv[4]}")
    if a[b"IHDR"] != b[b"IHDR"]:
        sys.exit(f"{sys.argv[1]} and {sys.argv[2]}: different image headers")
    if zlib.decompress(b"".join(a[b"IDAT"])) != zlib.decompress(b"".join(b[b"IDAT"])):
        sys.exit(f"{sys.argv[1]} and {sys.argv[2]}: different pixels")
    print(f"{sys.argv[1]}: {width}x{height}, the same pixels as {sys.argv[2]}")


main()

"""compare_outputs.py GOT WANT TOL [IO]: every tensor of WANT except `sample.*` agrees with the
tensor of that name in GOT (a `ditrun forward` output) within TOL (max absolute difference).
With IO (the reference io file), text-stream rows (`*.out.txt`) are compared only where
`in.txt_mask` is 1: padded rows are computed but mean nothing. Prints the worst difference."""
import sys

from safetensors_io import read


def main():
    got, want, tol = read(sys.argv[1]), read(sys.argv[2]), float(sys.argv[3])
    mask = read(sys.argv[4]).get("in.txt_mask") if len(sys.argv) > 4 else None
    worst, compared = 0.0, 0
    for name, (shape, values) in want.items():
        if name.startswith("sample."):
            continue
        if name not in got:
            sys.exit(f"{sys.argv[1]}: no '{name}'")
        gshape, gvalues = got[name]
        if gshape != shape:
            sys.exit(f"{sys.argv[1]}: '{name}' is {gshape}, {sys.argv[2]} has {shape}")
        rows = range(len(values) // shape[-1])
        if mask is not None and name.endswith(".out.txt"):
            rows = [r for r in rows if mask[1][r] != 0]
        c = shape[-1]
        diff = max((abs(gvalues[r * c + i] - values[r * c + i]) for r in rows for i in range(c)), default=0.0)
        if diff > tol:
            sys.exit(f"{sys.argv[1]}: '{name}' differs from {sys.argv[2]} by {diff}, more than {tol}")
        worst, compared = max(worst, diff), compared + 1
    print(f"{sys.argv[1]}: {compared} tensors, max |diff| {worst:.2e}")


if __name__ == "__main__":
    main()

"""compare_latents.py A B TOL: the `latent` tensors of two ditrun outputs (safetensors) agree
within TOL (max absolute difference); prints the difference, exits non-zero naming both files
when they do not. Shared by the CLI tests that check outputs against references."""
import sys

from safetensors_io import read


def main():
    a_path, b_path, tol = sys.argv[1], sys.argv[2], float(sys.argv[3])
    a, b = read(a_path)["latent"][1], read(b_path)["latent"][1]
    if len(a) != len(b):
        sys.exit(f"{a_path} vs {b_path}: {len(a)} and {len(b)} values")
    worst = max(abs(x - y) for x, y in zip(a, b))
    if worst > tol:
        sys.exit(f"{a_path} vs {b_path}: max |diff| {worst} exceeds {tol}")
    print(f"{a_path}: max |diff| {worst:.2e}")


if __name__ == "__main__":
    main()

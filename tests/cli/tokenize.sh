#!/usr/bin/env bash
# `ditrun tokenize` reproduces every expected line of ../shared/testdata/tokenizers through
# the command line (texts as arguments, --json, --max-length 77 for CLIP's ids_77), and fails
# with one line on a tokenizer it cannot read.
set -euo pipefail
BIN=$1 DATA=$2
T=$DATA/tokenizers
python3 - "$BIN" "$T" <<'PY'
import json, subprocess, sys
binary, t = sys.argv[1], sys.argv[2]
def check(tokenizer, expected, extra, fields):
    lines = [json.loads(l) for l in open(f"{t}/{expected}", encoding="utf-8") if l.strip()]
    lines = [l for l in lines if not l.get("ftfy_sensitive")]
    out = subprocess.run([binary, "--log-level", "warn", "tokenize", "--tokenizer", f"{t}/{tokenizer}", "--json", *extra,
                          "--", *[l["text"] for l in lines]], capture_output=True, text=True, check=True).stdout
    got = [json.loads(l) for l in out.split("\n") if l]  # not splitlines: U+2028 is inside texts
    assert len(got) == len(lines), (tokenizer, len(got), len(lines))
    for g, want in zip(got, lines):
        assert g["text"] == want["text"], (g["text"], want["text"])
        for f in fields:
            assert g[f] == want[f], (tokenizer, want["text"], f, g[f], want[f])
    print(f"{tokenizer}: {len(lines)} lines equal")
check("clip-l", "clip-l.expected.jsonl", ["--max-length", "77"], ["ids", "ids_77"])
check("t5/tokenizer.json", "t5.expected.jsonl", [], ["ids"])
check("spm-tiny/spm.model", "spm-tiny.expected.jsonl", [], ["ids"])
PY
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo '{"model": {"type": "WordPiece"}}' > "$tmp/tokenizer.json"
set +e; "$BIN" tokenize --tokenizer "$tmp/tokenizer.json" hello > /dev/null 2> "$tmp/err"; rc=$?; set -e
[ "$rc" = 2 ] && [ "$(wc -l < "$tmp/err")" = 1 ] && grep -q "not Unigram" "$tmp/err" || { cat "$tmp/err"; exit 1; }

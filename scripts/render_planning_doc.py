#!/usr/bin/env python3
"""Renders docs/planning.md from docs/planning.md.in: every line `{{ditrun ARGS}}` becomes the
real output of `ditrun ARGS`, so the plans the page shows are what the code predicts.

    python3 scripts/render_planning_doc.py [path/to/ditrun]   (default: build/launcher/ditrun)
"""
import pathlib
import re
import shlex
import subprocess
import sys

root = pathlib.Path(__file__).resolve().parent.parent
binary = sys.argv[1] if len(sys.argv) > 1 else str(root / "build/launcher/ditrun")
template = (root / "docs/planning.md.in").read_text()


def run(match):
    args = shlex.split(match.group(1))
    assert args[0] == "ditrun", f"template commands start with ditrun: {match.group(0)}"
    done = subprocess.run([binary, "--log-level", "warn"] + args[1:], capture_output=True, text=True)
    text = (done.stdout + done.stderr).rstrip("\n")
    if done.returncode != 0:
        text += f"\n(exit {done.returncode})"
    return text.replace(binary, "ditrun")


rendered = re.sub(r"^\{\{(ditrun [^}]*)\}\}$", run, template, flags=re.M)
rendered = ("<!-- Rendered from docs/planning.md.in by scripts/render_planning_doc.py: edit the template. -->\n"
            + rendered)
(root / "docs/planning.md").write_text(rendered)
print("docs/planning.md rendered")

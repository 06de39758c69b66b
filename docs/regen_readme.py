r"""Regenerate the outputs of the ``$ aicap ...`` examples in README.md by running them.

Every fenced ``console`` block whose first line starts with ``$ aicap`` or ``$ for`` (a loop over aicap runs;
continued with ``\\``), and that holds no second ``$`` command, is run
in a shell with a fixed width of 140 columns and no colour; the block's output lines are replaced by
what the command printed (stdout and stderr, in that order as a terminal would show them for these
commands). Run from the repository root after a change in behaviour::

    python docs/regen_readme.py            # rewrite README.md in place
    python docs/regen_readme.py --check    # exit 1 when README.md is stale
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"```console\n(\$ (?:aicap|for) .*?)```", re.S)


def _run(command: str) -> str:
    env = {**os.environ, "COLUMNS": "140", "NO_COLOR": "1", "TERM": "dumb"}
    proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, check=False)
    return proc.stderr + proc.stdout


def regenerate(text: str) -> str:
    """README text with every ``$ aicap`` (or ``$ for``) console block's output replaced by a fresh run."""

    def one(m: re.Match[str]) -> str:
        lines = m.group(1).splitlines()
        cmd_lines = [lines[0]]
        k = 1
        while cmd_lines[-1].endswith("\\") and k < len(lines):
            cmd_lines.append(lines[k])
            k += 1
        if any(line.startswith("$ ") for line in lines[k:]):
            return m.group(0)  # a script of several commands, shown for reading, not run
        command = "\n".join(cmd_lines)[2:]
        out = _run(command)
        return "```console\n" + "\n".join(cmd_lines) + "\n" + out.rstrip("\n") + "\n```"

    return BLOCK.sub(one, text)


def main() -> None:
    """Rewrite README.md (or, with --check, say whether it is stale)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when README.md's outputs are stale")
    args = parser.parse_args()
    old = README.read_text(encoding="utf-8")
    new = regenerate(old)
    if args.check:
        sys.exit(0 if new == old else 1)
    README.write_text(new, encoding="utf-8")


if __name__ == "__main__":
    main()

"""Turn benchmark_serving result files into the per-request lengths of hardware_db/validation/request_lengths.yaml.

vLLM's ``benchmark_serving.py --save-result`` (and ``vllm bench serve``) writes one JSON object per run
whose ``input_lens`` and ``output_lens`` list every request's prompt and generated tokens in the order
the requests were sent. Where a source commits those files, its cases under load can be replayed with
exactly those requests instead of a length distribution scaled to the published means.

Run: python docs/tools/request_lengths.py < manifest.tsv
where each line of the manifest is ``case_id<TAB>result.json<TAB>source URL`` (the URL pinned to a
commit). It prints the ``cases:`` entries of the YAML file, checking each run's request count and
token totals against the file's own ``completed``, ``total_input_tokens`` and ``total_output_tokens``.
"""

from __future__ import annotations

import json
import sys


def entry(case_id: str, path: str, url: str) -> str:
    """The YAML entry of one case."""
    with open(path, encoding="utf-8") as f:
        run = json.load(f)
    lin, lout = [int(x) for x in run["input_lens"]], [int(x) for x in run["output_lens"]]
    if not len(lin) == len(lout) == int(run["completed"]):
        raise SystemExit(f"{path}: {len(lin)} input and {len(lout)} output lengths for {run['completed']} completed requests")
    if sum(lin) != int(run["total_input_tokens"]) or sum(lout) != int(run["total_output_tokens"]):
        raise SystemExit(f"{path}: the lengths do not add up to the file's total_input_tokens and total_output_tokens")
    return (f"  {case_id}:\n"
            f"    source: {json.dumps(f'{url} (input_lens and output_lens of {len(lin)} requests, in the order sent)')}\n"
            f"    input_tokens: {_flow(lin)}\n"
            f"    output_tokens: {_flow(lout)}\n")  # fmt: skip


def _flow(values: list[int], per_line: int = 25) -> str:
    """A YAML flow sequence, ``per_line`` numbers to a line."""
    lines = [", ".join(map(str, values[k : k + per_line])) for k in range(0, len(values), per_line)]
    return "[" + ",\n      ".join(lines) + "]"


def main() -> None:
    """Print the entry of every manifest line on stdin."""
    for line in sys.stdin:
        if line.strip() and not line.startswith("#"):
            case_id, path, url = line.rstrip("\n").split("\t")
            sys.stdout.write(entry(case_id, path, url))


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Uses aicap the way a CI job does: plans to files, jq on JSON, exit codes as the gate.
# Usage: ci_job.sh WORKDIR   (needs `aicap` and `jq` on PATH)
set -euo pipefail
work=$1
cd "$work"
cat > base.yaml <<'YAML'
schema_version: 1
workloads:
  - {name: chat, model: llama-3.1-8b, requests_per_s: 4, input_tokens: 800, output_tokens: 200, slo: {ttft_ms: 2000, tpot_ms: 60}}
constraints: {clouds: [gcp]}
YAML
sed 's/requests_per_s: 4/requests_per_s: 16/' base.yaml > head.yaml

aicap -q size base.yaml --output base.json --format json > /dev/null
aicap -q size head.yaml --output head.json --format json > /dev/null
base_cost=$(jq '.totals.usd_per_month' base.json)
head_cost=$(jq '.totals.usd_per_month' head.json)
jq -e '.totals.usd_per_month > 0 and (.workloads | length) == 1' head.json > /dev/null
awk -v b="$base_cost" -v h="$head_cost" 'BEGIN { exit !(h >= b) }'

# Deterministic: the same inputs give byte-identical JSON.
aicap -q size head.yaml --format json > again.json
cmp -s head.json again.json

aicap -q diff base.json head.json --format markdown > diff.md
grep -q '^\*\*aicap: +\$' diff.md
aicap -q diff base.json head.json --format json | jq -e '.totals.delta.usd_per_month > 0' > /dev/null

# Gate: a generous budget passes (0), a tight one fails (1), a bad file is an input error (2).
aicap -q check head.json --budget-monthly 1000000 --format json | jq -e '.verdict == "pass"' > /dev/null
set +e
aicap -q check head.json --budget-monthly 1 --format json > verdict.json
fail_code=$?
aicap -q check missing.yaml > /dev/null 2>&1
bad_code=$?
set -e
[ "$fail_code" -eq 1 ]
jq -e '.verdict == "fail"' verdict.json > /dev/null
[ "$bad_code" -eq 2 ]
echo "ci job ok: base \$$base_cost/month, head \$$head_cost/month"

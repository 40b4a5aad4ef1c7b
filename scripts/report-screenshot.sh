#!/usr/bin/env bash
# Makes docs/images/report.png, the screenshot in docs/reports.md: builds
# wflow and the report demo guest (testdata/guests/reportdemo), runs it on
# the local Docker engine (the test images of scripts/setup.sh), and has
# headless Chromium take a picture of the run's report.html.
#
#   scripts/report-screenshot.sh [OUT.png]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/images/report.png}"
command -v chromium >/dev/null || { echo "need chromium: apt-get install -y chromium" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

go build -o "$work/wflow" ./cmd/wflow
GOOS=wasip1 GOARCH=wasm go build -o "$work/reportdemo.wasm" ./testdata/guests/reportdemo
"$work/wflow" run "$work/reportdemo.wasm" --rundir "$work/run" --parallel 3 >/dev/null
page="$(ls "$work"/run/.wflow/runs/*/report.html)"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$work/chromium" \
  --window-size=1280,1180 --screenshot="$out" "file://$page" 2>/dev/null
echo "wrote $out"

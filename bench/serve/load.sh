#!/usr/bin/env bash
# Load test of `matnet serve` on loopback: 200 connections for 30 s against
# /api/predict with wrk, and the server's resident memory before and after.
# Usage: bench/serve/load.sh CHECKPOINT [PORT]   (needs wrk and a release build)
set -euo pipefail
cd "$(dirname "$0")/../.."
ckpt=${1:?usage: bench/serve/load.sh CHECKPOINT [PORT]}
port=${2:-18181}
bin=target/release/matnet
lscpu | grep 'Model name'
"$bin" serve --checkpoint "$ckpt" --runs /nonexistent --addr "127.0.0.1:$port" > /tmp/matnet-serve-load.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q listening /tmp/matnet-serve-load.log && break; sleep 0.1; done
cat /tmp/matnet-serve-load.log
# One warm-up request, so "before" counts the loaded models and the pool.
curl -s -o /dev/null -w 'warm-up: %{http_code}\n' -XPOST "http://127.0.0.1:$port/api/predict" \
  -H 'content-type: application/json' --data "$(lua -e 'local t={} for i=1,784 do t[i]="0" end print("{\"pixels\":["..table.concat(t,",").."]}")' 2>/dev/null || python3 -c 'print("{\"pixels\":["+",".join(["0"]*784)+"]}")')"
echo "RSS before: $(grep VmRSS /proc/$pid/status)"
wrk -t4 -c200 -d30s --latency -s bench/serve/predict.lua "http://127.0.0.1:$port"
echo "RSS after:  $(grep VmRSS /proc/$pid/status)"
echo "peak:       $(grep VmHWM /proc/$pid/status)"

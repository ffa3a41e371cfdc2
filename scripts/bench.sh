#!/usr/bin/env bash
# bench.sh: Kalla's engine benchmark (make bench).
#
# Builds bin/kalla once, then runs BenchmarkKallaVsPlainDuckDB
# (internal/bench): it generates gen.Standard(1,000,000) (1M invoices, about
# 1.05M payments) into a temp folder, then alternates `bin/kalla run` and the
# same reconciliation in plain DuckDB SQL (internal/bench/plainduck), both as
# subprocesses, 3 times each, checks every answer against gen's ground truth
# (a wrong answer fails the run) and prints each run's time, the medians, the
# ratio kalla/plain (target <= 1.25, reported, never asserted) and where the
# time goes on each side.
#
# BenchmarkSparkVsDuckDB (internal/bench/spark_bench_test.go) then runs the
# same recipe with `kalla run --engine spark` against the Spark Connect
# endpoint in KALLA_SPARK_REMOTE (else KALLA_TEST_SPARK_REMOTE, which
# `eval "$(bash scripts/services.sh env)"` sets) and with DuckDB,
# KALLA_BENCH_SPARK_REPS times each (default 1), checks both answers against
# the truth and prints both times. Without an endpoint it prints a line
# saying it was skipped. The cluster must see TMPDIR at the same path.
#
# Environment: KALLA_BENCH_INVOICES (default 1000000) and KALLA_BENCH_REPS
# (default 3) resize the run; KALLA_BENCH_SCHEMA=1 declares the amount
# columns DECIMAL(18,2) in the recipe (Kalla then skips measuring them);
# TMPDIR chooses where the data (about 115 MB) and outputs go.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "bench.sh: go build -o bin/kalla ./cmd/kalla"
go build -o bin/kalla ./cmd/kalla
KALLA_BIN="$PWD/bin/kalla" exec go test ./internal/bench -run '^$' -bench . -benchtime 1x -count 1 -timeout 30m

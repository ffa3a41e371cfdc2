#!/usr/bin/env bash
# bench-scale.sh: Kalla against hand-written DuckDB SQL on big sets under a
# memory cap (make bench-scale DIR=/big/disk/folder).
#
# Builds bin/kalla, then runs BenchmarkScale (internal/bench/scale_test.go):
# generates gen.Standard(50M) and gen.Standard(100M) once into DIR (reused
# by later runs; about 5 GB and 10 GB of CSV), runs `kalla run` and the
# baseline (plainduck for the SQL recipe, plainrules for the three-pass
# rules recipe) alternating, both with the same --memory-limit and a spill
# folder under DIR, and prints for each stage its time, peak RSS and peak
# spill. Every answer is checked against gen's ground truth, and Kalla's
# spill folder must be empty once it exits; a wrong answer, a failed run or
# a leftover fails the benchmark (the tables are printed all the same).
#
# Environment: KALLA_BENCH_SCALE (default "50000000:4GB,100000000:8GB":
# invoices:memory-limit pairs), KALLA_BENCH_SCALE_RECIPES ("sql", "rules"
# or "sql,rules", the default), KALLA_BENCH_REPS (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${1:-${DIR:-}}"
if [ -z "$DIR" ]; then
	echo "usage: make bench-scale DIR=/folder/with/tens/of/GB/free" >&2
	exit 2
fi
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
df -h "$DIR" | tail -1
go build -o bin/kalla ./cmd/kalla
KALLA_BIN="$PWD/bin/kalla" KALLA_BENCH_SCALE_DIR="$DIR" exec go test ./internal/bench -run '^$' -bench '^BenchmarkScale$' -benchtime 1x -count 1 -timeout 24h

# Kalla developer targets. `make test` is what CI runs (via .ci/run).

VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/kalla-recon/kalla/internal/version.Version=$(VERSION)

.PHONY: build test lint bench bench-scale services-start services-stop screenshots

## build: compile bin/kalla, stamped with VERSION (git describe, else "dev")
build:
	go build -ldflags "$(LDFLAGS)" -o bin/kalla ./cmd/kalla

## test: start the real services and run vet, the gofmt check and all tests
test:
	bash scripts/test.sh

## lint: gofmt check (lists files needing gofmt) and go vet
lint:
	@files=$$(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' \
		-not -path './bin/*' -not -path './results/*' -print0 | xargs -0 -r gofmt -l); \
	if [ -n "$$files" ]; then echo "files need gofmt -w:"; echo "$$files"; exit 1; fi
	go vet ./...

## bench: run the benchmarks (scripts/bench.sh)
bench:
	bash scripts/bench.sh

## bench-scale: Kalla vs hand-written DuckDB SQL on 50M and 100M records under a memory cap; DIR=folder for the data (tens of GB)
bench-scale:
	bash scripts/bench-scale.sh "$(DIR)"

## services-start: install if needed and start PostgreSQL, MariaDB and S3 for tests
services-start:
	bash scripts/services.sh start
	@echo 'now run: eval "$$(bash scripts/services.sh env)"'

## services-stop: stop the services that services-start started
services-stop:
	bash scripts/services.sh stop

## screenshots: save one PNG per page of the web UI into ./screenshots (needs chromium)
screenshots:
	KALLA_SCREENSHOT_DIR=$(CURDIR)/screenshots go test -count=1 -run '^TestScreenshots$$' -v ./internal/ui

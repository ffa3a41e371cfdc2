// Package version holds the version string of the Kalla build, shown by the
// command line and recorded in run results.
package version

// Version is Kalla's version. It is "dev" in builds made with plain go build
// or go run; release builds set it at link time, as the Makefile does:
//
//	go build -ldflags "-X github.com/kalla-recon/kalla/internal/version.Version=v1.2.3" ./cmd/kalla
var Version = "dev"

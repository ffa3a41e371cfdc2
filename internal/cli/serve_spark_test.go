package cli_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/cli"
)

// TestServeSparkRemote: `kalla serve --spark-remote` gives the server the
// Spark engine (GET /healthz lists it) without connecting at start, and a
// malformed endpoint, from the flag or from $KALLA_SPARK_REMOTE, is a
// usage error before anything starts.
func TestServeSparkRemote(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  string
		args []string
	}{
		{"flag", "", []string{"--spark-remote", "http://spark.invalid:15002"}},
		{"env", "http://spark.invalid:15002", nil},
	} {
		t.Run("bad "+tc.name, func(t *testing.T) {
			t.Setenv(cli.SparkRemoteEnv, tc.env)
			code, _, errs := runKalla(t, append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, tc.args...)...)
			if code != 2 || !strings.Contains(errs, "sc://") {
				t.Errorf("exit %d, stderr %q; want a usage error (2) saying what an endpoint looks like", code, errs)
			}
		})
	}

	t.Setenv(cli.SparkRemoteEnv, "")
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	exited := make(chan int, 1)
	go func() {
		exited <- cli.Main(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--spark-remote", "sc://spark.invalid:15002"},
			strings.NewReader(""), io.Discard, pw)
		pw.Close()
	}()
	url := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if i := strings.Index(sc.Text(), "serving on "); i >= 0 {
				url <- strings.Fields(sc.Text()[i+len("serving on "):])[0]
			}
		}
		io.Copy(io.Discard, pr)
	}()
	var base string
	select {
	case base = <-url:
	case code := <-exited:
		t.Fatalf("kalla serve exited %d", code)
	case <-time.After(60 * time.Second):
		t.Fatal("kalla serve did not start")
	}
	defer func() {
		cancel()
		if code := <-exited; code != 0 {
			t.Errorf("kalla serve exited %d after its context ended", code)
		}
	}()
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var health struct {
		Engines []string `json:"engines"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&health); err != nil {
		t.Fatal(err)
	}
	if want := []string{"duckdb", "spark"}; !reflect.DeepEqual(health.Engines, want) {
		t.Errorf("engines of kalla serve --spark-remote: %q, want %q", health.Engines, want)
	}
}

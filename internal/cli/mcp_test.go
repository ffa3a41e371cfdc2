package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/kalla-recon/kalla/internal/cli"
	"github.com/kalla-recon/kalla/internal/server"
	"github.com/kalla-recon/kalla/internal/testenv"
	"github.com/kalla-recon/kalla/internal/testenv/testserver"
)

// TestMCPStdio drives `kalla mcp` over its standard input and output with
// the SDK's client: it opens the store a `kalla serve` on the same data
// folder wrote, calls the API with KALLA_API_TOKEN, and obeys the file
// roots it is given (a source outside them is refused, as by the server).
func TestMCPStdio(t *testing.T) {
	data, files := t.TempDir(), t.TempDir()
	csvPath := filepath.Join(files, "invoices.csv")
	if err := os.WriteFile(csvPath, []byte("invoice_id,amount\nINV-1,10.00\nINV-2,20.00\nINV-3,30.00\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A server on the same data folder registers the source, then stops.
	cfg := testserver.Config(t, slog.LevelWarn, files)
	cfg.DataDir = data
	m := server.NewMain(cfg)
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"alias": "invoices", "uri": csvPath})
	resp, err := http.Post(m.URL()+"/api/sources", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("register source: %d", resp.StatusCode)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	t.Setenv(server.EnvAPIToken, "stdio-token")

	for _, tc := range []struct {
		name    string
		args    []string
		preview string // "" for success, else the error's words
	}{
		{"within the file roots", []string{"--file-root", files}, ""},
		{"without the file root", nil, "outside the folders this server may read files from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inR, inW := io.Pipe()
			outR, outW := io.Pipe()
			var stderr testenv.LogBuffer
			done := make(chan int, 1)
			go func() {
				code := cli.Main(context.Background(), append([]string{"mcp", "--data-dir", data}, tc.args...), inR, outW, &stderr)
				outW.Close()
				done <- code
			}()
			cl := sdk.NewClient(&sdk.Implementation{Name: "stdio-test", Version: "1"}, nil)
			s, err := cl.Connect(context.Background(), &sdk.IOTransport{Reader: outR, Writer: inW}, nil)
			if err != nil {
				t.Fatalf("connect: %v\n%s", err, stderr.String())
			}
			res, err := s.CallTool(context.Background(), &sdk.CallToolParams{Name: "list_sources", Arguments: map[string]any{}})
			if err != nil || res.IsError {
				t.Fatalf("list_sources: %v %+v", err, res)
			}
			if b, _ := json.Marshal(res.StructuredContent); !strings.Contains(string(b), `"alias":"invoices"`) {
				t.Errorf("list_sources: %s", b)
			}
			res, err = s.CallTool(context.Background(), &sdk.CallToolParams{Name: "preview_source", Arguments: map[string]any{"source": "invoices"}})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(res.StructuredContent)
			switch {
			case tc.preview == "" && (res.IsError || !strings.Contains(string(b), `"total_rows":3`)):
				t.Errorf("preview: %s %+v", b, res.Content)
			case tc.preview != "" && (!res.IsError || !strings.Contains(res.Content[0].(*sdk.TextContent).Text, tc.preview)):
				t.Errorf("preview: want an error saying %q, got %s %+v", tc.preview, b, res.Content)
			}
			s.Close()
			if code := <-done; code != 0 {
				t.Errorf("kalla mcp exited %d: %s", code, stderr.String())
			}
		})
	}
}

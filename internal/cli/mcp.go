package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	kallamcp "github.com/kalla-recon/kalla/internal/mcp"
	"github.com/kalla-recon/kalla/internal/server"
)

// EnvToken is the token `kalla mcp` sends with every API request it makes
// for its tools: a named token, so that the assistant acts as that person
// with that person's role. Without it the bootstrap token
// (KALLA_API_TOKEN) is sent.
const EnvToken = "KALLA_TOKEN"

func (e *env) mcpCmd() *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Serve Kalla's tools to an AI assistant over MCP (stdio)",
		Long: `Speak the Model Context Protocol on standard input and output, for an MCP
client (Claude Desktop, an IDE, an agent) that starts kalla as a subprocess.
The tools are list_sources, preview_source, suggest_recipe, check_recipe,
start_run, get_run, get_results and explain_record (and filter_from_text and
rule_from_text with KALLA_LLM_URL and KALLA_LLM_MODEL); the resources are
kalla://recipes, kalla://runs and their items.

kalla mcp builds the same server as kalla serve from the same configuration
(data folder, metadata store, file roots, environment) and executes runs with
its own workers, but listens on no address: every tool call is a request to
Kalla's HTTP API served in-process, with KALLA_TOKEN (a named token: the
assistant acts as that person, with their role) or else KALLA_API_TOKEN, so it
obeys the API's rules (roles, file roots, no arbitrary URLs, masked
credentials).
Logs go to standard error. kalla serve offers the same tools over HTTP at /mcp.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := e.serverConfig(cmd, f)
			if err != nil {
				return err
			}
			if cfg.Role == server.RoleWorker {
				return usagef("kalla mcp --role worker would serve no tools: use all (the default) or web")
			}
			cfg.Logger = e.serverLogger()
			cfg.Sources.Logger = cfg.Logger
			// Runs started through the tools may choose Spark too when
			// $KALLA_SPARK_REMOTE names a cluster, as with kalla serve.
			if cfg.Engines, err = sparkEngines(sparkRemote(""), cfg.Logger); err != nil {
				return err
			}
			// Listening is off; the address only has to pass validation.
			cfg.Addr, cfg.NoListen = "127.0.0.1:0", true
			return e.mcpStdio(cmd.Context(), cfg)
		},
	}
	addStoreFlags(cmd, f)
	cmd.Flags().StringArrayVar(&f.fileRoots, "file-root", nil, "a folder source files may be read from, besides the data folder (repeatable)")
	cmd.Flags().IntVar(&f.maxRuns, "max-concurrent-runs", server.DefaultMaxConcurrentRuns, "runs executed at once")
	cmd.Flags().StringVar(&f.memoryLimit, "memory-limit", "", "memory budget per run, e.g. 4GB (DuckDB spills to disk beyond its share)")
	cmd.Flags().IntVar(&f.threads, "threads", 0, "DuckDB worker threads per run (0: one per core)")
	cmd.Flags().StringVar(&f.role, "role", string(server.RoleAll), "all (execute runs here) or web (only queue them, for a kalla serve sharing the store)")
	return cmd
}

// mcpStdio serves MCP on the command's standard input and output until
// the client closes its end or ctx ends, then shuts the server down.
func (e *env) mcpStdio(ctx context.Context, cfg server.Config) error {
	m := server.NewMain(cfg)
	if err := m.Run(ctx); err != nil {
		return err
	}
	// The assistant acts as the person whose named token is in
	// KALLA_TOKEN, else with the bootstrap token.
	token := cfg.APIToken
	if t := os.Getenv(EnvToken); t != "" {
		token = t
	}
	srv := kallamcp.NewServer(kallamcp.Config{API: m.API, Token: token, LLM: cfg.LLM, Logger: cfg.Logger})
	fmt.Fprintf(e.stderr, "kalla: serving MCP on standard input and output (data folder %s)\n", cfg.DataDir)
	err := srv.Run(ctx, &sdk.IOTransport{Reader: io.NopCloser(e.stdin), Writer: nopWriteCloser{e.stdout}})
	if errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) {
		err = nil
	}
	if cerr := m.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// nopWriteCloser leaves the command's standard output open when the
// transport closes.
type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

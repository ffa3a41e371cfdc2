package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/store"
)

func (e *env) migrateCmd() *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending migrations to the metadata store and exit",
		Long: `Bring the metadata store's schema up to date and list the migrations applied.
kalla serve does the same at start; run this first when several servers share
one PostgreSQL store, or to upgrade the schema before deploying. The store is
the one kalla serve would open: --database-url or KALLA_DATABASE_URL, else the
SQLite file in the data folder.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, url, err := e.openStore(cmd, f, store.WithoutMigrations())
			if err != nil {
				return err
			}
			defer st.Close()
			applied, err := st.Migrate(cmd.Context())
			if len(applied) > 0 {
				fmt.Fprintf(e.stdout, "applied: %s\n", strings.Join(applied, ", "))
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "metadata store %s (%s) is up to date\n", kalla.Redact(url), st.Backend())
			return nil
		},
	}
	addStoreFlags(cmd, f)
	return cmd
}

// openStore opens the metadata store kalla serve would open: --database-url
// or KALLA_DATABASE_URL, else the SQLite file in the data folder. It
// returns the URL too, for messages (redact it before printing).
func (e *env) openStore(cmd *cobra.Command, f *serveFlags, opts ...store.Option) (*store.Store, string, error) {
	cfg, err := e.serverConfig(cmd, f)
	if err != nil {
		return nil, "", err
	}
	url := cfg.DatabaseURL
	if url == "" {
		if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
			return nil, "", kalla.WrapError(kalla.EINVALID, err, "cannot create the data folder %s", cfg.DataDir)
		}
		url = filepath.Join(cfg.DataDir, "kalla.db")
	}
	st, err := store.Open(cmd.Context(), url, opts...)
	if err != nil {
		return nil, "", err
	}
	return st, url, nil
}

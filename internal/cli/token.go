package cli

import (
	"encoding/json"
	"fmt"
	"os/user"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kalla-recon/kalla/internal/auth"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// tokenCmd manages named API tokens directly in the metadata store, so the
// operator can make the first admin token before any server runs (and
// without KALLA_API_TOKEN).
func (e *env) tokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke the named API tokens people sign in with",
		Long: `Named API tokens say who acts and with which role: viewer (reads), preparer (also
starts and cancels runs, acts on exceptions), approver (also approves what
another person prepared), admin (also sources, recipes, uploads, tokens).

The commands work on the metadata store kalla serve uses (--data-dir,
--database-url or KALLA_DATABASE_URL). The store keeps only a SHA-256 of each
token: create prints the token once, and nothing can show it again.
Once any token exists, kalla serve asks every request for one.`,
		Args: noArgs,
	}
	cmd.AddCommand(e.tokenCreateCmd(), e.tokenListCmd(), e.tokenRevokeCmd())
	return cmd
}

func (e *env) tokenCreateCmd() *cobra.Command {
	f := &serveFlags{}
	var name, role string
	cmd := &cobra.Command{
		Use:   "create --name NAME --role ROLE",
		Short: "Create a token and print it once",
		Long: `Create a token for NAME with ROLE (viewer, preparer, approver or admin) and print
it on standard output, alone on its line, once: the store keeps only its hash.
A name has one token at a time; revoke it to make a new one.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" || role == "" {
				return usagef("--name and --role are required")
			}
			if !kalla.Role(role).Valid() {
				return usagef("--role %q is not viewer, preparer, approver or admin", role)
			}
			if err := kalla.ValidateTokenName(name); err != nil {
				return usageError{err}
			}
			st, _, err := e.openStore(cmd, f)
			if err != nil {
				return err
			}
			defer st.Close()
			token, hash, err := auth.NewToken()
			if err != nil {
				return fmt.Errorf("make a token: %w", err)
			}
			t := &kalla.APIToken{Name: name, Role: kalla.Role(role), CreatedBy: cliActor()}
			if err := st.CreateToken(cmd.Context(), t, hash); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "kalla: token for %s (%s) created. It is shown this once: store it now (send it as \"Authorization: Bearer <token>\", or sign in to the web UI with it).\n", t.Name, t.Role)
			fmt.Fprintln(e.stdout, token)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the person (or program) the token acts for, e.g. alice or alice@example.com")
	cmd.Flags().StringVar(&role, "role", "", "viewer, preparer, approver or admin")
	addStoreFlags(cmd, f)
	return cmd
}

func (e *env) tokenListCmd() *cobra.Command {
	f := &serveFlags{}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the tokens (never the tokens themselves): name, role, created, last used, revoked",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, _, err := e.openStore(cmd, f)
			if err != nil {
				return err
			}
			defer st.Close()
			list, err := st.ListTokens(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"tokens": list})
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tROLE\tCREATED\tBY\tLAST USED\tREVOKED")
			for _, t := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Role, t.CreatedAt.Format(time.RFC3339), t.CreatedBy, orDash(t.LastUsed), orDash(t.RevokedAt))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	addStoreFlags(cmd, f)
	return cmd
}

func (e *env) tokenRevokeCmd() *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke NAME's token: requests with it are refused and its web sessions end",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, _, err := e.openStore(cmd, f)
			if err != nil {
				return err
			}
			defer st.Close()
			t, err := st.RevokeToken(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "revoked the token of %s (%s)\n", t.Name, t.Role)
			return nil
		},
	}
	addStoreFlags(cmd, f)
	return cmd
}

// cliActor names who made a token from the command line: the operating
// system's user, which is who could open the store.
func cliActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return "cli"
}

// orDash writes a time, or "-" for none.
func orDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}

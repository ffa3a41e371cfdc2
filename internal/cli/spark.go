package cli

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/recon"
	"github.com/kalla-recon/kalla/internal/spark"
)

// SparkRemoteEnv names the environment variable giving the Spark Connect
// endpoint when --spark-remote is not set.
const SparkRemoteEnv = "KALLA_SPARK_REMOTE"

// sparkRemoteUsage is the help of --spark-remote, the same for every command.
const sparkRemoteUsage = "Spark Connect endpoint sc://host:port (default $" + SparkRemoteEnv + "; a token comes from $" + spark.TokenEnv + " only)"

// engineFlags choose the engine of a run or check.
type engineFlags struct {
	engine      string
	sparkRemote string
}

func (f *engineFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.engine, "engine", "", "engine: duckdb (embedded) or spark (a Spark Connect cluster, see --spark-remote); default the recipe's \"engine\", else duckdb")
	cmd.Flags().StringVar(&f.sparkRemote, "spark-remote", "", sparkRemoteUsage)
}

// register adds the Spark engine to svc when an endpoint is given, and
// checks the chosen engine: --engine, else the recipe's own "engine" field
// (as on the server: the request wins over the recipe), else the default.
// Spark without an endpoint is a usage error.
func (f *engineFlags) register(e *env, svc *recon.Service, rec *kalla.Recipe) error {
	remote := sparkRemote(f.sparkRemote)
	chosen := "--engine " + f.engine
	if f.engine == "" && rec != nil && rec.Engine != "" {
		f.engine, chosen = rec.Engine, `the recipe's "engine": `+rec.Engine+` (override with --engine)`
	}
	if f.engine == "" {
		f.engine = recon.Default
	}
	switch f.engine {
	case recon.DuckDB:
	case recon.Spark:
		if remote == "" {
			return usagef("%s needs --spark-remote sc://host:port (or $%s)", chosen, SparkRemoteEnv)
		}
	default:
		return usagef("--engine: unknown engine %q (use duckdb or spark)", f.engine)
	}
	engines, err := sparkEngines(remote, e.log)
	if err != nil {
		return err
	}
	for name, factory := range engines {
		svc.Register(name, factory)
	}
	return nil
}

// sparkRemote is the Spark Connect endpoint: the flag's value, else
// $KALLA_SPARK_REMOTE, else none.
func sparkRemote(flag string) string {
	if flag != "" {
		return flag
	}
	return os.Getenv(SparkRemoteEnv)
}

// sparkEngines builds the engines a Spark Connect endpoint adds (none for an
// empty remote), with the token from $KALLA_SPARK_TOKEN: the one place
// every command (run, recipe check, serve) gets its Spark engine from.
// Errors: a usage error for a malformed endpoint.
func sparkEngines(remote string, log *slog.Logger) (map[string]recon.Factory, error) {
	if remote == "" {
		return nil, nil
	}
	eng, err := spark.New(spark.OptionsFromEnv(remote, log))
	if err != nil {
		return nil, usageError{err}
	}
	return map[string]recon.Factory{recon.Spark: eng.Factory()}, nil
}

package cli

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/kalla-recon/kalla/internal/recon"
	"github.com/kalla-recon/kalla/internal/spark"
)

// SparkRemoteEnv names the environment variable giving the Spark Connect
// endpoint when --spark-remote is not set.
const SparkRemoteEnv = "KALLA_SPARK_REMOTE"

// engineFlags choose the engine of a run or check.
type engineFlags struct {
	engine      string
	sparkRemote string
}

func (f *engineFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.engine, "engine", recon.Default, "engine: duckdb (embedded) or spark (a Spark Connect cluster, see --spark-remote)")
	cmd.Flags().StringVar(&f.sparkRemote, "spark-remote", "", "Spark Connect endpoint sc://host:port (default $"+SparkRemoteEnv+"; a token comes from $"+spark.TokenEnv+" only)")
}

// register adds the Spark engine to svc when an endpoint is given, and
// checks the chosen engine: spark without an endpoint is a usage error.
func (f *engineFlags) register(e *env, svc *recon.Service) error {
	remote := f.sparkRemote
	if remote == "" {
		remote = os.Getenv(SparkRemoteEnv)
	}
	switch f.engine {
	case recon.DuckDB, "":
	case recon.Spark:
		if remote == "" {
			return usagef("--engine spark needs --spark-remote sc://host:port (or $%s)", SparkRemoteEnv)
		}
	default:
		return usagef("--engine: unknown engine %q (use duckdb or spark)", f.engine)
	}
	if remote == "" {
		return nil
	}
	eng, err := spark.New(spark.OptionsFromEnv(remote, e.log))
	if err != nil {
		return usageError{err}
	}
	svc.Register(recon.Spark, eng.Factory())
	return nil
}

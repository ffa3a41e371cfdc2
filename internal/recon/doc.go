// Package recon is Kalla's reconciliation service: the one place that turns
// "run (or check) this recipe" into work on an engine. Every caller (the
// CLI's run, dry run, recipe check and suggest, the run queue, the API's
// preview and validation) goes through a Service, naming an engine or
// taking the default, and never opens a source or an engine itself.
//
// An engine sits behind the small Engine interface (Name, Run, Check,
// Close) and speaks only DuckDB-agnostic types: a Job whose recipe carries
// resolved source specs, progress Events, a Check and a kalla.Summary. The
// embedded DuckDB engine (internal/engine, wrapped here) is always
// registered; another engine, such as Spark through Spark Connect, is
// added with Service.Register when the process is configured for it. The
// engine reads the sources itself from the specs: DuckDB through Kalla's
// connectors in this process, Spark on the cluster's executors. See
// DESIGN.md.
package recon

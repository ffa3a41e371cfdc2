package recon

import (
	"context"
	"log/slog"
	"sort"
	"sync"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/engine"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// DuckDBOptions configure the embedded DuckDB engine: memory limit, threads,
// spill folder, source idle timeout, logger.
type DuckDBOptions = engine.Options

// Opener opens a source from its spec through Kalla's connector layer
// (*sources.Manager). Relative file paths are resolved against baseDir.
type Opener interface {
	Open(ctx context.Context, spec kalla.SourceSpec, baseDir string) (connector.Source, error)
}

// Options configure a Service.
type Options struct {
	// DuckDB configures every DuckDB engine the service opens; a Job's
	// TempDir replaces DuckDB.TempDir for that job.
	DuckDB DuckDBOptions
	// Sources opens sources for the engines that read them through this
	// process (DuckDB). Required for runs, checks and suggestions on
	// DuckDB.
	Sources Opener
	// CheckSource, when set, vets every source before any engine reads
	// it (the server's file-root confinement): a refused side fails a run
	// and is a problem of a check.
	CheckSource func(kalla.SourceSpec) error
	// Release makes the DuckDB engine leave its database to the operating
	// system at the end of a job instead of closing it table by table:
	// for a process that exits right after (the CLI), which then frees
	// the memory faster.
	Release bool
	// Logger receives the engines' debug lines when DuckDB.Logger is
	// nil. Nil discards.
	Logger *slog.Logger
}

// Service is Kalla's one way to reconcile: every caller (CLI run, check
// and suggest, the run queue, the API's preview and validation) asks it,
// naming an engine, and it vets the sources, makes the engine for the job,
// runs it and closes it. Create it with New; it is safe for concurrent use.
type Service struct {
	opts Options
	log  *slog.Logger

	mu      sync.RWMutex
	engines map[string]Factory
}

// New returns a Service with the DuckDB engine registered.
func New(opts Options) *Service {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.DuckDB.Logger == nil {
		opts.DuckDB.Logger = log
	}
	s := &Service{opts: opts, log: log, engines: map[string]Factory{}}
	s.engines[DuckDB] = func(context.Context) (Engine, error) { return &duckEngine{s: s}, nil }
	return s
}

// Register makes an engine available under name, replacing any engine of
// that name. The Spark engine is registered this way when the process is
// configured with a Spark Connect endpoint; until then asking for "spark"
// fails with EINVALID.
func (s *Service) Register(name string, f Factory) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.engines[name] = f
}

// Engines lists the names of the engines available, sorted.
func (s *Service) Engines() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var names []string
	for n := range s.engines {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Has reports whether an engine of that name is available; "" is the
// default engine.
func (s *Service) Has(name string) bool {
	if name == "" {
		name = Default
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.engines[name]
	return ok
}

// CheckEngine says whether engine name ("" for the default) is available,
// with the error Run and Check would give: callers that queue work for
// later (POST /api/runs) refuse an engine they cannot run at once rather
// than record a run that can only fail. Errors: EINVALID naming the
// engines available.
func (s *Service) CheckEngine(name string) error {
	if s.Has(name) {
		return nil
	}
	return unknownEngine(name, s.Engines())
}

// open makes engine name ("" for the default) for one job. Errors: EINVALID
// for an engine not available, the factory's errors.
func (s *Service) open(ctx context.Context, name string) (Engine, error) {
	if name == "" {
		name = Default
	}
	s.mu.RLock()
	f, ok := s.engines[name]
	s.mu.RUnlock()
	if !ok {
		return nil, unknownEngine(name, s.Engines())
	}
	return f(ctx)
}

// vet applies CheckSource to both sides, naming the side at fault.
func (s *Service) vet(rec *kalla.Recipe) (refused [2]error) {
	if s.opts.CheckSource == nil {
		return refused
	}
	for i, spec := range []kalla.SourceSpec{rec.Sources.Left, rec.Sources.Right} {
		refused[i] = s.opts.CheckSource(spec)
	}
	return refused
}

// Run executes job on engine name ("" for the default): it vets the
// sources, makes the engine, runs the job and closes the engine. Errors:
// those of Engine.Run; EINVALID for an unknown or unconfigured engine; a
// *kalla.SourceError for a side CheckSource refuses.
func (s *Service) Run(ctx context.Context, name string, job Job) (*kalla.Summary, error) {
	rec := job.Recipe
	for i, err := range s.vet(rec) {
		if err != nil {
			spec := []kalla.SourceSpec{rec.Sources.Left, rec.Sources.Right}[i]
			return nil, kalla.AsSourceError(err, [2]string{"left", "right"}[i], spec.Alias)
		}
	}
	eng, err := s.open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer eng.Close()
	sum, err := eng.Run(ctx, job)
	if sum != nil && sum.Engine == "" {
		// Every engine's summary.json names it; this covers an engine
		// that does not (yet) for the summary the caller records.
		sum.Engine = eng.Name()
	}
	return sum, err
}

// Check checks rec against its real sources on engine name ("" for the
// default), without running it. A side CheckSource refuses is reported
// as a problem, as is every other fault of the recipe; errors are those of
// Engine.Check, and EINVALID for an unknown or unconfigured engine.
func (s *Service) Check(ctx context.Context, name string, rec *kalla.Recipe, opt CheckOptions) (*Check, error) {
	for i, err := range s.vet(rec) {
		if opt.Refused[i] == nil {
			opt.Refused[i] = err
		}
	}
	eng, err := s.open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer eng.Close()
	return eng.Check(ctx, rec, opt)
}

package server

import (
	"strings"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"
)

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		EnvAddr: "0.0.0.0:9000", EnvDataDir: "/srv/kalla", EnvDatabaseURL: "postgres://k:pw@db/kalla",
		EnvAPIToken: "tok", EnvMaxConcurrentRuns: "4", EnvFileRoots: "/a:/b", EnvShutdownTimeout: "1m",
		EnvUploadBucket: "bkt", EnvMemoryLimit: "4GB", EnvAllowedHosts: " kalla.example.com, ,proxy.test:8443 ",
		EnvRole: "worker", EnvLease: "10s", EnvRetryInterrupted: "true",
	}
	c := DefaultConfig()
	if err := c.FromEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.Addr != "0.0.0.0:9000" || c.DataDir != "/srv/kalla" || c.DatabaseURL != env[EnvDatabaseURL] || c.APIToken != "tok" ||
		c.MaxConcurrentRuns != 4 || strings.Join(c.FileRoots, ",") != "/a,/b" || c.ShutdownTimeout != time.Minute ||
		c.UploadBucket != "bkt" || c.UploadPrefix != DefaultUploadPrefix || c.Engine.MemoryLimit != "4GB" ||
		strings.Join(c.AllowedHosts, ",") != "kalla.example.com,proxy.test:8443" ||
		c.Role != RoleWorker || c.LeaseTTL != 10*time.Second || !c.RetryInterrupted {
		t.Errorf("config: %+v", c)
	}
	for _, bad := range []map[string]string{{EnvMaxConcurrentRuns: "two"}, {EnvShutdownTimeout: "soon"},
		{EnvLease: "long"}, {EnvRetryInterrupted: "maybe"}} {
		c := DefaultConfig()
		if err := c.FromEnv(func(k string) string { return bad[k] }); kalla.ErrorCode(err) != kalla.EINVALID {
			t.Errorf("%v: %v", bad, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		addr, token string
		ok          bool
	}{
		// Beyond loopback a token is checked once the store is open
		// (TestListenBeyondLoopbackNeedsAToken).
		{"127.0.0.1:8080", "", true},
		{"localhost:8080", "", true},
		{"[::1]:8080", "", true},
		{"127.0.0.2:0", "", true},
		{":8080", "", true},
		{"0.0.0.0:8080", "", true},
		{"[::]:8080", "", true},
		{"10.1.2.3:8080", "", true},
		{"kalla.internal:8080", "", true},
		{"0.0.0.0:8080", "tok", true},
		{"0.0.0.0:8080", "   ", false},
		{"no-port", "", false},
	} {
		cfg := DefaultConfig()
		cfg.Addr, cfg.APIToken = c.addr, c.token
		err := cfg.Validate()
		if (err == nil) != c.ok {
			t.Errorf("%q token %q: %v", c.addr, c.token, err)
		}
	}
	cfg := DefaultConfig()
	cfg.MaxConcurrentRuns = 0
	if cfg.Validate() == nil {
		t.Errorf("zero workers accepted")
	}
	for _, bad := range []func(*Config){
		func(c *Config) { c.Role = "both" },
		func(c *Config) { c.Role = "" },
		func(c *Config) { c.LeaseTTL = 500 * time.Millisecond },
	} {
		cfg := DefaultConfig()
		bad(&cfg)
		if err := cfg.Validate(); kalla.ErrorCode(err) != kalla.EINVALID {
			t.Errorf("role %q lease %s: %v", cfg.Role, cfg.LeaseTTL, err)
		}
	}
	if d := DefaultConfig(); d.Role != RoleAll || d.LeaseTTL != 30*time.Second {
		t.Errorf("defaults: role %q lease %s", d.Role, d.LeaseTTL)
	}
}

func TestAllowedHosts(t *testing.T) {
	for in, want := range map[string]allowedHost{
		"kalla.example.com":      {"kalla.example.com", ""},
		"Kalla.Example.COM.:443": {"kalla.example.com", "443"},
		"[::1]:8080":             {"::1", "8080"},
		"::1":                    {"::1", ""},
		"10.0.0.5":               {"10.0.0.5", ""},
	} {
		got, err := parseAllowedHost(in)
		if err != nil || got != want {
			t.Errorf("%q: %+v %v, want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "http://kalla.example.com", "kalla.example.com/x", "*", "*.example.com", "kalla:0", "kalla:99999", "kalla:http", "user@kalla", ":8080"} {
		cfg := DefaultConfig()
		cfg.AllowedHosts = []string{bad}
		if err := cfg.Validate(); kalla.ErrorCode(err) != kalla.EINVALID || !strings.Contains(err.Error(), "allowed host") {
			t.Errorf("allowed host %q: %v", bad, err)
		}
	}
}

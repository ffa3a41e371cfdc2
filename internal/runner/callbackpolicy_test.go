package runner

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"
)

func TestCallbackPolicyCheckURL(t *testing.T) {
	p, err := NewCallbackPolicy([]string{"hooks.example.com", "Pinned.Example.com:8443", "127.0.0.1:9000", "10.1.0.0/16", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		url string
		ok  bool
	}{
		{"https://hooks.example.com/x", true},
		{"https://HOOKS.example.com./x", true},
		{"http://hooks.example.com:8080/x", true},
		{"https://pinned.example.com:8443/x", true},
		{"https://pinned.example.com/x", false}, // port 443, the entry names 8443
		{"http://127.0.0.1:9000/x?token=1", true},
		{"http://127.0.0.1:9001/x", false},
		{"http://10.1.200.3/x", true},
		{"http://10.2.0.1/x", false},
		{"http://[::1]:5/x", true},
		{"http://169.254.169.254/latest/meta-data", false},
		{"http://evil.example.com/x", false},
		{"http://hooks.example.com.evil.example/x", false},
		{"ftp://hooks.example.com/x", false},
		{"file:///etc/passwd", false},
	} {
		err := p.CheckURL(c.url)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.url, err)
		}
		if err != nil && kalla.ErrorCode(err) != kalla.EINVALID {
			t.Errorf("%s: code %s", c.url, kalla.ErrorCode(err))
		}
	}
	var none *CallbackPolicy
	if none.CheckURL("https://hooks.example.com/x") == nil {
		t.Error("a nil policy allowed a callback")
	}
	for _, bad := range []string{"10.0.0.0/33", "host:99999", "a b", "*.example.com", "http://x/"} {
		if _, err := NewCallbackPolicy([]string{bad}); err == nil {
			t.Errorf("entry %q accepted", bad)
		}
	}
}

func TestPublicAddr(t *testing.T) {
	for ip, want := range map[string]bool{
		"93.184.216.34": true, "2606:2800:220:1::": true,
		"127.0.0.1": false, "::1": false, "10.0.0.1": false, "172.16.5.4": false, "192.168.1.1": false,
		"169.254.169.254": false, "fe80::1": false, "fd00:ec2::254": false, "100.100.100.200": false,
		"0.0.0.0": false, "::": false, "224.0.0.1": false, "::ffff:127.0.0.1": false, "64:ff9b::a9fe:a9fe": false,
	} {
		if got := publicAddr(netip.MustParseAddr(ip).Unmap()); got != want {
			t.Errorf("publicAddr(%s) = %v", ip, got)
		}
	}
}

// fixedResolver answers every lookup with its addresses and counts them.
type fixedResolver struct {
	mu    sync.Mutex
	addrs []netip.Addr
	calls int
}

func (r *fixedResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	return r.addrs, nil
}

// hits counts the requests a test server received.
type hits struct {
	mu    sync.Mutex
	paths []string
}

func (h *hits) add(p string) {
	h.mu.Lock()
	h.paths = append(h.paths, p)
	h.mu.Unlock()
}

func (h *hits) get() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.paths...)
}

// TestCallbackResolvedAddress checks the address dialled, not the name: a
// listed name that resolves to loopback or to the cloud metadata address is
// refused, and reaches its loopback server only when that address is listed
// too.
func TestCallbackResolvedAddress(t *testing.T) {
	var got hits
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.add(r.URL.Path)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	su, _ := url.Parse(srv.URL)
	target := "http://hooks.test:" + su.Port() + "/cb/complete"

	for _, c := range []struct {
		name    string
		entries []string
		addrs   []string
		ok      bool
	}{
		{"name to loopback", []string{"hooks.test"}, []string{"127.0.0.1"}, false},
		{"name to metadata", []string{"hooks.test"}, []string{"169.254.169.254"}, false},
		{"name to private", []string{"hooks.test"}, []string{"10.0.0.1"}, false},
		{"name to loopback, address listed", []string{"hooks.test", "127.0.0.1"}, []string{"127.0.0.1"}, true},
		{"name to loopback, range listed", []string{"hooks.test", "127.0.0.0/8"}, []string{"169.254.169.254", "127.0.0.1"}, true},
		{"address listed, name not", []string{"127.0.0.1"}, []string{"127.0.0.1"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := NewCallbackPolicy(c.entries)
			if err != nil {
				t.Fatal(err)
			}
			res := &fixedResolver{}
			for _, a := range c.addrs {
				res.addrs = append(res.addrs, netip.MustParseAddr(a))
			}
			p.Resolver = res
			before := len(got.get())
			req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader("{}"))
			resp, err := p.client().Do(req)
			if resp != nil {
				resp.Body.Close()
			}
			reached := len(got.get()) > before
			if c.ok && (err != nil || !reached) {
				t.Fatalf("refused: %v", err)
			}
			if !c.ok {
				if err == nil || reached {
					t.Fatalf("reached the server (err %v)", err)
				}
				if !errors.Is(err, errRefusedAddress) {
					t.Errorf("refused for another reason: %v", err)
				}
				t.Logf("%v", err)
			}
		})
	}
}

// TestCallbackRedirectNotFollowed: an allowed loopback receiver answering
// 307 to a second loopback server that is not on the list makes the runner
// post nothing to the second, for progress and final posts alike.
func TestCallbackRedirectNotFollowed(t *testing.T) {
	var second hits
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		second.add(r.URL.Path)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer other.Close()
	var first hits
	allowed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first.add(r.URL.Path)
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer allowed.Close()
	au, _ := url.Parse(allowed.URL)

	p, err := NewCallbackPolicy([]string{au.Host}) // 127.0.0.1:<port of the first only>
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	c := newCallbacks(Config{Callbacks: p, CallbackRetries: 3, CallbackBackoff: time.Millisecond}, slog.New(slog.NewTextHandler(&logs, nil)))
	rec := &kalla.RunRecord{ID: "r1", CallbackURL: allowed.URL + "/hook?api_key=K3Y&sig=S1G"}
	s := c.sender(rec)
	if s == nil {
		t.Fatal("no sender for an allowed callback URL")
	}
	s.progress(progress{Stage: "match", Fraction: 0.5}, kalla.Recipe{})
	s.complete(&kalla.Summary{MatchedCount: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.shutdown(ctx)

	if n := len(second.get()); n != 0 {
		t.Fatalf("the server not on the list received %d posts: %v", n, second.get())
	}
	var completes int
	for _, p := range first.get() {
		if p == "/hook/complete" {
			completes++
		}
	}
	if completes != 1 {
		t.Errorf("complete posted %d times to the allowed host, want 1 (a redirect is final, not retried): %v", completes, first.get())
	}
	if !strings.Contains(logs.String(), "redirects") {
		t.Errorf("log does not say the redirect was refused:\n%s", logs.String())
	}
	for _, secret := range []string{"K3Y", "S1G"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("log shows %q:\n%s", secret, logs.String())
		}
	}
}

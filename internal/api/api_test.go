package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// TestOpenAPIMatchesRoutes fails when the route table and the OpenAPI
// document disagree: every route must be documented, and the document
// must describe no route the server lacks.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	h := New(nil, nil, nil, Config{})
	served := map[string]route{}
	for _, r := range h.routes {
		served[r.Method+" "+r.Path] = r
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapiDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	documented := map[string]json.RawMessage{}
	for path, item := range doc.Paths {
		for method, op := range item {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options":
				documented[strings.ToUpper(method)+" "+path] = op
			}
		}
	}
	var missing, extra []string
	for k := range served {
		if _, ok := documented[k]; !ok {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if _, ok := served[k]; !ok {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("routes missing from openapi.json: %s", strings.Join(missing, "; "))
	}
	if len(extra) > 0 {
		t.Errorf("openapi.json documents routes the server does not have: %s", strings.Join(extra, "; "))
	}
	// Public routes say they need no token; the others document 401.
	for k, r := range served {
		op, ok := documented[k]
		if !ok {
			continue
		}
		var o struct {
			Security  *[]any                     `json:"security"`
			Responses map[string]json.RawMessage `json:"responses"`
		}
		if err := json.Unmarshal(op, &o); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if r.Public && (o.Security == nil || len(*o.Security) != 0) {
			t.Errorf("%s is public but its operation does not say security: []", k)
		}
		if !r.Public && o.Responses["401"] == nil {
			t.Errorf("%s needs the token but documents no 401", k)
		}
	}
}

// TestErrorStatus checks the one error writer's mapping of codes to
// statuses and its body.
func TestErrorStatus(t *testing.T) {
	h := New(nil, nil, nil, Config{})
	for _, c := range []struct {
		err    error
		status int
		code   string
		msg    string
	}{
		{kalla.Errorf(kalla.EINVALID, "bad"), 400, kalla.EINVALID, "bad"},
		{kalla.Errorf(kalla.EUNAUTHORIZED, "who"), 401, kalla.EUNAUTHORIZED, "who"},
		{fmt.Errorf("wrapped: %w", kalla.Errorf(kalla.ENOTFOUND, "gone")), 404, kalla.ENOTFOUND, "gone"},
		{kalla.Errorf(kalla.ECONFLICT, "busy"), 409, kalla.ECONFLICT, "busy"},
		{kalla.Errorf(kalla.EUNAVAILABLE, "cannot reach postgres://u:hunter22@h/db"), 502, kalla.EUNAVAILABLE, "postgres://u:xxxxx@h/db"},
		{errors.New("driver said password=hunter22"), 500, kalla.EINTERNAL, "internal error"},
		{&http.MaxBytesError{Limit: 10}, 413, kalla.EINVALID, "larger than the limit of 10 bytes"},
	} {
		w := httptest.NewRecorder()
		h.writeError(w, httptest.NewRequest("GET", "/api/x", nil), c.err)
		var body errorJSON
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("%v: body %s", c.err, w.Body)
		}
		if w.Code != c.status || body.Error.Code != c.code || !strings.Contains(body.Error.Message, c.msg) || strings.Contains(w.Body.String(), "hunter22") {
			t.Errorf("%v: %d %+v", c.err, w.Code, body.Error)
		}
		if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("content type %q", ct)
		}
	}
}

// TestRoots checks file-path confinement, including links out of a root.
func TestRoots(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	inner := filepath.Join(root, "in.csv")
	os.WriteFile(inner, []byte("a\n1\n"), 0o644)
	os.WriteFile(filepath.Join(outside, "secret.csv"), []byte("a\n1\n"), 0o644)
	os.Symlink(filepath.Join(outside, "secret.csv"), filepath.Join(root, "link.csv"))
	os.Symlink(outside, filepath.Join(root, "dirlink"))
	r, err := NewRoots(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		uri string
		ok  bool
	}{
		{inner, true},
		{"file://" + inner, true},
		{filepath.Join(root, "not-yet.csv"), true},
		{filepath.Join(root, "sub", "deeper", "x.csv"), true},
		{filepath.Join(outside, "secret.csv"), false},
		{root + "/../" + filepath.Base(outside) + "/secret.csv", false},
		{root + "/sub/../in.csv", false},
		{"in.csv", false},
		{filepath.Join(root, "link.csv"), false},
		{filepath.Join(root, "dirlink", "secret.csv"), false},
		{filepath.Join(root, "dirlink", "new.csv"), false},
		{root + "x/in.csv", false},
		{"file:///etc/passwd", false},
		{"s3://bucket/key.csv", true},
		{"https://example.com/x.csv", true},
	} {
		err := r.CheckURI(c.uri)
		if (err == nil) != c.ok {
			t.Errorf("%s: err %v, want ok=%v", c.uri, err, c.ok)
		}
		if err != nil && kalla.ErrorCode(err) != kalla.EINVALID {
			t.Errorf("%s: code %s", c.uri, kalla.ErrorCode(err))
		}
	}
	if err := r.CheckSpec(kalla.SourceSpec{URI: "postgres://u:p@h/db?table=t"}); err != nil {
		t.Errorf("database source: %v", err)
	}
	if _, err := NewRoots(filepath.Join(root, "missing")); err == nil {
		t.Errorf("a missing root was accepted")
	}
}

func TestUploadName(t *testing.T) {
	for _, c := range []struct{ in, name, typ string }{
		{"data.csv", "data.csv", "csv"},
		{`C:\Users\me\My Data.CSV`, "My_Data.CSV", "csv"},
		{"../../etc/x.parquet", "x.parquet", "parquet"},
		{"..csv", "", ""},
		{".hidden.csv", "hidden.csv", "csv"},
		{"notes.docx", "", ""},
		{"", "", ""},
	} {
		name, typ, err := uploadName(c.in)
		if name != c.name || typ != c.typ || (err == nil) != (c.typ != "") {
			t.Errorf("%q: %q %q %v", c.in, name, typ, err)
		}
	}
}

// TestEveryRouteNeedsARole: each route that is not public states the role
// it needs in the route table, so a route added without thought shows
// here (it would need admin meanwhile).
func TestEveryRouteNeedsARole(t *testing.T) {
	h := New(nil, nil, nil, Config{})
	for _, r := range h.routes {
		if r.Public != (r.Need == "") || (!r.Public && !r.Need.Valid()) {
			t.Errorf("%s %s: public %v, role %q", r.Method, r.Path, r.Public, r.Need)
		}
	}
}

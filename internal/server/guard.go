package server

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/kalla-recon/kalla/internal/api"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// guard stands in front of everything the server answers (API, web UI,
// metrics) and refuses, before any handler runs, what a web browser must
// not be made to do. Both checks hold with or without an API token:
// without one (the loopback default) they are all that stands between a
// visitor's browser and the API, since any page may send requests to
// 127.0.0.1.
//
//   - A Host header that is not one of the server's names, on every
//     request. A page on another site can point its own name at this
//     server's address (DNS rebinding); the browser then takes the server
//     for that site and lets the page read every answer. The page cannot
//     choose the Host header, which stays the attacker's name, so the
//     server answers only to its listening address, to localhost names
//     when it listens on loopback, to any IP literal when it listens on
//     every interface (an IP literal cannot be rebound), and to the names
//     the operator allows (Config.AllowedHosts). The probes /healthz and
//     /readyz answer under any Host: orchestrators call them by whatever
//     address they know, and they reveal nothing.
//   - A state-changing request (anything but GET, HEAD, OPTIONS) that a
//     browser says comes from another origin, by net/http's
//     CrossOriginProtection: Sec-Fetch-Site, or for older browsers Origin
//     compared with Host. Clients that send neither header (curl, scripts,
//     the CLI) are not browsers driven by a page and pass.
type guard struct {
	hosts []allowedHost
	// anyIP admits every IP literal on the listening port: the server
	// listens on all interfaces, whose addresses may change.
	anyIP  bool
	port   string
	listen string // the listening address, for messages
	cop    *http.CrossOriginProtection
	log    *slog.Logger
	next   http.Handler
}

// allowedHost is one name the server answers to: a lowercase host name
// or an IP in canonical form, and a port, or "" for any port.
type allowedHost struct {
	name, port string
}

// newGuard returns the guard for a server configured to listen on addr
// (its --addr, which may be a name), now listening on ln, that also
// answers to the names in allowed, in front of next.
func newGuard(addr string, ln net.Addr, allowed []string, log *slog.Logger, next http.Handler) (*guard, error) {
	tcp, ok := ln.(*net.TCPAddr)
	if !ok {
		return nil, fmt.Errorf("listener address %s is not TCP", ln)
	}
	g := &guard{port: strconv.Itoa(tcp.Port), listen: ln.String(), cop: http.NewCrossOriginProtection(), log: log, next: next}
	defaults := []string{tcp.IP.String()}
	if host, _, err := net.SplitHostPort(addr); err == nil && host != "" {
		defaults = append(defaults, host)
	}
	switch {
	case tcp.IP.IsLoopback():
		defaults = append(defaults, "localhost", "127.0.0.1", "::1")
	case tcp.IP.IsUnspecified():
		g.anyIP = true
		defaults = append(defaults, "localhost")
	}
	for _, d := range defaults {
		g.hosts = append(g.hosts, allowedHost{name: canonicalHost(d), port: g.port})
	}
	for _, a := range allowed {
		h, err := parseAllowedHost(a)
		if err != nil {
			return nil, err
		}
		g.hosts = append(g.hosts, h)
	}
	return g, nil
}

// parseAllowedHost reads one --allowed-host entry: host or host:port, the
// host a name or an IP literal (IPv6 in brackets when a port follows).
// Errors: EINVALID.
func parseAllowedHost(s string) (allowedHost, error) {
	bad := func(why string) (allowedHost, error) {
		return allowedHost{}, kalla.Errorf(kalla.EINVALID, "allowed host %q %s: give a host name or host:port, such as kalla.example.com or kalla.example.com:8080", clip(s), why)
	}
	if strings.ContainsAny(s, "/@*?# \t") {
		return bad("is not a host name")
	}
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return bad("has a port that is not a number from 1 to 65535")
		}
		host, port = h, p
	}
	if host = canonicalHost(host); host == "" {
		return bad("names no host")
	}
	return allowedHost{name: host, port: port}, nil
}

// canonicalHost writes a host as it is compared: lowercase, without the
// brackets of an IPv6 literal or a name's final dot, an IP in its
// canonical form (so "[0:0::1]" is "::1").
func canonicalHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
	if ip := net.ParseIP(h); ip != nil {
		return ip.String()
	}
	return h
}

// hostAllowed reports whether the Host header of a request names this
// server. A Host without a port means the scheme's default port.
func (g *guard) hostAllowed(hostHeader string, tls bool) bool {
	name, port, err := net.SplitHostPort(hostHeader)
	if err != nil {
		name, port = hostHeader, "80"
		if tls {
			port = "443"
		}
	}
	if name = canonicalHost(name); name == "" {
		return false
	}
	if g.anyIP && port == g.port && net.ParseIP(name) != nil {
		return true
	}
	for _, h := range g.hosts {
		if h.name == name && (h.port == "" || h.port == port) {
			return true
		}
	}
	return false
}

// ServeHTTP refuses a request with a foreign Host or from another site's
// page, and passes every other to the server's handler.
func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	probe := r.URL.Path == "/healthz" || r.URL.Path == "/readyz"
	if !probe && !g.hostAllowed(r.Host, r.TLS != nil) {
		g.refuse(w, r, "host", kalla.Errorf(kalla.EFORBIDDEN,
			"this server does not answer to the name %q (the request's Host header): it answers to its listening address %s and the names allowed with --allowed-host or %s. "+
				"A page on another site that points its own name at this server (DNS rebinding) is refused this way; if the name is yours, allow it",
			clip(r.Host), g.listen, EnvAllowedHosts))
		return
	}
	if err := g.cop.Check(r); err != nil {
		from := fmt.Sprintf("Origin %q", clip(r.Header.Get("Origin")))
		if r.Header.Get("Origin") == "" {
			from = fmt.Sprintf("Sec-Fetch-Site %q", clip(r.Header.Get("Sec-Fetch-Site")))
		}
		g.refuse(w, r, "cross-origin", kalla.Errorf(kalla.EFORBIDDEN,
			"cross-origin request refused: the browser says this %s comes from a page on another site (%s), and no other site's page may change anything here. "+
				"Use Kalla's own web UI, or call the API from a program (curl, scripts and the kalla CLI send no Origin header)",
			r.Method, from))
		return
	}
	g.next.ServeHTTP(w, r)
}

// refuse answers a refusal in the API's error format and logs it: a
// refused request is an attack or a name the operator has yet to allow.
func (g *guard) refuse(w http.ResponseWriter, r *http.Request, why string, err error) {
	g.log.Warn("request refused", "check", why, "method", r.Method, "path", clip(r.URL.Path), "host", clip(r.Host),
		"origin", clip(r.Header.Get("Origin")), "sec_fetch_site", clip(r.Header.Get("Sec-Fetch-Site")), "remote", r.RemoteAddr)
	api.WriteError(w, err)
}

// clipLen bounds how much of a header a message or log line quotes.
const clipLen = 100

// clip cuts a header's value to at most clipLen bytes.
func clip(s string) string {
	if len(s) > clipLen {
		return s[:clipLen] + "…"
	}
	return s
}

package runner

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// A callback_url comes from an API client, so posting to it is a request
// the client makes the server send. The policy:
//
//   - The allow-list holds host names ("hooks.example.com"), IP addresses
//     ("10.0.0.7") and CIDR ranges ("10.1.0.0/16"), each optionally with a
//     port ("hooks.example.com:8443", "127.0.0.1:9000"; not on a range).
//   - A URL naming an IP passes when an IP or range entry holds it; a URL
//     naming a host passes when that name is listed.
//   - What is checked in the end is the address dialled: the dialer
//     resolves the name itself, and a listed name whose address is
//     loopback, private, link-local (169.254.x.x, where clouds serve their
//     metadata), CGNAT, unspecified or multicast is refused unless that
//     address or its range is itself listed. The connection goes to the
//     checked IP, so a second DNS answer (rebinding) cannot differ from the
//     one checked. TLS still verifies the certificate against the name.
//   - Redirects are not followed: a receiver answering 3xx gets the post
//     once and the answer counts as a refusal. Re-checking each hop would
//     keep the allow-list but still hand the run's result to whatever the
//     receiver points at; a configured endpoint has no reason to move.
//   - No proxy from the environment: the address checked is the one dialled.

// Resolver looks up a host's addresses; *net.Resolver is one. Tests hand
// in a fixed answer.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// CallbackPolicy is the parsed callback allow-list. Its zero value (and a
// nil one) allows nothing.
type CallbackPolicy struct {
	names []allowName
	nets  []allowNet
	// Resolver answers the dialer's lookups; nil means net.DefaultResolver.
	Resolver Resolver
}

type allowName struct {
	host string // lower case, no trailing dot
	port string // "" for any
}

type allowNet struct {
	prefix netip.Prefix
	port   string
}

// NewCallbackPolicy parses allow-list entries: host names, IPs or CIDR
// ranges, names and IPs optionally with ":port". Errors: EINVALID naming the
// entry at fault.
func NewCallbackPolicy(entries []string) (*CallbackPolicy, error) {
	p := &CallbackPolicy{}
	for _, raw := range entries {
		e := strings.TrimSpace(raw)
		if e == "" {
			continue
		}
		if strings.Contains(e, "/") {
			pre, err := netip.ParsePrefix(e)
			if err != nil {
				return nil, kalla.Errorf(kalla.EINVALID, "callback allow-list entry %q is not a CIDR range like 10.0.0.0/8", kalla.Excerpt(e))
			}
			p.nets = append(p.nets, allowNet{prefix: pre.Masked()})
			continue
		}
		host, port := e, ""
		if h, pt, err := net.SplitHostPort(e); err == nil {
			if n, err := strconv.Atoi(pt); err != nil || n < 1 || n > 65535 {
				return nil, kalla.Errorf(kalla.EINVALID, "callback allow-list entry %q has an invalid port", kalla.Excerpt(e))
			}
			host, port = h, pt
		}
		host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
		if ip, err := netip.ParseAddr(host); err == nil {
			ip = ip.Unmap()
			p.nets = append(p.nets, allowNet{prefix: netip.PrefixFrom(ip, ip.BitLen()), port: port})
			continue
		}
		if host == "" || strings.ContainsAny(host, " :@/?#*") {
			return nil, kalla.Errorf(kalla.EINVALID, "callback allow-list entry %q is not a host name, IP address or CIDR range", kalla.Excerpt(e))
		}
		p.names = append(p.names, allowName{host: host, port: port})
	}
	return p, nil
}

// CheckURL checks that raw is an absolute http(s) URL whose host the
// allow-list admits by name or IP. The address it resolves to is checked
// again when it is dialled. Errors: EINVALID.
func (p *CallbackPolicy) CheckURL(raw string) error {
	if err := ValidCallbackURL(raw); err != nil {
		return err
	}
	u, _ := url.Parse(raw)
	host, port := hostPort(u)
	if ip, err := netip.ParseAddr(host); err == nil {
		if p.netAllows(ip.Unmap(), port) {
			return nil
		}
	} else if p.nameAllows(host, port) {
		return nil
	}
	return kalla.Errorf(kalla.EINVALID, "callback_url host %q is not allowed: list it in KALLA_CALLBACK_ALLOW (or --callback-allow)", kalla.Excerpt(u.Host))
}

// hostPort returns u's host in lower case without brackets or a trailing
// dot, and its port, the scheme's default when none is given.
func hostPort(u *url.URL) (string, string) {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return strings.TrimSuffix(strings.ToLower(u.Hostname()), "."), port
}

func (p *CallbackPolicy) nameAllows(host, port string) bool {
	if p == nil {
		return false
	}
	for _, n := range p.names {
		if n.host == host && (n.port == "" || n.port == port) {
			return true
		}
	}
	return false
}

func (p *CallbackPolicy) netAllows(ip netip.Addr, port string) bool {
	if p == nil {
		return false
	}
	for _, n := range p.nets {
		if n.prefix.Contains(ip) && (n.port == "" || n.port == port) {
			return true
		}
	}
	return false
}

// restricted lists address ranges a listed name may not lead to unless the
// address is listed itself: the host, its private networks, link-local
// (cloud metadata at 169.254.169.254 and fd00:ec2::254), CGNAT (Alibaba's
// metadata at 100.100.100.200) and addresses that are not one host.
var restricted = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64: may embed any IPv4 address
}

func publicAddr(ip netip.Addr) bool {
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, r := range restricted {
		if r.Contains(ip) {
			return false
		}
	}
	return true
}

// errRefusedAddress is in the chain of a dial the policy refused.
var errRefusedAddress = errors.New("callback address refused")

// dial connects to addr (host:port) at an address the policy admits: an
// IP or range on the list, or a public address of a listed name.
func (p *CallbackPolicy) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	var ips []netip.Addr
	named := false
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		named = p.nameAllows(host, port)
		if !named {
			return nil, fmt.Errorf("%w: host %q is not on the callback allow-list", errRefusedAddress, host)
		}
		var r Resolver = net.DefaultResolver
		if p.Resolver != nil {
			r = p.Resolver
		}
		if ips, err = r.LookupNetIP(ctx, "ip", host); err != nil {
			return nil, err
		}
	}
	var refused []string
	d := net.Dialer{Timeout: callbackTimeout}
	for _, ip := range ips {
		ip = ip.Unmap()
		if !p.netAllows(ip, port) && !(named && publicAddr(ip)) {
			refused = append(refused, ip.String())
			continue
		}
		return d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
	}
	if !named {
		return nil, fmt.Errorf("%w: address %s is not on the callback allow-list", errRefusedAddress, net.JoinHostPort(host, port))
	}
	return nil, fmt.Errorf("%w: %s resolves to %s, a loopback, private, link-local or otherwise internal address; list that address or its range to allow it",
		errRefusedAddress, host, strings.Join(refused, ", "))
}

// client returns the HTTP client callbacks are posted with: every dial
// goes through the policy, no redirect is followed and no proxy is used.
func (p *CallbackPolicy) client() *http.Client {
	return &http.Client{
		Timeout: callbackTimeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           p.dial,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          10,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   callbackTimeout,
			ExpectContinueTimeout: time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

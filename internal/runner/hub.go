package runner

import (
	"net/url"
	"regexp"
	"strings"
	"sync"
)

// hub tells in-process subscribers (Server-Sent Events streams) that a run
// changed, so they re-read it from the store at once instead of at their
// next poll. It carries no state: the store is the truth, and a subscriber
// in another process simply polls.
type hub struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
}

func newHub() *hub { return &hub{subs: map[string]map[chan struct{}]struct{}{}} }

func (h *hub) subscribe(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.subs[id] == nil {
		h.subs[id] = map[chan struct{}]struct{}{}
	}
	h.subs[id][ch] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.subs[id], ch)
			if len(h.subs[id]) == 0 {
				delete(h.subs, id)
			}
			h.mu.Unlock()
		})
	}
}

// notify never blocks: a subscriber with a pending signal already knows it
// must re-read.
func (h *hub) notify(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

var userinfo = regexp.MustCompile(`(?i)([a-z][a-z0-9+.-]*://)([^/@\s:]*):([^/@\s]*)@`)
var secretKV = regexp.MustCompile(`(?i)((?:password|passwd|pwd|secret|secret_key|token|access_key|sslpassword|api_key|apikey)=)[^&\s"']*`)

// Redact returns msg with the secrets of the given URIs (passwords and
// secret-looking query values) replaced by "xxxxx", and any other
// user:password@ or password=… that looks like a credential masked too.
// Messages that leave the server (run failures, API errors) pass through it
// as a second line of defence behind the connectors' own redaction, since a
// driver message may quote a connection string.
func Redact(msg string, uris ...string) string {
	for _, s := range secretsOf(uris...) {
		msg = strings.ReplaceAll(msg, s, "xxxxx")
	}
	msg = userinfo.ReplaceAllString(msg, "${1}${2}:xxxxx@")
	return secretKV.ReplaceAllString(msg, "${1}xxxxx")
}

// secretsOf lists the secret parts of URIs, in raw and escaped forms, long
// enough that replacing them cannot mangle ordinary words.
func secretsOf(uris ...string) []string {
	var out []string
	add := func(s string) {
		if len(s) >= 3 {
			out = append(out, s)
			if e := url.QueryEscape(s); e != s {
				out = append(out, e)
			}
		}
	}
	for _, raw := range uris {
		u, err := url.Parse(raw)
		if err != nil {
			continue
		}
		if pw, ok := u.User.Password(); ok {
			add(pw)
		}
		for k, vs := range u.Query() {
			if secretKV.MatchString(k + "=") {
				for _, v := range vs {
					add(v)
				}
			}
		}
	}
	return out
}

package connector

import (
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// CheckParams refuses a source URI's query parameters that are not in
// allowed. Database drivers give meaning to far more parameters than Kalla
// documents, and several of them reach the Kalla host itself (pgx reads
// passfile, sslcert, sslkey, sslrootcert and service files from the local
// disk; the MySQL driver turns unknown parameters into SET statements): an
// allow-list, not a deny-list, keeps a new driver parameter from becoming a
// way in. kind names the URI's kind in the message ("postgres"), name is
// the redacted URI, hints add advice for some refused parameters. A
// parameter given twice is refused too, since the drivers and Kalla would
// not agree on which value counts. Errors: EINVALID naming the parameter.
func CheckParams(kind, name string, q url.Values, hints map[string]string, allowed ...string) error {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			msg := fmt.Sprintf("source %s: parameter %s is not allowed in a %s URI (allowed: %s)", name, quote(k), kind, strings.Join(allowed, ", "))
			if h := hints[strings.ToLower(k)]; h != "" {
				msg += ": " + h
			}
			return kalla.Errorf(kalla.EINVALID, "%s", msg)
		}
		if len(q[k]) > 1 {
			return kalla.Errorf(kalla.EINVALID, "source %s: parameter %s is given %d times: give it once", name, quote(k), len(q[k]))
		}
	}
	return nil
}

// quote quotes a parameter name for a message, bounded so that a huge
// name does not flood the answer.
func quote(k string) string {
	if len(k) > 64 {
		k = k[:64] + "..."
	}
	return fmt.Sprintf("%q", k)
}

package spark

import (
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// TestSparkSourceOptions: the settings the Spark engine would not carry out
// are refused as the recipe's fault, naming the setting; the rest pass.
func TestSparkSourceOptions(t *testing.T) {
	for _, c := range []struct {
		spec kalla.SourceSpec
		want string // "" when accepted
	}{
		{kalla.SourceSpec{Alias: "a", URI: "a.csv", Schema: map[string]string{"x": "DECIMAL(12,2)"}}, ""},
		{kalla.SourceSpec{Alias: "a", URI: "a.csv", CSV: &kalla.CSVOptions{Delimiter: ";"}}, ""},
		{kalla.SourceSpec{Alias: "a", URI: "a.parquet", Schema: map[string]string{"x": "DECIMAL(12,2)"}}, "schema overrides of Parquet sources are not supported on Spark"},
		{kalla.SourceSpec{Alias: "a", URI: "postgres://h/db?table=t", Schema: map[string]string{"x": "BIGINT"}}, "a postgres table's types come from its catalog"},
		{kalla.SourceSpec{Alias: "a", URI: "a.csv", CSV: &kalla.CSVOptions{Delimiter: ";", DecimalSeparator: ","}}, `decimal_separator "," is not supported on Spark`},
		{kalla.SourceSpec{Alias: "a", URI: "a.csv", CSV: &kalla.CSVOptions{DateFormat: "%d/%m/%Y"}}, "date_format and timestamp_format"},
	} {
		err := sparkSourceOptions(c.spec)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: refused: %v", c.spec, err)
		case c.want != "" && (kalla.ErrorCode(err) != kalla.EINVALID || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: err = %v, want %q", c.spec, err, c.want)
		}
	}
}

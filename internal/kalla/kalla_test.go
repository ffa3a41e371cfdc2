package kalla_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/kalla"
)

const originalRecipe = `{"recipe_id": "invoice-payment-match", "name": "Invoices", "description": "d",
 "match_sql": "SELECT l.invoice_id, r.payment_id FROM left_src l JOIN right_src r ON l.invoice_id = r.reference_number AND tolerance_match(l.amount, r.paid_amount, 0.02)",
 "match_description": "m",
 "sources": {"left":  {"alias": "invoices", "type": "csv", "uri": "data/invoices.csv", "primary_key": ["invoice_id"]},
             "right": {"alias": "payments", "type": "csv", "uri": "data/payments.csv", "primary_key": ["payment_id"]}}}`

func TestParseRecipeOriginalFormat(t *testing.T) {
	r, err := kalla.ParseRecipe([]byte(originalRecipe))
	if err != nil {
		t.Fatal(err)
	}
	if r.RecipeID != "invoice-payment-match" || r.Sources.Left.Alias != "invoices" || r.Sources.Right.PrimaryKey[0] != "payment_id" {
		t.Fatalf("parsed wrong: %+v", r)
	}
}

func TestParseRecipeYAML(t *testing.T) {
	y := `recipe_id: ledger-bank
match_sql: |
  SELECT * FROM left_src l JOIN right_src r ON l.ref = r.ref
sources:
  left:
    alias: ledger
    uri: ledger.parquet
    primary_key: [entry_id, line]
    filters:
      - {column: amount, op: between, value: ["10", "20"]}
  right:
    alias: bank
    uri: file:///data/bank.csv
    primary_key: [txn_id]
    schema: {amount: "DECIMAL(18,2)"}
`
	r, err := kalla.ParseRecipe([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Sources.Left.SourceType(); got != kalla.SourceParquet {
		t.Errorf("left type = %q, want parquet", got)
	}
	if got := r.Sources.Right.SourceType(); got != kalla.SourceCSV {
		t.Errorf("right type = %q, want csv", got)
	}
	f := r.Sources.Left.Filters[0]
	if !f.IsArray || len(f.Values) != 2 || f.Values[1].Text != "20" {
		t.Errorf("between filter lost its array: %+v", f)
	}
	if len(r.Sources.Left.PrimaryKey) != 2 {
		t.Errorf("composite key lost: %v", r.Sources.Left.PrimaryKey)
	}
}

func TestParseRecipeProblems(t *testing.T) {
	cases := []struct {
		name, json string
		want       []string
	}{
		{"missing fields", `{"sources": {"left": {}, "right": {}}}`, []string{`"recipe_id" is required`, `"match_sql" is required`, "sources.left.alias is required", "sources.right.uri is required", "sources.left.primary_key is required"}},
		{"unknown field", strings.Replace(originalRecipe, `"primary_key": ["invoice_id"]`, `"primary_keys": ["invoice_id"]`, 1), []string{`unknown field "primary_keys"`}},
		{"same alias", strings.Replace(originalRecipe, `"alias": "payments"`, `"alias": "Invoices"`, 1), []string{"same alias"}},
		{"reserved alias", strings.Replace(originalRecipe, `"alias": "payments"`, `"alias": "left_src"`, 1), []string{"reserved"}},
		{"bad type", strings.Replace(originalRecipe, `"type": "csv", "uri": "data/payments.csv"`, `"type": "xlsx", "uri": "data/payments.csv"`, 1), []string{`type "xlsx" is not supported`}},
		{"syntax", `{"recipe_id": "x",` + "\n" + `"match_sql": }`, []string{"invalid JSON at line 2"}},
		{"wrong type", strings.Replace(originalRecipe, `"primary_key": ["invoice_id"]`, `"primary_key": "invoice_id"`, 1), []string{`field "sources.left.primary_key"`}},
		{"bad filter", strings.Replace(originalRecipe, `"primary_key": ["invoice_id"]`, `"primary_key": ["invoice_id"], "filters": [{"column": "amount", "op": "between", "value": 5}]`, 1), []string{`"between" takes an array of exactly two values`}},
		{"empty", ``, []string{"recipe is empty"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := kalla.ParseRecipe([]byte(c.json))
			if err == nil {
				t.Fatal("no error")
			}
			if kalla.ErrorCode(err) != kalla.EINVALID {
				t.Errorf("code = %s, want invalid", kalla.ErrorCode(err))
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestFilterJSON(t *testing.T) {
	cases := []struct {
		in      string
		wantErr string // substring of Validate's error, "" for valid
		values  int
		array   bool
	}{
		{`{"column":"amount","op":"gte","value":100.10}`, "", 1, false},
		{`{"column":"name","op":"eq","value":"O'Brien"}`, "", 1, false},
		{`{"column":"d","op":"between","value":["2024-01-01","2024-12-31"]}`, "", 2, true},
		{`{"column":"c","op":"in","value":["a","b"]}`, "", 2, true},
		{`{"column":"c","op":"in","value":["a"]}`, "", 1, true},
		{`{"column":"c","op":"in","value":[]}`, `"in" takes an array of one or more`, 0, true},
		{`{"column":"c","op":"between","value":["a"]}`, `exactly two`, 1, true},
		{`{"column":"c","op":"between","value":["a","b","c"]}`, `exactly two`, 3, true},
		{`{"column":"d","op":"between","value":["2024-01-15",""]}`, `the high end is empty`, 2, true},
		{`{"column":"d","op":"between","value":[" ","2024-01-15"]}`, `the low end is empty`, 2, true},
		{`{"column":"a","op":"between","value":[0,100]}`, "", 2, true},
		{`{"column":"c","op":"eq","value":["a","b"]}`, `takes exactly one value`, 2, true},
		{`{"column":"c","op":"gt"}`, `takes exactly one value`, 0, false},
		{`{"column":"c","op":"like","value":5}`, `string pattern`, 1, false},
		{`{"column":"c","op":"regex","value":"x"}`, `unknown op "regex"`, 1, false},
		{`{"column":"","op":"eq","value":"x"}`, `column is required`, 1, false},
	}
	for _, c := range cases {
		var f kalla.Filter
		if err := json.Unmarshal([]byte(c.in), &f); err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if len(f.Values) != c.values || f.IsArray != c.array {
			t.Errorf("%s: parsed %d values (array %v), want %d (%v)", c.in, len(f.Values), f.IsArray, c.values, c.array)
		}
		err := f.Validate()
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s: unexpected error %v", c.in, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s: error %v, want it to mention %q", c.in, err, c.wantErr)
		}
		// The form read is the form written back.
		if c.wantErr == "" {
			b, _ := json.Marshal(f)
			var back kalla.Filter
			if err := json.Unmarshal(b, &back); err != nil || back.IsArray != f.IsArray || len(back.Values) != len(f.Values) {
				t.Errorf("%s: round trip gave %s", c.in, b)
			}
		}
	}
	// Numbers keep their exact text: never through float64.
	var f kalla.Filter
	json.Unmarshal([]byte(`{"column":"a","op":"eq","value":12345678901234567.10}`), &f)
	if f.Values[0].Text != "12345678901234567.10" || !f.Values[0].IsNumber {
		t.Errorf("number text = %q", f.Values[0].Text)
	}
	if err := json.Unmarshal([]byte(`{"column":"a","op":"eq","value":{"x":1}}`), &f); err == nil {
		t.Error("object value accepted")
	}
	if err := json.Unmarshal([]byte(`{"column":"a","op":"eq","value":true}`), &f); err == nil {
		t.Error("boolean value accepted")
	}
}

func TestValidateFiltersUnknownColumn(t *testing.T) {
	var f kalla.Filter
	json.Unmarshal([]byte(`{"column":"amout","op":"gte","value":1}`), &f)
	err := kalla.ValidateFilters("invoices", []kalla.Filter{f}, []kalla.Column{{Name: "amount"}, {Name: "id"}})
	if err == nil || !strings.Contains(err.Error(), `no column "amout"`) || !strings.Contains(err.Error(), "amount, id") {
		t.Fatalf("error = %v", err)
	}
}

func TestHTTPStatusTable(t *testing.T) {
	want := map[string]int{kalla.EINVALID: 400, kalla.EUNAUTHORIZED: 401, kalla.EFORBIDDEN: 403, kalla.ENOTFOUND: 404, kalla.ECONFLICT: 409, kalla.EUNAVAILABLE: 502, kalla.ETOOMANY: 429, kalla.EUNRUNNABLE: 422, kalla.EINTERNAL: 500}
	for code, st := range want {
		if got := kalla.HTTPStatus(code); got != st {
			t.Errorf("HTTPStatus(%s) = %d, want %d", code, got, st)
		}
	}
}

func TestIsPartialPath(t *testing.T) {
	for path, want := range map[string]bool{
		kalla.PartialPath("/data/uploads/1/ledger.csv"): true,
		"/data/uploads/1/.ledger.csv.partial":           true,
		"file:///d/.x.CSV.PARTIAL":                      true,
		"s3://b/up/.x.csv.partial?versionId=1":          true,
		"/data/uploads/1/ledger.csv":                    false,
		"/data/uploads/1/ledger.partial":                false, // not a hidden temporary name
		"/data/.partial/ledger.csv":                     false,
	} {
		if got := kalla.IsPartialPath(path); got != want {
			t.Errorf("IsPartialPath(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestSourceErrorMessage(t *testing.T) {
	cause := kalla.Errorf(kalla.ENOTFOUND, "source /d/x.csv: file /d/x.csv does not exist")
	err := kalla.AsSourceError(kalla.AsSourceError(cause, "", "ledger"), "left", "other")
	var se *kalla.SourceError
	if !errors.As(err, &se) || se.Kind != kalla.SourceNotFound || se.Side != "left" || se.Alias != "ledger" {
		t.Fatalf("AsSourceError: %#v", err)
	}
	if got, want := kalla.ErrorMessage(err), "left source ledger: source /d/x.csv: file /d/x.csv does not exist"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if kalla.ErrorCode(err) != kalla.ENOTFOUND || kalla.AsSourceError(context.Canceled, "left", "x") != context.Canceled {
		t.Errorf("code %s; a cancellation must stay itself", kalla.ErrorCode(err))
	}
}

func TestExactScale(t *testing.T) {
	for typ, want := range map[string]int{"DECIMAL(12,2)": 2, "numeric( 10 , 4 )": 4, "DECIMAL": 3, "DECIMAL(9)": 0, "bigint": 0, " INTEGER ": 0, "UBIGINT": 0} {
		if got, ok := kalla.ExactScale(typ); !ok || got != want {
			t.Errorf("ExactScale(%q) = %d, %v; want %d", typ, got, ok, want)
		}
	}
	for _, typ := range []string{"DOUBLE", "VARCHAR", "DATE", "FLOAT", "DECIMAL(12,2", "DECIMALS"} {
		if _, ok := kalla.ExactScale(typ); ok {
			t.Errorf("ExactScale(%q) says exact", typ)
		}
	}
}

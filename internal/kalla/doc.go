// Package kalla holds Kalla's domain types: recipes, sources, filters, columns,
// run summaries and the error codes every layer speaks. It depends on nothing
// but the standard library, so every other package can use it, and each type
// validates itself so that bad input is rejected where it enters.
package kalla

package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// Resource URIs.
const (
	recipesURI      = "kalla://recipes"
	runsURI         = "kalla://runs"
	recipeTemplate  = "kalla://recipes/{id}"
	summaryTemplate = "kalla://runs/{id}/summary"
)

// addResources registers the recipe and run-summary resources: two lists
// and two templates, each read through the API with the reader's identity.
func (s *service) addResources(srv *sdk.Server) {
	srv.AddResource(&sdk.Resource{URI: recipesURI, Name: "recipes", Title: "Stored recipes", MIMEType: "application/json",
		Description: "Every stored recipe (source URIs masked); read one as kalla://recipes/{id}."},
		s.resource(func(context.Context, string) (string, url.Values, error) { return "/api/recipes", nil, nil }))
	srv.AddResource(&sdk.Resource{URI: runsURI, Name: "runs", Title: "Recent runs", MIMEType: "application/json",
		Description: "The 50 newest runs with their status and counts; read one's summary as kalla://runs/{id}/summary."},
		s.resource(func(context.Context, string) (string, url.Values, error) {
			return "/api/runs", url.Values{"limit": {"50"}}, nil
		}))
	srv.AddResourceTemplate(&sdk.ResourceTemplate{URITemplate: recipeTemplate, Name: "recipe", Title: "A stored recipe", MIMEType: "application/json",
		Description: "One stored recipe by id (source URIs masked)."},
		s.resource(func(_ context.Context, uri string) (string, url.Values, error) {
			id, err := uriPart(uri, "kalla://recipes/", "")
			return "/api/recipes/" + url.PathEscape(id), nil, err
		}))
	srv.AddResourceTemplate(&sdk.ResourceTemplate{URITemplate: summaryTemplate, Name: "run-summary", Title: "A run's summary", MIMEType: "application/json",
		Description: "One run by id: status and progress, and once completed its counts, match rates, stage timings, warnings and files."},
		s.resource(func(_ context.Context, uri string) (string, url.Values, error) {
			id, err := uriPart(uri, "kalla://runs/", "/summary")
			return "/api/runs/" + url.PathEscape(id), nil, err
		}))
}

// uriPart returns what lies between prefix and suffix in uri.
func uriPart(uri, prefix, suffix string) (string, error) {
	if !strings.HasPrefix(uri, prefix) || !strings.HasSuffix(uri, suffix) || len(uri) <= len(prefix)+len(suffix) {
		return "", sdk.ResourceNotFoundError(uri)
	}
	id, err := url.PathUnescape(uri[len(prefix) : len(uri)-len(suffix)])
	if err != nil || id == "" || strings.Contains(id, "/") {
		return "", sdk.ResourceNotFoundError(uri)
	}
	return id, nil
}

// resource returns a handler reading the API path route gives for a URI,
// answered as indented JSON. An unknown id is the protocol's
// resource-not-found error; other API errors keep their code and message.
func (s *service) resource(route func(ctx context.Context, uri string) (string, url.Values, error)) sdk.ResourceHandler {
	return func(ctx context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
		uri := req.Params.URI
		path, query, err := route(ctx, uri)
		if err != nil {
			return nil, err
		}
		var v any
		if err := s.call(ctx, s.identity(req.Extra), "GET", path, query, nil, &v); err != nil {
			var ae *apiError
			if errors.As(err, &ae) && ae.Code == string(kalla.ENOTFOUND) {
				return nil, sdk.ResourceNotFoundError(uri)
			}
			return nil, err
		}
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("encode resource: %w", err)
		}
		return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{{URI: uri, MIMEType: "application/json", Text: string(b)}}}, nil
	}
}

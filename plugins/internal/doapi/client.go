// Package doapi is what the DigitalOcean compute and ip providers share: the godo client over
// drover's retrying transport (retry.go, the policy of dns/digitalocean), the error type of a
// failed call, and listing every page of a paginated answer.
package doapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/digitalocean/godo"
)

// DefaultURL is the API's base URL.
const DefaultURL = "https://api.digitalocean.com/"

// Client is a godo client whose requests go through the retry policy, and whose calls (Do) get
// the policy's deadline and drover's errors. It is safe for concurrent use.
type Client struct {
	*godo.Client
	retry Retry
}

// New returns a client of the API at apiURL ("" for DefaultURL) with token. base is the HTTP
// transport (nil for http.DefaultTransport). It makes no request.
func New(token, apiURL string, r Retry, base http.RoundTripper) (*Client, error) {
	if token == "" {
		return nil, errors.New("no API token: set DIGITALOCEAN_TOKEN or DIGITALOCEAN_TOKEN_FILE")
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	url := DefaultURL
	if apiURL != "" {
		url = strings.TrimSuffix(apiURL, "/") + "/" // godo resolves "v2/..." against it
	}
	hc := &http.Client{Transport: newTransport(r, token, base)}
	c, err := godo.New(hc, godo.SetBaseURL(url), godo.SetUserAgent("drover"))
	if err != nil {
		return nil, fmt.Errorf("api_url %q: %w", apiURL, err)
	}
	return &Client{Client: c, retry: r}, nil
}

// Do runs one API call fn under the policy's CallTimeout and turns its error into an *APIError
// (or a context error wrapped with op). op says what drover was doing, for the message.
func Do[T any](ctx context.Context, c *Client, op string, fn func(ctx context.Context) (T, *godo.Response, error)) (T, *godo.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.retry.CallTimeout)
	defer cancel()
	ctx, cl := withCall(ctx)
	v, res, err := fn(ctx)
	if err != nil {
		return v, res, apiError(op, err, cl)
	}
	return v, res, nil
}

// All lists every page of a paginated list call, asking for perPage items a page (the API's
// maximum is 200), and following links.pages until the last one.
func All[T any](ctx context.Context, c *Client, op string, perPage int, fn func(ctx context.Context, opt *godo.ListOptions) ([]T, *godo.Response, error)) ([]T, error) {
	var out []T
	for page := 1; ; page++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		items, res, err := Do(ctx, c, op, func(ctx context.Context) ([]T, *godo.Response, error) {
			return fn(ctx, &godo.ListOptions{Page: page, PerPage: perPage})
		})
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if res == nil || res.Links == nil || res.Links.IsLastPage() || len(items) == 0 {
			return out, nil
		}
	}
}

// Status is the HTTP status of a failed call's last answer, 0 when err is no *APIError or none
// answered.
func Status(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// NotFound reports whether err is the API's 404.
func NotFound(err error) bool { return Status(err) == http.StatusNotFound }

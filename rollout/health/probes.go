package health

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"

	"github.com/drover-dev/drover/fleet"
)

// newHTTP makes the factory of http and https checks: GET path, expect a status code.
func newHTTP(useTLS bool) Factory {
	return func(hc fleet.HealthCheck, d Dialer) (Prober, error) {
		path, expect := hc.Path, hc.Expect
		if path == "" {
			path = "/"
		}
		if expect == 0 {
			expect = http.StatusOK
		}
		// The URL is built from parts, never by concatenation: a path such as
		// "@169.254.169.254/latest" would otherwise turn the instance's address into user
		// information and probe another host (validate refuses it too).
		ref, err := url.Parse(path)
		if err != nil || ref.Scheme != "" || ref.Host != "" || ref.User != nil || !strings.HasPrefix(ref.Path, "/") || strings.HasPrefix(ref.Path, "//") {
			return nil, fmt.Errorf("health: %s check path %q is not a URL path such as \"/healthz\"", hc.Type, path)
		}
		scheme := "http"
		tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true, Proxy: nil}
		if useTLS {
			scheme = "https"
			cfg, err := tlsConfig(hc)
			if err != nil {
				return nil, err
			}
			tr.TLSClientConfig = cfg
		}
		client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		return ProberFunc(func(ctx context.Context, target netip.AddrPort) error {
			u := &url.URL{Scheme: scheme, Host: target.String(), Path: ref.Path, RawPath: ref.RawPath, RawQuery: ref.RawQuery}
			url := u.String()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			req.Header.Set("User-Agent", "drover-health")
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode != expect {
				return fmt.Errorf("GET %s: got %s, want %d", url, resp.Status, expect)
			}
			return nil
		}), nil
	}
}

// tlsConfig is how a check verifies an https endpoint: against hc.CAFile's certificates when
// set, else the system's; not at all with tls_skip_verify.
func tlsConfig(hc fleet.HealthCheck) (*tls.Config, error) {
	cfg := &tls.Config{InsecureSkipVerify: hc.TLSSkipVerify} //nolint:gosec // the fleet file asks for it
	if hc.CAFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(hc.CAFile)
	if err != nil {
		return nil, fmt.Errorf("health: %s check: ca_file: %w", hc.Type, err)
	}
	cfg.RootCAs = x509.NewCertPool()
	if !cfg.RootCAs.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("health: %s check: ca_file %s holds no PEM certificate", hc.Type, hc.CAFile)
	}
	return cfg, nil
}

// newTCP makes a tcp check: the port accepts a connection.
func newTCP(_ fleet.HealthCheck, d Dialer) (Prober, error) {
	return ProberFunc(func(ctx context.Context, target netip.AddrPort) error {
		c, err := d.DialContext(ctx, "tcp", target.String())
		if err != nil {
			return err
		}
		return c.Close()
	}), nil
}

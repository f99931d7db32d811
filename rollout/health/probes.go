package health

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/netip"

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
		scheme := "http"
		tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true, Proxy: nil}
		if useTLS {
			scheme = "https"
			tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: hc.TLSSkipVerify} //nolint:gosec // the fleet file asks for it
		}
		client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		return ProberFunc(func(ctx context.Context, target netip.AddrPort) error {
			url := fmt.Sprintf("%s://%s%s", scheme, target, path)
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

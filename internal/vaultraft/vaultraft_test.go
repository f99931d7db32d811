package vaultraft

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"
)

// Removed is true for Vault's answer of a node that removed itself (530, removed_from_cluster),
// false for an active, a standby and a sealed node, and an error for what is not Vault.
func TestRemoved(t *testing.T) {
	for _, tc := range []struct {
		code    int
		body    string
		removed bool
		err     bool
	}{
		{200, `{"initialized":true,"sealed":false,"standby":false}`, false, false},
		{429, `{"initialized":true,"sealed":false,"standby":true}`, false, false},
		{503, `{"initialized":true,"sealed":true,"standby":true}`, false, false},
		{530, `{"initialized":true,"sealed":true,"standby":true,"removed_from_cluster":true}`, true, false},
		{502, `<html>bad gateway</html>`, false, true},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/sys/health" {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(tc.code)
			_, _ = w.Write([]byte(tc.body))
		}))
		u, _ := url.Parse(srv.URL)
		c, err := New("token", "http", "")
		if err != nil {
			t.Fatal(err)
		}
		removed, err := c.Removed(t.Context(), netip.MustParseAddrPort(u.Host))
		if removed != tc.removed || (err != nil) != tc.err {
			t.Errorf("%d %s: removed %t, %v; want %t (error %t)", tc.code, tc.body, removed, err, tc.removed, tc.err)
		}
		srv.Close()
	}
}

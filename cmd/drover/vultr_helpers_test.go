package main

import (
	"net/http"
	"net/netip"
	"testing"

	"github.com/vultr/govultr/v3"

	"github.com/drover-dev/drover/internal/cloudlab/vultrlab"
)

// reserveIP makes a reserved IP on the fake Vultr, as an operator would before writing the fleet.
func reserveIP(t *testing.T, cloud *vultrlab.Cloud) netip.Addr {
	t.Helper()
	g := govultr.NewClient(&http.Client{Transport: bearerKey(cloud.APIKey())})
	if err := g.SetBaseURL(cloud.URL()); err != nil {
		t.Fatal(err)
	}
	r, _, err := g.ReservedIP.Create(t.Context(), &govultr.ReservedIPReq{Region: cloud.Region(), IPType: "v4", Label: "web"})
	if err != nil {
		t.Fatal(err)
	}
	return netip.MustParseAddr(r.Subnet)
}

// bearerKey is a transport that sends the API key as Vultr wants it.
type bearerKey string

func (k bearerKey) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+string(k))
	return http.DefaultTransport.RoundTrip(r)
}

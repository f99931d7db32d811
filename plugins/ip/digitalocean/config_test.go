package digitalocean_test

import (
	"strings"
	"testing"

	"github.com/drover-dev/drover/plugins/ip/digitalocean"
)

func TestConfigValidate(t *testing.T) {
	if err := (&digitalocean.Config{Address: "203.0.113.10"}).Validate(); err != nil {
		t.Fatalf("a good block: %v", err)
	}
	for _, c := range []digitalocean.Config{{Address: ""}, {Address: "2001:db8::1"}, {Address: "www.example.com"}, {Address: "203.0.113.10", APIURL: "api.digitalocean.com"}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if s := (digitalocean.Config{Address: "203.0.113.10", Token: "dop_v1_secret"}).String(); strings.Contains(s, "secret") {
		t.Errorf("String shows the token: %s", s)
	}
}

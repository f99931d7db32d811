package apicfg

import (
	"errors"
	"strings"
	"testing"

	"github.com/drover-dev/drover/plugins/config"
)

func TestValidZone(t *testing.T) {
	long := strings.Repeat("a", 63)
	for zone, want := range map[string]bool{
		"example.com":                    true,
		"example.com.":                   true,
		"_dmarc.a-b.c":                   true,
		"EXAMPLE.com":                    true,
		long + ".com":                    true,
		"":                               false,
		".":                              false,
		"bad zone":                       false,
		"a..b":                           false,
		".example.com":                   false,
		"example.com..":                  false,
		long + "a.com":                   false,
		strings.Repeat("a.", 127) + "ab": false,
	} {
		if got := ValidZone(zone); got != want {
			t.Errorf("ValidZone(%q) = %t, want %t", zone, got, want)
		}
	}
}

func TestCheck(t *testing.T) {
	attr := func(err error) string {
		var ae *config.AttrError
		if errors.As(err, &ae) {
			return ae.Attr
		}
		return ""
	}
	if err := CheckZone("example.com"); err != nil {
		t.Errorf("CheckZone(example.com) = %v", err)
	}
	if err := CheckZone("bad zone"); attr(err) != "zone" || !strings.Contains(err.Error(), `"bad zone"`) {
		t.Errorf("CheckZone(bad zone) = %v, want an error about zone naming it", err)
	}
	for raw, want := range map[string]string{
		"":                              "",
		"http://127.0.0.1:1/client/v4/": "",
		"https://api.example/":          "",
		"ftp://x":                       "must be an http or https URL such as \"https://api.example/\", got \"ftp://x\"",
		"api.example":                   "must be an http or https URL",
		"https://":                      "must be an http or https URL",
		"https://user:pw@api.example/":  "must not hold credentials (they come from elsewhere)",
	} {
		err := CheckURL("api_url", raw, "https://api.example/", "they come from elsewhere")
		switch {
		case want == "" && err != nil:
			t.Errorf("CheckURL(%q) = %v, want nil", raw, err)
		case want != "" && (attr(err) != "api_url" || !strings.Contains(err.Error(), want)):
			t.Errorf("CheckURL(%q) = %v, want an error about api_url containing %q", raw, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("CheckURL(%q) shows the password: %v", raw, err)
		}
	}
}

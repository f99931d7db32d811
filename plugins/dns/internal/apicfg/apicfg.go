// Package apicfg checks the attributes that the providers of hosted DNS APIs (cloudflare, route53)
// share: the zone's name and a replacement API URL.
package apicfg

import (
	"net/url"
	"strings"

	"github.com/drover-dev/drover/plugins/config"
)

// CheckZone returns an error about the "zone" attribute unless zone looks like a domain name (see
// ValidZone).
func CheckZone(zone string) error {
	if !ValidZone(zone) {
		return config.Errorf("zone", "must be a domain name such as \"example.com\", got %q", zone)
	}
	return nil
}

// ValidZone reports whether zone looks like a domain name: dot-separated labels of letters,
// digits, hyphens and underscores, each 1 to 63 characters, 253 in all; a final dot is allowed.
func ValidZone(zone string) bool {
	z := strings.TrimSuffix(zone, ".")
	if z == "" || len(z) > 253 {
		return false
	}
	for label := range strings.SplitSeq(z, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// CheckURL returns an error about the attribute attr unless raw is empty or an http or https URL
// with a host and no user information. example is a good value, for the message; credentials says
// where the provider's credentials come from instead ("the token comes from ...").
func CheckURL(attr, raw, example, credentials string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return config.Errorf(attr, "must be an http or https URL such as %q, got %q", example, raw)
	}
	if u.User != nil {
		return config.Errorf(attr, "must not hold credentials (%s)", credentials)
	}
	return nil
}

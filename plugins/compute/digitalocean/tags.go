package digitalocean

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// A droplet has no metadata but its name and tags, so drover keeps what it needs to find a
// droplet again in tags (letters, digits, "_", "-" and ":", up to 255 characters):
//
//	drover                       on every droplet drover made (Instances with an empty selector)
//	drover-token-HEX             the launch's Spec.Token, hashed (Launch's idempotency)
//	drover-ports:80-443          the Spec's ports
//	drover-label:KEY:VALUE       one per label, KEY and VALUE escaped (escapeTag)
//	drover-gone-HEX              a tag on nothing, made by Terminate: the token's droplet is gone
//	drover-image-HEX             on a custom image: the identity it is a copy of
const (
	markerTag      = "drover"
	tokenTagPrefix = "drover-token-"
	goneTagPrefix  = "drover-gone-"
	portsTagPrefix = "drover-ports:"
	labelTagPrefix = "drover-label:"
	imageTagPrefix = "drover-image-"
)

func validTag(t string) bool {
	if t == "" {
		return false
	}
	for i := 0; i < len(t); i++ {
		if !tagByte(t[i]) && t[i] != ':' {
			return false
		}
	}
	return true
}

func tagByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-'
}

func isDroverTag(t string) bool { return strings.HasPrefix(t, markerTag) }

// digest is the first 40 hex digits of s's sha256: short enough for a tag, long enough to never
// collide.
func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:20])
}

func tokenTag(token string) string { return tokenTagPrefix + digest(token) }
func goneTag(token string) string  { return goneTagPrefix + digest(token) }

// escapeTag keeps letters, digits and "-", and writes every other byte as "_" and two hex digits,
// so any label fits a tag and ":" stays the separator.
func escapeTag(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if tagByte(s[i]) {
			b.WriteByte(s[i])
		} else {
			fmt.Fprintf(&b, "_%02x", s[i])
		}
	}
	return b.String()
}

func unescapeTag(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '_' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), true
}

func labelTag(k, v string) string { return labelTagPrefix + escapeTag(k) + ":" + escapeTag(v) }

// dropletTags are the tags of a droplet launched with token, labels and ports, and the block's
// own tags. A label too long for a tag is an error naming it.
func dropletTags(token string, labels map[string]string, ports []int, extra []string) ([]string, error) {
	tags := []string{markerTag, tokenTag(token)}
	if len(ports) > 0 {
		ps := make([]string, len(ports))
		for i, p := range ports {
			ps[i] = strconv.Itoa(p)
		}
		tags = append(tags, portsTagPrefix+strings.Join(ps, "-"))
	}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		t := labelTag(k, labels[k])
		if len(t) > 255 {
			return nil, fmt.Errorf("label %s=%q is too long for a DigitalOcean tag (%d of 255 characters, escaped)", k, labels[k], len(t))
		}
		tags = append(tags, t)
	}
	return append(tags, extra...), nil
}

// fromTags reads the labels and ports back from a droplet's tags, and whether drover made it.
func fromTags(tags []string) (labels map[string]string, ports []int, ours bool) {
	labels = map[string]string{}
	for _, t := range tags {
		switch {
		case strings.HasPrefix(t, tokenTagPrefix):
			ours = true
		case strings.HasPrefix(t, portsTagPrefix):
			for f := range strings.SplitSeq(strings.TrimPrefix(t, portsTagPrefix), "-") {
				if n, err := strconv.Atoi(f); err == nil {
					ports = append(ports, n)
				}
			}
		case strings.HasPrefix(t, labelTagPrefix):
			k, v, ok := strings.Cut(strings.TrimPrefix(t, labelTagPrefix), ":")
			ku, ok1 := unescapeTag(k)
			vu, ok2 := unescapeTag(v)
			if ok && ok1 && ok2 {
				labels[ku] = vu
			}
		}
	}
	return labels, ports, ours
}

// dropletName is a hostname the API accepts made from a Spec's name; "drover" and the token's
// digest when nothing of the name is left.
func dropletName(name, token string) string {
	var b strings.Builder
	for i := 0; i < len(name) && b.Len() < 60; i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.':
			b.WriteByte(c)
		case c >= 'A' && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		default:
			b.WriteByte('-')
		}
	}
	n := strings.Trim(b.String(), "-.")
	if n == "" {
		return "drover-" + digest(token)[:12]
	}
	return n
}

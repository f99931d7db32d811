package vultr

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/drover-dev/drover/plugins/compute"
)

// Tags drover puts on instances: Vultr has tags (plain strings) but no key/value labels, so a
// label k=v is the tag "drover:k=v", and an instance's token and ports are tags of their own.
// An instance without a token tag is not drover's, and Instances leaves it out.
const (
	labelTagPrefix = "drover:"
	tokenTagPrefix = "drover-token="
	portsTagPrefix = "drover-ports="
)

// maxToken is the longest token put in a tag as it is; a longer one is hashed.
const maxToken = 64

// tokenTag is the tag of a Spec.Token: the token itself when short and printable, otherwise
// "sha256-" and the start of its hex digest, so the same token always gives the same tag.
func tokenTag(token string) string {
	printable := !strings.ContainsFunc(token, func(r rune) bool { return r < 0x21 || r > 0x7e })
	if len(token) <= maxToken && printable {
		return tokenTagPrefix + token
	}
	sum := sha256.Sum256([]byte(token))
	return tokenTagPrefix + ("sha256-" + hex.EncodeToString(sum[:]))[:maxToken]
}

func labelTag(k, v string) string { return labelTagPrefix + k + "=" + v }

// instanceTags are the tags of an instance launched from spec, with the block's extra tags, sorted.
func instanceTags(spec compute.Spec, extra []string) []string {
	tags := append([]string{tokenTag(spec.Token)}, extra...)
	for k, v := range spec.Labels {
		tags = append(tags, labelTag(k, v))
	}
	if len(spec.Ports) > 0 {
		ps := make([]string, len(spec.Ports))
		for i, p := range spec.Ports {
			ps[i] = strconv.Itoa(p)
		}
		tags = append(tags, portsTagPrefix+strings.Join(ps, ","))
	}
	slices.Sort(tags)
	return tags
}

// parsedTags is what an instance's tags say.
type parsedTags struct {
	token  string // the token tag's value; "" for an instance drover did not launch
	labels map[string]string
	ports  []int
}

func parseTags(tags []string) parsedTags {
	p := parsedTags{labels: map[string]string{}}
	for _, t := range tags {
		switch {
		case strings.HasPrefix(t, tokenTagPrefix):
			p.token = strings.TrimPrefix(t, tokenTagPrefix)
		case strings.HasPrefix(t, portsTagPrefix):
			for _, s := range strings.Split(strings.TrimPrefix(t, portsTagPrefix), ",") {
				if n, err := strconv.Atoi(s); err == nil {
					p.ports = append(p.ports, n)
				}
			}
		case strings.HasPrefix(t, labelTagPrefix):
			if k, v, ok := strings.Cut(strings.TrimPrefix(t, labelTagPrefix), "="); ok {
				p.labels[k] = v
			}
		}
	}
	return p
}

// selectorTag is the one tag Vultr filters a listing by (it takes one): the first of sel's
// labels in name order; "" for an empty selector.
func selectorTag(sel compute.Selector) string {
	keys := slices.Sorted(maps.Keys(sel))
	if len(keys) == 0 {
		return ""
	}
	return labelTag(keys[0], sel[keys[0]])
}

package scan

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
)

// AllowlistName is the allowlist file drover reads next to the fleet file, when there is one.
const AllowlistName = "drover-scan-allow"

// Allowlist silences findings at known places. Its file format is gitignore-like, one entry a line:
//
//	# a comment; blank lines are ignored
//	/srv/app/testdata/            a path glob: no pattern rule reports anything at or below it
//	*.pem.example                 no slash: the name matches at any depth
//	private-key:/etc/app/demo.key RULE:GLOB: only that rule is silenced there
//	forbidden-value:/etc/passwd   the one way to silence a forbidden value (say, a user name)
//	!/srv/app/testdata/real.env   a leading ! takes a path back (the last matching line wins)
//
// Globs are relative to the image's root: a leading slash, or a slash inside, anchors the pattern at
// the root, otherwise it matches a name at any depth. *, ? and [...] match within one path element,
// ** matches any number of elements, and a trailing slash matches a directory and everything under
// it. A pattern also matches everything below a directory it matches. Unlike git, a ! line can take
// back a file below an allowlisted directory.
//
// Path globs without a rule silence the pattern rules only: forbidden values (Options.Forbidden) are
// looked for everywhere and are silenced only by forbidden-value: lines.
type Allowlist struct {
	entries []allowEntry
	// negations is set when some entry starts with "!": directories cannot be skipped whole then.
	negations bool
	// ruleNegations is set when some "!RULE:GLOB" entry exists: a path-only match then does not
	// decide for every rule.
	ruleNegations bool
}

type allowEntry struct {
	rule     string // "" for every pattern rule
	negate   bool
	segs     []string
	anchored bool
	dirOnly  bool
	source   string // file:line, for messages
}

// ParseAllowlist reads an allowlist; name (a file name) is used in error messages. A line naming an
// unknown rule, or a bad glob, is an error.
func ParseAllowlist(r io.Reader, name string) (*Allowlist, error) {
	a := &Allowlist{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		src := fmt.Sprintf("%s:%d", name, n)
		e := allowEntry{source: src}
		if strings.HasPrefix(line, "!") {
			e.negate = true
			line = strings.TrimSpace(line[1:])
		}
		if rule, glob, ok := strings.Cut(line, ":"); ok && isRuleName(rule) {
			if !knownRule(rule) {
				var names []string
				for _, r := range Rules() {
					names = append(names, r.Name)
				}
				return nil, fmt.Errorf("scan: %s: unknown rule %q (rules: %s, %s)", src, rule, strings.Join(names, ", "), RuleForbidden)
			}
			e.rule, line = rule, strings.TrimSpace(glob)
		}
		if line == "" || line == "/" {
			return nil, fmt.Errorf("scan: %s: an empty path (use /** to allow everything, if you must)", src)
		}
		if strings.HasSuffix(line, "/") {
			e.dirOnly = true
			line = strings.TrimRight(line, "/")
		}
		e.anchored = strings.Contains(line, "/")
		line = strings.TrimPrefix(line, "/")
		e.segs = strings.Split(line, "/")
		for _, s := range e.segs {
			if _, err := path.Match(s, ""); err != nil {
				return nil, fmt.Errorf("scan: %s: bad glob %q: %v", src, line, err)
			}
		}
		if !e.anchored {
			e.segs = append([]string{"**"}, e.segs...)
		}
		a.entries = append(a.entries, e)
		a.negations = a.negations || e.negate
		a.ruleNegations = a.ruleNegations || (e.negate && e.rule != "")
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scan: %s: %w", name, err)
	}
	return a, nil
}

// LoadAllowlist reads an allowlist file.
func LoadAllowlist(file string) (*Allowlist, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("scan: allowlist: %w", err)
	}
	defer f.Close()
	return ParseAllowlist(f, file)
}

// Len is the number of entries.
func (a *Allowlist) Len() int {
	if a == nil {
		return 0
	}
	return len(a.entries)
}

func (a *Allowlist) add(b *Allowlist) {
	if b == nil {
		return
	}
	a.entries = append(a.entries, b.entries...)
	a.negations = a.negations || b.negations
	a.ruleNegations = a.ruleNegations || b.ruleNegations
}

func isRuleName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Allows reports whether the allowlist silences rule at p (a path in the image, "/etc/x").
func (a *Allowlist) Allows(rule, p string) bool {
	if a == nil {
		return false
	}
	return a.allows(rule, p)
}

func (a *Allowlist) allows(rule, p string) bool {
	allowed := false
	for _, e := range a.entries {
		if e.rule != rule && (e.rule != "" || rule == RuleForbidden) {
			continue
		}
		if e.matches(p) {
			allowed = !e.negate
		}
	}
	return allowed
}

// skipsPath reports whether no pattern rule needs to read p: every one of them is silenced there.
func (a *Allowlist) skipsPath(p string) bool {
	if !a.ruleNegations {
		return a.allows("", p)
	}
	for _, r := range rules {
		if !a.allows(r.name, p) {
			return false
		}
	}
	return true
}

// matches reports whether the entry's glob matches p or a directory above it.
func (e *allowEntry) matches(p string) bool {
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for n := len(parts); n >= 1; n-- {
		if e.dirOnly && n == len(parts) {
			continue // a directory pattern matches what is below, not the file itself
		}
		if matchSegs(e.segs, parts[:n]) {
			return true
		}
	}
	return false
}

// matchSegs matches glob elements against path elements; "**" matches any number of elements.
func matchSegs(glob, parts []string) bool {
	for len(glob) > 0 {
		if glob[0] == "**" {
			for k := 0; k <= len(parts); k++ {
				if matchSegs(glob[1:], parts[k:]) {
					return true
				}
			}
			return false
		}
		if len(parts) == 0 {
			return false
		}
		if ok, _ := path.Match(glob[0], parts[0]); !ok {
			return false
		}
		glob, parts = glob[1:], parts[1:]
	}
	return len(parts) == 0
}

// DefaultAllowlist is the allowlist of known-harmless Debian files that every scan applies unless
// Options.NoDefaultAllowlist is set (DefaultAllowlistText is its source).
func DefaultAllowlist() *Allowlist { return defaultAllowlist() }

var defaultAllowlist = sync.OnceValue(func() *Allowlist {
	a, err := ParseAllowlist(strings.NewReader(DefaultAllowlistText), "default allowlist")
	if err != nil {
		panic(err) // a constant: the tests parse it
	}
	return a
})

// DefaultAllowlistText is the default allowlist, with why each entry is harmless. Every entry names
// one rule: a path glob without one would hide everything else at that place too.
const DefaultAllowlistText = `# The default allowlist: files a stock Debian bookworm tree (with nginx, postgresql and knot) ships
# that match a rule without being a secret of the image's owner.

# ssl-cert's postinst (pulled in by postgresql-common and others) makes a self-signed "snakeoil" key
# and certificate for the build host's name. No one trusts the certificate; it exists so that
# PostgreSQL's default ssl = on starts. Every instance of the image shares the key: replace it (and
# ssl_cert_file/ssl_key_file) with a real one fetched at boot if clients verify the server.
private-key:/etc/ssl/private/ssl-cert-snakeoil.key

# nsd's postinst runs nsd-control-setup, which makes self-signed keys for nsd-control's TLS channel.
# Debian's nsd.conf leaves remote control off (control-enable: no), and when it is on it listens on
# the loopback: the keys guard nothing reachable from outside the instance.
private-key:/etc/nsd/nsd_server.key
private-key:/etc/nsd/nsd_control.key

# ovmf and qemu-efi-aarch64 ship Debian's published test Secure Boot keys (PK/KEK, pass phrase
# "snakeoil") for testing signed boot chains under qemu; their names say what they are.
private-key:/usr/share/**/PkKek-1-snakeoil.key

# "passwd:" in nsswitch.conf names the user database; its value is a list of NSS services.
config-password:/etc/nsswitch.conf

# openssl.cnf's [insta] section configures "openssl cmp" for Insta's public demo CA, whose
# password ("pass:insta") is in OpenSSL's documentation.
config-password:/etc/ssl/openssl.cnf

# python3-websocket (a dependency of docker-compose) ships its test suite, whose fixed handshake
# values (Sec-WebSocket-Key, RFC 6455's example nonces) are assigned to names ending in "key".
generic-secret:/usr/lib/python3/dist-packages/websocket/tests/*.py
`

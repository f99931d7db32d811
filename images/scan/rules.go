package scan

import (
	"bytes"
	"math"
	"path"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// RuleInfo names and describes one rule.
type RuleInfo struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// Rules lists the pattern rules in the order they take precedence: when two rules match the same
// bytes, only the earlier one is reported (a GitHub token assigned to GITHUB_TOKEN is a github-token
// finding, not also a generic-secret one). RuleForbidden is not among them: it is not a pattern.
func Rules() []RuleInfo {
	out := make([]RuleInfo, len(rules))
	for i, r := range rules {
		out[i] = RuleInfo{Name: r.name, Description: r.desc}
	}
	return out
}

// knownRule reports whether name is a rule (or RuleForbidden), for allowlist lines.
func knownRule(name string) bool {
	if name == RuleForbidden {
		return true
	}
	for _, r := range rules {
		if r.name == name {
			return true
		}
	}
	return false
}

// rule is one kind of secret: where it is looked for and how it is found.
type rule struct {
	name, desc string
	scope      func(p string) bool // nil: every text file
	find       func(f *file) []match
}

// match is one secret found by a rule: the bytes [start, end) of the secret in the file, and the
// redacted excerpt to show.
type match struct {
	rule       string
	start, end int
	excerpt    string
}

// file is one text file being scanned.
type file struct {
	path       string // in the image, "/etc/app.env"
	content    []byte
	lower      []byte // content, ASCII-lower-cased: same offsets
	minEntropy float64
	assigns    []assignment // computed on first use
	assignsOK  bool
}

// rules are every pattern rule, in precedence order: the prefixed service tokens of tokenRules
// (rules_tokens.go) come after Slack's and before the rules that read assignments.
var rules = slices.Concat([]rule{
	{name: "private-key", desc: "a PEM or OpenSSH private key (RSA, EC, DSA, OPENSSH, PKCS#8, encrypted, PGP): a BEGIN ... PRIVATE KEY line followed by a key body; public keys and certificates are not findings", find: findPrivateKey},
	{name: "aws-access-key", desc: "an AWS access key ID (AKIA or ASIA and 16 more characters)", find: findAWSAccessKey},
	{name: "aws-secret-key", desc: "an AWS secret access key: 40 characters assigned to aws_secret_access_key, SecretAccessKey or, in a file with an access key ID, secret_key; or on the line of an access key ID", find: findAWSSecretKey},
	{name: "vault-token", desc: "a HashiCorp Vault token: hvs., hvb. or hvr. and base62; a legacy s. token (24 characters) only when assigned to a name with TOKEN in it", find: findVaultToken},
	{name: "github-token", desc: "a GitHub token: ghp_, gho_, ghs_, ghu_, ghr_ or github_pat_", find: findGitHubToken},
	{name: "slack-token", desc: "a Slack token (xoxb-, xoxp-, xoxa-, xoxo-, xoxs-, xoxr-, xapp-) or incoming webhook URL", find: findSlackToken},
}, tokenRules, []rule{
	{name: "cloudflare-token", desc: "a Cloudflare API token or global API key assigned to a name with CLOUDFLARE (or starting CF_) and ending in TOKEN or KEY", find: findCloudflareToken},
	{name: "shadow-hash", desc: "a password hash in /etc/shadow or /etc/gshadow (locked and empty entries, * and !, are not findings)", scope: isShadow, find: findShadowHash},
	{name: "pgpass", desc: "a password in a PostgreSQL .pgpass file", scope: baseIs(".pgpass"), find: findPgpass},
	{name: "netrc", desc: "a password in a .netrc file", scope: baseIs(".netrc", "_netrc"), find: findNetrc},
	{name: "wifi-psk", desc: "a Wi-Fi pre-shared key (psk=, wpa-psk, sae_password=) in wpa_supplicant, NetworkManager or ifupdown configuration", scope: isWifiConfig, find: findWifiPSK},
	{name: "config-password", desc: "a password or secret assigned in a configuration file (*.conf, *.ini, *.env, *.yml, *.json, *.toml, *.php ... and /etc/default/*) under /etc, /root, /home, /opt, /srv, /var/www or /usr/local/etc; commented lines, empty values and placeholders are not findings", scope: isConfigFile, find: findConfigPassword},
	{name: "url-credentials", desc: "a password in a URL (scheme://user:password@host) in a configuration file or .git-credentials", scope: isURLCredScope, find: findURLCredentials},
	{name: "generic-secret", desc: "a value of 20 or more characters (letters, digits and + / = _ - ~, with a digit) with high Shannon entropy assigned to a name ending in KEY, TOKEN, SECRET, PASSWORD, PASSWD, PASSPHRASE or CREDENTIALS; not names with PUBLIC, PUB, GPG, PGP or FINGERPRINT (public keys and key fingerprints), nor values that read as identifiers or paths", find: findGenericSecret},
})

// applyRules runs every rule whose scope takes the path and drops a match that overlaps one of an
// earlier rule.
func (s *scanner) applyRules(p string, content, lower []byte) []match {
	f := &file{path: p, content: content, lower: lower, minEntropy: s.minEntropy}
	var kept []match
	for _, r := range rules {
		if r.scope != nil && !r.scope(p) {
			continue
		}
	next:
		for _, m := range r.find(f) {
			for _, k := range kept {
				if m.start < k.end && k.start < m.end {
					continue next
				}
			}
			m.rule = r.name
			kept = append(kept, m)
		}
	}
	return kept
}

// redact shows at most the first 4 characters of a secret (fewer for short ones: a quarter of it),
// then "…[REDACTED]".
func redact(secret string) string {
	n := min(4, utf8.RuneCountInString(secret)/4)
	var b strings.Builder
	for _, r := range secret {
		if n == 0 {
			break
		}
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			r = '?'
		}
		b.WriteRune(r)
		n--
	}
	return b.String() + "…[REDACTED]"
}

// --- token rules: regular expressions behind a cheap keyword check ---

var (
	privateKeyRE  = regexp.MustCompile(`-----BEGIN ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?)-----[ \t]*\r?\n(?:[A-Za-z-]+:[^\n]*\n)*[ \t\r\n]*([A-Za-z0-9+/=]{40,})`)
	awsIDRE       = regexp.MustCompile(`\b((?:AKIA|ASIA)[A-Z0-9]{16})\b`)
	awsSecretRE   = regexp.MustCompile(`(?:^|[^A-Za-z0-9/+=])([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)`)
	vaultRE       = regexp.MustCompile(`\b(hv[sbr]\.[A-Za-z0-9_-]{24,})`)
	legacyVaultRE = regexp.MustCompile(`^s\.[A-Za-z0-9]{24}$`)
	githubRE      = regexp.MustCompile(`\b((?:gh[pousr]_[A-Za-z0-9]{36,251})|(?:github_pat_[A-Za-z0-9_]{22,255}))\b`)
	slackRE       = regexp.MustCompile(`\b(xox[abposr]-(?:[0-9]+-)+[A-Za-z0-9]{8,}(?:-[A-Za-z0-9]+)*|xapp-[0-9]-[A-Za-z0-9]+-[0-9]+-[A-Za-z0-9]{16,})|hooks\.slack\.com/services/(T[A-Za-z0-9_]{6,}/B[A-Za-z0-9_]{6,}/[A-Za-z0-9_]{16,})`)
	cloudflareRE  = regexp.MustCompile(`^[A-Za-z0-9_-]{37,40}$`)
	urlCredRE     = regexp.MustCompile(`\b([a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^\s:/@'"<>]+:)([^\s/@'"<>]+)@[A-Za-z0-9.\[\]-]+`)
	wifiRE        = regexp.MustCompile(`(?m)^[ \t]*(psk|wpa-psk|sae_password|wpa-psk-hex)[ \t]*(?:=|[ \t])[ \t]*("?)([^"\r\n]*)`)
	phpDefineRE   = regexp.MustCompile(`define\(\s*['"]([A-Za-z0-9_]*(?:PASSWORD|PASS|SECRET|KEY|SALT))['"]\s*,\s*['"]([^'"\n]*)['"]`)
)

func containsAny(b []byte, words ...string) bool {
	for _, w := range words {
		if bytes.Contains(b, []byte(w)) {
			return true
		}
	}
	return false
}

// submatches returns, for each match of re in b, the span of group g.
func submatches(re *regexp.Regexp, b []byte, g int) [][2]int {
	var out [][2]int
	for _, m := range re.FindAllSubmatchIndex(b, -1) {
		if m[2*g] >= 0 {
			out = append(out, [2]int{m[2*g], m[2*g+1]})
		}
	}
	return out
}

func findPrivateKey(f *file) []match {
	if !bytes.Contains(f.content, []byte("PRIVATE KEY")) {
		return nil
	}
	var out []match
	for _, m := range privateKeyRE.FindAllSubmatchIndex(f.content, -1) {
		kind := string(f.content[m[2]:m[3]])
		body := string(f.content[m[4]:m[5]])
		out = append(out, match{start: m[4], end: m[5], excerpt: "-----BEGIN " + kind + "----- " + redact(body)})
	}
	return out
}

func findAWSAccessKey(f *file) []match {
	if !containsAny(f.content, "AKIA", "ASIA") {
		return nil
	}
	var out []match
	for _, sp := range submatches(awsIDRE, f.content, 1) {
		out = append(out, match{start: sp[0], end: sp[1], excerpt: redact(string(f.content[sp[0]:sp[1]]))})
	}
	return out
}

func findAWSSecretKey(f *file) []match {
	hasID := containsAny(f.content, "AKIA", "ASIA") && awsIDRE.Match(f.content)
	var out []match
	if bytes.Contains(f.lower, []byte("secret")) {
		for _, a := range f.assignments() {
			n := strings.NewReplacer("_", "", "-", "", ".", "").Replace(strings.ToLower(a.name))
			if !strings.Contains(n, "secretaccesskey") && !(strings.HasSuffix(n, "secretkey") && (hasID || strings.Contains(n, "aws"))) {
				continue
			}
			if len(a.value) == 40 && awsSecretRE.MatchString(a.value) {
				out = append(out, match{start: a.valStart, end: a.valEnd, excerpt: a.name + " = " + redact(a.value)})
			}
		}
	}
	if hasID {
		// A credentials CSV or a one-line configuration: the secret on the same line as the ID.
		for _, sp := range submatches(awsIDRE, f.content, 1) {
			lineEnd := bytes.IndexByte(f.content[sp[1]:], '\n')
			if lineEnd < 0 {
				lineEnd = len(f.content) - sp[1]
			}
			rest := f.content[sp[1] : sp[1]+lineEnd]
			for _, s := range submatches(awsSecretRE, rest, 1) {
				v := string(rest[s[0]:s[1]])
				if countClasses(v) < 2 {
					continue
				}
				out = append(out, match{start: sp[1] + s[0], end: sp[1] + s[1], excerpt: redact(v)})
			}
		}
	}
	return out
}

func findVaultToken(f *file) []match {
	var out []match
	if containsAny(f.content, "hvs.", "hvb.", "hvr.") {
		for _, sp := range submatches(vaultRE, f.content, 1) {
			out = append(out, match{start: sp[0], end: sp[1], excerpt: redact(string(f.content[sp[0]:sp[1]]))})
		}
	}
	if bytes.Contains(f.lower, []byte("token")) && bytes.Contains(f.content, []byte("s.")) {
		for _, a := range f.assignments() {
			if strings.Contains(strings.ToLower(a.name), "token") && legacyVaultRE.MatchString(a.value) {
				out = append(out, match{start: a.valStart, end: a.valEnd, excerpt: a.name + " = " + redact(a.value)})
			}
		}
	}
	return out
}

func findGitHubToken(f *file) []match {
	if !containsAny(f.content, "ghp_", "gho_", "ghs_", "ghu_", "ghr_", "github_pat_") {
		return nil
	}
	var out []match
	for _, sp := range submatches(githubRE, f.content, 1) {
		out = append(out, match{start: sp[0], end: sp[1], excerpt: redact(string(f.content[sp[0]:sp[1]]))})
	}
	return out
}

func findSlackToken(f *file) []match {
	if !containsAny(f.content, "xox", "xapp-", "hooks.slack.com/services/") {
		return nil
	}
	var out []match
	for _, m := range slackRE.FindAllSubmatchIndex(f.content, -1) {
		if m[2] >= 0 {
			out = append(out, match{start: m[2], end: m[3], excerpt: redact(string(f.content[m[2]:m[3]]))})
		} else if m[4] >= 0 {
			out = append(out, match{start: m[4], end: m[5], excerpt: "https://hooks.slack.com/services/" + redact(string(f.content[m[4]:m[5]]))})
		}
	}
	return out
}

func findCloudflareToken(f *file) []match {
	if !containsAny(f.lower, "cloudflare", "cf_", "cf-") {
		return nil
	}
	var out []match
	for _, a := range f.assignments() {
		n := strings.ToLower(a.name)
		if !strings.Contains(n, "cloudflare") && !strings.HasPrefix(n, "cf_") && !strings.HasPrefix(n, "cf-") {
			continue
		}
		if !strings.HasSuffix(n, "token") && !strings.HasSuffix(n, "key") {
			continue
		}
		if cloudflareRE.MatchString(a.value) && countClasses(a.value) >= 2 {
			out = append(out, match{start: a.valStart, end: a.valEnd, excerpt: a.name + " = " + redact(a.value)})
		}
	}
	return out
}

// --- files with a known format ---

func baseIs(names ...string) func(string) bool {
	return func(p string) bool {
		b := path.Base(p)
		for _, n := range names {
			if b == n {
				return true
			}
		}
		return false
	}
}

func isShadow(p string) bool {
	switch p {
	case "/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-":
		return true
	}
	return false
}

// findShadowHash reports every entry of shadow(5) or gshadow(5) whose password field holds a hash,
// locked (a leading !) or not: a hash baked into an image can be cracked offline.
func findShadowHash(f *file) []match {
	var out []match
	forLines(f.content, func(line []byte, at int) {
		fields := bytes.SplitN(line, []byte(":"), 3)
		if len(fields) < 3 {
			return
		}
		pw := string(bytes.TrimLeft(fields[1], "!*"))
		if !strings.HasPrefix(pw, "$") && len(pw) != 13 { // modular crypt, or DES
			return
		}
		start := at + len(fields[0]) + 1 + (len(fields[1]) - len(pw))
		out = append(out, match{start: start, end: start + len(pw), excerpt: string(fields[0]) + ":" + redact(pw)})
	})
	return out
}

// findPgpass reports the password field of each hostname:port:database:username:password line.
func findPgpass(f *file) []match {
	var out []match
	forLines(f.content, func(line []byte, at int) {
		if t := bytes.TrimSpace(line); len(t) == 0 || t[0] == '#' {
			return
		}
		colons := 0
		for i := 0; i < len(line); i++ {
			switch line[i] {
			case '\\':
				i++
			case ':':
				colons++
				if colons == 4 {
					pw := string(bytes.TrimRight(line[i+1:], "\r"))
					if !isPlaceholder(pw) {
						out = append(out, match{start: at + i + 1, end: at + i + 1 + len(pw), excerpt: string(line[:i+1]) + redact(pw)})
					}
					return
				}
			}
		}
	})
	return out
}

// findNetrc reports the token after each "password" (or "passwd") token.
func findNetrc(f *file) []match {
	var out []match
	b := f.content
	prevPassword := false
	for i := 0; i < len(b); {
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		j := i
		for j < len(b) && !isSpace(b[j]) {
			j++
		}
		if i == j {
			break
		}
		tok := string(b[i:j])
		if prevPassword && !isPlaceholder(tok) {
			out = append(out, match{start: i, end: j, excerpt: "password " + redact(tok)})
		}
		prevPassword = tok == "password" || tok == "passwd"
		i = j
	}
	return out
}

func isWifiConfig(p string) bool {
	return strings.Contains(path.Base(p), "wpa_supplicant") || strings.HasPrefix(p, "/etc/wpa_supplicant/") ||
		strings.HasPrefix(p, "/etc/NetworkManager/system-connections/") ||
		p == "/etc/network/interfaces" || strings.HasPrefix(p, "/etc/network/interfaces.d/")
}

func findWifiPSK(f *file) []match {
	if !containsAny(f.lower, "psk", "sae_password") {
		return nil
	}
	var out []match
	for _, m := range wifiRE.FindAllSubmatchIndex(f.content, -1) {
		name := string(f.content[m[2]:m[3]])
		v := strings.TrimRight(string(f.content[m[6]:m[7]]), " \t\r")
		if isPlaceholder(v) {
			continue
		}
		out = append(out, match{start: m[6], end: m[6] + len(v), excerpt: name + "=" + redact(v)})
	}
	return out
}

// configRoots are where configuration files with passwords are looked for.
var configRoots = []string{"/etc/", "/root/", "/home/", "/opt/", "/srv/", "/var/www/", "/usr/local/etc/"}

// configExts are the extensions of configuration files.
var configExts = map[string]bool{".conf": true, ".cnf": true, ".cfg": true, ".cf": true, ".config": true, ".ini": true,
	".env": true, ".yml": true, ".yaml": true, ".toml": true, ".json": true, ".properties": true, ".php": true, ".hcl": true}

func isConfigFile(p string) bool {
	under := false
	for _, r := range configRoots {
		if strings.HasPrefix(p, r) {
			under = true
			break
		}
	}
	if !under {
		return false
	}
	b := path.Base(p)
	return configExts[path.Ext(b)] || b == ".env" || strings.HasPrefix(b, ".env.") || b == "environment" ||
		strings.HasPrefix(p, "/etc/default/") || strings.HasPrefix(p, "/etc/sysconfig/")
}

func isURLCredScope(p string) bool { return isConfigFile(p) || path.Base(p) == ".git-credentials" }

// passwordWords make a name a password's name in a configuration file.
var passwordWords = []string{"password", "passwd", "passphrase", "secret"}

// passwordTokens are whole name parts that do the same ("db_pass", "pwd").
var passwordTokens = map[string]bool{"pass": true, "pwd": true, "pw": true, "psk": true}

// notPasswordTokens are name parts that make a password-ish name a setting about passwords, not a
// password: password_encryption, ssl_passphrase_command, secret_file, password_min_length ...
var notPasswordTokens = map[string]bool{
	"file": true, "files": true, "path": true, "dir": true, "directory": true, "cmd": true, "command": true,
	"encryption": true, "encrypt": true, "hash": true, "hashed": true, "hashing": true, "length": true, "len": true,
	"minlen": true, "min": true, "max": true, "policy": true, "type": true, "mode": true, "prompt": true,
	"timeout": true, "expire": true, "expires": true, "expiry": true, "expiration": true, "age": true, "ttl": true,
	"lifetime": true, "interval": true, "required": true, "require": true, "auth": true, "authentication": true,
	"enabled": true, "enable": true, "disabled": true, "disable": true, "method": true, "methods": true,
	"format": true, "algorithm": true, "algo": true, "rounds": true, "retry": true, "retries": true,
	"history": true, "complexity": true, "reset": true, "change": true, "changed": true, "name": true,
	"names": true, "ref": true, "store": true, "storage": true, "backend": true, "provider": true,
	"helper": true, "manager": true, "field": true, "column": true, "env": true, "var": true, "url": true,
	"uri": true, "endpoint": true, "strength": true, "check": true, "quality": true, "size": true, "count": true,
}

// nameTokens splits a name at _ . - and lower-to-upper case changes, lower-cased.
func nameTokens(name string) []string {
	var out []string
	var cur []rune
	var prev rune
	flush := func() {
		if len(cur) > 0 {
			out = append(out, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	for _, r := range name {
		switch {
		case r == '_' || r == '.' || r == '-':
			flush()
		case unicode.IsUpper(r) && unicode.IsLower(prev):
			flush()
			cur = append(cur, r)
		default:
			cur = append(cur, r)
		}
		prev = r
	}
	flush()
	return out
}

func isPasswordName(name string) bool {
	tokens := nameTokens(name)
	for _, t := range tokens {
		if notPasswordTokens[t] {
			return false
		}
	}
	n := strings.ToLower(name)
	for _, w := range passwordWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	for _, t := range tokens {
		if passwordTokens[t] {
			return true
		}
	}
	return false
}

func findConfigPassword(f *file) []match {
	var out []match
	if containsAny(f.lower, "pass", "secret", "pwd", "pw", "psk") {
		for _, a := range f.assignments() {
			if a.comment || !isPasswordName(a.name) || isPlaceholder(a.value) {
				continue
			}
			out = append(out, match{start: a.valStart, end: a.valEnd, excerpt: a.name + " = " + redact(a.value)})
		}
	}
	if strings.HasSuffix(f.path, ".php") && bytes.Contains(f.content, []byte("define")) {
		for _, m := range phpDefineRE.FindAllSubmatchIndex(f.content, -1) {
			v := string(f.content[m[4]:m[5]])
			if commentLine(f.content, m[0]) || isPlaceholder(v) {
				continue
			}
			out = append(out, match{start: m[4], end: m[5], excerpt: string(f.content[m[2]:m[3]]) + " = " + redact(v)})
		}
	}
	return out
}

func findURLCredentials(f *file) []match {
	if !bytes.Contains(f.content, []byte("://")) || !bytes.Contains(f.content, []byte("@")) {
		return nil
	}
	var out []match
	for _, m := range urlCredRE.FindAllSubmatchIndex(f.content, -1) {
		pw := string(f.content[m[4]:m[5]])
		if isPlaceholder(pw) || strings.HasPrefix(pw, "{") {
			continue
		}
		out = append(out, match{start: m[4], end: m[5], excerpt: string(f.content[m[2]:m[3]]) + redact(pw)})
	}
	return out
}

// genericSuffixes end the names the generic-secret rule looks at.
var genericSuffixes = []string{"key", "keys", "token", "tokens", "secret", "secrets", "password", "passwd", "passphrase", "credentials", "credential"}

func findGenericSecret(f *file) []match {
	var out []match
	for _, a := range f.assignments() {
		n := strings.ToLower(a.name)
		if !hasAnySuffix(n, genericSuffixes) || strings.Contains(n, "public") || hasToken(a.name, "pub") ||
			strings.Contains(n, "gpg") || strings.Contains(n, "pgp") || strings.Contains(n, "fingerprint") {
			continue
		}
		v := a.value
		if len(v) < 20 || strings.HasPrefix(v, "/") || !allIn(v, isValueChar) || countClasses(v) < 2 ||
			!strings.ContainsAny(v, "0123456789") || isPlaceholder(v) || looksLikeWords(v) || entropy(v) < f.minEntropy {
			continue
		}
		out = append(out, match{start: a.valStart, end: a.valEnd, excerpt: a.name + " = " + redact(v)})
	}
	return out
}

func hasAnySuffix(s string, suffixes []string) bool {
	for _, x := range suffixes {
		if strings.HasSuffix(s, x) {
			return true
		}
	}
	return false
}

func hasToken(name, tok string) bool {
	for _, t := range nameTokens(name) {
		if t == tok {
			return true
		}
	}
	return false
}

func isValueChar(c byte) bool {
	return isAlnum(c) || c == '+' || c == '/' || c == '=' || c == '_' || c == '-' || c == '~'
}

func allIn(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

// looksLikeWords reports whether a value reads as an identifier or a path rather than random
// characters: snake_case, kebab-case or path/like parts each in one case with letters beyond hex
// (use_rsa_sha2_algorithms, TEST_ENCRYPTION_KEY1, projects/123/secrets/x), or CamelCase made of
// words (PKCS12PrivateKeyTypes) - an average run of at least 3 characters between case changes,
// where random base62 changes case or class every character or two.
func looksLikeWords(v string) bool {
	if strings.ContainsAny(v, "_-/") {
		parts := strings.FieldsFunc(v, func(r rune) bool { return r == '_' || r == '-' || r == '/' })
		if len(parts) < 2 {
			return false
		}
		beyondHex := false
		for _, p := range parts {
			lower, upper := strings.ToLower(p) == p, strings.ToUpper(p) == p
			if !lower && !upper {
				return false
			}
			if strings.ContainsFunc(p, func(r rune) bool { return r >= 'g' && r <= 'z' || r >= 'G' && r <= 'Z' }) {
				beyondHex = true
			}
		}
		return beyondHex
	}
	if countClasses(v) < 2 || strings.ToUpper(v) == v {
		return false
	}
	runs := 0
	prev := byte(0)
	for i := 0; i < len(v); i++ {
		c := v[i]
		class := func(c byte) byte {
			switch {
			case 'a' <= c && c <= 'z':
				return 'a'
			case 'A' <= c && c <= 'Z':
				return 'A'
			case '0' <= c && c <= '9':
				return '0'
			}
			return '.'
		}
		cur := class(c)
		// A capital followed by lower case letters is one word: Private.
		if !(prev == 'A' && cur == 'a' && (i < 2 || class(v[i-2]) != 'A')) && cur != prev {
			runs++
		}
		prev = cur
	}
	return float64(len(v))/float64(runs) >= 3
}

// countClasses counts which of lower-case letters, upper-case letters and digits s has.
func countClasses(s string) int {
	var lower, upper, digit int
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z':
			lower = 1
		case 'A' <= c && c <= 'Z':
			upper = 1
		case '0' <= c && c <= '9':
			digit = 1
		}
	}
	return lower + upper + digit
}

// entropy is the Shannon entropy of s in bits per byte.
func entropy(s string) float64 {
	if s == "" {
		return 0
	}
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	h := 0.0
	n := float64(len(s))
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

// placeholders are values that stand for a password without being one. They are not findings: they
// leak nothing (a default password is a weak-credentials problem, not a secret in an image).
var placeholders = map[string]bool{
	"changeme": true, "change-me": true, "change_me": true, "changeit": true, "password": true, "passwd": true,
	"secret": true, "example": true, "placeholder": true, "redacted": true, "[redacted]": true, "hidden": true,
	"none": true, "null": true, "nil": true, "undefined": true, "empty": true, "true": true, "false": true,
	"yes": true, "no": true, "on": true, "off": true, "required": true, "optional": true, "todo": true,
	"tbd": true, "fixme": true, "your_password": true, "yourpassword": true, "your-password": true,
	"mypassword": true, "dummy": true, "unset": true, "default": true, "auto": true, "prompt": true,
	"ask": true, "-": true, "''": true, `""`: true,
}

// isPlaceholder reports whether a value is empty, a reference to a value kept elsewhere (${VAR},
// $VAR, $(cmd), {{ template }}, {% %}, %(name)s, %VAR%, @VAR@, <value>, a YAML tag such as !vault),
// the same character over and over (*****, xxxx), or a word from placeholders.
func isPlaceholder(v string) bool {
	v = strings.TrimSpace(v)
	if v == "" || placeholders[strings.ToLower(v)] {
		return true
	}
	switch {
	case strings.HasPrefix(v, "${") && strings.HasSuffix(v, "}"),
		strings.HasPrefix(v, "$(") && strings.HasSuffix(v, ")"),
		strings.HasPrefix(v, "{{") && strings.HasSuffix(v, "}}"),
		strings.HasPrefix(v, "{%") && strings.HasSuffix(v, "%}"),
		strings.HasPrefix(v, "%(") && strings.HasSuffix(v, ")s"),
		strings.HasPrefix(v, "<") && strings.HasSuffix(v, ">"),
		len(v) > 2 && v[0] == '%' && v[len(v)-1] == '%',
		len(v) > 2 && v[0] == '@' && v[len(v)-1] == '@':
		return true
	case v[0] == '$' && len(v) > 1 && allIn(v[1:], func(c byte) bool { return isAlnum(c) || c == '_' || c == ':' }):
		return true // $VAR, and OpenSSL's $section::name
	case strings.HasPrefix(v, "env:") || strings.HasPrefix(v, "file:"):
		return true // OpenSSL's and others' pass phrase arguments that name where the value is
	case v[0] == '!' && len(v) > 1 && unicode.IsLetter(rune(v[1])):
		return true // a YAML tag: !vault |, !env_var
	}
	first, _ := utf8.DecodeRuneInString(v)
	return strings.Trim(v, string(first)) == ""
}

// --- assignments: NAME = VALUE, NAME: VALUE, "NAME": "VALUE" ---

// assignment is one NAME = VALUE (or NAME: VALUE, NAME := VALUE, NAME => VALUE) in a file.
type assignment struct {
	name             string
	value            string // without its quotes
	valStart, valEnd int
	comment          bool // the line starts with a comment marker
}

// assignmentWords find the names worth parsing: a name is parsed when it contains one of these.
var assignmentWords = []string{"key", "token", "secret", "pass", "pwd", "pw", "psk", "credential"}

// assignments finds every assignment in the file whose name contains one of assignmentWords.
func (f *file) assignments() []assignment {
	if f.assignsOK {
		return f.assigns
	}
	f.assignsOK = true
	seen := map[int]bool{}
	b, lower := f.content, f.lower
	for _, w := range assignmentWords {
		for off := 0; ; {
			i := bytes.Index(lower[off:], []byte(w))
			if i < 0 {
				break
			}
			i += off
			off = i + len(w)
			ns := i
			for ns > 0 && isNameByte(b[ns-1]) {
				ns--
			}
			if seen[ns] {
				continue
			}
			ne := i + len(w)
			for ne < len(b) && isNameByte(b[ne]) {
				ne++
			}
			off = ne
			seen[ns] = true
			if a, ok := parseAssignment(b, ns, ne); ok {
				f.assigns = append(f.assigns, a)
			}
		}
	}
	return f.assigns
}

func isNameByte(c byte) bool { return isAlnum(c) || c == '_' || c == '.' || c == '-' }

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// parseAssignment reads the separator and value after the name b[ns:ne].
func parseAssignment(b []byte, ns, ne int) (assignment, bool) {
	name := strings.Trim(string(b[ns:ne]), ".-")
	if name == "" {
		return assignment{}, false
	}
	i := ne
	if i < len(b) && (b[i] == '"' || b[i] == '\'') {
		i++
	}
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	if i >= len(b) {
		return assignment{}, false
	}
	switch b[i] {
	case '=':
		i++
		if i < len(b) && b[i] == '=' {
			return assignment{}, false // a comparison
		}
		if i < len(b) && b[i] == '>' {
			i++
		}
	case ':':
		i++
		if i < len(b) && b[i] == ':' {
			return assignment{}, false // a scope (Perl, C++)
		}
		if i < len(b) && b[i] == '=' {
			i++
		}
	default:
		return assignment{}, false
	}
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	var vs, ve int
	if i < len(b) && (b[i] == '"' || b[i] == '\'' || b[i] == '`') {
		q := b[i]
		vs = i + 1
		ve = vs
		for ve < len(b) && b[ve] != q && b[ve] != '\n' {
			if b[ve] == '\\' && ve+1 < len(b) && b[ve+1] != '\n' {
				ve++
			}
			ve++
		}
	} else {
		vs = i
		ve = vs
		// A reference runs to its closing bracket: ${VAR}, $(cmd), {{ var }}, {% x %}, %(name)s.
		for _, ref := range [][2]string{{"${", "}"}, {"$(", ")"}, {"{{", "}}"}, {"{%", "%}"}, {"%(", ")s"}} {
			if bytes.HasPrefix(b[vs:], []byte(ref[0])) {
				line := b[vs:]
				if nl := bytes.IndexByte(line, '\n'); nl >= 0 {
					line = line[:nl]
				}
				if end := bytes.Index(line, []byte(ref[1])); end >= 0 {
					ve = vs + end + len(ref[1])
				}
				break
			}
		}
		for ve < len(b) && !isSpace(b[ve]) && !strings.ContainsRune(",;)]}\"'<>", rune(b[ve])) {
			ve++
		}
	}
	return assignment{name: name, value: string(b[vs:ve]), valStart: vs, valEnd: ve, comment: commentLine(b, ns)}, true
}

// commentLine reports whether offset at is in a comment: the line starts with a comment marker, or a
// " #" or " //" comes before at on the line.
func commentLine(b []byte, at int) bool {
	ls := bytes.LastIndexByte(b[:at], '\n') + 1
	t := bytes.TrimLeft(b[ls:at], " \t")
	for _, m := range []string{"#", ";", "//", "--", "/*", "*", "!", "%", "rem ", "REM "} {
		if bytes.HasPrefix(t, []byte(m)) {
			return true
		}
	}
	for _, m := range []string{" #", "\t#", " //", "\t//"} {
		if bytes.Contains(t, []byte(m)) {
			return true
		}
	}
	return false
}

// forLines calls fn for each line (without its newline) and its offset.
func forLines(b []byte, fn func(line []byte, at int)) {
	for at := 0; at < len(b); {
		end := bytes.IndexByte(b[at:], '\n')
		if end < 0 {
			end = len(b) - at
		}
		fn(b[at:at+end], at)
		at += end + 1
	}
}

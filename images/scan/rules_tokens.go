package scan

import (
	"bytes"
	"path"
	"regexp"
	"strings"
)

// Token rules for services whose tokens carry a fixed prefix: GitLab, npm, PyPI, Google, Stripe and
// SendGrid. Like the GitHub rule they run only when a file holds the prefix, match the token's exact
// shape, and report the whole token (redacted) wherever it is: in a configuration file, a script or
// a README. A token whose random part is a placeholder (fakeToken) is not a finding.

var (
	gitlabRE   = regexp.MustCompile(`\b((?:glpat|gldt|glrt|glptt)-[0-9A-Za-z_-]{20,}(?:\.[0-9a-z]{9}\b)?)`)
	npmRE      = regexp.MustCompile(`\b(npm_[0-9A-Za-z]{36})(?:[^0-9A-Za-z_]|$)`)
	pypiRE     = regexp.MustCompile(`\b(pypi-(?:AgEIcHlwaS5vcmc|AgENdGVzdC5weXBpLm9yZw)[0-9A-Za-z_-]{50,})`)
	googleRE   = regexp.MustCompile(`\b(AIza[0-9A-Za-z_-]{35})(?:[^0-9A-Za-z_-]|$)`)
	stripeRE   = regexp.MustCompile(`\b((?:sk|rk)_live_[0-9A-Za-z]{24,})(?:[^0-9A-Za-z_]|$)`)
	sendgridRE = regexp.MustCompile(`\b(SG\.[0-9A-Za-z_-]{22}\.[0-9A-Za-z_-]{43})(?:[^0-9A-Za-z_-]|$)`)
	npmrcRE    = regexp.MustCompile(`(?m)^[ \t]*(?:[^=\s#;][^=\s]*:)?(_authToken|_auth|_password)[ \t]*=[ \t]*("?)([^"\r\n]*)`)
)

// notPlaceholder ends the description of each token rule: what fakeToken leaves out.
const notPlaceholder = "; a token whose part after the prefix is in one character class or holds xxxx, example, your, placeholder, redacted, 0000 or 1234 is a placeholder, not a finding"

var tokenRules = []rule{
	{name: "gitlab-token", desc: "a GitLab token: glpat- (personal, project or group access token), gldt- (deploy token), glrt- (runner authentication token) or glptt- (pipeline trigger token) and 20 or more characters of [0-9A-Za-z_-], with the .xxxxxxxxx suffix of a routable token when there is one" + notPlaceholder, find: findGitLabToken},
	{name: "npm-token", desc: "an npm access token (npm_ and 36 base62 characters) anywhere; in an .npmrc (or /etc/npmrc, /usr/etc/npmrc, /usr/local/etc/npmrc) also the value of _authToken, _auth or _password, scoped to a registry (//registry.npmjs.org/:_authToken=) or not, unless it is a ${NPM_TOKEN} reference or a placeholder" + notPlaceholder, find: findNPMToken},
	{name: "pypi-token", desc: "a PyPI or TestPyPI API token: pypi-AgEIcHlwaS5vcmc (pypi.org) or pypi-AgENdGVzdC5weXBpLm9yZw (test.pypi.org) and 50 or more characters of [0-9A-Za-z_-]" + notPlaceholder, find: findPyPIToken},
	{name: "google-api-key", desc: "a Google API key: AIza and exactly 35 characters of [0-9A-Za-z_-]" + notPlaceholder, find: findGoogleAPIKey},
	{name: "stripe-key", desc: "a Stripe live secret or restricted key: sk_live_ or rk_live_ and 24 or more base62 characters; test-mode keys (sk_test_, rk_test_) and publishable keys (pk_live_) are not findings" + notPlaceholder, find: findStripeKey},
	{name: "sendgrid-key", desc: "a SendGrid API key: SG. then 22 characters of [0-9A-Za-z_-], a dot and 43 more" + notPlaceholder, find: findSendGridKey},
}

// fakeTokenWords in a token's random part make it a placeholder ("glpat-xxxxxxxxxxxxxxxxxxxx",
// "npm_YOUR_TOKEN...", a documentation example); a random token holds none of them but once in
// millions.
var fakeTokenWords = []string{"xxxx", "example", "your", "placeholder", "redacted", "0000", "1234"}

// fakeToken reports whether the random part of a token is a placeholder: fewer than two of lower
// case letters, upper case letters and digits (a random token of 20 or more base62 characters has
// all three, or two, but for one in billions), or one of fakeTokenWords.
func fakeToken(random string) bool {
	if countClasses(random) < 2 {
		return true
	}
	l := strings.ToLower(random)
	for _, w := range fakeTokenWords {
		if strings.Contains(l, w) {
			return true
		}
	}
	return false
}

// findPrefixed reports group 1 of each match of re whose part after the prefix is not a placeholder,
// when the file holds one of the keywords.
func findPrefixed(f *file, re *regexp.Regexp, prefixLen func(tok string) int, keywords ...string) []match {
	if !containsAny(f.content, keywords...) {
		return nil
	}
	var out []match
	for _, sp := range submatches(re, f.content, 1) {
		tok := string(f.content[sp[0]:sp[1]])
		if fakeToken(tok[prefixLen(tok):]) {
			continue
		}
		out = append(out, match{start: sp[0], end: sp[1], excerpt: redact(tok)})
	}
	return out
}

// fixed is the prefixLen of tokens with a prefix of n characters; afterDash of tokens whose prefix
// ends at the first dash (glpat-, gldt-).
func fixed(n int) func(string) int { return func(string) int { return n } }
func afterDash(tok string) int     { return strings.IndexByte(tok, '-') + 1 }

func findGitLabToken(f *file) []match {
	return findPrefixed(f, gitlabRE, afterDash, "glpat-", "gldt-", "glrt-", "glptt-")
}

func findPyPIToken(f *file) []match {
	return findPrefixed(f, pypiRE, fixed(len("pypi-AgEIcHlwaS5vcmc")), "pypi-AgE")
}

func findGoogleAPIKey(f *file) []match { return findPrefixed(f, googleRE, fixed(4), "AIza") }

func findStripeKey(f *file) []match {
	return findPrefixed(f, stripeRE, fixed(len("sk_live_")), "sk_live_", "rk_live_")
}

func findSendGridKey(f *file) []match { return findPrefixed(f, sendgridRE, fixed(3), "SG.") }

// isNpmrc reports whether p is an npm configuration file: a user's .npmrc, a project's, or the
// global one.
func isNpmrc(p string) bool {
	return path.Base(p) == ".npmrc" || p == "/etc/npmrc" || p == "/usr/local/etc/npmrc" || p == "/usr/etc/npmrc"
}

func findNPMToken(f *file) []match {
	out := findPrefixed(f, npmRE, fixed(4), "npm_")
	if !isNpmrc(f.path) || !bytes.Contains(f.content, []byte("_")) {
		return out
	}
	for _, m := range npmrcRE.FindAllSubmatchIndex(f.content, -1) {
		v := string(f.content[m[6]:m[7]])
		if m[5] == m[4] { // unquoted: a comment may follow
			v = strings.TrimRight(v, " \t")
		}
		if isPlaceholder(v) { // comment lines (# or ;) do not match npmrcRE
			continue
		}
		overlaps := false
		for _, o := range out {
			overlaps = overlaps || o.start < m[6]+len(v) && m[6] < o.end
		}
		if !overlaps {
			out = append(out, match{start: m[6], end: m[6] + len(v), excerpt: string(f.content[m[2]:m[3]]) + "=" + redact(v)})
		}
	}
	return out
}

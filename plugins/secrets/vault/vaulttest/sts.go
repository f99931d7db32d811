package vaulttest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
)

// STS is a fake of AWS STS that answers GetCallerIdentity, as Vault's aws auth method asks it: for
// its own credentials (to learn its partition) and, for an iam login, with the request the client
// signed and Vault forwards. It checks the AWS Signature Version 4 of every request against the
// secret key of the access key it names, as STS does, and answers with that key's identity. It
// listens on 127.0.0.1 only.
type STS struct {
	URL string

	mu   sync.Mutex
	keys               map[string]Identity // access key ID -> who it is
	answered, rejected int
}

// Counts are how many requests the fake answered with an identity, and how many it refused.
func (f *STS) Counts() (answered, rejected int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.answered, f.rejected
}

// Identity is who an access key belongs to: its secret key, and what GetCallerIdentity reports.
type Identity struct {
	SecretKey string
	Arn       string // "arn:aws:sts::123456789012:assumed-role/drover-web/i-0123456789abcdef0"
	UserID    string // "AROAEXAMPLEWEBROLE01:i-0123456789abcdef0"
}

// NewSTS starts a fake STS that knows the Vault mount's own access key (see EnableAWS), stopped
// when the test ends.
func NewSTS(t testing.TB) *STS {
	t.Helper()
	f := &STS{keys: map[string]Identity{
		mountAccessKey: {SecretKey: mountSecretKey, Arn: "arn:aws:iam::" + Account + ":user/vault-mount", UserID: "AIDAEXAMPLEVAULTMOUNT"},
	}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// Allow makes accessKey (with secretKey) known as id.
func (f *STS) Allow(accessKey string, id Identity) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys[accessKey] = id
}

func (f *STS) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "text/xml")
	id, code, msg := f.check(r, body)
	f.mu.Lock()
	if code == "" {
		f.answered++
	} else {
		f.rejected++
	}
	f.mu.Unlock()
	if code != "" {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, stsError, code, msg)
		return
	}
	fmt.Fprintf(w, getCallerIdentityResponse, id.Arn, id.UserID, Account)
}

// check returns the caller, or the error code and message STS would answer.
func (f *STS) check(r *http.Request, body []byte) (Identity, string, string) {
	form, err := url.ParseQuery(string(body))
	if r.Method == http.MethodGet {
		form, err = r.URL.Query(), nil
	}
	if err != nil || form.Get("Action") != "GetCallerIdentity" {
		return Identity{}, "InvalidAction", "the fake STS answers GetCallerIdentity only"
	}
	auth := r.Header.Get("Authorization")
	alg, rest, _ := strings.Cut(auth, " ")
	fields := map[string]string{}
	for _, kv := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		fields[k] = v
	}
	scope := strings.SplitN(fields["Credential"], "/", 2)
	if alg != "AWS4-HMAC-SHA256" || len(scope) != 2 || fields["SignedHeaders"] == "" || fields["Signature"] == "" {
		return Identity{}, "MissingAuthenticationToken", "Request is missing Authentication Token"
	}
	f.mu.Lock()
	id, ok := f.keys[scope[0]]
	f.mu.Unlock()
	if !ok {
		return Identity{}, "InvalidClientTokenId", "The security token included in the request is invalid."
	}
	if want := signatureV4(r, body, id.SecretKey, scope[1], fields["SignedHeaders"]); !hmac.Equal([]byte(want), []byte(fields["Signature"])) {
		return Identity{}, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided."
	}
	return id, "", ""
}

// signatureV4 computes a request's AWS Signature Version 4 over the headers it says it signed, as
// https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html describes.
func signatureV4(r *http.Request, body []byte, secretKey, scope, signedHeaders string) string {
	var canonHeaders strings.Builder
	for _, h := range strings.Split(signedHeaders, ";") {
		v := strings.Join(r.Header.Values(h), ",")
		if h == "host" {
			v = r.Host
		}
		fmt.Fprintf(&canonHeaders, "%s:%s\n", h, strings.Join(strings.Fields(v), " "))
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		payload = sha256Hex(body)
	}
	q := r.URL.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var query []string
	for _, k := range keys {
		for _, v := range q[k] {
			query = append(query, awsEscape(k)+"="+awsEscape(v))
		}
	}
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	canon := strings.Join([]string{r.Method, path, strings.Join(query, "&"), canonHeaders.String(), signedHeaders, payload}, "\n")
	toSign := strings.Join([]string{"AWS4-HMAC-SHA256", r.Header.Get("X-Amz-Date"), scope, sha256Hex([]byte(canon))}, "\n")
	parts := strings.Split(scope, "/") // date/region/service/aws4_request
	key := []byte("AWS4" + secretKey)
	for _, p := range parts {
		key = hmacSHA256(key, p)
	}
	return hex.EncodeToString(hmacSHA256(key, toSign))
}

func hmacSHA256(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func awsEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html
const getCallerIdentityResponse = `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>%s</Arn>
    <UserId>%s</UserId>
    <Account>%s</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>`

const stsError = `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>
  <RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId>
</ErrorResponse>`

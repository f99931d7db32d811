package vaulttest

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/drover-dev/drover/internal/cloudlab/sigv4"
)

// The fakes of this file stand in for the AWS APIs Vault's aws auth method calls: STS
// (GetCallerIdentity) and IAM (GetRole). They check SigV4 signatures the way AWS does, by signing
// the request they got again with the secret key they know, so a request Vault altered on the way,
// or signed with another key, is refused. They listen on 127.0.0.1 only (httptest's default), which
// each constructor checks.

// Account is the AWS account of every principal the fakes know.
const Account = "123456789012"

// The aws mount's own IAM user keys (EnableAWS configures them; the fakes know them): Vault calls STS
// with them to learn its account, and IAM to resolve a role's ARN to its unique ID.
const (
	MountAccessKey = "AKIAEXAMPLEVAULT0001"
	mountSecretKey = "vault-mount-secret-key-example-0001"
)

// AWSIdentity is one set of credentials AWS knows, and who they are.
type AWSIdentity struct {
	SecretKey    string
	SessionToken string // the session token temporary credentials must carry; empty for an IAM user's keys
	Arn          string // what GetCallerIdentity answers
	UserID       string
}

var mountIdentity = AWSIdentity{SecretKey: mountSecretKey, Arn: "arn:aws:iam::" + Account + ":user/vault-lab", UserID: "AIDAEXAMPLEVAULTUSER"}

func loopbackOnly(t testing.TB, s *httptest.Server) {
	t.Helper()
	if a := s.Listener.Addr().String(); !strings.HasPrefix(a, "127.0.0.1:") {
		t.Fatalf("vaulttest: a fake listens on %s, not on 127.0.0.1 only", a)
	}
}

// EnableAWS enables Vault's aws auth method at mount and configures its client as an operator
// would: its own IAM user keys (MountAccessKey), iamURL and stsURL as the IAM and STS endpoints, and
// serverID, when not empty, as the iam_server_id_header_value logins must carry.
func (s *Server) EnableAWS(t testing.TB, mount, iamURL, stsURL, serverID string) {
	t.Helper()
	s.root(t, http.MethodPost, "sys/auth/"+mount, map[string]any{"type": "aws"})
	cfg := map[string]any{
		"access_key": MountAccessKey, "secret_key": mountSecretKey,
		"iam_endpoint": iamURL, "sts_endpoint": stsURL, "sts_region": "us-east-1", "max_retries": 0,
	}
	if serverID != "" {
		cfg["iam_server_id_header_value"] = serverID
	}
	s.root(t, http.MethodPost, "auth/"+mount+"/config/client", cfg)
}

// root sends one request with the root token and fails the test unless Vault answers 2xx.
func (s *Server) root(t testing.TB, method, path string, body any) {
	t.Helper()
	s.rootJSON(t, method, path, body, nil)
}

// AWSAPI is a fake of one AWS Query API (STS or IAM): a form POST signed with SigV4 by one of the
// known identities, answered by handle when the signature holds.
type AWSAPI struct {
	*httptest.Server
	service    string
	identities map[string]AWSIdentity // access key ID -> identity
	handle     func(w http.ResponseWriter, id AWSIdentity, form url.Values)

	mu   sync.Mutex
	seen []AWSRequest
}

// AWSRequest is what a fake got, for the tests to look at.
type AWSRequest struct {
	Host, Path, Action, KeyID string
	SignedHeaders             []string
	Header                    http.Header
	Verified                  bool
}

// String is s without its headers, which hold credentials: test output is output too.
func (s AWSRequest) String() string {
	return fmt.Sprintf("{%s %s%s %s signed %s verified %v}", s.Action, s.Host, s.Path, s.KeyID, strings.Join(s.SignedHeaders, ";"), s.Verified)
}

func newAWSAPI(t testing.TB, service string, ids map[string]AWSIdentity, handle func(http.ResponseWriter, AWSIdentity, url.Values)) *AWSAPI {
	t.Helper()
	a := &AWSAPI{service: service, identities: ids, handle: handle}
	a.Server = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.Close)
	loopbackOnly(t, a.Server)
	return a
}

func (a *AWSAPI) Requests() []AWSRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.seen)
}

func (a *AWSAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	form, err := url.ParseQuery(string(body))
	if r.Method != http.MethodPost || err != nil {
		a.fail(w, http.StatusBadRequest, "MalformedQueryString", "want a form POST")
		return
	}
	seen := AWSRequest{Host: r.Host, Path: r.URL.Path, Action: form.Get("Action"), Header: r.Header.Clone()}
	code, msg, id := a.verify(r, body, &seen)
	seen.Verified = code == ""
	a.mu.Lock()
	a.seen = append(a.seen, seen)
	a.mu.Unlock()
	switch {
	case code == "SignatureDoesNotMatch", code == "IncompleteSignature", code == "InvalidClientTokenId", code == "RequestExpired":
		a.fail(w, http.StatusForbidden, code, msg)
	case code != "":
		a.fail(w, http.StatusBadRequest, code, msg)
	default:
		a.handle(w, id, form)
	}
}

// verify checks r's SigV4 signature as AWS does (package sigv4): the credential scope (STS signs
// in us-east-1), the session token of temporary credentials, the time, and the signature computed
// again over the request as received, Host and all. Like AWS for every service but S3, it
// normalizes the path first: Vault sends endpoint + "/" + the signed URL's path, "//".
func (a *AWSAPI) verify(r *http.Request, body []byte, seen *AWSRequest) (code, msg string, id AWSIdentity) {
	region := ""
	if a.service == "sts" {
		region = "us-east-1"
	}
	keyID, signed, err := sigv4.Verify(r, body, sigv4.Check{Service: a.service, Region: region,
		Keys: func(keyID string) (sigv4.Key, bool) {
			i, ok := a.identities[keyID]
			return sigv4.Key{Secret: i.SecretKey, SessionToken: i.SessionToken}, ok
		}})
	seen.KeyID, seen.SignedHeaders = keyID, signed
	id = a.identities[keyID]
	if err != nil {
		return err.Code, err.Message, id
	}
	return "", "", id
}

// fail answers an AWS Query API error document.
func (a *AWSAPI) fail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="https://%s.amazonaws.com/doc/%s/">
  <Error>
    <Type>Sender</Type>
    <Code>%s</Code>
    <Message>%s</Message>
  </Error>
  <RequestId>4fa4e3b1-0f6c-4a5e-9d3c-6b1e2a7f8c90</RequestId>
</ErrorResponse>
`, a.service, map[string]string{"sts": "2011-06-15", "iam": "2010-05-08"}[a.service], code, xmlEscape(msg))
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// NewSTS answers GetCallerIdentity (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html)
// with the identity whose credentials signed the request: ids (access key ID -> identity) and the
// mount's own keys.
func NewSTS(t testing.TB, ids map[string]AWSIdentity) *AWSAPI {
	ids = withMount(ids)
	var a *AWSAPI
	a = newAWSAPI(t, "sts", ids, func(w http.ResponseWriter, id AWSIdentity, form url.Values) {
		if form.Get("Action") != "GetCallerIdentity" || form.Get("Version") != "2011-06-15" {
			a.fail(w, http.StatusBadRequest, "InvalidAction", "Could not find operation "+form.Get("Action")+" for version "+form.Get("Version"))
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>%s</Arn>
    <UserId>%s</UserId>
    <Account>%s</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata>
    <RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId>
  </ResponseMetadata>
</GetCallerIdentityResponse>
`, id.Arn, id.UserID, Account)
	})
	return a
}

// NewIAM answers GetRole (https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetRole.html)
// for the roles it knows (name -> unique ID), to the mount's own keys.
func NewIAM(t testing.TB, roles map[string]string) *AWSAPI {
	ids := withMount(nil)
	var a *AWSAPI
	a = newAWSAPI(t, "iam", ids, func(w http.ResponseWriter, _ AWSIdentity, form url.Values) {
		name := form.Get("RoleName")
		roleID, ok := roles[name]
		switch {
		case form.Get("Action") != "GetRole":
			a.fail(w, http.StatusBadRequest, "InvalidAction", "Could not find operation "+form.Get("Action"))
			return
		case !ok:
			a.fail(w, http.StatusNotFound, "NoSuchEntity", "The role with name "+name+" cannot be found.")
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<GetRoleResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <GetRoleResult>
    <Role>
      <Path>/</Path>
      <RoleName>%s</RoleName>
      <RoleId>%s</RoleId>
      <Arn>arn:aws:iam::%s:role/%s</Arn>
      <CreateDate>2026-01-01T00:00:00Z</CreateDate>
      <AssumeRolePolicyDocument>%%7B%%22Version%%22%%3A%%222012-10-17%%22%%7D</AssumeRolePolicyDocument>
      <MaxSessionDuration>3600</MaxSessionDuration>
    </Role>
  </GetRoleResult>
  <ResponseMetadata>
    <RequestId>df37e965-9967-11e1-a4c3-270EXAMPLE04</RequestId>
  </ResponseMetadata>
</GetRoleResponse>
`, name, roleID, Account, name)
	})
	return a
}

// withMount is ids and the aws mount's own keys.
func withMount(ids map[string]AWSIdentity) map[string]AWSIdentity {
	out := map[string]AWSIdentity{MountAccessKey: mountIdentity}
	for k, v := range ids {
		out[k] = v
	}
	return out
}

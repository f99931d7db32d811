package vaulttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// IAM is a fake of the AWS IAM Query API that answers GetRole, the one IAM call Vault's aws auth
// method makes for drover: when a role binding an IAM role ARN is written, Vault resolves the ARN to
// the role's unique ID (resolve_aws_unique_ids) with the mount's own credentials, and later compares
// it with the unique ID STS reports for a login. It listens on 127.0.0.1 only.
type IAM struct {
	URL string

	mu    sync.Mutex
	roles map[string]string // role name -> unique ID (AROA...)
	calls []string          // the actions asked, in order
}

// Calls are the actions the fake was asked, in order.
func (f *IAM) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// NewIAM starts a fake IAM that knows roles (name -> unique ID), stopped when the test ends.
func NewIAM(t testing.TB, roles map[string]string) *IAM {
	t.Helper()
	f := &IAM{roles: roles}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

func (f *IAM) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
		http.Error(w, "want a form POST", http.StatusBadRequest)
		return
	}
	action, name := r.PostForm.Get("Action"), r.PostForm.Get("RoleName")
	f.mu.Lock()
	f.calls = append(f.calls, action)
	id, ok := f.roles[name]
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	switch {
	case action != "GetRole":
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, iamError, "InvalidAction", "Sender", "the fake IAM answers GetRole only, not "+action)
	case r.Header.Get("Authorization") == "":
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, iamError, "MissingAuthenticationToken", "Sender", "Request is missing Authentication Token")
	case !ok:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, iamError, "NoSuchEntity", "Sender", "The role with name "+name+" cannot be found.")
	default:
		fmt.Fprintf(w, getRoleResponse, "/", name, id, "arn:aws:iam::"+Account+":role/"+name)
	}
}

// Account is the AWS account of the fakes' principals.
const Account = "123456789012"

// https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetRole.html
const getRoleResponse = `<GetRoleResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <GetRoleResult>
    <Role>
      <Path>%s</Path>
      <RoleName>%s</RoleName>
      <RoleId>%s</RoleId>
      <Arn>%s</Arn>
      <CreateDate>2026-01-01T00:00:00Z</CreateDate>
      <AssumeRolePolicyDocument>%%7B%%7D</AssumeRolePolicyDocument>
      <MaxSessionDuration>3600</MaxSessionDuration>
    </Role>
  </GetRoleResult>
  <ResponseMetadata><RequestId>df37e965-9967-11e1-a4c3-270EXAMPLE04</RequestId></ResponseMetadata>
</GetRoleResponse>`

const iamError = `<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <Error><Code>%s</Code><Type>%s</Type><Message>%s</Message></Error>
  <RequestId>df37e965-9967-11e1-a4c3-270EXAMPLE04</RequestId>
</ErrorResponse>`

// The aws mount's own credentials, which the fake STS knows.
const (
	mountAccessKey = "AKIAVAULTMOUNTEXAMPLE"
	mountSecretKey = "vault-mount-secret-key-example"
)

// EnableAWS enables Vault's aws auth method at mount and configures its client as an operator
// would: its own (fake) credentials, iamURL and stsURL as the IAM and STS endpoints, and serverID,
// when not empty, as the iam_server_id_header_value logins must carry.
func (s *Server) EnableAWS(t testing.TB, mount, iamURL, stsURL, serverID string) {
	t.Helper()
	s.root(t, http.MethodPost, "sys/auth/"+mount, map[string]any{"type": "aws"})
	cfg := map[string]any{
		"access_key": mountAccessKey, "secret_key": mountSecretKey,
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
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(method, s.Addr+"/v1/"+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Vault-Token", s.RootToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("vaulttest: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var out bytes.Buffer
		_, _ = out.ReadFrom(resp.Body)
		t.Fatalf("vaulttest: %s %s: %s: %s", method, path, resp.Status, out.String())
	}
}

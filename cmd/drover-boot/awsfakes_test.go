package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// The fake of this file stands in for an EC2 metadata service (IMDSv2) with instance profile
// credentials; vaulttest has the STS and IAM that Vault's aws auth method calls. It listens on
// 127.0.0.1 only (httptest's default), which the constructor checks.

func loopbackOnly(t *testing.T, s *httptest.Server) {
	t.Helper()
	if a := s.Listener.Addr().String(); !strings.HasPrefix(a, "127.0.0.1:") {
		t.Fatalf("a fake listens on %s, not on 127.0.0.1 only", a)
	}
}

// fakeIMDS is EC2's metadata service in IMDSv2 mode: PUT /latest/api/token gives the session token,
// every GET without it is 401. It serves one instance profile role's credentials (creds nil: the
// instance has no instance profile, 404).
type fakeIMDS struct {
	*httptest.Server
	role  string
	creds map[string]string // the credentials JSON document
	mu    sync.Mutex
	gets  []string
}

const awsIMDSToken = "imds-aws-session-token-7890"

func newFakeIMDS(t *testing.T, role string, creds map[string]string) *fakeIMDS {
	t.Helper()
	f := &fakeIMDS{role: role, creds: creds}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	loopbackOnly(t, f.Server)
	return f
}

// instanceCreds is the document of https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html
// (iam/security-credentials/role-name).
func instanceCreds(keyID, secret, token string) map[string]string {
	return map[string]string{
		"Code": "Success", "LastUpdated": time.Now().UTC().Format(time.RFC3339), "Type": "AWS-HMAC",
		"AccessKeyId": keyID, "SecretAccessKey": secret, "Token": token,
		"Expiration": time.Now().Add(6 * time.Hour).UTC().Format(time.RFC3339),
	}
}

func (f *fakeIMDS) serve(w http.ResponseWriter, r *http.Request) {
	const prefix = "/latest/meta-data/iam/security-credentials/"
	if r.URL.Path == "/latest/api/token" {
		if r.Method != http.MethodPut || r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, awsIMDSToken)
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.Header.Get("X-aws-ec2-metadata-token") != awsIMDSToken {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	f.mu.Lock()
	f.gets = append(f.gets, r.URL.Path)
	f.mu.Unlock()
	switch {
	case f.creds == nil || !strings.HasPrefix(r.URL.Path, prefix):
		http.NotFound(w, r)
	case r.URL.Path == prefix:
		fmt.Fprintln(w, f.role)
	case r.URL.Path == prefix+f.role:
		_ = json.NewEncoder(w).Encode(f.creds)
	default:
		http.NotFound(w, r)
	}
}

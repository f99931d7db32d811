package main

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/secrets"
	"github.com/drover-dev/drover/plugins/secrets/bootdata"
	"github.com/drover-dev/drover/plugins/secrets/vault"
	"github.com/drover-dev/drover/plugins/secrets/vault/vaulttest"
)

// The identities of the aws login tests: the web and db instances' instance profile credentials
// (temporary: a session token each), and the aws auth mount's own IAM user keys.
const (
	webKeyID   = "ASIAEXAMPLEWEB000001"
	webSecret  = "web-instance-secret-access-key-0123456789"
	webToken   = "IQoJb3JpZ2luX2VjEWebSessionToken/abc+def=="
	dbKeyID    = "ASIAEXAMPLEDB0000001"
	dbSecret   = "db-instance-secret-access-key-9876543210"
	dbToken    = "IQoJb3JpZ2luX2VjEDbSessionToken/xyz+uvw=="
	webRoleID  = "AROAEXAMPLEROLEID00"
	dbRoleID   = "AROAEXAMPLEDBROLE00"
	instanceID = "i-0123456789abcdef0"
	serverID   = "vault.lab.example"
)

// awsLab is a real Vault dev server with the aws auth method configured as an operator would, against
// fake STS and IAM endpoints, the aws role drover-web bound to the IAM role drover-web, and the
// web TLS secret that role's policy reads.
type awsLab struct {
	*lab
	sts, iam *vaulttest.AWSAPI
	issuer   *bootdata.Issuer
}

func newAWSLab(t *testing.T) *awsLab {
	l := &lab{t: t, srv: vaulttest.Start(t)}
	l.forbidden = append(l.forbidden, l.srv.RootToken, tlsKey, "MIItls-key-value-0123", tlsCert,
		webKeyID, webSecret, webToken, dbKeyID, dbSecret, dbToken, awsIMDSToken)
	ids := map[string]vaulttest.AWSIdentity{
		webKeyID: {SecretKey: webSecret, SessionToken: webToken, Arn: "arn:aws:sts::" + vaulttest.Account + ":assumed-role/drover-web/" + instanceID, UserID: webRoleID + ":" + instanceID},
		dbKeyID:  {SecretKey: dbSecret, SessionToken: dbToken, Arn: "arn:aws:sts::" + vaulttest.Account + ":assumed-role/drover-db/" + instanceID, UserID: dbRoleID + ":" + instanceID},
	}
	a := &awsLab{
		lab: l,
		sts: vaulttest.NewSTS(t, ids),
		iam: vaulttest.NewIAM(t, map[string]string{"drover-web": webRoleID, "drover-db": dbRoleID}),
	}
	l.root(http.MethodPost, "sys/mounts/kv", map[string]any{"type": "kv", "options": map[string]any{"version": "2"}}, nil)
	l.root(http.MethodPost, "kv/data/web/tls", map[string]any{"data": map[string]any{"key": tlsKey, "cert": tlsCert}}, nil)
	l.srv.EnableAWS(t, "aws", a.iam.URL, a.sts.URL, serverID)
	// The controller's side, as a rollout does it: the broker makes the policy and the aws role
	// drover-web bound to the IAM role, and the issuer gives each instance its user-data.
	b, err := vault.New(&vault.Config{Address: l.srv.Addr, Token: secrets.Secret(l.srv.RootToken)})
	if err != nil {
		t.Fatal(err)
	}
	a.issuer = &bootdata.Issuer{Broker: b, Addr: l.srv.Addr, IAMServerID: serverID, Roles: map[string]bootdata.RoleSecrets{"web": {
		AWSIAMRole: "arn:aws:iam::" + vaulttest.Account + ":role/drover-web",
		Files: []bootdata.SecretFile{{Path: "kv/data/web/tls", Field: "key", Name: "tls.key"},
			{Path: "kv/data/web/tls", Field: "cert", Name: "tls.crt", Owner: "0:0", Mode: 0o440}}}}}
	a.userData(serverID) // the first instance: the role is made
	// Vault resolved the role's ARN to its unique ID, with its own keys, through the fake IAM.
	var role struct {
		Data struct {
			IDs []string `json:"bound_iam_principal_id"`
		} `json:"data"`
	}
	l.root(http.MethodGet, "auth/aws/role/drover-web", nil, &role)
	if !slices.Equal(role.Data.IDs, []string{webRoleID}) {
		t.Fatalf("bound_iam_principal_id %q, want [%s]", role.Data.IDs, webRoleID)
	}
	if r := a.iam.Requests(); len(r) == 0 || r[0].Action != "GetRole" || !r[0].Verified || r[0].KeyID != vaulttest.MountAccessKey {
		t.Fatalf("iam requests %+v", r)
	}
	return a
}

// userData is the user-data the controller gives a web instance that logs in with the aws auth
// method, its iam_server_id replaced when iamServerID differs from the mount's.
func (a *awsLab) userData(iamServerID string) []byte {
	a.t.Helper()
	ud, acc, err := a.issuer.Issue(a.t.Context(), "web", "web-1", "sha256:test")
	if err != nil || acc != "" {
		a.t.Fatalf("issuing web's user-data: accessor %q, %v", acc, err)
	}
	if iamServerID != serverID {
		u, err := bootdata.Parse(ud)
		if err != nil {
			a.t.Fatal(err)
		}
		u.Vault.IAMServerID = iamServerID
		if ud, err = bootdata.Marshal(u); err != nil {
			a.t.Fatal(err)
		}
	}
	return ud
}

// machine is a web instance with user-data that says auth aws, whose metadata service serves creds
// as the instance profile role's (nil: no instance profile).
func (a *awsLab) machine(t *testing.T, iamServerID, role string, creds map[string]string) (*machine, *fakeIMDS) {
	imds := newFakeIMDS(t, role, creds)
	m := newMachine(t, "web", "kv/data/web/tls").withUserData(a.userData(iamServerID))
	m.cfg.MetadataURL = imds.URL
	return m, imds
}

// failed checks a boot that failed: exit 1, reason (on stderr too) holding every want, no secret
// file and no vault.env.
func failed(t *testing.T, m *machine, code int, want ...string) {
	t.Helper()
	if code != exitFailed {
		t.Fatalf("exit %d, want %d: %s", code, exitFailed, m.stderr.String())
	}
	st, raw := m.status()
	for _, w := range want {
		if st.State != "failed" || !strings.Contains(st.Reason, w) {
			t.Errorf("status %s: want a reason with %q", raw, w)
		}
	}
	if !strings.Contains(m.stderr.String(), st.Reason) || strings.Contains(st.Reason, "\n") {
		t.Errorf("stderr %q, reason %q", m.stderr.String(), st.Reason)
	}
	if ents, _ := os.ReadDir(m.secretsDir()); len(ents) != 0 {
		t.Errorf("files written: %v", ents)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(m.statusPath()), "vault.env")); !os.IsNotExist(err) {
		t.Errorf("vault.env after a failed boot: %v", err)
	}
}

func TestAWSLogin(t *testing.T) {
	a := newAWSLab(t)
	var outputs []string
	defer func() { noLeak(t, outputs, a.forbidden...) }()
	collect := func(m *machine) { outputs = append(outputs, m.outputs()...) }

	t.Run("logs in with the instance profile and writes the secrets", func(t *testing.T) {
		m, imds := a.machine(t, serverID, "drover-web", instanceCreds(webKeyID, webSecret, webToken))
		defer collect(m)
		if code := m.run(); code != exitOK {
			t.Fatalf("exit %d: %s", code, m.stderr.String())
		}
		checkTLSFiles(t, m.secretsDir())
		st, raw := m.status()
		if st.State != "ok" || st.Vault != "revoked" || strings.Join(st.Secrets, ",") != "tls.key,tls.crt" || st.Reason != "" {
			t.Errorf("status %s", raw)
		}
		if st.TokenAccessor == "" || a.tokenAlive(st.TokenAccessor) {
			t.Errorf("token %q not revoked", st.TokenAccessor)
		}
		if !strings.Contains(m.stdout.String(), "wrote 2 secrets") || m.stderr.String() != "" {
			t.Errorf("stdout %q stderr %q", m.stdout.String(), m.stderr.String())
		}
		imds.mu.Lock()
		gets := slices.Clone(imds.gets)
		imds.mu.Unlock()
		if want := []string{imdsCredsPath, imdsCredsPath + "drover-web"}; !slices.Equal(gets, want) {
			t.Errorf("metadata GETs %q, want %q", gets, want)
		}
		// What Vault forwarded to STS: the instance's signed request, its Host kept. Twice: once to
		// log in, and again after a successful login, to resolve the role its lease is counted
		// under (Core.DetermineRoleFromLoginRequest).
		r := a.stsRequestsBy(webKeyID)
		if len(r) != 2 {
			t.Fatalf("sts got %d requests signed by the instance, want 2", len(r))
		}
		for _, got := range r {
			if !got.Verified || got.Host != "sts.amazonaws.com" || got.Path != "//" || got.Action != "GetCallerIdentity" || got.Header.Get(iamServerIDHeader) != serverID {
				t.Errorf("sts got %+v", got)
			}
			for _, h := range []string{"host", "x-amz-date", "x-amz-security-token", "x-vault-aws-iam-server-id", "content-type"} {
				if !slices.Contains(got.SignedHeaders, h) {
					t.Errorf("%s not signed: %q", h, got.SignedHeaders)
				}
			}
		}
	})

	t.Run("credentials whose signature sts rejects fail", func(t *testing.T) {
		wrong := "not-the-" + webSecret
		a.forbidden = append(a.forbidden, wrong)
		m, _ := a.machine(t, serverID, "drover-web", instanceCreds(webKeyID, wrong, webToken))
		defer collect(m)
		before := len(a.stsRequestsBy(webKeyID))
		failed(t, m, m.run(), "aws login: vault refused the instance's aws identity for role drover-web at auth/aws",
			"received error code 403 from STS: SignatureDoesNotMatch: The request signature we calculated does not match")
		if r := a.stsRequestsBy(webKeyID); len(r) != before+1 || r[len(r)-1].Verified {
			t.Errorf("sts requests %+v", r[before:])
		}
	})

	t.Run("an instance of another role is refused", func(t *testing.T) {
		m, _ := a.machine(t, serverID, "drover-db", instanceCreds(dbKeyID, dbSecret, dbToken))
		defer collect(m)
		failed(t, m, m.run(), `IAM Principal "arn:aws:sts::123456789012:assumed-role/drover-db/i-0123456789abcdef0" does not belong to the role "drover-web"`)
		if r := a.stsRequestsBy(dbKeyID); len(r) != 1 || !r[0].Verified {
			t.Errorf("sts requests %+v", r)
		}
	})

	t.Run("an instance without an instance profile fails", func(t *testing.T) {
		m, _ := a.machine(t, serverID, "drover-web", nil)
		defer collect(m)
		before := len(a.sts.Requests())
		failed(t, m, m.run(), "aws login: the metadata service has no instance profile credentials: GET /latest/meta-data/iam/security-credentials/: 404 Not Found")
		if n := len(a.sts.Requests()); n != before {
			t.Errorf("sts asked %d times", n-before)
		}
	})

	t.Run("a request for another vault is refused", func(t *testing.T) {
		m, _ := a.machine(t, "vault.other.example", "drover-web", instanceCreds(webKeyID, webSecret, webToken))
		defer collect(m)
		failed(t, m, m.run(), `error validating X-Vault-AWS-IAM-Server-ID header: expected "vault.lab.example" but got "vault.other.example"`)
	})

	t.Run("the token renews until stopped, then is revoked", func(t *testing.T) {
		a.root(http.MethodPost, "auth/aws/role/drover-web", map[string]any{"token_ttl": "6s", "token_max_ttl": "1h"}, nil)
		m, _ := a.machine(t, serverID, "drover-web", instanceCreds(webKeyID, webSecret, webToken))
		defer collect(m)
		cancel, done := m.renewInBackground()
		defer cancel()
		st := waitStatus(t, m, func(st status) bool { return st.State != "" })
		if st.State != "ok" || st.Vault != "renewing" || st.TokenExpires == nil {
			t.Fatalf("status %+v, stderr %q", st, m.stderr.String())
		}
		time.Sleep(7 * time.Second) // the 6s lease renewed at about 4s
		var look struct {
			Data struct {
				TTL      int      `json:"ttl"`
				Policies []string `json:"policies"`
			} `json:"data"`
		}
		a.root(http.MethodPost, "auth/token/lookup-accessor", map[string]string{"accessor": st.TokenAccessor}, &look)
		if look.Data.TTL < 1 || !slices.Contains(look.Data.Policies, "drover-web") {
			t.Errorf("token after 7s of a 6s lease: %+v", look.Data)
		}
		cancel()
		if code := <-done; code != exitOK {
			t.Fatalf("exit %d: %s", code, m.stderr.String())
		}
		if st, _ := m.status(); st.Vault != "revoked" || a.tokenAlive(st.TokenAccessor) {
			t.Errorf("after stop: %+v", st)
		}
	})
}

func (a *awsLab) stsRequestsBy(keyID string) []vaulttest.AWSRequest {
	var out []vaulttest.AWSRequest
	for _, r := range a.sts.Requests() {
		if r.KeyID == keyID {
			out = append(out, r)
		}
	}
	return out
}

// checkTLSFiles checks tls.key and tls.crt, the web TLS secret's fields, and that nothing else is
// in dir.
func checkTLSFiles(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("files in %s: %v", dir, ents)
	}
	for name, want := range map[string]string{"tls.key": tlsKey, "tls.crt": tlsCert} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != want {
			t.Errorf("%s: %d bytes (%v), want %d", name, len(b), err, len(want))
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "tls.crt")); err != nil || fi.Mode() != 0o440 {
		t.Errorf("tls.crt: %v", err)
	}
}

// Without a metadata service (or on a lab VM) there are no instance profile credentials: the boot
// fails at once, saying so, before anything reaches Vault.
func TestAWSLoginNeedsTheMetadataService(t *testing.T) {
	ud := []byte(`{"version":1,"role":"web","vault":{"addr":"http://127.0.0.1:1","auth":"aws","aws_role":"drover-web"},"secrets":[{"path":"kv/data/web/tls","name":"tls"}]}`)
	m := newMachine(t, "web").withUserData(ud)
	failed(t, m, m.run(), "aws login: the metadata service is off (metadata-url none)")

	fw := filepath.Join(t.TempDir(), "by_name/opt/drover/user-data/raw")
	if err := os.MkdirAll(filepath.Join(filepath.Dir(filepath.Dir(fw)), labMarker), 0o755); err != nil {
		t.Fatal(err)
	}
	imds := newFakeIMDS(t, "drover-web", instanceCreds(webKeyID, webSecret, webToken))
	m = newMachine(t, "web").withUserData(ud)
	m.cfg.FwCfgPath, m.cfg.MetadataURL = fw, imds.URL
	failed(t, m, m.run(), "aws login: this is a lab vm")
	if len(imds.gets) != 0 {
		t.Errorf("a lab vm asked the metadata service: %q", imds.gets)
	}
}

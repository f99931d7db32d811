package vault_test

import (
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/drover-dev/drover/internal/vaultraft"
	"github.com/drover-dev/drover/plugins/secrets/vault"
	"github.com/drover-dev/drover/plugins/secrets/vault/vaulttest"
)

// TestRaftPolicyText: the policy names autopilot's state (read) and remove-peer (update), nothing
// else; the example's README shows the same policy.
func TestRaftPolicyText(t *testing.T) {
	pol := vault.RaftPolicy()
	var got []string
	for _, m := range policyPathRE.FindAllStringSubmatch(pol, -1) {
		got = append(got, m[1])
	}
	if want := []string{"sys/storage/raft/autopilot/state", "sys/storage/raft/remove-peer"}; !slices.Equal(got, want) {
		t.Errorf("paths %v, want %v", got, want)
	}
	if strings.Contains(pol, "sudo") || strings.Contains(pol, "delete") || strings.Contains(pol, "list") {
		t.Errorf("policy grants more than read and update:\n%s", pol)
	}
	readme, err := os.ReadFile("../../../examples/homelab/vault/README.md")
	if err != nil {
		t.Fatal(err)
	}
	body := pol[strings.Index(pol, "\n\n# Autopilot")+2:]
	indented := "    " + strings.ReplaceAll(strings.TrimSuffix(body, "\n"), "\n\n", "\n")
	indented = strings.ReplaceAll(indented, "\n", "\n    ")
	if !strings.Contains(string(readme), indented) {
		t.Errorf("the example's README does not show the policy as RaftPolicy has it:\n%s", indented)
	}
}

// TestRaftAgainstVault: a real Vault on integrated storage (a dev server with a raft storage
// block), a token with RaftPolicy only: Servers lists the node as the healthy leader, RemovePeer
// of a server that is not a member is nil, and the token reads no secret.
func TestRaftAgainstVault(t *testing.T) {
	bin, err := vaulttest.FindBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	addr := netip.MustParseAddrPort("127.0.78.2:8200")
	conf := `storage "raft" {
  path    = "` + filepath.Join(dir, "raft") + `"
  node_id = "node-a"
}
cluster_addr  = "http://127.0.78.2:8201"
api_addr      = "http://127.0.78.2:8200"
disable_mlock = true
`
	if err := os.MkdirAll(filepath.Join(dir, "raft"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "c.hcl"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "vault.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(bin, "server", "-dev", "-dev-root-token-id=root", "-dev-listen-address="+addr.String(), "-dev-no-store-token", "-config="+filepath.Join(dir, "c.hcl"), "-log-level=warn")
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = []string{"HOME=" + dir}, dir, log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	root, err := api.NewClient(&api.Config{Address: "http://" + addr.String(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	root.SetToken("root")
	deadline := time.Now().Add(60 * time.Second)
	for {
		h, err := root.Sys().Health()
		if err == nil && h.Initialized && !h.Sealed && !h.Standby {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "vault.log"))
			t.Fatalf("vault did not come up: %v\n%s", err, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := root.Sys().PutPolicy(vault.RaftPolicyName, vault.RaftPolicy()); err != nil {
		t.Fatal(err)
	}
	tok, err := root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{vault.RaftPolicyName}, NoDefaultPolicy: true, TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := vaultraft.New(tok.Auth.ClientToken, "http", "")
	if err != nil {
		t.Fatal(err)
	}
	var servers []vaultraft.Server
	for range 50 { // autopilot reports a server healthy once it has been stable a moment
		if servers, err = cl.Servers(t.Context(), addr); err == nil && len(servers) == 1 && servers[0].Healthy {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil || len(servers) != 1 || servers[0].ID != "node-a" || !servers[0].Leader || !servers[0].Voter || !servers[0].Healthy {
		t.Fatalf("servers %+v, %v: want node-a, the healthy leader", servers, err)
	}
	if err := cl.RemovePeer(t.Context(), addr, "node-gone"); err != nil {
		t.Errorf("removing a server that is not a member: %v", err)
	}
	u, _ := url.Parse("http://" + addr.String())
	mine, _ := api.NewClient(&api.Config{Address: u.String()})
	mine.SetToken(tok.Auth.ClientToken)
	if _, err := mine.Logical().Read("secret/data/anything"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("the raft token reading a secret: %v, want permission denied", err)
	}
	if _, err := mine.Logical().Write("sys/storage/raft/remove-peer", map[string]any{"server_id": "node-gone"}); err != nil && strings.Contains(err.Error(), "permission denied") {
		t.Errorf("remove-peer with RaftPolicy: %v", err)
	}
}

//go:build e2e && lab

package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/qemu"
)

// TestE2EVaultRole deploys the vault role of examples/homelab on the lab: a Vault server image with
// integrated storage whose transit seal unseals against the lab's Vault, with the seal's token
// delivered at boot like any secret. The first node initializes itself; what init hands out is
// encrypted to the operator's PGP key and shown on the console, where only that key's holder can
// read it; the root token decrypted from there works on the new Vault. The transit token is nowhere
// in the state directory or drover's output, and an even number of nodes is refused.
func TestE2EVaultRole(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the e2e rollout needs root (it builds images)")
	}
	srv, root, controllerToken := startLabVault(t)
	// The operator's one-time transit setup (examples/homelab/vault/README.md): a key, a policy
	// that may only use it, a periodic token with that policy, kept in KV for the vault role.
	transitToken := setupTransitUnseal(t, root)
	mustWrite(t, root, "kv/data/vault/transit", map[string]any{"data": map[string]any{"token": transitToken}})

	fleetDir := t.TempDir()
	copyDir(t, "../../examples/homelab", fleetDir)
	fleetFile := filepath.Join(fleetDir, "drover.hcl")
	state := filepath.Join(fleetDir, ".drover")
	operator := newOperatorKey(t, filepath.Join(fleetDir, "vault/operator.gpg"))
	editFleet(t, fleetFile, `address = "http://127.0.0.1:8200"`, `address = "`+srv.Addr+`"`)
	// The example's vault role has no packages; nginx here makes its base tree the web tests' (a
	// tree takes minutes cold), and nothing in the image uses it.
	editFleet(t, fleetFile, `    # A stock Vault server binary`, `    packages = ["nginx"]
    # A stock Vault server binary`)
	editFleet(t, fleetFile, `    strategy = "raft"
    ports    = [8200]`, `    strategy = "raft"
    ports    = [8200]
    watch    = "5s"`)
	// One node: this test is about one node's init and seal; three, and their replacement, are
	// TestE2EVaultRaftLab's.
	editFleet(t, fleetFile, `count    = 3
    strategy = "raft"`, `count    = 1
    strategy = "raft"`)
	editFleet(t, fleetFile, `cutover "dns" {
      dns  = "home"
      name = "vault"
      ttl  = 60
    }`, `cutover "none" {}`)

	lab, err := qemu.New(qemu.NewDefaultConfig(os.LookupEnv), state)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { terminateAll(t, lab) })
	env := []string{"VAULT_TOKEN=" + controllerToken, "DROVER_VAR_vault_binary=" + srv.Bin}
	var outputs []string
	run := func(args ...string) result {
		t.Helper()
		r := droverExec(t, env, append([]string{"--fleet", fleetFile}, args...)...)
		outputs = append(outputs, r.stdout, r.stderr)
		return r
	}
	must := func(args ...string) result {
		t.Helper()
		r := run(args...)
		if r.code != 0 {
			t.Fatalf("drover %v: exit %d", args, r.code)
		}
		return r
	}

	var table []string
	row := func(check, outcome string) { table = append(table, fmt.Sprintf("%-58s %s", check, outcome)) }
	defer func() {
		t.Logf("the vault role on the lab:\n%-58s %s\n%s", "check", "outcome", strings.Join(table, "\n"))
	}()

	must("build", "vault")
	must("rollout", "start", "vault")
	must("rollout", "promote", "vault")
	live := liveInstances(t, lab, compute.Selector{"role": "vault"})
	if len(live) != 1 {
		t.Fatalf("%d live vault instances, want 1", len(live))
	}
	node := live[0]
	nodeAddr := "http://" + node.Endpoint(8200).String()
	row("drover build, rollout start and promote of role vault", "promoted: health \"vault\" saw it initialized and unsealed")

	t.Run("the node is initialized and unsealed by the transit seal, on raft", func(t *testing.T) {
		st, err := vaultAs(t, nodeAddr, "").Sys().SealStatus()
		if err != nil {
			t.Fatal(err)
		}
		if !st.Initialized || st.Sealed || st.Type != "transit" || st.StorageType != "raft" || !st.RecoverySeal {
			t.Errorf("seal status %+v: want initialized, unsealed, type transit, storage raft, recovery seal", st)
		}
		row("sys/seal-status of the new node", fmt.Sprintf("initialized %t, sealed %t, seal %s, storage %s", st.Initialized, st.Sealed, st.Type, st.StorageType))
	})

	t.Run("init's output is on the console, readable only with the operator's key, and works", func(t *testing.T) {
		console := waitConsole(t, node, "drover-vault-init: {", time.Minute)
		line := consoleLine(console, "drover-vault-init: {")
		var init struct {
			RecoveryKeys []string `json:"recovery_keys_b64"`
			RootToken    string   `json:"root_token"`
		}
		if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "drover-vault-init: ")), &init); err != nil {
			t.Fatalf("the init line %q: %v", line, err)
		}
		if len(init.RecoveryKeys) != 1 || strings.HasPrefix(init.RootToken, "hvs.") {
			t.Fatalf("init gave %d recovery keys and a root token in the clear: %t", len(init.RecoveryKeys), strings.HasPrefix(init.RootToken, "hvs."))
		}
		rootToken := decryptPGP(t, operator, init.RootToken)
		recovery := decryptPGP(t, operator, init.RecoveryKeys[0])
		if !strings.HasPrefix(rootToken, "hvs.") || len(recovery) == 0 {
			t.Fatalf("decrypted: a root token of %d bytes (hvs. %t), a recovery key of %d", len(rootToken), strings.HasPrefix(rootToken, "hvs."), len(recovery))
		}
		c := vaultAs(t, nodeAddr, rootToken)
		if err := c.Sys().Mount("secret", &vaultMountKV2); err != nil {
			t.Fatalf("mounting KV on the new Vault with the decrypted root token: %v", err)
		}
		mustWrite(t, c, "secret/data/hello", map[string]any{"data": map[string]any{"from": "the fleet's own vault"}})
		got, err := c.KVv2("secret").Get(t.Context(), "hello")
		if err != nil || got.Data["from"] != "the fleet's own vault" {
			t.Errorf("reading back from the new Vault: %v %v", got, err)
		}
		row("the console's drover-vault-init line", "recovery key and root token PGP-encrypted")
		row("root token decrypted with the operator's key", "mounts KV, writes and reads a secret on the new Vault")
		outputs = append(outputs, console) // the console may show neither in the clear
		for i, out := range outputs {
			if strings.Contains(out, rootToken) || strings.Contains(out, string(recovery)) {
				t.Errorf("output %d holds the root token or the recovery key in the clear", i)
			}
		}
	})

	t.Run("the transit token is nowhere in state or drover's output", func(t *testing.T) {
		needles := map[string]string{"transit token": transitToken}
		for _, l := range grepTree(t, state, needles) {
			t.Errorf("%s found in %s", l.what, l.where)
		}
		for i, out := range outputs {
			if strings.Contains(out, transitToken) {
				t.Errorf("the transit token found in drover's output %d", i)
			}
		}
		row("grep the transit token: state dir, drover's output, console", "0 found")
	})

	t.Run("an even number of nodes is refused", func(t *testing.T) {
		// Three nodes that join each other, and their replacement one at a time, are
		// TestE2EVaultRaftLab's (on lab VMs) and TestE2EVaultRaft's (on processes).
		r := run("plan", "vault")
		if !strings.Contains(r.stdout, "vault: up to date") || strings.Contains(r.stdout, "!") {
			t.Errorf("plan of the running image: %s", r.stdout)
		}
		editFleet(t, fleetFile, `count    = 1
    strategy = "raft"`, `count    = 2
    strategy = "raft"`)
		r = run("rollout", "start", "--force", "vault")
		if r.code == 0 || !strings.Contains(r.stderr, "count = 2") || !strings.Contains(r.stderr, "odd number of nodes") {
			t.Errorf("two nodes: exit %d, %s", r.code, r.stderr)
		}
		if n := len(liveInstances(t, lab, compute.Selector{"role": "vault"})); n != 1 {
			t.Errorf("%d vault instances after the refusal, want 1", n)
		}
		row("rollout start with count = 2", "refused: a raft cluster needs an odd number of nodes")
	})
}

// newOperatorKey makes the operator's PGP key and writes its public half where the vault role's
// image takes it from, in the binary form `gpg --export` writes.
func newOperatorKey(t *testing.T, path string) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity("drover operator", "e2e", "operator@lab.example", nil)
	if err != nil {
		t.Fatal(err)
	}
	var pub bytes.Buffer
	if err := e.Serialize(&pub); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pub.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

// decryptPGP decrypts one of Vault's PGP-encrypted init values (base64 of a binary message).
func decryptPGP(t *testing.T, key *openpgp.Entity, b64 string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("not base64: %v", err)
	}
	md, err := openpgp.ReadMessage(bytes.NewReader(raw), openpgp.EntityList{key}, nil, nil)
	if err != nil {
		t.Fatalf("decrypting with the operator's key: %v", err)
	}
	b, err := io.ReadAll(md.UnverifiedBody)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

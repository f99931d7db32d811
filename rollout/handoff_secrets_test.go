package rollout_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/secrets"
	"github.com/drover-dev/drover/plugins/secrets/bootdata"
	"github.com/drover-dev/drover/plugins/secrets/vault"
	"github.com/drover-dev/drover/plugins/secrets/vault/vaulttest"
	"github.com/drover-dev/drover/rollout"
)

// bootdataVolumes is cmd's bootVolumes: the volumes written into bootdata user-data, the rest
// (the wrapped credential) kept.
func bootdataVolumes(ud []byte, role string, vols []rollout.BootVolume) ([]byte, error) {
	u := bootdata.UserData{Version: bootdata.Version, Role: role}
	if len(ud) > 0 {
		var err error
		if u, err = bootdata.Parse(ud); err != nil {
			return nil, err
		}
	}
	u.Volumes = nil
	for _, v := range vols {
		u.Volumes = append(u.Volumes, bootdata.VolumeMount{Name: v.Name, GuestPath: v.GuestPath, Mount: v.Mount, FS: v.FS, Owner: v.Owner, Mode: bootdata.Mode(v.Mode.Perm())})
	}
	return bootdata.Marshal(u)
}

// vaultBoots is a real Vault and what the lab's instances did with it at each boot: as drover-boot
// does, each boot unwraps the SecretID in its user-data and logs in with it (a spent wrapping
// token fails the boot before it waits for the volumes).
type vaultBoots struct {
	issuer *bootdata.Issuer
	root   *api.Client

	mu     sync.Mutex
	tokens map[string][]string // instance -> the wrapping tokens it booted with, in order
	failed []string
}

func startVaultBoots(t *testing.T, l *lab) *vaultBoots {
	t.Helper()
	srv := vaulttest.Start(t)
	root, err := api.NewClient(&api.Config{Address: srv.Addr})
	if err != nil {
		t.Fatal(err)
	}
	root.SetToken(srv.RootToken)
	broker, err := vault.New(&vault.Config{Address: srv.Addr, Token: secrets.Secret(srv.RootToken)})
	if err != nil {
		t.Fatal(err)
	}
	v := &vaultBoots{root: root, tokens: map[string][]string{},
		issuer: &bootdata.Issuer{Broker: broker, Addr: srv.Addr,
			Roles:      map[string]bootdata.RoleSecrets{"db": {Files: bootdata.FilesFor("secret/data/db/postgres")}},
			BoundCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}}
	l.mu.Lock()
	l.boot = v.boot
	l.mu.Unlock()
	return v
}

func (v *vaultBoots) boot(id string, userData []byte) error {
	err := v.login(id, userData)
	if err != nil {
		v.mu.Lock()
		v.failed = append(v.failed, fmt.Sprintf("%s: %v", id, err))
		v.mu.Unlock()
	}
	return err
}

func (v *vaultBoots) login(id string, userData []byte) error {
	ud, err := bootdata.Parse(userData)
	if err != nil {
		return err
	}
	if ud.Vault == nil || ud.Vault.WrappedSecretID.Reveal() == "" {
		return errors.New("no wrapped SecretID in the user-data")
	}
	tok := ud.Vault.WrappedSecretID.Reveal()
	v.mu.Lock()
	v.tokens[id] = append(v.tokens[id], tok)
	v.mu.Unlock()
	c, err := v.root.Clone()
	if err != nil {
		return err
	}
	c.SetToken("")
	sec, err := c.Logical().Unwrap(tok)
	if err != nil || sec == nil {
		return fmt.Errorf("unwrapping the SecretID: %v (a spent wrapping token?)", err)
	}
	login, err := c.Logical().Write("auth/approle/login", map[string]any{"role_id": ud.Vault.RoleID, "secret_id": sec.Data["secret_id"]})
	if err != nil || login == nil || login.Auth == nil {
		return fmt.Errorf("approle login: %v", err)
	}
	return nil
}

func (v *vaultBoots) check(t *testing.T, id string, boots int) {
	t.Helper()
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.failed) > 0 {
		t.Fatalf("boots that could not log in to Vault: %v", v.failed)
	}
	toks := v.tokens[id]
	if len(toks) != boots {
		t.Fatalf("%s booted %d time(s) with a credential, want %d", id, len(toks), boots)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(toks)))) != len(toks) {
		t.Errorf("%s booted twice with the same wrapping token", id)
	}
}

// A db whose role has Vault secrets: blue booted once with its launch credential; a rollback starts
// it again with a new one written into its user-data, while green still holds the volume and
// serves; the automatic hand-back after a green that fails with the data does the same; and drover
// volumes snapshot --stop and restore start it with a new one each time.
func TestHandoffRestartsWithAFreshCredential(t *testing.T) {
	l := newLab(t, dbRole())
	vb := startVaultBoots(t, l)
	ctl := func(mod ...func(*rollout.Options)) *rollout.Controller {
		return l.controller(append([]func(*rollout.Options){func(o *rollout.Options) {
			o.BootVolumes, o.Credentials = bootdataVolumes, vb.issuer
		}}, mod...)...)
	}
	img1 := l.build("db")
	c := ctl()
	rec, err := c.Start(t.Context(), "db", rollout.StartOptions{AutoPromote: new(true)})
	mustRecord(t, rec, err, rollout.Retired)
	blue := l.instanceOf(t, img1)
	vb.check(t, blue.ID, 1)

	img2 := l.build("db")
	rec, err = c.Start(t.Context(), "db", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
	rec, err = c.Promote(t.Context(), "db")
	mustRecord(t, rec, err, rollout.Promoted)
	green := l.instanceOf(t, img2)
	vb.check(t, green.ID, 1)

	l.resetEvents()
	rec, err = c.Rollback(t.Context(), "db")
	mustRecord(t, rec, err, rollout.RolledBack)
	vb.check(t, blue.ID, 2)
	if v := l.volume(t); v.AttachedTo != blue.ID {
		t.Fatalf("after the rollback the volume is on %q, want blue %s", v.AttachedTo, blue.ID)
	}
	ud, err := bootdata.Parse(l.comp.UserData(blue.ID))
	if err != nil || len(ud.Volumes) != 1 || ud.Volumes[0].GuestPath != l.volume(t).GuestPath {
		t.Fatalf("blue's user-data after the rollback: %+v, %v; want the volume named", ud, err)
	}
	checkBootedBeforeStop(t, l, blue.ID, green.ID, false)

	// The automatic hand-back: green fails its checks with the data.
	img3 := l.build("db")
	l.setHealthy(img3, false)
	rec, err = c.Start(t.Context(), "db", rollout.StartOptions{})
	mustRecord(t, rec, err, rollout.Ready)
	l.resetEvents()
	rec, err = c.Promote(t.Context(), "db")
	if err == nil || rec == nil || rec.State != rollout.RolledBack {
		t.Fatalf("promote of a green that fails with the data: %+v, %v; want rolled back", rec, err)
	}
	vb.check(t, blue.ID, 3)
	if v, b := l.volume(t), l.instanceOf(t, img1); v.AttachedTo != blue.ID || b.State != compute.Running {
		t.Fatalf("after the hand-back the volume is on %q and blue is %s; want it on running blue", v.AttachedTo, b.State)
	}
	// Green served nothing: it was stopped first, then blue booted, then took the volume.
	checkBootedBeforeStop(t, l, blue.ID, rec.Green[0].ID, true)

	// drover volumes: each start of the stopped blue gets a new credential.
	op, err := c.SnapshotVolume(t.Context(), "db", "pgdata", rollout.SnapshotOptions{Stop: true})
	if err != nil {
		t.Fatalf("snapshot --stop: %v", err)
	}
	vb.check(t, blue.ID, 4)
	if _, err := c.RestoreVolume(t.Context(), "db", "pgdata", op.Snapshot); err != nil {
		t.Fatalf("restore: %v", err)
	}
	vb.check(t, blue.ID, 5)
	if v := l.volume(t); v.AttachedTo != blue.ID || v.ID == rec.Progress.Handoff.Volumes[0].ID {
		t.Errorf("after the restore the volume in service is %s on %q, want a new one on blue", v.ID, v.AttachedTo)
	}
}

// checkBootedBeforeStop: the events of the last move say to booted (drover-boot waiting) before
// from was stopped, or after it when reversed; either way before the volume was attached to to.
func checkBootedBeforeStop(t *testing.T, l *lab, to, from string, reversed bool) {
	t.Helper()
	l.mu.Lock()
	events := slices.Clone(l.events)
	l.mu.Unlock()
	booted, stopped, attached := -1, -1, -1
	for i, e := range events {
		switch {
		case e.Step == "handoff" && strings.HasPrefix(e.Message, to+" booted: drover-boot waits"):
			booted = i
		case e.Step == "handoff" && strings.HasPrefix(e.Message, "stopped "+from+","):
			stopped = i
		case e.Step == "handoff" && strings.HasSuffix(e.Message, " attached to "+to) || strings.Contains(e.Message, " attached to "+to+" in "):
			attached = i
		}
	}
	if booted < 0 || stopped < 0 || attached < max(booted, stopped) || (booted > stopped) != reversed {
		var msgs []string
		for _, e := range events {
			msgs = append(msgs, e.Message)
		}
		t.Fatalf("%s booted at event %d, %s stopped at event %d, the volume attached at %d (reversed order wanted: %v):\n%s", to, booted, from, stopped, attached, reversed, strings.Join(msgs, "\n"))
	}
}

// noUserDataEdits is the lab's compute without compute.UserDataEditor, as digitalocean is.
type noUserDataEdits struct {
	compute.Provider
	volumeCaps // not compute.Volumes: a field named Volumes would hide the method Volumes
	compute.Stopper
}

type volumeCaps = compute.Volumes

// A role with secrets on a provider that cannot rewrite a stopped instance's user-data is refused
// before anything is stopped: the start of a handoff (no record, nothing launched), a rollback
// (the volume stays on green, which serves), and drover volumes snapshot --stop and restore.
func TestHandoffSecretsNeedUserDataEdits(t *testing.T) {
	l := newLab(t, dbRole())
	vb := startVaultBoots(t, l)
	withEdits := l.controller(func(o *rollout.Options) { o.BootVolumes, o.Credentials = bootdataVolumes, vb.issuer })
	without := l.controller(func(o *rollout.Options) {
		o.BootVolumes, o.Credentials = bootdataVolumes, vb.issuer
		o.Compute = func(_ context.Context, _ string) (compute.Provider, error) {
			return noUserDataEdits{l.comp, l.comp, l.comp}, nil
		}
	})
	refused := func(what string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "compute.UserDataEditor") {
			t.Errorf("%s without user-data edits: %v; want a refusal naming compute.UserDataEditor", what, err)
		}
	}
	l.build("db")
	_, err := without.Start(t.Context(), "db", rollout.StartOptions{})
	refused("start", err)
	if err == nil || !strings.Contains(err.Error(), "secrets") {
		t.Errorf("the refusal of the start does not say why (the secrets): %v", err)
	}
	if ins, _ := l.comp.Instances(t.Context(), compute.Selector{rollout.LabelRole: "db"}); len(ins) != 0 {
		t.Errorf("the refused start launched %d instance(s)", len(ins))
	}

	// Deployed where it can be, then driven where it cannot.
	rec, err := withEdits.Start(t.Context(), "db", rollout.StartOptions{AutoPromote: new(true)})
	mustRecord(t, rec, err, rollout.Retired)
	img2 := l.build("db")
	rec, err = withEdits.Start(t.Context(), "db", rollout.StartOptions{AutoPromote: new(true)})
	mustRecord(t, rec, err, rollout.Promoted)
	green := l.instanceOf(t, img2)
	l.resetEvents()
	_, err = without.Rollback(t.Context(), "db")
	refused("rollback", err)
	if tr := l.transitions(); len(tr) != 0 {
		t.Errorf("the refused rollback moved the rollout: %v; want no transition", tr)
	}
	if v := l.volume(t); v.AttachedTo != green.ID || l.instanceOf(t, img2).State != compute.Running {
		t.Errorf("after the refused rollback the volume is on %q; want it on running green %s", v.AttachedTo, green.ID)
	}
	rec, err = withEdits.Rollback(t.Context(), "db")
	mustRecord(t, rec, err, rollout.RolledBack)
	if v := l.volume(t); v.AttachedTo == green.ID {
		t.Fatalf("after the rollback where it can be done the volume is still on green %s", green.ID)
	}
	_, err = without.SnapshotVolume(t.Context(), "db", "pgdata", rollout.SnapshotOptions{Stop: true})
	refused("snapshot --stop", err)
	_, err = without.RestoreVolume(t.Context(), "db", "pgdata", "snap-none")
	refused("restore", err)
}

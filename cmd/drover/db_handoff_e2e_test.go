//go:build e2e && lab

package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/qemu"
	"github.com/drover-dev/drover/rollout"
)

// TestE2EDBHandoff rolls out the example's db role (PostgreSQL on volume pgdata) on real lab VMs:
// rows written on blue are on green after promote and new writes land there; a rollback brings
// every row back to blue; a green whose PostgreSQL cannot start is rolled back by itself with blue
// serving the same data; drover killed (exit 137, the crash hook) after every step of a handoff and
// of a hand-back, then run again, converges with the volume on exactly one VM and no row lost;
// drover volumes snapshot --stop, then a restore of that snapshot, loses the row written between.
// Throughout, every VM's QMP query-block is polled: no two VMs ever have the volume. db keeps its
// Vault secret (a real Vault on loopback): every start of a stopped VM (rollback, hand-back,
// snapshot --stop, restore) needs the fresh wrapped SecretID drover writes into its user-data, as
// drover-boot fetches the secret before it waits for the volume. A rollback starts blue and waits
// for it to boot while green still serves: blue's boot is outside the unavailability.
func TestE2EDBHandoff(t *testing.T) {
	// It runs beside the package's other parallel e2e tests once the serial ones are done (two at a
	// time on two cores: takeLane gives GOMAXPROCS lanes), its lab on addresses of its own
	// (127.0.34.0/24).
	t.Parallel()
	takeLane(t)
	if os.Geteuid() != 0 {
		t.Fatal("the e2e handoff needs root (it builds images)")
	}
	begin := time.Now()
	fleetDir := t.TempDir()
	copyDir(t, "../../examples/homelab", fleetDir)
	fleetFile := filepath.Join(fleetDir, "drover.hcl")
	state := filepath.Join(fleetDir, ".drover")
	editFleet(t, fleetFile, `  accel  = "auto"
}`, `  accel   = "auto"
  network = "127.0.34.0/24"
}`)
	// A real Vault holds db's secret. No Knot: the cutover is "none" and the test reaches each
	// instance itself. The lab's client is trusted by pg_hba (lab only).
	srv, root, controllerToken := startLabVault(t)
	mustWrite(t, root, "kv/data/db/postgres", map[string]any{"data": map[string]any{"password": randomPassword(t)}})
	editFleet(t, fleetFile, `address = "http://127.0.0.1:8200"`, `address = "`+srv.Addr+`"`)
	vaultEnv := []string{"VAULT_TOKEN=" + controllerToken}
	editFleet(t, fleetFile, "    cutover \"dns\" {\n      dns  = \"home\"\n      name = \"db\"\n      ttl  = 30\n    }\n    volume \"pgdata\" {",
		"    watch    = \"5s\"\n    keep_old = \"1h\"\n    volume \"pgdata\" {")
	editFleet(t, fleetFile, "    health \"postgres\" {\n      port = 5432\n    }",
		"    health \"postgres\" {\n      port     = 5432\n      interval = \"500ms\"\n      deadline = \"4m\"\n    }")
	editFleet(t, fleetFile, "    # Makes the cluster on a blank volume",
		"    file \"/etc/postgresql/15/main/drover_hba.conf\" {\n      source = \"db/drover_hba.conf\"\n      owner  = \"postgres:postgres\"\n    }\n    # Makes the cluster on a blank volume")
	conf := filepath.Join(fleetDir, "db", "drover.conf")
	writeFile(t, filepath.Join(fleetDir, "db", "drover_hba.conf"), "local all postgres peer\nhost all all 0.0.0.0/0 trust\n")
	appendTo(t, conf, "hba_file = '/etc/postgresql/15/main/drover_hba.conf'\n")

	lab, err := qemu.New(qemu.NewDefaultConfig(os.LookupEnv), state)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { terminateAll(t, lab) })
	holders := startHolderPoll(t, lab, state)

	run := func(env []string, args ...string) result {
		t.Helper()
		return droverExec(t, append(env, vaultEnv...), append([]string{"--fleet", fleetFile}, args...)...)
	}
	must := func(args ...string) result {
		t.Helper()
		r := run(nil, args...)
		if r.code != 0 {
			t.Fatalf("drover %s: exit %d\n%s\n%s", strings.Join(args, " "), r.code, r.stdout, tail(r.stderr, 40))
		}
		return r
	}
	rows := func(in compute.Instance) []string {
		t.Helper()
		out, err := pgQuery(t.Context(), in.Endpoint(5432).String(), "SELECT n || ':' || tag FROM kept ORDER BY n")
		if err != nil {
			t.Fatalf("reading rows on %s: %v", in.ID, err)
		}
		var got []string
		for _, r := range out {
			got = append(got, r[0])
		}
		return got
	}
	exec := func(in compute.Instance, sql string) {
		t.Helper()
		if _, err := pgQuery(t.Context(), in.Endpoint(5432).String(), sql); err != nil {
			t.Fatalf("%s on %s: %v", sql, in.ID, err)
		}
	}
	serving := func() compute.Instance { return dbHolder(t, lab) }

	// First deploy: the volume is made, attached to green, formatted, the cluster made on it.
	must("build", "db")
	must("rollout", "start", "db")
	must("rollout", "promote", "db")
	blue := serving()
	exec(blue, "CREATE TABLE kept (n int PRIMARY KEY, tag text)")
	exec(blue, "INSERT INTO kept SELECT g, 'blue' FROM generate_series(1, 5) g")
	want := []string{"1:blue", "2:blue", "3:blue", "4:blue", "5:blue"}

	// A new image: green boots beside blue and waits; blue keeps the volume and serves.
	editFile(t, conf, "max_connections = 50", "max_connections = 51")
	must("build", "db")
	must("rollout", "start", "db")
	green := otherInstance(t, lab, blue.ID)
	waitConsole(t, green, "drover-boot: waiting for volume pgdata", time.Minute)
	if h := serving(); h.ID != blue.ID {
		t.Fatalf("at ready the volume is on %s, want blue %s", h.ID, blue.ID)
	}
	checkRows(t, "blue at ready", rows(blue), want)

	// Promote under a query loop: the handoff's unavailability and its parts.
	m := measureMove(t, fleetFile, vaultEnv, "promote", blue, green)
	t.Logf("promote: %s", m)
	if h := serving(); h.ID != green.ID {
		t.Fatalf("after promote the volume is on %s, want green %s", h.ID, green.ID)
	}
	checkRows(t, "green after promote", rows(green), want)
	exec(green, "INSERT INTO kept SELECT g, 'green' FROM generate_series(6, 8) g")
	want = append(want, "6:green", "7:green", "8:green")

	// Rollback: blue is started with a fresh credential and boots while green still serves; then
	// the volume goes back to blue; every row is there.
	m = measureMove(t, fleetFile, vaultEnv, "rollback", green, blue)
	t.Logf("rollback: %s", m)
	// Blue's boot is outside the unavailability: it was started before green's last answer, and
	// seen booted before green was stopped.
	if m.started.IsZero() || m.booted.IsZero() || !m.started.Before(m.lastFrom) || !m.booted.Before(m.stopped) {
		t.Errorf("rollback: blue started at %v and booted at %v, green answered last at %v and was stopped at %v: blue's boot is in the unavailability",
			m.started, m.booted, m.lastFrom, m.stopped)
	}
	if h := serving(); h.ID != blue.ID {
		t.Fatalf("after rollback the volume is on %s, want blue %s", h.ID, blue.ID)
	}
	checkRows(t, "blue after rollback", rows(blue), want)
	if len(liveInstances(t, lab, compute.Selector{rollout.LabelRole: "db"})) != 1 {
		t.Error("green not destroyed after the rollback")
	}

	// A green whose PostgreSQL cannot start on the data is rolled back by itself.
	editFile(t, conf, "max_connections = 51", "max_connections = 51\nshared_buffers = 'nonsense'")
	// The check's deadline counts from the volume's arrival on the booted green, where a healthy
	// PostgreSQL answers in seconds: waiting out 4 minutes for one that never will proves nothing more.
	editFleet(t, fleetFile, `deadline = "4m"`, `deadline = "90s"`)
	must("build", "db")
	must("rollout", "start", "db")
	broken := run(nil, "rollout", "promote", "db")
	if broken.code == 0 || !strings.Contains(broken.stderr, "handed back to blue") {
		t.Fatalf("promote of a green whose PostgreSQL cannot start: exit %d\n%s", broken.code, tail(broken.stderr, 30))
	}
	var handBack []string // the hand-back's steps, as drover printed them (seconds since the command began)
	for _, line := range strings.Split(broken.stdout+"\n"+broken.stderr, "\n") {
		if strings.Contains(line, "-> rolled-back") || strings.Contains(line, "handoff:") || strings.Contains(line, "health:") || strings.Contains(line, "rollback:") {
			handBack = append(handBack, strings.TrimSpace(line))
		}
	}
	t.Logf("failed promote and hand-back: exit %d in %s\n%s", broken.code, broken.elapsed.Round(time.Millisecond), strings.Join(handBack, "\n"))
	if h := serving(); h.ID != blue.ID {
		t.Fatalf("after the failed handoff the volume is on %s, want blue %s", h.ID, blue.ID)
	}
	checkRows(t, "blue after the failed handoff", rows(blue), want)

	// drover killed after every step of a handoff, each rerun resuming it, then of a hand-back.
	editFile(t, conf, "max_connections = 51\nshared_buffers = 'nonsense'", "max_connections = 51")
	editFleet(t, fleetFile, `deadline = "90s"`, `deadline = "4m"`)
	must("rollout", "start", "db")
	green = otherInstance(t, lab, blue.ID)
	for _, point := range []string{"cutting-over", "handoff-holder", "handoff-stop", "handoff-detach", "handoff-snapshot", "handoff-attach", "draining"} {
		if r := run([]string{rollout.CrashEnv + "=" + point}, "rollout", "promote", "db"); r.code != 137 {
			t.Fatalf("promote killed after %s: exit %d, want 137\n%s", point, r.code, tail(r.stderr, 20))
		}
		holders.atMostOne(t, "promote killed after "+point)
	}
	must("rollout", "promote", "db")
	if h := serving(); h.ID != green.ID {
		t.Fatalf("after the killed promotes the volume is on %s, want green %s", h.ID, green.ID)
	}
	checkRows(t, "green after the killed promotes", rows(green), want)
	exec(green, "INSERT INTO kept VALUES (9, 'resumed')")
	want = append(want, "9:resumed")
	for _, point := range []string{"rolled-back", "handoff-holder", "handoff-userdata", "handoff-start", "handoff-stop", "handoff-detach", "handoff-attach"} {
		if r := run([]string{rollout.CrashEnv + "=" + point}, "rollout", "rollback", "db"); r.code != 137 {
			t.Fatalf("rollback killed after %s: exit %d, want 137\n%s", point, r.code, tail(r.stderr, 20))
		}
		holders.atMostOne(t, "rollback killed after "+point)
	}
	must("rollout", "rollback", "db")
	if h := serving(); h.ID != blue.ID {
		t.Fatalf("after the killed rollbacks the volume is on %s, want blue %s", h.ID, blue.ID)
	}
	checkRows(t, "blue after the killed rollbacks", rows(blue), want)

	// drover volumes: the lab copies only a detached volume, so a snapshot is refused without
	// --stop; with it, blue is stopped for the copy and serves again. A row written after the
	// snapshot is gone after a restore of it, the older rows are there, and the volume it replaced
	// is kept aside.
	volStart := time.Now()
	if r := run(nil, "volumes", "snapshot", "db", "pgdata"); r.code != 1 || !strings.Contains(r.stderr, "--stop") {
		t.Fatalf("snapshot of the lab's volume in use: exit %d, want 1 and a hint naming --stop\n%s", r.code, tail(r.stderr, 20))
	}
	var taken struct{ Snapshot string }
	if r := must("--output", "json", "volumes", "snapshot", "db", "pgdata", "--stop", "--name", "e2e"); json.Unmarshal([]byte(r.stdout), &taken) != nil || taken.Snapshot == "" {
		t.Fatalf("snapshot --stop --output json: %s", r.stdout)
	}
	snapTime := time.Since(volStart)
	if h := serving(); h.ID != blue.ID {
		t.Fatalf("after snapshot --stop the volume is on %s, want blue %s", h.ID, blue.ID)
	}
	checkRows(t, "blue after the snapshot", rows(blue), want)
	exec(blue, "INSERT INTO kept VALUES (10, 'after-the-snapshot')")
	replaced := volumeOf(t, lab)
	restoreStart := time.Now()
	must("volumes", "restore", "db", "pgdata", taken.Snapshot)
	restoreTime := time.Since(restoreStart)
	if h := serving(); h.ID != blue.ID {
		t.Fatalf("after the restore the volume is on %s, want blue %s", h.ID, blue.ID)
	}
	if v := volumeOf(t, lab); v.ID == replaced.ID {
		t.Fatalf("after the restore volume %s still serves, want a new one", v.ID)
	}
	checkRows(t, "blue after the restore", rows(blue), want)
	aside, err := lab.Volumes(t.Context(), compute.Selector{rollout.LabelRole: "db", rollout.LabelReplaced: "pgdata"})
	if err != nil || len(aside) != 1 || aside[0].ID != replaced.ID || aside[0].AttachedTo != "" {
		t.Errorf("volumes set aside: %+v, %v; want %s, detached", aside, err, replaced.ID)
	}
	t.Logf("drover volumes snapshot --stop: %s; restore: %s; both: %s", snapTime.Round(time.Millisecond), restoreTime.Round(time.Millisecond), time.Since(volStart).Round(time.Millisecond))

	polls, most := holders.stop()
	if most > 1 {
		t.Errorf("QMP showed the volume in %d VMs at once", most)
	}
	t.Logf("QMP query-block polled %d times on every VM: at most %d VM(s) had the volume; wall time %s", polls, most, time.Since(begin).Round(time.Second))
}

func checkRows(t *testing.T, where string, got, want []string) {
	t.Helper()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("%s: rows %v, want %v", where, got, want)
	}
}

// dbHolder is the VM the db volume is attached to, as the provider reports it.
func dbHolder(t *testing.T, lab *qemu.Provider) compute.Instance {
	t.Helper()
	vols, err := lab.Volumes(context.Background(), compute.Selector{rollout.LabelRole: "db", rollout.LabelVolume: "pgdata"})
	if err != nil || len(vols) != 1 || vols[0].AttachedTo == "" {
		t.Fatalf("the db volume: %+v, %v; want one, attached", vols, err)
	}
	for _, in := range liveInstances(t, lab, compute.Selector{rollout.LabelRole: "db"}) {
		if in.ID == vols[0].AttachedTo {
			return in
		}
	}
	t.Fatalf("the db volume is on %s, which is not a live db instance", vols[0].AttachedTo)
	return compute.Instance{}
}

// otherInstance is the live db instance that is not id.
func otherInstance(t *testing.T, lab *qemu.Provider, id string) compute.Instance {
	t.Helper()
	for _, in := range liveInstances(t, lab, compute.Selector{rollout.LabelRole: "db"}) {
		if in.ID != id {
			return in
		}
	}
	t.Fatalf("no db instance besides %s", id)
	return compute.Instance{}
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(b)+s)
}

func editFile(t *testing.T, path, from, to string) { t.Helper(); editFleet(t, path, from, to) }

// volumeOf is the volume labelled as db's pgdata.
func volumeOf(t *testing.T, lab *qemu.Provider) compute.Volume {
	t.Helper()
	vols, err := lab.Volumes(context.Background(), compute.Selector{rollout.LabelRole: "db", rollout.LabelVolume: "pgdata"})
	if err != nil || len(vols) != 1 {
		t.Fatalf("the db volume: %+v, %v; want one", vols, err)
	}
	return vols[0]
}

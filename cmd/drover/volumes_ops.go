package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/urfave/cli/v2"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/rollout"
	"github.com/drover-dev/drover/rollout/health"
)

// snapshotNamePattern is what --name accepts: a label value every provider stores as it is.
var snapshotNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

func volumesSnapshotCommand(a *app) *cli.Command {
	return &cli.Command{
		Name:      "snapshot",
		Usage:     "take a snapshot of a role's volume now, labelled so drover volumes show lists it",
		ArgsUsage: "ROLE VOLUME",
		Description: `Takes a point-in-time copy of the volume that serves ROLE's data (VOLUME as its volume block
names it), labelled with the fleet, the role, the volume, who took it (taken-by), --name and
--description. drover volumes restore ROLE VOLUME SNAPSHOT goes back to it.

It takes the role's lock, so it never races a rollout, and is refused while a rollout of the role
is in flight (promote or abort it first, or wait for keep_old to pass).

Some providers cannot copy a volume that an instance is using: the lab (a qcow2 file that qemu
holds open) is one. The snapshot is then refused, and --stop takes it safely instead: the
role's instance is stopped (its services end: the role is down from here), the volume detached,
the copy made, then the instance started again, the volume attached and the role's health checks
run. Every step is recorded in the state store before it is done: a drover killed part way is
run again with the same command and finishes, with the volume back on the instance. A rollout
with snapshot_before = true takes one at each handoff, while the volume is detached anyway.

Examples:
  drover volumes snapshot db pgdata --name before-pg16 --description "before the upgrade"
  drover volumes snapshot db pgdata --stop        # on the lab
  drover volumes show db                          # lists it`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "name", Usage: "a name for people (letters, digits, . _ -; at most 63); default the operation's ID"},
			&cli.StringFlag{Name: "description", Usage: "a line of text for people (at most 255 characters)"},
			&cli.BoolFlag{Name: "stop", Usage: "stop the role's instance for the copy, then start it again with its volume (the role is down meanwhile)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usageError(fmt.Sprintf("drover volumes snapshot takes ROLE VOLUME, got %d arguments", c.NArg()), "for example: drover volumes snapshot db pgdata")
			}
			role, volume := c.Args().Get(0), c.Args().Get(1)
			if err := a.checkRoleVolume(c, role, volume); err != nil {
				return err
			}
			name, desc := c.String("name"), c.String("description")
			if name != "" && !snapshotNamePattern.MatchString(name) {
				return usageError(fmt.Sprintf("--name %q: want a letter or digit, then letters, digits, '.', '_' or '-', at most 63 in all", name), "for example --name before-pg16")
			}
			if len(desc) > 255 || strings.IndexFunc(desc, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
				return usageError(fmt.Sprintf("--description: want one line of at most 255 printable characters, got %d characters", len(desc)), "")
			}
			ctl, closeFn, err := a.controller(c)
			if err != nil {
				return err
			}
			defer closeFn()
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			op, err := ctl.SnapshotVolume(ctx, role, volume, rollout.SnapshotOptions{Name: name, Description: desc, Stop: c.Bool("stop")})
			if err != nil {
				return a.volumeOpFailed(c, role, op, err)
			}
			if a.json() {
				writeJSON(a.stdout, map[string]any{"ok": true, "role": role, "volume": volume, "snapshot": op.Snapshot, "operation": op})
				return nil
			}
			fmt.Fprintf(a.stdout, "%s/%s: snapshot %s of volume %s taken (%s); drover volumes restore %s %s %s goes back to it\n",
				role, volume, op.Snapshot, op.From.ID, op.ID, role, volume, op.Snapshot)
			return nil
		},
	}
}

func volumesRestoreCommand(a *app) *cli.Command {
	return &cli.Command{
		Name:      "restore",
		Usage:     "put a role's volume back to a snapshot (a new volume takes the old one's place; the old one is kept)",
		ArgsUsage: "ROLE VOLUME SNAPSHOT",
		Description: `Goes back to SNAPSHOT (an ID from drover volumes show ROLE): a new volume is made from it while
the role still serves; then the role's instance is stopped (the role is down from here), the
volume in service detached (confirmed by the provider) and set aside, the new volume labelled as
the role's, named in the instance's user-data, the instance started, the new volume attached,
and the role's health checks run. Writes made since the snapshot are not on the new volume.

Nothing is deleted: the volume taken out of service keeps its data and is listed by drover
volumes show as set aside; SNAPSHOT may also be such a volume's ID, which puts it back as it is.
If the instance fails its checks on the restored data, the volume in service before is put back
the same way, and the command fails saying so.

At no moment are two volumes labelled as the role's, nor a volume attached to two instances.
Every step is recorded in the state store before it is done: a drover killed part way is run
again with the same command and finishes; rollout commands of the role are refused until then.
drover volumes delete removes a set-aside volume once it is not needed. A restore takes the role's lock and is refused while a rollout of the role is in flight.

Providers: the lab (qemu), aws and vultr. A provider that cannot relabel a volume or change a stopped
instance's user-data is refused, naming what it lacks.

Examples:
  drover volumes show db                         # find the snapshot
  drover volumes restore db pgdata snap-0123456789ab
  drover volumes restore db pgdata vol-0123456789ab   # undo: the set-aside volume back`,
		Action: func(c *cli.Context) error {
			if c.NArg() != 3 {
				return usageError(fmt.Sprintf("drover volumes restore takes ROLE VOLUME SNAPSHOT, got %d arguments", c.NArg()), "drover volumes show ROLE lists the snapshots; for example: drover volumes restore db pgdata snap-0123456789ab")
			}
			role, volume, source := c.Args().Get(0), c.Args().Get(1), c.Args().Get(2)
			if err := a.checkRoleVolume(c, role, volume); err != nil {
				return err
			}
			ctl, closeFn, err := a.controller(c)
			if err != nil {
				return err
			}
			defer closeFn()
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			op, err := ctl.RestoreVolume(ctx, role, volume, source)
			if err != nil {
				return a.volumeOpFailed(c, role, op, err)
			}
			if a.json() {
				writeJSON(a.stdout, map[string]any{"ok": true, "role": role, "volume": volume, "source": source, "operation": op})
				return nil
			}
			on := "no instance holds it yet"
			if op.Instance != "" {
				on = "on " + op.Instance
			}
			fmt.Fprintf(a.stdout, "%s/%s: restored from %s: volume %s serves, %s; %s is set aside (drover volumes restore %s %s %s puts it back)\n",
				role, volume, source, op.To.ID, on, op.From.ID, role, volume, op.From.ID)
			return nil
		},
	}
}

func volumesDeleteCommand(a *app) *cli.Command {
	return &cli.Command{
		Name:      "delete",
		Usage:     "delete a snapshot of a role's volume, or a volume a restore set aside (never the one in service)",
		ArgsUsage: "ROLE VOLUME ID",
		Description: `Deletes ID, as drover volumes show ROLE lists it under VOLUME: a snapshot, or a volume a restore
set aside. The volume in service is refused, and so is anything show does not list there. The data
is gone for good.

Example:
  drover volumes delete db pgdata vol-0123456789ab`,
		Action: func(c *cli.Context) error {
			role, volume, id := c.Args().Get(0), c.Args().Get(1), c.Args().Get(2)
			if err := a.checkRoleVolume(c, role, volume); err != nil {
				return err
			}
			ctl, closeFn, err := a.controller(c)
			if err != nil {
				return err
			}
			defer closeFn()
			kind, err := ctl.DeleteSetAside(c.Context, role, volume, id)
			if err != nil {
				return a.volumeOpFailed(c, role, nil, err)
			}
			if a.json() {
				writeJSON(a.stdout, map[string]any{"ok": true, "role": role, "volume": volume, "deleted": id, "kind": kind})
				return nil
			}
			fmt.Fprintf(a.stdout, "%s/%s: %s %s deleted\n", role, volume, kind, id)
			return nil
		},
	}
}

// checkRoleVolume refuses a role that is not declared or has no volume VOLUME, naming those there are.
func (a *app) checkRoleVolume(c *cli.Context, role, volume string) error {
	f, err := a.requireFleet(c)
	if err != nil {
		return err
	}
	if err := checkRoles(f, []string{role}); err != nil {
		return err
	}
	r := f.Role(role)
	var names []string
	if r.Deploy != nil {
		for _, v := range r.Deploy.Volumes {
			if v.Name == volume {
				return nil
			}
			names = append(names, v.Name)
		}
	}
	if len(names) == 0 {
		return usageError(fmt.Sprintf("role %q has no volume in %s", role, f.Path), "drover volumes list names the roles with volumes")
	}
	return usageError(fmt.Sprintf("role %q has no volume %q", role, volume), "its volumes: "+strings.Join(names, ", "))
}

// volumeOpFailed turns a snapshot's or restore's error into output and an exit code.
func (a *app) volumeOpFailed(c *cli.Context, role string, op *rollout.VolumeOp, err error) error {
	var locked *rollout.LockedError
	var pending *rollout.VolumeOpPendingError
	var hf *health.Failure
	var f *fleet.Fleet
	comp := "the role's compute"
	if f, _ = a.requireFleet(c); f != nil && f.Role(role) != nil && f.Role(role).Deploy != nil {
		comp = fmt.Sprintf("compute %q", f.Role(role).Deploy.Compute)
	}
	switch {
	case errors.As(err, &locked):
		return failed(err, "wait for it to finish (--wait DURATION waits for the lock), or check drover rollout status "+role)
	case errors.As(err, &pending):
		return failed(err, "run the command it names: it resumes where it stopped")
	case errors.Is(err, rollout.ErrInProgress):
		return failed(err, "drover rollout status "+role+" shows it: promote or abort it (a promoted one keeps blue for keep_old; drover rollout tick "+role+" retires it once that passed), then run this again")
	case errors.Is(err, rollout.ErrNoSuchSource):
		return &failure{code: exitUsage, reason: err.Error(), hint: "drover volumes show " + role + " lists the snapshots and the volumes set aside", err: err}
	case errors.Is(err, rollout.ErrSnapshotNeedsStop):
		return failed(err, comp+" copies only a detached volume: --stop stops the role's instance for the copy (the role is down meanwhile), or set snapshot_before = true so that each rollout takes one while the volume is detached")
	case errors.As(err, &hf):
		if !a.json() {
			fmt.Fprintln(a.stderr, hf.Report())
		}
	}
	if op != nil && op.Unfinished() {
		return failed(err, fmt.Sprintf("%s is recorded at step %q; running the same command again resumes it (%s)", op.ID, op.Step, op.Command()))
	}
	return failed(err, "drover volumes show "+role+" shows where the volumes stand")
}

// setAsideView is a volume a restore took out of service, or made and then reverted.
type setAsideView struct {
	ID         string    `json:"id"`
	SizeGiB    int       `json:"size_gib"`
	Why        string    `json:"why"`     // replaced (by a restore) or restored (a restore reverted)
	Restore    string    `json:"restore"` // the restore operation
	AttachedTo string    `json:"attached_to,omitempty"`
	Created    time.Time `json:"created"`
}

// setAside lists the volumes set aside of a role's volume.
func setAside(ctx context.Context, vp compute.Volumes, fleetName, role, volume string) ([]setAsideView, error) {
	out := []setAsideView{}
	for label, why := range map[string]string{rollout.LabelReplaced: "replaced", rollout.LabelRestoring: "restored"} {
		vols, err := vp.Volumes(ctx, compute.Selector{rollout.LabelFleet: fleetName, rollout.LabelRole: role, label: volume})
		if err != nil {
			return nil, err
		}
		for _, v := range vols {
			out = append(out, setAsideView{ID: v.ID, SizeGiB: v.SizeGiB, Why: why, Restore: v.Labels[rollout.LabelRestoreOp], AttachedTo: v.AttachedTo, Created: v.Created})
		}
	}
	slices.SortFunc(out, func(a, b setAsideView) int { return a.Created.Compare(b.Created) })
	return out, nil
}

func writeSetAside(w io.Writer, v volumeView) error {
	if len(v.SetAside) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  SET ASIDE\tSIZE\tWHY\tBY RESTORE\tCREATED")
	for _, s := range v.SetAside {
		why := "replaced by a restore"
		if s.Why == "restored" {
			why = "made by a restore that was reverted"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", s.ID, sizeText(s.SizeGiB), why, orDash(s.Restore), s.Created.Local().Format(time.DateTime))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "  (drover volumes restore %s %s ID puts one back)\n", v.Role, v.Name)
	return err
}

package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/rollout"
)

func volumesCommand(a *app) *cli.Command {
	return &cli.Command{
		Name:  "volumes",
		Usage: "the roles' volumes and their snapshots: list, show, snapshot, restore, delete",
		Description: `A role's volumes are found by their labels (fleet, role, volume), never by an instance: the
handoff strategy moves them from blue to green. Snapshots are those taken before each handoff
(snapshot_before) and those taken with drover volumes snapshot. drover volumes restore goes back
to one: a new volume made from it takes the place of the one in service, which is set aside
(kept, listed by show, and restorable the same way).`,
		Subcommands: []*cli.Command{
			{
				Name:      "list",
				Usage:     "list the volumes of every role that declares some (or of ROLE)",
				ArgsUsage: "[ROLE]",
				Action: func(c *cli.Context) error {
					views, err := a.roleVolumes(c, c.Args().First())
					if err != nil {
						return err
					}
					if a.json() {
						writeJSON(a.stdout, views)
						return nil
					}
					tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "ROLE\tVOLUME\tID\tSIZE\tMOUNT\tATTACHED TO\tSNAPSHOTS")
					for _, v := range views {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", v.Role, v.Name, orDash(v.ID), sizeText(v.SizeGiB), v.Mount, orDash(v.AttachedTo), len(v.Snapshots))
					}
					return tw.Flush()
				},
			},
			{
				Name:      "show",
				Usage:     "show a role's volumes and each of their snapshots",
				ArgsUsage: "ROLE",
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usageError(fmt.Sprintf("drover volumes show takes ROLE, got %d arguments", c.NArg()), "drover volumes list names the roles with volumes")
					}
					views, err := a.roleVolumes(c, c.Args().First())
					if err != nil {
						return err
					}
					if a.json() {
						writeJSON(a.stdout, views)
						return nil
					}
					for i, v := range views {
						if i > 0 {
							fmt.Fprintln(a.stdout)
						}
						fmt.Fprintf(a.stdout, "%s/%s: %s, %s on %s, attached to %s\n", v.Role, v.Name, orDash(v.ID), sizeText(v.SizeGiB), v.Mount, orDash(v.AttachedTo))
						if v.ID == "" {
							fmt.Fprintln(a.stdout, "  not created yet: the role's first rollout creates it")
						}
						if len(v.Snapshots) == 0 {
							fmt.Fprintln(a.stdout, "  no snapshots")
						} else {
							tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
							fmt.Fprintln(tw, "  SNAPSHOT\tCREATED\tSTATE\tBEFORE ROLLOUT\tNAME\tTAKEN BY")
							for _, s := range v.Snapshots {
								fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Created.Local().Format(time.DateTime), s.State, orDash(s.Rollout), orDash(s.Name), orDash(s.TakenBy))
							}
							if err := tw.Flush(); err != nil {
								return err
							}
						}
						if err := writeSetAside(a.stdout, v); err != nil {
							return err
						}
					}
					return nil
				},
			},
			volumesSnapshotCommand(a),
			volumesRestoreCommand(a),
			volumesDeleteCommand(a),
		},
	}
}

// volumeView is one declared volume of a role, as its provider reports it (--output json too).
type volumeView struct {
	Role       string         `json:"role"`
	Name       string         `json:"name"`
	Mount      string         `json:"mount"`
	ID         string         `json:"id,omitempty"` // "" before the role's first rollout
	SizeGiB    int            `json:"size_gib"`
	AttachedTo string         `json:"attached_to,omitempty"`
	GuestPath  string         `json:"guest_path,omitempty"`
	Snapshots  []snapshotView `json:"snapshots"`
	// SetAside are volumes a restore took out of service (or made and reverted): kept with their
	// data, restorable with drover volumes restore ROLE VOLUME ID.
	SetAside []setAsideView `json:"set_aside"`
}

type snapshotView struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	State   string    `json:"state"`
	Rollout string    `json:"rollout,omitempty"` // the rollout it was taken before
	Name    string    `json:"name,omitempty"`    // drover volumes snapshot --name
	TakenBy string    `json:"taken_by,omitempty"`
	// Description is drover volumes snapshot --description.
	Description string `json:"description,omitempty"`
}

// roleVolumes asks each role's compute provider for the role's declared volumes (only ROLE's when
// it is not "").
func (a *app) roleVolumes(c *cli.Context, only string) ([]volumeView, error) {
	f, err := a.requireFleet(c)
	if err != nil {
		return nil, err
	}
	var roles []*fleet.Role
	for _, r := range f.Roles {
		if (only == "" || r.Name == only) && r.Deploy != nil && len(r.Deploy.Volumes) > 0 {
			roles = append(roles, r)
		}
	}
	if only != "" && len(roles) == 0 {
		return nil, usageError(fmt.Sprintf("role %q has no volume in %s", only, c.String("fleet")), "drover volumes list names the roles with volumes")
	}
	provs := a.newProviders(f, a.stateDir(c, f))
	views := []volumeView{}
	for _, r := range roles {
		p, err := provs.Compute(c.Context, r.Deploy.Compute)
		if err != nil {
			return nil, failed(fmt.Errorf("role %s: compute %q: %w", r.Name, r.Deploy.Compute, err), "")
		}
		vp, ok := p.(compute.Volumes)
		if !ok {
			return nil, failed(fmt.Errorf("role %s: compute %q cannot attach volumes", r.Name, r.Deploy.Compute), "")
		}
		for _, v := range r.Deploy.Volumes {
			sel := compute.Selector{rollout.LabelFleet: f.Name, rollout.LabelRole: r.Name, rollout.LabelVolume: v.Name}
			view := volumeView{Role: r.Name, Name: v.Name, Mount: v.Mount, SizeGiB: v.SizeGiB, Snapshots: []snapshotView{}, SetAside: []setAsideView{}}
			vols, err := vp.Volumes(c.Context, sel)
			if err != nil {
				return nil, failed(fmt.Errorf("role %s: volume %s: %w", r.Name, v.Name, err), "")
			}
			var ids []string
			for _, vol := range vols {
				ids = append(ids, vol.ID)
			}
			if len(vols) > 1 {
				return nil, failed(fmt.Errorf("role %s: %d volumes have the labels of volume %s: %s", r.Name, len(vols), v.Name, strings.Join(ids, ", ")),
					"find the one that holds the data and delete the others; a rollout refuses to choose")
			}
			if len(vols) == 1 {
				view.ID, view.SizeGiB, view.AttachedTo, view.GuestPath = vols[0].ID, vols[0].SizeGiB, vols[0].AttachedTo, vols[0].GuestPath
			}
			snaps, err := vp.VolumeSnapshots(c.Context, sel)
			if err != nil {
				return nil, failed(fmt.Errorf("role %s: snapshots of volume %s: %w", r.Name, v.Name, err), "")
			}
			for _, s := range snaps {
				view.Snapshots = append(view.Snapshots, snapshotView{ID: s.ID, Created: s.Created, State: s.State, Rollout: s.Labels[rollout.LabelRollout],
					Name: s.Labels[rollout.LabelSnapName], TakenBy: s.Labels[rollout.LabelTakenBy], Description: s.Labels[rollout.LabelDescription]})
			}
			if view.SetAside, err = setAside(c.Context, vp, f.Name, r.Name, v.Name); err != nil {
				return nil, failed(fmt.Errorf("role %s: volumes set aside of %s: %w", r.Name, v.Name, err), "")
			}
			views = append(views, view)
		}
	}
	return views, nil
}

func sizeText(gib int) string { return fmt.Sprintf("%d GiB", gib) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

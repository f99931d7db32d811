package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/plugins/store/local"
	"github.com/drover-dev/drover/rollout"
)

func imagesCommand(a *app) *cli.Command {
	return &cli.Command{
		Name:  "images",
		Usage: "the local image catalog: list, show, diff, prune",
		Description: `Images are named by their identity (the sha256 of their inputs). IMAGE is a role name (its newest
image), ROLE@PREFIX, sha256:HEX, or a hex prefix of at least 6 digits.`,
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "list the images in the catalog, newest first per role",
				Action: func(c *cli.Context) error {
					cat, err := a.catalog(c)
					if err != nil {
						return err
					}
					all, err := cat.List()
					if err != nil {
						return failed(err, "")
					}
					if a.json() {
						out := []map[string]any{}
						for _, m := range all {
							out = append(out, imageSummary(m))
						}
						writeJSON(a.stdout, out)
						return nil
					}
					tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "ROLE\tIMAGE\tCREATED\tPACKAGES\tARTIFACTS")
					for _, m := range all {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", m.Role, m.ShortID(), m.Created.Local().Format(time.DateTime), len(m.Packages), artifactSizes(m))
					}
					return tw.Flush()
				},
			},
			{
				Name:      "show",
				Usage:     "show an image's manifest: identity, artifacts, inputs, timings (--packages for the SBOM)",
				ArgsUsage: "IMAGE",
				Flags:     []cli.Flag{&cli.BoolFlag{Name: "packages", Usage: "list every installed package"}},
				Action: func(c *cli.Context) error {
					cat, m, err := a.resolveImage(c, c.Args().First())
					if err != nil {
						return err
					}
					if a.json() {
						writeJSON(a.stdout, m)
						return nil
					}
					printManifest(a, cat, m, c.Bool("packages"))
					return nil
				},
			},
			{
				Name:      "diff",
				Usage:     "what changed between two images: packages added, removed, changed; files changed",
				ArgsUsage: "IMAGE_A IMAGE_B",
				Action: func(c *cli.Context) error {
					if c.NArg() != 2 {
						return usageError("images diff takes two images", "drover images diff web@OLDPREFIX web")
					}
					cat, ma, err := a.resolveImage(c, c.Args().Get(0))
					if err != nil {
						return err
					}
					_, mb, err := a.resolveImage(c, c.Args().Get(1))
					if err != nil {
						return err
					}
					d, err := cat.DiffImages(ma, mb)
					if err != nil {
						return failed(err, "")
					}
					if a.json() {
						writeJSON(a.stdout, d)
						return nil
					}
					printDiff(a, ma, mb, d)
					return nil
				},
			},
			{
				Name:  "prune",
				Usage: "remove old images, keeping the newest N per role and every image a rollout still uses",
				Flags: []cli.Flag{&cli.IntFlag{Name: "keep", Value: 3, Usage: "images to keep per role"}},
				Action: func(c *cli.Context) error {
					if c.Int("keep") < 1 {
						return usageError("--keep must be at least 1", "")
					}
					cat, err := a.catalog(c)
					if err != nil {
						return err
					}
					inUse, err := a.imagesInUse(c)
					if err != nil {
						return failed(err, "the state store could not be read; nothing was removed")
					}
					removed, err := cat.Prune(c.Int("keep"), func(id string) bool { return inUse[id] })
					if err != nil {
						return failed(err, "")
					}
					if a.json() {
						out := []map[string]any{}
						for _, m := range removed {
							out = append(out, imageSummary(m))
						}
						writeJSON(a.stdout, map[string]any{"removed": out})
						return nil
					}
					for _, m := range removed {
						fmt.Fprintf(a.stdout, "removed %s@%s\n", m.Role, m.ShortID())
					}
					fmt.Fprintf(a.stdout, "%d image(s) removed\n", len(removed))
					return nil
				},
			},
		},
	}
}

// imagesInUse reads the images that live or kept rollouts run (the rollout controller marks them in
// the state store); prune never removes those.
func (a *app) imagesInUse(c *cli.Context) (map[string]bool, error) {
	cfg := storeConfig(nil, a.stateDir(c, nil))
	if !fileExists(cfg.Path) {
		return map[string]bool{}, nil
	}
	st, err := local.New(cfg)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	marks, err := rollout.ImagesInUse(c.Context, st)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for id := range marks {
		out[id] = true
	}
	return out, nil
}

// catalog opens the catalog of the state directory; the fleet file is not needed to read it.
func (a *app) catalog(c *cli.Context) (*images.Catalog, error) {
	return images.OpenCatalog(a.stateDir(c, nil)), nil
}

func (a *app) resolveImage(c *cli.Context, ref string) (*images.Catalog, *images.Manifest, error) {
	if ref == "" {
		return nil, nil, usageError("name an image", "drover images list shows them; IMAGE is a role, ROLE@PREFIX or a hex prefix")
	}
	cat, err := a.catalog(c)
	if err != nil {
		return nil, nil, err
	}
	m, err := cat.Resolve(ref)
	if err != nil {
		return nil, nil, failed(err, "drover images list shows the images there are")
	}
	return cat, m, nil
}

func imageSummary(m *images.Manifest) map[string]any {
	return map[string]any{"role": m.Role, "identity": m.Identity, "artifact_sha256": m.ArtifactSHA256,
		"created": m.Created, "arch": m.Arch, "artifacts": m.Artifacts, "packages": len(m.Packages)}
}

func printManifest(a *app, cat *images.Catalog, m *images.Manifest, packages bool) {
	w := a.stdout
	fmt.Fprintf(w, "image      %s\nrole       %s (%s)\ncreated    %s\nartifact   sha256:%s\nkernel     %s\ncmdline    %s\ndirectory  %s\n",
		m.Identity, m.Role, m.Arch, m.Created.Local().Format(time.RFC3339), m.ArtifactSHA256, m.Kernel, m.Cmdline, cat.ImageDir(m.Identity))
	fmt.Fprintf(w, "sizes      tree %s, root partition %s, ESP %s, disk %s\n", humanBytes(m.Sizes.TreeBytes),
		humanBytes(m.Sizes.RootBytes), humanBytes(m.Sizes.ESPBytes), humanBytes(m.Sizes.DiskBytes))
	for _, art := range m.Artifacts {
		fmt.Fprintf(w, "artifact   %-6s %s (%s in use of %s)\n", art.Format, art.File, humanBytes(art.Size), humanBytes(art.Length))
	}
	in := m.Inputs
	fmt.Fprintf(w, "base       %s %s %s%s\n", in.Base.Suite, in.Base.Arch, in.Base.Mirror, map[bool]string{true: " snapshot " + in.Base.Snapshot}[in.Base.Snapshot != ""])
	fmt.Fprintf(w, "packages   %d installed; role asks for %s\n", len(m.Packages), strings.Join(in.Packages, " "))
	for _, f := range in.Files {
		fmt.Fprintf(w, "file       %s %s %s sha256:%s\n", f.Dest, f.Mode, f.Owner, f.SHA256[:12])
	}
	var steps []string
	for _, s := range m.Steps {
		steps = append(steps, fmt.Sprintf("%s %.1fs", s.Name, s.Seconds))
	}
	fmt.Fprintf(w, "steps      %s\nbuild log  %s\n", strings.Join(steps, ", "), cat.ImageDir(m.Identity)+"/"+m.BuildLog)
	if packages {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, p := range m.Packages {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", p.Name, p.Version, p.Arch)
		}
		_ = tw.Flush()
	}
}

func printDiff(a *app, ma, mb *images.Manifest, d *images.Diff) {
	w := a.stdout
	fmt.Fprintf(w, "--- %s@%s\n+++ %s@%s\n", ma.Role, ma.ShortID(), mb.Role, mb.ShortID())
	for _, p := range d.Added {
		fmt.Fprintf(w, "+ package %s %s\n", p.Name, p.Version)
	}
	for _, p := range d.Removed {
		fmt.Fprintf(w, "- package %s %s\n", p.Name, p.Version)
	}
	for _, p := range d.Changed {
		fmt.Fprintf(w, "~ package %s %s -> %s\n", p.Name, p.From, p.To)
	}
	for _, f := range d.Files {
		fmt.Fprintf(w, "%s file %s\n", map[string]string{"added": "+", "removed": "-", "changed": "~"}[f.Change], f.Path)
	}
	fmt.Fprintf(w, "%d package(s) added, %d removed, %d changed; %d file(s) changed\n", len(d.Added), len(d.Removed), len(d.Changed), len(d.Files))
}

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/images/scan"
	"github.com/drover-dev/drover/plugins/config"
	"github.com/drover-dev/drover/plugins/secrets"
	"github.com/drover-dev/drover/rollout"
)

func imagesCommand(a *app) *cli.Command {
	return &cli.Command{
		Name:  "images",
		Usage: "the image catalog (shared through the fleet's etcd store): list, show, diff, scan, publish, write, prune",
		Description: `Images are named by their identity (the sha256 of their inputs). IMAGE is a role name (its newest
image), ROLE@PREFIX, sha256:HEX, or a hex prefix of at least 6 digits.`,
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "list the images in the catalog, newest first per role",
				Description: `With a fleet whose store a team shares (store "etcd"), the list holds every image the team
built: one built on another machine, whose disk is not here, is marked with * ("disk_here": false
with --output json). Rollouts of such an image work on compute blocks that boot their own copy.`,
				Action: func(c *cli.Context) error {
					cat, err := a.catalog(c)
					if err != nil {
						return err
					}
					all, err := cat.List()
					if err != nil {
						return failed(err, "")
					}
					published := make([][]images.PublishedRef, len(all))
					for i, m := range all {
						if published[i], err = cat.Published(m.Identity); err != nil {
							return failed(err, "")
						}
					}
					if a.json() {
						out := []map[string]any{}
						for i, m := range all {
							s := imageSummary(m)
							s["published"] = nonNil(published[i])
							s["disk_here"] = !m.DiskElsewhere()
							out = append(out, s)
						}
						writeJSON(a.stdout, out)
						return nil
					}
					tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "ROLE\tIMAGE\tCREATED\tPACKAGES\tARTIFACTS\tPUBLISHED")
					elsewhere := 0
					for i, m := range all {
						id := m.ShortID()
						if m.DiskElsewhere() {
							id += "*"
							elsewhere++
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", m.Role, id, m.Created.Local().Format(time.DateTime), len(m.Packages), artifactSizes(m), publishedBlocks(published[i]))
					}
					if err := tw.Flush(); err != nil {
						return err
					}
					if elsewhere > 0 {
						fmt.Fprintf(a.stdout, "* built on another machine (the state store records it): its disk is not here\n")
					}
					return nil
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
					published, err := cat.Published(m.Identity)
					if err != nil {
						return failed(err, "")
					}
					if a.json() {
						writeJSON(a.stdout, struct {
							*images.Manifest
							Published []images.PublishedRef `json:"published"`
						}{m, nonNil(published)})
						return nil
					}
					printManifest(a, cat, m, published, c.Bool("packages"))
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
			imagesScanCommand(a),
			imagesPublishCommand(a),
			imagesWriteCommand(a),
			{
				Name:  "prune",
				Usage: "remove old images and their published copies, keeping the newest N per role and every image a rollout still uses",
				Description: `An image beyond the newest --keep of its role is removed from the catalog, unless a live or kept
rollout still uses it. Its published copies (drover images show lists them) are deleted first,
through the compute blocks they were published on, which needs the fleet file; an image whose copy
cannot be deleted is kept, and listed with the reason, so nothing published is ever forgotten.`,
				Flags:  []cli.Flag{&cli.IntFlag{Name: "keep", Value: 3, Usage: "images to keep per role"}},
				Action: func(c *cli.Context) error { return a.imagesPrune(c) },
			},
		},
	}
}

// pruneFleet is the fleet file prune works with, when there is one (nil and no error when there is
// none). The rollouts are in the fleet's store: with a fleet file that does not load, which store
// that is cannot be known, and nothing may be called unused.
func (a *app) pruneFleet(c *cli.Context) (*fleet.Fleet, error) {
	path := c.String("fleet")
	if !fileExists(path) {
		return nil, nil
	}
	f, diags, err := a.loadFleet(c)
	if err != nil || diags.HasErrors() {
		return nil, fmt.Errorf("%s has errors (drover validate shows them), so the state store its rollouts are in is not known", path)
	}
	return f, nil
}

// imagesInUse reads the images that live or kept rollouts run (the rollout controller marks them in
// the state store of f, the default one when f is nil); prune never removes those.
func (a *app) imagesInUse(ctx context.Context, c *cli.Context, f *fleet.Fleet) (map[string]bool, error) {
	st, err := a.openStore(ctx, f, a.stateDir(c, f))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	marks, err := rollout.ImagesInUse(ctx, st)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for id := range marks {
		out[id] = true
	}
	return out, nil
}

// catalog opens the catalog of the state directory; the fleet file is not needed to read it. When
// there is one whose store a team shares, the catalog is shared through it (shareCatalog).
func (a *app) catalog(c *cli.Context) (*images.Catalog, error) {
	f, _ := a.optionalFleet(c)
	return a.shareCatalog(c, f, images.OpenCatalog(a.stateDir(c, nil)))
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
	out := map[string]any{"role": m.Role, "identity": m.Identity, "artifact_sha256": m.ArtifactSHA256,
		"created": m.Created, "arch": m.Arch, "artifacts": m.Artifacts, "packages": len(m.Packages)}
	if m.Refresh != nil {
		out["refresh"] = m.Refresh
	}
	return out
}

func printManifest(a *app, cat *images.Catalog, m *images.Manifest, published []images.PublishedRef, packages bool) {
	w := a.stdout
	fmt.Fprintf(w, "image      %s\nrole       %s (%s)\ncreated    %s\nartifact   sha256:%s\nkernel     %s\ncmdline    %s\ndirectory  %s\n",
		m.Identity, m.Role, m.Arch, m.Created.Local().Format(time.RFC3339), m.ArtifactSHA256, m.Kernel, m.Cmdline, cat.Where(m))
	fmt.Fprintf(w, "sizes      tree %s, root partition %s, ESP %s, disk %s\n", images.HumanBytes(m.Sizes.TreeBytes),
		images.HumanBytes(m.Sizes.RootBytes), images.HumanBytes(m.Sizes.ESPBytes), images.HumanBytes(m.Sizes.DiskBytes))
	for _, art := range m.Artifacts {
		fmt.Fprintf(w, "artifact   %-6s %s (%s in use of %s)\n", art.Format, art.File, images.HumanBytes(art.Size), images.HumanBytes(art.Length))
	}
	if c := m.Card; c != nil {
		for _, s := range c.Slots {
			fmt.Fprintf(w, "slot       %s: boot partition %d, root partition %d (PARTUUID %s)\n", strings.ToUpper(s.Name), s.BootPartition, s.RootPartition, s.RootPARTUUID)
		}
		fmt.Fprintf(w, "data       partition %d, kept across updates\n", c.DataPartition)
		for _, p := range c.BundleParts {
			fmt.Fprintf(w, "bundle     %s/%s: slot %s filesystem, %s, sha256:%s\n", c.Bundle, p.File, p.Role, images.HumanBytes(p.Size), p.SHA256)
		}
	}
	in := m.Inputs
	fmt.Fprintf(w, "base       %s %s %s%s\n", in.Base.Suite, in.Base.Arch, in.Base.Mirror, map[bool]string{true: " snapshot " + in.Base.Snapshot}[in.Base.Snapshot != ""])
	for _, src := range in.Base.Sources {
		fmt.Fprintf(w, "source     %s %s\n", src.URL, src.Suite)
	}
	for _, r := range in.Repositories {
		fmt.Fprintf(w, "repository %s %s %s %s key sha256:%s\n", r.Name, r.URI, r.Suite, strings.Join(r.Components, " "), r.Key[:min(12, len(r.Key))])
	}
	if in.Base.UpdatesOffReason != "" {
		fmt.Fprintf(w, "updates    off: %s\n", in.Base.UpdatesOffReason)
	}
	fmt.Fprintf(w, "packages   %d installed; role asks for %s\n", len(m.Packages), strings.Join(in.Packages, " "))
	if m.Refresh != nil {
		fmt.Fprintf(w, "refresh    of %s: %s\n", images.ShortID(m.Refresh.Predecessor), m.Refresh.Summary(10))
	}
	for _, c := range in.Containers {
		fmt.Fprintf(w, "container  %s %s@%s (%s)\n", c.Name, c.Image, c.Digest, c.Engine)
	}
	for _, f := range in.Files {
		fmt.Fprintf(w, "file       %s %s %s sha256:%s\n", f.Dest, f.Mode, f.Owner, f.SHA256[:12])
	}
	var steps []string
	for _, s := range m.Steps {
		steps = append(steps, fmt.Sprintf("%s %.1fs", s.Name, s.Seconds))
	}
	buildLog := cat.ImageDir(m.Identity) + "/" + m.BuildLog
	if m.DiskElsewhere() {
		buildLog = "(on the machine that built it)"
	}
	fmt.Fprintf(w, "steps      %s\nbuild log  %s\n", strings.Join(steps, ", "), buildLog)
	for _, r := range published {
		fmt.Fprintf(w, "published  %s (%s) %s%s, made %s\n", r.Compute, r.Type, r.ID, inRegionText(r.Region), r.Created.Local().Format(time.DateTime))
	}
	if len(published) == 0 {
		fmt.Fprintln(w, "published  nowhere (clouds get a copy at their first rollout, or from drover images publish)")
	}
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

func imagesScanCommand(a *app) *cli.Command {
	return &cli.Command{
		Name:      "scan",
		Usage:     "look for secrets in an image: private keys, tokens, passwords; and the role's Vault values",
		ArgsUsage: "IMAGE | --rules",
		Description: `Runs the secret scan that every build runs before making the disk, on an image of the catalog:
its root filesystem is copied out of the raw disk with debugfs (e2fsprogs; no mount, no root) into a
temporary directory, scanned and removed. The rules find private keys; AWS, Vault, GitHub, GitLab, Slack,
Cloudflare, npm, PyPI, Google API, Stripe and SendGrid keys and tokens; password hashes in
/etc/shadow; passwords in .pgpass, .netrc, Wi-Fi, configuration files and URLs; and high-entropy
values assigned to names like API_KEY (drover images scan --rules lists them); findings show at most the first 4 characters of a secret.

When the fleet has a vault block and the image's role declares secrets, the role's values are read
from Vault and looked for, as bytes, in the tree and anywhere on the raw disk; they are never
printed (a finding says "value of secret #N" and a sha256 prefix). They are read from the role's
declared paths with DROVER_SCAN_VAULT_TOKEN (or _FILE) when set, else VAULT_TOKEN, which as the
controller's token should not be able to (drover vault policy). Without a vault, a token, or a token
that may read them, the values are not looked for, and the output says so; Vault unreachable is an
error.

The allowlist is drover-scan-allow next to the fleet file when there is one (--allowlist names
another): a path glob per line, or RULE:GLOB to silence one rule at one place.

Exit status: 0 no finding, 1 findings (or the scan failed), 2 bad arguments.

Examples:
   drover images scan web
   drover images scan web@3f2a9c --output json | jq '.findings[]'`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "allowlist", Usage: "allowlist file (default: " + scan.AllowlistName + " next to the fleet file, if there)"},
			&cli.StringFlag{Name: "tmp-dir", EnvVars: []string{"TMPDIR"}, Usage: "where the image's tree is copied to while it is scanned (it needs the tree's size)"},
			&cli.BoolFlag{Name: "rules", Usage: "list the rules (their names are what an allowlist's RULE: lines take) and exit"},
		},
		Action: func(c *cli.Context) error { return a.imagesScan(c) },
	}
}

// openSecrets opens the fleet's vault block as a secrets.Broker with the token that reads the roles'
// secret values for the image scan (openScanVault: DROVER_SCAN_VAULT_TOKEN, else VAULT_TOKEN); tests
// replace it. A broker that has ReadValues (the Vault one) is asked for the role's declared paths,
// another for Values.
var openSecrets func(ctx context.Context, f *fleet.Fleet, env config.LookupEnv) (secrets.Broker, error) = openScanVault

// scanOutput is images scan's result, as --output json prints it.
type scanOutput struct {
	Image     string         `json:"image"`
	Role      string         `json:"role"`
	OK        bool           `json:"ok"`
	Findings  []scan.Finding `json:"findings"`
	Allowlist string         `json:"allowlist,omitempty"`
	Tree      struct {
		Files       int     `json:"files"`
		Bytes       int64   `json:"bytes"`
		Skipped     int     `json:"skipped"` // not read by the rules: binary, large or allowlisted
		Allowlisted int     `json:"allowlisted"`
		Seconds     float64 `json:"seconds"`
	} `json:"tree"`
	Disk struct {
		Path    string  `json:"path"`
		Checked bool    `json:"checked"` // the role's secret values were looked for
		Values  int     `json:"values"`
		Bytes   int64   `json:"bytes"`
		Seconds float64 `json:"seconds"`
		Note    string  `json:"note,omitempty"` // why the values were not looked for
	} `json:"disk"`
}

func (a *app) imagesScan(c *cli.Context) error {
	if c.Bool("rules") {
		rules := append(scan.Rules(), scan.RuleInfo{Name: scan.RuleForbidden, Description: "a value of one of the role's secrets in Vault, anywhere in the tree or on the raw disk (compared as bytes, never printed)"})
		if a.json() {
			writeJSON(a.stdout, map[string]any{"rules": rules})
			return nil
		}
		for _, r := range rules {
			fmt.Fprintf(a.stdout, "%-18s %s\n", r.Name, r.Description)
		}
		return nil
	}
	if c.NArg() != 1 {
		return usageError("images scan takes one image", "drover images scan web; drover images list shows the images")
	}
	allow := c.String("allowlist")
	if allow != "" && !fileExists(allow) {
		return usageError(fmt.Sprintf("--allowlist %s does not exist", allow), "")
	}
	cat, m, err := a.resolveImage(c, c.Args().First())
	if err != nil {
		return err
	}
	name := m.Role + "@" + m.ShortID()
	art := m.Artifact("raw")
	if art == nil {
		return failed(fmt.Errorf("image %s has no raw disk to scan", name), "rebuild it: drover build --force "+m.Role)
	}
	raw := filepath.Join(cat.ImageDir(m.Identity), art.File)
	if !fileExists(raw) {
		return failed(fmt.Errorf("image %s: its raw disk %s is missing", name, raw), "rebuild it: drover build --force "+m.Role)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()

	f, fleetNote := a.optionalFleet(c)
	if allow == "" {
		p := filepath.Join(filepath.Dir(c.String("fleet")), scan.AllowlistName)
		if f != nil {
			p = images.ScanAllowlistPath(f)
		}
		if fileExists(p) {
			allow = p
		}
	}
	values, note, err := a.roleSecretValues(ctx, f, fleetNote, m.Role)
	if err != nil {
		return failed(err, "check that Vault is up at the vault block's address, and the token (DROVER_SCAN_VAULT_TOKEN, else VAULT_TOKEN)")
	}

	out := scanOutput{Image: m.Identity, Role: m.Role, Allowlist: allow, Findings: []scan.Finding{}}
	out.Disk.Path, out.Disk.Note = raw, note
	opts := scan.Options{AllowlistFile: allow, Forbidden: values}
	if len(values) > 0 {
		dr, err := scan.ScanFile(ctx, raw, opts)
		if err != nil {
			return failed(err, "")
		}
		out.Disk.Checked, out.Disk.Values, out.Disk.Bytes, out.Disk.Seconds = true, dr.ForbiddenChecked, dr.BytesScanned, dr.Duration.Seconds()
		if dr.ForbiddenSkipped > 0 {
			out.Disk.Note = fmt.Sprintf("%d value(s) shorter than %d bytes not looked for", dr.ForbiddenSkipped, scan.DefaultMinForbidden)
		}
		out.Findings = append(out.Findings, dr.Findings...)
	}

	tmp, err := os.MkdirTemp(c.String("tmp-dir"), "drover-scan-")
	if err != nil {
		return failed(err, "--tmp-dir names where the image's tree is copied to")
	}
	defer os.RemoveAll(tmp)
	if err := scan.ExtractRoot(ctx, raw, tmp); err != nil {
		return failed(err, "debugfs comes with e2fsprogs; the temporary directory needs room for the image's tree ("+images.HumanBytes(m.Sizes.TreeBytes)+")")
	}
	tr, err := scan.Scan(ctx, tmp, opts)
	if err != nil {
		return failed(err, "")
	}
	out.Tree.Files, out.Tree.Bytes, out.Tree.Skipped, out.Tree.Allowlisted, out.Tree.Seconds =
		tr.FilesScanned, tr.BytesScanned, tr.FilesSkipped, tr.Suppressed, tr.Duration.Seconds()
	out.Findings = append(tr.Findings, out.Findings...) // the tree's (sorted by path), then the disk's
	out.OK = len(out.Findings) == 0

	if a.json() {
		writeJSON(a.stdout, out)
	} else {
		printScan(a, name, out)
	}
	if out.OK {
		return nil
	}
	where := scan.AllowlistName + " next to the fleet file"
	if allow != "" {
		where = allow
	}
	return &failure{code: exitFailure, printedJSON: a.json(),
		reason: fmt.Sprintf("%d secret(s) found in %s", len(out.Findings), name),
		hint: "secrets belong in Vault, fetched at boot: take them out of the role's files and rebuild; " +
			"if a finding is harmless, add RULE:PATH (such as " + out.Findings[0].Rule + ":" + out.Findings[0].Path + ") to " + where}
}

// optionalFleet loads the fleet file when there is one: images scan works without it, and says what it
// could not check. The note says why there is no fleet.
func (a *app) optionalFleet(c *cli.Context) (*fleet.Fleet, string) {
	path := c.String("fleet")
	if !fileExists(path) {
		return nil, fmt.Sprintf("no fleet file (%s), so no vault to read the role's secret values from", path)
	}
	f, diags, err := a.loadFleet(c)
	if err != nil || diags.HasErrors() {
		return nil, fmt.Sprintf("%s has errors (drover validate shows them), so no vault to read the role's secret values from", path)
	}
	return f, ""
}

// roleSecretValues reads the role's values from the fleet's Vault: from the paths the role declares
// (so a role that was never rolled out is checked too), with the scan token (DROVER_SCAN_VAULT_TOKEN,
// else VAULT_TOKEN). With no Vault to read them from, no token, or a token that may not read them
// (the controller's, by design: drover vault policy) it returns none and a note saying why. Anything
// else (Vault unreachable, a token that is not valid, a declared path with nothing in it) is an error.
func (a *app) roleSecretValues(ctx context.Context, f *fleet.Fleet, fleetNote, role string) ([]secrets.Secret, string, error) {
	var paths []string
	if f != nil && f.Role(role) != nil {
		paths = f.Role(role).Image.SecretPaths()
	}
	switch {
	case f == nil:
		return nil, fleetNote, nil
	case f.Vault == nil:
		return nil, fmt.Sprintf("%s has no vault block: the role's secret values were not looked for", f.Path), nil
	case len(paths) == 0:
		return nil, fmt.Sprintf("role %q declares no secrets: no values to look for", role), nil
	case openSecrets == nil:
		return nil, "this drover cannot read Vault: the role's secret values were not looked for", nil
	}
	b, err := openSecrets(ctx, f, a.env)
	if errors.Is(err, errNoScanToken) {
		return nil, err.Error(), nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("opening vault: %w", err)
	}
	var values []secrets.Secret
	if r, ok := b.(secrets.PathReader); ok {
		values, err = r.ReadValues(ctx, paths)
	} else {
		values, err = b.Values(ctx, role)
	}
	var denied *secrets.DeniedError
	if errors.As(err, &denied) {
		_, tokenVar, _ := scanToken(a.env)
		return nil, deniedNote(tokenVar, denied.Path), nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("reading role %q's secret values from Vault: %w", role, err)
	}
	return values, "", nil
}

func printScan(a *app, name string, out scanOutput) {
	w := a.stdout
	fmt.Fprintf(w, "image      %s (%s)\n", name, out.Image)
	allow := "the default one"
	if out.Allowlist != "" {
		allow = out.Allowlist + " and the default one"
	}
	fmt.Fprintf(w, "allowlist  %s\n", allow)
	fmt.Fprintf(w, "tree       %d files, %s read in %s; %d not read by the rules (binary, large or allowlisted), %d finding(s) allowlisted\n",
		out.Tree.Files, images.HumanBytes(out.Tree.Bytes), round(time.Duration(out.Tree.Seconds*float64(time.Second))), out.Tree.Skipped, out.Tree.Allowlisted)
	if out.Disk.Checked {
		fmt.Fprintf(w, "disk       %d secret value(s) looked for in %s of %s in %s", out.Disk.Values, images.HumanBytes(out.Disk.Bytes),
			filepath.Base(out.Disk.Path), round(time.Duration(out.Disk.Seconds*float64(time.Second))))
		if out.Disk.Note != "" {
			fmt.Fprintf(w, "; %s", out.Disk.Note)
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintf(w, "disk       not checked: %s\n", out.Disk.Note)
	}
	if out.OK {
		fmt.Fprintln(w, "no secrets found")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE\tLINE\tRULE\tEXCERPT")
	for _, f := range out.Findings {
		file, line := f.Path, "-"
		if f.Path == out.Disk.Path {
			file = fmt.Sprintf("%s@%d", filepath.Base(f.Path), f.Offset)
		}
		if f.Line > 0 {
			line = fmt.Sprint(f.Line)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", file, line, f.Rule, f.Excerpt)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "%d finding(s)\n", len(out.Findings))
}

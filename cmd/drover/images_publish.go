package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/plugins/compute"
)

func imagesPublishCommand(a *app) *cli.Command {
	return &cli.Command{
		Name:      "publish",
		Usage:     "copy an image to a compute block that boots its own copy (a cloud); once per image and region",
		ArgsUsage: "ROLE|IMAGE --to COMPUTE",
		Description: `Uploads the image's raw disk to the compute block's platform, which makes its own bootable copy of
it (an AMI, a custom image), and records the copy in the catalog (drover images show lists it).
Rollouts on such a block publish the image themselves when it is not there yet; this command does it
ahead of time, from CI for example.

Publishing is idempotent by the image's identity: when the platform already has a copy, nothing is
uploaded. An interrupted publish is resumed or started over by running the command again, as each
provider documents; no half-made copy is ever launched from.

A compute block that boots the catalog's local disk file (the lab's qemu) has nothing to publish:
the command refuses it with exit status 2.

With --output json, one JSON object per line: a "publish" event, "progress" events (phase, bytes
done and total, rate), and a "published" event with the reference.

Examples:
   drover images publish --to prod web
   drover images publish --to prod web@3f2a9c --output json`,
		Flags:  []cli.Flag{&cli.StringFlag{Name: "to", Usage: "the compute block to publish to"}},
		Action: func(c *cli.Context) error { return a.imagesPublish(c) },
	}
}

func (a *app) imagesPublish(c *cli.Context) error {
	to := c.String("to")
	switch {
	case to == "":
		return usageError("name the compute block to publish to with --to", "drover images publish --to COMPUTE "+orImage(c.Args().First()))
	case c.NArg() != 1:
		return usageError("images publish takes one image", "drover images publish --to "+to+" web; drover images list shows the images")
	}
	f, err := a.requireFleet(c)
	if err != nil {
		return err
	}
	blk := f.Provider(fleet.KindCompute, to)
	if blk == nil {
		return usageError(fmt.Sprintf("--to %s: %s has no compute block %q", to, f.Path, to), "its compute blocks: "+computeNames(f))
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	prov, err := a.newProviders(f, a.stateDir(c, f)).Compute(ctx, to)
	if err != nil {
		return failed(err, "")
	}
	pub, ok := prov.(compute.Publisher)
	if !ok {
		return usageError(fmt.Sprintf("compute %q (type %s) boots the image's local disk file from the catalog: there is nothing to publish to it", to, blk.Type),
			"rollouts on it use the catalog's disk as it is; publish to a compute block that boots its own copy of an image (a cloud)")
	}
	cat, err := a.shareCatalog(c, f, images.OpenCatalog(a.stateDir(c, f)))
	if err != nil {
		return err
	}
	m, err := cat.Resolve(c.Args().First())
	if err != nil {
		return failed(err, "drover images list shows the images there are")
	}
	return a.publishImage(ctx, cat, m, images.PublishTarget{Compute: to, Type: blk.Type, Publisher: pub})
}

func orImage(ref string) string {
	if ref == "" {
		return "IMAGE"
	}
	return ref
}

func computeNames(f *fleet.Fleet) string {
	var names []string
	for _, p := range f.Compute {
		names = append(names, fmt.Sprintf("%s (%s)", p.Name, p.Type))
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// publishedEvent is the last line of drover images publish --output json.
type publishedEvent struct {
	Event    string    `json:"event"` // published
	Image    string    `json:"image"`
	Role     string    `json:"role"`
	Compute  string    `json:"compute"`
	Type     string    `json:"type"`
	Region   string    `json:"region,omitempty"`
	ID       string    `json:"id"`
	Created  time.Time `json:"created"`
	Existing bool      `json:"existing"` // the platform had it already: nothing was uploaded
	Uploaded int64     `json:"uploaded_bytes"`
	Seconds  float64   `json:"seconds"`
}

// publishImage publishes an image to a target and reports it: progress while it runs, then the
// reference, which the catalog records.
func (a *app) publishImage(ctx context.Context, cat *images.Catalog, m *images.Manifest, to images.PublishTarget) error {
	name := m.Role + "@" + m.ShortID()
	pr := newPublishProgress(a.stdout, a.json())
	pr.header = fmt.Sprintf("publishing %s to %s (%s)", name, to.Compute, to.Type)
	if a.json() {
		writeJSONLine(a.stdout, map[string]any{"event": "publish", "image": m.Identity, "role": m.Role, "compute": to.Compute, "type": to.Type})
	}
	res, err := cat.PublishTo(ctx, m, to, pr.progress)
	pr.close()
	if err != nil {
		hint := ""
		if pr.uploaded() > 0 {
			hint = "run the same command again: the provider resumes the interrupted upload or starts it over; a half-made copy is never launched from"
		}
		return failed(err, hint)
	}
	uploaded, elapsed := pr.uploaded(), time.Since(pr.start)
	if a.json() {
		writeJSONLine(a.stdout, publishedEvent{Event: "published", Image: m.Identity, Role: m.Role, Compute: to.Compute, Type: to.Type,
			Region: res.Ref.Region, ID: res.Ref.ID, Created: res.Ref.Created, Existing: res.Existing, Uploaded: uploaded, Seconds: elapsed.Seconds()})
		return nil
	}
	where := fmt.Sprintf("%s (%s): %s%s", to.Compute, to.Type, res.Ref.ID, inRegionText(res.Ref.Region))
	if res.Existing {
		fmt.Fprintf(a.stdout, "%s is already published on %s, made %s; nothing uploaded\n", name, where, res.Ref.Created.Local().Format(time.DateTime))
		return nil
	}
	fmt.Fprintf(a.stdout, "published %s on %s; %s uploaded in %s (%s)\n", name, where, images.HumanBytes(uploaded), round(elapsed), rateText(uploaded, elapsed))
	return nil
}

func inRegionText(region string) string {
	if region == "" {
		return ""
	}
	return " in " + region
}

func rateText(n int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return images.HumanBytes(int64(float64(n)/d.Seconds())) + "/s"
}

// publishProgress shows a publish to a person (a live line on a terminal, else a line every
// publishLineEvery and at each phase) or as JSON progress events (at most one a second, and each
// phase's first and last).
type publishProgress struct {
	out    io.Writer
	json   bool
	tty    bool
	start  time.Time
	header string // printed before the first line of text: nothing is shown when nothing is uploaded

	mu        sync.Mutex
	phase     string
	last      time.Time // of the last line or event
	firstDone int64     // the upload's Done at its first event: a resumed upload starts there
	firstAt   time.Time
	upload    compute.PublishProgress
	lineLen   int
}

const (
	publishLineEvery  = 10 * time.Second
	publishEventEvery = time.Second
)

func newPublishProgress(out io.Writer, asJSON bool) *publishProgress {
	p := &publishProgress{out: out, json: asJSON, start: time.Now(), firstDone: -1}
	if f, ok := out.(*os.File); ok && !asJSON && term.IsTerminal(int(f.Fd())) && os.Getenv("CI") == "" {
		p.tty = true
	}
	return p
}

func (p *publishProgress) progress(e compute.PublishProgress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if e.Phase == compute.PhaseUpload {
		if p.firstDone < 0 {
			p.firstDone, p.firstAt = e.Done, now
		}
		p.upload = e
	}
	every := publishLineEvery
	switch {
	case p.json:
		every = publishEventEvery
	case p.tty:
		every = 200 * time.Millisecond
	}
	final := e.Total > 0 && e.Done == e.Total // the phase's last event is always shown
	if e.Phase == p.phase && !final && now.Sub(p.last) < every {
		return
	}
	p.phase, p.last = e.Phase, now
	rate := p.rate(now)
	if p.json {
		writeJSONLine(p.out, map[string]any{"event": "progress", "phase": e.Phase, "done": e.Done, "total": e.Total,
			"bytes_per_second": rate, "seconds": now.Sub(p.start).Seconds()})
		return
	}
	line := e.Phase
	switch {
	case e.Total > 0:
		line = fmt.Sprintf("%-8s %s of %s (%d%%)", e.Phase, images.HumanBytes(e.Done), images.HumanBytes(e.Total), e.Done*100/e.Total)
	case e.Done > 0: // a total the provider cannot know in advance
		line = fmt.Sprintf("%-8s %s", e.Phase, images.HumanBytes(e.Done))
	}
	if e.Phase == compute.PhaseUpload && e.Done > p.firstDone { // no rate yet at the first event
		line += fmt.Sprintf(", %s/s", images.HumanBytes(rate))
	}
	if p.header != "" {
		fmt.Fprintln(p.out, p.header)
		p.header = ""
	}
	if !p.tty {
		fmt.Fprintln(p.out, line)
		return
	}
	pad := ""
	if n := p.lineLen - len(line); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	fmt.Fprintf(p.out, "\r%s%s", line, pad)
	p.lineLen = len(line)
}

// rate is the upload's bytes per second since its first event.
func (p *publishProgress) rate(now time.Time) int64 {
	secs := now.Sub(p.firstAt).Seconds()
	if p.firstDone < 0 || secs <= 0 {
		return 0
	}
	return int64(float64(p.upload.Done-p.firstDone) / secs)
}

// uploaded is the upload's bytes, including what an interrupted earlier run sent of it.
func (p *publishProgress) uploaded() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.upload.Done
}

// close ends the live line.
func (p *publishProgress) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.lineLen > 0 {
		fmt.Fprintln(p.out)
	}
}

// nonNil makes an empty list print as [] in JSON.
func nonNil(refs []images.PublishedRef) []images.PublishedRef {
	if refs == nil {
		return []images.PublishedRef{}
	}
	return refs
}

// publishedBlocks names the compute blocks an image is published on, for images list.
func publishedBlocks(refs []images.PublishedRef) string {
	if len(refs) == 0 {
		return "-"
	}
	var names []string
	for _, r := range refs {
		name := r.Compute
		if r.Region != "" {
			name += "/" + r.Region
		}
		names = append(names, name)
	}
	return strings.Join(names, ",")
}

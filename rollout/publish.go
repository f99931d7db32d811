package rollout

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/plugins/compute"
)

// publishReportEvery is how often a publish in a rollout reports its progress as a step, besides its
// start and end.
const publishReportEvery = 5 * time.Second

// bootImage is the image a rollout's instances boot. A compute provider that boots the catalog's
// file (the lab's qemu) gets imageOf's local disk. One that boots its own copy (compute.Publisher)
// gets the copy in its block: looked up by the image's identity, published first when there is none
// (with progress as "publish" steps), and recorded in the catalog. Publishing is idempotent by
// identity, so a rollout killed mid-publish resumes it (or the provider restarts it) when run again,
// and a second rollout of the image uploads nothing. An image built on another machine (recorded in
// a shared catalog's state store) has no disk here: the provider's copy, looked up by identity, is
// what boots, and a rollout on a provider without one is refused.
func (s *session) bootImage(ctx context.Context, r *Record) (compute.Image, error) {
	img, err := s.c.imageOf(r.Role, r.Image)
	if err != nil {
		return img, err
	}
	m, err := s.c.opts.Catalog.Get(r.Image.Identity)
	if err != nil {
		return img, fmt.Errorf("rollout: role %q: image %s: %w", r.Role, r.Image.Short, err)
	}
	pub, ok := s.comp.(compute.Publisher)
	if !ok {
		if m.DiskElsewhere() {
			return img, fmt.Errorf("rollout: role %q: image %s was built on another machine and compute %q boots the disk from this machine's catalog, which does not have it: drover build %s here makes it (the same image)",
				r.Role, r.Image.Short, r.Compute, r.Role)
		}
		return img, nil
	}
	to := images.PublishTarget{Compute: r.Compute, Type: s.computeType(r.Compute), Publisher: pub}
	rep := &publishReporter{s: s, rollout: r.ID, started: time.Now()}
	res, err := s.c.opts.Catalog.PublishTo(ctx, m, to, rep.progress)
	if err != nil {
		return img, fmt.Errorf("rollout: role %q: %w", r.Role, err)
	}
	if res.Existing {
		s.step(r.ID, "publish", fmt.Sprintf("image %s is published on %s as %s%s", r.Image.Short, r.Compute, res.Image.ID, inRegion(res.Image.Region)))
	} else {
		s.step(r.ID, "publish", fmt.Sprintf("published image %s on %s as %s%s in %s%s",
			r.Image.Short, r.Compute, res.Image.ID, inRegion(res.Image.Region), human(time.Since(rep.started)), rep.summary()))
	}
	img.Published = res.Image
	return img, nil
}

func (s *session) computeType(block string) string {
	if p := s.c.opts.Fleet.Provider(fleet.KindCompute, block); p != nil {
		return p.Type
	}
	return ""
}

func inRegion(region string) string {
	if region == "" {
		return ""
	}
	return " in " + region
}

// publishReporter turns a Publish's progress into rollout steps: the first event of each phase, then
// at most one every publishReportEvery.
type publishReporter struct {
	s       *session
	rollout string
	started time.Time

	mu       sync.Mutex
	phase    string
	reported time.Time
	upload   compute.PublishProgress // the last upload event
}

func (p *publishReporter) progress(e compute.PublishProgress) {
	p.mu.Lock()
	if e.Phase == compute.PhaseUpload {
		p.upload = e
	}
	now := time.Now()
	report := e.Phase != p.phase || now.Sub(p.reported) >= publishReportEvery || e.Total > 0 && e.Done == e.Total
	if report {
		p.phase, p.reported = e.Phase, now
	}
	p.mu.Unlock()
	if !report {
		return
	}
	msg := e.Phase
	switch {
	case e.Total > 0:
		msg = fmt.Sprintf("%s: %s of %s (%d%%)%s", e.Phase, images.HumanBytes(e.Done), images.HumanBytes(e.Total), e.Done*100/e.Total, p.rate(e))
	case e.Done > 0: // a total the provider cannot know in advance
		msg = fmt.Sprintf("%s: %s%s", e.Phase, images.HumanBytes(e.Done), p.rate(e))
	}
	p.s.step(p.rollout, "publish", msg)
}

// rate is the upload's average since the publish began.
func (p *publishReporter) rate(e compute.PublishProgress) string {
	if e.Phase != compute.PhaseUpload {
		return ""
	}
	secs := time.Since(p.started).Seconds()
	if secs <= 0 {
		return ""
	}
	return fmt.Sprintf(" at %s/s", images.HumanBytes(int64(float64(e.Done)/secs)))
}

func (p *publishReporter) summary() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.upload.Done == 0 {
		return ""
	}
	return fmt.Sprintf(", %s uploaded", images.HumanBytes(p.upload.Done))
}

package memory

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
)

var (
	_ compute.Provider  = (*Cloud)(nil)
	_ compute.Stopper   = (*Cloud)(nil)
	_ compute.Publisher = (*Cloud)(nil)
)

// DefaultChunkSize is how many bytes a Cloud receives per upload call, and
// so how often Publish reports progress.
const DefaultChunkSize = 64 << 10

// Cloud is a Provider that boots only images published to it, as a cloud
// does: it implements compute.Publisher, keeps the bytes it was given, and
// refuses a Launch whose Spec.Image has no published copy of its own. It is
// for tests of code that publishes (the rollout controller, drover images
// publish), which can read back what was uploaded and count the bytes.
//
// An interrupted Publish keeps what it uploaded, and the next Publish of the
// identity resumes from there (as a multipart upload does); Unpublish
// deletes it. Safe for concurrent use; concurrent publishes of one identity
// wait for each other and upload once.
type Cloud struct {
	*Provider
	// Region is reported in the references it makes; Unpublish refuses
	// references of another region.
	Region string
	// ChunkSize is the bytes per upload call; zero means DefaultChunkSize.
	ChunkSize int

	mu       sync.Mutex
	images   map[string]*copyOf // complete copies, by identity
	partial  map[string]*copyOf // interrupted uploads, by identity
	busy     map[string]chan struct{}
	launched map[string]compute.Image // by instance ID, the image of its first launch
	received int64                    // bytes uploaded, ever
	uploads  int                      // publishes that uploaded something
}

// copyOf is an image on the cloud, complete or being uploaded.
type copyOf struct {
	ref  compute.PublishedImage
	src  compute.PublishSource
	data []byte
}

// NewCloud returns a cloud without instances or images, in region.
func NewCloud(region string) *Cloud {
	return &Cloud{
		Provider: New(), Region: region,
		images: map[string]*copyOf{}, partial: map[string]*copyOf{},
		busy: map[string]chan struct{}{}, launched: map[string]compute.Image{},
	}
}

// imageID is the ID of a copy: derived from the identity, as a platform's
// would be unique to it.
func imageID(identity string) string {
	h := strings.TrimPrefix(identity, "sha256:")
	if len(h) > 12 {
		h = h[:12]
	}
	return "img-" + h
}

// Launch implements compute.Provider: Spec.Image.Published must name a
// complete copy of Spec.Image.Identity on this cloud.
func (c *Cloud) Launch(ctx context.Context, spec compute.Spec) (compute.Instance, error) {
	img := spec.Image
	c.mu.Lock()
	cp, ok := c.images[img.Identity]
	c.mu.Unlock()
	switch {
	case img.Published.IsZero():
		return compute.Instance{}, fmt.Errorf("memory: launching %q: image %s has no published copy: this cloud boots only what was published to it, not the file %q",
			spec.Name, img.Identity, img.Path)
	case !ok || cp.ref.ID != img.Published.ID:
		return compute.Instance{}, fmt.Errorf("memory: launching %q: published image %q (of %s) does not exist in region %q",
			spec.Name, img.Published.ID, img.Identity, c.Region)
	}
	in, err := c.Provider.Launch(ctx, spec)
	if err != nil {
		return in, err
	}
	c.mu.Lock()
	if _, seen := c.launched[in.ID]; !seen {
		c.launched[in.ID] = img
	}
	c.mu.Unlock()
	return in, nil
}

// LaunchedImage is the image an instance was launched from.
func (c *Cloud) LaunchedImage(id string) (compute.Image, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	img, ok := c.launched[id]
	return img, ok
}

// Publish implements compute.Publisher.
func (c *Cloud) Publish(ctx context.Context, src compute.PublishSource, progress func(compute.PublishProgress)) (compute.PublishedImage, error) {
	if err := src.Validate(); err != nil {
		return compute.PublishedImage{}, err
	}
	release, err := c.acquire(ctx, src.Identity)
	if err != nil {
		return compute.PublishedImage{}, err
	}
	defer release()
	c.mu.Lock()
	done, ok := c.images[src.Identity]
	c.mu.Unlock()
	if ok {
		return done.ref, nil
	}
	f, err := os.Open(src.Path)
	if err != nil {
		return compute.PublishedImage{}, fmt.Errorf("memory: publish %s: %w", src.Identity, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return compute.PublishedImage{}, fmt.Errorf("memory: publish %s: %w", src.Identity, err)
	}
	if fi.Size() != src.Size {
		return compute.PublishedImage{}, fmt.Errorf("memory: publish %s: %s is %d bytes, want %d", src.Identity, src.Path, fi.Size(), src.Size)
	}

	c.mu.Lock()
	up := c.partial[src.Identity]
	if up == nil || up.src != src {
		up = &copyOf{src: src} // a leftover of another file is not resumed but replaced
		c.partial[src.Identity] = up
	}
	c.mu.Unlock()
	if err := c.upload(ctx, f, up, progress); err != nil {
		return compute.PublishedImage{}, err
	}
	if src.SHA256 != "" {
		if sum := sha256.Sum256(up.data); hex.EncodeToString(sum[:]) != src.SHA256 {
			c.mu.Lock()
			delete(c.partial, src.Identity)
			c.mu.Unlock()
			return compute.PublishedImage{}, fmt.Errorf("memory: publish %s: uploaded bytes have sha256 %x, want %s", src.Identity, sum, src.SHA256)
		}
	}
	if progress != nil {
		progress(compute.PublishProgress{Phase: compute.PhaseRegister})
	}
	up.ref = compute.PublishedImage{Identity: src.Identity, ID: imageID(src.Identity), Region: c.Region, Created: time.Now().UTC().Round(0)} // as a platform reports it: no monotonic reading
	c.mu.Lock()
	delete(c.partial, src.Identity)
	c.images[src.Identity] = up
	c.mu.Unlock()
	return up.ref, nil
}

// upload sends the rest of the file from where an earlier, interrupted
// upload of it stopped, one chunk per call.
func (c *Cloud) upload(ctx context.Context, f *os.File, up *copyOf, progress func(compute.PublishProgress)) error {
	chunk := c.ChunkSize
	if chunk <= 0 {
		chunk = DefaultChunkSize
	}
	buf := make([]byte, chunk)
	sent := false
	for int64(len(up.data)) < up.src.Size {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("memory: publish %s: interrupted after %d of %d bytes: %w", up.src.Identity, len(up.data), up.src.Size, err)
		}
		n, err := f.ReadAt(buf, int64(len(up.data)))
		if n == 0 && err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("memory: publish %s: reading %s: %w", up.src.Identity, up.src.Path, err)
		}
		c.mu.Lock()
		up.data = append(up.data, buf[:n]...)
		c.received += int64(n)
		if !sent {
			c.uploads++
			sent = true
		}
		c.mu.Unlock()
		if progress != nil {
			progress(compute.PublishProgress{Phase: compute.PhaseUpload, Done: int64(len(up.data)), Total: up.src.Size})
		}
	}
	return nil
}

// acquire waits until no other Publish of identity runs, and marks it busy.
func (c *Cloud) acquire(ctx context.Context, identity string) (func(), error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("memory: publish %s: %w", identity, err)
		}
		c.mu.Lock()
		wait, busy := c.busy[identity]
		if !busy {
			ch := make(chan struct{})
			c.busy[identity] = ch
			c.mu.Unlock()
			return func() {
				c.mu.Lock()
				delete(c.busy, identity)
				c.mu.Unlock()
				close(ch)
			}, nil
		}
		c.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
		}
	}
}

// Published implements compute.Publisher.
func (c *Cloud) Published(ctx context.Context, identity string) (compute.PublishedImage, bool, error) {
	if err := ctx.Err(); err != nil {
		return compute.PublishedImage{}, false, fmt.Errorf("memory: published %s: %w", identity, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cp, ok := c.images[identity]; ok {
		return cp.ref, true, nil
	}
	return compute.PublishedImage{}, false, nil
}

// Unpublish implements compute.Publisher.
func (c *Cloud) Unpublish(ctx context.Context, ref compute.PublishedImage) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: unpublish %s: %w", ref.ID, err)
	}
	if ref.Region != c.Region {
		return fmt.Errorf("memory: unpublish %s: it is in region %q, this provider is in %q", ref.ID, ref.Region, c.Region)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cp, ok := c.images[ref.Identity]; ok && cp.ref.ID == ref.ID {
		delete(c.images, ref.Identity)
	}
	delete(c.partial, ref.Identity)
	return nil
}

// Uploaded is how many bytes the cloud has received, and how many Publish
// calls sent any: a Publish of an image already there adds to neither.
func (c *Cloud) Uploaded() (bytes int64, publishes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.received, c.uploads
}

// Content returns the bytes of a complete copy.
func (c *Cloud) Content(ref compute.PublishedImage) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp, ok := c.images[ref.Identity]
	if !ok || cp.ref.ID != ref.ID {
		return nil, false
	}
	return bytes.Clone(cp.data), true
}

// Leftovers is how many interrupted uploads the cloud holds.
func (c *Cloud) Leftovers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.partial)
}

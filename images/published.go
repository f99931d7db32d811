package images

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// PublishedRef is a copy of an image that a compute provider boots instead of the local disk (an AMI,
// a DigitalOcean custom image). The platform is the truth of what is published, found by the image's
// identity; these references are the catalog's record of it, for people (drover images show) and for
// prune, which deletes the copies of the images it removes.
type PublishedRef struct {
	Compute string    `json:"compute"`          // the fleet's compute block
	Type    string    `json:"type"`             // its provider type, such as aws
	Region  string    `json:"region,omitempty"` // where the copy lives, "" on a platform without regions
	ID      string    `json:"id"`               // the platform's ID of the copy
	Created time.Time `json:"created"`          // when the platform made it
}

// same reports whether r and o name the same place: one copy per compute block and region.
func (r PublishedRef) same(o PublishedRef) bool {
	return r.Compute == o.Compute && r.Region == o.Region
}

const (
	publishedFile = "published.json"
	publishedLock = "published.lock"
)

type publishedDoc struct {
	Published []PublishedRef `json:"published"`
}

// Published returns the recorded copies of an image, sorted by compute block and region; none (and no
// error) for an image never published. A shared catalog joins the local list and the state store's
// (the newer copy per compute block and region). An image in neither is ErrNotFound.
func (c *Catalog) Published(identity string) ([]PublishedRef, error) {
	local := c.Has(identity)
	var refs []PublishedRef
	if local {
		var err error
		if refs, err = c.readPublished(identity); err != nil {
			return nil, err
		}
	}
	if c.store == nil {
		if !local {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, identity)
		}
		return refs, nil
	}
	if !local {
		m, err := c.sharedManifest(identity)
		if err != nil {
			return nil, err
		}
		if m == nil {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, identity)
		}
	}
	shared, _, err := c.sharedPublished(identity)
	if err != nil {
		return nil, err
	}
	return mergeRefs(refs, shared), nil
}

func (c *Catalog) readPublished(identity string) ([]PublishedRef, error) {
	path := filepath.Join(c.ImageDir(identity), publishedFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("images: reading the published copies of %s: %w", ShortID(identity), err)
	}
	var doc publishedDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("images: %s is not a list of published copies: %w", path, err)
	}
	return doc.Published, nil
}

// RecordPublished records a copy of an image, replacing the one recorded for the same compute block
// and region. It is idempotent, and safe against concurrent writers, also in other processes (they
// take turns on a lock file); readers see the old list or the new one, never a half-written file.
// A shared catalog records it in the state store too (compare-and-swap, see shared.go), and records
// the image's manifest there first if the store lacks it.
func (c *Catalog) RecordPublished(identity string, ref PublishedRef) error {
	if ref.Compute == "" || ref.ID == "" {
		return fmt.Errorf("images: recording a published copy of %s: it needs a compute block and an ID, got %+v", ShortID(identity), ref)
	}
	ref.Created = ref.Created.UTC().Round(0) // as it reads back
	return c.updatePublished(identity, func(refs []PublishedRef) []PublishedRef {
		refs = slices.DeleteFunc(refs, ref.same)
		return append(refs, ref)
	})
}

// ForgetPublished removes the record of a copy (after the copy was deleted); nil when there is none.
func (c *Catalog) ForgetPublished(identity string, ref PublishedRef) error {
	return c.updatePublished(identity, func(refs []PublishedRef) []PublishedRef {
		return slices.DeleteFunc(refs, func(r PublishedRef) bool { return r.same(ref) && r.ID == ref.ID })
	})
}

// updatePublished changes the image's list in the local catalog when the image is there, and in the
// state store of a shared catalog when the store has the image (after recording a local image's
// manifest there). An image in neither is ErrNotFound. The local list is written first: when the
// store's write fails, the error says so and running the command again records it.
func (c *Catalog) updatePublished(identity string, change func([]PublishedRef) []PublishedRef) error {
	local := c.Has(identity)
	if local {
		if err := c.updateLocalPublished(identity, change); err != nil {
			return err
		}
	}
	if c.store == nil {
		if !local {
			return fmt.Errorf("%w: %s", ErrNotFound, identity)
		}
		return nil
	}
	if local {
		m, err := c.Get(identity)
		if err != nil {
			return err
		}
		if err := c.ShareManifest(m); err != nil {
			return err
		}
	} else if m, err := c.sharedManifest(identity); err != nil {
		return err
	} else if m == nil {
		return fmt.Errorf("%w: %s", ErrNotFound, identity)
	}
	return c.updateSharedPublished(identity, change)
}

// updateLocalPublished rewrites the image's list under its lock: a temporary file, synced, renamed over.
func (c *Catalog) updateLocalPublished(identity string, change func([]PublishedRef) []PublishedRef) error {
	dir := c.ImageDir(identity)
	lock, err := os.OpenFile(filepath.Join(dir, publishedLock), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("images: locking the published copies of %s: %w", ShortID(identity), err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("images: locking the published copies of %s: %w", ShortID(identity), err)
	}
	refs, err := c.readPublished(identity)
	if err != nil {
		return err
	}
	refs = sortRefs(change(refs))
	b, err := json.MarshalIndent(publishedDoc{Published: refs}, "", "  ")
	if err != nil {
		return fmt.Errorf("images: encoding the published copies of %s: %w", ShortID(identity), err)
	}
	tmp, err := os.CreateTemp(dir, ".published-*.json")
	if err != nil {
		return fmt.Errorf("images: recording the published copies of %s: %w", ShortID(identity), err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	_, werr := tmp.Write(append(b, '\n'))
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("images: recording the published copies of %s: %w", ShortID(identity), err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, publishedFile)); err != nil {
		return fmt.Errorf("images: recording the published copies of %s: %w", ShortID(identity), err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // the rename survives a power cut
		d.Close()
	}
	return nil
}

// Prunable is what Prune(keep, inUse) would remove: every image beyond the newest keep of its role
// that inUse does not claim, newest first within each role. Callers that must act before an image
// goes (delete its published copies) take these, then Remove each. Only the local catalog is pruned
// (it is the disk cache); what the state store records stays.
func (c *Catalog) Prunable(keep int, inUse func(identity string) bool) ([]*Manifest, error) {
	all, err := c.listLocal()
	if err != nil {
		return nil, err
	}
	var out []*Manifest
	perRole := map[string]int{}
	for _, m := range all {
		perRole[m.Role]++
		if perRole[m.Role] <= keep || (inUse != nil && inUse(m.Identity)) {
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

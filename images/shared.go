package images

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/drover-dev/drover/plugins/store"
)

// The team's catalog: with a state store shared by a team and its CI runners (the etcd store), the
// catalog's manifests and published references are also kept in the store, so that a runner with an
// empty disk knows what was built and published, and a laptop lists what CI built. The local
// directory stays the disk cache: it holds the disks, file indexes and build logs, which the store
// never does. Keys, under the store's own prefix (etcd: "<prefix>kv/"):
//
//	catalog/manifests/<hex of the identity>  the manifest, as manifest.json holds it
//	catalog/published/<hex of the identity>  {"published": [...]}, as published.json holds it
//
// Both are written with compare-and-swap on the key's version. A manifest is created once (expected
// version 0): an identity is the digest of the image's inputs, so a conflict means another machine
// recorded an image of the same inputs first, and its record is kept (the first one wins, as in the
// local catalog when two builds race). A published list is read, changed (one copy per compute block
// and region replaced or removed) and written back expecting the version read; on a conflict it is
// read and changed again, up to sharedRetries times, so two runners publishing one image to two
// blocks both end up in the list.
const (
	SharedManifestPrefix  = "catalog/manifests/"
	SharedPublishedPrefix = "catalog/published/"
	sharedRetries         = 50
)

// Share makes the catalog keep its manifests and published references in st as well, and read what
// other machines recorded there. ctx bounds the store operations of the catalog's methods (a
// catalog lives as long as one command). It returns c.
func (c *Catalog) Share(ctx context.Context, st store.Store) *Catalog {
	c.store, c.ctx = st, ctx
	return c
}

// Shared reports whether the catalog is backed by a state store (Share).
func (c *Catalog) Shared() bool { return c.store != nil }

// DiskElsewhere reports whether the manifest came from the state store and the image's disk is not
// in this machine's catalog: it was built on another machine.
func (m *Manifest) DiskElsewhere() bool { return m.elsewhere }

func sharedManifestKey(identity string) string  { return SharedManifestPrefix + hexOf(identity) }
func sharedPublishedKey(identity string) string { return SharedPublishedPrefix + hexOf(identity) }

// sharedManifest reads an image's manifest from the store: nil (and no error) when it has none.
func (c *Catalog) sharedManifest(identity string) (*Manifest, error) {
	if c.store == nil {
		return nil, nil
	}
	it, err := c.store.Get(c.ctx, sharedManifestKey(identity))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("images: reading the manifest of %s from the state store: %w", ShortID(identity), err)
	}
	return decodeShared(it)
}

func decodeShared(it store.Item) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(it.Value, &m); err != nil {
		return nil, fmt.Errorf("images: the state store's %s is not a manifest: %w", it.Key, err)
	}
	m.elsewhere = true
	return &m, nil
}

// sharedManifests lists every manifest in the store.
func (c *Catalog) sharedManifests() ([]*Manifest, error) {
	if c.store == nil {
		return nil, nil
	}
	items, err := c.store.List(c.ctx, SharedManifestPrefix)
	if err != nil {
		return nil, fmt.Errorf("images: listing the state store's catalog: %w", err)
	}
	out := make([]*Manifest, 0, len(items))
	for _, it := range items {
		m, err := decodeShared(it)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// ShareManifest records m in the state store, if the catalog has one and the store has no manifest
// of m's identity yet (see the package's note on the team's catalog: the first record wins). It is
// idempotent and a no-op without a store.
func (c *Catalog) ShareManifest(m *Manifest) error {
	if c.store == nil || m.elsewhere {
		return nil
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("images: encoding the manifest of %s: %w", m.ShortID(), err)
	}
	_, err = c.store.Put(c.ctx, sharedManifestKey(m.Identity), append(b, '\n'), 0)
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("images: recording %s@%s in the state store: %w (the image is in the local catalog; running the command again records it)", m.Role, m.ShortID(), err)
	}
	return nil
}

// sharedPublished reads an image's published list from the store and the version it read (0 when
// the store has none).
func (c *Catalog) sharedPublished(identity string) ([]PublishedRef, uint64, error) {
	it, err := c.store.Get(c.ctx, sharedPublishedKey(identity))
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("images: reading the published copies of %s from the state store: %w", ShortID(identity), err)
	}
	var doc publishedDoc
	if err := json.Unmarshal(it.Value, &doc); err != nil {
		return nil, 0, fmt.Errorf("images: the state store's %s is not a list of published copies: %w", it.Key, err)
	}
	return doc.Published, it.Version, nil
}

// updateSharedPublished applies change to the store's list of an image with compare-and-swap,
// reading again after a conflict. A change that leaves the list as it was writes nothing.
func (c *Catalog) updateSharedPublished(identity string, change func([]PublishedRef) []PublishedRef) error {
	for range sharedRetries {
		refs, version, err := c.sharedPublished(identity)
		if err != nil {
			return err
		}
		before, _ := json.Marshal(refs)
		refs = sortRefs(change(slices.Clone(refs)))
		after, _ := json.Marshal(refs)
		if bytes.Equal(before, after) {
			return nil
		}
		b, err := json.MarshalIndent(publishedDoc{Published: refs}, "", "  ")
		if err != nil {
			return fmt.Errorf("images: encoding the published copies of %s: %w", ShortID(identity), err)
		}
		_, err = c.store.Put(c.ctx, sharedPublishedKey(identity), append(b, '\n'), version)
		if errors.Is(err, store.ErrConflict) {
			// Another writer changed the list since it was read: change what is there now, after a
			// short random pause so that writers racing in step fall out of it.
			time.Sleep(time.Duration(1+rand.IntN(10)) * time.Millisecond)
			continue
		}
		if err != nil {
			return fmt.Errorf("images: recording the published copies of %s in the state store: %w", ShortID(identity), err)
		}
		return nil
	}
	return fmt.Errorf("images: recording the published copies of %s in the state store: %d writers in a row changed it first; try again", ShortID(identity), sharedRetries)
}

func sortRefs(refs []PublishedRef) []PublishedRef {
	slices.SortFunc(refs, func(a, b PublishedRef) int {
		if a.Compute != b.Compute {
			return cmp.Compare(a.Compute, b.Compute)
		}
		return cmp.Compare(a.Region, b.Region)
	})
	return refs
}

// mergeRefs joins the local and the store's lists: one copy per compute block and region, the newer
// one when both record a copy there.
func mergeRefs(local, shared []PublishedRef) []PublishedRef {
	out := slices.Clone(local)
	for _, s := range shared {
		i := slices.IndexFunc(out, s.same)
		switch {
		case i < 0:
			out = append(out, s)
		case s.Created.After(out[i].Created):
			out[i] = s
		}
	}
	return sortRefs(out)
}

// Covered says whether a build of identity can be skipped although the local catalog does not have
// it: the state store has its manifest and records a published copy on every one of computes (the
// compute blocks the role deploys to). A compute that boots the local disk (the lab) never has a
// published copy, so a role deployed there is always built where its disk is needed. It returns the
// store's manifest when covered.
func (c *Catalog) Covered(identity string, computes []string) (*Manifest, bool, error) {
	if c.store == nil || len(computes) == 0 {
		return nil, false, nil
	}
	m, err := c.sharedManifest(identity)
	if err != nil || m == nil {
		return nil, false, err
	}
	refs, _, err := c.sharedPublished(identity)
	if err != nil {
		return nil, false, err
	}
	for _, want := range computes {
		if !slices.ContainsFunc(refs, func(r PublishedRef) bool { return r.Compute == want }) {
			return nil, false, nil
		}
	}
	return m, true, nil
}

// Known reports whether an image of this identity is in the local catalog or, for a shared catalog,
// recorded in the state store.
func (c *Catalog) Known(identity string) (bool, error) {
	if c.Has(identity) {
		return true, nil
	}
	m, err := c.sharedManifest(identity)
	return m != nil, err
}

// missingDisk is the error of an operation that needs the disk of an image built elsewhere.
func missingDisk(m *Manifest, what string) error {
	return fmt.Errorf("images: %s@%s was built on another machine (the state store records it) and its disk is not here, so it cannot %s: run this where it was built, or drover build %s here makes the same image",
		m.Role, m.ShortID(), what, m.Role)
}

// Where is the image's directory, or a note that its disk is on another machine.
func (c *Catalog) Where(m *Manifest) string {
	if m.elsewhere {
		return "(not on this machine: built elsewhere, recorded in the state store)"
	}
	return c.ImageDir(m.Identity)
}

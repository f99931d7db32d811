package images

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/drover-dev/drover/plugins/store"
)

// MigrateChange is what MigrateTo did, or would do, with one key of the state store.
type MigrateChange struct {
	Key    string `json:"key"`
	Action string `json:"action"` // copied, updated, same, kept
	Detail string `json:"detail,omitempty"`
}

// MigrateTo copies the local catalog's manifests and published references into dst, the keys a
// shared catalog keeps (shared.go), so that a team that moves to a shared store keeps knowing what
// was built and published. A manifest the store lacks is created; one it has is kept (the first
// record of an identity wins: same inputs). A published list is joined with the store's, one copy
// per compute block and region, the newer one (by its Created time) where both record one: a
// reference the store has newer is never overwritten. Every write is a compare-and-swap; a list
// changed by another writer meanwhile is read and joined again. With dryRun nothing is written and
// the changes say what would be. MigrateTo is idempotent: run again, every key is "same". A failure
// part way leaves the keys written so far, which a rerun finds "same".
func (c *Catalog) MigrateTo(ctx context.Context, dst store.Store, dryRun bool) ([]MigrateChange, error) {
	local, err := c.listLocal()
	if err != nil {
		return nil, err
	}
	to := &Catalog{Dir: c.Dir, store: dst, ctx: ctx}
	var out []MigrateChange
	for _, m := range local {
		key := sharedManifestKey(m.Identity)
		have, err := to.sharedManifest(m.Identity)
		switch {
		case err != nil:
			return out, err
		case have != nil:
			out = append(out, MigrateChange{Key: key, Action: "same", Detail: m.Role + "@" + m.ShortID()})
		case dryRun:
			out = append(out, MigrateChange{Key: key, Action: "copied", Detail: m.Role + "@" + m.ShortID()})
		default:
			if err := to.ShareManifest(m); err != nil {
				return out, err
			}
			out = append(out, MigrateChange{Key: key, Action: "copied", Detail: m.Role + "@" + m.ShortID()})
		}
		refs, err := c.readPublished(m.Identity)
		if err != nil {
			return out, err
		}
		if len(refs) == 0 {
			continue
		}
		ch, err := to.migratePublished(m, refs, dryRun)
		if err != nil {
			return out, err
		}
		out = append(out, ch)
	}
	return out, nil
}

// migratePublished joins refs into the store's list of m's copies (newer per place wins).
func (c *Catalog) migratePublished(m *Manifest, refs []PublishedRef, dryRun bool) (MigrateChange, error) {
	key := sharedPublishedKey(m.Identity)
	have, _, err := c.sharedPublished(m.Identity)
	if err != nil {
		return MigrateChange{}, err
	}
	joined := mergeRefs(have, refs)
	kept := 0
	for _, r := range refs {
		if i := slices.IndexFunc(joined, r.same); i >= 0 && joined[i].ID != r.ID {
			kept++
		}
	}
	before, _ := json.Marshal(sortRefs(slices.Clone(have)))
	after, _ := json.Marshal(joined)
	ch := MigrateChange{Key: key, Action: "same", Detail: fmt.Sprintf("%s@%s: %d published copy(ies)", m.Role, m.ShortID(), len(joined))}
	switch {
	case bytes.Equal(before, after) && kept > 0:
		ch.Action, ch.Detail = "kept", fmt.Sprintf("%s@%s: the store records newer copies in the same places", m.Role, m.ShortID())
		return ch, nil
	case bytes.Equal(before, after):
		return ch, nil
	case len(have) == 0:
		ch.Action = "copied"
	default:
		ch.Action = "updated"
	}
	if kept > 0 {
		ch.Detail += fmt.Sprintf(" (%d kept: the store's are newer)", kept)
	}
	if dryRun {
		return ch, nil
	}
	err = c.updateSharedPublished(m.Identity, func(cur []PublishedRef) []PublishedRef { return mergeRefs(cur, refs) })
	if errors.Is(err, store.ErrConflict) {
		return ch, fmt.Errorf("images: migrating the published copies of %s: %w", m.ShortID(), err)
	}
	return ch, err
}

package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/drover-dev/drover/plugins/store"
)

// Migration actions, one per key.
const (
	MigrateCopied   = "copied"   // the destination had no such key
	MigrateUpdated  = "updated"  // the source's record is newer: it replaced the destination's
	MigrateSame     = "same"     // the destination holds the same bytes
	MigrateKept     = "kept"     // the destination's record is newer: left alone
	MigrateConflict = "conflict" // both differ and neither says which is newer: left alone
)

// MigrateItem is what MigrateState did, or would do, with one key.
type MigrateItem struct {
	Key    string `json:"key"`
	Action string `json:"action"`
	Detail string `json:"detail,omitempty"`
}

// MigrateState copies every key of src (rollout records, in-use marks, anything else there) into
// dst, for a team that moves its state from one machine's store to a shared one. Leases are not
// copied: a lock belongs to a running process and the store it took it in.
//
// A key dst lacks is created (compare-and-swap expecting no key); one with the same bytes is left.
// When both differ, only a rollout record replaces dst's, and only when it is newer: a record's
// version for this purpose is its updated time (every transition stamps it), then its number of
// transitions; dst's newer record is kept. Anything else that differs is a conflict, left alone
// and reported. A write that loses a race with another writer (dst changed since it was read) is
// a conflict too, never an overwrite. With dryRun nothing is written. MigrateState is idempotent:
// run again, every key is "same", "kept" or a conflict. A failure part way (an unreachable store)
// returns the items done so far and the error; a rerun goes on from there.
func MigrateState(ctx context.Context, src, dst store.Store, dryRun bool) ([]MigrateItem, error) {
	items, err := src.List(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("rollout: migrate: listing the source: %w", err)
	}
	var out []MigrateItem
	for _, it := range items {
		item, err := migrateKey(ctx, it, dst, dryRun)
		if err != nil {
			return out, err
		}
		out = append(out, item)
	}
	return out, nil
}

func migrateKey(ctx context.Context, it store.Item, dst store.Store, dryRun bool) (MigrateItem, error) {
	have, err := dst.Get(ctx, it.Key)
	var expect uint64
	action := MigrateCopied
	detail := ""
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return MigrateItem{}, fmt.Errorf("rollout: migrate: reading %q from the destination: %w", it.Key, err)
	case bytes.Equal(have.Value, it.Value):
		return MigrateItem{Key: it.Key, Action: MigrateSame}, nil
	default:
		newer, why := newerRecord(it, have)
		if newer == 0 {
			return MigrateItem{Key: it.Key, Action: MigrateConflict, Detail: why}, nil
		}
		if newer < 0 {
			return MigrateItem{Key: it.Key, Action: MigrateKept, Detail: why}, nil
		}
		action, detail, expect = MigrateUpdated, why, have.Version
	}
	if dryRun {
		return MigrateItem{Key: it.Key, Action: action, Detail: detail}, nil
	}
	_, err = dst.Put(ctx, it.Key, it.Value, expect)
	if errors.Is(err, store.ErrConflict) {
		return MigrateItem{Key: it.Key, Action: MigrateConflict, Detail: "the destination changed while it was being migrated: left alone, run again to compare"}, nil
	}
	if err != nil {
		return MigrateItem{}, fmt.Errorf("rollout: migrate: writing %q: %w", it.Key, err)
	}
	return MigrateItem{Key: it.Key, Action: action, Detail: detail}, nil
}

// newerRecord compares two rollout records of one key: 1 when the source's is newer, -1 when the
// destination's is, 0 when that cannot be told (not rollout records, or equally new), with why.
func newerRecord(src, dst store.Item) (int, string) {
	if !strings.HasPrefix(src.Key, rolloutPrefix) {
		return 0, "differs, and only rollout records say which is newer: the destination's is left alone"
	}
	var a, b struct {
		Updated     time.Time         `json:"updated"`
		Transitions []json.RawMessage `json:"transitions"`
	}
	if json.Unmarshal(src.Value, &a) != nil || json.Unmarshal(dst.Value, &b) != nil || a.Updated.IsZero() || b.Updated.IsZero() {
		return 0, "differs, and one of them is not a rollout record: the destination's is left alone"
	}
	stamp := func(t time.Time, n int) string {
		return fmt.Sprintf("updated %s, %d transitions", t.UTC().Format(time.RFC3339), n)
	}
	switch {
	case a.Updated.After(b.Updated), a.Updated.Equal(b.Updated) && len(a.Transitions) > len(b.Transitions):
		return 1, fmt.Sprintf("the source's is newer (%s; the destination's %s)", stamp(a.Updated, len(a.Transitions)), stamp(b.Updated, len(b.Transitions)))
	case b.Updated.After(a.Updated), a.Updated.Equal(b.Updated) && len(b.Transitions) > len(a.Transitions):
		return -1, fmt.Sprintf("the destination's is newer (%s; the source's %s)", stamp(b.Updated, len(b.Transitions)), stamp(a.Updated, len(a.Transitions)))
	}
	return 0, "both differ but are equally new: the destination's is left alone"
}

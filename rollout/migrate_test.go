package rollout_test

import (
	"context"
	"testing"

	"github.com/drover-dev/drover/plugins/store"
	storemem "github.com/drover-dev/drover/plugins/store/memory"
	"github.com/drover-dev/drover/rollout"
)

// MigrateState: created where missing, left where the same, replaced only by a newer rollout record
// (its updated time, then its transitions), kept where the destination's is newer, a conflict for
// anything else that differs; a dry run writes nothing; a rerun is all "same", "kept" or conflicts.
func TestMigrateState(t *testing.T) {
	ctx := context.Background()
	src, dst := storemem.New(), storemem.New()
	rec := func(updated string, transitions int) []byte {
		ts := `[`
		for i := range transitions {
			if i > 0 {
				ts += ","
			}
			ts += `{"state":"planned"}`
		}
		return []byte(`{"id":"web-1","updated":"` + updated + `","transitions":` + ts + `]}`)
	}
	put := func(st store.Store, key string, v []byte) {
		t.Helper()
		var version uint64
		if it, err := st.Get(ctx, key); err == nil {
			version = it.Version
		}
		if _, err := st.Put(ctx, key, v, version); err != nil {
			t.Fatal(err)
		}
	}
	put(src, "rollouts/web/00000001", rec("2026-12-04T10:00:00Z", 3)) // missing in dst: copied
	put(src, "rollouts/web/00000002", rec("2026-12-04T11:00:00Z", 3)) // dst older: updated
	put(dst, "rollouts/web/00000002", rec("2026-12-04T10:30:00Z", 5))
	put(src, "rollouts/web/00000003", rec("2026-12-04T11:00:00Z", 4)) // same time, more transitions: updated
	put(dst, "rollouts/web/00000003", rec("2026-12-04T11:00:00Z", 3))
	put(src, "rollouts/db/00000001", rec("2026-12-04T09:00:00Z", 2)) // dst newer: kept
	put(dst, "rollouts/db/00000001", rec("2026-12-04T12:00:00Z", 2))
	put(src, "images/in-use/sha256:aa", []byte(`{"role":"web"}`)) // the same: same
	put(dst, "images/in-use/sha256:aa", []byte(`{"role":"web"}`))
	put(src, "images/in-use/sha256:bb", []byte(`{"role":"web"}`)) // differs, no time: conflict
	put(dst, "images/in-use/sha256:bb", []byte(`{"role":"db"}`))
	want := map[string]string{
		"rollouts/web/00000001": rollout.MigrateCopied, "rollouts/web/00000002": rollout.MigrateUpdated,
		"rollouts/web/00000003": rollout.MigrateUpdated, "rollouts/db/00000001": rollout.MigrateKept,
		"images/in-use/sha256:aa": rollout.MigrateSame, "images/in-use/sha256:bb": rollout.MigrateConflict,
	}
	before, _ := dst.List(ctx, "")

	check := func(items []rollout.MigrateItem, err error, want map[string]string) {
		t.Helper()
		if err != nil || len(items) != len(want) {
			t.Fatalf("MigrateState: %v, %v", items, err)
		}
		for _, it := range items {
			if want[it.Key] != it.Action {
				t.Errorf("%s: %s (%s), want %s", it.Key, it.Action, it.Detail, want[it.Key])
			}
		}
	}
	items, err := rollout.MigrateState(ctx, src, dst, true)
	check(items, err, want)
	if after, _ := dst.List(ctx, ""); len(after) != len(before) {
		t.Fatalf("the dry run wrote: %d keys, were %d", len(after), len(before))
	}
	items, err = rollout.MigrateState(ctx, src, dst, false)
	check(items, err, want)
	for _, key := range []string{"rollouts/web/00000001", "rollouts/web/00000002", "rollouts/web/00000003"} {
		s, _ := src.Get(ctx, key)
		d, err := dst.Get(ctx, key)
		if err != nil || string(d.Value) != string(s.Value) {
			t.Errorf("%s in the destination: %s, %v; want the source's", key, d.Value, err)
		}
	}
	if d, _ := dst.Get(ctx, "rollouts/db/00000001"); string(d.Value) != string(rec("2026-12-04T12:00:00Z", 2)) {
		t.Errorf("the destination's newer record was overwritten: %s", d.Value)
	}
	if d, _ := dst.Get(ctx, "images/in-use/sha256:bb"); string(d.Value) != `{"role":"db"}` {
		t.Errorf("a conflicting mark was overwritten: %s", d.Value)
	}
	items, err = rollout.MigrateState(ctx, src, dst, false)
	check(items, err, map[string]string{
		"rollouts/web/00000001": rollout.MigrateSame, "rollouts/web/00000002": rollout.MigrateSame,
		"rollouts/web/00000003": rollout.MigrateSame, "rollouts/db/00000001": rollout.MigrateKept,
		"images/in-use/sha256:aa": rollout.MigrateSame, "images/in-use/sha256:bb": rollout.MigrateConflict,
	})
}

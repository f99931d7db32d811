package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/drover-dev/drover/plugins/store"
)

// InUseMark is the value under images/in-use/<identity>: the image runs in a live or kept rollout
// (or one in flight), so drover images prune must not remove it. A mark goes away when the image's
// instances are retired.
type InUseMark struct {
	Identity string    `json:"identity"`
	Role     string    `json:"role"`
	Rollouts []string  `json:"rollouts"`
	Since    time.Time `json:"since"`

	version uint64
}

// ImagesInUse reads every in-use mark, by image identity. drover images prune keeps these images:
//
//	inUse, err := rollout.ImagesInUse(ctx, st)
//	catalog.Prune(keep, func(id string) bool { _, ok := inUse[id]; return ok })
func ImagesInUse(ctx context.Context, st store.Store) (map[string]InUseMark, error) {
	marks, err := readMarks(ctx, st)
	if err != nil {
		return nil, err
	}
	out := make(map[string]InUseMark, len(marks))
	for _, m := range marks {
		out[m.Identity] = m
	}
	return out, nil
}

func readMarks(ctx context.Context, st store.Store) ([]InUseMark, error) {
	items, err := st.List(ctx, inUsePrefix)
	if err != nil {
		return nil, fmt.Errorf("rollout: listing in-use image marks: %w", err)
	}
	out := make([]InUseMark, 0, len(items))
	for _, it := range items {
		var m InUseMark
		if err := json.Unmarshal(it.Value, &m); err != nil {
			m = InUseMark{Identity: strings.TrimPrefix(it.Key, inUsePrefix)} // unreadable: stale by definition
		}
		m.version = it.Version
		out = append(out, m)
	}
	return out, nil
}

// wantedMarks is what the marks of a role's records should be: image identity -> owning rollouts.
func wantedMarks(recs []*Record) map[string][]string {
	want := map[string][]string{}
	for id, r := range ownedOf(recs) {
		want[r.Image.Identity] = append(want[r.Image.Identity], id)
	}
	for _, v := range want {
		slices.Sort(v)
	}
	return want
}

// syncMarks writes the role's in-use marks from its records: one per image a rollout in flight or
// live runs, none for the others. Each write is a compare-and-swap; a conflict is left for the next
// command.
func (s *session) syncMarks(ctx context.Context) error {
	marks, err := readMarks(ctx, s.c.opts.Store)
	if err != nil {
		return err
	}
	want := wantedMarks(s.recs)
	st := s.c.opts.Store
	var errs []error
	for _, m := range marks {
		if m.Role != s.role.Name {
			continue
		}
		rollouts, ok := want[m.Identity]
		delete(want, m.Identity)
		switch {
		case !ok:
			if err := st.Delete(ctx, inUseKey(m.Identity), m.version); err != nil && !errors.Is(err, store.ErrNotFound) {
				errs = append(errs, err)
				continue
			}
			s.step("", "marks", fmt.Sprintf("image %s is no longer in use", shortID(m.Identity)))
		case !slices.Equal(rollouts, m.Rollouts):
			m.Rollouts = rollouts
			errs = append(errs, putMark(ctx, st, m))
		}
	}
	for identity, rollouts := range want {
		errs = append(errs, putMark(ctx, st, InUseMark{Identity: identity, Role: s.role.Name, Rollouts: rollouts, Since: s.c.now()}))
		s.step("", "marks", fmt.Sprintf("image %s is in use", shortID(identity)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("rollout: role %q: updating in-use image marks: %w", s.role.Name, err)
	}
	return nil
}

func putMark(ctx context.Context, st store.Store, m InUseMark) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = st.Put(ctx, inUseKey(m.Identity), b, m.version)
	return err
}

func shortID(identity string) string {
	h := strings.TrimPrefix(identity, "sha256:")
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

package tree

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPruneSupersededRemovesOnlyOldTreesOfTheSpec(t *testing.T) {
	trees := t.TempDir()
	now := time.Now()
	spec, other := strings.Repeat("a", 64), strings.Repeat("b", 64)
	mk := func(name string, age time.Duration, side ...string) string {
		dir := filepath.Join(trees, name)
		if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, s := range side {
			if err := os.WriteFile(dir+s, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		markUsed(dir, now.Add(-age))
		return dir
	}
	newest := mk(spec+"-1111111111111111", 8*time.Hour) // just built: kept whatever its mtime
	oldUnused := mk(spec+"-2222222222222222", 7*time.Hour, ".spec", ".files.gz")
	oldRecent := mk(spec+"-3333333333333333", time.Hour) // a build may still read it
	killed := mk(spec+"-4444444444444444.tmp-123", 9*time.Hour)
	otherSpec := mk(other+"-2222222222222222", 30*time.Hour)
	removed := pruneSuperseded(trees, spec, filepath.Base(newest), 6*time.Hour, now, nil)
	slices.Sort(removed)
	if want := []string{oldUnused, killed}; !slices.Equal(removed, want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	for _, gone := range []string{oldUnused, oldUnused + ".spec", oldUnused + ".files.gz", killed} {
		if _, err := os.Lstat(gone); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v)", gone, err)
		}
	}
	for _, kept := range []string{newest, oldRecent, otherSpec} {
		if !isDir(kept) {
			t.Errorf("%s was removed", kept)
		}
	}
}

func TestMarkUsedKeepsATreeFromPruning(t *testing.T) {
	trees := t.TempDir()
	spec := strings.Repeat("c", 64)
	old := filepath.Join(trees, spec+"-5555555555555555")
	if err := os.Mkdir(old, 0o755); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	markUsed(old, now.Add(-48*time.Hour))
	markUsed(old, now) // a cache hit just now
	if removed := pruneSuperseded(trees, spec, spec+"-6666666666666666", 6*time.Hour, now, nil); len(removed) != 0 {
		t.Fatalf("a tree used just now was pruned: %v", removed)
	}
}

func TestPruneOtherRecipesRemovesOnlyOldRecipesUnused(t *testing.T) {
	trees := t.TempDir()
	now := time.Now()
	mk := func(specKey, recipe string, age time.Duration) string {
		key := specKey + "-1111111111111111"
		dir := filepath.Join(trees, key)
		if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		note := "key=" + key + "\nspec_key=" + specKey + "\n"
		if recipe != "" {
			note += "recipe=" + recipe + "\n"
		}
		for side, text := range map[string]string{".spec": note, ".files.gz": "x"} {
			if err := os.WriteFile(dir+side, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(trees, specKey+".latest"), []byte(key+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		markUsed(dir, now.Add(-age))
		return dir
	}
	current := mk(strings.Repeat("a", 64), keyVersion, 30*time.Hour)
	oldUnused := mk(strings.Repeat("b", 64), "drover-tree/1", 7*time.Hour)
	oldRecent := mk(strings.Repeat("c", 64), "drover-tree/1", time.Hour) // a build may still read it
	unknown := mk(strings.Repeat("d", 64), "", 30*time.Hour)             // written before the recipe line
	removed := pruneOtherRecipes(trees, 6*time.Hour, now, nil)
	if want := []string{oldUnused}; !slices.Equal(removed, want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	for _, gone := range []string{oldUnused, oldUnused + ".spec", oldUnused + ".files.gz", filepath.Join(trees, strings.Repeat("b", 64)+".latest")} {
		if _, err := os.Lstat(gone); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v)", gone, err)
		}
	}
	for _, kept := range []string{current, oldRecent, unknown} {
		if !isDir(kept) {
			t.Errorf("%s was removed", kept)
		}
		if _, err := os.Stat(kept + ".spec"); err != nil {
			t.Errorf("%s.spec: %v", kept, err)
		}
	}
}

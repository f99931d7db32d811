package rootfs

import (
	"os"
	"path/filepath"
	"testing"
)

// TestPackerCacheDir checks where the Packer builder keeps base trees: cache_dir, else
// $DROVER_CACHE_DIR (as drover build), else STATE_DIR/cache.
func TestPackerCacheDir(t *testing.T) {
	state, agentDir := t.TempDir(), t.TempDir()
	// The agent's bytes only go into the image's identity here.
	if err := os.WriteFile(filepath.Join(agentDir, "drover-boot-linux-amd64"), []byte("agent"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, cacheDir, env, want string
	}{
		{"cache_dir", "/srv/drover-cache", "/var/cache/drover", "/srv/drover-cache"},
		{"DROVER_CACHE_DIR", "", "/var/cache/drover", "/var/cache/drover"},
		{"neither", "", "", filepath.Join(state, "cache")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("DROVER_CACHE_DIR", tc.env)
			raw := map[string]any{"role": "tiny", "state_dir": state, "agent_dir": agentDir}
			if tc.cacheDir != "" {
				raw["cache_dir"] = tc.cacheDir
			}
			var b Builder
			if _, _, err := b.Prepare(raw); err != nil {
				t.Fatal(err)
			}
			if got := b.req.Cache.Dir; got != tc.want {
				t.Errorf("the base-tree cache is %s, want %s", got, tc.want)
			}
		})
	}
}

package scan

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drover-dev/drover/plugins/secrets"
)

// benchTree generates a tree shaped like a small Debian root: configuration files, scripts and
// source-like text with assignments (a few of them secrets), and binaries the rules skip.
func benchTree(b *testing.B) (root string, total int64, nSecrets int) {
	b.Helper()
	root = b.TempDir()
	text := strings.Repeat("# a comment line about the key and token settings of this service\n"+
		"listen_addresses = '*'\nmax_connections = 100\nshared_buffers = 128MB\n"+
		"def handler(key, token):\n    return cache_key(key) + token_value(token)\n", 40)
	bin := make([]byte, 256<<10)
	_, _ = rand.Read(bin)
	bin[10] = 0
	for i := 0; i < 2000; i++ {
		dir := filepath.Join(root, []string{"etc", "usr/lib/python3", "usr/share/perl5", "opt/app", "usr/bin"}[i%5], fmt.Sprintf("d%d", i/100))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		var content []byte
		switch {
		case i%5 == 4:
			content = bin
		case i%97 == 0:
			content = []byte(text + "API_TOKEN=" + rnd(40) + "\n")
			nSecrets++
		default:
			content = []byte(text)
		}
		name := filepath.Join(dir, fmt.Sprintf("f%d.conf", i))
		if err := os.WriteFile(name, content, 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(len(content))
	}
	return root, total, nSecrets
}

func BenchmarkScan(b *testing.B) {
	root, total, want := benchTree(b)
	for _, bc := range []struct {
		name string
		opts Options
	}{
		{"rules", Options{}},
		{"rules+forbidden", Options{Forbidden: []secrets.Secret{secrets.Secret(rnd(32)), secrets.Secret(rnd(24)), secrets.Secret(rnd(48))}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(total)
			for b.Loop() {
				r, err := Scan(context.Background(), root, bc.opts)
				if err != nil {
					b.Fatal(err)
				}
				if len(r.Findings) != want {
					b.Fatalf("%d findings, want %d", len(r.Findings), want)
				}
			}
		})
	}
}

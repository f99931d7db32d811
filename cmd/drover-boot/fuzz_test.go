package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drover-dev/drover/plugins/secrets/bootdata"
)

// FuzzUserData feeds drover-boot's reading of its inputs arbitrary bytes: the image description
// (etc/drover/image.json) and the user-data. Neither panics, and what the user-data is accepted
// with never names a file outside the image (a template) or outside the secrets directory (a name).
func FuzzUserData(f *testing.F) {
	f.Add([]byte(`{"role":"web","identity":"sha256:ab","secrets":["kv/data/web/tls"]}`),
		[]byte(`{"version":1,"role":"web","secrets":[{"path":"kv/data/web/tls","name":"tls.key","field":"key"}]}`))
	f.Add([]byte(`{"role":"","identity":null}`),
		[]byte(`{"version":1,"role":"web","secrets":[{"path":"kv/data/web/tls","name":"t","template":"/etc/drover/templates/t"}]}`))
	f.Add([]byte(`[`), []byte(`{"version":1,"role":"web","secrets":[{"path":"kv/data/web/tls","name":"t","template":"../../../dev/zero"}]}`))
	f.Add([]byte(`{"role":"db","identity":"sha256:ab"}`),
		[]byte(`{"version":1,"role":"db","volumes":[{"name":"pgdata","guest_path":"/dev/disk/by-id/virtio-vol1","mount":"/var/lib/postgresql","fs":"ext4","mode":"0700"}]}`))
	f.Add([]byte(`{"role":"db","identity":"sha256:ab"}`),
		[]byte(`{"version":1,"role":"db","volumes":[{"name":"x","guest_path":"/dev/disk/by-id/../../vda","mount":"/../etc","fs":"ext4"}]}`))
	root := f.TempDir()
	imagePath := filepath.Join(root, "image.json")
	f.Fuzz(func(t *testing.T, image, userData []byte) {
		if err := os.WriteFile(imagePath, image, 0o600); err != nil {
			t.Fatal(err)
		}
		if img, err := readImage(imagePath); err == nil && (img.Role == "" || img.Identity == "") {
			t.Fatalf("readImage accepted an image without role or identity: %+v", img)
		}
		ud, err := bootdata.Parse(userData)
		if err != nil {
			return
		}
		for _, v := range ud.Volumes {
			// A volume is mounted under the root and found under /dev/disk/by-id, nowhere else.
			p := filepath.Join(root, filepath.FromSlash(v.Mount))
			if rel, err := filepath.Rel(root, p); err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
				t.Fatalf("volume %q: mount %q is not a directory inside the system", v.Name, v.Mount)
			}
			if dir, _ := filepath.Split(v.GuestPath); dir != bootdata.GuestPathPrefix {
				t.Fatalf("volume %q: device %q is not under %s", v.Name, v.GuestPath, bootdata.GuestPathPrefix)
			}
		}
		for _, s := range ud.Secrets {
			if s.Template == "" {
				continue
			}
			p := filepath.Join(root, filepath.FromSlash(s.Template))
			if rel, err := filepath.Rel(root, p); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
				t.Fatalf("secret %q: template %q is outside the image", s.Name, s.Template)
			}
		}
	})
}

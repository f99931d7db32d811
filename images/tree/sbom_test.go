package tree

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const dpkgStatus = `Package: zlib1g
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Version: 1:1.2.13.dfsg-1
Description: compression library - runtime
 zlib is a library implementing the deflate compression method found
 in gzip and PKZIP.

Package: apt
Status: install ok installed
Architecture: amd64
Version: 2.6.1
Depends: adduser,
 gpgv | gpgv2

Package: oldconf
Status: deinstall ok config-files
Architecture: all
Version: 1.0

Package: halfdone
Status: install reinstreq half-installed
Architecture: amd64
Version: 0.1

Package: zlib1g
Status: hold ok installed
Architecture: arm64
Version: 1:1.2.13.dfsg-1

Package: unpacked
Status: install ok unpacked
Architecture: amd64
Version: 3
`

func TestParseDpkgStatus(t *testing.T) {
	got, err := parseDpkgStatus(strings.NewReader(dpkgStatus))
	if err != nil {
		t.Fatal(err)
	}
	want := []Package{
		{Name: "apt", Version: "2.6.1", Arch: "amd64"},
		{Name: "zlib1g", Version: "1:1.2.13.dfsg-1", Arch: "amd64"},
		{Name: "zlib1g", Version: "1:1.2.13.dfsg-1", Arch: "arm64"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestPackagesFromTree(t *testing.T) {
	root := fakeTree(t, map[string]string{"var/lib/dpkg/status": dpkgStatus})
	pkgs, err := Packages(root)
	if err != nil || len(pkgs) != 3 {
		t.Fatalf("Packages = %v, %v", pkgs, err)
	}
	_, err = Packages(t.TempDir())
	var se *StepError
	if !errors.As(err, &se) || se.Step != "sbom" || !strings.HasPrefix(err.Error(), "tree: sbom: ") {
		t.Fatalf("missing status: %v", err)
	}
}

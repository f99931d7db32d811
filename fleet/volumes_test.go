package fleet

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// TestVolumeDecoded checks that a volume block with every value set, and one with the defaults, are
// decoded into Deploy.Volumes, and that a deploy with volumes and no strategy gets handoff (a
// bluegreen one is refused: volume_bluegreen.golden).
func TestVolumeDecoded(t *testing.T) {
	src := `
deploy {
  compute = "lab"
  volume "pgdata" {
    size            = "2TiB"
    mount           = "/var/lib/postgresql"
    fs              = "xfs"
    snapshot_before = false
    owner           = "postgres:postgres"
    mode            = "0700"
  }
  volume "logs" {
    size  = "5 GiB"
    mount = "/var/log/app"
  }
}
`
	file, diags := hclparse.NewParser().ParseHCL([]byte(src), "drover.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	d := &decoder{ctx: &hcl.EvalContext{}, deploy: testDeployCatalog{}, declaredBroken: map[string]bool{}}
	c := d.content(file.Body, &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "deploy"}}})
	dep := d.decodeDeploy(&Fleet{}, c.Blocks[0], Options{})
	if d.diags.HasErrors() {
		t.Fatalf("diagnostics: %v", d.diags)
	}
	if dep.Strategy != HandoffStrategy {
		t.Errorf("strategy %q, want %q for a deploy with volumes and no strategy", dep.Strategy, HandoffStrategy)
	}
	got := dep.Volumes
	if len(got) != 2 {
		t.Fatalf("decoded %d volumes, want 2", len(got))
	}
	pg, logs := got[0], got[1]
	if pg.Name != "pgdata" || pg.SizeGiB != 2048 || pg.Mount != "/var/lib/postgresql" || pg.FS != "xfs" ||
		pg.SnapshotBefore || pg.Owner != "postgres:postgres" || pg.Mode != fs.FileMode(0o700) {
		t.Errorf("pgdata decoded as %+v", pg)
	}
	if logs.Name != "logs" || logs.SizeGiB != 5 || logs.FS != DefaultVolumeFS || !logs.SnapshotBefore || logs.Owner != "" || logs.Mode != 0 {
		t.Errorf("logs decoded as %+v, want the defaults (ext4, snapshot before, owner and mode left alone)", logs)
	}
}

func TestParseVolumeSize(t *testing.T) {
	for in, want := range map[string]int{
		"1GiB": 1, "20GiB": 20, "20 GiB": 20, "16TiB": 16384, "16384GiB": 16384,
		"0GiB": 0, "17TiB": 0, "16385GiB": 0, "20GB": 0, "20": 0, "-1GiB": 0, "1.5GiB": 0, "": 0,
		"999999TiB": 0, "20gib": 0, " 20GiB": 0,
	} {
		if got := parseVolumeSize(in); got != want {
			t.Errorf("parseVolumeSize(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestMountProblem(t *testing.T) {
	for _, ok := range []string{"/var/lib/postgresql", "/srv/git", "/data", "/running", "/device"} {
		if p := mountProblem(ok); p != "" {
			t.Errorf("mountProblem(%q) = %q, want none", ok, p)
		}
	}
	for _, bad := range []string{"", "data", "./data", "/", "/data/", "/var//lib", "/var/lib/../x", "/run", "/run/db",
		"/proc/x", "/sys", "/dev/disk", "/with space", "/new\nline", `/back\slash`} {
		if mountProblem(bad) == "" {
			t.Errorf("mountProblem(%q) accepted it", bad)
		}
	}
}

// TestVolumeOnComputeWithoutVolumes refuses a volume on a compute type whose config does not say
// it has volumes (every registered type has them; the test catalog's "t" does not), at the
// volume's block.
func TestVolumeOnComputeWithoutVolumes(t *testing.T) {
	_, diags := load(t, `
compute "t" "lab" {}

role "db" {
  image {
    base     = "debian-bookworm"
    services = ["postgresql"]
  }
  deploy {
    compute = "lab"
    volume "data" {
      size  = "20GiB"
      mount = "/var/lib/postgresql"
    }
  }
}
`, Options{})
	// The test catalog has no handoff strategy either: that error is not this test's.
	var found []*hcl.Diagnostic
	for _, d := range diags.Diags {
		if d.Summary == "No volumes on this compute" {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		var b strings.Builder
		_ = diags.WriteText(&b)
		t.Fatalf("want one \"No volumes on this compute\", got %d:\n%s", len(found), b.String())
	}
	d := found[0]
	if d.Subject.Start.Line != 11 || d.Subject.Start.Column != 5 ||
		!strings.Contains(d.Detail, `compute "lab" of type "t", which cannot attach a volume`) {
		t.Errorf("diagnostic at %v: %s", d.Subject.Start, d.Detail)
	}
}

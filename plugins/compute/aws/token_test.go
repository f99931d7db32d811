package aws

import (
	"strings"
	"testing"
)

func TestClientToken(t *testing.T) {
	long := strings.Repeat("r", 65)
	for _, tok := range []string{"rollout-1/web/0", strings.Repeat("x", 64), long, "héllo", "with space"} {
		ct := clientToken(tok)
		if len(ct) == 0 || len(ct) > maxClientToken || !printableASCII(ct) {
			t.Errorf("clientToken(%q) = %q: want 1-64 printable ASCII characters", tok, ct)
		}
		if ct != clientToken(tok) {
			t.Errorf("clientToken(%q) is not deterministic", tok)
		}
	}
	if got := clientToken("rollout-1/web/0"); got != "rollout-1/web/0" {
		t.Errorf("a valid token was changed to %q", got)
	}
	if clientToken(long) == clientToken(long+"s") {
		t.Error("two long tokens gave one client token")
	}
	if clientToken("a b") == clientToken("a_b") || clientToken("a b") == "a b" {
		t.Error("a token with a space was not derived")
	}
}

func TestSnapshotToken(t *testing.T) {
	id := "sha256:" + strings.Repeat("ab", 32)
	t0, t1, t2 := snapshotToken(id, nil), snapshotToken(id, []string{"snap-1"}), snapshotToken(id, []string{"snap-2"})
	if t0 != snapshotToken(id, nil) {
		t.Error("snapshotToken is not deterministic")
	}
	if t0 == t1 || t1 == t2 || t0 == snapshotToken("sha256:"+strings.Repeat("cd", 32), nil) {
		t.Error("distinct identities or burned snapshots gave one token")
	}
	for _, tok := range []string{t0, t1} {
		if len(tok) > maxClientToken || !printableASCII(tok) {
			t.Errorf("snapshot token %q: want at most 64 printable ASCII characters", tok)
		}
	}
}

func TestImageName(t *testing.T) {
	hex := strings.Repeat("0f", 32)
	if got, want := imageName("web", "sha256:"+hex), "drover-web-"+hex; got != want {
		t.Errorf("imageName = %q, want %q", got, want)
	}
	got := imageName(strings.Repeat("a b/", 30), "packer build 7")
	if len(got) > 128 || strings.ContainsAny(got, " /") {
		t.Errorf("imageName = %q: want at most 128 characters EC2 accepts in a name", got)
	}
	if imageName("web", "x") == imageName("web", "y") {
		t.Error("two identities gave one image name")
	}
}

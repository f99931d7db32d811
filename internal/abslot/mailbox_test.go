package abslot

import (
	"slices"
	"testing"
)

// The mailbox message is vcmailbox's for `vcmailbox 0x00038064 4 0 1`: buffer size in bytes,
// request code 0, tag, value buffer size, request indicator, the tryboot flag, end tag.
func TestTrybootMessage(t *testing.T) {
	got := trybootMessage()
	want := []uint32{28, 0, 0x00038064, 4, 0, 1, 0}
	if !slices.Equal(got, want) || int(got[0]) != 4*len(got) {
		t.Fatalf("message %#x, want %#x", got, want)
	}
}

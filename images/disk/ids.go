package disk

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strings"
)

// uuid is an RFC 9562 UUID in its 16-byte form.
type uuid [16]byte

// parseUUID accepts the canonical 8-4-4-4-12 hex form, any case.
func parseUUID(s string) (uuid, error) {
	var u uuid
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, fmt.Errorf("disk: %q is not a UUID (want xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", s)
	}
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil {
		return u, fmt.Errorf("disk: %q is not a UUID: %w", s, err)
	}
	copy(u[:], b)
	return u, nil
}

func (u uuid) String() string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// derive returns a name-based (version 5) UUID in the namespace u. Every
// identifier on the disk other than the root filesystem UUID (disk GUID,
// partition GUIDs, ext4 hash seed) is derived this way, so one UUID in the
// spec pins them all and the same spec gives the same bytes.
func (u uuid) derive(name string) uuid {
	h := sha1.New()
	h.Write(u[:])
	h.Write([]byte(name))
	var d uuid
	copy(d[:], h.Sum(nil))
	d[6] = (d[6] & 0x0f) | 0x50 // version 5
	d[8] = (d[8] & 0x3f) | 0x80 // RFC 4122 variant
	return d
}

// espSerial returns the FAT volume ID as mkfs.vfat's -i wants it: the given
// 8 hex digits (an optional dash in the middle, as blkid prints it, is
// dropped), or, when empty, the first four bytes of a UUID derived from root.
func espSerial(given string, root uuid) (string, error) {
	if given == "" {
		return strings.ToUpper(hex.EncodeToString(root.derive("esp-serial").bytes()[:4])), nil
	}
	s := strings.ReplaceAll(given, "-", "")
	if _, err := hex.DecodeString(s); err != nil || len(s) != 8 {
		return "", fmt.Errorf("disk: ESP serial %q is not 8 hex digits (like 1A2B-3C4D)", given)
	}
	return strings.ToUpper(s), nil
}

func (u uuid) bytes() []byte { return u[:] }

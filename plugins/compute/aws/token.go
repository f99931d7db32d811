package aws

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// maxClientToken is the longest ClientToken EC2 and EBS accept.
const maxClientToken = 64

// clientToken returns the EC2 ClientToken of a Spec.Token: the token itself when EC2 accepts it (at
// most 64 printable ASCII characters), otherwise "sha256-" and the start of its hex sha256. Either
// way the same Spec.Token always gives the same ClientToken, so a retried Launch is idempotent.
func clientToken(token string) string {
	if len(token) <= maxClientToken && printableASCII(token) {
		return token
	}
	sum := sha256.Sum256([]byte(token))
	return ("sha256-" + hex.EncodeToString(sum[:]))[:maxClientToken]
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return s != ""
}

// identityHex is an image identity's hex digest ("sha256:HEX" -> "HEX"); other identities (an
// imported Packer build's) are hashed, so names and tokens built from it stay short and valid.
func identityHex(identity string) string {
	if h, ok := strings.CutPrefix(identity, "sha256:"); ok && len(h) == 64 && isHex(h) {
		return strings.ToLower(h)
	}
	sum := sha256.Sum256([]byte(identity))
	return hex.EncodeToString(sum[:])
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// snapshotToken is the StartSnapshot ClientToken of a publish of identity: every Publish of one
// identity asks with the same token, so concurrent publishes (also in other processes) are given
// the same snapshot. after names the snapshots of the identity an earlier Publish deleted as
// unusable: a fresh start must not be handed one of them again by the token's idempotency.
func snapshotToken(identity string, after []string) string {
	h := sha256.New()
	h.Write([]byte("drover-snapshot\x00" + identity))
	for _, id := range after {
		h.Write([]byte("\x00" + id))
	}
	return ("drover-" + hex.EncodeToString(h.Sum(nil)))[:maxClientToken]
}

// imageName is the AMI name of an identity. EC2 refuses a second image of one name in a region,
// which is what keeps concurrent publishes of one identity to one AMI.
func imageName(role, identity string) string {
	role = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '-'
	}, role)
	if len(role) > 40 {
		role = role[:40]
	}
	if role == "" {
		role = "image"
	}
	return "drover-" + role + "-" + identityHex(identity)
}

package fleet

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/hashicorp/hcl/v2"
)

// maxKeyringBytes bounds a base's keyring file: Debian's whole archive keyring is about 100 KB.
const maxKeyringBytes = 1 << 20

// decodeBaseKeyring reads a base's keyring: the OpenPGP public key(s) that sign its archives (the
// mirror's and the security mirror's), a file in the fleet's repository, relative to the fleet
// file. The builder gives it to mmdebstrap and writes it into the image for the image's own apt, so
// a private or local mirror is verified without trusting anything fetched at build time. A file that
// is missing, too large or not an OpenPGP public key is reported here, where it was named.
func (d *decoder) decodeBaseKeyring(f *Fleet, c *hcl.BodyContent, base *Base, opts Options) {
	var written string
	if !d.str(c.Attributes, "keyring", &written) {
		return
	}
	rng := c.Attributes["keyring"].Expr.Range()
	path := resolvePath(f.Dir, written)
	if !d.checkSource(opts, rng, written, path, f.shownDir) {
		return
	}
	if problem := checkKeyring(path); problem != "" {
		d.errorf(rng, "Invalid keyring",
			"\"keyring\" must be an OpenPGP public key file, as gpg --export (binary, .gpg) or gpg --export --armor (.asc) writes it; %q %s.", written, problem)
		return
	}
	base.Keyring = path
}

// checkKeyring says what is wrong with a keyring file, or "" when it holds at least one OpenPGP
// public key and no secret key.
func checkKeyring(path string) string {
	file, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("cannot be read (%v)", err)
	}
	defer file.Close()
	b, err := io.ReadAll(io.LimitReader(file, maxKeyringBytes+1))
	switch {
	case err != nil:
		return fmt.Sprintf("cannot be read (%v)", err)
	case len(b) > maxKeyringBytes:
		return fmt.Sprintf("is larger than %d bytes", maxKeyringBytes)
	}
	read := openpgp.ReadKeyRing
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("-----BEGIN PGP")) {
		read = openpgp.ReadArmoredKeyRing
	}
	keys, err := read(bytes.NewReader(b))
	switch {
	case err != nil:
		return fmt.Sprintf("is not one (%v)", err)
	case len(keys) == 0:
		return "holds no key"
	}
	for _, k := range keys {
		if k.PrivateKey != nil {
			return "holds a secret key, which must not be in the fleet's repository: export only the public key"
		}
	}
	return ""
}

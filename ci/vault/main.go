// Command vault is a stock HashiCorp Vault server built from the module proxy, for the tests that need
// a real Vault dev server (see plugins/secrets/vaulttest). It is its own module so that the main module
// never sees Vault's dependencies; `go tool task vault` builds it into bin/vault.
package main

import (
	"os"

	"github.com/hashicorp/vault/command"
)

func main() { os.Exit(command.Run(os.Args[1:])) }

# expect: 5:22
# Instances reach Vault by a private name; it needs its scheme like address does.
vault {
  address          = "https://vault.example.com:8200"
  instance_address = "vault.internal:8200"
}

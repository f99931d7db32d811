# expect: 12:16 18:17
compute "qemu" "lab" {}

role "vault" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute = "lab"
    health "http" {
      port   = 8200
      scheme = "https"
    }
    health "vault" {
      port    = 8200
      path    = "/v1/sys/health"
      # scheme "http" (the default) does not verify anything
      ca_file = "ca.pem"
    }
  }
}

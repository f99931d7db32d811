# expect: 5:5
role "web" {
  image {
    base = "debian-bookworm"
    certificate "tls" {
      pki_role    = "web"
      common_name = "${instance.address}"
      ttl         = "72h"
    }
  }
}

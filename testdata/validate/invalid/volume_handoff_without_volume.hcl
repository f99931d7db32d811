# expect: 12:16
# The handoff strategy moves a role's volumes from blue to green: a deploy without any is refused.
compute "qemu" "lab" {}

role "web" {
  image {
    base     = "debian-bookworm"
    services = ["nginx"]
  }
  deploy {
    compute  = "lab"
    strategy = "handoff"
  }
}

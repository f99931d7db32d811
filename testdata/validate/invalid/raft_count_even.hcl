# expect: 11:16
compute "qemu" "lab" {}

role "vault" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute  = "lab"
    strategy = "raft"
    count    = 2
    ports    = [8200]
  }
}

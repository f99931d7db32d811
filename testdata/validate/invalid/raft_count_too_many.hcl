# expect: 11:16
compute "qemu" "lab" {}

role "vault" {
  image {
    base = "debian-bookworm"
  }
  deploy {
    compute  = "lab"
    strategy = "raft"
    count    = 9
    ports    = [8200]
  }
}

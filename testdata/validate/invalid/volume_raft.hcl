# expect: 12:16
# A raft role keeps its data in the cluster: no volume.
compute "qemu" "lab" {}

role "vault" {
  image {
    base     = "debian-bookworm"
    services = ["vault"]
  }
  deploy {
    compute  = "lab"
    strategy = "raft"
    volume "data" {
      size = "10GiB"
      mount = "/opt/vault/data"
    }
  }
}

# expect: 14:15 15:15 16:15 17:15 18:15 20:12 21:15 22:15 26:15 30:15 33:14 34:15
# Every bad value of a volume block is reported at once.
compute "qemu" "lab" {}

role "db" {
  image {
    base     = "debian-bookworm"
    services = ["postgresql"]
  }
  deploy {
    compute = "lab"
    ports   = [5432]
    volume "data" {
      size  = "20GB"
      mount = "var/lib/postgresql"
      fs    = "btrfs"
      owner = "Postgres Postgres"
      mode  = "0999"
    }
    volume "Bad.Name" {
      size  = "0GiB"
      mount = "/var/lib/postgresql/"
    }
    volume "runvol" {
      size = "1GiB"
      mount = "/run/db"
    }
    volume "rootvol" {
      size = "1GiB"
      mount = "/"
    }
    volume "devvol" {
      size = "99999GiB"
      mount = "/dev/shm/x"
    }
  }
}

# expect: 3:3
compute "qemu" "lab" {
  bogus = 1
}

role "web" {
  image { base = "debian-bookworm" }
  deploy { compute = "lab" }
}

role "db" {
  image { base = "debian-bookworm" }
  deploy { compute = "lab" }
}

# expect: 14:15 18:14 3:12
dns "rfc2136" "home" {
  zone   = "lab.example.\nevil."
  server = "127.0.0.1:5353"
}
compute "qemu" "lab" {}

role "web" {
  image { base = "debian-bookworm" }
  deploy {
    compute = "lab"
    health "dns" {
      port  = 53
      query = "www.lab.example.\n"
    }
    cutover "dns" {
      dns  = "home"
      name = "www\nevil 60 IN A 10.0.0.66"
    }
  }
}

# expect: 7:7
role "web" {
  image {
    base = "debian-bookworm"
    file "/etc/motd" {
      source  = "files/index.html"
      content = "hello"
    }
  }
}

# expect: 10:10 13:35 4:10 7:10
role "web" {
  image {
    file "/" {
      content = "x"
    }
    file "/etc/a\u0000b" {
      content = "x"
    }
    file "/etc/" {
      content = "x"
    }
    files = { "/etc/motd\nevil" = "files/site.conf" }
    base  = "debian-bookworm"
  }
}

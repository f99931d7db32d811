# expect: 12:16 12:16 3:16 4:16 5:16 6:16
base "tricky" {
  suite      = "--hook-dir=/tmp/evil"
  components = ["main", "contrib --x"]
  packages   = ["-oAPT::Get::Trivial-Only=true"]
  mirror     = "http://deb.debian.org/debian bookworm main contrib"
}

role "web" {
  image {
    base     = "tricky"
    packages = ["nginx", "curl wget", "Nginx"]
  }
}

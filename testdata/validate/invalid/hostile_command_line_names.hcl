# expect: 11:16 11:16 3:16 4:16 5:16
base "tricky" {
  suite      = "--hook-dir=/tmp/evil"
  components = ["main", "contrib --x"]
  packages   = ["-oAPT::Get::Trivial-Only=true"]
}

role "web" {
  image {
    base     = "tricky"
    packages = ["nginx", "curl wget", "Nginx"]
  }
}
